"""Figures from results. Each function takes a Dataset and ``ax``/``axes`` (created if None),
draws, and returns the Axes; it computes nothing that the Dataset does not hold."""

from __future__ import annotations

import matplotlib.pyplot as plt  # the backend is the user's; the CLI picks Agg to save headless


def _axes(axes, count, width=4.2, height=3.4):
    if axes is None:
        fig, axes = plt.subplots(1, count, figsize=(width * count, height), constrained_layout=True)
    return axes


def plot_coefficients(ds, ax=None):
    """Signal learning max_r γ_{j,r} (j = ±1), noise memorisation max ρ̄ and min ρ̲ over steps."""
    ax = _axes(ax, 1)
    step = ds["step"].values
    for j, style in ((1, "-"), (-1, "--")):
        ax.plot(step, ds["gamma_max"].sel(j=j), style, color="C0", label=f"max_r γ (j={j:+d})")
    ax.plot(step, ds["rho_bar_max"], color="C3", label="max ρ̄ (memorisation)")
    ax.plot(step, ds["rho_under_min"], color="C1", label="min ρ̲")
    ax.axhline(0.0, color="0.7", lw=0.8)
    ax.set_xlabel("iteration t")
    ax.set_ylabel("coefficient")
    ax.set_title("signal vs noise")
    ax.legend(fontsize=8)
    return ax


def plot_stage1_theory(theory, ax, leaves_at=None):
    """Overlay the stage-1 prediction on :func:`plot_coefficients`' Axes.

    ``theory`` is :func:`signoise.theory.stage1_dynamics`' Dataset (max_r γ for j = ±1 and
    max ρ̄, dotted black); ``leaves_at`` (:func:`signoise.theory.lprime_leaves_half`) marks the
    step where |ℓ'| leaves 1/2 and the prediction stops holding. The y range stays the
    simulation's (the power iteration blows up past stage 1)."""
    import numpy as np

    ylim = ax.get_ylim()
    step = theory["step"].values
    for j, style in ((1, ":"), (-1, (0, (1, 3)))):
        ax.plot(step, theory["gamma_max"].sel(j=j), color="k", ls=style, lw=1.2,
                label=f"stage-1 theory γ (j={j:+d})")
    ax.plot(step, theory["rho_bar_max"], color="k", ls="-.", lw=1.0, label="stage-1 theory ρ̄")
    if leaves_at is not None and np.isfinite(leaves_at):
        ax.axvline(leaves_at, color="0.4", lw=0.8, ls="--", label="|ℓ'| leaves 1/2")
    ax.set_ylim(ylim)
    ax.legend(fontsize=7)
    return ax


def plot_losses(ds, ax=None):
    """Training and test loss (log scale) over steps."""
    ax = _axes(ax, 1)
    for name, label in (("train_loss", "train loss"), ("test_loss", "test loss")):
        ax.plot(ds["step"], ds[name], label=label)
    ax.set_yscale("log")
    ax.set_xlabel("iteration t")
    ax.set_title("loss")
    ax.legend(fontsize=8)
    return ax


def plot_errors(ds, ax=None):
    """Training error and test error (observed and true labels) over steps."""
    ax = _axes(ax, 1)
    for name, label in (("train_error", "train error"), ("test_error", "test error"),
                        ("test_error_clean", "test error (true labels)")):
        ax.plot(ds["step"], ds[name], label=label)
    ax.set_ylim(-0.02, 0.62)
    ax.set_xlabel("iteration t")
    ax.set_title("0-1 error")
    ax.legend(fontsize=8)
    return ax


def plot_pattern_variance(ds, ax=None):
    """The pattern-learning variance (1/n)Σ‖∇ℓ_i − ∇L_S‖², its signal part (along μ) and noise
    part (orthogonal to μ), with ‖∇L_S‖² for scale (log axis; SPEC §5)."""
    ax = _axes(ax, 1)
    for name, label, style in (("grad_var", "variance (total)", "k-"),
                               ("grad_var_signal", "signal part", "C0-"),
                               ("grad_var_noise", "noise part", "C3-"),
                               ("grad_sq", "‖∇L_S‖²", "0.5")):
        ax.plot(ds["step"], ds[name], style if style[0] != "0" else "--", label=label,
                **({"color": style} if style[0] == "0" else {}))
    ax.set_yscale("log")
    ax.set_xlabel("iteration t")
    ax.set_title("pattern-learning variance")
    ax.legend(fontsize=8)
    return ax


def plot_dynamics(ds, axes=None, title=None):
    """Coefficients, losses and errors side by side (three Axes); returns them."""
    axes = _axes(axes, 3)
    plot_coefficients(ds, axes[0])
    plot_losses(ds, axes[1])
    plot_errors(ds, axes[2])
    if title:
        axes[0].figure.suptitle(title)
    return axes


def plot_demo(runs: dict, path=None):
    """One row of :func:`plot_dynamics` per run (``{label: Dataset}``); saves to ``path``."""
    fig, grid = plt.subplots(len(runs), 3, figsize=(13, 3.4 * len(runs)), constrained_layout=True,
                             squeeze=False)
    for row, (label, ds) in zip(grid, runs.items()):
        plot_dynamics(ds, row)
        row[0].set_title(label, fontsize=10)
    if path is not None:
        save(fig, path)
    return grid


def save(fig, path):
    """Save a figure atomically (temporary file, then rename)."""
    import io as _io

    from .io import atomic_write_bytes

    buf = _io.BytesIO()
    fmt = str(path).rsplit(".", 1)[-1] if "." in str(path) else "png"
    fig.savefig(buf, format=fmt, dpi=120)
    atomic_write_bytes(path, buf.getvalue())
    plt.close(fig)


