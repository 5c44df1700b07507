"""Adaptive boundary search: per row y, the x where the seed-mean statistic crosses a level.

Bracketing and bisection in log x, with seeds added until the crossing's standard error is
below a tolerance; each row has its own range and its own points, so no rectangular grid is
spent on settled cells. ``sn.find_boundary`` (CLI ``signoise boundary``). The crossing of a
bracket is :func:`signoise.theory.crossings` (linear interpolation in log x), as in
:func:`signoise.theory.fit_exponent`, so a dense grid and the search estimate the same thing.
"""

from __future__ import annotations

import contextlib
import math
import numbers

import numpy as np
import xarray as xr

from . import theory
from .config import RunConfig
from .constraints import reject

STATS = ("error", "loss", "race")
#: Bootstrap resamples (over seeds) behind a crossing's standard error.
N_BOOT = 200
#: A bracket is confirmed when at most this fraction of bootstrap resamples fail to straddle.
P_OUT = 0.05
#: Safety stop: evaluated points per row.
MAX_POINTS = 40


# --- statistics: one number per run --------------------------------------------------------

def final_test_error(cfgs, seeds, backend="numba"):
    """The test error (vs observed labels) at the last step, per run."""
    from .simulate import simulate_batch

    ds = simulate_batch(cfgs, seeds, quiet=True, backend=backend).isel(step=-1)
    return ds.test_error.values.astype(float)


def final_test_loss(cfgs, seeds, backend="numba"):
    """The test loss L_D (logistic, vs observed labels) at the last step, per run: the
    statistic of Cao et al. (2022)'s conclusions (Theorem 4.3: small when benign; Theorem
    4.4: at least 0.1 when harmful)."""
    from .simulate import simulate_batch

    ds = simulate_batch(cfgs, seeds, quiet=True, backend=backend).isel(step=-1)
    return ds.test_loss.values.astype(float)


def race_indicator(cfgs, seeds, backend="numba"):
    """1 where the signal ends ahead of the noise, minⱼ maxᵣ γ_{j,r} > meanᵢ maxᵣ ρ̄_{y_i,r,i}
    at the last step (Cao et al. 2022, the race of SPEC §6), else 0; per run."""
    from .simulate import simulate_batch

    ds = simulate_batch(cfgs, seeds, quiet=True, backend=backend).isel(step=-1)
    return (ds.gamma_max.min("j") > ds.rho_bar_mean).values.astype(float)


_STAT_FUNCS = {"error": final_test_error, "loss": final_test_loss, "race": race_indicator}


def default_level(stat, cfg: RunConfig) -> float:
    """The level a statistic's boundary is read at: the race at 1/2; the test loss at 0.1
    (Cao et al. 2022, Theorem 4.4's harmful bound); the test error halfway between the Bayes
    floor p (``data.flip``) and 1/2, i.e. 1/4 without flips."""
    if stat == "race":
        return 0.5
    if stat == "loss":
        return 0.1
    return (cfg.data.flip + 0.5) / 2


# --- validation, before any work -------------------------------------------------------------

def _real(key, value, low=None, high=None, open_low=True):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        reject(key, value, "a finite real number", TypeError)
    if not math.isfinite(value):
        reject(key, value, "a finite real number")
    if low is not None and (value <= low if open_low else value < low):
        reject(key, value, f"a number {'>' if open_low else '>='} {low:g}"
               + (f" and < {high:g}" if high is not None else ""))
    if high is not None and value >= high:
        reject(key, value, f"a number < {high:g}")
    return float(value)


def _int(key, value, low):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        reject(key, value, f"an integer >= {low}")
    return int(value)


