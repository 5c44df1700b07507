"""PEGR vs GD vs GR in the GD-harmful regime of Cao et al.'s model (q = 3), SPEC §6.

    python experiments/pegr_vs_gd.py [--seeds 5] [--outdir figures]

Writes four figures:
  pegr_gd_gr_dynamics.png  γ vs ρ̄ and the losses under GD, PEGR and GR (same λ, same data)
  pegr_lambda_scan.png     final test error, max γ and max ρ̄ against λ for PEGR and GR
  pattern_variance.png     the pattern-learning variance (signal and noise parts) along GD and PEGR
  fdgr_vs_gr.png           finite-difference GR (forward, backward, central) against exact GR
and prints the numbers behind them.
"""

import argparse
from pathlib import Path

import matplotlib
import numpy as np

import signoise as sn
from signoise.plot import plot_demo, plot_pattern_variance, save

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).parent
LAM = 0.01


def harmful(**changes):
    cfg = sn.load_config(HERE / "cao2022_harmful.toml")
    return cfg.updated({"data.n_test": 1000, **changes})


def dynamics(outdir):
    runs = {}
    for label, changes in (("GD", {}),
                           (f"PEGR λ = {LAM:g}", {"algorithm.name": "pegr", "algorithm.lam": LAM}),
                           (f"GR λ = {LAM:g}", {"algorithm.name": "gr", "algorithm.lam": LAM})):
        ds = sn.simulate(harmful(**changes), quiet=True)
        last = ds.isel(step=-1)
        print(f"{label:14s} train loss {float(last.train_loss):.2e}  test error "
              f"{float(last.test_error):.3f}  max γ {float(last.gamma_max.max()):.3f}  "
              f"max ρ̄ {float(last.rho_bar_max):.3f}")
        runs[f"{label} (‖μ‖ = 8, n·SNR³ ≈ 0.11)"] = ds
    plot_demo(runs, outdir / "pegr_gd_gr_dynamics.png")
    return runs


def lambda_scan(outdir, seeds):
    lams = np.geomspace(1e-5, 3e-1, 19)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), constrained_layout=True)
    print("   λ      " + "  ".join(f"{n:>28s}" for n in ("PEGR: err / max γ / max ρ̄", "GR: err / max γ / max ρ̄")))
    rows = {}
    for name, color in (("pegr", "C2"), ("gr", "C4")):
        cfgs = [harmful(**{"algorithm.name": name, "algorithm.lam": float(lam),
                           "train.record_every": 3000}) for lam in lams for _ in range(seeds)]
        ds = sn.simulate_batch(cfgs, [s for _ in lams for s in range(seeds)], quiet=True)
        last = ds.isel(step=-1)
        shape = (len(lams), seeds)
        values = {"test_error": last.test_error.values.reshape(shape),
                  "gamma": last.gamma_max.max("j").values.reshape(shape),
                  "rho": last.rho_bar_max.values.reshape(shape),
                  "loss": last.train_loss.values.reshape(shape)}
        rows[name] = values
        for ax, key, label in zip(axes, ("test_error", "gamma", "rho"),
                                  ("test error", "max_r γ", "max ρ̄")):
            mean, sd = values[key].mean(1), values[key].std(1)
            ax.plot(lams, mean, "o-", color=color, ms=3, label=name.upper())
            ax.fill_between(lams, mean - sd, mean + sd, color=color, alpha=0.2)
            ax.set_xscale("log")
            ax.set_xlabel("λ")
            ax.set_title(label)
    for k, lam in enumerate(lams):
        print(f"{lam:9.2e} " + "  ".join(
            f"{rows[n]['test_error'][k].mean():8.3f} {rows[n]['gamma'][k].mean():8.3f} "
            f"{rows[n]['rho'][k].mean():8.3f}  " for n in ("pegr", "gr")))
    gd = sn.simulate_batch([harmful()] * seeds, list(range(seeds)), quiet=True).isel(step=-1)
    for ax, value in zip(axes, (gd.test_error, gd.gamma_max.max("j"), gd.rho_bar_max)):
        ax.axhline(float(value.mean()), color="k", ls=":", label="GD")
    axes[0].legend()
    fig.suptitle(f"GD-harmful regime (n = 20, d = 2000, ‖μ‖ = 8, q = 3), 3000 steps, {seeds} seeds: "
                 "PEGR's window of λ; GR needs a λ about n times larger")
    save(fig, outdir / "pegr_lambda_scan.png")


def variance(outdir, runs):
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True, sharey=True)
    for ax, (label, ds) in zip(axes, list(runs.items())[:2]):
        plot_pattern_variance(ds, ax)
        ax.set_title(label.split(" (")[0])
    save(fig, outdir / "pattern_variance.png")


def fdgr(outdir, seeds):
    lam = 0.1
    epss = [1e-3, 1e-2, 1e-1, 3e-1, 1.0]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    exact = sn.simulate_batch([harmful(**{"algorithm.name": "gr", "algorithm.lam": lam})] * seeds,
                              list(range(seeds)), quiet=True).isel(step=-1)
    print(f"exact GR λ = {lam}: test error {float(exact.test_error.mean()):.3f}, "
          f"max γ {float(exact.gamma_max.max('j').mean()):.3f}")
    for scheme, color in (("forward", "C0"), ("backward", "C3"), ("central", "C2")):
        cfgs = [harmful(**{"algorithm.name": "fdgr", "algorithm.lam": lam, "algorithm.eps": e,
                           "algorithm.scheme": scheme}) for e in epss for _ in range(seeds)]
        ds = sn.simulate_batch(cfgs, [s for _ in epss for s in range(seeds)], quiet=True).isel(step=-1)
        err = ds.test_error.values.reshape(len(epss), seeds).mean(1)
        gam = ds.gamma_max.max("j").values.reshape(len(epss), seeds).mean(1)
        div = ds.diverged.values.reshape(len(epss), seeds).sum(1)
        print(f"{scheme:8s} ε: " + "  ".join(f"{e:g}: err {a:.3f} γ {g:.2f}{' (div %d)' % d if d else ''}"
                                            for e, a, g, d in zip(epss, err, gam, div)))
        axes[0].plot(epss, err, "o-", color=color, label=scheme)
        axes[1].plot(epss, gam, "o-", color=color, label=scheme)
    for ax, value in zip(axes, (exact.test_error, exact.gamma_max.max("j"))):
        ax.axhline(float(value.mean()), color="k", ls=":", label="exact GR")
        ax.set_xscale("log")
        ax.set_xlabel("ε")
    axes[0].set_title("test error")
    axes[1].set_title("max_r γ")
    axes[0].legend()
    fig.suptitle(f"finite-difference GR vs exact GR at λ = {lam} (GD-harmful regime, {seeds} seeds)")
    save(fig, outdir / "fdgr_vs_gr.png")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--outdir", default=str(HERE.parent / "figures"))
    args = p.parse_args()
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    runs = dynamics(outdir)
    variance(outdir, runs)
    lambda_scan(outdir, args.seeds)
    fdgr(outdir, args.seeds)


if __name__ == "__main__":
    main()
