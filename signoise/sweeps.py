"""Sweeps: a grid of configs × seeds, computed by blocks on an executor into a resumable store.

The grid comes from the config's ``[sweep]`` section (DESIGN.md): one axis per config key,
``seeds = K`` runs per cell (seeds ``seed, seed + 1, ..., seed + K − 1``). Cells are computed
in blocks (one chunk of the store) by :func:`run_block`, which groups runs of equal shapes
into :func:`~signoise.simulate_batch` calls. Serial, local processes and a Dask
cluster run the same :func:`run_block`, so a cell's numbers depend only on its config and
seed (DESIGN.md, principle 4), never on the executor, the worker count or the block size.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import interrupt
from .config import RunConfig
from .constraints import ConfigError, reject
from .driver import SHAPE_KEYS, progress, schedule
from .results import NOT_IN_STORE

#: Runs per block aimed at when choosing the block size.
BLOCK_RUNS = 1000


@dataclass(frozen=True)
class Plan:
    """A validated sweep: the base config, the grid axes, the seeds, and every cell's config."""

    cfg: RunConfig
    axes: dict
    seeds: np.ndarray
    configs: list  # one RunConfig per cell, C order over the axes

    @property
    def shape(self):
        return tuple(len(v) for v in self.axes.values())

    def blocks(self, block: int):
        """Regions (tuples of slices over the grid axes) of size ``block`` on the last axis."""
        *lead, last = self.shape
        for idx in itertools.product(*(range(k) for k in lead)):
            for start in range(0, last, block):
                yield tuple(slice(i, i + 1) for i in idx) + (slice(start, min(start + block, last)),)

    def cells(self, region):
        """Flat cell indices of a region, C order."""
        ranges = [range(s.start, s.stop) for s in region]
        return [int(np.ravel_multi_index(ix, self.shape)) for ix in itertools.product(*ranges)]


def plan(cfg: RunConfig) -> Plan:
    """Expand and validate the grid of ``cfg``: every cell's config is built (and checked) now.

    Raises
    ------
    ConfigError
        For an empty grid, a repeated value on an axis, ``seed`` as an axis, both
        ``data.mu_norm`` and ``data.snr`` as axes, or any cell whose config is invalid (the
        message names the cell).
    """
    axes = cfg.sweep.axes()
    if not axes:
        reject("sweep.grid", {}, 'at least one axis, e.g. [sweep.grid] "data.mu_norm" = [1.0, 2.0]')
    if "seed" in axes:
        reject("sweep.grid.seed", axes["seed"], "no seed axis (use sweep.seeds = K)")
    if "data.mu_norm" in axes and "data.snr" in axes:
        reject("sweep.grid", list(axes), "at most one of data.mu_norm and data.snr")
    for key, values in axes.items():
        if len(set(map(repr, values))) != len(values):
            reject(f"sweep.grid.{key}", values, "distinct values")
        kinds = {type(v) for v in values}
        if len(kinds) > 1 and not kinds <= {int, float}:
            reject(f"sweep.grid.{key}", values, "values of one type")
    base = cfg.updated({})  # a copy
    configs, templates = [], {}
    for values in itertools.product(*axes.values()):
        changes = dict(zip(axes, values))
        try:
            configs.append(_cell_config(base, changes, templates))
        except (ConfigError, TypeError) as exc:
            raise type(exc)(f"sweep cell {changes}: {exc}") from None
    for key in axes:
        if key.startswith("algorithm.") and key != "algorithm.name" and not any(
                key.split(".", 1)[1] in c.algorithm.params for c in configs):
            reject(f"sweep.grid.{key}", axes[key], "a parameter of an algorithm in the sweep")
    seeds = cfg.seed + np.arange(cfg.sweep.seeds, dtype=np.int64)
    return Plan(cfg, axes, seeds, configs)


