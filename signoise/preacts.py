"""The two-layer CNN in pre-activation form, compiled with Numba (SPEC §2, §4).

Both engines reduce the network to its pre-activations ``H[j, r, i, p] = ⟨w_{j,r}, x_i^(p)⟩
+ b_{j,r}`` (j = 0 for the +1 class, p = 0 the signal patch ỹ_i μ, p = 1 the noise patch ξ_i).
Everything a step needs is then a *patch coefficient* ``Q[j, r, i, p]``: the gradient of the
objective with respect to ``w_{j,r}`` is ``Σ_{i,p} Q[j,r,i,p] x_i^(p)`` (and ``Σ_{i,p} Q`` for
the bias). The engines differ only in how they get ``H`` and how they apply ``Q``.

    f(x_i) = Σ_j c_j Σ_r Σ_p σ(H[j,r,i,p]),   c = (+a, −a),   σ(z) = max(0, z)^q
    ℓ(z) = log(1 + e^{−z}),  L = Σ_i ω_i ℓ(y_i f(x_i))   (ω_i = 1/n for GD)

``blocks[i]`` is example i's 2×2 patch Gram block ⟨x_i^(p), x_i^(p')⟩.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .activation import act, d2act, dact


@njit(cache=True)
def outputs(H, q, a, f):
    """f[i] = a Σ_r Σ_p σ(H[0,r,i,p]) − a Σ_r Σ_p σ(H[1,r,i,p]).

    One pass in memory order (:func:`accumulate_acts`, then :func:`combine_outputs`); each
    class sum adds its terms in the order r, p, as a loop over i outermost would.
    """
    _, m, n, _ = H.shape
    acc = np.zeros((2, n))
    accumulate_acts(H.ravel(), m, n, q, acc)
    combine_outputs(acc, a, f)


@njit(cache=True)
def accumulate_acts(h, m, n, q, acc):
    """acc[j, i] += σ(H[j,r,i,p]) over r, p in that order, H (2, m, n, 2) given flat (C order)
    as ``h``. Flat indices instead of 4-D ones: the loop then runs at about twice the speed."""
    for j in range(2):
        for r in range(m):
            base = (j * m + r) * n * 2
            for i in range(n):
                acc[j, i] += act(h[base + 2 * i], q)
                acc[j, i] += act(h[base + 2 * i + 1], q)


@njit(cache=True)
def combine_outputs(acc, a, f):
    """f[i] = 0 + a acc[0, i] + (−a) acc[1, i] (the class sums' combination, in this order)."""
    for i in range(f.shape[0]):
        f[i] = 0.0 + a * acc[0, i] + (-a) * acc[1, i]


@njit(cache=True)
def gd_coef(H, y, d1, omega, q, a, Q):
    """Patch coefficients of ∇ Σ_i ω_i ℓ_i: Q[j,r,i,p] = ω_i ℓ'_i y_i c_j σ'(H[j,r,i,p]).

    Flat indices (C order), as :func:`accumulate_acts`."""
    assert Q.flags.c_contiguous, "gd_coef writes a C-contiguous Q"
    _, m, n, _ = H.shape
    h, out = H.ravel(), Q.ravel()
    for j in range(2):
        cj = a if j == 0 else -a
        for r in range(m):
            base = (j * m + r) * n * 2
            for i in range(n):
                u = omega[i] * d1[i] * y[i] * cj
                out[base + 2 * i] = u * dact(h[base + 2 * i], q)
                out[base + 2 * i + 1] = u * dact(h[base + 2 * i + 1], q)


@njit(cache=True)
def patch_sqnorm_blocks(K, blocks):
    """blocks[i] = the 2×2 Gram matrix of example i's patches, read off the patch Gram matrix K."""
    n = blocks.shape[0]
    for i in range(n):
        for p in range(2):
            for s in range(2):
                blocks[i, p, s] = K[2 * i + p, 2 * i + s]


@njit(cache=True)
def delta_preacts(Q, K, dH):
    """Pre-activation change along the direction Σ Q x: dH[j,r,s] = Σ_t Q[j,r,t] K[t,s].

    K is the patch Gram matrix (index 2i+p, plus 1 everywhere when the model has a bias), so
    ``dH = H(W + Σ Q x) − H(W)`` exactly, in either engine, at O(m n²).
    """
    two, m, n, P = Q.shape
    assign(dH, np.dot(Q.reshape(two * m, n * P), K))


@njit(cache=True)
def delta_preacts_basis(Q, G, y_true, use_bias, dH):
    """:func:`delta_preacts` through the basis Gram matrix G of [μ, ξ_1..ξ_n] (gram engine):
    the direction Σ Q x has coefficients c_0 = Σ_i Q[., i, 0] ỹ_i, c_{i+1} = Q[., i, 1] (and
    Σ Q on the bias); then ⟨Σ Q x, v_b⟩ = (c G)_b gives dH[i, 0] = ỹ_i (cG)_0 (+ Σ Q),
    dH[i, 1] = (cG)_{i+1} (+ Σ Q). A (2m × (n+1)) (n+1)² product instead of K's (2m × 2n)
    (2n)²: about 4× fewer flops, the same numbers up to rounding."""
    two, m, n, _ = Q.shape
    c = np.empty((two * m, n + 1))
    sb = np.zeros(two * m)
    for j in range(two):
        for r in range(m):
            row = j * m + r
            s = 0.0
            for i in range(n):
                s += Q[j, r, i, 0] * y_true[i]
                c[row, i + 1] = Q[j, r, i, 1]
                if use_bias:
                    sb[row] += Q[j, r, i, 0] + Q[j, r, i, 1]
            c[row, 0] = s
    Z = np.dot(c, G)
    for j in range(two):
        for r in range(m):
            row = j * m + r
            for i in range(n):
                dH[j, r, i, 0] = y_true[i] * Z[row, 0] + sb[row]
                dH[j, r, i, 1] = Z[row, i + 1] + sb[row]


@njit(cache=True)
def direction_preacts(Q, K, G, y_true, use_bias, dH):
    """dH = H(W + Σ Q x) − H(W): through G when the engine passes it (non-empty), else K."""
    if G.shape[0]:
        delta_preacts_basis(Q, G, y_true, use_bias, dH)
    else:
        delta_preacts(Q, K, dH)


@njit(cache=True)
def example_sq(H, blocks, i, q, a):
    """T_i = ‖∇_W (y_i f(x_i))‖² = a² Σ_{j,r} Σ_{p,p'} σ'(H_p) σ'(H_p') P_i[p,p']."""
    _, m, _, _ = H.shape
    T = 0.0
    for j in range(2):
        for r in range(m):
            s0 = dact(H[j, r, i, 0], q)
            s1 = dact(H[j, r, i, 1], q)
            T += (s0 * s0 * blocks[i, 0, 0] + 2.0 * s0 * s1 * blocks[i, 0, 1]
                  + s1 * s1 * blocks[i, 1, 1])
    return a * a * T


@njit(cache=True)
def pegr_coef(H, y, d1, d2, omega, blocks, q, a, strength, Q):
    """Q = (:func:`gd_coef`) + strength · patch coefficients of ∇ Σ_i ω_i ‖∇ℓ_i‖² (closed form,
    SPEC §4); both in one pass over σ'(H), so a PEGR step costs little more than a GD step.

    ‖∇ℓ_i‖² = ℓ'_i² T_i (:func:`example_sq`), and its gradient has patch coefficients
    2 ℓ'_i ℓ''_i T_i y_i c_j σ'(H_p) + 2 ℓ'_i² c_j² σ''(H_p) Σ_{p'} σ'(H_p') P_i[p,p'].
    Two passes in memory order (i innermost, as in :func:`gd_coef`): σ', σ'', T_i and the GD
    part, then the penalty's part.
    """
    _, m, n, _ = H.shape
    T = np.zeros(n)
    S1 = np.empty(H.shape)        # σ'(H), σ''(H): evaluated once
    S2 = np.empty(H.shape)
    for j in range(2):
        cj = a if j == 0 else -a
        for r in range(m):
            for i in range(n):
                s0 = dact(H[j, r, i, 0], q)
                s1 = dact(H[j, r, i, 1], q)
                u = omega[i] * d1[i] * y[i] * cj         # exactly gd_coef's arithmetic
                Q[j, r, i, 0] = u * s0
                Q[j, r, i, 1] = u * s1
                S1[j, r, i, 0] = s0
                S1[j, r, i, 1] = s1
                S2[j, r, i, 0] = d2act(H[j, r, i, 0], q)
                S2[j, r, i, 1] = d2act(H[j, r, i, 1], q)
                T[i] += (s0 * s0 * blocks[i, 0, 0] + 2.0 * s0 * s1 * blocks[i, 0, 1]
                         + s1 * s1 * blocks[i, 1, 1])
    c1 = np.empty(n)
    c2 = np.empty(n)
    for i in range(n):
        w = strength * omega[i]
        c1[i] = w * 2.0 * d1[i] * d2[i] * a * a * T[i] * y[i]
        c2[i] = w * 2.0 * d1[i] * d1[i] * a * a
    for j in range(2):
        cj = a if j == 0 else -a
        for r in range(m):
            for i in range(n):
                s0 = S1[j, r, i, 0]
                s1 = S1[j, r, i, 1]
                Q[j, r, i, 0] += cj * c1[i] * s0 + c2[i] * S2[j, r, i, 0] * (blocks[i, 0, 0] * s0 + blocks[i, 0, 1] * s1)
                Q[j, r, i, 1] += cj * c1[i] * s1 + c2[i] * S2[j, r, i, 1] * (blocks[i, 1, 0] * s0 + blocks[i, 1, 1] * s1)


@njit(cache=True)
def hvp_coef(H, dH, y, d1, d2, omega, q, a, strength, Q):
    """Q += strength · patch coefficients of ∇²(Σ_i ω_i ℓ_i) v, where dH = the pre-activation
    change along v: the derivative of :func:`gd_coef` along v, in closed form.

    d/dt Q[j,r,i,p] = ω_i y_i c_j (ℓ''_i y_i df_i σ'(H) + ℓ'_i σ''(H) dH),
    df_i = Σ_{j,r,p} c_j σ'(H) dH.
    """
    _, m, n, P = H.shape
    for i in range(n):
        df = 0.0
        for j in range(2):
            cj = a if j == 0 else -a
            for r in range(m):
                for p in range(P):
                    df += cj * dact(H[j, r, i, p], q) * dH[j, r, i, p]
        for j in range(2):
            cj = a if j == 0 else -a
            u = strength * omega[i] * y[i] * cj
            for r in range(m):
                for p in range(P):
                    h = H[j, r, i, p]
                    Q[j, r, i, p] += u * (d2[i] * y[i] * df * dact(h, q) + d1[i] * d2act(h, q) * dH[j, r, i, p])


# Flat loops instead of NumPy array expressions: Numba compiles those slowly on 4-D arrays
# (tens of seconds each), and the kernels below would pay it at every fresh install.

@njit(cache=True)
def fdot(x, z):
    """Σ x·z over all entries."""
    assert x.flags.c_contiguous and z.flags.c_contiguous, "fdot needs C-contiguous arrays"
    a, b = x.ravel(), z.ravel()
    s = 0.0
    for k in range(a.size):
        s += a[k] * b[k]
    return s


@njit(cache=True)
def lincomb(out, alpha, x, beta, z):
    """out = α x + β z, entrywise (``out`` may be ``x`` or ``z``). C-contiguous arrays only:
    ``ravel`` of any other would copy, and ``out`` would silently stay unwritten."""
    assert out.flags.c_contiguous and x.flags.c_contiguous and z.flags.c_contiguous, \
        "lincomb needs C-contiguous arrays"
    o, a, b = out.ravel(), x.ravel(), z.ravel()
    for k in range(o.size):
        o[k] = alpha * a[k] + beta * b[k]


@njit(cache=True)
def assign(out, x):
    """out = x, entrywise, whatever the shapes (equal sizes; C-contiguous, as :func:`lincomb`)."""
    assert out.flags.c_contiguous and x.flags.c_contiguous, "assign needs C-contiguous arrays"
    o, a = out.ravel(), x.ravel()
    for k in range(o.size):
        o[k] = a[k]


@njit(cache=True)
def is_finite(x):
    """True when no entry of ``x`` is NaN or infinite."""
    for v in x.ravel():
        if not math.isfinite(v):
            return False
    return True
