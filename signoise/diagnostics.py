"""What is recorded at every recorded step (SPEC §5): losses, errors, margins and the
pattern-learning diagnostics, one compiled function for both engines."""

from __future__ import annotations

import numpy as np
from numba import njit

from .activation import d2act, logistic_loss, margin_terms
from .preacts import (
    delta_preacts,
    example_sq,
    fdot,
    gd_coef,
    outputs,
    patch_sqnorm_blocks,
)

#: Scalar metrics recorded at every recorded step (SPEC §5), in this order.
METRICS = ("train_loss", "train_error", "test_loss", "test_error", "test_error_clean",
           "margin_min", "margin_max", "grad_sq", "example_grad_sq", "grad_var",
           "grad_var_signal", "grad_var_noise", "hessian_trace")


@njit(cache=True)
def metrics(H, y, ft, y_t, y_true_t, K, xmu, mu2, q, a, out):
    """Fill ``out`` with :data:`METRICS` from the training pre-activations ``H`` and the test
    outputs ``ft`` (a 0-1 error counts y·f ≤ 0 as wrong)."""
    f = np.empty(y.shape[0])
    outputs(H, q, a, f)
    d1, d2, blocks = score_outputs(f, y, ft, y_t, y_true_t, K, out)
    diagnostics(H, y, d1, d2, K, blocks, xmu, mu2, q, a, out[7:])


@njit(cache=True)
def score_outputs(f, y, ft, y_t, y_true_t, K, out):
    """:data:`METRICS` 0–6 from the training outputs ``f`` and the test outputs ``ft``; returns
    what the diagnostics read: ℓ', ℓ'' per example and each example's 2×2 patch Gram block.
    Shared by :func:`metrics` and the per-filter readout's ``metrics_ro``."""
    n = y.shape[0]
    loss = np.empty(n)
    d1 = np.empty(n)
    d2 = np.empty(n)
    margin_terms(f, y, loss, d1, d2)
    scores(f, y, loss, ft, y_t, y_true_t, out)
    blocks = np.empty((n, 2, 2))
    patch_sqnorm_blocks(K, blocks)
    return d1, d2, blocks


@njit(cache=True)
def scores(f, y, loss, ft, y_t, y_true_t, out):
    """:data:`METRICS` 0–6 (losses, errors, margins) from the training outputs ``f`` with
    their losses ``loss`` and the test outputs ``ft``."""
    n = y.shape[0]
    out[0] = loss.sum() / n
    err = 0.0
    mmin = np.inf
    mmax = -np.inf
    for i in range(n):
        mg = y[i] * f[i]
        err += 1.0 if mg <= 0.0 else 0.0
        mmin = min(mmin, mg)
        mmax = max(mmax, mg)
    out[1] = err / n
    scores_on_test(ft, y_t, y_true_t, out)
    out[5] = mmin
    out[6] = mmax


@njit(cache=True)
def scores_on_test(ft, y_t, y_true_t, out):
    """:data:`METRICS` 2–4 (test loss, test errors against the observed and the true labels)
    in one pass over the test outputs ``ft``: each margin y_t f is formed once and gives its
    loss and its error. The loss sum runs in test-point order from 0, as ``ndarray.sum`` of
    the losses does in Numba (sequentially), so the value is that of a separate pass."""
    nt = y_t.shape[0]
    total = 0.0
    noisy = 0.0
    clean = 0.0
    for k in range(nt):
        z = y_t[k] * ft[k]
        total += logistic_loss(z)
        noisy += 1.0 if z <= 0.0 else 0.0
        clean += 1.0 if y_true_t[k] * ft[k] <= 0.0 else 0.0
    out[2] = total / nt
    out[3] = noisy / nt
    out[4] = clean / nt


@njit(cache=True)
def signal_variance(Q, xmu, mu2):
    """The signal part of the pattern-learning variance: per filter, the variance over i of
    a_i = ⟨g_i, μ⟩/‖μ‖ with g_i = n Σ_p Q[.,.,i,p] x_i^(p), summed over filters (0 if μ = 0).

    Two passes (the mean first): E a² − (E a)² cancels when every example pushes along μ
    alike, the signal-learning regime.
    """
    _, m, n, _ = Q.shape
    signal = 0.0
    if mu2 > 0.0:
        along = np.empty(n)
        for j in range(2):
            for r in range(m):
                mean = 0.0
                for i in range(n):
                    along[i] = n * (Q[j, r, i, 0] * xmu[2 * i] + Q[j, r, i, 1] * xmu[2 * i + 1])
                    mean += along[i] / n
                var = 0.0
                for i in range(n):
                    var += (along[i] - mean) ** 2 / n
                signal += var / mu2
    return signal


@njit(cache=True)
def diagnostics(H, y, d1, d2, K, blocks, xmu, mu2, q, a, out):
    """Pattern-learning diagnostics of L_S at H (SPEC §5), written to ``out``:

    0 ‖g‖², 1 (1/n)Σ‖g_i‖², 2 (1/n)Σ‖g_i − g‖² = [1] − [0], 3 its signal part (components of
    g_i − g along μ, a centred two-pass variance, never negative), 4 its noise part [2] − [3],
    5 Tr ∇²L_S (with 1 < q < 2, σ'' is unbounded at 0⁺: this is the value at H, where every
    pre-activation is non-zero almost surely). ``d1``, ``d2``: ℓ', ℓ'' at the margins (from :func:`margin_terms`);
    ``blocks``: each example's 2×2 patch Gram block; ``xmu[2i+p] = ⟨x_i^(p), μ⟩``.
    """
    _, m, n, _ = H.shape
    Q = np.empty(H.shape)
    gd_coef(H, y, d1, np.full(n, 1.0 / n), q, a, Q)
    dH = np.empty(H.shape)
    delta_preacts(Q, K, dH)
    g2 = fdot(Q, dH)
    gi2 = 0.0
    trace = 0.0
    for i in range(n):
        T = example_sq(H, blocks, i, q, a)
        gi2 += d1[i] * d1[i] * T / n
        curv = 0.0
        for j in range(2):
            cj = a if j == 0 else -a
            for r in range(m):
                for p in range(2):
                    curv += cj * d2act(H[j, r, i, p], q) * blocks[i, p, p]
        trace += (d2[i] * T + d1[i] * y[i] * curv) / n
    signal = signal_variance(Q, xmu, mu2)
    out[0] = g2
    out[1] = gi2
    out[2] = gi2 - g2
    out[3] = signal
    out[4] = gi2 - g2 - signal
    out[5] = trace


