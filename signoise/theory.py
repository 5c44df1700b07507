"""Theory oracles for sweeps: SNR, the control parameters of the phase boundaries, and a fit
of their constant.

- Cao, Chen, Belkin, Gu (NeurIPS 2022, arXiv:2202.06526), q > 2: benign overfitting when
  ``n·SNR^q >= C``, harmful when ``n·SNR^q <= 1/C``, with ``SNR = ‖μ‖ / (σ_p √d)``.
- Kou, Chen, Chen, Gu (ICML 2023, arXiv:2303.04145), ReLU with label flips p: test error → p
  when ``n‖μ‖⁴ >= C σ_p⁴ d``, at least p + 0.1 when ``n‖μ‖⁴ <= C' σ_p⁴ d``.

The control parameter is ``n·SNR^q`` (Cao) or ``n‖μ‖⁴/(σ_p⁴ d)`` (Kou); the boundary is the
level set ``control = C``. Functions take plain numbers or arrays and broadcast.

Early phase (stage 1 of Cao et al.'s proof, SPEC §6): :func:`stage1_dynamics` iterates the GD
recursions with |ℓ'| frozen at 1/2, :func:`race_times` gives the times the signal and the noise
coefficients take to grow, and :func:`lprime_leaves_half` the step where that approximation
ends in a recorded run.
"""

from __future__ import annotations

import warnings

import numpy as np
from numba import njit

from .activation import dact
from .constraints import reject

#: The theories with a known boundary, and the config keys their control parameter reads.
THEORIES = ("cao", "kou")
KEYS = ("data.n", "data.d", "data.mu_norm", "data.snr", "data.sigma_p", "model.q")


def _num(x):
    """A float array, or a float DataArray kept as such (so named dims broadcast)."""
    return x.astype(float) if hasattr(x, "dims") else np.asarray(x, dtype=float)


def snr(mu_norm, sigma_p, d):
    """SNR = ‖μ‖ / (σ_p √d) (Cao et al. 2022)."""
    return _num(mu_norm) / (_num(sigma_p) * np.sqrt(d))


def cao_control(n, mu_norm, sigma_p, d, q):
    """n·SNR^q: benign above a constant, harmful below (Cao et al. 2022, Theorems 4.3-4.4)."""
    return _num(n) * snr(mu_norm, sigma_p, d) ** _num(q)


def kou_control(n, mu_norm, sigma_p, d):
    """n‖μ‖⁴ / (σ_p⁴ d): test error → p above a constant (Kou et al. 2023, Theorems 4.2-4.3)."""
    mu = _num(mu_norm)
    return _num(n) * mu ** 4 / (_num(sigma_p) ** 4 * _num(d))


def control(theory: str, values: dict):
    """The control parameter of ``theory`` from config values (``{"data.n": ..., ...}``).

    ``values`` holds numbers or broadcastable arrays for ``data.n``, ``data.d``,
    ``data.sigma_p``, ``model.q`` and one of ``data.mu_norm`` / ``data.snr``.
    """
    if theory not in THEORIES:
        reject("theory", theory, "one of " + ", ".join(map(repr, THEORIES)))
    v = {k: _num(x) for k, x in values.items()}
    mu = v.get("data.mu_norm")
    if mu is None:
        mu = v["data.snr"] * v["data.sigma_p"] * np.sqrt(v["data.d"])
    if theory == "cao":
        return cao_control(v["data.n"], mu, v["data.sigma_p"], v["data.d"], v["model.q"])
    return kou_control(v["data.n"], mu, v["data.sigma_p"], v["data.d"])


def sweep_control(ds, theory: str):
    """The control parameter over the grid axes of a sweep Dataset (an ``xarray.DataArray``).

    Values come from the grid axes where a key is swept and from the stored config otherwise.
    """
    import tomllib

    import xarray as xr

    from .config import RunConfig

    cfg = RunConfig.from_dict(tomllib.loads(ds.attrs["config"]))
    grid = [d for d in ds.dims if d not in ("seed", "step", "j", "r", "i")]
    values = {}
    for key in KEYS:
        if key in grid:
            values[key] = ds[key].astype(float)
        elif key == "data.mu_norm":
            if "data.snr" not in grid:
                values[key] = xr.DataArray(cfg.data.mu)
        elif key != "data.snr":
            values[key] = xr.DataArray(float(cfg.get(key)))
    c = control(theory, values)
    c.name = {"cao": "n·SNR^q", "kou": "n‖μ‖⁴/(σ_p⁴ d)"}[theory]
    return c.broadcast_like(xr.Dataset({g: ds[g] for g in grid}))


