"""The entry points: :func:`simulate` (one run) and :func:`simulate_batch` (many), both thin
layers over the one driver (:mod:`signoise.driver`) and the one Dataset builder
(:mod:`signoise.results`). A single run *is* a batch of one, so the two agree by construction.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from . import driver, results
from .constraints import reject
from .data import Problem
from .interrupt import Interrupted


def as_config(cfg):
    """A :class:`~signoise.config.RunConfig`, or a path to a TOML file holding one."""
    from .config import RunConfig, load_config

    if isinstance(cfg, RunConfig):
        return cfg
    if isinstance(cfg, (str, Path)):
        return load_config(cfg)
    reject("cfg", type(cfg).__name__, "a RunConfig or the path of a TOML config file", TypeError)


def simulate(cfg, engine: str = "gram", problem: Problem | None = None, seed: int | None = None,
             quiet: bool = False, start: xr.Dataset | None = None,
             backend: str = "numba") -> xr.Dataset:
    """Train one network and record its signal-noise decomposition over iterations.

    Parameters
    ----------
    cfg : RunConfig or path
        The run (data, model, algorithm, train sections), or a TOML file.
    engine : {"gram", "weights"}
        "gram" trains the coefficients γ, ρ at O(m n²) per step (SPEC §3); "weights" trains
        the explicit filters W (2, m, d). On the same problem both give the same numbers.
    problem : Problem, optional
        Explicit data and initial weights (e.g. from :func:`sample_problem` or built by hand);
        drawn from ``cfg`` and ``seed`` if not given.
    seed : int, optional
        Overrides ``cfg.seed`` (the stored config then holds this seed).
    quiet : bool
        Never show a progress bar.
    start : xarray.Dataset, optional
        A previous result of this run to continue from (its final state and random stream) up
        to ``cfg.train.steps``; the config may differ from the one that made ``start`` only in
        its ``train`` section. Two half runs equal one full run, bit for bit.
    backend : {"numba", "numpy", "cupy"}
        "numba" (default): the compiled kernels. "numpy", "cupy": the array-API engine
        (:mod:`signoise.engines.xp`; gram engine, float64, agrees with numba to 1e-10).

    Returns
    -------
    xarray.Dataset
        ``gamma (step, j, r)``, ``rho (step, j, r, i)``, the metrics of
        :data:`~signoise.diagnostics.METRICS` over ``step``, summaries ``gamma_max (step,
        j)``, ``rho_bar_max``, ``rho_under_min``, ``rho_bar_mean`` (step), labels ``y``,
        ``y_true`` (i), ``diverged``, ``stopped_at``, the final state ``state_*``. Attributes:
        the config as TOML, seed, engine, status ("finished", "converged", "diverged") and
        versions. A run that stops early keeps its final state at later records (converged)
        or has NaN there (diverged: every record at and after ``stopped_at``).

    Raises
    ------
    signoise.interrupt.Interrupted
        When interrupted (SIGINT/SIGTERM under :func:`signoise.interrupt.handle_signals`);
        its ``partial`` holds what was computed, status "interrupted".
    """
    cfg = as_config(cfg)
    if seed is not None and int(seed) != cfg.seed:
        cfg = cfg.updated({"seed": int(seed)})
    run = driver.prepare(cfg, cfg.seed, engine, problem)
    begin = None if start is None else _start(start, cfg, engine)
    rec = driver.run([run], engine, record_rho="full", quiet=quiet, start=begin, backend=backend)
    ds = results.single(results.build(rec, [run], engine, backend), cfg)
    if rec.status[0] == driver.INTERRUPTED:
        raise Interrupted(f"interrupted at step {int(rec.stopped_at[0])}", partial=ds)
    return ds


def _start(ds, cfg, engine) -> dict:
    """The driver's starting point from a previous result ``ds`` of the same run."""
    prev = results.config_of(ds)
    same = {k: v for k, v in prev.to_dict().items() if k != "train"}
    if same != {k: v for k, v in cfg.to_dict().items() if k != "train"}:
        reject("start", "<a result of another run>", "a result of the same config and seed "
               "(only the train section may differ)")
    if ds.attrs.get("engine") != engine:
        reject("engine", engine, f"{ds.attrs.get('engine')!r}, the engine of the start result")
    if ds.attrs.get("status") == "diverged":
        reject("start", "<a diverged run>", "a finite state to continue from")
    t = int(ds["stopped_at"])
    if t > cfg.train.steps:
        reject("train.steps", cfg.train.steps, f"an integer >= {t}, the step the start run reached")
    state = {name[len("state_"):]: ds[name].values[None] for name in ds.data_vars
             if name.startswith("state_") and name != "state_rng"}
    return {"t": t, "state": state, "rng_states": [str(ds["state_rng"].values)]}


