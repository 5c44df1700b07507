"""What the gradient-perturbation checks share: the iterate they probe (a short GD run at a
small size, d-independent in the gram engine) and a log-log slope fit."""

from __future__ import annotations

import functools
import warnings

import numpy as np

from ..config import RunConfig
from ..simulate import simulate

#: A small problem whose GD iterate has O(1) pre-activations: n = 10, m = 4, q = 3, d = 200.
PROBE_BASE = {"seed": 0,
              "data": {"n": 10, "d": 200, "mu_norm": 5.0, "sigma_p": 1.0, "n_test": 50},
              "model": {"m": 4, "q": 3.0, "sigma0": 0.05},
              "algorithm": {"name": "gd"},
              "train": {"lr": 0.05, "steps": 50, "record_every": 50}}


@functools.lru_cache(maxsize=8)
def gd_iterate(steps: int, m: int = 4, n: int = 10):
    """The GD result after ``steps`` steps of :data:`PROBE_BASE` (its final state is probed)."""
    cfg = RunConfig.from_dict(PROBE_BASE).updated(
        {"train.steps": steps, "train.record_every": steps, "model.m": m, "data.n": n})
    with warnings.catch_warnings():   # σ₀σ_p√d is not small here on purpose: an O(1) iterate
        warnings.simplefilter("ignore")
        return simulate(cfg, quiet=True)


def loglog_slope(x, y) -> float:
    """Least-squares slope of log y on log x."""
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])