def _validate(cfg, x, y, y_values, x_range, level, stat, tol, seeds, max_seeds, workers):
    """Everything checked, every config of the search's corners built; returns the plan."""
    from .sweeps import _cell_config

    for name, key in (("x", x), ("y", y)):
        if not isinstance(key, str):
            reject(name, key, "a config key such as 'data.mu_norm'", TypeError)
        cfg.get(key)  # unknown keys rejected with a did-you-mean
    if x == y:
        reject("y", y, f"a key other than x = {x!r}")
    if not (callable(stat) or stat in STATS):
        reject("stat", stat, "'error', 'loss', 'race' or a function stat(cfgs, seeds) -> array")
    if level is None:
        if callable(stat):
            reject("level", level, "a number: a custom statistic has no default level")
        level = default_level(stat, cfg)
    level = _real("level", level, 0.0, 1.0) if not callable(stat) else _real("level", level)
    tol = _real("tol", tol, 0.0)
    seeds = _int("seeds", seeds, 2)
    max_seeds = _int("max_seeds", max_seeds, seeds)
    workers = _int("workers", workers, 1)
    axes = cfg.sweep.axes()
    if y_values is None:
        if y not in axes:
            reject("y", y, f"a grid axis of the config's [sweep.grid] ({', '.join(axes) or 'none'})"
                   " or y_values given")
        y_values = axes[y]
    y_values = list(np.asarray(y_values).tolist())
    if not y_values:
        reject("y_values", y_values, "at least one value")
    if x_range is None:
        if x not in axes:
            reject("x", x, f"a grid axis of the config's [sweep.grid] ({', '.join(axes) or 'none'})"
                   " or x_range given")
        x_range = (min(axes[x]), max(axes[x]))
    try:
        rng = np.asarray(x_range, dtype=float)
    except (TypeError, ValueError):
        rng = np.full(3, np.nan)  # rejected below
    if rng.shape == (2,):
        rng = np.broadcast_to(rng, (len(y_values), 2))
    if rng.shape != (len(y_values), 2) or not np.all(np.isfinite(rng)) or np.any(rng[:, 0] <= 0) \
            or np.any(rng[:, 1] <= rng[:, 0]):
        reject("x_range", x_range, f"(lo, hi) with 0 < lo < hi, or one such pair per row "
               f"({len(y_values)} rows)")
    for yv, (lo, hi) in zip(y_values, rng):
        for xv in (float(lo), float(hi)):
            _cell_config(cfg, {y: yv, x: _x_value(cfg, x, xv)})  # names the bad field
    return y_values, np.array(rng), level, tol, seeds, max_seeds, workers


def _x_value(cfg, key, value):
    """An x value as the config key wants it: integer keys (``data.n``, ``data.d``) rounded."""
    current = cfg.get(key)
    integral = isinstance(current, numbers.Integral) and not isinstance(current, bool)
    return round(value) if integral else float(value)


# --- one row's search --------------------------------------------------------------------------

class _Row:
    """The search state of one row: evaluated points x -> per-seed values (seeds 0..k-1)."""

    def __init__(self, index, lo, hi, level, tol, seeds, max_seeds, max_expand):
        self.index, self.level, self.tol = index, level, tol
        self.K, self.max_seeds, self.expand_left = seeds, max_seeds, max_expand
        self.ratio = hi / lo
        self.values: dict[float, list] = {}
        self.wanted = [lo, hi]
        self.status = ""
        self.result = (np.nan, np.nan, np.nan, np.nan, np.nan)  # x*, se, se_boot, res, p_out

    def _top_up(self, xs):
        return [(x, s) for x in xs for s in range(len(self.values.get(x, [])), self.K)]

    def request(self):
        """The (x, seed) runs needed before the next decision; [] once the row is settled."""
        while not self.status:
            need = self._top_up(self.wanted)
            if need:
                return need
            self.wanted = []
            self._decide()
            if not self.status and not self.wanted:
                raise AssertionError("a decision that asks for nothing")  # pragma: no cover
        return []

    def _means(self):
        xs = np.array(sorted(self.values))
        return xs, np.array([np.mean(self.values[x]) for x in xs])

    def _decide(self):
        xs, means = self._means()
        above = means >= self.level
        k = np.flatnonzero(above[1:] != above[:-1])
        if k.size == 0:
            if self.expand_left > 0:
                self.expand_left -= 1
                self.wanted = [xs[0] / self.ratio, xs[-1] * self.ratio]
            else:
                self.status = "no crossing"
            return
        a, b = xs[k[0]], xs[k[0] + 1]
        if self._top_up([a, b]):
            self.wanted = [a, b]
            return
        window = xs[max(k[0] - 1, 0):k[0] + 3]
        self.result = _window_crossing([np.array(self.values[x]) for x in window], window, a, b,
                                       self.level, np.random.default_rng(
                                           [self.index, self.K, len(xs)]))
        _, _, se_boot, res, p_out = self.result
        half = self.tol / math.sqrt(2)
        if res > half and (p_out <= P_OUT or self.K >= self.max_seeds):
            # a confirmed (or as confirmed as the seeds allow), wide bracket: halve it
            if len(xs) >= MAX_POINTS:
                self.status = "point limit"
            else:
                self.wanted = [math.sqrt(a * b)]
        elif math.hypot(se_boot, res) > self.tol:
            # unconfirmed, or narrow but noisy: more seeds at its ends
            if self.K >= self.max_seeds:
                self.status = "seed limit"
            else:
                self.K = min(2 * self.K, self.max_seeds)
                self.wanted = [a, b]
        else:
            self.status = "converged"


