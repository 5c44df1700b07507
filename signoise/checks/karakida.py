"""Checks of Karakida, Takase, Hayase, Osawa, "Understanding gradient regularization in deep
learning: efficient finite-difference computation and implicit bias" (ICML 2023,
arXiv:2210.02720): finite-difference GR converges to GR at order 1 (forward, backward) and 2
(central) in ε; forward fdgr generalises at least as well as backward."""

from __future__ import annotations

import functools

import numpy as np
import xarray as xr

from .. import probe
from ..simulate import simulate_batch
from .base import BACKEND, Check
from .cao2022 import base_config
from .probing import gd_iterate, loglog_slope
from .registry import register

ORDERS = {"forward": 1, "backward": 1, "central": 2}

# --- fdgr → gr: the order in ε, at a fixed iterate (deterministic) ----------------------------

_ORDER = {"quick": {"steps": 50, "m": 4, "eps": (1e-3, 1e-1, 5), "lam": 0.1},
          "paper": {"steps": 50, "m": 8, "eps": (1e-4, 1e-1, 10), "lam": 0.1}}


def _order_run(size, orders=None):
    """‖u_fdgr(ε) − u_gr‖ over ε per scheme, its log-log slope against the expected order.
    ``orders`` (a dict scheme → order) replaces the theorem's: a negative control."""
    orders = {**ORDERS, **(orders or {})}
    sz = _ORDER[size]
    ds = gd_iterate(sz["steps"], sz["m"])
    it = probe.iterate(ds)
    lam = sz["lam"]
    gr = probe.update_draws(it, 1, algorithm={"name": "gr", "lam": lam})
    eps = np.geomspace(*sz["eps"])
    res = np.empty((len(ORDERS), eps.size))
    floor = np.empty_like(res)
    for a, scheme in enumerate(ORDERS):
        for b, e in enumerate(eps):
            u = probe.update_draws(it, 1, algorithm={"name": "fdgr", "lam": lam,
                                                     "eps": float(e), "scheme": scheme})
            res[a, b] = np.sqrt(probe.sq_norm(it, {k: u[k] - gr[k] for k in u})[0])
            # rounding: the difference quotient amplifies ulps of ∇L by λ/ε
            floor[a, b] = 16 * np.finfo(float).eps * np.sqrt(probe.sq_norm(it, u)[0]) * lam / e
    slopes = np.array([loglog_slope(eps, r) for r in res])
    # tolerance: the slope moves by (floor/residual)/Δlog ε under rounding, plus 0.02 for the
    # next order's share at ε ≤ 0.1 (its local slopes differ from the order by < 0.01 here)
    tol = 0.02 + float(np.max(floor / res)) / np.log(eps[-1] / eps[0])
    dev = np.array([slopes[a] - orders[s] for a, s in enumerate(ORDERS)])
    data = xr.Dataset({"residual": (("scheme", "eps"), res),
                       "rounding": (("scheme", "eps"), floor),
                       "slope": ("scheme", slopes),
                       "expected": ("scheme", [orders[s] for s in ORDERS])},
                      coords={"scheme": list(ORDERS), "eps": eps})
    data.attrs.update(lam=lam, tolerance=tol)
    worst = float(np.max(np.abs(dev)))
    return {"value": worst, "uncertainty": tol, "data": data,
            "verdict": "PASS" if worst <= tol else "FAIL",
            "where": ", ".join(f"{s} {sl:.3f}" for s, sl in zip(ORDERS, slopes)),
            "configs": [ds.attrs["config"]], "seeds": [0]}


def _order_draw(data, ax):
    for k, s in enumerate(data.scheme.values):
        ax.loglog(data.eps, data.residual.sel(scheme=s), "o-", color=f"C{k}",
                  label=f"{s}: slope {float(data.slope.sel(scheme=s)):.3f} "
                        f"(order {int(data.expected.sel(scheme=s))})")
        ax.loglog(data.eps, data.rounding.sel(scheme=s), ":", color=f"C{k}", lw=0.8)
    ax.set_xlabel("finite-difference step ε")
    ax.set_ylabel("‖u_fdgr − u_gr‖ (weight space)")
    ax.legend(fontsize=7)
    return ax


register(Check(
    name="karakida_fdgr_order",
    claim="Finite-difference GR tends to GR as ε → 0 at order 1 (forward, backward) and 2 "
          "(central)",
    source="Karakida et al. ICML 2023 (arXiv:2210.02720), Sec. 3; SPEC §6",
    criterion="per scheme, the log-log slope of ‖u_fdgr(ε) − u_gr‖ at a fixed iterate over "
              "ε ∈ [1e-3, 0.1] (paper [1e-4, 0.1]) equals the order within 0.02 + the "
              "rounding share (exact rule, deterministic: no sampling error)",
    run=_order_run, draw=_order_draw))


# --- forward vs backward fdgr: test error over ε, in GD's harmful regime ----------------------

_GEN = {"quick": {"eps": (0.01, 0.05, 0.1, 0.2), "seeds": 8, "steps": 2000},
        "paper": {"eps": (0.003, 0.01, 0.03, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5), "seeds": 32,
                  "steps": 4000}}
