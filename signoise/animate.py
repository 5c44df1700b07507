"""Animations of saved results: a run's race of γ against ρ̄, a sweep's phase diagram forming.

A run (``RUN.nc``): frame k shows every recorded step up to ``steps[idx[k]]`` of max γ,
max ρ̄ and the train/test errors (the race of Cao et al. 2022, Theorems 4.3-4.4). A sweep
store: frame k is the phase diagram of ``cell_statistic(ds, var, stat, step=idx[k])``, so the
boundary appears as training goes on. GIF through Pillow; MP4 through ffmpeg when it exists.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .constraints import reject
from .driver import progress

MAX_FRAMES = 200


def frame_indices(count: int, frames: int) -> np.ndarray:
    """At most ``frames`` positions on a ``step`` axis of length ``count``, evenly spread,
    the first and last included."""
    if not 1 <= frames <= MAX_FRAMES:
        reject("frames", frames, f"an integer in [1, {MAX_FRAMES}]")
    return np.unique(np.linspace(0, count - 1, min(frames, count)).round().astype(int))


class RunAnimation:
    """The race of max γ against max ρ̄ and the errors, one frame per chosen step."""

    def __init__(self, ds, frames: int = 100, dpi: int = 80):
        import matplotlib.pyplot as plt

        self.ds = ds
        self.idx = frame_indices(ds.sizes["step"], frames)
        self.fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.6), dpi=dpi, layout="constrained")
        step = ds["step"].values
        self.series = {"gamma+": ds["gamma_max"].sel(j=1).values, "gamma-": ds["gamma_max"].sel(j=-1).values,
                       "rho": ds["rho_bar_max"].values, "train": ds["train_error"].values,
                       "test": ds["test_error"].values}
        self.step = step
        self.lines = {"gamma+": a.plot([], [], "C0", label="max γ (j=+1)")[0],
                      "gamma-": a.plot([], [], "C0--", label="max γ (j=−1)")[0],
                      "rho": a.plot([], [], "C3", label="max ρ̄")[0],
                      "train": b.plot([], [], "C2", label="train error")[0],
                      "test": b.plot([], [], "C4", label="test error")[0]}
        top = np.nanmax([np.nanmax(self.series[k]) for k in ("gamma+", "gamma-", "rho")])
        a.set(xlim=(step[0], step[-1]), ylim=(0, 1.05 * top if top > 0 else 1), xlabel="step",
              title="signal γ vs memorisation ρ̄")
        b.set(xlim=(step[0], step[-1]), ylim=(-0.02, 1.0), xlabel="step", title="error")
        a.legend(fontsize=8, loc="upper left")
        b.legend(fontsize=8, loc="upper right")

    def update(self, k: int):
        """Draw frame k: the recorded steps up to ``step[idx[k]]``."""
        end = self.idx[k] + 1
        for key, line in self.lines.items():
            line.set_data(self.step[:end], self.series[key][:end])
        return list(self.lines.values())


class SweepAnimation:
    """A sweep's phase diagram of ``stat`` over seeds of ``var``, one frame per chosen step."""

    def __init__(self, ds, x: str, y: str, var: str = "test_error", stat: str = "mean",
                 frames: int = 50, dpi: int = 80):
        import matplotlib.pyplot as plt

        from .plot import plot_phase
        from .store import cell_statistic

        for key, value in (("x", x), ("y", y)):
            if value not in ds.dims:
                reject(key, value, "a grid axis of the store: " + ", ".join(
                    d for d in ds.dims if d.startswith(("data.", "model.", "algorithm.", "train."))))
        self.ds, self.x, self.y, self.var, self.stat = ds, x, y, var, stat
        self.idx = frame_indices(ds.sizes["step"], frames)
        self.frame_data = [cell_statistic(ds, var, stat, step=int(i)).transpose(y, x) for i in self.idx]
        self.fig, ax = plt.subplots(figsize=(5.6, 4.4), dpi=dpi, layout="constrained")
        last = self.frame_data[-1]
        vmax = float(np.nanmax([np.nanmax(f.values) for f in self.frame_data]))
        plot_phase(self.frame_data[0], x, y, ax=ax, vmin=0.0, vmax=vmax)
        self.mesh = ax.collections[0]
        self.title = ax.set_title("", fontsize=10)
        self.steps = ds["step"].values
        self.shape = last.shape

    def update(self, k: int):
        """Draw frame k: the statistic at ``step[idx[k]]``."""
        self.mesh.set_array(np.asarray(self.frame_data[k].values, dtype=float).ravel())
        self.title.set_text(f"{self.var} ({self.stat}) at step {int(self.steps[self.idx[k]])}")
        return [self.mesh, self.title]


def writer_for(path: Path, fps: int):
    """Pillow for .gif; ffmpeg for .mp4 (a clear error when ffmpeg is missing)."""
    from matplotlib import animation

    suffix = path.suffix.lower()
    if suffix == ".gif":
        return animation.PillowWriter(fps=fps)
    if suffix == ".mp4":
        if not animation.writers.is_available("ffmpeg"):
            reject("output", str(path), "a .gif, or ffmpeg on PATH for .mp4 (install ffmpeg)",
                   context="without ffmpeg")
        return animation.FFMpegWriter(fps=fps)
    reject("output", str(path), "a file ending in .gif or .mp4")


def save(anim, path, fps: int = 20, overwrite: bool = False, quiet: bool = False) -> Path:
    """Write every frame of ``anim`` (a RunAnimation or SweepAnimation) to ``path``."""
    import matplotlib.pyplot as plt

    path = Path(path)
    if not 1 <= fps <= 60:
        reject("fps", fps, "an integer in [1, 60]")
    writer = writer_for(path, fps)
    if path.exists() and not overwrite:
        raise FileExistsError(f"output = '{path}' exists: pass --overwrite to replace it")
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    with progress(len(anim.idx), quiet, unit="frame") as bar, writer.saving(anim.fig, str(tmp), anim.fig.dpi):
        for k in range(len(anim.idx)):
            anim.update(k)
            writer.grab_frame()
            bar.update(1)
    tmp.replace(path)              # atomic: a reader never sees half a file
    plt.close(anim.fig)
    return path


def animate(source, output, x=None, y=None, var="test_error", stat="mean", frames=None,
            fps=20, dpi=80, overwrite=False, quiet=False) -> Path:
    """Animate a saved run (``.nc``) or a sweep store (with ``x`` and ``y``) into ``output``."""
    import xarray as xr

    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"input = '{source}' does not exist")
    if (x is None) != (y is None):
        reject("x/y", (x, y), "both (a sweep store) or neither (a run)")
    writer_for(Path(output), fps)          # fail on a bad suffix before any work
    if x is None:
        ds = xr.load_dataset(source)
        anim = RunAnimation(ds, frames=frames or 100, dpi=dpi)
    else:
        from .store import open_checked
        anim = SweepAnimation(open_checked(source), x, y, var=var, stat=stat,
                              frames=frames or 50, dpi=dpi)
    return save(anim, output, fps=fps, overwrite=overwrite, quiet=quiet)
