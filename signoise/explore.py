"""The live explorer: move a slider, re-simulate on the gram engine, redraw (issue 9).

One matplotlib figure with ``matplotlib.widgets`` controls, in a desktop window or in Jupyter
(ipympl). The state is a dict of control values; :meth:`Explorer.set` changes it, re-runs
:func:`signoise.simulate` and redraws. Widget callbacks and tests both go through ``set``.
A redraw sets line data and blits them over a cached background (:mod:`signoise.blit`); only
panels whose limits moved and widgets that moved get their decorations redrawn.

Panels: max γ and max ρ̄ over iterations (the race of signal learning against noise
memorisation, Cao et al. 2022, Theorems 4.3-4.4), train and test error, the (γ, ρ̄)
trajectory, and the current (n, SNR) on a phase map with the boundary n·SNR^q = C.
"""

from __future__ import annotations

import math
import time

import numpy as np

from .algorithms import ALGORITHMS
from .blit import Blitter
from .config import RunConfig
from .engines.blas import single_threaded_blas
from .simulate import simulate
from .theory import cao_control, fit_constant

# The Wishart sampler draws Gram matrices without d (SPEC §3): above this d it replaces
# explicit arrays, so d = 10^6 costs what d = 10^3 costs.
WISHART_ABOVE_D = 5000

# A run records at most about this many points. Each recorded step costs a test-set
# evaluation (at n_test = 500 the records were 3/4 of a 3000-step run at 301 points); 150
# points still draw smooth curves.
MAX_POINTS = 150

# The main parameter of each gram-engine algorithm and its slider range.
MAIN_PARAM = {"sgd": ("b", 1, 20), "msgd": ("s", 0.0, 2.0), "label_noise_gd": ("p_step", 0.0, 0.45),
              "gr": ("lam", 0.0, 5.0), "pegr": ("lam", 0.0, 5.0), "fdgr": ("lam", 0.0, 5.0),
              "sam": ("rho", 0.0, 1.0), "usam": ("rho", 0.0, 1.0), "flooding": ("level", 0.0, 0.5),
              "clip": ("max_norm", 0.01, 10.0), "noisy_eval": ("s", 0.0, 0.1),
              "anti_pgd": ("s", 0.0, 0.1), "lpg": ("alpha_pos", -0.9, 2.0)}

# Slider name -> (label, low, high, integer); d, σ0 and η move on a log10 scale.
CONTROLS = {"mu_norm": ("‖μ‖", 1.0, 60.0, False), "n": ("n", 4, 80, True),
            "log10_d": ("log10 d", 2.0, 6.0, False), "log10_sigma0": ("log10 σ0", -4.0, -0.5, False),
            "log10_lr": ("log10 η", -4.0, -1.0, False), "flip": ("flip p", 0.0, 0.45, False),
            "steps": ("steps", 100, 10000, True), "seed": ("seed", 0, 99, True),
            "param": ("param", 0.0, 1.0, False)}
# log-scale sliders and the config value each moves
LOG_CONTROLS = {"log10_d": "d", "log10_sigma0": "sigma0", "log10_lr": "lr"}


def gram_algorithms() -> list[str]:
    """Every algorithm that stays in span{μ, ξ_i} and so runs on the gram engine."""
    return [name for name, alg in ALGORITHMS.items() if alg.in_span]


def state_of(cfg: RunConfig) -> dict:
    """The explorer's control values read from a config."""
    name = cfg.algorithm.name
    key = MAIN_PARAM.get(name, (None,))[0]
    param = cfg.algorithm.params.get(key, ALGORITHMS[name].params[key].default) if key else 0.0
    return {"mu_norm": cfg.data.mu, "n": cfg.data.n, "d": cfg.data.d,
            "sigma0": cfg.model.sigma0, "lr": cfg.train.lr,
            "flip": cfg.data.flip, "steps": cfg.train.steps, "seed": cfg.seed,
            "algorithm": name, "param": param}


def config_of(base: RunConfig, state: dict) -> RunConfig:
    """The config a control state stands for: ``base`` with the controlled keys replaced.

    ``train.record_every`` is raised, if needed, so that a run records at most about
    :data:`MAX_POINTS` steps (``ceil(steps / MAX_POINTS)``; never above ``steps``).
    """
    d = round(float(state["d"]))
    steps = int(state["steps"])
    name = state["algorithm"]
    changes = {"data.mu_norm": float(state["mu_norm"]), "data.n": int(state["n"]), "data.d": d,
               "data.flip": float(state["flip"]),
               "data.sampler": "wishart" if d > WISHART_ABOVE_D else "explicit",
               "model.sigma0": float(state["sigma0"]),
               "train.lr": float(state["lr"]), "train.steps": steps,
               "train.record_every": min(steps, max(base.train.record_every,
                                                    math.ceil(steps / MAX_POINTS))),
               "seed": int(state["seed"]), "algorithm.name": name}
    if name in MAIN_PARAM:
        key = MAIN_PARAM[name][0]
        value = state["param"]
        changes[f"algorithm.{key}"] = round(float(value)) if key == "b" else float(value)
    return base.updated(changes)