def fit_constant(control_values, error, threshold: float):
    """Fit C of the boundary ``control = C`` to a phase diagram.

    Each cell is called benign when its error is below ``threshold``; C is the threshold on
    the control parameter that misclassifies the fewest cells (ties: the geometric middle of
    the whole range of best cuts). A 0-1 fit like this is robust to the shape of the transition.

    Returns
    -------
    (float, float)
        C and the fraction of cells it misclassifies.
    """
    if hasattr(control_values, "dims") and hasattr(error, "dims"):
        import xarray as xr

        control_values, error = xr.broadcast(control_values, error)
        error = error.transpose(*control_values.dims)
    c = np.ravel(np.asarray(control_values, dtype=float))
    e = np.ravel(np.asarray(error, dtype=float))
    keep = np.isfinite(c) & np.isfinite(e) & (c > 0)
    c, benign = c[keep], e[keep] < threshold
    if c.size == 0:
        reject("control_values", "<no finite positive cell>", "at least one cell with a finite, "
               "positive control parameter and a finite error")
    order = np.argsort(c)
    c, benign = c[order], benign[order]
    # cut k: cells [0, k) predicted harmful, [k, N) predicted benign
    wrong = np.r_[0, np.cumsum(benign)] + np.r_[np.cumsum(~benign[::-1])[::-1], 0]
    best = np.flatnonzero(wrong == wrong.min())
    lo, hi = best[0], best[-1]
    left = c[lo - 1] if lo > 0 else c[0] / 2
    right = c[hi] if hi < c.size else c[-1] * 2
    return float(np.sqrt(left * right)), float(wrong.min() / c.size)


def boundary(theory: str, const: float, x_key: str, y_key: str, x, fixed: dict):
    """Points (x, y) of the boundary ``control = const`` for plotting over ``x``.

    Solves for ``y_key`` in closed form when it is ``data.mu_norm``, ``data.snr``, ``data.d``
    or ``data.n``; ``fixed`` gives the other keys (``data.n``, ``data.d``, ``data.sigma_p``,
    ``model.q``). Returns ``(x, y)`` with NaN where there is no solution.
    """
    v = {k: _num(val) for k, val in fixed.items()}
    v[x_key] = _num(x)
    power = 4.0 if theory == "kou" else float(v.get("model.q", 3.0))
    # control = A · mu^power · n / d^(power/2 or 1) with the other factors in A
    trial = dict(v)
    if y_key == "data.mu_norm":
        trial[y_key] = 1.0
        y = (const / control(theory, trial)) ** (1.0 / power)
    elif y_key == "data.snr":
        trial[y_key] = 1.0
        y = (const / control(theory, trial)) ** (1.0 / power)
    elif y_key == "data.n":
        trial[y_key] = 1.0
        y = const / control(theory, trial)
    elif y_key == "data.d":
        exponent = 1.0 if theory == "kou" else power / 2.0
        trial[y_key] = 1.0
        y = (control(theory, trial) / const) ** (1.0 / exponent)
    else:
        reject("y", y_key, "one of 'data.mu_norm', 'data.snr', 'data.d', 'data.n'",
               context=f"for a {theory} boundary")
    with np.errstate(all="ignore"):
        y = np.where(np.isfinite(y), y, np.nan)
    return _num(x), y


def sweep_boundary(ds, theory: str, const: float, x_key: str, y_key: str, num: int = 400):
    """The boundary ``control = const`` across a sweep's phase diagram over (``x_key``,
    ``y_key``): ``num`` points spanning the x axis, the other keys from the stored config."""
    import tomllib

    from .config import RunConfig

    cfg = RunConfig.from_dict(tomllib.loads(ds.attrs["config"]))
    fixed = {}
    for key in KEYS:
        if key in (x_key, y_key) or key == "data.snr":
            continue
        if key in ds.coords and ds[key].ndim == 0:  # an axis fixed with .sel
            fixed[key] = float(ds[key])
        else:
            fixed[key] = cfg.data.mu if key == "data.mu_norm" else float(cfg.get(key))
    xv = _num(ds[x_key].values)
    lo, hi = xv.min(), xv.max()
    log = lo > 0 and xv.size > 2 and np.allclose(np.diff(np.log(np.sort(xv))),
                                                 np.log(hi / lo) / (xv.size - 1), rtol=1e-6)
    xs = np.geomspace(lo, hi, num) if log else np.linspace(lo, hi, num)
    return boundary(theory, const, x_key, y_key, xs, fixed)


