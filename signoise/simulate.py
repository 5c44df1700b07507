"""``simulate``: the single entry point for one run; returns an ``xarray.Dataset``.

The driver samples (or takes) a problem, hands it to an engine, advances the engine's
compiled kernel from one recorded step to the next, and records γ, ρ and the metrics.
"""

from __future__ import annotations

import sys

import numpy as np
import xarray as xr

from . import __version__
from .data import Problem, sample_problem
from .engines import ENGINES, get_engine
from .engines.common import CONVERGED, DIVERGED, METRICS, Params
from .rules import reject


def _check_problem(problem: Problem, cfg):
    problem.validate(m=cfg.model.m)
    for key, have, want in (("n", problem.n, cfg.data.n), ("d", problem.d, cfg.data.d)):
        if have != want:
            reject(f"problem.{key}", have, f"data.{key} = {want} from the config")


def _inputs(E, engine, cfg, seed, problem):
    """The run's problem and the engine's inputs: given, explicit, or Wishart-reduced (SPEC §3)."""
    wishart = cfg.data.sampler == "wishart"
    if wishart and engine != "gram":
        reject("engine", engine, "'gram' with data.sampler = 'wishart' (it draws inner "
               "products, not weights); use data.sampler = 'explicit' for engine 'weights'")
    if problem is None:
        from .wishart import sample_reduced

        problem = (sample_reduced if wishart else sample_problem)(cfg, seed)
    elif wishart and problem.d == 1 + cfg.data.n + 2 * cfg.model.m and problem.n == cfg.data.n:
        problem.validate(m=cfg.model.m)  # a reduced problem from wishart.sample_reduced
    else:
        _check_problem(problem, cfg)
    return problem, E.prepare(problem)


def _progress(total, quiet):
    """A tqdm bar on a terminal; nothing when piped or quiet."""
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="step", disable=quiet or not sys.stderr.isatty(), leave=False)


def simulate(cfg, engine: str = "gram", problem: Problem | None = None, seed: int | None = None,
             quiet: bool = False) -> xr.Dataset:
    """Train one network and record its signal-noise decomposition over iterations.

    Parameters
    ----------
    cfg : RunConfig
        The run (data, model, algorithm, train sections).
    engine : {"gram", "weights"}
        "gram" trains the coefficients γ, ρ at O(m n²) per step (SPEC §3); "weights" trains
        the explicit filters W (2, m, d). On the same problem both give the same numbers.
    problem : Problem, optional
        Explicit data and initial weights (e.g. from :func:`sample_problem` or built by hand);
        drawn from ``cfg`` and ``seed`` if not given.
    seed : int, optional
        Overrides ``cfg.seed``.
    quiet : bool
        Never show a progress bar.

    Returns
    -------
    xarray.Dataset
        ``gamma (step, j, r)``, ``rho (step, j, r, i)``, the metrics of
        :data:`~signoise.engines.common.METRICS` over ``step``, summaries ``gamma_max (step, j)``,
        ``rho_bar_max (step)``, ``rho_under_min (step)``, ``rho_bar_mean (step)``, labels ``y``/``y_true`` (i), and
        ``diverged``, ``stopped_at``. Attributes: the config as TOML, seed, engine, versions.
    """
    E = get_engine(engine)
    seed = cfg.seed if seed is None else int(seed)
    problem, inp = _inputs(E, engine, cfg, seed, problem)
    params = Params.from_config(cfg)
    state = E.init_state(inp)
    run = E.step_fn(inp, params)

    steps, every = cfg.train.steps, cfg.train.record_every
    records, t, status = [], 0, 0
    records.append(_record(E, inp, state, params, t))
    with _progress(steps, quiet) as bar:
        while t < steps:
            done, status = run(state, min(every, steps - t))
            t += done
            bar.update(done)
            records.append(_record(E, inp, state, params, t))
            if status != 0:
                break
    if status == CONVERGED and records[-1]["step"] == records[-2]["step"]:
        records.pop()  # the threshold was met exactly at a recorded step
    return _dataset(records, problem, cfg, seed, engine, status, t)


