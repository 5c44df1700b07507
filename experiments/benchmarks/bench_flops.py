"""Benchmark: the gram engine's GD step in GFLOP/s against this core's measured peak.

    python experiments/benchmarks/bench_flops.py [--rounds R] [--tiny] [--q Q]

Peak: a large float64 matrix product (NumPy's BLAS, one thread), 2·N³ flops. The gram GD
step's flops are counted as 2·(2m)(n+1)² for the basis product Z = β G (the only
super-linear term) plus 10 flops per pre-activation (2m·2n of them: σ, σ', the example
weight and the coefficient update); the per-example logistic terms (2n exp/log1p) are not
counted. The table says how far the step is from the peak and what dominates at each n.
``--q``: the activation's exponent (default 3, the bench configs'; 1 is ReLU, the Kou grid's).
"""

from __future__ import annotations

import time

import _bench

SIZES = [(20, 10), (100, 10), (500, 10)]   # (n, m)


def step_flops(n: int, m: int) -> float:
    return 2.0 * (2 * m) * (n + 1) ** 2 + 10.0 * (2 * m) * (2 * n)


def peak_gflops(size: int, rounds: int) -> float:
    """Median GFLOP/s of an N×N float64 product (one BLAS thread)."""
    import numpy as np

    a = np.random.default_rng(0).standard_normal((size, size))
    a @ a
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        a @ a
        times.append(time.perf_counter() - t0)
    times.sort()
    return 2.0 * size ** 3 / times[len(times) // 2] / 1e9


def main(argv=None):
    p = _bench.parser(__doc__)
    p.add_argument("--q", type=float, default=3.0, help="activation exponent q")
    args = p.parse_args(argv)
    sizes, rounds = ([(20, 4)], 1) if args.tiny else (SIZES, args.rounds)
    _bench.header(f"gram GD step (q = {args.q:g}): achieved GFLOP/s against the single-core peak")
    peak = peak_gflops(300 if args.tiny else 2000, max(rounds, 3))
    steppers = {}
    for n, m in sizes:
        d = max(2 * n + 1, 200)
        import signoise as sn

        cfg = _bench.bench_config(n, d, m).updated({"model.q": args.q})

        run = _bench.engine_stepper(cfg, sn.sample_problem(cfg), "gram")
        k = 20 if args.tiny else _bench.calibrate(run, args.budget)
        steppers[(n, m)] = (run, k)
    med = _bench.side_by_side({key: (lambda r=r, k=k: r(k)) for key, (r, k) in steppers.items()},
                              rounds)
    rows = []
    for (n, m), (_, k) in steppers.items():
        per_step = med[(n, m)] / k
        gflops = step_flops(n, m) / per_step / 1e9
        rows.append([n, m, _bench.fmt_time(per_step), f"{step_flops(n, m):.3g}",
                     f"{gflops:.2f}", f"{100 * gflops / peak:.1f} %"])
    _bench.table(["n", "m", "GD step", "flops/step", "GFLOP/s", "of peak"], rows)
    print(f"Peak (float64 matrix product, 1 thread): {peak:.1f} GFLOP/s. Medians of {rounds} "
          "rounds after warm-up.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
