"""Results as ``xarray.Dataset``: the one builder for single runs and batches, and the way back
from a result to the config that made it (:func:`config_of`).

Variables (DESIGN.md contract): ``gamma``, ``rho``, the metrics of
:data:`~signoise.diagnostics.METRICS` and the ρ summaries over ``step``; per run ``y``,
``y_true``, ``diverged``, ``stopped_at``, ``status``; the final state (``state_*``) from which
a run can be continued. A batch has a leading ``run`` dimension and the config keys that vary
between its runs as coordinates on ``run``.
"""

from __future__ import annotations

import tomllib

import numpy as np
import xarray as xr

from . import __version__
from .diagnostics import METRICS
from .driver import DIVERGED, STATUS, Records

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
    "hessian_trace": "Tr ∇²L_S (for 1 < q < 2 its pointwise value, where σ'' exists)",
    "residual_norm": "‖W − W0 − projection on span{μ, ξ_i}‖",
    "readout": "second-layer weight a_{j,r} (F_j = Σ_r a_{j,r} Σ_p σ)",
    "stopped_at": "the step the run reached", "diverged": "loss or weights became NaN/inf",
}

#: Per-run variables of a batch that a sweep store does not keep (text, labels, final state).
NOT_IN_STORE = ("config", "status", "y", "y_true", "state_rng")


def version_attrs(engine: str, backend: str = "numba-cpu") -> dict:
    """The software a result was computed with."""
    import numba

    return {"engine": engine, "backend": backend, "signoise_version": __version__,
            "numpy_version": np.__version__, "numba_version": numba.__version__,
            "xarray_version": xr.__version__}


def build(rec: Records, runs: list, engine: str, backend: str = "numba") -> xr.Dataset:
    """The Dataset of a batch (dimension ``run`` first) from the driver's records."""
    m, n = rec.gamma.shape[-1], len(runs[0].inputs.y)
    data = dict(recorded(rec))
    data.update({
        "y": (("run", "i"), np.stack([r.inputs.y for r in runs])),
        "y_true": (("run", "i"), np.stack([r.inputs.y_true for r in runs])),
        "status": ("run", np.array([STATUS[s] for s in range(max(STATUS) + 1)])[rec.status]),
        "config": ("run", _config_texts(runs)),
        "state_rng": ("run", np.array(rec.rng_states)),
    })
    for name, value in rec.state.items():
        dims = {"beta": ("run", "j", "r", "basis"), "W": ("run", "j", "r", "dim"),
                "bias": ("run", "j", "r"), "readout": ("run", "j", "r")}[name]
        data[f"state_{name}"] = (dims, value)
    coords = {"step": rec.steps, "j": np.array([1, -1]), "r": np.arange(m), "i": np.arange(n),
              "seed": ("run", np.array([r.seed for r in runs], dtype=np.int64))}
    coords.update(_varying(runs))
    ds = xr.Dataset(data, coords=coords)
    for name, text in LONG_NAMES.items():
        if name in ds:
            ds[name].attrs["long_name"] = text
    ds.attrs.update(version_attrs(engine, "numba-cpu" if backend in (None, "numba") else
                                  str(getattr(backend, "__name__", backend))))
    if rec.warnings:
        ds.attrs["warnings"] = "\n".join(rec.warnings)
    return ds


def recorded(rec: Records):
    """The recorded variables as (name, (dims, array)), run first: what a sweep stores."""
    yield from {
        "gamma": (("run", "step", "j", "r"), rec.gamma),
        "gamma_max": (("run", "step", "j"), rec.gamma.max(axis=3)),
        "rho_bar_max": (("run", "step"), rec.rho_summary[..., 0]),
        "rho_under_min": (("run", "step"), rec.rho_summary[..., 1]),
        "rho_bar_mean": (("run", "step"), rec.rho_summary[..., 2]),
        "diverged": ("run", rec.status == DIVERGED),
        "stopped_at": ("run", rec.stopped_at),
    }.items()
    for k, name in enumerate(METRICS):
        yield name, (("run", "step"), rec.metrics[:, :, k])
    if rec.rho is not None:
        yield "rho", (("run", "step", "j", "r", "i"), rec.rho)
    if rec.residual is not None:
        yield "residual_norm", (("run", "step", "j", "r"), rec.residual)
    if rec.readout is not None:
        yield "readout", (("run", "step", "j", "r"), rec.readout)


def single(ds: xr.Dataset, cfg) -> xr.Dataset:
    """A batch of one as a single run: no ``run`` dimension; config, seed and status as attrs."""
    one = ds.isel(run=0).drop_vars(["config", "status", "seed"])
    one.attrs.update({"config": cfg.to_toml(), "seed": cfg.seed,
                      "status": str(ds["status"].values[0]), "algorithm": cfg.algorithm.name,
                      "mu_norm": cfg.data.mu, "snr": cfg.data.SNR})
    return one


def _config_texts(runs) -> np.ndarray:
    """Each run's config as TOML, made once per distinct config object; a run's seed is the
    ``seed`` coordinate (:func:`config_of` puts it back)."""
    cache = {}
    return np.array([cache.setdefault(id(r.cfg), r.cfg.to_toml()) for r in runs])


def _flat(d: dict, prefix="") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _varying(runs) -> dict:
    """Config keys whose value differs between runs, as coordinates on ``run``."""
    cache = {}
    flats = [cache.setdefault(id(r.cfg), _flat({k: v for k, v in r.cfg.to_dict().items()
                                               if k not in ("seed", "sweep")}))
             for r in runs]
    if len(cache) == 1:
        return {}
    keys = sorted({k for f in flats for k in f})
    coords = {}
    for key in keys:
        values = [f.get(key) for f in flats]
        if all(v == values[0] for v in values):
            continue
        present = [v for v in values if v is not None]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
            arr = np.array([np.nan if v is None else v for v in values])
            if None not in values and all(isinstance(v, int) for v in present):
                arr = arr.astype(np.int64)
        else:
            arr = np.array(["" if v is None else str(v) for v in values])
        coords[key] = ("run", arr)
    return coords


def config_of(ds, run: int | None = None):
    """The :class:`~signoise.config.RunConfig` that produced a result.

    Parameters
    ----------
    ds : xarray.Dataset
        From :func:`~signoise.simulate` (no ``run``) or :func:`~signoise.simulate_batch`.
    run : int, optional
        The run's position, for a batch (``ds.isel(run=k)`` works too).

    Returns
    -------
    RunConfig
        With the run's own seed, so ``simulate(config_of(ds))`` reproduces it.
    """
    from .config import RunConfig
    from .constraints import reject

    if "run" in ds.dims:
        if run is None:
            reject("run", run, f"a run index in [0, {ds.sizes['run']}) for a batch")
        ds = ds.isel(run=run)
    if "config" in ds.data_vars:
        cfg = RunConfig.from_dict(tomllib.loads(str(ds["config"].values)))
        return cfg.updated({"seed": int(ds["seed"])})
    if "config" not in ds.attrs:
        reject("ds", "<Dataset without a config>", "a result of signoise.simulate or simulate_batch")
    return RunConfig.from_dict(tomllib.loads(ds.attrs["config"]))


__all__ = ["LONG_NAMES", "NOT_IN_STORE", "build", "config_of", "recorded", "single", "version_attrs"]
