"""``simulate``: the single entry point for one run; returns an ``xarray.Dataset``.

The driver samples (or takes) a problem, hands it to an engine's ``Runner``, advances the
compiled kernel from one recorded step to the next, and records γ, ρ and the metrics.
"""

from __future__ import annotations

import contextlib
import sys

import numpy as np
import xarray as xr

from . import __version__
from .algorithms import ALGORITHMS
from .data import STREAM_ALGO, Problem, rng_for, sample_problem
from .engines import get_engine
from .engines.common import (CONVERGED, DIVERGED, METRICS, RUNNING, Params,
                             single_threaded_blas)
from .rules import reject


def check_problem(problem: Problem, cfg):
    """A user-given problem must match the config's shapes."""
    problem.validate(m=cfg.model.m)
    for key, have, want in (("n", problem.n, cfg.data.n), ("d", problem.d, cfg.data.d)):
        if have != want:
            reject(f"problem.{key}", have, f"data.{key} = {want} from the config")


def progress(total, quiet, unit="step"):
    """A tqdm bar on a terminal; nothing when piped or quiet."""
    from tqdm.auto import tqdm

    return tqdm(total=total, unit=unit, disable=quiet or not sys.stderr.isatty(), leave=False)


def make_runner(cfg, engine, seed, problem=None):
    """The engine's Runner for one run: inputs from ``problem`` (or sampled), algorithm stream."""
    E = get_engine(engine)
    if engine == "gram" and not ALGORITHMS[cfg.algorithm.name].in_span:
        reject("algorithm.name", cfg.algorithm.name,
               "an algorithm that keeps w − w0 in span{μ, ξ_i} on engine 'gram' "
               "(this one leaves the span: use engine='weights', CLI --engine weights)")
    if problem is None:
        problem = sample_problem(cfg, seed)
    else:
        check_problem(problem, cfg)
    runner = E.Runner(E.prepare(problem), Params.from_config(cfg), rng_for(seed, STREAM_ALGO))
    return runner, problem


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
        ``rho_bar_max (step)``, ``rho_under_min (step)``, ``rho_bar_mean (step)``, labels
        ``y``/``y_true`` (i), and ``diverged``, ``stopped_at``. Attributes: the config as TOML,
        seed, engine, versions.
    """
    seed = cfg.seed if seed is None else int(seed)
    runner, problem = make_runner(cfg, engine, seed, problem)
    steps, every = cfg.train.steps, cfg.train.record_every
    records = [_record(runner)]
    status = RUNNING
    blas = single_threaded_blas() if engine == "gram" else contextlib.nullcontext()
    with blas, progress(steps, quiet) as bar:
        while runner.t < steps and status == RUNNING:
            done, status = runner.advance(min(every - runner.t % every, steps - runner.t))
            bar.update(done)
            if status == CONVERGED and done == 0:
                break  # the threshold was met exactly at the last recorded step
            records.append(_record(runner))
    return _dataset(records, problem, cfg, seed, engine, status, runner.t)


def _record(runner):
    gamma, rho, resid = runner.coefficients()
    with np.errstate(all="ignore"):
        values = runner.evaluate()
    return {"step": runner.t, "gamma": gamma, "rho": rho, "residual_norm": resid,
            "metrics": values}


def rho_summaries(rho, y):
    """max ρ̄, min ρ̲ and mean_i max_r ρ̄_{y_i,r,i} over the trailing (j, r, i) axes of ρ."""
    own = y[..., None, None, :] == np.array([1.0, -1.0])[:, None, None]   # y_i = j, (..., 2, 1, n)
    rho_bar = np.where(own, rho, -np.inf)
    return (rho_bar.max(axis=(-3, -2, -1)), np.where(~own, rho, np.inf).min(axis=(-3, -2, -1)),
            rho_bar.max(axis=-2).max(axis=-2).mean(axis=-1))


def _dataset(records, problem, cfg, seed, engine, status, t_end):
    steps = np.array([r["step"] for r in records])
    coords = {"step": steps, "j": np.array([1, -1]), "r": np.arange(cfg.model.m),
              "i": np.arange(problem.n)}
    gamma = np.stack([r["gamma"] for r in records])
    rho = np.stack([r["rho"] for r in records])
    bar_max, under_min, bar_mean = rho_summaries(rho, problem.y)
    data = {
        "gamma": (("step", "j", "r"), gamma), "rho": (("step", "j", "r", "i"), rho),
        "gamma_max": (("step", "j"), gamma.max(axis=2)),
        "rho_bar_max": ("step", bar_max), "rho_under_min": ("step", under_min),
        "rho_bar_mean": ("step", bar_mean),
        "y": ("i", problem.y), "y_true": ("i", problem.y_true),
        "diverged": ((), status == DIVERGED), "stopped_at": ((), t_end),
    }
    values = np.stack([r["metrics"] for r in records])
    for k, name in enumerate(METRICS):
        data[name] = ("step", values[:, k])
    if engine == "weights":
        data["residual_norm"] = (("step", "j", "r"), np.stack([r["residual_norm"] for r in records]))
    ds = xr.Dataset(data, coords=coords)
    ds.attrs.update(run_attrs(cfg, seed, engine, status))
    describe(ds)
    return ds


def run_attrs(cfg, seed, engine, status):
    """Attributes of a run's Dataset: the config as TOML, seed, engine, status, versions."""
    return {"config": cfg.to_toml(), "seed": seed, "engine": engine,
            "status": {RUNNING: "finished", DIVERGED: "diverged", CONVERGED: "converged"}[status],
            "algorithm": cfg.algorithm.name, "mu_norm": cfg.data.mu, "snr": cfg.data.SNR,
            **version_attrs(engine)}


def version_attrs(engine):
    import numba

    return {"backend": "numba-cpu" if engine in ("gram", "weights") else engine,
            "signoise_version": __version__, "numpy_version": np.__version__,
            "numba_version": numba.__version__, "xarray_version": xr.__version__}


LONG_NAMES = {
    "gamma": "signal learning γ_{j,r}", "rho": "noise memorisation ρ_{j,r,i}",
    "gamma_max": "max_r γ_{j,r}", "rho_bar_max": "max_{i,r} ρ̄ (ρ where y_i = j)",
    "rho_under_min": "min_{i,r} ρ̲ (ρ where y_i = −j)",
    "rho_bar_mean": "mean_i max_r ρ̄_{y_i,r,i}",
    "train_loss": "training loss L_S", "train_error": "training 0-1 error (observed labels)",
    "test_loss": "test loss (observed labels)", "test_error": "test 0-1 error (observed labels)",
    "test_error_clean": "test 0-1 error (true labels)",
    "margin_min": "min_i y_i f(x_i)", "margin_max": "max_i y_i f(x_i)",
    "grad_sq": "‖∇L_S‖²", "example_grad_sq": "(1/n) Σ_i ‖∇ℓ_i‖²",
    "grad_var": "pattern-learning variance (1/n) Σ_i ‖∇ℓ_i − ∇L_S‖²",
    "grad_var_signal": "its part along μ", "grad_var_noise": "its part orthogonal to μ",
    "hessian_trace": "Tr ∇²L_S",
    "residual_norm": "‖W − W0 − projection on span{μ, ξ_i}‖",
}


def describe(ds):
    """Attach long names to the variables of a result."""
    for name, text in LONG_NAMES.items():
        if name in ds:
            ds[name].attrs["long_name"] = text


__all__ = ["simulate"]
