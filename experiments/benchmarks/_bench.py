"""Shared helpers of the benchmark scripts: argument parsing, side-by-side timing, tables.

Timing protocol (every script): each contender is warmed up (compiled, caches filled), then
the contenders are timed in turn, round after round, so that machine noise hits them alike;
the table shows the median over rounds. Per-step times come from runs of many steps divided
by the step count, the count chosen so one timed call lasts about ``--budget`` seconds.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout

#: One BLAS/OpenMP thread for every contender unless the caller exported otherwise (before
#: NumPy, Numba or PyTorch is imported). On a loaded 2-core machine, two BLAS threads made
#: small products up to 25× slower for NumPy, Numba and PyTorch alike.
BLAS_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
for _var in BLAS_VARS:
    os.environ.setdefault(_var, "1")


def parser(doc: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    p.add_argument("--tiny", action="store_true", help="tiny sizes, one round (CI smoke test)")
    p.add_argument("--rounds", type=int, default=5, help="timed rounds (median reported)")
    p.add_argument("--budget", type=float, default=0.3, help="seconds per timed call")
    return p


def header(title: str) -> None:
    """Print the table title and the machine it ran on."""
    import numba
    import numpy as np

    print(f"## {title}\n")
    blas = ", ".join(f"{v}={os.environ.get(v, 'unset')}" for v in BLAS_VARS)
    print(f"python {platform.python_version()}, numpy {np.__version__}, numba "
          f"{numba.__version__}, {os.cpu_count()} cores, NUMBA_NUM_THREADS="
          f"{numba.config.NUMBA_NUM_THREADS}, {blas}\n")


def calibrate(fn, budget: float, start: int = 1, cap: int = 10**6) -> int:
    """A count k such that ``fn(k)`` takes about ``budget`` seconds (``fn`` is warm)."""
    k = start
    while True:
        t0 = time.perf_counter()
        fn(k)
        dt = time.perf_counter() - t0
        if dt >= budget / 4 or k >= cap:
            return max(1, min(cap, int(k * budget / max(dt, 1e-9))))
        k *= 4


def side_by_side(contenders: dict, rounds: int) -> dict:
    """Median seconds of each zero-argument callable, timed in turn for ``rounds`` rounds."""
    times = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def table(headers, rows) -> None:
    """Print a Markdown table (what the README shows)."""
    rows = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")
    print()


def bench_config(n: int, d: int, m: int, algorithm: dict | None = None, **data):
    """A GD-stable config at any size: σ_p = 1, SNR 0.05, σ0 = 1/√d, η = 0.5/d (q = 3)."""
    import signoise as sn

    base = {"seed": 0,
            "data": {"n": n, "d": d, "snr": 0.05, "sigma_p": 1.0, "n_test": 100, **data},
            "model": {"m": m, "q": 3.0, "sigma0": d ** -0.5},
            "algorithm": algorithm or {"name": "gd"},
            "train": {"lr": 0.5 / d, "steps": 10, "record_every": 10}}
    return sn.RunConfig.from_dict(base)


def engine_stepper(cfg, problem, engine: str):
    """``run(k)``: k steps of a signoise engine's Runner from its initial state (compiled first)."""
    from signoise.data import STREAM_ALGO, rng_for
    from signoise.engines import get_engine
    from signoise.algorithms import run_record

    E = get_engine(engine)
    runner = E.Runner(E.prepare(problem), run_record(cfg), rng_for(0, STREAM_ALGO))
    start = tuple(x.copy() for x in runner.state)

    def run(k):
        runner.state = tuple(x.copy() for x in start)
        runner.t = 0
        done, status = runner.advance(k)
        if done != k:
            raise RuntimeError(f"{engine} stopped after {done} of {k} steps (status {status})")

    run(2)
    return run
