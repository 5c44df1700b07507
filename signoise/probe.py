"""Probes of one iterate W: each algorithm's mean step and the variance of the perturbed
gradient ∇L(W + ζ), by Monte Carlo over the algorithm's random inputs, with standard errors.

A probe takes the final state of a :func:`~signoise.simulate` result (``state_beta`` or
``state_W``, ``state_bias``), rebuilds the run's data from its config and seed, and takes K
single steps from that state in one engine :class:`Batch` of K copies, each with its own
random inputs (drawn outside the kernels: results depend on the seed only). The update
direction of a step, u = −(W⁺ − W)/η, is read off the state, so every rule the engines know
is probed by the rule itself, on either engine. Norms are those of weight space: in the gram
engine ‖Σ_a u_a v_a‖² = u G uᵀ (SPEC §3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from . import driver
from .algorithms import ALGORITHMS, PGD, run_record
from .constraints import reject
from .data import rng_for
from .draws import draw_inputs
from .engines import get_engine
from .engines.gram import noise_factor
from .results import config_of

#: The random stream of the probes' draws (the data use streams 0-3).
STREAM_PROBE = 7
#: Steps are taken with η = 2^20 and divided by it again (exact, a power of 2): u then keeps
#: its relative precision even when ‖W‖ ≫ η‖u‖. pgd adds noise unscaled by η: it keeps its η.
PROBE_LR = 2.0 ** 20


@dataclass
class Iterate:
    """A fixed iterate to probe: the run (config, seed, data, engine inputs), the engine's
    state (``{"beta" or "W": ..., "bias": ...}``, no run axis) and the step t it was reached."""

    run: driver.Run
    engine: str
    state: dict
    t: int = 0

    @property
    def cfg(self):
        return self.run.cfg


def iterate(source, engine: str | None = None, problem=None) -> Iterate:
    """The iterate to probe.

    Parameters
    ----------
    source : xarray.Dataset, RunConfig or Iterate
        A result of :func:`~signoise.simulate` (its final state, the step it stopped at, its
        engine) or of :func:`~signoise.simulate_batch` with one run selected
        (``ds.isel(run=k)``); a config (the initial state W⁽⁰⁾); or an Iterate (returned as is).
    engine : {"gram", "weights"}, optional
        For a config (default "gram"); a result keeps its own engine.
    problem : Problem, optional
        The explicit data the result was trained on, if it was given to ``simulate``.
    """
    if isinstance(source, Iterate):
        return source
    if isinstance(source, xr.Dataset):
        if "run" in source.dims:
            reject("source", "<a batch result>", "one run: ds.isel(run=k)")
        status = source["status"].values if "status" in source.data_vars else \
            source.attrs.get("status", "")
        if str(status) == "diverged":
            reject("source", "<a diverged run>", "a finite state to probe")
        cfg = config_of(source)
        engine = source.attrs.get("engine", "gram")
        run = driver.prepare(cfg, cfg.seed, engine, problem)
        state = {name[len("state_"):]: np.array(source[name].values, dtype=float)
                 for name in source.data_vars
                 if name.startswith("state_") and name != "state_rng"}
        return Iterate(run, engine, state, int(source["stopped_at"]))
    from .simulate import as_config

    cfg = as_config(source)
    engine = engine or "gram"
    run = driver.prepare(cfg, cfg.seed, engine, problem)
    state = {k: np.array(v[0]) for k, v in get_engine(engine).Batch(
        [run.inputs], [run.params], _readouts(run, 1)).get_state().items()}
    return Iterate(run, engine, state, 0)


def _with_algorithm(it: Iterate, algorithm: dict | None):
    """The run record of the iterate's config with ``algorithm`` (a dict with ``name`` and its
    parameters) instead of its own, and the probe's η."""
    cfg = it.cfg
    if algorithm:
        if "name" not in algorithm:
            reject("algorithm", algorithm, "a dict with 'name' and the algorithm's parameters")
        changes = {f"algorithm.{k}": v for k, v in algorithm.items()}
        cfg = cfg.updated(changes)
    rec = run_record(cfg)
    rec["loss_threshold"] = 0.0
    if rec["code"][0] != PGD:
        rec["lr"] = PROBE_LR
    return cfg, rec


