"""Kou et al. (ICML 2023): our sweep against their published heat map, cell by cell.

Reads the reference from ../shared/reference/kou2023/data_test100.csv (relative to the
repository root; never copied into the repository): row t -> d = 100 + 10 t, column s ->
‖μ‖ = 0.1 s, mean test 0-1 error over 10 repeats against the noisy test labels (flip 0.1).
Works on the full 100 × 100 grid or any subgrid of it.

    python experiments/kou_compare.py /tmp/kou_papercode.zarr -o figures/kou2023_papercode_vs_published.png

Prints the mean absolute difference (MAD) over the cells and the sampling noise expected of it:
the MAD between the means of seeds 0-4 and 5-9 of our own sweep, divided by √2 (two 5-seed
means differ √2 times more than two 10-seed means).
"""

import argparse
from pathlib import Path

import numpy as np

import signoise as sn
from signoise import plot

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference" / "kou2023" / "data_test100.csv"


def published(d, mu):
    """The published mean test error at the store's (d, ‖μ‖) cells (a DataArray like ours)."""
    ref = np.loadtxt(REFERENCE)
    t = np.rint((d.values - 100) / 10).astype(int)
    s = np.rint(mu.values / 0.1).astype(int)
    if t.min() < 0 or t.max() > 99 or s.min() < 0 or s.max() > 99:
        raise SystemExit("the store's grid is not a subgrid of d = 100 + 10 t, ‖μ‖ = 0.1 s")
    import xarray as xr

    return xr.DataArray(ref[np.ix_(t, s)], coords={"data.d": d.values, "data.mu_norm": mu.values},
                        dims=("data.d", "data.mu_norm"),
                        attrs={"variable": "test_error", "stat": "mean"})


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("store")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--title", default="settings of the authors' code")
    args = p.parse_args(argv)

    ds = sn.open_sweep(args.store).load()
    done = ds.done.transpose("data.d", "data.mu_norm")
    if not bool(done.all()):
        print(f"note: {args.store} is unfinished ({int(done.sum())}/{done.size} cells); "
              "comparing the finished cells only (rerun the sweep command to finish it)")
    ours = sn.cell_statistic(ds, "test_error", "mean").transpose("data.d", "data.mu_norm")
    theirs = published(ds["data.d"], ds["data.mu_norm"])
    diff = (ours - theirs).where(done)
    diff.attrs.update(variable="ours − published", stat="")
    mad = float(np.abs(diff).mean())
    k = ds.sizes["seed"] // 2
    a = ds.test_error.isel(step=-1, seed=slice(0, k)).mean("seed")
    b = ds.test_error.isel(step=-1, seed=slice(k, 2 * k)).mean("seed")
    split = float(np.abs(a - b).where(ds.done).mean())
    noise = split / np.sqrt(2)
    bias = float(diff.mean())
    print(f"cells: {int(done.sum())}; mean absolute difference ours vs published: {mad:.4f}; "
          f"mean signed difference: {bias:+.4f}")
    print(f"seed split {k} vs {k}: MAD {split:.4f}; expected MAD between two independent "
          f"{2 * k}-seed means: {noise:.4f}")

    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.4), constrained_layout=True)
    kw = dict(vmin=0.08, vmax=0.52)
    plot.plot_phase(ours, "data.mu_norm", "data.d", ax=axes[0], title=f"signoise ({args.title})", **kw)
    plot.plot_phase(theirs, "data.mu_norm", "data.d", ax=axes[1],
                    title="Kou et al. 2023, published (data_test100.csv)", **kw)
    plot.plot_phase(diff, "data.mu_norm", "data.d", ax=axes[2], cmap="RdBu_r", vmin=-0.15,
                    vmax=0.15, title=f"difference: MAD {mad:.3f} (sampling alone ≈ {noise:.3f})")
    plot.save(fig, args.output)
    print(args.output)


if __name__ == "__main__":
    main()