def _crossing(x, mean, level):
    """The x where ``mean`` first crosses ``level`` (linear interpolation in log x); NaN if
    the row never crosses."""
    above = mean >= level
    k = np.flatnonzero(above[1:] != above[:-1])
    if k.size == 0:
        return np.nan
    k = k[0]
    lx = np.log(x)
    t = (level - mean[k]) / (mean[k + 1] - mean[k])
    return float(np.exp(lx[k] + t * (lx[k + 1] - lx[k])))


def crossings(stat, x, level):
    """Per row, the x where the seed mean of ``stat`` crosses ``level``.

    ``stat`` has shape (seed, row, x); ``x`` is positive and increasing. Returns an array of
    shape (row,), NaN for a row that never crosses.
    """
    mean = np.nanmean(np.asarray(stat, dtype=float), axis=0)
    x = np.asarray(x, dtype=float)
    return np.array([_crossing(x, row, level) for row in mean])


def bootstrap_interval(boot, n_seeds: int, level: float = 0.95):
    """Expanded percentile interval of bootstrap replicates ``boot`` over ``n_seeds`` seeds.

    The plain percentile interval is too narrow for few seeds: a resample's spread is
    √((S−1)/S) times the sampling spread and the normal quantile ignores that the spread is
    estimated. Following Hesterberg (2015, "What teachers should know about the bootstrap",
    Am. Stat. 69, §4.4), read the quantiles at α'/2 and 1 − α'/2 with
    Φ⁻¹(α'/2) = −√(S/(S−1)) t_{S−1}(1 − α/2), α = 1 − ``level``: for S = 6 the tails are at
    0.24 % instead of 2.5 %; for large S the plain interval. NaN replicates are dropped;
    returns (NaN, NaN) when none is left. ``boot`` may carry more axes after the first
    (one interval per column)."""
    from scipy import stats

    boot = np.asarray(boot, dtype=float)
    S = int(n_seeds)
    alpha = 1.0 - level
    if S < 2:
        return np.full(boot.shape[1:], np.nan), np.full(boot.shape[1:], np.nan)
    z = np.sqrt(S / (S - 1.0)) * stats.t.ppf(1.0 - alpha / 2.0, S - 1)
    tail = float(stats.norm.cdf(-z))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = np.nanquantile(boot, [tail, 1.0 - tail], axis=0)
    return lo, hi


def fit_exponent(stat, x, y, level, n_boot: int = 2000, seed: int = 0):
    """Free log-log fit of a boundary: the slope of log y against log x*(y), where x*(y) is
    the x at which the seed-mean statistic crosses ``level`` in row y.

    For Cao et al. (2022) with y = n and x = SNR the theorem predicts slope −q (the boundary
    n·SNR^q = C); for Kou et al. (2023) with y = d and x = ‖μ‖, slope 4.

    Parameters
    ----------
    stat : array (seed, row, x)
        A per-run statistic (e.g. test error, or 1 where the signal wins the race).
    x, y : arrays
        The positive, increasing x grid and the row values.
    level : float
        The level whose crossing defines the boundary.
    n_boot : int
        Bootstrap resamples over seeds (the same resample for every row).

    Returns
    -------
    dict
        ``slope`` (least squares on the rows that cross), ``ci`` (95 %, the expanded
        bootstrap percentile interval of :func:`bootstrap_interval`), ``se`` (bootstrap
        standard deviation), ``crossings`` (x* per row) and
        ``boot`` (the bootstrap slopes; resamples with fewer than two crossing rows dropped).
    """
    stat = np.asarray(stat, dtype=float)
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if stat.ndim != 3 or stat.shape[1:] != (y.size, x.size):
        reject("stat.shape", stat.shape, f"(seed, {y.size}, {x.size})")

    def slope(xs):
        ok = np.isfinite(xs)
        if ok.sum() < 2:
            return np.nan
        return float(np.polyfit(np.log(xs[ok]), np.log(y[ok]), 1)[0])

    xs = crossings(stat, x, level)
    rng = np.random.default_rng(seed)
    S = stat.shape[0]
    boot = np.array([slope(crossings(stat[rng.integers(0, S, S)], x, level))
                     for _ in range(n_boot)])
    boot = boot[np.isfinite(boot)]
    ci = bootstrap_interval(boot, S) if boot.size else (np.nan, np.nan)
    return {"slope": slope(xs), "ci": (float(ci[0]), float(ci[1])),
            "se": float(boot.std(ddof=1)) if boot.size > 1 else np.nan,
            "crossings": xs, "boot": boot}


# --- early phase: stage 1 of Cao et al. (2022) ------------------------------------------------