def _cell_config(base: RunConfig, changes: dict, templates: dict | None = None) -> RunConfig:
    """``base`` with the cell's values; algorithm parameters the cell's algorithm does not take
    are dropped (so ``algorithm.name`` and e.g. ``algorithm.lam`` can be axes together).
    ``templates`` caches, per algorithm name, ``base`` without its sweep section."""
    from .algorithms import ALGORITHMS

    templates = {} if templates is None else templates
    name = changes.get("algorithm.name", base.algorithm.name)
    takes = ALGORITHMS[name].params if name in ALGORITHMS else {}
    key = (name, "algorithm.name" in changes)
    if key not in templates:
        d = base.to_dict()
        d.pop("sweep", None)
        if "algorithm.name" in changes:
            d["algorithm"] = {"name": name,
                              **{k: v for k, v in d["algorithm"].items() if k in takes}}
        templates[key] = RunConfig.from_dict(d)
    own = {k: v for k, v in changes.items() if k != "algorithm.name" and not (
        k.startswith("algorithm.") and k.split(".", 1)[1] not in takes)}
    return templates[key].updated(own)


# ----------------------------------------------------------------------------------------
# the work unit, shared by every executor


def run_block(cells: list, seeds, layout: dict, record_rho: str = "summary", engine: str = "gram",
              backend: str = "numba"):
    """Compute the cells of one block (all seeds): arrays laid out as in the store.

    The cells' runs go through the driver of :func:`~signoise.simulate_batch` (runs of equal
    shapes in one call, draws shared between cells that differ only in ‖μ‖), without building
    a Dataset.

    Parameters
    ----------
    cells : list of RunConfig (or their TOML texts)
        The cells' configs (picklable).
    seeds : array of int
        The seeds of every cell.
    layout : dict
        ``"vars"``: store variable name -> (its dims after ``seed``, e.g. ``("step", "j",
        "r")``, dtype); ``"step"``: the store's steps; ``"r"``, ``"i"``: the store's sizes.
    Returns
    -------
    dict
        Name -> array of shape (cells, seeds, ...) padded with NaN where a cell has fewer
        steps, filters or examples than the store.
    """
    from . import driver
    from .results import recorded

    cfgs = [RunConfig.from_dict(tomllib.loads(c)) if isinstance(c, str) else c for c in cells]
    seeds = np.asarray(seeds, dtype=np.int64)
    steps = np.asarray(layout["step"])
    sizes = {"step": len(steps), "j": 2, "r": layout["r"], "i": layout["i"]}
    out = {}
    for name, (dims, dtype) in layout["vars"].items():
        shape = (len(cfgs), len(seeds)) + tuple(sizes[d] for d in dims)
        out[name] = np.full(shape, np.nan if np.dtype(dtype).kind == "f" else 0, dtype=dtype)
    groups: dict = {}
    for k, c in enumerate(cfgs):
        groups.setdefault(tuple(c.get(key) for key in SHAPE_KEYS), []).append(k)
    for members in groups.values():
        runs = driver.prepare_many([cfgs[k] for k in members for _ in seeds],
                                   np.tile(seeds, len(members)).tolist(), engine)
        rec = driver.run(runs, engine, record_rho=record_rho, quiet=True, backend=backend)
        if np.any(rec.status == driver.INTERRUPTED):   # never write a block half computed
            from .interrupt import Interrupted

            raise Interrupted("sweep block interrupted; finished blocks are kept")
        where = np.searchsorted(steps, rec.steps)
        if np.array_equal(where, np.arange(len(steps))):
            where = slice(None)       # the store's steps: one assignment for all cells below
        cells = np.asarray(members)
        for name, (dims, values) in recorded(rec):
            if name not in layout["vars"]:
                continue
            values = values.reshape((len(members), len(seeds)) + values.shape[1:])
            index = (slice(None),) + tuple(where if dim == "step" else slice(0, size)
                                           for dim, size in zip(dims[1:], values.shape[2:]))
            if isinstance(where, slice):
                out[name][(cells,) + index] = values
            else:                     # two index arrays (cells, steps): cell by cell
                for pos, k in enumerate(members):
                    out[name][k][index] = values[pos]
    return out


