"""γ and the ρ summaries of a batch of gram-engine states, compiled, without forming ρ.

With ``record_rho = "summary"`` the driver keeps, per record, γ and three summaries of ρ
(:func:`signoise.driver.rho_summaries`). Forming ρ (B, 2, m, n) and masking it costs more than
the summaries; here they come from β and the Gram matrix in one pass, with the arithmetic of
:meth:`signoise.engines.gram.Batch.coefficients` (one product per entry), so the numbers equal
``rho_summaries(coefficients())`` bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange


@njit(cache=True)
def _one(beta, G, y, gamma, rho_max, best):
    """Run b: γ, and (max ρ̄, min ρ̲) with NaN propagated as ``np.max``/``np.min`` do;
    ``best[i] = max_r ρ̄_{y_i, r, i}`` (ρ̄: ρ where y_i = j, Kou et al. 2023 notation)."""
    _, m, k = beta.shape
    n = k - 1
    top, low = -np.inf, np.inf
    nan_top, nan_low = False, False
    for j in range(2):
        sign = 1.0 if j == 0 else -1.0
        for r in range(m):
            gamma[j, r] = sign * beta[j, r, 0] * G[0, 0]
    for i in range(n):
        own = 0 if y[i] == 1.0 else 1          # the j with y_i = j (labels are ±1)
        sq = G[i + 1, i + 1]
        b = -np.inf
        nan_b = False
        for j in range(2):
            for r in range(m):
                rho = beta[j, r, i + 1] * sq
                if j == own:
                    if math.isnan(rho):
                        nan_b = True
                    elif rho > b:
                        b = rho
                else:
                    if math.isnan(rho):
                        nan_low = True
                    elif rho < low:
                        low = rho
        best[i] = np.nan if nan_b else b
        if nan_b:
            nan_top = True
        elif b > top:
            top = b
    rho_max[0] = np.nan if nan_top else top
    rho_max[1] = np.nan if nan_low else low


@njit(cache=True, parallel=True)
def _batch(beta, G, y, gamma, summary, best):
    for b in prange(beta.shape[0]):
        _one(beta[b], G[b], y[b], gamma[b], summary[b], best[b])


@njit(cache=True)
def _serial(beta, G, y, gamma, summary, best):
    for b in range(beta.shape[0]):
        _one(beta[b], G[b], y[b], gamma[b], summary[b], best[b])


def coefficient_summaries(beta, G, y, parallel: bool = False):
    """γ and the ρ summaries of gram-engine states.

    Parameters
    ----------
    beta : numpy.ndarray, shape (B, 2, m, n+1)
        Coefficients: w_{j,r} = w0_{j,r} + Σ_a β_{j,r,a} v_a, v_0 = μ, v_i = ξ_i (SPEC §3).
    G : numpy.ndarray, shape (B, n+1, n+1)
        Gram matrices of the bases.
    y : numpy.ndarray, shape (B, n)
        Observed labels (±1).
    parallel : bool
        ``prange`` over runs (the numbers do not depend on it).

    Returns
    -------
    gamma : numpy.ndarray, shape (B, 2, m)
        γ_{j,r} = j β_{j,r,0} ‖μ‖².
    summary : numpy.ndarray, shape (B, 3)
        max_{j,r,i} ρ̄, min_{j,r,i} ρ̲ and mean_i max_r ρ̄_{y_i,r,i}, with
        ρ_{j,r,i} = β_{j,r,i} ‖ξ_i‖²: :func:`signoise.driver.rho_summaries` of that ρ.
    """
    B, _, m, k = beta.shape
    gamma = np.empty((B, 2, m))
    summary = np.empty((B, 3))
    best = np.empty((B, k - 1))
    (_batch if parallel else _serial)(beta, G, y, gamma, summary, best)
    summary[:, 2] = best.mean(axis=-1)   # NumPy's (pairwise) sum, as rho_summaries has it
    return gamma, summary


__all__ = ["coefficient_summaries"]