def phase_map(cfg: RunConfig, ns=(5, 10, 20, 40, 80), snrs=None, quiet=True):
    """Test error at the last step over a coarse (n, SNR) grid, one seed: the explorer's map.

    One :func:`signoise.simulate_batch` per n (the batch shares n). Returns ``(ns, snrs,
    error)`` with ``error`` of shape (len(snrs), len(ns)) and the Cao constant C fitted to it
    (:func:`signoise.theory.fit_constant`, threshold (p + 1/2)/2).
    """
    from .simulate import simulate_batch

    if snrs is None:
        snrs = np.geomspace(0.05, 1.5, 8)
    ns, snrs = np.asarray(ns, dtype=int), np.asarray(snrs, dtype=float)
    error = np.empty((snrs.size, ns.size))
    for k, n in enumerate(ns):
        cfgs = [cfg.updated({"data.n": int(n), "data.snr": float(s)}) for s in snrs]
        ds = simulate_batch(cfgs, quiet=quiet)
        error[:, k] = ds["test_error"].isel(step=-1).values
    control = cao_control(ns[None, :], snrs[:, None], 1.0, 1.0, cfg.model.q)
    const, _ = fit_constant(control.ravel(), error.ravel(), (cfg.data.flip + 0.5) / 2)
    return ns, snrs, error, const


# Drawing: these take data and artists, compute nothing.

def draw_race(lines, ds):
    """Max γ (j = +1, j = −1) and max ρ̄ over the recorded steps."""
    step = ds["step"].values
    lines["gamma+"].set_data(step, ds["gamma_max"].sel(j=1).values)
    lines["gamma-"].set_data(step, ds["gamma_max"].sel(j=-1).values)
    lines["rho"].set_data(step, ds["rho_bar_max"].values)


def draw_errors(lines, ds):
    """Train and test error over the recorded steps."""
    step = ds["step"].values
    lines["train"].set_data(step, ds["train_error"].values)
    lines["test"].set_data(step, ds["test_error"].values)


def draw_trajectory(lines, ds):
    """The path of (max ρ̄, max γ_{+1}) through training."""
    lines["path"].set_data(ds["rho_bar_max"].values, ds["gamma_max"].sel(j=1).values)
    lines["end"].set_data(ds["rho_bar_max"].values[-1:], ds["gamma_max"].sel(j=1).values[-1:])


def rescale(ax, room=(0.02, 0.3), fill=0.4):
    """Fit the autoscaled limits of ``ax`` to its data, but only when they need it.

    Per autoscaled axis (x, y), the view is kept while the data lie inside it and span at least
    ``fill`` of it; else it becomes the data range plus 2 % of its span below and ``room`` (one
    value per axis) above: room to grow, as γ and ρ̄ rise with ‖μ‖, n or η. A view that stays
    lets the explorer blit the lines without redrawing the panel's ticks. Returns True if a
    limit moved.
    """
    ax.relim()
    moved = False
    for axis, auto, (lo, hi), high in ((ax.xaxis, ax.get_autoscalex_on(), ax.dataLim.intervalx, room[0]),
                                       (ax.yaxis, ax.get_autoscaley_on(), ax.dataLim.intervaly, room[1])):
        v0, v1 = axis.get_view_interval()
        if not auto or not (np.isfinite(lo) and np.isfinite(hi)):
            continue
        if v0 <= lo and hi <= v1 and hi - lo >= fill * (v1 - v0):
            continue
        span = hi - lo if hi > lo else max(abs(hi), 1.0)
        view = (lo - 0.02 * span, hi + high * span)
        if view != (v0, v1):            # constant data give the same view every time
            axis.set_view_interval(*view, ignore=True)
            moved = True
    return moved