# ----------------------------------------------------------------------------------------
# executors


@contextlib.contextmanager
def _thread_env(threads: int):
    """Set NUMBA_NUM_THREADS (and the BLAS thread counts) for processes started inside."""
    keys = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    old = {k: os.environ.get(k) for k in keys}
    os.environ.update({k: str(threads) for k in keys})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _serial(tasks):
    for key, args in tasks:
        yield key, run_block(*args)


def _start_pool(workers: int):
    """A pool of ``workers`` local processes started with spawn (OpenMP in Numba is not
    fork-safe), each with NUMBA_NUM_THREADS = cores // workers set before Numba is imported.

    The processes are spawned now, by one :func:`~signoise.workers.ready` task each, so their
    start (interpreter, ``import signoise``) overlaps whatever this process does next."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from .workers import init, ready

    threads = max(1, _cores() // workers)
    with _thread_env(threads):
        pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=init)
        # with spawn, each submit that finds no idle worker starts one (while the env is set)
        for _ in range(workers):
            pool.submit(ready)
    return pool


def _processes(tasks, pool, workers: int):
    """Blocks on a started pool (:func:`_start_pool`), at most ``2 * workers`` in flight.

    The first ones are submitted now (not at the first ``next``), so they run while the caller
    creates the store; the caller shuts the pool down."""
    from concurrent.futures import FIRST_COMPLETED, wait

    pending = {}
    queue = iter(tasks)
    for key, args in itertools.islice(queue, 2 * workers):
        pending[pool.submit(run_block, *args)] = key

    def results():
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                key = pending.pop(fut)
                yield key, fut.result()
                for nkey, args in itertools.islice(queue, 1):
                    pending[pool.submit(run_block, *args)] = nkey
    return results()


def _dask(tasks, client):
    """Blocks as tasks on a Dask cluster the caller started; results come back here."""
    from distributed import as_completed

    futures = {}
    for key, args in tasks:
        futures[client.submit(run_block, *args, pure=False)] = key
    for fut in as_completed(futures):
        yield futures[fut], fut.result()
        fut.release()


# ----------------------------------------------------------------------------------------
# the driver


def sweep(cfg: RunConfig, store, workers: int | None = None, client=None,
          record_rho: str = "summary",
          engine: str = "gram", block: int | None = None, quiet: bool = False,
          backend: str = "numba"):
    """Run the grid × seeds of ``cfg.sweep`` into a resumable Zarr store; return it opened.

    Each cell is trained ``sweep.seeds`` times (seeds ``cfg.seed + k``) with
    :func:`~signoise.simulate_batch`; blocks of cells are written as they finish.
    Calling again with the same config on an existing store computes only the missing cells;
    a store made by another config is an error.

    Parameters
    ----------
    cfg : RunConfig
        The base run plus ``[sweep]``: ``seeds`` and ``grid`` (config key -> values).
    store : path-like
        The Zarr folder (created if missing, resumed if present).
    workers : int, optional
        Local worker processes (spawned; default: the cores available). ``1`` runs in this
        process. Each worker gets ``NUMBA_NUM_THREADS = cores // workers``.
    client : distributed.Client, optional
        Run the blocks on this Dask cluster instead (signoise never starts one).
    record_rho : {"summary", "full"}
        "summary" stores ``rho_bar_max``, ``rho_under_min``, ``rho_bar_mean`` over steps;
        "full" also stores ``rho (..., seed, step, j, r, i)``.
    engine, backend : str
        Passed to :func:`~signoise.simulate_batch` ("cupy": each block on the GPU; with a Dask
        cluster of one worker per device, several GPUs).
    block : int, optional
        Cells of the last grid axis per block (chunk); default about 1000 runs per block.
        Fixed when the store is created.
    quiet : bool
        No progress bar (there is none anyway when stderr is not a terminal).

    Returns
    -------
    xarray.Dataset
        The store, opened lazily: one dimension per grid axis (named by its key), ``seed``,
        ``step`` (``j``, ``r``, ``i``), the variables of ``simulate_batch``, and ``done``.
    """
    from . import store as st

    if record_rho not in ("summary", "full"):
        reject("record_rho", record_rho, "'summary' or 'full'")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        reject("workers", workers, "an integer >= 1 or None")
    if client is not None and workers is not None:
        reject("workers", workers, "None when a Dask client is given (at most one of them)")
    path = Path(store)
    resuming = path.exists()
    pool, procs, submitted = None, 0, False
    if not resuming and client is None and (workers or _cores()) > 1:
        # a new store holds every block: if that is more than one, start the workers first,
        # so that their start-up overlaps the plan, the schema probe and the store's creation
        procs = min(workers or _cores(), _new_blocks(cfg, block))
        if procs > 1:
            pool = _start_pool(procs)
    try:
        p = plan(cfg)
        config_toml = cfg.to_toml()
        if not resuming:
            block = block or _default_block(p.shape, len(p.seeds))
            coords, variables = _schema(p, record_rho, engine, pool, procs)
            layout = _layout_of(coords, variables)
            todo = list(p.blocks(block))
        else:
            group = st.open_group(path, config_toml, record_rho, engine)
            block = int(group.attrs["block"])
            # a cell marked done whose chunks no longer read back is computed again
            done = st.done_mask(group) & ~st.verify(path)["damaged"]
            layout = _layout(group)
            todo = [r for r in p.blocks(block) if not done[r].all()]
        tasks = ((r, ([p.configs[c] for c in p.cells(r)], p.seeds, layout, record_rho, engine,
                      backend))
                 for r in todo)
        if client is not None:
            results = _dask(tasks, client)
        elif pool is None and ((workers or _cores()) == 1 or len(todo) <= 1):
            results = _serial(tasks)
        else:
            if pool is None:   # resuming: the pool fits the blocks left
                procs = min(workers or _cores(), len(todo))
                pool = _start_pool(procs)
            submitted = True
            results = _processes(tasks, pool, procs)
        if not resuming:   # while the first blocks compute
            st.create(path, coords, variables, _attrs(config_toml, record_rho, engine), block)
            group = st.open_group(path, config_toml, record_rho, engine)
        writer = st.Writer(group)
        total = sum(len(p.cells(r)) for r in todo)
        with progress(total, quiet, unit="cell") as bar:
            for region, arrays in results:
                shape = tuple(s.stop - s.start for s in region)
                st.write_block(writer, region, {k: v.reshape(shape + v.shape[1:])
                                                for k, v in arrays.items()})
                bar.update(int(np.prod(shape)))
                if interrupt.requested():   # stop between blocks; the rest are cancelled below
                    results.close()
                    raise interrupt.Interrupted(
                        f"sweep stopped with {int(st.done_mask(group).sum())} of "
                        f"{math.prod(p.shape)} cells done; run the same command again to resume")
    finally:
        if pool is not None:
            # blocks in flight finish (their results are dropped), queued ones are cancelled;
            # a sweep refused before its first block does not wait for the workers' start-up
            pool.shutdown(wait=submitted, cancel_futures=True)
    return st.open_sweep(path)


def _default_block(shape: tuple, seeds: int) -> int:
    """Cells of the last axis per block: about :data:`BLOCK_RUNS` runs."""
    return max(1, min(shape[-1], math.ceil(BLOCK_RUNS / seeds)))


def _new_blocks(cfg: RunConfig, block: int | None) -> int:
    """How many blocks a new store of ``cfg`` has (0 for a grid :func:`plan` refuses), from
    the axes' lengths alone: known before the cells are built."""
    try:
        shape = tuple(len(v) for v in cfg.sweep.axes().values())
        block = block or _default_block(shape, cfg.sweep.seeds)
        return math.prod(shape[:-1]) * math.ceil(shape[-1] / block)
    except Exception:  # noqa: BLE001 - plan() names what is wrong; no pool for such a grid
        return 0


