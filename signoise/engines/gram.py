"""Coefficient-space engine: training in span{μ, ξ_1..ξ_n} at O(m n²) per step (SPEC §3).

Basis v_0 = μ, v_i = ξ_i. The state is β (2, m, n+1) with w_{j,r} = w0_{j,r} + Σ_a β_{j,r,a} v_a,
so γ_{j,r} = j β_{j,r,0} ‖μ‖² and ρ_{j,r,i} = β_{j,r,i} ‖ξ_i‖². Every inner product the network
needs is ⟨w_{j,r}, v_b⟩ = Z0_{j,r,b} + Σ_a β_{j,r,a} G_{ab} with G the Gram matrix of the basis:
no d-dimensional vector after set-up, and no inverse (so ‖μ‖ = 0 and non-orthogonal
isotropic noise need no special case).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from ..model import gd_coef, is_finite, margin_terms, outputs
from .common import RUNNING, DIVERGED, CONVERGED, metrics_from_preacts


@dataclass
class GramInputs:
    """Everything the kernels read, as float64 arrays (``*_t``: the test set)."""

    G: np.ndarray        # (n+1, n+1)  Gram matrix of [μ, ξ_1..ξ_n]
    Z0: np.ndarray       # (2, m, n+1) ⟨w0_{j,r}, v_a⟩
    b0: np.ndarray       # (2, m)
    y: np.ndarray        # (n,) observed labels
    y_true: np.ndarray   # (n,)
    Gt: np.ndarray       # (n+1, n_test) ⟨v_a, ξ_test_k⟩
    Z0t: np.ndarray      # (2, m, n_test) ⟨w0_{j,r}, ξ_test_k⟩
    y_t: np.ndarray
    y_true_t: np.ndarray

    @property
    def sq_norms(self):
        """‖v_a‖²: ‖μ‖² then ‖ξ_i‖²."""
        return np.diag(self.G).copy()


def prepare(problem) -> GramInputs:
    """Inner products of an explicit :class:`~signoise.data.Problem` (the only O(d) work)."""
    V = np.vstack([problem.mu[None, :], problem.xi])
    m = problem.w0.shape[1]
    return GramInputs(
        G=V @ V.T, Z0=np.ascontiguousarray((problem.w0.reshape(2 * m, -1) @ V.T).reshape(2, m, -1)),
        b0=problem.b0.copy(), y=problem.y, y_true=problem.y_true,
        Gt=np.ascontiguousarray(V @ problem.xi_test.T),
        Z0t=np.ascontiguousarray((problem.w0.reshape(2 * m, -1) @ problem.xi_test.T).reshape(2, m, -1)),
        y_t=problem.y_test, y_true_t=problem.y_true_test)


def init_state(inp: GramInputs):
    """β = 0 and the initial biases."""
    return np.zeros_like(inp.Z0), inp.b0.copy()


@njit(cache=True)
def preacts(G, Z0, beta, bias, y_true, Z, H):
    """Z = Z0 + β G (inner products with the basis), then H[j,r,i,p] (model.py layout)."""
    two, m, k = Z0.shape
    Z2 = Z.reshape(two * m, k)
    Z2[:, :] = Z0.reshape(two * m, k) + np.dot(beta.reshape(two * m, k), G)
    for j in range(2):
        for r in range(m):
            b = bias[j, r]
            s = Z[j, r, 0]
            for i in range(k - 1):
                H[j, r, i, 0] = y_true[i] * s + b
                H[j, r, i, 1] = Z[j, r, i + 1] + b


@njit(cache=True)
def apply_coef(Q, y_true, scale, use_bias, beta, bias):
    """β += scale · (coefficients of Σ_{i,p} Q x_i^(p)); the bias likewise."""
    _, m, n, _ = Q.shape
    for j in range(2):
        for r in range(m):
            s = 0.0
            sb = 0.0
            for i in range(n):
                s += Q[j, r, i, 0] * y_true[i]
                beta[j, r, i + 1] += scale * Q[j, r, i, 1]
                sb += Q[j, r, i, 0] + Q[j, r, i, 1]
            beta[j, r, 0] += scale * s
            if use_bias:
                bias[j, r] += scale * sb


@njit(cache=True)
def advance(G, Z0, y, y_true, beta, bias, q, a, use_bias, lr, code, theta,
            nsteps, loss_threshold):
    """Run up to ``nsteps`` steps in place. Returns (steps done, status).

    Stops early, before stepping, when the training loss is non-finite (DIVERGED) or below
    ``loss_threshold`` (CONVERGED; pass 0 to never stop). A step that makes β non-finite
    also ends the run as DIVERGED.
    """
    two, m, k = Z0.shape
    n = k - 1
    Z = np.empty_like(Z0)
    H = np.empty((2, m, n, 2))
    Q = np.empty((2, m, n, 2))
    f = np.empty(n)
    loss = np.empty(n)
    d1 = np.empty(n)
    d2 = np.empty(n)
    omega = np.full(n, 1.0 / n)
    for t in range(nsteps):
        preacts(G, Z0, beta, bias, y_true, Z, H)
        outputs(H, q, a, f)
        margin_terms(f, y, loss, d1, d2)
        L = loss.sum() / n
        if not np.isfinite(L):
            return t, DIVERGED
        if L < loss_threshold:
            return t, CONVERGED
        gd_coef(H, y, d1, omega, q, a, Q)
        apply_coef(Q, y_true, -lr, use_bias, beta, bias)
        if not (is_finite(beta) and is_finite(bias)):
            return t + 1, DIVERGED
    return nsteps, RUNNING


def step_fn(inp: GramInputs, params):
    """A closure ``(state, nsteps) -> (done, status)`` over this run's inputs."""
    def run(state, nsteps):
        beta, bias = state
        return advance(inp.G, inp.Z0, inp.y, inp.y_true, beta, bias, params.q, params.a,
                       params.use_bias, params.lr, params.code, params.theta, nsteps,
                       params.loss_threshold)
    return run


def evaluate(inp: GramInputs, state, params) -> dict:
    """Losses, errors and margins of the current state (train and test)."""
    beta, bias = state
    two, m, k = inp.Z0.shape
    n = k - 1
    Z = np.empty_like(inp.Z0)
    H = np.empty((2, m, n, 2))
    preacts(inp.G, inp.Z0, beta, bias, inp.y_true, Z, H)
    # test: ⟨w, ỹμ⟩ from Z[:, :, 0]; ⟨w, ξ_test⟩ = Z0t + β Gt
    Zt = inp.Z0t + (beta.reshape(2 * m, k) @ inp.Gt).reshape(2, m, -1)
    Ht = np.empty((2, m, Zt.shape[2], 2))
    Ht[..., 0] = inp.y_true_t[None, None, :] * Z[:, :, :1] + bias[:, :, None]
    Ht[..., 1] = Zt + bias[:, :, None]
    return metrics_from_preacts(H, inp.y, Ht, inp.y_t, inp.y_true_t, params)


def coefficients(inp: GramInputs, state):
    """(γ (2, m), ρ (2, m, n), out-of-span residual norm (2, m)) of the state."""
    beta, _ = state
    sq = inp.sq_norms
    j = np.array([1.0, -1.0])[:, None]
    return j * beta[:, :, 0] * sq[0], beta[:, :, 1:] * sq[None, None, 1:], np.zeros(beta.shape[:2])
