"""The two-layer CNN in pre-activation form, compiled with Numba (SPEC §2).

Both engines reduce the network to its pre-activations ``H[j, r, i, p] = ⟨w_{j,r}, x_i^(p)⟩
+ b_{j,r}`` (j = 0 for the +1 class, p = 0 the signal patch ỹ_i μ, p = 1 the noise patch ξ_i).
Everything a step needs is then a *patch coefficient* ``Q[j, r, i, p]``: the gradient of the
objective with respect to ``w_{j,r}`` is ``Σ_{i,p} Q[j,r,i,p] x_i^(p)`` (and ``Σ_{i,p} Q`` for
the bias). The engines differ only in how they get ``H`` and how they apply ``Q``.

    f(x_i) = Σ_j c_j Σ_r Σ_p σ(H[j,r,i,p]),   c = (+a, −a),   σ(z) = max(0, z)^q
    ℓ(z) = log(1 + e^{−z}),  L = Σ_i ω_i ℓ(y_i f(x_i))   (ω_i = 1/n for GD)
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
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


@njit(cache=True, inline="always")
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


@njit(cache=True, inline="always")
def d2act(z, q):
    """σ''(z) = q(q−1) max(0, z)^{q−2} (zero for q = 1 and z ≤ 0)."""
    if z <= 0.0 or q == 1.0:
        return 0.0
    if q == 2.0:
        return 2.0
    if q == 3.0:
        return 6.0 * z
    return q * (q - 1.0) * z ** (q - 2.0)


@njit(cache=True, inline="always")
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
def outputs(H, q, a, f):
    """f[i] = a Σ_r Σ_p σ(H[0,r,i,p]) − a Σ_r Σ_p σ(H[1,r,i,p])."""
    _, m, n, P = H.shape
    for i in range(n):
        s = 0.0
        for j in range(2):
            cj = a if j == 0 else -a
            acc = 0.0
            for r in range(m):
                for p in range(P):
                    acc += act(H[j, r, i, p], q)
            s += cj * acc
        f[i] = s


@njit(cache=True)
def margin_terms(f, y, loss, d1, d2):
    """Per-example ℓ, ℓ', ℓ'' at the margins y_i f_i."""
    for i in range(f.shape[0]):
        loss[i], d1[i], d2[i] = logistic(y[i] * f[i])


@njit(cache=True)
def gd_coef(H, y, d1, omega, q, a, Q):
    """Patch coefficients of ∇ Σ_i ω_i ℓ_i: Q[j,r,i,p] = ω_i ℓ'_i y_i c_j σ'(H[j,r,i,p])."""
    _, m, n, P = H.shape
    for j in range(2):
        cj = a if j == 0 else -a
        for r in range(m):
            for i in range(n):
                u = omega[i] * d1[i] * y[i] * cj
                for p in range(P):
                    Q[j, r, i, p] = u * dact(H[j, r, i, p], q)


@njit(cache=True)
def is_finite(x):
    """True when no entry of ``x`` is NaN or infinite."""
    for v in x.ravel():
        if not math.isfinite(v):
            return False
    return True


def numpy_forward(H, y, q, a):
    """Plain NumPy outputs and losses, for tests and small evaluations."""
    f = np.zeros(H.shape[2])
    outputs(H, float(q), float(a), f)
    loss, d1, d2 = (np.zeros_like(f) for _ in range(3))
    margin_terms(f, y.astype(np.float64), loss, d1, d2)
    return f, loss, d1, d2
