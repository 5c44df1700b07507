"""Weight-space engine: explicit filters W (2, m, d), the reference for the gram engine.

Pre-activations are ``W Xᵀ`` with the explicit patches X (2n, d) (row 2i: ỹ_i μ, row 2i+1:
ξ_i), the update is ``Q X``: two BLAS matrix products per step, O(m n d). It shares the
pre-activation calculus (model.py, steps.py) with the gram engine but never its span algebra,
so the two engines agreeing checks that algebra. It runs every algorithm, including those that
leave span{μ, ξ_i} (pgd, grad_noise); γ and ρ are recovered by projecting W − W0 on the basis,
with the norm of the rest reported as ``residual_norm``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from .. import algorithms as A
from ..diagnostics import METRICS, metrics
from ..draws import draw_inputs
from ..algorithms import Readout
from ..preacts import is_finite, lincomb, outputs, patch_sqnorm_blocks
from ..readout import metrics_ro, outputs_ro, step_coef_ro
from ..steps import step_coef
from . import CONVERGED, DIVERGED, RUNNING


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
def apply_coef(Q, X, step, use_bias, W, bias):
    """W += step · Σ_{i,p} Q[.,.,i,p] x_i^(p) (one matrix product); the bias likewise."""
    two, m, d = W.shape
    n2 = X.shape[0]
    Q2 = Q.reshape(two * m, n2)
    lincomb(W, 1.0, W, step, np.dot(Q2, X))
    if use_bias:
        for j in range(2):
            for r in range(m):
                bias[j, r] += step * Q2[j * m + r].sum()


@njit(cache=True)
def advance(X, K, y, W, bias, ro, prm, nsteps, omega_t, ysign_t, zeta_t):
    """Same contract as :func:`signoise.engines.gram.advance`, in weight space.

    ``zeta_t`` (k, 2, m, d+1 [+1]): explicit weight noise (column d: the bias; d+1: a trained
    readout's), used as ζ in noisy_eval/anti_pgd and added after the step in pgd/grad_noise.
    """
    two, m, d = W.shape
    n = X.shape[0] // 2
    shape = (2, m, n, 2)
    H, dHn, Hs = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    dH, Q, Qs = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    f, loss, d1, d2 = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    ys, omega = np.empty(n), np.empty(n)
    blocks = np.empty((n, 2, 2))
    patch_sqnorm_blocks(K, blocks)
    none = np.empty(0)
    nobasis = np.empty((0, 0))      # pre-activation changes through K (no basis here)
    add_noise = prm.code == A.PGD or prm.code == A.GRAD_NOISE
    scalar = prm.readout == Readout.SCALAR
    trained = prm.readout == Readout.TRAINED
    gA, gAs, ros, dAn = (np.zeros((2, m)), np.zeros((2, m)), np.zeros((2, m)),
                         np.zeros((2, m)))
    for t in range(nsteps):
        preacts(W, bias, X, H)
        if zeta_t.shape[0] and not add_noise:
            zeta = np.ascontiguousarray(zeta_t[t, :, :, :d])
            zb = zeta_t[t, :, :, d].copy() if prm.use_bias else np.zeros((2, m))
            preacts(zeta, zb, X, dHn)
            if trained:
                dAn[...] = zeta_t[t, :, :, d + 1]
        ysign = ysign_t[t] if ysign_t.shape[0] else none
        omega_in = omega_t[t] if omega_t.shape[0] else none
        if scalar:
            L = step_coef(prm, H, dHn, K, nobasis, none, blocks, y, ysign, omega_in,
                          f, loss, d1, d2, ys, omega, Hs, dH, Q, Qs)
        else:
            L = step_coef_ro(prm, H, ro, dHn, dAn, K, nobasis, none, blocks, y, ysign,
                             omega_in, f, loss, d1, d2, ys, omega, Hs, dH, Q, Qs, gA, gAs, ros)
        if not np.isfinite(L):
            return t, DIVERGED
        if L < prm.loss_threshold:
            return t, CONVERGED
        apply_coef(Q, X, -prm.lr, prm.use_bias, W, bias)
        if trained:
            lincomb(ro, 1.0, ro, -prm.lr, gA)
        if add_noise:
            lincomb(W, 1.0, W, 1.0, np.ascontiguousarray(zeta_t[t, :, :, :d]))
            if prm.use_bias:
                lincomb(bias, 1.0, bias, 1.0, zeta_t[t, :, :, d].copy())
            if trained:
                lincomb(ro, 1.0, ro, 1.0, zeta_t[t, :, :, d + 1].copy())
        if not (is_finite(W) and is_finite(bias) and is_finite(ro)):
            return t + 1, DIVERGED
    return nsteps, RUNNING


class Batch:
    """B runs in weight space, advanced one after the other by the compiled :func:`advance`
    (their d may differ). Same interface as :class:`signoise.engines.gram.Batch`."""

    def __init__(self, inputs: list, params: list, readouts: list | None = None):
        self.inputs = inputs
        self.prm = np.concatenate(params)
        self.ro = (np.stack([np.full((2, inp.W0.shape[1]), p["a"]) for inp, p in
                             zip(inputs, self.prm)]) if readouts is None else
                   np.stack([np.asarray(r, dtype=np.float64) for r in readouts]))
        self.W = [inp.W0.copy() for inp in inputs]
        self.bias = [inp.b0.copy() for inp in inputs]
        self.K = [inp.X @ inp.X.T + (1.0 if p["use_bias"] else 0.0)
                  for inp, p in zip(inputs, self.prm)]

    @property
    def noise_width(self):
        """Gaussian weight-noise draws per filter: d weights, the bias and a trained readout."""
        return [inp.X.shape[1] + 1 + (p == Readout.TRAINED)
                for inp, p in zip(self.inputs, self.prm["readout"])]

    def advance(self, nsteps, omega, ysign, zeta, active):
        B = len(self.inputs)
        done, status = np.zeros(B, np.int64), np.zeros(B, np.int64)
        for b in np.flatnonzero(active):
            inp = self.inputs[b]
            done[b], status[b] = advance(inp.X, self.K[b], inp.y, self.W[b], self.bias[b],
                                         self.ro[b], self.prm[b], nsteps, omega[b], ysign[b],
                                         zeta[b])
        return done, status

    def evaluate(self, out):
        for b, (inp, p) in enumerate(zip(self.inputs, self.prm)):
            W, bias = self.W[b], self.bias[b]
            two, m, d = W.shape
            n = inp.X.shape[0] // 2
            H = np.empty((2, m, n, 2))
            preacts(W, bias, inp.X, H)
            W2 = W.reshape(2 * m, d)
            wmu = (W2 @ inp.mu).reshape(2, m)
            Ht = np.empty((2, m, inp.Xt.shape[0], 2))
            Ht[..., 0] = inp.y_true_t[None, None, :] * wmu[:, :, None] + bias[:, :, None]
            Ht[..., 1] = (W2 @ inp.Xt.T).reshape(2, m, -1) + bias[:, :, None]
            ft = np.empty(Ht.shape[2])
            xmu, mu2 = inp.X @ inp.mu, float(inp.mu @ inp.mu)
            if p["readout"] == Readout.SCALAR:
                outputs(Ht, p["q"], p["a"], ft)
                metrics(H, inp.y, ft, inp.y_t, inp.y_true_t, self.K[b], xmu, mu2, p["q"],
                        p["a"], out[b])
            else:
                outputs_ro(Ht, self.ro[b], p["q"], ft)
                metrics_ro(H, self.ro[b], p["readout"] == Readout.TRAINED, inp.y, ft, inp.y_t,
                           inp.y_true_t, self.K[b], xmu, mu2, p["q"], out[b])

    def coefficients(self):
        """Least-squares projection of W − W0 on [μ, ξ_1..ξ_n]: (γ, ρ, residual norm), each
        with a leading run axis. With ‖μ‖ = 0 the μ column is dropped (γ = 0)."""
        parts = [_project(inp, W) for inp, W in zip(self.inputs, self.W)]
        return tuple(np.stack(x) for x in zip(*parts))

    def get_state(self):
        """The state a run continues from: W (B, 2, m, d) and the biases (B, 2, m); runs of
        a smaller d are padded with NaN up to the largest."""
        W = np.full((len(self.W),) + self.W[0].shape[:2] + (max(w.shape[2] for w in self.W),),
                    np.nan)
        for b, w in enumerate(self.W):
            W[b, :, :, :w.shape[2]] = w
        state = {"W": W, "bias": np.stack(self.bias)}
        if (self.prm["readout"] != Readout.SCALAR).any():
            state["readout"] = self.ro
        return state

    def set_state(self, state):
        for b, w in enumerate(self.W):
            w[...] = state["W"][b][:, :, :w.shape[2]]
            self.bias[b][...] = state["bias"][b]
        if "readout" in state:
            self.ro[...] = state["readout"]


def _project(inp, W):
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


class Runner:
    """One run in weight space (a :class:`Batch` of one): ``state = (W, bias)``,
    ``advance(k)``, ``evaluate()``, ``coefficients()``."""

    def __init__(self, inp: WeightInputs, params, rng, readout=None):
        self.inp, self.params, self.rng = inp, params, rng
        self.batch = Batch([inp], [params], None if readout is None else [readout])
        self.K = self.batch.K[0]
        self.t = 0

    @property
    def state(self):
        return self.batch.W[0], self.batch.bias[0]

    @state.setter
    def state(self, value):
        self.batch.set_state({"W": value[0][None], "bias": value[1][None]})

    def advance(self, nsteps):
        n2, m = self.inp.X.shape[0], self.inp.W0.shape[1]
        omega, ysign, zeta = draw_inputs(self.params[0], self.rng, self.t, nsteps, n2 // 2, m,
                                         self.batch.noise_width[0])
        done, status = self.batch.advance(nsteps, [omega], [ysign], [zeta], np.ones(1, np.bool_))
        self.t += int(done[0])
        return int(done[0]), int(status[0])

    def evaluate(self):
        out = np.empty((1, len(METRICS)))
        self.batch.evaluate(out)
        return out[0]

    def coefficients(self):
        gamma, rho, resid = self.batch.coefficients()
        return gamma[0], rho[0], resid[0]


__all__ = ["prepare", "Batch", "Runner", "advance", "WeightInputs", "CONVERGED", "DIVERGED"]