def _window_crossing(values, x, a, b, level, rng):
    """Crossing of the bracket [a, b] and its uncertainty in log x, from the points ``x`` around
    it (the bracket and one neighbour each side) with their per-seed ``values``.

    Returns ``(x*, se, se_boot, res, p_out)``: x* from :func:`theory.crossings` on the means;
    ``se_boot`` the bootstrap standard deviation of log x* (seeds resampled at each point; a
    resample whose means never cross counts at the window edge its means point to); ``res =
    log(b/a)/√12``, the resolution of the bracket (a uniform error over its width); ``se =
    √(se_boot² + res²)``; ``p_out`` the fraction of resamples whose crossing leaves [a, b].
    """
    means = np.array([v.mean() for v in values])
    star = theory.crossings(means[None, None, :], x, level)[0]
    boot = np.stack([v[rng.integers(0, v.size, (N_BOOT, v.size))].mean(1) for v in values], -1)
    xb = theory.crossings(boot[None], x, level)
    out = ~np.isfinite(xb)
    if out.any():
        # the means never cross: the crossing lies past the edge whose side they are on
        increasing = means[-1] > means[0]
        past_left = (boot[out, 0] >= level) == increasing
        xb[out] = np.where(past_left, x[0], x[-1])
    se_boot = float(np.std(np.log(xb), ddof=1))
    res = math.log(b / a) / math.sqrt(12)
    p_out = float(np.mean((xb < a) | (xb > b) | out))
    return float(star), math.hypot(se_boot, res), se_boot, res, p_out


# --- evaluation: batches of runs, optionally in worker processes --------------------------------