def _schema(p: Plan, record_rho: str, engine: str, pool=None, procs: int = 0):
    """Coordinates and variables of the store, from one short probe run of the first cell
    (:func:`_probe`): on ``pool`` when given (one per worker, ``procs`` of them, which also
    loads each worker's compiled kernels before its first block; the first answer is used),
    else here."""
    args = (p.configs[0], int(p.seeds[0]), record_rho, engine)
    if pool is None:
        probed = _probe(*args)
    else:
        from concurrent.futures import FIRST_COMPLETED, wait

        futures = [pool.submit(_probe, *args) for _ in range(procs)]
        probed = next(iter(wait(futures, return_when=FIRST_COMPLETED)[0])).result()
    kinds = {(c.train.steps, c.train.record_every): c for c in p.configs}
    steps = np.unique(np.concatenate([schedule(c.train) for c in kinds.values()]))
    coords = {key: _coord(values) for key, values in p.axes.items()}
    coords.update(seed=p.seeds, step=steps, j=np.array([1, -1]),
                  r=np.arange(max(c.model.m for c in p.configs)))
    if record_rho == "full":
        coords["i"] = np.arange(max(c.data.n for c in p.configs))
    grid = tuple(p.axes)
    variables = {name: (grid + ("seed",) + dims, dtype, attrs)
                 for name, (dims, dtype, attrs) in probed.items()}
    variables["done"] = (grid, np.dtype(bool), {"long_name": "cell computed (all seeds)"})
    return coords, variables


