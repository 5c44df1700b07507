"""GD and PEGR phase diagrams side by side from one sweep (experiments/gd_vs_pegr.toml).

    signoise sweep experiments/gd_vs_pegr.toml -o /tmp/gd_vs_pegr.zarr
    python experiments/gd_vs_pegr.py /tmp/gd_vs_pegr.zarr -o figures/gd_vs_pegr.png

Left and middle: mean test error over seeds for GD and PEGR with the fitted Cao boundary
n·SNR^q = C of GD on both; right: PEGR − GD, cell by cell (paired: same data and init), and
the number of diverged PEGR runs in its title.
"""

import argparse

import matplotlib.pyplot as plt

import signoise as sn
from signoise import plot, theory


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("store")
    p.add_argument("-o", "--output", required=True)
    args = p.parse_args(argv)
    ds = sn.open_sweep(args.store)
    x, y = "data.mu_norm", "data.n"
    gd = ds.sel({"algorithm.name": "gd"})
    err_gd = sn.cell_statistic(gd, "test_error")
    const, _ = theory.fit_constant(theory.sweep_control(gd, "cao"), err_gd, 0.25)
    xs, ys = theory.sweep_boundary(gd, "cao", const, x, y)
    line = [(xs, ys, f"GD: n·SNR^q = {const:.2g}")]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.4), constrained_layout=True)
    for ax, name in zip(axes, ("gd", "pegr")):
        sub = ds.sel({"algorithm.name": name})
        cfg_lam = sub.attrs["config"].split("lam = ")[-1].split("\n")[0] if name == "pegr" else ""
        plot.plot_phase(sn.cell_statistic(sub, "test_error"), x, y, ax=ax, boundaries=line,
                        vmin=0, vmax=0.5, title=name.upper() + (f" (λ = {cfg_lam})" if cfg_lam else ""))
    pegr = ds.sel({"algorithm.name": "pegr"})
    diff = sn.cell_statistic(pegr, "test_error") - err_gd
    diff.attrs.update(variable="test error, PEGR − GD", stat="")
    diverged = int(pegr.diverged.sum())
    plot.plot_phase(diff, x, y, ax=axes[2], cmap="RdBu_r", vmin=-0.5, vmax=0.5,
                    title=f"PEGR − GD ({diverged} of {pegr.diverged.size} PEGR runs diverged)")
    plot.save(fig, args.output)
    print(args.output)


if __name__ == "__main__":
    main()