#: simulate_batch trains at most this many runs at once on the Numba engines: each block is
#: drawn, trained and recorded before the next is drawn, so memory stays that of one block
#: (10⁴ runs with their own seeds at the Kou setting held 10.7 GB at once; issue 11). The
#: numbers do not depend on it: runs are independent, whatever the batch.
BLOCK_RUNS = 1000


def simulate_batch(cfgs, seeds=None, engine: str = "gram", record_rho: str = "summary",
                   quiet: bool = False, backend: str = "numba") -> xr.Dataset:
    """Many runs of equal shapes in one compiled call; each run's numbers equal
    :func:`simulate`'s, whatever the thread count.

    Parameters
    ----------
    cfgs : RunConfig or sequence of RunConfig
        One config per run, or one config for all. Runs may differ in any value (‖μ‖, d, lr,
        flip, algorithm, ...) but must share n, m, n_test, steps and record_every.
    seeds : sequence of int, optional
        One seed per run (default: each config's seed).
    engine : {"gram", "weights"}
        "gram" advances all runs in one kernel, ``prange`` over runs; "weights" one by one.
    record_rho : {"summary", "full"}
        "full" keeps ``rho (run, step, j, r, i)``; "summary" keeps only ``rho_bar_max``,
        ``rho_under_min`` and ``rho_bar_mean`` (never the full array), so 10^5 runs fit in memory.
    backend : {"numba", "numpy", "cupy"}
        As in :func:`simulate`; "cupy" advances the whole batch on the GPU (one algorithm per
        batch). "numba" trains blocks of at most :data:`BLOCK_RUNS` runs in turn; an interrupt
        stops at the current block (its runs marked "interrupted", later blocks not started
        and absent from the partial result).

    Returns
    -------
    xarray.Dataset
        The variables of :func:`simulate` with a leading ``run`` dimension, coordinates
        ``seed (run)`` and, for each config key that differs between runs, that key (e.g.
        ``data.mu_norm (run)``); per-run ``config`` (TOML; see :func:`signoise.config_of`),
        ``status``, ``diverged`` and ``stopped_at``; all on the full schedule of recorded steps.
    """
    cfgs, seeds = _normalise(cfgs, seeds, record_rho)
    if backend != "numba" or len(cfgs) <= BLOCK_RUNS:
        runs = driver.prepare_many(cfgs, seeds, engine)
        rec = driver.run(runs, engine, record_rho=record_rho, quiet=quiet, backend=backend)
    else:
        runs, recs = [], []
        with driver.progress(len(cfgs), quiet, unit="run") as bar:
            for a in range(0, len(cfgs), BLOCK_RUNS):
                block = driver.prepare_many(cfgs[a:a + BLOCK_RUNS], seeds[a:a + BLOCK_RUNS],
                                            engine)
                recs.append(driver.run(block, engine, record_rho=record_rho, quiet=True,
                                       backend=backend, warn=False))
                driver.keep_labels(block)
                runs += block
                bar.update(len(block))
                if np.any(recs[-1].status == driver.INTERRUPTED):
                    break
        rec = driver.join(recs, runs)
    ds = results.build(rec, runs, engine, backend)
    if np.any(rec.status == driver.INTERRUPTED):
        left = len(cfgs) - len(runs)
        raise Interrupted(f"interrupted at step {int(rec.stopped_at.max())}"
                          + (f"; {left} runs not started" if left else ""), partial=ds)
    return ds


def _normalise(cfgs, seeds, record_rho):
    if not isinstance(cfgs, (list, tuple)):
        cfgs = [cfgs] * (1 if seeds is None else len(seeds))
    cfgs = [as_config(c) for c in cfgs]
    seeds = [c.seed for c in cfgs] if seeds is None else [int(s) for s in seeds]
    if not cfgs or len(seeds) != len(cfgs):
        reject("seeds", len(seeds), f"one seed per config ({len(cfgs)} configs, at least one)")
    if record_rho not in ("summary", "full"):
        reject("record_rho", record_rho, "'summary' or 'full'")
    driver.check_shared(cfgs)
    return cfgs, seeds


__all__ = ["as_config", "simulate", "simulate_batch"]