def update_draws(source, draws: int = 256, seed: int = 0, algorithm: dict | None = None,
                 zeta=None, omega=None) -> dict:
    """K single update directions u_k = −(W⁺_k − W)/η from the iterate, one per draw of the
    algorithm's random inputs.

    Parameters
    ----------
    source : see :func:`iterate`.
    draws : int
        K (1 for a deterministic rule is enough: every draw is the same step).
    seed : int
        Seed of the probe's own random stream (independent of the run's).
    algorithm : dict, optional
        ``{"name": ..., **params}`` to probe another rule than the run's own.
    zeta : ndarray (K, 2, m, width), optional
        Explicit weight noise ζ for the noise rules (noisy_eval, anti_pgd; width = the
        engine's ``noise_width``), e.g. antithetic pairs; replaces the drawn one.
    omega : ndarray (K, n), optional
        Explicit example weights ω (the step is then along ∇Σ_i ω_i ℓ_i for gd, sgd, msgd):
        ω = e_i gives the per-example gradient ∇ℓ_i; replaces the drawn ones.

    Returns
    -------
    dict
        ``{state name: array (K, *state shape)}`` in the engine's coordinates (β for gram,
        W for weights; the bias).
    """
    it = iterate(source)
    if not (isinstance(draws, (int, np.integer)) and draws >= 1):
        reject("draws", draws, "an integer >= 1")
    cfg, rec = _with_algorithm(it, algorithm)
    if it.engine == "gram" and not ALGORITHMS[cfg.algorithm.name].in_span:
        reject("algorithm.name", cfg.algorithm.name, "an algorithm that stays in the span on "
               "engine 'gram' (probe a result of engine 'weights')")
    E = get_engine(it.engine)
    batch = E.Batch([it.run.inputs] * draws, [rec] * draws, _readouts(it.run, draws))
    batch.set_state({k: np.broadcast_to(v, (draws,) + v.shape) for k, v in it.state.items()})
    n, m = cfg.data.n, cfg.model.m
    width = batch.noise_width[0]
    if zeta is not None and np.shape(zeta) != (draws, 2, m, width):
        reject("zeta", np.shape(zeta), f"an array of shape ({draws}, 2, {m}, {width})")
    if omega is not None and np.shape(omega) != (draws, n):
        reject("omega", np.shape(omega), f"an array of shape ({draws}, {n})")
    rng = rng_for(seed, STREAM_PROBE)
    omegas, ysigns, zetas = [], [], []
    for k in range(draws):
        om, ys, ze = draw_inputs(rec[0], rng, it.t, 1, n, m, width)
        if zeta is not None:
            ze = np.ascontiguousarray(zeta[k][None], dtype=float)
        if omega is not None:
            om = np.ascontiguousarray(omega[k][None], dtype=float)
        omegas.append(om)
        ysigns.append(ys)
        zetas.append(ze)
    done, _ = batch.advance(1, omegas, ysigns, zetas, np.ones(draws, np.bool_))
    if np.any(done != 1):
        reject("source", "<a state where the step diverged>", "a finite iterate")
    after = batch.get_state()
    lr = float(rec["lr"][0])
    return {k: (np.broadcast_to(v, after[k].shape) - after[k]) / lr for k, v in it.state.items()}


def _readouts(run, copies):
    """The Batch's readout argument: the run's a_{j,r} per copy, None for the fixed readout."""
    return None if run.readout is None else [run.readout] * copies


#: The layer each state part belongs to: the filters with their biases, and the readout.
LAYER_OF = {"beta": "filters", "W": "filters", "bias": "filters", "readout": "readout"}


def flatten(source, parts: dict) -> np.ndarray:
    """Directions ``parts`` ({state name: (K, *shape)}) as (K, D) coordinates in an
    orthonormal basis of weight space, so that Euclidean norms and covariances of the rows are
    those of weight space: gram's β maps to β F with F Fᵀ = G (the Gram matrix of [μ, ξ_1..ξ_n],
    so ‖Σ_a β_a v_a‖² = β G βᵀ); W and the bias are already in such coordinates."""
    it = iterate(source)
    cols = []
    for name in sorted(parts):
        u = np.asarray(parts[name], dtype=float)
        if name == "beta":
            u = u @ noise_factor(it.run.inputs.G)
        cols.append(u.reshape(u.shape[0], -1))
    return np.concatenate(cols, axis=1)


def sq_norm(source, parts: dict) -> np.ndarray:
    """‖u‖² in weight space of directions ``parts`` ({state name: (K, *shape)}) → (K,)."""
    return (flatten(source, parts) ** 2).sum(axis=1)


