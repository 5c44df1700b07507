"""A second layer a_{j,r} per filter, trained or not: the pre-activation calculus of
:mod:`signoise.preacts` with per-filter readout weights (SPEC §2, "Trainable second layer").

    f(x_i) = Σ_j s_j Σ_r a_{j,r} Σ_p σ(H[j,r,i,p]),   s = (+1, −1)
    ∇_{w_{j,r}} Σ_i ω_i ℓ_i = Σ_{i,p} Q[j,r,i,p] x_i^(p),  Q = ω_i ℓ'_i y_i s_j a_{j,r} σ'(H)
    ∂/∂a_{j,r} Σ_i ω_i ℓ_i = s_j Σ_i ω_i ℓ'_i y_i Σ_p σ(H[j,r,i,p])

The filters' gradient stays in span{μ, ξ_i} (scaled by a_{j,r}), so both engines stay exact;
the readout gradient ``gA`` (2, m) rides beside the patch coefficients Q. A step along the
direction (Q, gA) moves the pre-activations by Q K (:func:`~signoise.preacts.delta_preacts`)
and the readout by gA, so every gradient-only rule is exact here too (Orvieto et al., AISTATS
2023, arXiv:2206.04613, study noise injection in networks with both layers trained).

The fixed readout ±a keeps the scalar kernels of :mod:`signoise.preacts` and
:mod:`signoise.steps` (their arithmetic, bit for bit); these run when the record's ``readout``
is :attr:`~signoise.algorithms.Readout.PER_FILTER` or ``TRAINED``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .activation import act, d2act, dact, margin_terms
from .algorithms import (ANTI_PGD, CLIP, FDGR, FLOODING, GR, LABEL_NOISE_GD, NOISY_EVAL, PEGR,
                         SAM, USAM, FDScheme, Readout)
from .diagnostics import score_outputs, signal_variance
from .preacts import delta_preacts, direction_preacts, fdot, lincomb
from .steps import example_weights


@njit(cache=True)
def outputs_ro(H, ro, q, f):
    """f[i] = Σ_j s_j Σ_r a_{j,r} Σ_p σ(H[j,r,i,p])."""
    _, m, n, P = H.shape
    for i in range(n):
        s = 0.0
        for j in range(2):
            sj = 1.0 if j == 0 else -1.0
            for r in range(m):
                acc = 0.0
                for p in range(P):
                    acc += act(H[j, r, i, p], q)
                s += sj * ro[j, r] * acc
        f[i] = s


@njit(cache=True)
def gd_coef_ro(H, y, d1, omega, q, ro, Q, gA):
    """Gradient of Σ_i ω_i ℓ_i: the filters' patch coefficients Q and the readout's gA."""
    _, m, n, P = H.shape
    for j in range(2):
        sj = 1.0 if j == 0 else -1.0
        for r in range(m):
            c = sj * ro[j, r]
            g = 0.0
            for i in range(n):
                u = omega[i] * d1[i] * y[i]
                acc = 0.0
                for p in range(P):
                    h = H[j, r, i, p]
                    Q[j, r, i, p] = u * c * dact(h, q)
                    acc += act(h, q)
                g += u * acc
            gA[j, r] = sj * g


@njit(cache=True)
def hvp_coef_ro(H, ro, dH, dA, y, d1, d2, omega, q, strength, Q, gA):
    """(Q, gA) += strength · ∇²(Σ_i ω_i ℓ_i) v for the direction v = (dH, dA) (pre-activation
    and readout changes): the derivative of :func:`gd_coef_ro` along v, in closed form.

    df_i = Σ_{j,r} s_j [dA_{jr} Σ_p σ(H) + a_{jr} Σ_p σ'(H) dH],
    dQ = ω_i y_i s_j [ℓ''_i y_i df_i a_{jr} σ'(H) + ℓ'_i (dA_{jr} σ'(H) + a_{jr} σ''(H) dH)],
    dgA_{jr} = s_j Σ_i ω_i y_i [ℓ''_i y_i df_i Σ_p σ(H) + ℓ'_i Σ_p σ'(H) dH].
    """
    _, m, n, P = H.shape
    df = np.zeros(n)
    for j in range(2):
        sj = 1.0 if j == 0 else -1.0
        for r in range(m):
            for i in range(n):
                acc = 0.0
                for p in range(P):
                    h = H[j, r, i, p]
                    acc += dA[j, r] * act(h, q) + ro[j, r] * dact(h, q) * dH[j, r, i, p]
                df[i] += sj * acc
    for j in range(2):
        sj = 1.0 if j == 0 else -1.0
        for r in range(m):
            c = ro[j, r]
            g = 0.0
            for i in range(n):
                u = strength * omega[i] * y[i] * sj
                curv = d2[i] * y[i] * df[i]
                sig = 0.0
                lin = 0.0
                for p in range(P):
                    h = H[j, r, i, p]
                    s1 = dact(h, q)
                    Q[j, r, i, p] += u * (curv * c * s1 + d1[i] * (dA[j, r] * s1 + c * d2act(h, q)
                                                                    * dH[j, r, i, p]))
                    sig += act(h, q)
                    lin += s1 * dH[j, r, i, p]
                g += u * (curv * sig + d1[i] * lin)
            gA[j, r] += g


@njit(cache=True)
def pegr_coef_ro(H, ro, trained, y, d1, d2, omega, blocks, q, strength, Q, gA):
    """(Q, gA) = ∇ Σ_i ω_i [ℓ_i + strength ‖∇ℓ_i‖²] with per-filter readout weights (PEGR,
    SPEC §4, over both layers when ``trained``).

    ‖∇ℓ_i‖² = ℓ'_i² T_i, T_i = Σ_{j,r} [a_{jr}² σ'ᵀ P_i σ' + (Σ_p σ(H_p))²] (the second term
    with a trained readout), so its gradient is 2 ℓ'_i ℓ''_i T_i ∇(y_i f_i) + ℓ'_i² ∇T_i with
    ∇T_i: filters 2 a_{jr}² σ''(H_p) (P_i σ')_p + 2 (Σ_p σ) σ'(H_p) on x_i^(p), readout
    2 a_{jr} σ'ᵀ P_i σ'.
    """
    _, m, n, _ = H.shape
    gd_coef_ro(H, y, d1, omega, q, ro, Q, gA)
    T = np.zeros(n)
    for j in range(2):
        for r in range(m):
            c = ro[j, r]
            for i in range(n):
                s0 = dact(H[j, r, i, 0], q)
                s1 = dact(H[j, r, i, 1], q)
                T[i] += c * c * (s0 * s0 * blocks[i, 0, 0] + 2.0 * s0 * s1 * blocks[i, 0, 1]
                                 + s1 * s1 * blocks[i, 1, 1])
                if trained:
                    v = act(H[j, r, i, 0], q) + act(H[j, r, i, 1], q)
                    T[i] += v * v
    for j in range(2):
        sj = 1.0 if j == 0 else -1.0
        for r in range(m):
            c = ro[j, r]
            g = 0.0
            for i in range(n):
                w = strength * omega[i]
                c1 = w * 2.0 * d1[i] * d2[i] * T[i] * y[i]      # times ∇(f_i)
                c2 = w * d1[i] * d1[i]                           # times ∇T_i
                s0 = dact(H[j, r, i, 0], q)
                s1 = dact(H[j, r, i, 1], q)
                v = act(H[j, r, i, 0], q) + act(H[j, r, i, 1], q)
                P0 = blocks[i, 0, 0] * s0 + blocks[i, 0, 1] * s1
                P1 = blocks[i, 1, 0] * s0 + blocks[i, 1, 1] * s1
                extra = 2.0 * v if trained else 0.0
                Q[j, r, i, 0] += c1 * sj * c * s0 + c2 * (2.0 * c * c * d2act(H[j, r, i, 0], q)
                                                          * P0 + extra * s0)
                Q[j, r, i, 1] += c1 * sj * c * s1 + c2 * (2.0 * c * c * d2act(H[j, r, i, 1], q)
                                                          * P1 + extra * s1)
                g += c1 * sj * v + c2 * 2.0 * c * (s0 * P0 + s1 * P1)
            if trained:
                gA[j, r] += g


@njit(cache=True)
def _grad_at_ro(H, ro, y, omega, q, f, loss, d1, d2, Q, gA):
    """(Q, gA) of Σ ω_i ℓ_i at pre-activations H and readout ro (overwrites the buffers)."""
    outputs_ro(H, ro, q, f)
    margin_terms(f, y, loss, d1, d2)
    gd_coef_ro(H, y, d1, omega, q, ro, Q, gA)


@njit(cache=True)
def step_coef_ro(prm, H, ro, dHn, dAn, K, G, yt, blocks, y, ysign, omega_in, f, loss, d1, d2, ys, omega,
                 Hs, dH, Q, Qs, gA, gAs, ros):
    """:func:`signoise.steps.step_coef` with the readout ``ro`` (2, m): fills Q (filters) and
    gA (readout, used when ``prm.readout`` is TRAINED) with the update direction; returns L_S.

    Perturbed points move both layers: W + r g is (H + r Q K, a + r gA) and weight noise ζ is
    (``dHn`` = ⟨ζ_W, x⟩, ``dAn`` = ζ_a); noisy_eval's ``layerwise`` takes each layer's
    gradient at a perturbation of that layer alone. Norms of a direction add both layers,
    ‖g‖² = Σ Q (Q K) + ‖gA‖²; gr's Hessian-vector product covers both layers
    (:func:`hvp_coef_ro`), pegr's penalty too (:func:`pegr_coef_ro`).
    """
    code, q = prm.code, prm.q
    trained = prm.readout == Readout.TRAINED
    outputs_ro(H, ro, q, f)
    margin_terms(f, y, loss, d1, d2)
    L = loss.sum() / y.shape[0]
    example_weights(prm, y, loss, ysign, omega_in, ys, omega)
    if code == LABEL_NOISE_GD:                  # ℓ' at the flipped labels
        margin_terms(f, ys, loss, d1, d2)

    if code == NOISY_EVAL and prm.layerwise and trained:
        # independent layer-wise noise (Orvieto et al. 2023, Sec. 5): each layer's gradient
        # at a perturbation of that layer alone, ∇_W L(W + ζ_W, a) and ∇_a L(W, a + ζ_a):
        # no product ζ_W ζ_a enters a gradient, the cross-layer term whose variance grows
        # with the width
        lincomb(Hs, 1.0, H, 1.0, dHn)
        _grad_at_ro(Hs, ro, ys, omega, q, f, loss, d1, d2, Q, gAs)
        lincomb(ros, 1.0, ro, 1.0, dAn)
        _grad_at_ro(H, ros, ys, omega, q, f, loss, d1, d2, Qs, gA)
        return L
    if code == NOISY_EVAL or code == ANTI_PGD:
        lincomb(Hs, 1.0, H, 1.0, dHn)
        lincomb(ros, 1.0, ro, 1.0, dAn)
        _grad_at_ro(Hs, ros, ys, omega, q, f, loss, d1, d2, Q, gA)
        return L

    if code == PEGR:                      # GD part and penalty in one pass over σ'
        pegr_coef_ro(H, ro, trained, ys, d1, d2, omega, blocks, q, 0.5 * prm.lam, Q, gA)
    else:
        gd_coef_ro(H, ys, d1, omega, q, ro, Q, gA)
    if not trained:
        gA[...] = 0.0
    if code == GR:                        # v = g: λ H g added, both layers
        direction_preacts(Q, K, G, yt, prm.use_bias, dH)
        hvp_coef_ro(H, ro, dH, gA.copy(), ys, d1, d2, omega, q, prm.lam, Q, gA)
        if not trained:
            gA[...] = 0.0
    elif code == FLOODING:
        if L < prm.flood_level:
            lincomb(Q, -1.0, Q, 0.0, Q)
            lincomb(gA, -1.0, gA, 0.0, gA)
    elif code == CLIP:
        direction_preacts(Q, K, G, yt, prm.use_bias, dH)
        norm = math.sqrt(fdot(Q, dH) + fdot(gA, gA))
        if norm > prm.max_norm:
            lincomb(Q, prm.max_norm / norm, Q, 0.0, Q)
            lincomb(gA, prm.max_norm / norm, gA, 0.0, gA)
    elif code == SAM or code == USAM or code == FDGR:
        direction_preacts(Q, K, G, yt, prm.use_bias, dH)
        if code == FDGR:
            lam, eps, scheme = prm.lam, prm.fd_step, prm.fd_scheme
            r = -eps if scheme == FDScheme.BACKWARD else eps
        elif code == SAM:
            norm = math.sqrt(fdot(Q, dH) + fdot(gA, gA))
            r = prm.radius / norm if norm > 0.0 else 0.0
        else:
            r = prm.radius
        lincomb(Hs, 1.0, H, r, dH)
        lincomb(ros, 1.0, ro, r, gA)
        _grad_at_ro(Hs, ros, ys, omega, q, f, loss, d1, d2, Qs, gAs)
        if not trained:
            gAs[...] = 0.0
        if code != FDGR:
            lincomb(Q, 1.0, Qs, 0.0, Qs)
            lincomb(gA, 1.0, gAs, 0.0, gAs)
        elif scheme == FDScheme.FORWARD:    # (1 − λ/ε) g + (λ/ε) ∇L(θ + εg)
            lincomb(Q, 1.0 - lam / eps, Q, lam / eps, Qs)
            lincomb(gA, 1.0 - lam / eps, gA, lam / eps, gAs)
        elif scheme == FDScheme.BACKWARD:   # (1 + λ/ε) g − (λ/ε) ∇L(θ − εg)
            lincomb(Q, 1.0 + lam / eps, Q, -lam / eps, Qs)
            lincomb(gA, 1.0 + lam / eps, gA, -lam / eps, gAs)
        else:                               # central: g + λ [∇L(θ+εg) − ∇L(θ−εg)]/(2ε)
            lincomb(Hs, 1.0, H, -eps, dH)
            lincomb(ros, 1.0, ro, -eps, gA)
            gB = np.empty_like(gA)
            _grad_at_ro(Hs, ros, ys, omega, q, f, loss, d1, d2, dH, gB)  # dH reused as scratch
            if not trained:
                gB[...] = 0.0
            lincomb(Qs, 1.0, Qs, -1.0, dH)
            lincomb(gAs, 1.0, gAs, -1.0, gB)
            lincomb(Q, 1.0, Q, lam / (2.0 * eps), Qs)
            lincomb(gA, 1.0, gA, lam / (2.0 * eps), gAs)
    return L


@njit(cache=True)
def diagnostics_ro(H, ro, trained, y, d1, d2, K, blocks, xmu, mu2, q, out):
    """:func:`signoise.diagnostics.diagnostics` with per-filter readout weights; with a trained
    readout the gradients and the Hessian trace include the readout layer.

    Per example, ‖∇ℓ_i‖² = ℓ'_i² (T_i^W + T_i^a) with T_i^W = Σ_{j,r} a_{j,r}² σ'ᵀ P_i σ' and
    T_i^a = Σ_{j,r} (Σ_p σ(H_p))²; Tr ∇²L_S = (1/n) Σ_i [ℓ''_i (T_i^W + T_i^a)
    + ℓ'_i y_i Σ_{j,r,p} s_j a_{j,r} σ''(H_p) P_i[p,p]] (∂²f/∂a² = 0). The signal part of the
    variance is the filters' component along μ; the readout's variance is in the noise part.
    """
    _, m, n, _ = H.shape
    Q = np.empty(H.shape)
    gA = np.empty((2, m))
    gd_coef_ro(H, y, d1, np.full(n, 1.0 / n), q, ro, Q, gA)
    dH = np.empty(H.shape)
    delta_preacts(Q, K, dH)
    g2 = fdot(Q, dH) + (fdot(gA, gA) if trained else 0.0)
    gi2 = 0.0
    trace = 0.0
    for i in range(n):
        T = 0.0
        curv = 0.0
        for j in range(2):
            sj = 1.0 if j == 0 else -1.0
            for r in range(m):
                c = ro[j, r]
                s0 = dact(H[j, r, i, 0], q)
                s1 = dact(H[j, r, i, 1], q)
                T += c * c * (s0 * s0 * blocks[i, 0, 0] + 2.0 * s0 * s1 * blocks[i, 0, 1]
                              + s1 * s1 * blocks[i, 1, 1])
                if trained:
                    v = act(H[j, r, i, 0], q) + act(H[j, r, i, 1], q)
                    T += v * v
                for p in range(2):
                    curv += sj * c * d2act(H[j, r, i, p], q) * blocks[i, p, p]
        gi2 += d1[i] * d1[i] * T / n
        trace += (d2[i] * T + d1[i] * y[i] * curv) / n
    signal = signal_variance(Q, xmu, mu2)
    out[0] = g2
    out[1] = gi2
    out[2] = gi2 - g2
    out[3] = signal
    out[4] = gi2 - g2 - signal
    out[5] = trace


@njit(cache=True)
def metrics_ro(H, ro, trained, y, ft, y_t, y_true_t, K, xmu, mu2, q, out):
    """:func:`signoise.diagnostics.metrics` with per-filter readout weights ``ro``."""
    f = np.empty(y.shape[0])
    outputs_ro(H, ro, q, f)
    d1, d2, blocks = score_outputs(f, y, ft, y_t, y_true_t, K, out)
    diagnostics_ro(H, ro, trained, y, d1, d2, K, blocks, xmu, mu2, q, out[7:])
