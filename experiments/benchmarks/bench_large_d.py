"""Set-up and per-step time of the gram engine against d, explicit and Wishart samplers.

n = 100, m = 20, 100 test points; σ_p = 1, SNR = 0.05, σ0 = 1/√d, η = 0.5/d, so the training
dynamics have the same law at every d and any change in cost is the implementation's. The
explicit sampler is run only while its arrays fit comfortably in memory (d ≤ 10^5).

    python experiments/benchmarks/bench_large_d.py
"""

from __future__ import annotations

import _bench

DS = [10**3, 10**4, 10**5, 10**6, 10**7]
TINY = [200, 10**6]
EXPLICIT_MAX_D = 10**5


def main(argv=None):
    args = _bench.parser(__doc__).parse_args(argv)
    import signoise as sn
    from signoise.engines import gram
    from signoise.wishart import sample_gram_inputs, sample_reduced

    n, m = (20, 4) if args.tiny else (100, 20)
    ds, rounds = (TINY, 1) if args.tiny else (DS, args.rounds)
    budget = 0.01 if args.tiny else args.budget
    _bench.header(f"gram engine against d (n = {n}, m = {m}, 100 test points)")
    contenders, counts = {}, {}
    for d in ds:
        cfg = _bench.bench_config(n, d, m)
        wcfg = cfg.updated({"data.sampler": "wishart"})
        seeds = iter(range(10**9))
        setups = {"wishart set-up": lambda k, c=wcfg: [sample_gram_inputs(c, next(seeds))
                                                       for _ in range(k)]}
        if d <= EXPLICIT_MAX_D:
            setups["explicit set-up"] = lambda k, c=cfg: [gram.prepare(sn.sample_problem(c, s))
                                                          for s in range(k)]
        setups["step"] = _bench.engine_stepper(wcfg, sample_reduced(wcfg), "gram")
        for name, fn in setups.items():
            fn(1)
            key = (d, name)
            counts[key] = _bench.calibrate(fn, budget)
            contenders[key] = (lambda fn=fn, k=counts[key]: fn(k))
    med = _bench.side_by_side(contenders, rounds)
    per = {key: med[key] / counts[key] for key in contenders}
    base = per[(ds[0], "step")]
    rows = []
    for d in ds:
        rows.append([f"{d:.0e}".replace("e+0", "e"),
                     _bench.fmt_time(per.get((d, "explicit set-up"))),
                     _bench.fmt_time(per[(d, "wishart set-up")]), _bench.fmt_time(per[(d, "step")]),
                     f"{per[(d, 'step')] / base:.2f}"])
    _bench.table(["d", "explicit set-up", "wishart set-up", "gram step (wishart)",
                  f"step / step at d = {ds[0]:g}"], rows)
    print(f"Medians of {rounds} rounds after warm-up; set-up = sampling plus the inner "
          "products the gram engine needs (gram.prepare). Explicit sampling is skipped above "
          f"d = {EXPLICIT_MAX_D:g} (its arrays grow as (n + n_test + 2m)·d).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
