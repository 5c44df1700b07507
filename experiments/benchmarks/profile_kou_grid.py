"""Profile of the Kou theory-faithful full grid: where the time of a slice goes, by phase.

    NUMBA_NUM_THREADS=1 python experiments/benchmarks/profile_kou_grid.py [--rows 10] [--cprofile]

Runs ``--rows`` values of d (every ‖μ‖ and seed: 1000 runs per row) of
experiments/kou2023_theory_full.toml serially in this process, as one sweep worker does
(one Numba thread), and prints the wall time of each phase: drawing the data (the samplers),
set-up of the shared draws (``prepare_many`` less the draws), stacking the Batch, the training
kernel, evaluation (test outputs and metrics), the ρ coefficients and summaries, stacking the
records into the store's layout (``run_block`` less the above) and the Zarr writes. The phases
are timed by wrapping the functions that do them; ``--cprofile`` prints the top functions of a
cProfile run instead (slower: its overhead inflates the Python-side phases).
"""

from __future__ import annotations

import argparse
import collections
import functools
import shutil
import tempfile
import time
from pathlib import Path

import _bench  # noqa: F401  (one BLAS thread, checkout on the path)

CONFIG = Path(__file__).resolve().parents[1] / "kou2023_theory_full.toml"


def slice_config(rows: int):
    import signoise as sn

    cfg = sn.load_config(CONFIG)
    d = cfg.to_dict()
    d["sweep"]["grid"]["data.d"] = cfg.sweep.axes()["data.d"][:rows]
    return sn.RunConfig.from_dict(d)


def timed_phases():
    """Wrap the phase functions; return the dict they add their wall times to."""
    from signoise import driver, store, sweeps, wishart
    from signoise.engines import gram

    spent = collections.defaultdict(float)
    stack = []

    def wrap(owner, name, phase):
        fn = getattr(owner, name)

        @functools.wraps(fn)
        def inner(*a, **k):
            t0 = time.perf_counter()
            stack.append(phase)
            try:
                return fn(*a, **k)
            finally:
                stack.pop()
                dt = time.perf_counter() - t0
                spent[phase] += dt
                if stack:                 # time counted in the enclosing phase's own total
                    spent[stack[-1]] -= dt
        setattr(owner, name, inner)

    wrap(sweeps, "run_block", "records: stacking into the store layout")
    wrap(driver, "prepare_many", "set-up: shared draws, μ entries (with_signal)")
    wrap(wishart, "sample_reduced", "draw data (Wishart: labels, Bartlett, test coords)")
    wrap(gram, "prepare", "set-up: Gram assembly (gram.prepare)")
    wrap(driver, "run", "driver loop (rest)")
    wrap(gram.Batch, "__init__", "Batch stacking")
    wrap(gram.Batch, "advance", "kernel: advance")
    wrap(gram.Batch, "evaluate", "evaluation (test outputs + metrics)")
    wrap(gram.Batch, "coefficients", "coefficients γ, ρ")
    wrap(driver, "rho_summaries", "ρ summaries")
    if hasattr(gram.Batch, "summaries"):   # this version: both at once, compiled
        wrap(gram.Batch, "summaries", "γ and ρ summaries (compiled)")
    wrap(store, "write_block", "Zarr writes")
    return spent


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=10)
    p.add_argument("--cprofile", action="store_true")
    args = p.parse_args(argv)
    import signoise as sn

    warm = slice_config(1)
    d = warm.to_dict()
    d["sweep"]["grid"]["data.mu_norm"] = [0.0, 1.0]
    tmp = tempfile.mkdtemp(prefix="prof_kou_")
    try:
        sn.sweep(sn.RunConfig.from_dict(d), Path(tmp) / "warm.zarr", workers=1, quiet=True)
        cfg = slice_config(args.rows)
        store = Path(tmp) / "kou.zarr"
        if args.cprofile:
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.enable()
            sn.sweep(cfg, store, workers=1, quiet=True)
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)
            return 0
        spent = timed_phases()
        t0 = time.perf_counter()
        sn.sweep(cfg, store, workers=1, quiet=True)
        total = time.perf_counter() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    runs = args.rows * 1000
    print(f"Kou theory full grid, {args.rows} rows ({runs} runs), one process, serial: "
          f"{total:.2f} s, {total / runs * 1e6:.0f} µs per run\n")
    rows = sorted(spent.items(), key=lambda kv: -kv[1])
    rows.append(("other (sweep set-up, schema probe, ...)", total - sum(spent.values())))
    print("| phase | time | µs per run | share |")
    print("|---|---|---|---|")
    for phase, t in rows:
        print(f"| {phase} | {t:.2f} s | {t / runs * 1e6:.0f} | {100 * t / total:.0f} % |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
