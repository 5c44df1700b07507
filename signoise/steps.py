"""One training step of every algorithm, in pre-activation space (SPEC §4).

The engines hand over the pre-activations ``H`` of the current iterate, the patch Gram matrix
``K`` or, in the gram engine, the basis Gram matrix ``G`` with the true labels ``yt`` (so that
any step along a gradient direction is known exactly in pre-activation space, see
:func:`signoise.preacts.direction_preacts`; G's product costs 4× fewer flops) and the step's
random inputs; :func:`step_coef` returns the patch coefficients ``Q`` of the update direction, W ← W − η Σ Q x. Engines own
only "how to get H" and "how to apply Q", so each rule below exists once.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .activation import margin_terms
from .algorithms import (
    ANTI_PGD,
    CLIP,
    FDGR,
    FLOODING,
    GR,
    LABEL_NOISE_GD,
    LPG,
    NOISY_EVAL,
    PEGR,
    SAM,
    USAM,
    FDScheme,
)
from .preacts import (
    assign,
    direction_preacts,
    fdot,
    gd_coef,
    hvp_coef,
    lincomb,
    outputs,
    pegr_coef,
)


@njit(cache=True)
def _grad_at(H, y, omega, q, a, f, loss, d1, d2, Q):
    """GD coefficients of Σ ω_i ℓ_i at pre-activations H (overwrites the buffers)."""
    outputs(H, q, a, f)
    margin_terms(f, y, loss, d1, d2)
    gd_coef(H, y, d1, omega, q, a, Q)


@njit(cache=True)
def _lpg_weights(y, loss, prm, omega):
    """ω_i = (1 + α_{y_i}(t))/n with α_c(t) = α_c + adapt (L_c/L − 1) (signoise's LPG)."""
    n = y.shape[0]
    total = loss.sum() / n
    sums = np.zeros(2)
    counts = np.zeros(2)
    for i in range(n):
        c = 0 if y[i] > 0 else 1
        sums[c] += loss[i]
        counts[c] += 1.0
    for i in range(n):
        c = 0 if y[i] > 0 else 1
        alpha = prm.alpha_pos if c == 0 else prm.alpha_neg
        if prm.adapt != 0.0 and counts[c] > 0 and total > 0.0:
            alpha += prm.adapt * (sums[c] / counts[c] / total - 1.0)
        omega[i] = (1.0 + alpha) / n


@njit(cache=True)
def example_weights(prm, y, loss, ysign, omega_in, ys, omega):
    """The step's labels ``ys`` (y, or y times the per-step signs of label_noise_gd) and
    example weights ``omega`` (1/n, the per-step draws of sgd/msgd, or lpg's weights)."""
    n = y.shape[0]
    for i in range(n):
        ys[i] = y[i] * ysign[i] if ysign.shape[0] else y[i]
        omega[i] = omega_in[i] if omega_in.shape[0] else 1.0 / n
    if prm.code == LPG:
        _lpg_weights(y, loss, prm, omega)


@njit(cache=True)
def step_coef(prm, H, dHn, K, G, yt, blocks, y, ysign, omega_in, f, loss, d1, d2, ys, omega, Hs, dH, Q,
              Qs):
    """Fill Q with the update direction of the run's algorithm (``prm``, a run record of
    :data:`~signoise.algorithms.RUN_DTYPE`) at H; return L_S(H).

    ``ysign`` (n,) or empty: per-step label signs (label_noise_gd); ``omega_in`` (n,) or empty:
    per-step example weights (sgd, msgd); ``dHn``: pre-activation noise ⟨ζ, x⟩ (noisy_eval,
    anti_pgd); ``blocks``: each example's 2×2 patch Gram block. The other arrays are scratch of
    the shapes of H (Hs, dH, Q, Qs) or (n,).
    """
    outputs(H, prm.q, prm.a, f)
    return step_coef_given(prm, H, dHn, K, G, yt, blocks, y, ysign, omega_in, f, loss, d1, d2,
                           ys, omega, Hs, dH, Q, Qs)


@njit(cache=True)
def step_coef_given(prm, H, dHn, K, G, yt, blocks, y, ysign, omega_in, f, loss, d1, d2, ys,
                    omega, Hs, dH, Q, Qs):
    """:func:`step_coef` with the outputs ``f`` = f(H) given: the gram engine forms them in
    the pass that forms H (:func:`signoise.engines.gram.preacts`)."""
    code, q, a = prm.code, prm.q, prm.a
    n = y.shape[0]
    margin_terms(f, y, loss, d1, d2)
    L = loss.sum() / n

    example_weights(prm, y, loss, ysign, omega_in, ys, omega)
    if code == LABEL_NOISE_GD:
        margin_terms(f, ys, loss, d1, d2)

    if code == NOISY_EVAL or code == ANTI_PGD:
        lincomb(Hs, 1.0, H, 1.0, dHn)
        _grad_at(Hs, ys, omega, q, a, f, loss, d1, d2, Q)
        return L

    if code == PEGR:                      # GD part and penalty in one pass
        pegr_coef(H, ys, d1, d2, omega, blocks, q, a, 0.5 * prm.lam, Q)
        return L
    gd_coef(H, ys, d1, omega, q, a, Q)
    if code == FLOODING:
        if L < prm.flood_level:
            lincomb(Q, -1.0, Q, 0.0, Q)
    elif code == CLIP:
        direction_preacts(Q, K, G, yt, prm.use_bias, dH)
        norm = math.sqrt(fdot(Q, dH))
        if norm > prm.max_norm:
            lincomb(Q, prm.max_norm / norm, Q, 0.0, Q)
    elif code == GR:
        direction_preacts(Q, K, G, yt, prm.use_bias, dH)   # v = g, so λ H g is added
        hvp_coef(H, dH, ys, d1, d2, omega, q, a, prm.lam, Q)
    elif code == SAM or code == USAM or code == FDGR:
        direction_preacts(Q, K, G, yt, prm.use_bias, dH)
        if code == FDGR:
            lam, eps, scheme = prm.lam, prm.fd_step, prm.fd_scheme
            r = -eps if scheme == FDScheme.BACKWARD else eps
        elif code == SAM:
            norm = math.sqrt(fdot(Q, dH))
            r = prm.radius / norm if norm > 0.0 else 0.0
        else:
            r = prm.radius
        lincomb(Hs, 1.0, H, r, dH)
        _grad_at(Hs, ys, omega, q, a, f, loss, d1, d2, Qs)
        if code != FDGR:
            assign(Q, Qs)
        elif scheme == FDScheme.FORWARD:    # (1 − λ/ε) g + (λ/ε) ∇L(W + εg)
            lincomb(Q, 1.0 - lam / eps, Q, lam / eps, Qs)
        elif scheme == FDScheme.BACKWARD:   # (1 + λ/ε) g − (λ/ε) ∇L(W − εg)
            lincomb(Q, 1.0 + lam / eps, Q, -lam / eps, Qs)
        else:                               # central: g + λ [∇L(W+εg) − ∇L(W−εg)]/(2ε)
            lincomb(Hs, 1.0, H, -eps, dH)
            _grad_at(Hs, ys, omega, q, a, f, loss, d1, d2, dH)  # dH reused as scratch
            lincomb(Qs, 1.0, Qs, -1.0, dH)
            lincomb(Q, 1.0, Q, lam / (2.0 * eps), Qs)
    return L