def mean_step(source, algorithm: dict | None = None, draws: int = 256, seed: int = 0,
              zeta=None) -> xr.Dataset:
    """Each algorithm's mean update direction at a fixed iterate, E u with W ← W − η u.

    Monte Carlo over K draws of the rule's random inputs (masks, batches, label flips, weight
    noise ζ); a deterministic rule (gd, gr, pegr, fdgr, sam, ...) takes one exact step. For
    noisy_eval, u = ∇L(W + ζ), ζ ~ N(0, s² I) (Orvieto et al. 2023, eq. 2).

    Returns
    -------
    xarray.Dataset
        ``mean_<name>`` and ``se_<name>`` (its standard error, per entry) for each state part
        (``beta`` or ``W``, ``bias``, and ``readout`` with a per-filter readout); scalars
        ``mean_sq_norm`` = ‖E u‖², ``variance`` = E‖u − E u‖² (weight space, unbiased over
        draws) with ``variance_se``, the same split by layer (``variance_filters``: filters and
        biases; ``variance_readout``: the second layer, 0 for the fixed readout) with their
        standard errors, and ``draws``.
        Attributes: the algorithm (TOML of its section), engine, step t, seed.
    """
    it = iterate(source)
    if not (isinstance(draws, (int, np.integer)) and draws >= 1):
        reject("draws", draws, "an integer >= 1")
    cfg, _ = _with_algorithm(it, algorithm)
    if not ALGORITHMS[cfg.algorithm.name].stochastic and zeta is None:
        draws = 1
    parts = update_draws(it, draws, seed, algorithm, zeta)
    K = draws
    means = {k: u.mean(axis=0) for k, u in parts.items()}
    out = {}
    for name, u in parts.items():
        dims = {"beta": ("j", "r", "basis"), "W": ("j", "r", "dim"), "bias": ("j", "r")}.get(
            name, tuple(f"{name}_{a}" for a in range(u.ndim - 1)))
        se = u.std(axis=0, ddof=1) / np.sqrt(K) if K > 1 else np.zeros_like(means[name])
        out[f"mean_{name}"] = (dims, means[name])
        out[f"se_{name}"] = (dims, se)
    def variance(names):
        """E‖u − E u‖² over the parts ``names``, unbiased over draws, and its standard error."""
        dev = sq_norm(it, {k: parts[k] - means[k][None] for k in names})
        var = dev.sum() / (K - 1) if K > 1 else 0.0
        return var, (dev.std(ddof=1) * K / (K - 1) / np.sqrt(K) if K > 2 else 0.0)

    var, var_se = variance(list(parts))
    for layer in ("filters", "readout"):
        names = [k for k in parts if LAYER_OF.get(k) == layer]
        v, se = variance(names) if names else (0.0, 0.0)
        out[f"variance_{layer}"] = ((), float(v))
        out[f"variance_{layer}_se"] = ((), float(se))
    out["mean_sq_norm"] = ((), float(sq_norm(it, {k: v[None] for k, v in means.items()})[0]))
    out["variance"] = ((), float(var))
    out["variance_se"] = ((), float(var_se))
    out["draws"] = ((), K)
    ds = xr.Dataset(out)
    ds.attrs.update(algorithm=cfg.algorithm.name, algorithm_params=repr(cfg.algorithm.params),
                    engine=it.engine, t=it.t, seed=seed)
    return ds


def perturbed_grad_variance(source, s: float, draws: int = 256, seed: int = 0,
                            layerwise: bool = False) -> xr.Dataset:
    """The variance over ζ ~ N(0, s² I) of the perturbed gradient ∇L(W + ζ) at an iterate.

    Tr Cov_ζ[∇L(W + ζ)] = E‖∇L(W + ζ) − E∇L(W + ζ)‖² (weight space, all weights perturbed),
    by Monte Carlo over ``draws`` draws of ζ, with its standard error, in total and by layer;
    for small s it is s² ‖∇²L(W)‖_F² + O(s⁴). This is the noise that noisy_eval (Orvieto et
    al., AISTATS 2023, arXiv:2206.04613) adds to GD's step; the mean, E∇L(W + ζ) = ∇L(W) +
    (s²/2)∇Tr∇²L(W) + O(s⁴), comes with it. ``layerwise``: with a trained readout, each
    layer's gradient at noise on that layer alone (their independent layer-wise
    perturbations), which drops the cross-layer products ζ_W ζ_a whose variance grows with
    the width. Returns :func:`mean_step` of noisy_eval with noise ``s``.
    """
    if not (np.isfinite(s) and s >= 0):
        reject("s", s, "a real number >= 0")
    return mean_step(source, {"name": "noisy_eval", "s": float(s), "layerwise": bool(layerwise)},
                     draws=draws, seed=seed)


def hessian_trace_by_layer(source) -> dict:
    """Tr ∇²L_S at an iterate split by layer: ``{"filters": Tr over the filters and biases,
    "readout": Tr over the second layer (0 for a fixed readout), "total": their sum}``.

    Noise injection's explicit regulariser is (s²/2) Tr ∇²L (Orvieto et al. 2023), so these
    are its parts per layer. Exact (closed form, :func:`signoise.readout.diagnostics_ro`): the
    filters' block is the trace with the readout held fixed.
    """
    from .algorithms import Readout
    from .diagnostics import METRICS

    it = iterate(source)
    rec = run_record(it.cfg)
    modes = (Readout.PER_FILTER, Readout.TRAINED) if rec["readout"][0] == Readout.TRAINED \
        else (rec["readout"][0],)
    traces = []
    for mode in modes:
        rec["readout"] = mode
        batch = get_engine(it.engine).Batch([it.run.inputs], [rec.copy()], _readouts(it.run, 1))
        batch.set_state({name: v[None] for name, v in it.state.items()})
        out = np.empty((1, len(METRICS)))
        batch.evaluate(out)
        traces.append(float(out[0, METRICS.index("hessian_trace")]))
    return {"filters": traces[0], "readout": traces[-1] - traces[0], "total": traces[-1]}


__all__ = [
    "STREAM_PROBE",
    "Iterate",
    "flatten",
    "iterate",
    "mean_step",
    "perturbed_grad_variance",
    "sq_norm",
    "update_draws",
    "hessian_trace_by_layer",
    "LAYER_OF",
]
