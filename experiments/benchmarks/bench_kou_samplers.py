"""The Kou et al. (2023) phase-diagram grid, explicit against Wishart sampler.

(bench_kou_grid.py times the same grid as a sweep, with its store; this script times the
runs alone, through ``simulate_batch``, with both samplers side by side.)

Grid (experiments/kou2023_theory.toml of the sweeps issue): d = 100 + 10t (t = 0..99),
‖μ‖ = 0.1s (s = 0..99), 10 seeds per cell: 10^5 runs of 100 GD steps (n = 20, m = 10, ReLU,
1000 test points; only the final test error is kept, so runs record steps 0 and 100 unless
``--record-every`` says otherwise). Runs go through ``simulate_batch`` one d value at a time
(1000 runs per batch). By default every ``--stride``-th d value is run with both samplers and the time is
scaled to the full grid; ``--stride 1`` runs it all.

    python experiments/benchmarks/bench_kou_samplers.py --stride 20
"""

from __future__ import annotations

import os
import time

import _bench
import numpy as np
from bench_batch import kou_config

D_VALUES = [100 + 10 * t for t in range(100)]
MU_VALUES = [0.1 * s for s in range(100)]
SEEDS = 10


def run_cell_row(sampler, d, mu_values, seeds, n_test, record_every):
    """Final test errors (μ, seed) of one d value: one ``simulate_batch`` call."""
    import signoise as sn

    base = kou_config(d=d, n_test=n_test, sampler=sampler, record_every=record_every)
    cfgs = [base.updated({"data.mu_norm": mu}) for mu in mu_values for _ in range(seeds)]
    ds = sn.simulate_batch(cfgs, list(range(seeds)) * len(mu_values), engine="gram",
                           record_rho="summary", quiet=True)
    return ds.test_error.isel(step=-1).values.reshape(len(mu_values), seeds)


def run_grid(sampler, d_values, mu_values, seeds, n_test, record_every, workers):
    """Final test errors (d, μ, seed), the wall time and this process's CPU time.

    With ``workers`` > 1 the d values go to spawned processes with one Numba thread each
    (what a sweep does); their CPU time is not in this process's.
    """
    args = (mu_values, seeds, n_test, record_every)
    t0, c0 = time.perf_counter(), time.process_time()
    if workers > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            rows = list(pool.map(run_cell_row, [sampler] * len(d_values), d_values,
                                 *([a] * len(d_values) for a in args)))
    else:
        rows = [run_cell_row(sampler, d, *args) for d in d_values]
    return np.array(rows), time.perf_counter() - t0, time.process_time() - c0


def main(argv=None):
    p = _bench.parser(__doc__)
    p.add_argument("--stride", type=int, default=10, help="run every k-th d value")
    p.add_argument("--record-every", type=int, default=100, help="train.record_every")
    p.add_argument("--samplers", default="explicit,wishart", help="comma-separated")
    p.add_argument("--workers", type=int, default=1,
                   help="processes, one Numba thread each (process start-up is timed too)")
    args = p.parse_args(argv)
    import signoise as sn

    if args.tiny:
        d_values, mu_values, seeds, n_test = [100, 200], [0.0, 5.0], 2, 100
    else:
        d_values, mu_values, seeds, n_test = D_VALUES[::args.stride], MU_VALUES, SEEDS, 1000
    full = len(D_VALUES) * len(MU_VALUES) * SEEDS
    _bench.header("Kou et al. grid: 10^5 runs x 100 GD steps, explicit vs Wishart sampler")
    sn.simulate_batch([kou_config(n_test=n_test)], [0])   # compile
    print(f"record_every = {args.record_every}, stride = {args.stride} over d, "
          f"workers = {args.workers}\n")
    if args.workers > 1:
        os.environ["NUMBA_NUM_THREADS"] = "1"   # read by the spawned workers' Numba
    runs = len(d_values) * len(mu_values) * seeds
    rows, errs = [], {}
    for sampler in args.samplers.split(","):
        errs[sampler], sec, cpu = run_grid(sampler, d_values, mu_values, seeds, n_test,
                                           args.record_every, args.workers)
        rows.append([sampler, runs, f"{sec:.1f} s", f"{cpu:.1f} s", f"{runs / sec:.0f}",
                     f"{sec * full / runs:.0f} s", f"{errs[sampler].mean():.4f}"])
    _bench.table(["sampler", "runs timed", "wall time", "CPU time", "runs/s",
                  "full grid (10^5 runs, scaled)", "mean final test error"], rows)
    print("CPU time: this process's user + system time, all threads (wall time well above "
          "CPU time / threads means the machine was shared; with --workers the work is in "
          "the workers and not counted).")
    if set(errs) == {"explicit", "wishart"}:
        cell = {k: v.mean(axis=2) for k, v in errs.items()}
        se = np.sqrt((errs["explicit"].var(axis=2) + errs["wishart"].var(axis=2)) / seeds).mean()
        gap = np.abs(cell["explicit"] - cell["wishart"]).mean()
        print(f"Cell means of the final test error differ by {gap:.4f} on average over cells "
              f"(typical standard error of a cell difference {se:.4f}).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
