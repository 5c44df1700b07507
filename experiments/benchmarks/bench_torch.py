"""Per-step time of signoise's gram and weights engines against a plain PyTorch baseline.

The baseline is the weight-space model of SPEC §2 written the way a PyTorch user would:
float64 tensors, the filters W (2, m, d) as one leaf tensor, GD by autograd, and PEGR by
per-example gradients with ``torch.func.vmap(grad(...))`` inside the objective, then
``torch.func.grad`` through it (double backprop). Both sides run the same problem; a first
check confirms they take the same step (relative difference printed).

    python experiments/benchmarks/bench_torch.py            # needs: pip install ".[bench]"
"""

from __future__ import annotations

import _bench
import numpy as np

SIZES = [(100, 2000, 20), (500, 10_000, 50), (100, 100_000, 20)]
TINY = [(20, 200, 4)]
PEG_LAM = 1e-3          # PEGR strength (per-step cost does not depend on it)
PEG_MEM_LIMIT = 1.5e9   # bytes of per-example gradients the torch PEGR baseline may hold


def torch_model(problem, cfg):
    """Closures ``gd_step()`` and ``pegr_step()`` updating a float64 torch W in place."""
    import torch
    from torch.func import grad, vmap

    torch.set_default_dtype(torch.float64)
    m, q, a, lr = cfg.model.m, float(cfg.model.q), cfg.model.readout_scale, cfg.train.lr
    Xs = torch.tensor(problem.y_true[:, None] * problem.mu[None, :])   # (n, d) signal patches
    Xn = torch.tensor(problem.xi)                                        # (n, d) noise patches
    y = torch.tensor(problem.y)
    W = torch.tensor(problem.w0.reshape(2 * m, -1).copy(), requires_grad=True)
    sign = torch.tensor([1.0] * m + [-1.0] * m)

    def f(W, xs, xn):
        """Network outputs for a batch of examples (rows of xs, xn)."""
        act = torch.relu(xs @ W.T) ** q + torch.relu(xn @ W.T) ** q    # (batch, 2m)
        return a * act @ sign

    def loss(W):
        return torch.logaddexp(torch.zeros(()), -y * f(W, Xs, Xn)).mean()

    def loss_one(W, xs, xn, yi):
        return torch.logaddexp(torch.zeros(()), -yi * f(W, xs[None], xn[None])[0])

    per_example = vmap(grad(loss_one), in_dims=(None, 0, 0, 0))

    def pegr_objective(W):
        g = per_example(W, Xs, Xn, y)                                      # (n, 2m, d)
        return loss(W) + 0.5 * PEG_LAM * (g ** 2).sum() / len(y)

    pegr_grad = grad(pegr_objective)

    def gd_step():
        L = loss(W)
        L.backward()
        with torch.no_grad():
            W.sub_(lr * W.grad)
        W.grad = None

    def pegr_step():
        with torch.no_grad():
            W.sub_(lr * pegr_grad(W.detach()))

    def reset():
        with torch.no_grad():
            W.copy_(torch.tensor(problem.w0.reshape(2 * m, -1)))

    return gd_step, pegr_step, reset, W


def steps_of(step, reset):
    def run(k):
        reset()
        for _ in range(k):
            step()
    return run


def agreement(problem, cfg, torch_step, reset, W, steps=3):
    """Relative difference of W after a few steps: torch vs signoise's weights engine."""
    from signoise.data import STREAM_ALGO, rng_for
    from signoise.engines import weights
    from signoise.algorithms import run_record

    runner = weights.Runner(weights.prepare(problem), run_record(cfg),
                            rng_for(0, STREAM_ALGO))
    runner.advance(steps)
    ref = runner.state[0]
    steps_of(torch_step, reset)(steps)
    Wt = W.detach().numpy().reshape(ref.shape)
    return float(np.abs(Wt - ref).max() / np.abs(ref).max())


def main(argv=None):
    args = _bench.parser(__doc__).parse_args(argv)
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: pip install '.[bench]' (torch==2.13.0)")
        return 0
    import signoise as sn
    from signoise.algorithms import ALGORITHMS

    sizes, rounds = (TINY, 1) if args.tiny else (SIZES, args.rounds)
    has_pegr = "pegr" in ALGORITHMS
    _bench.header("signoise vs a PyTorch weight-space baseline (float64, per GD/PEGR step)")
    print(f"torch {torch.__version__}, torch threads {torch.get_num_threads()}\n")
    rows = []
    for n, d, m in sizes:
        cfg = _bench.bench_config(n, d, m)
        prob = sn.sample_problem(cfg)
        gd_step, pegr_step, reset, W = torch_model(prob, cfg)
        diff = agreement(prob, cfg, gd_step, reset, W)
        pcfg = _bench.bench_config(n, d, m, {"name": "pegr", "lam": PEG_LAM}) if has_pegr else None
        pdiff = (agreement(prob, pcfg, pegr_step, reset, W, steps=2)
                 if has_pegr and 8 * n * 2 * m * d <= PEG_MEM_LIMIT else None)
        runs = {"torch": steps_of(gd_step, reset),
                "gram": _bench.engine_stepper(cfg, prob, "gram"),
                "weights": _bench.engine_stepper(cfg, prob, "weights")}
        peg_bytes = 8 * n * 2 * m * d
        if peg_bytes <= PEG_MEM_LIMIT or args.tiny:
            runs["torch pegr"] = steps_of(pegr_step, reset)
            runs["torch pegr"](1)
        if has_pegr:
            runs["gram pegr"] = _bench.engine_stepper(pcfg, prob, "gram")
        counts = {k: _bench.calibrate(fn, args.budget if not args.tiny else 0.01)
                  for k, fn in runs.items()}
        med = _bench.side_by_side({k: (lambda fn=fn, c=counts[k]: fn(c)) for k, fn in runs.items()},
                                  rounds)
        per = {k: med[k] / counts[k] for k in runs}
        tp = per.get("torch pegr")
        rows.append([f"({n}, {d}, {m})", _bench.fmt_time(per["torch"]),
                     _bench.fmt_time(per["gram"]), _bench.fmt_time(per["weights"]),
                     f"{per['torch'] / per['gram']:.0f}×",
                     f"{per['torch'] / per['weights']:.2f}×",
                     _bench.fmt_time(tp) if tp else f"— ({peg_bytes / 1e9:.1f} GB)",
                     _bench.fmt_time(per.get("gram pegr")),
                     f"{tp / per['gram pegr']:.0f}×" if tp and "gram pegr" in per else "—",
                     f"{diff:.1e}", "—" if pdiff is None else f"{pdiff:.1e}"])
    _bench.table(["(n, d, m)", "torch GD", "gram GD", "weights GD", "gram speed-up",
                  "weights speed-up", "torch PEGR", "gram PEGR", "PEGR speed-up",
                  "rel. ΔW GD", "rel. ΔW PEGR"], rows)
    if not has_pegr:
        print("gram PEGR: algorithm 'pegr' is not available on this branch.\n")
    print("rel. ΔW: max |W_torch − W_signoise| / max |W| after 3 GD (2 PEGR) steps, against "
          "signoise's weights engine.")
    print(f"Medians of {rounds} rounds after warm-up; torch PEGR is skipped where its "
          f"per-example gradients (8·n·2m·d bytes) exceed {PEG_MEM_LIMIT / 1e9:g} GB.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
