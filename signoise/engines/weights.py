"""Weight-space engine: explicit filters W (2, m, d), the reference for the gram engine.

Pre-activations are ``W X^T`` with the explicit patches X (2n, d) (row 2i: ỹ_i μ, row 2i+1:
ξ_i), the gradient is ``Q X``: two BLAS matrix products per step, O(m n d). It shares only the
pre-activation calculus of model.py with the gram engine, never the span algebra, so the two
engines agreeing is a real check. γ and ρ are recovered by projecting W − W0 on the basis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from ..model import gd_coef, is_finite, margin_terms, outputs
from .common import RUNNING, DIVERGED, CONVERGED, metrics_from_preacts


@dataclass
class WeightInputs:
    X: np.ndarray        # (2n, d) patches, interleaved per example
    W0: np.ndarray       # (2, m, d)
    b0: np.ndarray       # (2, m)
    y: np.ndarray
    y_true: np.ndarray
    mu: np.ndarray       # (d,)
    xi: np.ndarray       # (n, d)
    Xt: np.ndarray       # (n_test, d) test noise patches
    y_t: np.ndarray
    y_true_t: np.ndarray


def prepare(problem) -> WeightInputs:
    n, d = problem.xi.shape
    X = np.empty((2 * n, d))
    X[0::2] = problem.y_true[:, None] * problem.mu[None, :]
    X[1::2] = problem.xi
    return WeightInputs(X=X, W0=problem.w0.copy(), b0=problem.b0.copy(), y=problem.y,
                        y_true=problem.y_true, mu=problem.mu, xi=problem.xi,
                        Xt=problem.xi_test, y_t=problem.y_test, y_true_t=problem.y_true_test)


def init_state(inp: WeightInputs):
    return inp.W0.copy(), inp.b0.copy()


@njit(cache=True)
def preacts(W, bias, X, H):
    """H[j,r,i,p] = ⟨w_{j,r}, x_i^(p)⟩ + b_{j,r} by one matrix product."""
    two, m, d = W.shape
    n2 = X.shape[0]
    H2 = np.dot(W.reshape(two * m, d), X.T)
    for j in range(2):
        for r in range(m):
            for s in range(n2):
                H[j, r, s // 2, s % 2] = H2[j * m + r, s] + bias[j, r]


@njit(cache=True)
def apply_coef(Q, X, scale, use_bias, W, bias):
    """W += scale · Σ_{i,p} Q[.,.,i,p] x_i^(p) (one matrix product); the bias likewise."""
    two, m, d = W.shape
    n2 = X.shape[0]
    Q2 = Q.reshape(two * m, n2)
    W.reshape(two * m, d)[:, :] += scale * np.dot(Q2, X)
    if use_bias:
        for j in range(2):
            for r in range(m):
                bias[j, r] += scale * Q2[j * m + r].sum()


@njit(cache=True)
def advance(X, y, W, bias, q, a, use_bias, lr, code, theta, nsteps, loss_threshold):
    """Same contract as :func:`signoise.engines.gram.advance`, in weight space."""
    two, m, d = W.shape
    n = X.shape[0] // 2
    H = np.empty((2, m, n, 2))
    Q = np.empty((2, m, n, 2))
    f = np.empty(n)
    loss = np.empty(n)
    d1 = np.empty(n)
    d2 = np.empty(n)
    omega = np.full(n, 1.0 / n)
    for t in range(nsteps):
        preacts(W, bias, X, H)
        outputs(H, q, a, f)
        margin_terms(f, y, loss, d1, d2)
        L = loss.sum() / n
        if not np.isfinite(L):
            return t, DIVERGED
        if L < loss_threshold:
            return t, CONVERGED
        gd_coef(H, y, d1, omega, q, a, Q)
        apply_coef(Q, X, -lr, use_bias, W, bias)
        if not (is_finite(W) and is_finite(bias)):
            return t + 1, DIVERGED
    return nsteps, RUNNING


def step_fn(inp: WeightInputs, params):
    def run(state, nsteps):
        W, bias = state
        return advance(inp.X, inp.y, W, bias, params.q, params.a, params.use_bias, params.lr,
                       params.code, params.theta, nsteps, params.loss_threshold)
    return run


def evaluate(inp: WeightInputs, state, params) -> dict:
    W, bias = state
    two, m, d = W.shape
    n = inp.X.shape[0] // 2
    H = np.empty((2, m, n, 2))
    preacts(W, bias, inp.X, H)
    W2 = W.reshape(2 * m, d)
    wmu = (W2 @ inp.mu).reshape(2, m)
    Ht = np.empty((2, m, inp.Xt.shape[0], 2))
    Ht[..., 0] = inp.y_true_t[None, None, :] * wmu[:, :, None] + bias[:, :, None]
    Ht[..., 1] = (W2 @ inp.Xt.T).reshape(2, m, -1) + bias[:, :, None]
    return metrics_from_preacts(H, inp.y, Ht, inp.y_t, inp.y_true_t, params)


def coefficients(inp: WeightInputs, state):
    """Least-squares projection of W − W0 on [μ, ξ_1..ξ_n]: (γ, ρ, residual norm).

    With ‖μ‖ = 0 the μ column is dropped (γ = 0).
    """
    W, _ = state
    two, m, d = W.shape
    V = np.vstack([inp.mu[None, :], inp.xi])
    keep = np.ones(V.shape[0], bool)
    keep[0] = np.any(inp.mu != 0)
    Delta = (W - inp.W0).reshape(2 * m, d)
    coef = np.zeros((V.shape[0], 2 * m))
    coef[keep] = np.linalg.lstsq(V[keep].T, Delta.T, rcond=None)[0]
    resid = np.linalg.norm(Delta - coef.T @ V, axis=1).reshape(2, m)
    beta = coef.T.reshape(2, m, -1)
    sq = np.einsum("ad,ad->a", V, V)
    j = np.array([1.0, -1.0])[:, None]
    return j * beta[:, :, 0] * sq[0], beta[:, :, 1:] * sq[None, None, 1:], resid
