"""Figures from results. Each function takes a Dataset and ``ax``/``axes`` (created if None),
draws, and returns the Axes; it computes nothing that the Dataset does not hold."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402


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
