"""Per-step cost of signoise's PEGR, GR, SAM and fdgr relative to its GD step (gram engine).

Same problem (n = 100, d = 2000, m = 20, q = 3) for every algorithm; strengths are small
enough that no run diverges during timing (the cost of a step does not depend on them).

    python experiments/benchmarks/bench_algorithms.py
"""

from __future__ import annotations

import _bench

ALGOS = [
    ("gd", {}),
    ("pegr", {"lam": 1e-4}),
    ("gr", {"lam": 1e-4}),
    ("sam", {"rho": 1e-3}),
    ("fdgr", {"lam": 1e-4, "eps": 1e-3, "scheme": "forward"}),
    ("fdgr", {"lam": 1e-4, "eps": 1e-3, "scheme": "central"}),
]


def main(argv=None):
    args = _bench.parser(__doc__).parse_args(argv)
    import signoise as sn
    from signoise.algorithms import ALGORITHMS

    (n, d, m), rounds = ((20, 200, 4), 1) if args.tiny else ((100, 2000, 20), args.rounds)
    budget = 0.01 if args.tiny else args.budget
    _bench.header(f"algorithm step cost relative to GD (gram engine, n = {n}, d = {d}, m = {m})")
    prob = sn.sample_problem(_bench.bench_config(n, d, m))
    runs, counts, missing = {}, {}, []
    for name, params in ALGOS:
        label = name + ("" if name != "fdgr" else f" ({params['scheme']})")
        if name not in ALGORITHMS:
            missing.append(label)
            continue
        cfg = _bench.bench_config(n, d, m, {"name": name, **params})
        runs[label] = _bench.engine_stepper(cfg, prob, "gram")
        counts[label] = _bench.calibrate(runs[label], budget)
    med = _bench.side_by_side({k: (lambda fn=fn, c=counts[k]: fn(c)) for k, fn in runs.items()},
                              rounds)
    per = {k: med[k] / counts[k] for k in runs}
    rows = [[k, _bench.fmt_time(per[k]), f"{per[k] / per['gd']:.2f}"] for k in runs]
    rows += [[k, "not available on this branch", "—"] for k in missing]
    _bench.table(["algorithm", "step", "step / GD step"], rows)
    print(f"Medians of {rounds} rounds after warm-up.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
