"""Check of Meng, Cao, Zou, "Per-example gradient regularization improves learning signals
from noisy data" (arXiv:2303.17940): in GD's harmful regime a window of λ lets PEGR
generalise, while GR with the same λ does not; PEGR holds the noise part of the
pattern-learning variance down."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..simulate import simulate_batch
from .base import BACKEND, Check
from .cao2022 import base_config
from .registry import register

_SIZES = {"quick": {"lam": (1e-3, 1e-1, 7), "seeds": 4, "steps": 2000},
          "paper": {"lam": (1e-4, 1.0, 17), "seeds": 16, "steps": 4000}}
#: The harmful demo setting of the Cao checks (GD's test error ≈ 1/2): ‖μ‖ = 8, d = 2000.
MU_HARMFUL = 8.0
BENIGN, HARMFUL = 0.2, 0.4     # test-error levels: "generalises" below, "does not" above


def _run(size, algorithm="pegr", lam=None):
    """PEGR and GR at each λ, and GD, over seeds; the window of λ where PEGR's test error is
    below 0.2 and GR's above 0.4 (each at 2 standard errors over seeds) and PEGR's noise share
    of the pattern-learning variance is below GD's: grad_var_noise / (grad_var_signal +
    grad_var_noise), time mean over the records after step 0. The share, not the noise part
    itself: GD's gradients vanish once it has memorised the noise, so any raw variance is
    small late in a GD run, and its time mean is set by the common initial value. ``algorithm`` replaces PEGR (e.g. "gd":
    the negative control); ``lam`` = (first, last, count) replaces the grid of λ."""
    sz = _SIZES[size]
    lams = np.geomspace(*(lam or sz["lam"]))
    S = sz["seeds"]
    rows = [(algorithm, x) for x in lams] + [("gr", x) for x in lams] + [("gd", 0.0)]
    cfgs, seeds = [], []
    for name, strength in rows:
        ch = {"data.mu_norm": MU_HARMFUL, "algorithm.name": name, "train.steps": sz["steps"],
              "train.record_every": sz["steps"] // 20}
        if name in ("pegr", "gr"):
            ch["algorithm.lam"] = float(strength)
        cfg = base_config(ch)
        cfgs += [cfg] * S
        seeds += list(range(S))
    ds = simulate_batch(cfgs, seeds, quiet=True, backend=BACKEND.get())

    def per(var):
        return var.values.reshape(len(rows), S)

    err = per(ds.test_error.isel(step=-1))
    later = ds.isel(step=slice(1, None))
    with np.errstate(all="ignore"):
        share = later.grad_var_noise / (later.grad_var_signal + later.grad_var_noise)
    noise = per(share.mean("step", skipna=True))
    rho = per(ds.rho_bar_max.isel(step=-1))
    L = lams.size
    mean, se = err.mean(1), err.std(1, ddof=1) / np.sqrt(S)
    nmean, nse = noise.mean(1), noise.std(1, ddof=1) / np.sqrt(S)
    p, g, gd = slice(0, L), slice(L, 2 * L), -1
    benign = mean[p] + 2 * se[p] <= BENIGN
    gr_harmful = mean[g] - 2 * se[g] >= HARMFUL
    held = nmean[p] + 2 * nse[p] < nmean[gd] - 2 * nse[gd]
    holds = benign & gr_harmful & held
    # excluded at λ: PEGR surely not benign, or GR surely benign, or the noise surely not held
    excluded = ((mean[p] - 2 * se[p] > BENIGN) | (mean[g] + 2 * se[g] < HARMFUL)
                | (nmean[p] - 2 * nse[p] > nmean[gd] + 2 * nse[gd]))
    verdict = "PASS" if holds.any() else ("FAIL" if excluded.all() else "INCONCLUSIVE")
    where = (f"λ in [{lams[holds].min():.3g}, {lams[holds].max():.3g}]" if holds.any()
             else "no λ on the grid") + f" (grid {lams[0]:.3g}–{lams[-1]:.3g}, ‖μ‖ = {MU_HARMFUL}, " \
        f"GD test error {mean[gd]:.2f})"
    best = int(np.argmin(np.where(holds, mean[p], np.inf))) if holds.any() else \
        int(np.argmin(mean[p]))
    data = xr.Dataset(
        {"test_error": (("algorithm", "lam", "seed"), [err[p], err[g]]),
         "noise_share": (("algorithm", "lam", "seed"), [noise[p], noise[g]]),
         "rho_bar_max": (("algorithm", "lam", "seed"), [rho[p], rho[g]]),
         "gd_test_error": ("seed", err[gd]), "gd_noise_share": ("seed", noise[gd]),
         "holds": ("lam", holds)},
        coords={"algorithm": [algorithm, "gr"], "lam": lams, "seed": np.arange(S)})
    data.attrs.update(benign=BENIGN, harmful=HARMFUL)
    return {"value": float(mean[p][best]), "uncertainty": float(se[p][best]), "verdict": verdict,
            "where": where, "data": data,
            "configs": [cfgs[k * S].to_toml() for k in (0, L, 2 * L)], "seeds": list(range(S))}


def _draw(data, ax):
    lam = data.lam.values
    for k, a in enumerate(data.algorithm.values):
        e = data.test_error.sel(algorithm=a)
        ax.errorbar(lam, e.mean("seed"), 2 * e.std("seed") / np.sqrt(data.sizes["seed"]),
                    fmt="o-", color=f"C{k}", label=a, capsize=2)
    ax.axhline(float(data.gd_test_error.mean()), color="k", ls=":", label="GD")
    h = data.holds.values
    if h.any():
        ax.axvspan(lam[h].min(), lam[h].max(), color="C2", alpha=0.15, label="claim holds")
    ax.axhline(data.attrs["benign"], color="0.6", lw=0.6)
    ax.axhline(data.attrs["harmful"], color="0.6", lw=0.6)
    ax.set_xscale("log")
    ax.set_xlabel("λ")
    ax.set_ylabel("test error")
    ax.legend(fontsize=7)
    return ax


register(Check(
    name="pegr_window",
    claim="In GD's harmful regime a window of λ makes PEGR generalise while GR with the same λ "
          "does not, and PEGR holds the noise part of the pattern-learning variance down",
    source="Meng, Cao, Zou 2024 (arXiv:2303.17940), Thm 4.1 vs GR; SPEC §6",
    criterion="window of λ where PEGR's test error + 2 SE <= 0.2, GR's − 2 SE >= 0.4 and PEGR's "
              "noise share of the pattern-learning variance, grad_var_noise / (grad_var_signal "
              "+ grad_var_noise) time-mean after step 0, + 2 SE < GD's − 2 SE (SE over seeds): "
              "PASS if not empty, FAIL if every λ is excluded at 2 SE, else INCONCLUSIVE",
    run=_run, draw=_draw))
