"""Run several checks, print the table, write one figure and one data file per check and a
JSON report."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ..io import atomic_write_bytes
from .registry import REGISTRY, check


def _one(args):
    name, size, backend = args
    return check(name, size, backend=backend)


def table(results) -> str:
    """A plain-text table: name, measured value ± uncertainty, verdict, where, runtime, claim."""
    rows = [("check", "value ± unc.", "verdict", "where", "time", "claim")]
    for r in results:
        rows.append((r.name, f"{r.value:.4g} ± {r.uncertainty:.2g}", r.verdict, r.where or "-",
                     f"{r.runtime:.1f}s", r.claim))
    widths = [max(len(row[k]) for row in rows) for k in range(5)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row[:5], widths)) + "  " + row[5]
             for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def report(results, size: str) -> dict:
    """The machine-readable report: every check's record plus package versions."""
    import numba
    import numpy
    import xarray

    from .. import __version__

    return {"size": size,
            "versions": {"signoise": __version__, "numpy": numpy.__version__,
                         "numba": numba.__version__, "xarray": xarray.__version__,
                         "python": sys.version.split()[0]},
            "checks": [r.to_dict() for r in results]}


def run_checks(names=None, size: str = "quick", out=None, workers: int = 1,
               progress: bool = False, backend: str = "numba"):
    """Run the named checks (all by default) at ``size``.

    With ``out`` a folder, writes there, as each check ends: ``NAME.png`` (its figure),
    ``NAME.nc`` (its data, to re-analyse) and ``report.json`` (every check finished so far), each
    atomically, so an interrupted run keeps what it finished. ``workers`` > 1 runs checks in worker processes; each check's result depends only on its
    fixed seeds, never on the worker count. Returns the list of :class:`CheckResult`.
    """
    names = list(names or REGISTRY)
    for n in names:
        if n not in REGISTRY:
            from ..constraints import reject
            reject("check", n, "one of " + ", ".join(map(repr, REGISTRY)))
    jobs = [(n, size, backend) for n in names]
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(jobs), desc="checks", unit="check", file=sys.stderr)
    results = []
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)

    def finished(r):
        results.append(r)
        if out is not None:
            save_result(r, out)
            atomic_write_bytes(out / "report.json",
                               json.dumps(report(results, size), indent=1).encode())
        bar and bar.update()

    if workers > 1 and len(jobs) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        # spawn: Numba's OpenMP layer is not fork-safe (DESIGN.md, known pitfalls)
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            for r in pool.map(_one, jobs):
                finished(r)
    else:
        for job in jobs:
            finished(_one(job))
    bar and bar.close()
    return results


def _netcdf_attrs(attrs) -> dict:
    """Attributes netCDF can store: numbers, strings and lists of them; the rest as text."""
    import numpy as np

    def ok(v):
        if isinstance(v, (str, int, float, np.integer, np.floating)) and not isinstance(v, bool):
            return True
        return isinstance(v, (list, tuple, np.ndarray)) and len(v) > 0 and all(
            isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)
            for x in v)
    return {k: (v if ok(v) else str(v)) for k, v in attrs.items()}


def save_result(r, out) -> None:
    """Write one check's figure ``NAME.png`` and data ``NAME.nc`` (with its verdict, value,
    uncertainty and where as attributes; none without data) into the folder ``out``, each
    atomically."""
    from ..io import save_dataset

    out = Path(out)
    fig = out / f"{r.name}.png"
    tmp = out / f".{r.name}.tmp.png"
    r.figure(tmp)
    os.replace(tmp, fig)
    if r.data is None:
        return
    data = r.data.copy()
    data.attrs = _netcdf_attrs({**data.attrs, "check": r.name, "size": r.size,
                                "verdict": r.verdict, "value": float(r.value),
                                "uncertainty": float(r.uncertainty), "where": r.where})
    for name in list(data.variables):
        data[name].attrs = _netcdf_attrs(data[name].attrs)
    save_dataset(data, out / f"{r.name}.nc", overwrite=True)