def _probe(cfg: RunConfig, seed: int, record_rho: str, engine: str) -> dict:
    """The store's variables as ``simulate_batch`` makes them for ``cfg`` (one run, one step):
    name -> (dims after ``run``, dtype, attrs)."""
    from .simulate import simulate_batch

    probe = simulate_batch([cfg.updated({"train.steps": 1, "train.record_every": 1,
                                         "data.n_test": 1})], seeds=[seed],
                           engine=engine, record_rho=record_rho, quiet=True)
    out = {}
    for name, da in probe.data_vars.items():
        if (da.dims[:1] != ("run",) or not set(da.dims[1:]) <= {"step", "j", "r", "i"}
                or name in NOT_IN_STORE):
            continue
        dtype = da.dtype if da.dtype.kind in "fb" else np.dtype(np.int64)
        out[name] = (da.dims[1:], dtype, dict(da.attrs))
    return out


def _coord(values) -> np.ndarray:
    """An axis coordinate; strings as variable-length (zarr v3's specified string type)."""
    arr = np.asarray(values)
    return arr.astype(object) if arr.dtype.kind == "U" else arr


def _layout(group) -> dict:
    """What a worker needs to lay out its arrays like the store (read from the store)."""
    out = {"vars": {}, "step": np.asarray(group["step"][...]), "r": group["r"].shape[0],
           "i": group["i"].shape[0] if "i" in group else 0}
    for name, arr in group.arrays():
        dims = tuple(arr.metadata.dimension_names or ())
        if "seed" in dims and name != "seed":
            out["vars"][name] = (dims[dims.index("seed") + 1:], np.dtype(arr.dtype))
    return out


def _layout_of(coords: dict, variables: dict) -> dict:
    """:func:`_layout` of the store that ``store.create(path, coords, variables, ...)`` makes,
    without reading it (so the first blocks can start before it exists)."""
    out = {"vars": {}, "step": np.asarray(coords["step"]), "r": len(coords["r"]),
           "i": len(coords["i"]) if "i" in coords else 0}
    for name, (dims, dtype, _) in sorted(variables.items()):
        if "seed" in dims:
            out["vars"][name] = (tuple(dims[dims.index("seed") + 1:]), np.dtype(dtype))
    return out


def _attrs(config_toml: str, record_rho: str, engine: str) -> dict:
    import zarr

    from .results import version_attrs

    return {"config": config_toml, "rho": record_rho, **version_attrs(engine),
            "zarr_version": zarr.__version__}


__all__ = ["Plan", "plan", "run_block", "sweep"]
