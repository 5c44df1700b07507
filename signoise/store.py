"""The sweep store: one Zarr group per sweep that ``xarray.open_dataset`` reads directly.

Layout: one dimension per grid axis (named by its config key, e.g. ``data.mu_norm``), then
``seed``, ``step`` (and ``j``, ``r``, ``i`` where a variable has them). Every variable is
chunked by *block*: one index on each grid axis but the last, a fixed run of cells on the last
axis, all seeds and steps. A block is the unit of work and of writing. The boolean ``done``
(grid axes) is written after a block's data, so a crash between the two only costs that block
again; zarr >= 3 writes each chunk file atomically (temporary file, then rename), and the
store itself is created in a temporary folder and renamed into place, so a reader never sees
a half-written store or chunk (DESIGN.md, reliability contract).
"""

from __future__ import annotations

import os
import shutil
import tomllib
import warnings
from pathlib import Path

import numpy as np

from .constraints import reject

#: Version of the layout written here; a store with another version is refused.
FORMAT = 1


def _zarr():
    import zarr

    return zarr


def create(path, coords: dict, variables: dict, attrs: dict, block: int):
    """Write an empty store (metadata and coordinates only) at ``path``, atomically.

    Parameters
    ----------
    path : path-like
        Target folder; must not exist.
    coords : dict
        Dimension name -> 1-D numpy values, grid axes first, in order, then ``seed``, ``step``,
        ``j``, ``r`` (and ``i``).
    variables : dict
        Name -> (dims, dtype, attrs); every ``dims`` starts with all grid axes and ``seed``
        except ``done``, which has the grid axes only.
    attrs : dict
        Store attributes (config TOML, versions, ...).
    block : int
        Cells of the last grid axis per chunk.
    """
    import xarray as xr

    path = Path(path)
    tmp = path.with_name(f".{path.name}.creating-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    grid = [d for d in coords if d not in ("seed", "step", "j", "r", "i")]
    data, encoding = {}, {}
    for name, (dims, dtype, vattrs) in variables.items():
        shape = tuple(len(coords[d]) for d in dims)
        fill = _fill(dtype)
        # a zero-stride view: no memory, and zarr skips chunks equal to the fill value
        data[name] = xr.Variable(dims, np.broadcast_to(np.asarray(fill, dtype=dtype), shape),
                                 attrs=vattrs)
        chunks = tuple(1 if d in grid[:-1] else block if d == grid[-1] else len(coords[d])
                       for d in dims)
        encoding[name] = {"chunks": chunks}
        if np.dtype(dtype).kind == "f":
            encoding[name]["_FillValue"] = np.nan
    ds = xr.Dataset(data, coords={k: np.asarray(v) for k, v in coords.items()},
                    attrs={**attrs, "signoise_store_format": FORMAT, "block": block})
    with warnings.catch_warnings():  # consolidated metadata is not in the v3 spec (yet): fine,
        warnings.filterwarnings("ignore", message=".*[Cc]onsolidated metadata")  # it never changes
        ds.to_zarr(tmp, mode="w-", encoding=encoding, zarr_format=3, consolidated=True)
    os.replace(tmp, path)


def _fill(dtype):
    kind = np.dtype(dtype).kind
    return np.nan if kind == "f" else False if kind == "b" else 0


def open_group(path, config_toml: str, rho: str, engine: str = "gram"):
    """Open an existing store for writing after checking it holds this very sweep.

    Raises
    ------
    ConfigError
        When the store was made by another config (the differing keys are named), another
        ``rho`` mode or engine, or is not a signoise store.
    """
    zarr = _zarr()
    try:
        group = zarr.open_group(str(path), mode="r+")
    except Exception as exc:  # noqa: BLE001 - any failure means "not a store we can use"
        reject("store", str(path), f"a readable signoise sweep store ({exc})")
    attrs = dict(group.attrs)
    if attrs.get("signoise_store_format") != FORMAT:
        reject("store", str(path), f"a signoise sweep store of format {FORMAT} (found "
               f"{attrs.get('signoise_store_format')!r}); choose another -o")
    if attrs.get("config") != config_toml:
        diff = _diff(tomllib.loads(attrs.get("config", "")), tomllib.loads(config_toml))
        reject("store", str(path), "a store of this sweep's config (it holds another: differing "
               f"keys {', '.join(diff) or '?'}); resume it with its own config or write to a new "
               "store")
    for key, value in (("rho", rho), ("engine", engine)):
        if attrs.get(key) != value:
            name = "record_rho" if key == "rho" else key
            reject(name, value, f"{attrs.get(key)!r}, the {name} the store {path} was made with")
    return group


def _diff(a: dict, b: dict, prefix="") -> list[str]:
    keys = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            keys += _diff(va, vb, f"{prefix}{k}.")
        elif va != vb:
            keys.append(f"{prefix}{k}")
    return keys


def done_mask(group) -> np.ndarray:
    """The boolean ``done`` array over the grid axes."""
    return np.asarray(group["done"][...], dtype=bool)


class Writer:
    """The arrays of an open store, opened once for a whole sweep and written block by block.

    ``group[name]`` reads an array's metadata again on every access, and each assignment is
    a round trip to zarr's event loop; a :class:`Writer` looks the arrays up once and writes a
    block's variables concurrently in one round trip, then ``done`` in a second (zarr's
    asynchronous array API, ``zarr.Array.async_array``). The bytes written are those of
    ``group[name][region] = values``: same arrays, codecs and chunks.
    """

    def __init__(self, group):
        self.group = group
        self.arrays = {name: arr.async_array for name, arr in group.arrays()}

    def write(self, region: tuple, arrays: dict):
        """Write ``arrays`` (name -> values shaped like ``region``) into ``region``, then mark
        its cells done; ``done`` is written only once every variable's chunks are."""
        run = _sync()
        shape = tuple(s.stop - s.start for s in region)
        done = np.ones(shape, dtype=bool)
        if run is None:   # no access to zarr's event loop: one synchronous write per array
            for name, values in arrays.items():
                self.group[name][region] = values
            self.group["done"][region] = done
            return
        run(_gather([self.arrays[name].setitem(region, values)
                     for name, values in arrays.items()]))
        run(self.arrays["done"].setitem(region, done))


async def _gather(writes):
    import asyncio

    # wait for all writes, then raise the first error: no write is still running after this
    results = await asyncio.gather(*writes, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


def _sync():
    """zarr's own sync-over-async bridge (what ``zarr.Array.__setitem__`` runs on), or None.
    zarr 3.1 has no public name for it yet (zarr-developers/zarr-python#3859, #3997)."""
    try:
        from zarr.core.sync import sync
    except ImportError:  # pragma: no cover - a zarr that moved it: fall back to plain writes
        return None
    return sync


def write_block(group, region: tuple, arrays: dict):
    """Write one block's variables into ``region`` (a tuple of slices over the grid axes),
    then mark its cells done. ``arrays`` maps names to arrays shaped like the region.

    ``group`` is a :class:`Writer` (a sweep opens one for all its blocks) or a zarr group
    (opened into a Writer for this block only)."""
    writer = group if isinstance(group, Writer) else Writer(group)
    writer.write(region, arrays)


def open_checked(path):
    """:func:`open_sweep` after :func:`verify`: a store with damaged chunks is refused in one
    line naming the file and what to do, before any figure is drawn from it."""
    from .io import DamagedInputError

    health = verify(path)
    if health["damaged"].any():
        raise DamagedInputError(
            f"{path}: {int(health['damaged'].sum())} cells have chunks that do not read back; "
            f"`signoise verify {path}` lists the store's health and running `signoise sweep` "
            "again with its config recomputes them")
    return open_sweep(path)


def open_sweep(path):
    """Open a sweep store as an ``xarray.Dataset`` (lazily; no dask needed).

    Cells not yet computed hold NaN (``done`` is False there).
    """
    import xarray as xr

    return xr.open_dataset(path, engine="zarr", chunks=None, consolidated=False)


def cell_statistic(ds, var: str = "test_error", stat: str = "mean", step: int = -1):
    """Reduce ``var`` at one recorded step over seeds: a DataArray over the grid axes.

    Parameters
    ----------
    ds : xarray.Dataset
        A sweep (from :func:`open_sweep`).
    var : str
        A variable with a ``seed`` dimension, e.g. "test_error", "rho_bar_max".
    stat : str
        "mean", "median", "std", "spread" (max − min over seeds) or "qX" for the quantile X
        in [0, 1], e.g. "q0.9".
    step : int
        Position on the ``step`` axis (default: the last recorded step).

    Returns
    -------
    xarray.DataArray
        The statistic over the runs that did not diverge, with the companion coordinate
        ``diverged_fraction`` (grid axes): the fraction of a cell's computed runs that diverged
        (``diverged`` is True, or ``var`` is NaN at ``step``). Diverged runs are never folded in
        as a score: a cell whose runs all diverged has a NaN statistic and fraction 1. Cells not
        yet computed have NaN for both.
    """
    if var not in ds:
        reject("value", var, "one of " + ", ".join(sorted(v for v in ds.data_vars
                                                          if "seed" in ds[v].dims)))
    da = ds[var]
    if "step" in da.dims:
        da = da.isel(step=step)
    for extra in ("j", "r", "i"):
        if extra in da.dims:
            da = da.max(extra, skipna=False)
    # A run counts as diverged if the store says so or its metric is NaN there: a NaN seed is
    # reported, never dropped silently (issue 12).
    bad = da.isnull()
    if "diverged" in ds and "seed" in ds["diverged"].dims:
        bad = bad | ds["diverged"].astype(bool)
    if "done" in ds:
        computed = ds["done"].astype(bool)
        bad = bad & computed
    else:
        computed = None
    fraction = bad.mean("seed").astype(float)
    if computed is not None:
        fraction = fraction.where(computed)
    da = da.where(~bad)
    if stat == "mean":
        out = da.mean("seed")
    elif stat == "median":
        out = da.median("seed")
    elif stat == "std":
        out = da.std("seed")
    elif stat == "spread":
        out = da.max("seed") - da.min("seed")
    elif stat.startswith("q"):
        try:
            q = float(stat[1:])
        except ValueError:
            q = -1.0
        if not 0.0 <= q <= 1.0:
            reject("stat", stat, "'qX' with X in [0, 1]")
        out = da.quantile(q, dim="seed").drop_vars("quantile")
    else:
        reject("stat", stat, "'mean', 'median', 'std', 'spread' or 'qX'")
    out.attrs.update(da.attrs, stat=stat, variable=var)
    fraction.attrs = {"long_name": "fraction of runs that diverged"}
    out = out.assign_coords(diverged_fraction=fraction.drop_vars(
        [c for c in fraction.coords if c not in out.dims]))
    return out


def verify(path) -> dict:
    """Read back every chunk of a sweep store and report its health.

    Returns
    -------
    dict
        ``done``, ``missing`` and ``damaged``: boolean arrays over the grid axes. A cell is
        damaged when a chunk that holds it cannot be read (a truncated or corrupted file).

    Raises
    ------
    DamagedInputError
        ``path`` is not a readable store (no ``done`` array).
    """
    import itertools

    import zarr

    from .io import DamagedInputError

    try:
        group = zarr.open_group(str(path), mode="r")
        done = np.asarray(group["done"][...], dtype=bool)
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise DamagedInputError(f"{path}: not a readable signoise sweep store "
                                f"({type(exc).__name__}: {exc})") from exc
    damaged = np.zeros(done.shape, dtype=bool)
    g = done.ndim
    for name, arr in group.arrays():
        if name == "done" or arr.ndim < g or tuple(arr.shape[:g]) != done.shape:
            continue
        steps = arr.chunks[:g]
        for start in itertools.product(*(range(0, n, c) for n, c in zip(done.shape, steps))):
            region = tuple(slice(a, a + c) for a, c in zip(start, steps))
            try:
                arr[region]
            except Exception:  # noqa: BLE001 - any codec/IO failure: this chunk is damaged
                damaged[region] = True
    return {"done": done, "missing": ~done, "damaged": damaged & done}


__all__ = ["Writer", "cell_statistic", "create", "done_mask", "open_group", "open_sweep", "verify", "write_block"]