@njit(cache=True)
def _stage1_kernel(a0, b0, mu2, xi2, y, yt, c, q, steps, every, gam_out, rho_out):
    """Iterate the stage-1 recursions (see :func:`stage1_dynamics`) and record every
    ``every`` steps. a0 (2, m) = ⟨w0_{j,r}, μ⟩; b0 (2, m, n) = ⟨w0_{j,r}, ξ_i⟩; c = η a / (2n)."""
    m, n = a0.shape[1], y.shape[0]
    gamma = np.zeros((2, m))
    rho = np.zeros((2, m, n))
    k = 0
    for t in range(steps + 1):
        if t % every == 0:
            gam_out[k] = gamma
            rho_out[k] = rho
            k += 1
        if t == steps:
            break
        for j in range(2):
            sj = 1.0 - 2.0 * j
            for r in range(m):
                g = 0.0
                for i in range(n):
                    g += dact(yt[i] * (a0[j, r] + sj * gamma[j, r]), q) * y[i] * yt[i]
                for i in range(n):
                    # its own coefficient only: the cross terms ρ_k ⟨ξ_k, ξ_i⟩/‖ξ_k‖² are dropped
                    rho[j, r, i] += c * xi2[i] * dact(b0[j, r, i] + rho[j, r, i], q) * sj * y[i]
                gamma[j, r] += c * mu2 * g


def stage1_dynamics(cfg, seed: int | None = None, problem=None):
    """The early-phase coefficients that Cao et al.'s stage-1 analysis predicts.

    GD's recursions (SPEC §3) with every loss derivative frozen at its value at zero margin,
    ℓ'_i = −1/2 (|ℓ'| ≈ 1/2 while all outputs are small), and each noise pre-activation taken
    as its initial value plus its own coefficient (the cross terms ⟨ξ_k, ξ_i⟩/‖ξ_k‖², of
    relative size ~1/√d, are dropped as in the proof):

        γ_{j,r}^{(t+1)}   = γ_{j,r}^{(t)} + (η a/(2n)) ‖μ‖² Σ_i σ'(ỹ_i(⟨w0_{j,r}, μ⟩ + j γ_{j,r}^{(t)})) y_i ỹ_i
        ρ_{j,r,i}^{(t+1)} = ρ_{j,r,i}^{(t)} + (η a/(2n)) ‖ξ_i‖² σ'(⟨w0_{j,r}, ξ_i⟩ + ρ_{j,r,i}^{(t)}) j y_i

    with a the readout scale (1/m by default). So each pre-activation x of a growing
    coefficient follows a tensor power iteration x ← x + c q x^{q−1} from its initial value
    (Cao, Chen, Belkin, Gu, NeurIPS 2022, arXiv:2202.06526: stage 1 of the proofs of
    Theorems 4.3-4.4; SPEC §6).

    Parameters
    ----------
    cfg : RunConfig
        The run (data, model, ``train.lr``, ``train.steps``, ``train.record_every``).
    seed : int, optional
        The run's seed (default ``cfg.seed``): the same data and initial filters as
        :func:`signoise.simulate`.
    problem : Problem, optional
        Explicit data instead of drawing them.

    Returns
    -------
    xarray.Dataset
        ``gamma (step, j, r)``, ``rho (step, j, r, i)`` and, as in a simulation's result,
        ``gamma_max (step, j)``, ``rho_bar_max (step)``, ``rho_bar_mean (step)``,
        ``rho_under_min (step)``. Once a power iteration has overflowed (well past the end of
        stage 1) its values are NaN.
    """
    import xarray as xr

    if problem is None:
        if cfg.data.sampler == "wishart":
            from .wishart import sample_reduced as draw
        else:
            from .data import sample_problem as draw
        problem = draw(cfg, seed)
    tr = cfg.train
    a0 = problem.w0 @ problem.mu                                   # (2, m)
    b0 = np.ascontiguousarray(np.einsum("jrd,id->jri", problem.w0, problem.xi))
    xi2 = np.einsum("id,id->i", problem.xi, problem.xi)
    y, yt = np.asarray(problem.y, float), np.asarray(problem.y_true, float)
    m, n = a0.shape[1], y.size
    count = tr.steps // tr.record_every + 1
    gam, rho = np.empty((count, 2, m)), np.empty((count, 2, m, n))
    c = tr.lr * cfg.model.readout_scale / (2.0 * n)
    _stage1_kernel(np.ascontiguousarray(a0), b0, float(problem.mu @ problem.mu), xi2, y, yt, c,
                   float(cfg.model.q), tr.steps, tr.record_every, gam, rho)
    gam[~np.isfinite(gam)] = np.nan                                    # blown up: past stage 1
    rho[~np.isfinite(rho)] = np.nan
    own = (np.array([1.0, -1.0])[:, None, None] * y[None, None, :]) > 0   # y_i = j
    with np.errstate(invalid="ignore"):
        bar = np.where(own, rho, -np.inf).max(axis=2)                      # (step, j, i)
    bar_i = np.where(own[0], bar[:, 0], bar[:, 1])                     # max_r ρ̄_{y_i, r, i}
    return xr.Dataset(
        {"gamma": (("step", "j", "r"), gam), "rho": (("step", "j", "r", "i"), rho),
         "gamma_max": (("step", "j"), gam.max(axis=2)),
         "rho_bar_max": ("step", bar_i.max(axis=1)), "rho_bar_mean": ("step", bar_i.mean(axis=1)),
         "rho_under_min": ("step", np.where(own, np.inf, rho).min(axis=(1, 2, 3)))},
        coords={"step": np.arange(count) * tr.record_every, "j": [1, -1]})


