"""``simulate_batch``: many runs of equal shapes in one compiled call, parallel over runs.

The gram engine's :func:`~signoise.engines.gram.advance_batch` runs every run's own
:func:`~signoise.engines.gram.advance` inside a ``prange`` over runs (never over a reduction
inside a run), so each run's numbers are those of :func:`~signoise.simulate.simulate`, whatever
the thread count. Other engines fall back to one run at a time.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .engines import get_engine
from .engines.common import DIVERGED, METRICS, RUNNING, draw_inputs, single_threaded_blas
from .rules import reject
from .simulate import describe, make_runner, progress, rho_summaries, simulate, version_attrs

_SHARED = ("data.n", "model.m", "data.n_test", "train.steps", "train.record_every")


def _normalise(cfgs, seeds, rho):
    if not isinstance(cfgs, (list, tuple)):
        cfgs = [cfgs] * (1 if seeds is None else len(seeds))
    cfgs = list(cfgs)
    seeds = [c.seed for c in cfgs] if seeds is None else [int(s) for s in seeds]
    if not cfgs or len(seeds) != len(cfgs):
        reject("seeds", len(seeds), f"one seed per config ({len(cfgs)} configs, at least one)")
    if rho not in ("summary", "full"):
        reject("rho", rho, "'summary' or 'full'")
    ref = cfgs[0]
    for c in cfgs[1:]:
        for key in _SHARED:
            if c.get(key) != ref.get(key):
                reject(key, c.get(key), f"the same value in every run of a batch ({ref.get(key)})")
    return cfgs, seeds


def schedule(train):
    """Recorded steps of a full run: 0, k, 2k, ..., steps."""
    return np.unique(np.r_[np.arange(0, train.steps, train.record_every), train.steps])


def simulate_batch(cfgs, seeds=None, engine: str = "gram", rho: str = "summary",
                   quiet: bool = False) -> xr.Dataset:
    """Many runs of equal shapes; each run's numbers equal :func:`simulate`'s.

    Parameters
    ----------
    cfgs : RunConfig or sequence of RunConfig
        One config per run, or one config for all. Runs may differ in any value (‖μ‖, d, lr,
        flip, algorithm, ...) but must share n, m, n_test, steps and record_every.
    seeds : sequence of int, optional
        One seed per run (default: each config's seed).
    engine : {"gram", "weights"}
        "gram" runs all runs in one parallel kernel; "weights" runs them one by one.
    rho : {"summary", "full"}
        "full" keeps ``rho (run, step, j, r, i)``; "summary" keeps only ``rho_bar_max``,
        ``rho_under_min`` and ``rho_bar_mean``, so 10^5 runs fit in memory.

    Returns
    -------
    xarray.Dataset
        The variables of :func:`simulate` with a leading ``run`` dimension, coordinate ``seed
        (run)``, per-run ``diverged`` and ``stopped_at``, all on the full schedule of recorded
        steps. A run that stopped early (diverged, or under ``loss_threshold``) keeps its last
        state: later records repeat it (NaN if it diverged). Labels are not included.
    """
    cfgs, seeds = _normalise(cfgs, seeds, rho)
    get_engine(engine)
    if engine != "gram":
        return _one_by_one(cfgs, seeds, engine, rho)
    from .engines.gram import advance_batch, evaluate_batch

    runners = [make_runner(c, engine, s)[0] for c, s in zip(cfgs, seeds)]
    B = len(runners)
    stack = lambda name: np.stack([getattr(r.inp, name) for r in runners])  # noqa: E731
    G, Z0, y, y_true = stack("G"), stack("Z0"), stack("y"), stack("y_true")
    Gt, Z0t, y_t, y_true_t = stack("Gt"), stack("Z0t"), stack("y_t"), stack("y_true_t")
    beta = np.stack([r.state[0] for r in runners])
    bias = np.stack([r.state[1] for r in runners])
    par = lambda name, dtype=np.float64: np.array([getattr(r.params, name) for r in runners],  # noqa: E731
                                                  dtype=dtype)
    q, a, lr, thr = par("q"), par("a"), par("lr"), par("loss_threshold")
    use_bias, code = par("use_bias", np.bool_), par("code", np.int64)
    theta = np.stack([r.params.theta for r in runners])
    F = np.stack([r.F for r in runners]) if len({r.F.shape for r in runners}) == 1 else None
    if F is None:  # some runs need the noise factor: give every run one
        from .engines.gram import noise_factor
        F = np.stack([noise_factor(r.inp.G) for r in runners])

    train = cfgs[0].train
    steps = schedule(train)
    n, m = y.shape[1], Z0.shape[2]
    out = np.empty((len(steps), B, len(METRICS)))
    gammas = np.empty((len(steps), B, 2, m))
    rhos = np.empty((len(steps), B, 2, m, n))
    active = np.ones(B, np.bool_)
    done = np.zeros(B, np.int64)
    status = np.zeros(B, np.int64)
    stopped_at = np.zeros(B, np.int64)
    sq = np.einsum("bii->bi", G)
    jsign = np.array([1.0, -1.0])[None, :, None]

    def record(k):
        with np.errstate(all="ignore"), single_threaded_blas():
            evaluate_batch(G, Z0, y, y_true, Gt, Z0t, y_t, y_true_t, beta, bias, q, a,
                           use_bias, out[k])
        gammas[k] = jsign * beta[:, :, :, 0] * sq[:, None, None, 0]
        rhos[k] = beta[:, :, :, 1:] * sq[:, None, None, 1:]

    record(0)
    with single_threaded_blas(), progress(train.steps, quiet) as bar:
        for k in range(1, len(steps)):
            nsteps = int(steps[k] - steps[k - 1])
            draws = [_draw(r_, int(steps[k - 1]), nsteps, n, m) for r_ in runners]
            omega, ysign, eps = (_stack([d[x] for d in draws], fill)
                                 for x, fill in enumerate((1.0 / n, 1.0, 0.0)))
            done[:] = 0
            advance_batch(G, Z0, y, y_true, beta, bias, q, a, use_bias, lr, code, theta, nsteps,
                          thr, omega, ysign, eps, F, active, done, status)
            stopped_at[active] += done[active]
            active &= status == RUNNING
            record(k)
            bar.update(nsteps)
    return _dataset(seeds, steps, out, gammas, rhos, status, stopped_at, rho, engine,
                    y)


def _draw(runner, t0, nsteps, n, m):
    return draw_inputs(runner.params, runner.rng, t0, nsteps, n, m, n + 2)


def _stack(arrays, fill):
    """Stack per-run random inputs; runs without any (empty) get the neutral value ``fill``
    (weight 1/n, label sign 1, zero noise), which their rule ignores or which equals GD."""
    longest = max(a.shape[0] for a in arrays)
    if any(a.shape[0] != longest for a in arrays):
        arrays = [a if a.shape[0] == longest else np.full((longest,) + a.shape[1:], fill)
                  for a in arrays]
    return np.stack(arrays)


def _dataset(seeds, steps, out, gammas, rhos, status, stopped_at, rho, engine, y):
    m, n = gammas.shape[-1], rhos.shape[-1]
    rhos = rhos.transpose(1, 0, 2, 3, 4)
    bar_max, under_min, bar_mean = rho_summaries(rhos, y[:, None, :])
    gamma = gammas.transpose(1, 0, 2, 3)
    data = {
        "gamma": (("run", "step", "j", "r"), gamma),
        "gamma_max": (("run", "step", "j"), gamma.max(axis=3)),
        "rho_bar_max": (("run", "step"), bar_max), "rho_under_min": (("run", "step"), under_min),
        "rho_bar_mean": (("run", "step"), bar_mean),
        "diverged": ("run", status == DIVERGED), "stopped_at": ("run", stopped_at),
    }
    for k, name in enumerate(METRICS):
        data[name] = (("run", "step"), out[:, :, k].T.copy())
    coords = {"step": steps, "j": np.array([1, -1]), "r": np.arange(m),
              "seed": ("run", np.asarray(seeds, dtype=np.int64))}
    if rho == "full":
        data["rho"] = (("run", "step", "j", "r", "i"), rhos)
        coords["i"] = np.arange(n)
    ds = xr.Dataset(data, coords=coords)
    ds.attrs.update({"engine": engine, **version_attrs(engine)})
    describe(ds)
    return ds


def _one_by_one(cfgs, seeds, engine, rho):
    steps = schedule(cfgs[0].train)
    runs = []
    for c, s in zip(cfgs, seeds):
        ds = simulate(c, engine=engine, seed=s, quiet=True)
        ds = ds.drop_vars(["y", "y_true"] + ([] if rho == "full" else ["rho", "i"]))
        runs.append(ds.reindex(step=steps, method="ffill"))
    out = xr.concat(runs, dim="run", coords="minimal", compat="override", combine_attrs="drop")
    out = out.assign_coords(seed=("run", np.asarray(seeds, dtype=np.int64)))
    out.attrs.update({"engine": engine, **version_attrs(engine)})
    return out