def _evaluate(jobs, stat, backend, workers, pool=None):
    """Per job (config, seed) its statistic. Jobs sharing the batch shape keys go to one
    :func:`simulate_batch` call; results depend only on config and seed, never on the grouping."""
    from .driver import SHAPE_KEYS

    groups: dict = {}
    for k, (c, s) in enumerate(jobs):
        groups.setdefault(tuple(c.get(key) for key in SHAPE_KEYS), []).append(k)
    func = _STAT_FUNCS[stat] if isinstance(stat, str) else stat
    tasks = [([jobs[k][0] for k in ks], [jobs[k][1] for k in ks]) for ks in groups.values()]
    if workers > 1:
        # split big groups so every worker has work; any split gives the same numbers
        per = max(1, -(-sum(len(t[0]) for t in tasks) // workers))
        tasks = [(c[i:i + per], s[i:i + per]) for c, s in tasks for i in range(0, len(c), per)]
    if pool is not None and len(tasks) > 1:
        outs = list(pool.map(_call, [func] * len(tasks), [t[0] for t in tasks],
                             [t[1] for t in tasks], [backend] * len(tasks)))
    else:
        outs = [_call(func, c, s, backend) for c, s in tasks]
    # tasks keep the groups' order, split or not: concatenated they list the jobs group by group
    order = [k for ks in groups.values() for k in ks]
    values = np.empty(len(jobs))
    values[order] = np.concatenate(outs)
    return values


def _call(func, cfgs, seeds, backend):
    if func in _STAT_FUNCS.values():
        out = func(cfgs, seeds, backend=backend)
    else:
        out = func(cfgs, seeds)
    out = np.asarray(out, dtype=float).ravel()
    if out.size != len(cfgs):
        reject("stat", func, f"a function returning one value per run ({len(cfgs)}), got "
               f"{out.size}")
    return out


@contextlib.contextmanager
def _pool(workers):
    """Spawned worker processes for the whole search (OpenMP in Numba is not fork-safe), each
    with NUMBA_NUM_THREADS = cores // workers; None for ``workers`` = 1."""
    if workers == 1:
        yield None
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from .sweeps import _cores, _thread_env
    from .workers import init

    with _thread_env(max(1, _cores() // workers)), ProcessPoolExecutor(
            workers, mp_context=mp.get_context("spawn"), initializer=init) as pool:
        yield pool


# --- the search ----------------------------------------------------------------------------------

def find_boundary(cfg, x: str, y: str, y_values=None, x_range=None, level=None, stat="error",
                  tol: float = 0.05, seeds: int = 8, max_seeds: int = 128, max_expand: int = 2,
                  workers: int = 1, backend: str = "numba") -> xr.Dataset:
    """Locate, for each row y, the x* where the seed mean of a statistic crosses ``level``.

    Per row: evaluate the ends of its range (expanding it by its own width up to ``max_expand``
    times until the mean straddles the level), then repeat on the first bracket [a, b] whose
    means straddle the level: if its crossing's bootstrap standard error exceeds tol/√2 (or more
    than 5 % of resamples fail to straddle), double the seeds at a and b (up to ``max_seeds``);
    else if its resolution log(b/a)/√12 exceeds tol/√2, evaluate the midpoint √(ab); else stop.
    x* interpolates the means linearly in log x (:func:`signoise.theory.crossings`). All rows
    advance together, so each round is one :func:`signoise.simulate_batch` call per shape.

    Parameters
    ----------
    cfg : RunConfig or path
        The base config. ``y_values`` and ``x_range`` default to the config's ``[sweep.grid]``
        axes ``y`` and ``x`` (the x axis' min and max).
    x, y : str
        Config keys, e.g. ``"data.mu_norm"`` (searched, positive) and ``"data.n"`` (rows).
    y_values : sequence, optional
        The rows.
    x_range : (lo, hi) or array (rows, 2), optional
        The starting bracket, shared or per row (e.g. centred on a theory's prediction).
    level : float, optional
        Default: 1/2 for ``stat="race"``; 0.1 for ``"loss"``; (p + 1/2)/2 for ``"error"``
        (1/4 without flips).
    stat : {"error", "loss", "race"} or callable
        The final test error; the final test loss (Cao et al. 2022's conclusions are about
        it); the race indicator minⱼ maxᵣ γ > meanᵢ maxᵣ ρ̄ (Cao et al. 2022);
        or ``stat(cfgs, seeds) -> array`` with one value per run (then ``level`` is required).
    tol : float
        Target standard error of log x* (about the relative error of x*).
    seeds, max_seeds : int
        Seeds per point at the start (seeds 0..seeds-1) and at most.
    workers : int
        Worker processes per round (spawned); the result does not depend on it.
    backend : str
        As in :func:`signoise.simulate_batch`.

    Returns
    -------
    xarray.Dataset
        Dimension named ``y`` (the rows), ``point`` and ``seed``. Per row: ``crossing`` x*,
        ``se`` (of log x*: √(bootstrap² + resolution²)), ``se_bootstrap``, ``resolution``,
        ``lo``/``hi`` (x*·exp(∓1.96 se)), ``runs``, ``seeds_used``, ``status`` ("converged",
        "seed limit", "no crossing", "point limit"); per point: ``x_eval``, ``stat_mean``,
        ``n_seeds``, and ``value (y, point, seed)`` (NaN where not run). A cell's values depend
        only on its config and seed (seeds 0..K-1), never on the search path or ``workers``.
    """
    from .simulate import as_config

    cfg = as_config(cfg)
    y_values, rng, level, tol, seeds, max_seeds, workers = _validate(
        cfg, x, y, y_values, x_range, level, stat, tol, seeds, max_seeds, workers)
    max_expand = _int("max_expand", max_expand, 0)
    from .sweeps import _cell_config

    rows = [_Row(k, float(lo), float(hi), level, tol, seeds, max_seeds, max_expand)
            for k, (lo, hi) in enumerate(rng)]
    configs: dict = {}

    def config(k, xv):
        key = (k, xv)
        if key not in configs:
            configs[key] = _cell_config(cfg, {y: y_values[k], x: _x_value(cfg, x, xv)})
        return configs[key]

    rounds = 0
    with _pool(workers) as pool:
        while True:
            wanted = [(k, xv, s) for k, row in enumerate(rows) for xv, s in row.request()]
            if not wanted:
                break
            rounds += 1
            vals = _evaluate([(config(k, xv), s) for k, xv, s in wanted], stat, backend,
                             workers, pool)
            for (k, xv, s), v in zip(wanted, vals):
                got = rows[k].values.setdefault(xv, [])
                assert s == len(got)  # seeds arrive in order 0, 1, 2, ...
                got.append(v)
    return _dataset(cfg, rows, x, y, y_values, level, stat, tol, seeds, max_seeds, rounds)


def _dataset(cfg, rows, x, y, y_values, level, stat, tol, seeds, max_seeds, rounds):
    P = max(len(r.values) for r in rows)
    S = max(max(len(v) for v in r.values.values()) for r in rows)
    x_eval = np.full((len(rows), P), np.nan)
    value = np.full((len(rows), P, S), np.nan)
    for k, r in enumerate(rows):
        for p, xv in enumerate(sorted(r.values)):
            x_eval[k, p] = xv
            value[k, p, :len(r.values[xv])] = r.values[xv]
    res = np.array([r.result for r in rows])
    star, se = res[:, 0], res[:, 1]
    n_seeds = np.isfinite(value).sum(-1)
    with np.errstate(all="ignore"):
        mean = np.nanmean(np.where(n_seeds[..., None] > 0, value, 0.0), -1) * np.where(
            n_seeds > 0, 1.0, np.nan)
    ds = xr.Dataset(
        {"crossing": (y, star), "se": (y, res[:, 1]), "se_bootstrap": (y, res[:, 2]),
         "resolution": (y, res[:, 3]), "p_out": (y, res[:, 4]),
         "lo": (y, star * np.exp(-1.96 * se)), "hi": (y, star * np.exp(1.96 * se)),
         "runs": (y, n_seeds.sum(-1)), "seeds_used": (y, [r.K for r in rows]),
         "status": (y, [r.status for r in rows]),
         "x_eval": ((y, "point"), x_eval), "stat_mean": ((y, "point"), mean),
         "n_seeds": ((y, "point"), n_seeds), "value": ((y, "point", "seed"), value)},
        coords={y: y_values, "seed": np.arange(S)})
    ds.attrs.update(x=x, y=y, level=level, stat=stat if isinstance(stat, str) else getattr(
        stat, "__name__", "custom"), tol=tol, seeds=seeds, max_seeds=max_seeds, rounds=rounds,
        runs=int(n_seeds.sum()), config=cfg.to_toml())
    return ds


# --- what the crossings say --------------------------------------------------------------------

def fit_boundary_exponent(ds) -> dict:
    """Free power law through the crossings: the slope of log y against log x*.

    Weighted least squares of log x* on log y with weights 1/se² (the crossings carry the
    error), inverted: slope = 1/b. When the rows scatter more than their se say (a bent
    boundary, χ²/dof > 1) the standard error of b is scaled by √(χ²/dof) and, since that scale
    is then estimated from dof = rows − 2, the interval uses Student's t_dof quantile instead
    of 1.96. For Cao et al. (y = n, x = SNR or ‖μ‖) the theorem says −q; for Kou et al.
    (y = d, x = ‖μ‖) it says 4.

    Returns
    -------
    dict
        ``slope``; ``b_ci``, the 95 % interval of b = 1/slope (test an exponent e with
        :func:`exponent_in_interval`: e is consistent iff 1/e lies in it); ``ci``, its image in
        slope (an unbounded (−inf, inf) when b's interval holds 0: then only the slopes between
        1/b_lo and 1/b_hi are excluded); ``se`` (delta method); ``rows`` (crossings in the fit).
    """
    xs, se = ds.crossing.values, ds.se.values
    ys = np.asarray(ds[ds.attrs["y"]].values, dtype=float)
    ok = np.isfinite(xs) & np.isfinite(se) & (se > 0)
    if ok.sum() < 3:
        return {"slope": np.nan, "ci": (np.nan, np.nan), "b_ci": (np.nan, np.nan),
                "se": np.nan, "rows": int(ok.sum())}
    u, v, w = np.log(ys[ok]), np.log(xs[ok]), 1.0 / se[ok] ** 2
    A = np.stack([np.ones_like(u), u], 1)
    cov = np.linalg.inv(A.T @ (A * w[:, None]))
    a, b = cov @ (A.T @ (w * v))
    dof = u.size - 2
    ratio = float(np.sum(w * (v - a - b * u) ** 2)) / dof
    se_b = math.sqrt(cov[1, 1] * max(1.0, ratio))
    if ratio > 1.0:   # scipy.stats imported here, not with signoise: it costs 0.4 s
        from scipy import stats

        z = float(stats.t.ppf(0.975, dof))
    else:
        z = 1.959963984540054
    b_lo, b_hi = b - z * se_b, b + z * se_b
    if b_lo * b_hi <= 0:                  # b's interval holds 0: the slope is unbounded
        ends = [-np.inf, np.inf]
    else:
        ends = sorted((1.0 / b_lo, 1.0 / b_hi))
    return {"slope": float(1.0 / b), "ci": (float(ends[0]), float(ends[1])),
            "b_ci": (float(b_lo), float(b_hi)), "se": float(se_b / b ** 2),
            "rows": int(ok.sum())}


def exponent_in_interval(fit, exponent) -> bool:
    """Whether ``exponent`` is consistent with :func:`fit_boundary_exponent`'s 95 % interval
    (1/exponent inside the interval of b; exact also when the slope's interval is unbounded)."""
    lo, hi = fit["b_ci"]
    return bool(lo <= 1.0 / exponent <= hi)


def equal_precision_grid(ds) -> dict:
    """The rectangular grid that matches the search's precision: every row on one log grid over
    the union of the rows' evaluated ranges, spaced like the narrowest final bracket, with the
    most seeds any row needed at every point. Returns ``points``, ``seeds``, ``runs``."""
    lo, hi = np.nanmin(ds.x_eval.values), np.nanmax(ds.x_eval.values)
    width = np.nanmin(ds.resolution.values) * math.sqrt(12)
    points = math.ceil(math.log(hi / lo) / width) + 1 if np.isfinite(width) else 0
    seeds = int(ds.seeds_used.max())
    return {"points": points, "seeds": seeds, "runs": points * seeds * ds.sizes[ds.attrs["y"]]}


def table(ds) -> str:
    """A plain-text table: per row the crossing, its 95 % interval, se, seeds, runs, status."""
    y, x = ds.attrs["y"], ds.attrs["x"]
    rows = [(y, f"{x}*", "95% interval", "se(log)", "seeds", "runs", "status")]
    for k in range(ds.sizes[y]):
        r = ds.isel({y: k})
        rows.append((f"{r[y].item():g}", f"{float(r.crossing):.4g}",
                     f"[{float(r.lo):.4g}, {float(r.hi):.4g}]", f"{float(r.se):.3f}",
                     str(int(r.seeds_used)), str(int(r.runs)), str(r.status.item())))
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def draw_boundary(ds, ax=None, theory_name=None):
    """The crossings with their 95 % intervals (x* on x, rows on y, log-log), the free power-law
    fit, and with ``theory_name`` ("cao" or "kou") the theorem's boundary through the crossings'
    geometric centre (:func:`signoise.theory.boundary`; C is not predicted). Returns the Axes."""
    import tomllib

    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.6), layout="constrained")
    y, x = ds.attrs["y"], ds.attrs["x"]
    ys, xs = np.asarray(ds[y].values, dtype=float), ds.crossing.values
    fit = fit_boundary_exponent(ds)
    ax.errorbar(xs, ys, xerr=[xs - ds.lo.values, ds.hi.values - xs], fmt="o", capsize=3,
                label=f"crossings ({ds.attrs['stat']} = {ds.attrs['level']:g}); free slope "
                      f"{fit['slope']:.2f} [{fit['ci'][0]:.2f}, {fit['ci'][1]:.2f}]")
    ok = np.isfinite(xs)
    if theory_name and ok.sum() >= 1 and y in theory.KEYS and x in theory.KEYS:
        cfg = RunConfig.from_dict(tomllib.loads(ds.attrs["config"]))
        skip = {x, y, "data.snr"} | ({"data.mu_norm"} if "data.snr" in (x, y) else set())
        fixed = {k: (cfg.data.mu if k == "data.mu_norm" else float(cfg.get(k)))
                 for k in theory.KEYS if k not in skip}
        c = theory.control(theory_name, {**fixed, x: xs[ok], y: ys[ok]})
        const = float(np.exp(np.mean(np.log(c))))
        grid = np.geomspace(np.nanmin(ds.lo.values), np.nanmax(ds.hi.values), 100)
        gx, gy = theory.boundary(theory_name, const, x, y, grid, fixed)
        ax.plot(gx, gy, "k--", lw=1, label=f"{theory_name} boundary, C = {const:.3g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"{x} at the crossing")
    ax.set_ylabel(y)
    ax.legend(fontsize=7)
    return ax


__all__ = ["STATS", "default_level", "draw_boundary", "equal_precision_grid", "final_test_error",
           "final_test_loss",
           "exponent_in_interval", "find_boundary", "fit_boundary_exponent", "race_indicator", "table"]