def simulate_batch(cfgs, seeds=None, engine: str = "gram", rho: str = "summary",
                   quiet: bool = False) -> xr.Dataset:
    """Many runs of equal shapes; the result equals running :func:`simulate` on each.

    Parameters
    ----------
    cfgs : RunConfig or sequence of RunConfig
        One config per run, or one config for all. Runs may differ in any value (‖μ‖, lr,
        flip, algorithm, ...) but must share n, m, n_test, steps and record_every.
    seeds : sequence of int, optional
        One seed per run (default: each config's seed).
    rho : {"summary", "full"}
        "full" keeps ``rho (run, step, j, r, i)``; "summary" keeps only ``rho_bar_max``,
        ``rho_under_min`` and ``rho_bar_mean``, so 10^5 runs fit in memory.

    Returns
    -------
    xarray.Dataset
        The variables of :func:`simulate` with a leading ``run`` dimension, coordinate ``seed
        (run)``, per-run ``diverged`` and ``stopped_at``. A run that stopped early (diverged or
        under ``loss_threshold``) keeps its last state: later records repeat it (NaN if it
        diverged). Labels ``y``, ``y_true`` are not included.
    """
    if not isinstance(cfgs, (list, tuple)):
        cfgs = [cfgs] * (1 if seeds is None else len(seeds))
    if seeds is None:
        seeds = [c.seed for c in cfgs]
    if len(seeds) != len(cfgs):
        reject("seeds", len(seeds), f"one seed per config ({len(cfgs)})")
    if rho not in ("summary", "full"):
        reject("rho", rho, "'summary' or 'full'")
    shape_keys = ("data.n", "model.m", "data.n_test", "train.steps", "train.record_every")
    ref = cfgs[0]
    for c in cfgs[1:]:
        for key in shape_keys:
            if c.get(key) != ref.get(key):
                reject(key, c.get(key), f"the same value in every run of a batch ({ref.get(key)})")
    schedule = np.unique(np.r_[np.arange(0, ref.train.steps, ref.train.record_every),
                               ref.train.steps])
    runs = []
    for c, s in zip(cfgs, seeds):
        ds = simulate(c, engine=engine, seed=s, quiet=True)
        ds = ds.drop_vars(["y", "y_true"] + ([] if rho == "full" else ["rho", "i"]))
        ds = ds.reindex(step=schedule, method="ffill")
        runs.append(ds)
    out = xr.concat(runs, dim="run", coords="minimal", compat="override",
                    combine_attrs="drop")
    out = out.assign_coords(seed=("run", np.asarray(seeds, dtype=np.int64)))
    out.attrs.update({k: v for k, v in _attrs(ref, seeds[0], engine, 0).items()
                      if k.endswith("version") or k in ("engine", "backend")})
    return out


def _record(E, inp, state, params, t):
    gamma, rho, resid = E.coefficients(inp, state)
    with np.errstate(all="ignore"):
        out = dict(E.evaluate(inp, state, params))
    out.update(step=t, gamma=gamma, rho=rho, residual_norm=resid)
    return out


def _dataset(records, problem, cfg, seed, engine, status, t_end):
    steps = np.array([r["step"] for r in records])
    n, m = problem.n, problem.w0.shape[1]
    coords = {"step": steps, "j": np.array([1, -1]), "r": np.arange(m), "i": np.arange(n)}
    gamma = np.stack([r["gamma"] for r in records])
    rho = np.stack([r["rho"] for r in records])
    y = problem.y
    own = (y[None, :] == np.array([1.0, -1.0])[:, None])[None, :, None, :]  # y_i = j
    data = {
        "gamma": (("step", "j", "r"), gamma),
        "rho": (("step", "j", "r", "i"), rho),
        "gamma_max": (("step", "j"), gamma.max(axis=2)),
        "rho_bar_max": ("step", np.where(own, rho, -np.inf).max(axis=(1, 2, 3))),
        "rho_under_min": ("step", np.where(~own, rho, np.inf).min(axis=(1, 2, 3))),
        "rho_bar_mean": ("step", np.where(own, rho, -np.inf).max(axis=2).max(axis=1).mean(axis=1)),
        "y": ("i", problem.y), "y_true": ("i", problem.y_true),
        "diverged": ((), status == DIVERGED), "stopped_at": ((), t_end),
    }
    for name in METRICS:
        data[name] = ("step", np.array([r[name] for r in records], dtype=float))
    if engine == "weights":
        data["residual_norm"] = (("step", "j", "r"), np.stack([r["residual_norm"] for r in records]))
    ds = xr.Dataset(data, coords=coords)
    ds.attrs.update(_attrs(cfg, seed, engine, status))
    _describe(ds)
    return ds


def _attrs(cfg, seed, engine, status):
    import numba

    return {
        "config": cfg.to_toml(), "seed": seed, "engine": engine, "backend": "numba-cpu",
        "status": {0: "finished", 1: "diverged", 2: "converged"}[status],
        "algorithm": cfg.algorithm.name, "mu_norm": cfg.data.mu, "snr": cfg.data.SNR,
        "signoise_version": __version__, "numpy_version": np.__version__,
        "numba_version": numba.__version__, "xarray_version": xr.__version__,
    }


_LONG_NAMES = {
    "gamma": "signal learning γ_{j,r}", "rho": "noise memorisation ρ_{j,r,i}",
    "gamma_max": "max_r γ_{j,r}", "rho_bar_max": "max_{i,r} ρ̄ (ρ where y_i = j)",
    "rho_under_min": "min_{i,r} ρ̲ (ρ where y_i = −j)",
    "rho_bar_mean": "mean_i max_r ρ̄_{y_i,r,i}", "train_loss": "training loss L_S",
    "train_error": "training 0-1 error (observed labels)", "test_loss": "test loss (observed labels)",
    "test_error": "test 0-1 error (observed labels)", "test_error_clean": "test 0-1 error (true labels)",
    "margin_min": "min_i y_i f(x_i)", "margin_max": "max_i y_i f(x_i)",
    "residual_norm": "‖W − W0 − projection on span{μ, ξ_i}‖",
}


def _describe(ds):
    for name, text in _LONG_NAMES.items():
        if name in ds:
            ds[name].attrs["long_name"] = text


__all__ = ["simulate", "simulate_batch", "ENGINES"]
