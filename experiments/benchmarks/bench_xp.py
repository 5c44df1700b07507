"""Runs per second against batch size: the xp engine (NumPy, CuPy) and the Numba gram engine.

The Kou et al. theory-faithful grid setting (n = 20, m = 10, ReLU, 100 GD steps, n_test = 1000,
Wishart sampler at d = 1000, records every 25 steps), each run with its own seed. Contenders:
``sn.simulate_batch`` (Numba, default threads), ``run_batch_xp(..., numpy)`` and, where CuPy and a
device are present, ``run_batch_xp(..., cupy)`` (synchronised before the clock stops). Batch
sizes 1, 10, ..., 10⁵, capped by ``--max-batch``.

    python experiments/benchmarks/bench_xp.py --max-batch 1000
"""

from __future__ import annotations

import _bench
from bench_batch import kou_config

BATCHES = [1, 10, 100, 1000, 10**4, 10**5]


def main(argv=None):
    p = _bench.parser(__doc__)
    p.add_argument("--max-batch", type=int, default=1000, help="largest batch size timed")
    args = p.parse_args(argv)
    import signoise as sn
    from signoise.engines.xp import get_backend, run_batch_xp

    tiny = args.tiny
    batches = [1, 4] if tiny else [b for b in BATCHES if b <= args.max_batch]
    rounds = 1 if tiny else args.rounds
    cfg = kou_config(n_test=100 if tiny else 1000)
    if tiny:
        cfg = cfg.updated({"train.steps": 10, "train.record_every": 5})
    backends = {"numba": None, "numpy": get_backend("numpy")}
    try:
        backends["cupy"] = get_backend("cupy")
    except sn.ConfigError as err:
        print(f"(CuPy rows skipped: {err})\n")
    _bench.header("xp engine: runs per second against batch size (Kou setting, 100 GD steps)")
    seeds = iter(range(10**9))

    def call(name, b):
        xp = backends[name]

        def run():
            s = [next(seeds) for _ in range(b)]
            if xp is None:
                sn.simulate_batch([cfg] * b, s, record_rho="summary", quiet=True)
            else:
                run_batch_xp([cfg] * b, s, xp)   # returns host arrays: synchronised
        return run

    for name in backends:                          # compile / warm up
        call(name, 2)()
    med = _bench.side_by_side({(k, b): call(k, b) for k in backends for b in batches}, rounds)
    rows = [[b] + [f"{b / med[(k, b)]:.1f}" for k in backends] for b in batches]
    _bench.table(["batch size"] + [f"runs/s, {k}" for k in backends], rows)
    print(f"Medians of {rounds} rounds after warm-up; each call draws its runs' data (Wishart "
          "sampler, on the host) and trains and records them.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