#: GR strength of the comparison and the harmful demo setting (GD's test error ≈ 1/2).
LAM, MU = 0.1, 8.0
#: Non-inferiority margin in test error: "at least as well" holds at ε where forward − backward
#: + 2 SE <= DELTA (a claim of "not worse" needs a margin to be decidable).
DELTA = 0.02


@functools.lru_cache(maxsize=4)
def _gen_grid(size, backend):
    """Final test errors (scheme, ε, seed) of fdgr forward and backward, and GD's and GR's
    (seed). Cached: a negative control on other premises reuses the runs."""
    sz = _GEN[size]
    S = sz["seeds"]
    base = {"data.mu_norm": MU, "train.steps": sz["steps"], "train.record_every": sz["steps"]}
    cfgs = [base_config({**base, "algorithm.name": "fdgr", "algorithm.lam": LAM,
                         "algorithm.eps": float(e), "algorithm.scheme": sch})
            for sch in ("forward", "backward") for e in sz["eps"]]
    cfgs += [base_config({**base, "algorithm.name": "gd"}),
             base_config({**base, "algorithm.name": "gr", "algorithm.lam": LAM})]
    ds = simulate_batch([c for c in cfgs for _ in range(S)], list(range(S)) * len(cfgs),
                        quiet=True, backend=backend).isel(step=-1)
    err = ds.test_error.values.reshape(len(cfgs), S)
    E = len(sz["eps"])
    data = xr.Dataset({"test_error": (("scheme", "eps", "seed"), err[:2 * E].reshape(2, E, S)),
                       "gd_test_error": ("seed", err[-2]), "gr_test_error": ("seed", err[-1])},
                      coords={"scheme": ["forward", "backward"], "eps": list(sz["eps"]),
                              "seed": np.arange(S)})
    return data, [cfgs[0].to_toml()]


def _gen_run(size, eps_claim=0.1, swap=False):
    """Per ε, the paired (same seeds) difference of test errors forward − backward: the claim
    holds at ε where it is below DELTA by 2 standard errors (non-inferiority); "worse" where
    it exceeds 0 by 2 SE, "better" where it is below 0 by 2 SE. ``eps_claim``: the range
    ε <= eps_claim the verdict judges; ``swap`` claims backward >= forward instead (negative
    control)."""
    data, configs = _gen_grid(size, BACKEND.get())
    data = data.copy()
    a, b = ("backward", "forward") if swap else ("forward", "backward")
    d = data.test_error.sel(scheme=a) - data.test_error.sel(scheme=b)
    S = data.sizes["seed"]
    mean, se = d.mean("seed").values, d.std("seed", ddof=1).values / np.sqrt(S)
    eps = data.eps.values
    worse, better = mean - 2 * se > 0, mean + 2 * se < 0
    holds = mean + 2 * se <= DELTA
    judged = eps <= eps_claim
    if worse[judged].any():
        verdict = "FAIL"
    elif holds[judged].all():
        verdict = "PASS"
    else:
        verdict = "INCONCLUSIVE"
    first_bad = eps[worse].min() if worse.any() else None
    stop = eps[~holds].min() if (~holds).any() else np.inf
    where = (f"holds for ε <= {eps[eps < stop].max():g}" if holds[0]
             else "not shown at the smallest ε")
    if better.any():
        where += f" ({a} strictly better at ε = {', '.join(f'{e:g}' for e in eps[better])})"
    if first_bad is not None:
        where += f"; {a} worse from ε = {first_bad:g}"
    data = data.assign(difference=("eps", mean), difference_se=("eps", se))
    data.attrs.update(lam=LAM, mu=MU, eps_claim=eps_claim, compared=f"{a} − {b}")
    k = int(np.argmin(mean[judged])) if judged.any() else 0
    return {"value": float(mean[k]), "uncertainty": float(se[k]), "verdict": verdict,
            "where": where, "data": data, "configs": configs, "seeds": list(range(S))}


def _gen_draw(data, ax):
    for k, s in enumerate(data.scheme.values):
        e = data.test_error.sel(scheme=s)
        ax.errorbar(data.eps, e.mean("seed"), 2 * e.std("seed") / np.sqrt(data.sizes["seed"]),
                    fmt="o-", color=f"C{k}", label=f"fdgr {s}", capsize=2)
    ax.axhline(float(data.gd_test_error.mean()), color="k", ls=":", label="GD")
    ax.axhline(float(data.gr_test_error.mean()), color="k", ls="--", label="GR")
    ax.axvline(data.attrs["eps_claim"], color="0.6", lw=0.6)
    ax.set_xscale("log")
    ax.set_xlabel(f"ε (λ = {data.attrs['lam']:g})")
    ax.set_ylabel("test error")
    ax.legend(fontsize=7)
    return ax


register(Check(
    name="karakida_forward_vs_backward",
    claim="Forward finite-difference GR generalises at least as well as backward",
    source="Karakida et al. ICML 2023 (arXiv:2210.02720), Sec. 4 (implicit bias of the "
           "forward scheme); issue 8",
    criterion="paired over seeds, forward − backward test error per ε (λ = 0.1, ‖μ‖ = 8): "
              "FAIL if forward is worse by > 2 SE at some ε <= 0.1; PASS if non-inferior at "
              "every ε <= 0.1 (difference + 2 SE <= 0.02); else INCONCLUSIVE; where = the "
              "ε range where it holds, and where forward is strictly better or worse",
    run=_gen_run, draw=_gen_draw))
