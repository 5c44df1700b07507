"""The activation σ and the logistic loss ℓ with its derivatives, compiled with Numba (SPEC §2).

σ(z) = max(0, z)^q with σ'(0) = 0; ℓ(z) = log(1 + e^{−z}), ℓ' and ℓ'' exact to full relative
precision at any margin.
"""

from __future__ import annotations

import math

from numba import njit


@njit(cache=True)
def act(z, q):
    """σ(z) = max(0, z)^q."""
    if z <= 0.0:
        return 0.0
    if q == 1.0:
        return z
    if q == 2.0:
        return z * z
    if q == 3.0:
        return z * z * z
    return z ** q


@njit(cache=True)
def dact(z, q):
    """σ'(z) = q max(0, z)^{q−1}, with σ'(0) = 0."""
    if z <= 0.0:
        return 0.0
    if q == 1.0:
        return 1.0
    if q == 2.0:
        return 2.0 * z
    if q == 3.0:
        return 3.0 * z * z
    return q * z ** (q - 1.0)


@njit(cache=True)
def d2act(z, q):
    """σ''(z) = q(q−1) max(0, z)^{q−2} (zero for q = 1 and z ≤ 0)."""
    if z <= 0.0 or q == 1.0:
        return 0.0
    if q == 2.0:
        return 2.0
    if q == 3.0:
        return 6.0 * z
    return q * (q - 1.0) * z ** (q - 2.0)


@njit(cache=True)
def logistic(z):
    """ℓ(z), ℓ'(z), ℓ''(z) of ℓ(z) = log(1 + e^{−z}), accurate to full relative precision
    at any margin (no switch to a linear tail, so ℓ'' never drops to zero early)."""
    e = math.exp(-abs(z))              # in (0, 1]: never overflows
    if z >= 0.0:
        loss = math.log1p(e)
        d1 = -e / (1.0 + e)
    else:
        loss = -z + math.log1p(e)
        d1 = -1.0 / (1.0 + e)
    d2 = e / ((1.0 + e) * (1.0 + e))
    return loss, d1, d2


@njit(cache=True)
def logistic_loss(z):
    """ℓ(z) alone: the arithmetic of :func:`logistic`'s first output."""
    e = math.exp(-abs(z))
    if z >= 0.0:
        return math.log1p(e)
    return -z + math.log1p(e)


@njit(cache=True)
def margin_terms(f, y, loss, d1, d2):
    """Per-example ℓ, ℓ', ℓ'' at the margins y_i f_i."""
    for i in range(f.shape[0]):
        loss[i], d1[i], d2[i] = logistic(y[i] * f[i])