def race_times(mu_norm, sigma_p, d, n, q, sigma0, lr, readout_scale, growth: float = 2.0):
    """The stage-1 race: steps the signal and the noise pre-activations take to grow by the
    factor ``growth`` from their typical initial size (Cao et al. 2022; SPEC §6).

    A pre-activation that follows x' = c q x^{q−1} (the continuous form of
    :func:`stage1_dynamics`) from x₀ reaches κ x₀ at t = (1 − κ^{2−q}) x₀^{2−q} / (c q (q−2))
    (q > 2). Signal: c = η a ‖μ‖²/4 (half the examples push each filter), x₀ = σ₀‖μ‖; noise:
    c = η a σ_p² d/(2n), x₀ = σ₀σ_p√d. Hence

        t_s = 4 (1 − κ^{2−q}) / (η a q (q−2) σ₀^{q−2} ‖μ‖^q)              ∝ ‖μ‖^{−q} σ₀^{−(q−2)}
        t_n = 2n (1 − κ^{2−q}) / (η a q (q−2) σ₀^{q−2} (σ_p√d)^q)          ∝ n (σ_p√d)^{−q}

    (a the readout scale, 1/m by default). The signal wins when t_s < t_n, i.e.
    n·SNR^q > 2: Cao et al.'s boundary. Returns ``(t_s, t_n)`` (broadcast arrays).
    """
    q = _num(q)
    if np.any(q <= 2):
        reject("q", q, "q > 2 (for q <= 2 the stage-1 growth is not a power iteration)")
    k = (1.0 - _num(growth) ** (2.0 - q)) / (_num(lr) * _num(readout_scale) * q * (q - 2.0)
                                              * _num(sigma0) ** (q - 2.0))
    t_s = 4.0 * k / _num(mu_norm) ** q
    t_n = 2.0 * _num(n) * k / (_num(sigma_p) * np.sqrt(_num(d))) ** q
    return t_s, t_n


def lprime_leaves_half(ds, level: float = 0.45):
    """The first recorded step where some example's |ℓ'_i| = 1/(1 + e^{y_i f(x_i)}) is below
    ``level`` (from ``margin_max``): where the stage-1 approximation |ℓ'| ≈ 1/2 starts to
    fail. NaN if it never does."""
    lim = np.log(1.0 / level - 1.0)          # |ℓ'(z)| < level  <=>  z > log(1/level − 1)
    past = np.asarray(ds["margin_max"]) > lim
    return float(ds["step"].values[np.argmax(past)]) if past.any() else np.nan


def local_slopes(stat, x, y, level, n_boot: int = 2000, seed: int = 0):
    """Slopes of log y against log x* between neighbouring rows (x* per row as in
    :func:`fit_exponent`), with bootstrap 95 % intervals over seeds (the same resamples for
    every pair; :func:`bootstrap_interval`): where a boundary law holds and where it bends.
    Returns (slopes, lo, hi), each of shape (rows − 1,)."""
    stat = np.asarray(stat, dtype=float)
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)

    def slopes(st):
        xs = crossings(st, x, level)
        with np.errstate(all="ignore"):
            return np.diff(np.log(y)) / np.diff(np.log(xs))

    rng = np.random.default_rng(seed)
    S = stat.shape[0]
    boot = np.array([slopes(stat[rng.integers(0, S, S)]) for _ in range(n_boot)])
    lo, hi = bootstrap_interval(boot, S)
    return slopes(stat), lo, hi


__all__ = ["crossings", "bootstrap_interval", "fit_exponent", "local_slopes", "sweep_boundary", "snr", "cao_control", "kou_control", "control", "sweep_control", "fit_constant",
           "boundary", "THEORIES", "stage1_dynamics", "race_times", "lprime_leaves_half"]
