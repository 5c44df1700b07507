"""Noise injection in wide networks with both layers trained (Orvieto, Raj, Kersting, Bach,
AISTATS 2023, arXiv:2206.04613): does the perturbed gradient's variance explode with the
width m under all-layer noise, and does independent layer-wise noise avoid it?

    python experiments/orvieto_width.py [--out figures/orvieto_width.png]
    SIGNOISE_QUICK=1 python experiments/orvieto_width.py --out /tmp/w.png   # seconds

Cao et al.'s data (n = 20, d = 2000, q = 3, σ₀ = 0.01, ‖μ‖ = 8, the GD-harmful demo setting),
model.readout = "trainable" under two parametrisations of the second layer: "constant"
(a_{j,r} = 1/m, mean field, Cao et al.'s scaling) and "gaussian" (a_{j,r} ~ N(0, 1/m), the
standard 1/√m scaling). For m = 4 … 1024:

1. at the initial iterate, Var_ζ ∇L(θ + ζ) per layer (signoise.probe, 200 draws, s = 10⁻³,
   small against the pre-activations) for all-layer and layer-wise noise, beside ‖∇L‖²;
2. the outcome of 3000 steps (η = 10⁻³) of GD, noisy_eval (s = 0.01) and its layer-wise form:
   final training loss and test error, mean over 2 seeds.

Prints both tables and draws one figure (variance against m; training loss against m).
"""

import argparse
import os
import warnings

import matplotlib
import numpy as np

import signoise as sn
from signoise import probe
from signoise.guard import SignoiseWarning

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

QUICK = bool(os.environ.get("SIGNOISE_QUICK"))
WIDTHS = (4, 16) if QUICK else (4, 16, 64, 256, 1024)
INITS = ("constant", "gaussian")
S_PROBE, S_TRAIN = 1e-3, 0.01
BASE = {"seed": 0, "data": {"n": 20, "d": 2000, "mu_norm": 8.0, "n_test": 500},
        "model": {"m": 10, "q": 3.0, "sigma0": 0.01, "readout": "trainable"},
        "algorithm": {"name": "gd"},
        "train": {"lr": 0.001, "steps": 300 if QUICK else 3000, "record_every": 100}}
RULES = {"GD": {"algorithm.name": "gd"},
         "all-layer noise": {"algorithm.name": "noisy_eval", "algorithm.s": S_TRAIN},
         "layer-wise noise": {"algorithm.name": "noisy_eval", "algorithm.s": S_TRAIN,
                              "algorithm.layerwise": True}}


def cfg(m, init, **changes):
    return sn.RunConfig.from_dict(BASE).updated({"model.m": m, "model.readout_init": init,
                                                 **changes})


def variances(draws):
    """rows of (init, m, scheme, layer, variance, se, ‖∇L‖²) at the initial iterate."""
    rows = []
    for init in INITS:
        for m in WIDTHS:
            ds = sn.simulate(cfg(m, init, **{"train.steps": 1, "train.record_every": 1}),
                             quiet=True)
            g2 = float(ds.grad_sq[0])
            for scheme, lw in (("all-layer", False), ("layer-wise", True)):
                pv = probe.perturbed_grad_variance(ds, S_PROBE, draws=draws, seed=1,
                                                   layerwise=lw)
                for layer in ("filters", "readout"):
                    rows.append((init, m, scheme, layer, float(pv[f"variance_{layer}"]),
                                 float(pv[f"variance_{layer}_se"]), g2))
    return rows


def outcomes(seeds):
    """rows of (init, m, rule, final training loss, final test error), seed means."""
    rows = []
    for init in INITS:
        for m in WIDTHS:
            cfgs = [cfg(m, init, **changes) for changes in RULES.values()]
            ds = sn.simulate_batch([c for c in cfgs for _ in range(seeds)],
                                   [s for _ in cfgs for s in range(seeds)], quiet=True)
            last = ds.isel(step=-1)
            for k, rule in enumerate(RULES):
                sel = slice(k * seeds, (k + 1) * seeds)
                rows.append((init, m, rule, float(last.train_loss[sel].mean()),
                             float(last.test_error[sel].mean())))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="figures/orvieto_width.png")
    args = parser.parse_args()
    warnings.simplefilter("ignore", SignoiseWarning)
    var = variances(20 if QUICK else 200)
    out = outcomes(1 if QUICK else 2)
    print(f"Var_ζ ∇L(θ0 + ζ), s = {S_PROBE:g} (± 1 se), beside ‖∇L‖²")
    print(f"{'readout_init':>12} {'m':>5} {'noise':>10} {'layer':>8} {'variance':>10} "
          f"{'se':>9} {'‖∇L‖²':>9}")
    for init, m, scheme, layer, v, se, g2 in var:
        print(f"{init:>12} {m:>5} {scheme:>10} {layer:>8} {v:10.3e} {se:9.1e} {g2:9.3e}")
    print(f"\nafter {BASE['train']['steps']} steps (s = {S_TRAIN:g}): training loss, test error")
    for init, m, rule, loss, err in out:
        print(f"{init:>12} {m:>5} {rule:>17} {loss:10.3e} {err:6.3f}")

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    styles = {("all-layer", "filters"): ("C3", "-"), ("all-layer", "readout"): ("C3", "--"),
              ("layer-wise", "filters"): ("C0", "-"), ("layer-wise", "readout"): ("C0", "--")}
    for ax, init in zip(axes[:2], INITS):
        for (scheme, layer), (color, ls) in styles.items():
            pts = [(m, v, se) for i, m, sc, la, v, se, _ in var
                   if i == init and sc == scheme and la == layer]
            m_, v_, se_ = map(np.array, zip(*pts))
            ax.errorbar(m_, v_, yerr=2 * se_, color=color, ls=ls, marker="o", ms=3,
                        label=f"{scheme}, {layer}")
        g2 = sorted({(m, g) for i, m, *_, g in var if i == init})
        ax.plot(*zip(*g2), color="k", lw=1, label="‖∇L‖² (GD)")
        ax.set(xscale="log", yscale="log", xlabel="width m",
               title=f"Var of ∇L(θ₀ + ζ), readout_init = {init!r}")
        ax.legend(fontsize=7)
    ax = axes[2]
    for k, rule in enumerate(RULES):
        for init, ls in zip(INITS, ("-", "--")):
            pts = [(m, loss) for i, m, r, loss, _ in out if i == init and r == rule]
            ax.plot(*zip(*pts), color=f"C{k}", ls=ls, marker="o", ms=3, label=f"{rule} ({init})")
    ax.set(xscale="log", yscale="log", xlabel="width m", ylabel="final training loss",
           title=f"{BASE['train']['steps']} steps, s = {S_TRAIN:g}")
    ax.legend(fontsize=7)
    fig.suptitle("python experiments/orvieto_width.py", fontsize=8, x=0.99, ha="right")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