def draw_phase(ax, ns, snrs, error, const, q):
    """The precomputed map and the boundary n·SNR^q = C (Cao et al. 2022)."""
    ax.pcolormesh(ns, snrs, error, shading="nearest", cmap="viridis", vmin=0, vmax=0.5)
    n_line = np.geomspace(ns.min(), ns.max(), 100)
    ax.plot(n_line, (const / n_line) ** (1.0 / q), "w--", lw=1.5, label=f"n·SNR^{q:g} = {const:.3g}")
    ax.set(xscale="log", yscale="log", xlabel="n", ylabel="SNR", title="test error (coarse map)")
    ax.legend(fontsize=7, loc="lower left")


class Explorer:
    """The live figure: controls on the left, four panels on the right.

    Parameters
    ----------
    cfg : RunConfig
        The starting point (its other keys, e.g. m, q, n_test, record_every, stay fixed).
    phase : tuple or None or False
        ``(ns, snrs, error, const)`` from :func:`phase_map`; None computes it (a few seconds);
        False leaves the map panel empty.
    blit : bool
        Redraw by blitting (:class:`signoise.blit.Blitter`; default); False draws the whole
        figure at every change (the benchmark's baseline).
    """

    def __init__(self, cfg: RunConfig, phase=None, blit=True):
        import matplotlib.pyplot as plt
        from matplotlib.widgets import RadioButtons, Slider

        self.base = cfg
        self.state = state_of(cfg)
        self.fig = fig = plt.figure(figsize=(13, 7.5))
        grid = fig.add_gridspec(2, 2, left=0.36, right=0.98, top=0.95, bottom=0.08,
                                hspace=0.35, wspace=0.28)
        self.axes = {k: fig.add_subplot(grid[i, j]) for k, (i, j) in
                     {"race": (0, 0), "errors": (0, 1), "trajectory": (1, 0), "phase": (1, 1)}.items()}
        a = self.axes
        self.lines = {"gamma+": a["race"].plot([], [], "C0", label="max γ (j=+1)")[0],
                      "gamma-": a["race"].plot([], [], "C0--", label="max γ (j=−1)")[0],
                      "rho": a["race"].plot([], [], "C3", label="max ρ̄")[0],
                      "train": a["errors"].plot([], [], "C2", label="train")[0],
                      "test": a["errors"].plot([], [], "C4", label="test")[0],
                      "path": a["trajectory"].plot([], [], "C1")[0],
                      "end": a["trajectory"].plot([], [], "ko", ms=5)[0]}
        a["race"].set(xlabel="step", title="signal γ vs memorisation ρ̄")
        a["errors"].set(xlabel="step", title="error", ylim=(-0.02, 1.0))
        a["trajectory"].set(xlabel="max ρ̄", ylabel="max γ (j=+1)", title="(γ, ρ̄) trajectory")
        for k in ("race", "errors"):
            a[k].legend(fontsize=8, loc="upper left")
        if phase is None:
            phase = phase_map(cfg)
        self.phase = phase
        if phase:
            draw_phase(a["phase"], *phase, cfg.model.q)
        self.marker = a["phase"].plot([], [], "r*", ms=14, mec="w")[0]

        self.sliders = {}
        for k, (key, (label, low, high, integer)) in enumerate(CONTROLS.items()):
            ax = fig.add_axes([0.08, 0.92 - 0.045 * k, 0.2, 0.03])
            s = Slider(ax, label, low, high, valinit=np.clip(self._slider_value(key), low, high),
                       valstep=1 if integer else None)
            s.drawon = False        # set() redraws what changed, once per change
            s.on_changed(lambda v, key=key: self.set(**{key: v}))
            self.sliders[key] = s
        names = gram_algorithms()
        rax = fig.add_axes([0.06, 0.06, 0.12, 0.45])
        # useblit=False: its own blitting would animate the buttons, which the Blitter's axes
        # redraw would then leave out
        self.selector = RadioButtons(rax, names, active=names.index(self.state["algorithm"]),
                                     useblit=False)
        self.selector.drawon = False
        self.selector.on_clicked(lambda name: self.set(algorithm=name))
        # in an axes, not the figure: savefig draws an axes' animated artists, not a figure's
        self.status = a["trajectory"].text(0.36, 0.005, "", fontsize=8, transform=fig.transFigure,
                                           clip_on=False, in_layout=False)
        # the legends stay in the background (upper left, where rising γ, ρ̄ and falling errors
        # rarely go): drawing them at each change would cost as much as all the lines
        self.blitter = Blitter(fig, [*self.lines.values(), self.marker, self.status], enabled=blit)
        self._updating = False
        self.ds = None
        self.set()

    def _slider_value(self, key):
        """The position of slider ``key`` for the current state (log10 for d, σ0, η)."""
        if key in LOG_CONTROLS:
            return math.log10(self.state[LOG_CONTROLS[key]])
        return self.state[key]

    def set(self, **values):
        """Change controls, re-simulate, redraw.

        Names as in :data:`CONTROLS` (``log10_d=6`` or ``d=10**6`` alike) plus ``algorithm``.

        Returns the Dataset drawn; ``self.timing`` holds the seconds this change spent in
        ``simulate`` and in drawing.
        """
        if self._updating:          # a widget moved below by set itself
            return self.ds
        # the widgets to redraw: those named (a dragged slider has moved already) ...
        moved = {key for key in values if key in self.sliders}
        for log_key, key in LOG_CONTROLS.items():
            if log_key in values:
                values[key] = 10 ** values.pop(log_key)
            if key in values:
                moved.add(log_key)
        if "algorithm" in values:
            self.state["algorithm"] = values["algorithm"]
            self._param_range()
            moved.add("param")
        self.state.update(values)
        # ... and those set moves to the state here, without their callbacks
        self._updating = True
        try:
            for key, s in self.sliders.items():
                v = self._slider_value(key)
                if s.val != v:
                    s.set_val(v)
                    moved.add(key)
            if self.selector.value_selected != self.state["algorithm"]:
                self.selector.set_active(gram_algorithms().index(self.state["algorithm"]))
        finally:
            self._updating = False
        dirty = {self.sliders[key].ax for key in moved}
        if "algorithm" in values:
            dirty.add(self.selector.ax)
        self.cfg = config_of(self.base, self.state)
        t0 = time.perf_counter()
        # one BLAS thread for the set-up's products too (the driver limits only the training
        # loop): at this size threads gain nothing, and on a loaded machine they made a
        # change 2-3× slower
        with single_threaded_blas():
            self.ds = simulate(self.cfg, engine="gram", quiet=True)
        t1 = time.perf_counter()
        self.redraw(dirty)
        self.timing = {"simulate": t1 - t0, "draw": time.perf_counter() - t1}
        return self.ds

    def _param_range(self):
        """Point the param slider at the new algorithm's main parameter."""
        s = self.sliders["param"]
        key, low, high = MAIN_PARAM.get(self.state["algorithm"], ("—", 0.0, 1.0))
        if key == "b":
            high = self.state["n"]
        s.valmin, s.valmax = low, high
        s.valstep = 1 if key == "b" else None
        s.ax.set_xlim(low, high)
        s.label.set_text(key)
        default = ALGORITHMS[self.state["algorithm"]].params[key].default if key != "—" else 0.0
        self.state["param"] = min(max(default, low), high) if key != "b" else high

    def redraw(self, dirty=()):
        """Set the artists' data from ``self.ds`` and show it.

        Only the three data panels are rescaled (the phase map is static); a panel whose
        limits moved joins ``dirty``, the axes whose decorations are redrawn
        (:meth:`signoise.blit.Blitter.update`); everything else is blitted.
        """
        ds, cfg = self.ds, self.cfg
        draw_race(self.lines, ds)
        draw_errors(self.lines, ds)
        draw_trajectory(self.lines, ds)
        self.marker.set_data([cfg.data.n], [cfg.data.SNR])
        dirty = set(dirty)
        # steps on x: tight; γ, ρ̄ on x or y: room to grow
        for k, room in (("race", (0.02, 0.3)), ("errors", (0.02, 0.0)), ("trajectory", (0.3, 0.3))):
            if rescale(self.axes[k], room):
                dirty.add(self.axes[k])
        self.status.set_text(f"{cfg.algorithm.name} {cfg.algorithm.params}  d={cfg.data.d} "
                             f"({cfg.data.sampler})  SNR={cfg.data.SNR:.3g}  "
                             f"n·SNR^q={cfg.data.n * cfg.data.SNR ** cfg.model.q:.3g}  "
                             f"final test error {float(ds['test_error'][-1]):.3f}")
        self.blitter.update(dirty)


def explore(cfg: RunConfig | None = None, phase=None, show=True) -> Explorer:
    """Open the explorer on ``cfg`` (default: the packaged Cao et al. benign config)."""
    if cfg is None:
        from importlib.resources import files

        from .config import load_config
        # a 500-example test set: the test error costs less than the training at n = 20
        cfg = load_config(files("signoise") / "configs" / "cao2022_benign.toml").updated(
            {"data.n_test": 500})
    ex = Explorer(cfg, phase=phase)
    if show:
        import matplotlib.pyplot as plt
        plt.show()
    return ex
