"""Profile of the Kou theory-faithful full grid: where the time of a slice goes, by phase.

    NUMBA_NUM_THREADS=1 python experiments/benchmarks/profile_kou_grid.py [--rows 10] [--cprofile]
    python experiments/benchmarks/profile_kou_grid.py --parts [--rounds 5] [--reps 4000]

Runs ``--rows`` values of d (every ‖μ‖ and seed: 1000 runs per row) of
experiments/kou2023_theory_full.toml serially in this process, as one sweep worker does
(one Numba thread), and prints the wall time of each phase: drawing the data (the samplers),
set-up of the shared draws (``prepare_many`` less the draws), stacking the Batch, the training
kernel, evaluation (test outputs and metrics), the ρ coefficients and summaries, stacking the
records into the store's layout (``run_block`` less the above) and the Zarr writes. The phases
are timed by wrapping the functions that do them; ``--cprofile`` prints the top functions of a
cProfile run instead (slower: its overhead inflates the Python-side phases).

``--parts`` times the compiled pieces of one run of the grid instead (‖μ‖ = 3, d = 500, after
30 steps), each in a compiled loop on one thread: the GD step's passes and a record's, then
what a run of 100 steps and 5 records costs in them alone (the kernels' floor per run).
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


def parts(rounds: int = 5, reps: int = 4000):
    """Median µs of each compiled piece of a Kou run's step and record (see the docstring)."""
    import numpy as np
    from numba import njit

    import signoise as sn
    from signoise import driver
    from signoise.activation import margin_terms
    from signoise.diagnostics import diagnostics, score_outputs, scores_on_test
    from signoise.engines import gram
    from signoise.preacts import gd_coef, outputs

    d = sn.load_config(CONFIG).to_dict()
    d["data"].update(mu_norm=3.0, d=500)
    batch = driver.make_batch(driver.prepare_many([sn.RunConfig.from_dict(d)], [0], "gram"),
                              "gram")
    n, m = d["data"]["n"], d["model"]["m"]
    none = (np.empty((1, 0, n)), np.empty((1, 0, n)), np.empty((1, 0, 2, m, n + 3)))
    batch.advance(30, *none, np.ones(1, np.bool_))
    b = 0
    G, Z0, y, yt = batch.G[b], batch.Z0[b], batch.y[b], batch.y_true[b]
    Gt, Z0t, y_t, yt_t = batch.Gt[b], batch.Z0t[b], batch.y_t[b], batch.y_true_t[b]
    beta, bias, ro, prm = batch.beta[b], batch.bias[b], batch.ro[b], batch.prm[b]

    @njit
    def piece(which, R, G, Z0, y, yt, Gt, Z0t, y_t, yt_t, beta, bias, ro, prm):
        two, m, k = Z0.shape
        n = k - 1
        Z, H, P = np.empty_like(Z0), np.empty((2, m, n, 2)), np.empty((two * m, k))
        f, loss, d1, d2 = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
        Q, om, ft, out = np.empty((2, m, n, 2)), np.full(n, 1.0 / n), np.empty(Gt.shape[1]), np.empty(13)
        K, xmu = np.empty((2 * n, 2 * n)), np.zeros(2 * n)
        gram.patch_gram(G, yt, False, K)
        Zt = np.dot(beta.reshape(two * m, k), Gt)
        gram.preacts(G, Z0, beta, bias, yt, Z, H, P, prm.q, prm.a, f)
        margin_terms(f, y, loss, d1, d2)
        gd_coef(H, y, d1, om, prm.q, prm.a, Q)
        gram.test_outputs(Z, Zt, Z0t, bias, yt_t, prm.q, prm.a, ft)
        b2, bias2 = beta.copy(), bias.copy()
        for _ in range(R):
            if which == 0:
                np.dot(beta.reshape(two * m, k), G, P)
            elif which == 1:
                gram.preacts(G, Z0, beta, bias, yt, Z, H, P, prm.q, prm.a, f)
            elif which == 2:
                margin_terms(f, y, loss, d1, d2)
            elif which == 3:
                gd_coef(H, y, d1, om, prm.q, prm.a, Q)
            elif which == 4:
                gram.apply_coef(Q, yt, 0.0, False, b2, bias2)
            elif which == 5:
                np.dot(beta.reshape(two * m, k), Gt)
            elif which == 6:
                gram.test_outputs(Z, Zt, Z0t, bias, yt_t, prm.q, prm.a, ft)
            elif which == 7:
                scores_on_test(ft, y_t, yt_t, out)
            elif which == 8:
                outputs(H, prm.q, prm.a, f)
                d1_, d2_, bl = score_outputs(f, y, ft[:1], y_t[:1], yt_t[:1], K, out)
                diagnostics(H, y, d1_, d2_, K, bl, xmu, G[0, 0], prm.q, prm.a, out[7:])
            elif which == 9:
                gram.evaluate_kernel(G, Z0, y, yt, Gt, Z0t, y_t, yt_t, beta, bias, ro, prm, out)
            elif which == 10:
                gram.evaluate_kernel(G, Z0, y, yt, Gt, Z0t, y_t, yt_t, np.zeros_like(beta),
                                     bias, ro, prm, out)
        return out[0]

    names = ["step: β G (BLAS)", "step: β G, H and the outputs f (preacts)", "step: ℓ, ℓ′, ℓ″ of the 20 margins",
             "step: σ′ and the coefficients Q", "step: β update", "record: test product β·Gt (BLAS)",
             "record: test outputs", "record: 1000 test losses and errors",
             "record: training metrics (≈ one test point scored)", "record: whole, β ≠ 0",
             "record: whole, β = 0 (step 0)"]
    args = (G, Z0, y, yt, Gt, Z0t, y_t, yt_t, beta, bias, ro, prm)
    for w in range(len(names)):
        piece(w, 1, *args)
    times = {name: [] for name in names}
    steps = []
    for _ in range(rounds):
        for w, name in enumerate(names):
            t0 = time.perf_counter()
            piece(w, reps, *args)
            times[name].append((time.perf_counter() - t0) / reps * 1e6)
        state = batch.beta.copy()
        t0 = time.perf_counter()
        batch.advance(reps, *none, np.ones(1, np.bool_))
        steps.append((time.perf_counter() - t0) / reps * 1e6)
        batch.beta[...] = state
    med = {k: float(np.median(v)) for k, v in times.items()}
    step = float(np.median(steps))
    print(f"One Kou run's compiled pieces (n = {n}, m = {m}, n_test = {Gt.shape[1]}), one "
          f"thread, medians of {rounds} rounds of {reps} calls:\n")
    print("| piece | µs |")
    print("|---|---|")
    for name in names:
        print(f"| {name} | {med[name]:.2f} |")
    print(f"| step: whole (gram.advance, per step) | {step:.2f} |")
    run = 100 * step + 4 * med[names[9]] + med[names[10]]
    print(f"\nKernels alone, per run (100 steps, 4 records with β ≠ 0, one at β = 0): {run:.0f} µs;"
          f" 10⁵ runs on 2 cores: {run * 1e5 / 2 / 1e6:.1f} s")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=10)
    p.add_argument("--cprofile", action="store_true")
    p.add_argument("--parts", action="store_true", help="time the compiled pieces of one run")
    p.add_argument("--rounds", type=int, default=5, help="with --parts: rounds (medians)")
    p.add_argument("--reps", type=int, default=4000, help="with --parts: calls per round")
    args = p.parse_args(argv)
    if args.parts:
        parts(args.rounds, args.reps)
        return 0
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
