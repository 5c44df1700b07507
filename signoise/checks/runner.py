"""Run several checks, print the table, write one figure per check and a JSON report."""

from __future__ import annotations

import json
import sys
from pathlib import Path

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

    With ``out`` a folder, writes ``report.json`` and ``NAME.png`` per check there.
    ``workers`` > 1 runs checks in worker processes; each check's result depends only on its
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
    if workers > 1 and len(jobs) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        # spawn: Numba's OpenMP layer is not fork-safe (DESIGN.md, known pitfalls)
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            for r in pool.map(_one, jobs):
                results.append(r)
                bar and bar.update()
    else:
        for job in jobs:
            results.append(_one(job))
            bar and bar.update()
    bar and bar.close()
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        for r in results:
            r.figure(out / f"{r.name}.png")
        (out / "report.json").write_text(json.dumps(report(results, size), indent=1))
    return results