def _edges(values):
    """Cell edges around sorted centres and whether the axis is log-spaced.

    Log-spaced (positive, constant ratio) axes get geometric midpoints, others arithmetic
    midpoints; the outer edges are extended by half a step (in log or linear units).
    """
    import numpy as np

    v = np.asarray(values, dtype=float)
    if v.size == 1:
        return np.array([v[0] - 0.5, v[0] + 0.5]) if v[0] <= 0 else v[0] * np.array([0.8, 1.25]), False
    log = bool(v.size >= 3 and np.all(v > 0) and np.allclose(np.diff(np.log(v)),
                                                               np.log(v[1] / v[0]), rtol=1e-6)
               and not np.allclose(np.diff(v), v[1] - v[0], rtol=1e-6))
    u = np.log(v) if log else v
    mid = (u[1:] + u[:-1]) / 2
    e = np.r_[u[0] - (mid[0] - u[0]), mid, u[-1] + (u[-1] - mid[-1])]
    return (np.exp(e) if log else e), log


def _log_axis(ax, axis):
    """Log scale with plain numbers at 1, 2, 5 × 10^k (readable over one or two decades)."""
    from matplotlib import ticker

    (ax.set_xscale if axis is ax.xaxis else ax.set_yscale)("log")
    axis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(ticker.NullFormatter())


def plot_phase(da, x: str, y: str, ax=None, boundaries=(), title=None, cmap="viridis",
               vmin=None, vmax=None):
    """A phase diagram: ``da`` (a 2-D DataArray over dims ``x`` and ``y``, e.g. the mean test
    error over seeds) as a pcolormesh with exact cell edges (geometric midpoints on log-spaced
    axes), a colour bar, and theory boundaries ``[(xs, ys, label), ...]`` overlaid.

    Cells where runs diverged (coordinate ``diverged_fraction`` > 0, from
    :func:`signoise.store.cell_statistic`) are hatched in red over their colour (grey when every
    run diverged and the statistic is NaN), with the fractions in the legend: a diverged cell
    is never drawn as benign (issue 12)."""
    import numpy as np
    from matplotlib.patches import Rectangle

    ax = _axes(ax, 1, width=5.2, height=4.2)
    da = da.transpose(y, x)
    xe, xlog = _edges(da[x].values)
    ye, ylog = _edges(da[y].values)
    mesh = ax.pcolormesh(xe, ye, np.asarray(da.values, dtype=float), cmap=cmap, vmin=vmin,
                         vmax=vmax, shading="flat")
    label = da.attrs.get("variable", da.name or "")
    if da.attrs.get("stat"):
        label = f"{label} ({da.attrs['stat']} over seeds)"
    ax.figure.colorbar(mesh, ax=ax, label=label)
    ax.set_facecolor("0.6")  # cells whose statistic is NaN (all runs diverged) show grey
    hatched = False
    if "diverged_fraction" in da.coords:
        frac = np.asarray(da["diverged_fraction"].transpose(y, x).values, dtype=float)
        cells = np.argwhere(np.nan_to_num(frac) > 0)
        for iy, ix in cells:
            ax.add_patch(Rectangle((xe[ix], ye[iy]), xe[ix + 1] - xe[ix], ye[iy + 1] - ye[iy],
                                   fill=False, hatch="///", edgecolor="C3", lw=0.0))
        if len(cells):
            hatched = True
            shown = frac[np.nan_to_num(frac) > 0]
            ax.add_patch(Rectangle((0, 0), 0, 0, fill=False, hatch="///", edgecolor="C3",
                                   lw=0.0, label=f"runs diverged ({100 * shown.min():.0f}–"
                                                 f"{100 * shown.max():.0f}% of a cell's seeds; "
                                                 f"{len(cells)} cells)"))
    for k, (xs, ys, text) in enumerate(boundaries):
        ax.plot(xs, ys, color="w", lw=2.2)
        ax.plot(xs, ys, color=("C3", "C1")[k % 2], lw=1.2, ls=("--", ":")[k % 2], label=text)
    if boundaries or hatched:
        ax.legend(fontsize=8, loc="best")
    ax.set_xlim(xe[0], xe[-1])
    ax.set_ylim(ye[0], ye[-1])
    for axis, log in ((ax.xaxis, xlog), (ax.yaxis, ylog)):
        if log:
            _log_axis(ax, axis)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def plot_collapse(control, value, ax=None, const=None, hue=None, title=None):
    """A collapse plot: every cell's ``value`` (e.g. mean test error) against the theory's
    control parameter ``control`` (same dims), log-x, with the fitted or given constant
    ``const`` as a vertical line and points coloured by the grid axis ``hue``."""
    import numpy as np
    import xarray as xr

    ax = _axes(ax, 1, width=5.2, height=4.0)
    control, value = xr.broadcast(control, value)
    c = np.ravel(control.values)
    v = np.ravel(value.values)
    colour = None
    if hue is not None:
        colour = np.ravel(xr.broadcast(value[hue], value)[0].values).astype(float)
    keep = (c > 0) & np.isfinite(v)
    sc = ax.scatter(c[keep], v[keep], c=None if colour is None else colour[keep], s=9,
                    cmap="plasma", alpha=0.75, edgecolors="none")
    if colour is not None:
        ax.figure.colorbar(sc, ax=ax, label=hue)
    if const is not None:
        ax.axvline(const, color="C3", ls="--", label=f"C = {const:.3g}")
        ax.legend(fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel(control.name or "control parameter")
    label = value.attrs.get("variable", value.name or "")
    ax.set_ylabel(f"{label} ({value.attrs['stat']} over seeds)" if value.attrs.get("stat") else label)
    if title:
        ax.set_title(title, fontsize=10)
    return ax
