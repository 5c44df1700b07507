"""Benchmark: the pre-activation change along a direction, through K or through G.

    python experiments/benchmarks/bench_direction.py [--rounds R] [--tiny]

gr, sam, usam, fdgr and clip need dH = H(W + Σ Q x) − H(W) once or twice per step. Through the
2n × 2n patch Gram K it is a (2m × 2n)(2n × 2n) product; the gram engine now maps Q to basis
coefficients and multiplies by the (n+1)² basis Gram G (signoise.preacts.delta_preacts_basis),
about 4× fewer flops. Both give the same dH up to rounding (checked here, and gram ≡ weights in
the tests). Medians of side-by-side rounds, one thread.
"""

from __future__ import annotations

import _bench

SIZES = [(20, 10), (100, 10), (500, 10)]   # (n, m)


def main(argv=None):
    import numpy as np

    from signoise.engines.gram import patch_gram
    from signoise.preacts import delta_preacts, delta_preacts_basis

    args = _bench.parser(__doc__).parse_args(argv)
    sizes, rounds = ([(20, 4)], 1) if args.tiny else (SIZES, args.rounds)
    _bench.header("direction product: patch Gram K against basis Gram G")
    rows = []
    for n, m in sizes:
        rng = np.random.default_rng(0)
        X = rng.standard_normal((n + 1, 3 * n))
        G = X @ X.T
        yt = np.sign(rng.standard_normal(n))
        K = np.empty((2 * n, 2 * n))
        patch_gram(G, yt, True, K)
        Q = rng.standard_normal((2, m, n, 2))
        dK, dG = np.empty_like(Q), np.empty_like(Q)
        delta_preacts(Q, K, dK)
        delta_preacts_basis(Q, G, yt, True, dG)
        err = float(np.abs(dK - dG).max() / np.abs(dK).max())

        def loop(f, k):
            for _ in range(k):
                f()
        fK, fG = (lambda: delta_preacts(Q, K, dK)), (lambda: delta_preacts_basis(Q, G, yt, True, dG))
        k = 10 if args.tiny else _bench.calibrate(lambda k: loop(fK, k), args.budget)
        med = _bench.side_by_side({"K": lambda: loop(fK, k), "G": lambda: loop(fG, k)}, rounds)
        rows.append([n, m, _bench.fmt_time(med["K"] / k), _bench.fmt_time(med["G"] / k),
                     f"{med['K'] / med['G']:.2f}", f"{err:.1e}"])
    _bench.table(["n", "m", "through K", "through G", "speed-up", "max rel. diff"], rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
