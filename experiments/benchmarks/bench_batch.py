"""Batched runs per second against batch size, with 1 and 2 Numba threads.

Runs of the Kou et al. setting (n = 20, m = 10, ReLU, 100 GD steps, 1000 test points,
records every 25 steps) drawn with the Wishart sampler at d = 1000, each with its own seed,
through ``signoise.simulate_batch(cfgs, seeds, engine="gram", record_rho="summary")``.

    python experiments/benchmarks/bench_batch.py
"""

from __future__ import annotations

import _bench

BATCHES = [1, 10, 100, 1000, 10_000]
THREADS = [1, 2]


def kou_config(d=1000, mu_norm=2.0, n_test=1000, sampler="wishart", record_every=25):
    """One run of the Kou et al. (2023) theory setting (experiments/kou2023_theory.toml)."""
    import signoise as sn

    return sn.RunConfig.from_dict({
        "seed": 0,
        "data": {"n": 20, "d": d, "mu_norm": mu_norm, "sigma_p": 1.0, "flip": 0.1,
                 "n_test": n_test, "noise": "projected", "sampler": sampler},
        "model": {"m": 10, "q": 1.0, "sigma0": 0.01},
        "train": {"lr": 0.1, "steps": 100, "record_every": record_every}})


def main(argv=None):
    p = _bench.parser(__doc__)
    p.add_argument("--max-batch", type=int, default=BATCHES[-1], help="largest batch size")
    args = p.parse_args(argv)
    import numba

    import signoise as sn

    batches, rounds = ([1, 4], 1) if args.tiny else ([b for b in BATCHES if b <= args.max_batch],
                                                     args.rounds)
    threads = [t for t in THREADS if t <= numba.config.NUMBA_NUM_THREADS]
    _bench.header("simulate_batch: runs per second against batch size and threads")
    cfg = kou_config(n_test=100 if args.tiny else 1000)
    sn.simulate_batch([cfg], [0])                      # compile
    numba.set_num_threads(max(threads))                # and the parallel kernels (a first
    sn.simulate_batch([cfg] * 2, [0, 1])               # timed call would pay their compile)
    seeds = iter(range(10**9))

    def call(t, b):
        def run():
            numba.set_num_threads(t)
            sn.simulate_batch([cfg] * b, [next(seeds) for _ in range(b)], engine="gram",
                              record_rho="summary")
        return run

    med = _bench.side_by_side({(t, b): call(t, b) for t in threads for b in batches}, rounds)
    rows = [[b] + [f"{b / med[(t, b)]:.0f}" for t in threads] for b in batches]
    _bench.table(["batch size"] + [f"runs/s, {t} thread{'s' if t > 1 else ''}"
                                   for t in threads], rows)
    print(f"Medians of {rounds} rounds after warm-up; each call draws its runs' data "
          "(Wishart sampler) and trains them.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
