"""Coefficient-space engine: training in span{μ, ξ_1..ξ_n} at O(m n²) per step (SPEC §3).

Basis v_0 = μ, v_i = ξ_i. The state is β (2, m, n+1) with w_{j,r} = w0_{j,r} + Σ_a β_{j,r,a} v_a,
so γ_{j,r} = j β_{j,r,0} ‖μ‖² and ρ_{j,r,i} = β_{j,r,i} ‖ξ_i‖². Every inner product the network
needs is ⟨w_{j,r}, v_b⟩ = Z0_{j,r,b} + Σ_a β_{j,r,a} G_{ab} with G the Gram matrix of the basis:
no d-dimensional vector after set-up, and no inverse (so ‖μ‖ = 0 and non-orthogonal
isotropic noise need no special case). Weight noise ζ ~ N(0, s² I) enters only through
⟨ζ, v_a⟩ ~ N(0, s² G), drawn as s·F ε with F Fᵀ = G: exact in distribution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from ..activation import act
from ..algorithms import Readout
from ..diagnostics import METRICS, metrics
from ..draws import draw_inputs, needs_eval_noise
from ..preacts import (
    accumulate_acts,
    combine_outputs,
    is_finite,
    lincomb,
)
from ..readout import metrics_ro, step_coef_ro
from ..steps import step_coef_given
from . import CONVERGED, DIVERGED, RUNNING


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
    W0 = problem.w0.reshape(2 * problem.m, -1)
    return GramInputs(
        G=V @ V.T, Z0=np.ascontiguousarray((W0 @ V.T).reshape(2, problem.m, -1)),
        b0=problem.b0.copy(), y=problem.y, y_true=problem.y_true,
        Gt=np.ascontiguousarray(V @ problem.xi_test.T),
        Z0t=np.ascontiguousarray((W0 @ problem.xi_test.T).reshape(2, problem.m, -1)),
        y_t=problem.y_test, y_true_t=problem.y_true_test)


def with_signal(inp: GramInputs, problem, mu_norm: float, isotropic: bool) -> GramInputs:
    """``prepare`` of ``problem`` with μ = ``mu_norm`` e_1 instead, from ``inp = prepare(problem)``.

    Only the entries that involve μ change: G's row and column 0, Z0[..., 0] and Gt's row 0.
    μ has one non-zero coordinate, so each of them is a single product, and the products of
    :func:`prepare` give exactly that product (every other term is an exact zero): the result
    equals ``prepare`` of the new problem bit for bit, at O(n + m + n_test) instead of O(d).
    The arrays that do not involve μ are shared, not copied.
    """
    mu = float(mu_norm)
    G = inp.G.copy()
    G[0, 0] = mu * mu
    G[0, 1:] = G[1:, 0] = mu * problem.xi[:, 0] + 0.0   # + 0.0: −0.0 sums to +0.0 in BLAS too
    Z0 = inp.Z0.copy()
    Z0[:, :, 0] = problem.w0[:, :, 0] * mu + 0.0
    Gt = inp.Gt
    if isotropic:   # ⟨μ, ξ_test⟩ ≠ 0; for projected noise the row is 0 whatever ‖μ‖ is
        Gt = Gt.copy()
        Gt[0] = mu * problem.xi_test[:, 0] + 0.0
    return GramInputs(G, Z0, inp.b0, inp.y, inp.y_true, Gt, inp.Z0t, inp.y_t, inp.y_true_t)


def noise_factor(G):
    """F with F Fᵀ = G (symmetric square root; G may be singular, e.g. ‖μ‖ = 0)."""
    lam, U = np.linalg.eigh(G)
    return np.ascontiguousarray(U * np.sqrt(np.clip(lam, 0.0, None)))


@njit(cache=True)
def preacts(G, Z0, beta, bias, y_true, Z, H, P, q, a, f):
    """Z = Z0 + β G (inner products with the basis), then H[j,r,i,p] (model.py layout); with a
    non-empty ``f``, also f = :func:`~signoise.preacts.outputs` (H), bit for bit. ``P``
    (2m, n+1): scratch for β G (no allocation per step).
    """
    two, m, k = Z0.shape
    np.dot(beta.reshape(two * m, k), G, P)
    for j in range(2):
        for r in range(m):
            b = bias[j, r]
            for c in range(k):
                Z[j, r, c] = Z0[j, r, c] + P[j * m + r, c]
            s = Z[j, r, 0]
            for i in range(k - 1):
                H[j, r, i, 0] = y_true[i] * s + b
                H[j, r, i, 1] = Z[j, r, i + 1] + b
    if f.shape[0]:
        acc = np.zeros((2, k - 1))
        accumulate_acts(H.ravel(), m, k - 1, q, acc)
        combine_outputs(acc, a, f)


@njit(cache=True)
def patch_gram(G, y_true, use_bias, K):
    """K[2i+p, 2k+p'] = ⟨x_i^(p), x_k^(p')⟩ (+1 with a bias) from G: x^(0) = ỹμ, x^(1) = ξ."""
    n = y_true.shape[0]
    extra = 1.0 if use_bias else 0.0
    for i in range(n):
        for k in range(n):
            K[2 * i, 2 * k] = y_true[i] * y_true[k] * G[0, 0] + extra
            K[2 * i, 2 * k + 1] = y_true[i] * G[0, k + 1] + extra
            K[2 * i + 1, 2 * k] = y_true[k] * G[i + 1, 0] + extra
            K[2 * i + 1, 2 * k + 1] = G[i + 1, k + 1] + extra


@njit(cache=True)
def patch_blocks(G, y_true, use_bias, blocks):
    """blocks[i] = example i's 2×2 patch Gram block, the diagonal blocks of :func:`patch_gram`
    (the same expressions, so the same numbers) at O(n) instead of K's O(n²)."""
    extra = 1.0 if use_bias else 0.0
    for i in range(y_true.shape[0]):
        blocks[i, 0, 0] = y_true[i] * y_true[i] * G[0, 0] + extra
        blocks[i, 0, 1] = y_true[i] * G[0, i + 1] + extra
        blocks[i, 1, 0] = y_true[i] * G[i + 1, 0] + extra
        blocks[i, 1, 1] = G[i + 1, i + 1] + extra


@njit(cache=True)
def apply_coef(Q, y_true, step, use_bias, beta, bias):
    """β += step · (coefficients of Σ_{i,p} Q x_i^(p)); the bias likewise. Returns whether
    every entry of β is finite afterwards (each is written here, so no second pass)."""
    _, m, n, _ = Q.shape
    bad = False                       # v·0 is ±0 for finite v, NaN for ±inf and NaN
    for j in range(2):
        for r in range(m):
            s = 0.0
            sb = 0.0
            for i in range(n):
                s += Q[j, r, i, 0] * y_true[i]
                v = beta[j, r, i + 1] + step * Q[j, r, i, 1]
                beta[j, r, i + 1] = v
                bad |= v * 0.0 != 0.0
                sb += Q[j, r, i, 0] + Q[j, r, i, 1]
            v = beta[j, r, 0] + step * s
            beta[j, r, 0] = v
            bad |= v * 0.0 != 0.0
            if use_bias:
                bias[j, r] += step * sb
    return not bad


@njit(cache=True)
def noise_preacts(zeta, F, y_true, use_bias, dHn):
    """⟨ζ_{j,r}, x_i^(p)⟩ (+ the bias noise) from the draws ``zeta`` (2, m, n+2 [+1]): s times
    standard normals, mapped through F (F Fᵀ = G) to have covariance s² G (then the bias's,
    then, with a trained readout, the readout's)."""
    two, m, _ = zeta.shape
    k = F.shape[0]
    u = np.dot(zeta[:, :, :k].copy().reshape(two * m, k), F.T)
    for j in range(2):
        for r in range(m):
            b = zeta[j, r, k] if use_bias else 0.0
            for i in range(k - 1):
                dHn[j, r, i, 0] = y_true[i] * u[j * m + r, 0] + b
                dHn[j, r, i, 1] = u[j * m + r, i + 1] + b


@njit(cache=True)
def advance(G, Z0, y, y_true, beta, bias, ro, prm, nsteps, omega_t, ysign_t, zeta_t, F):
    """Run up to ``nsteps`` steps in place. Returns (steps done, status).

    ``ro`` (2, m): the readout a_{j,r}, read when ``prm.readout`` is not SCALAR and trained
    in place when it is TRAINED (:mod:`signoise.readout`).

    Stops, before stepping, when the training loss is non-finite (DIVERGED) or below
    ``prm.loss_threshold`` (CONVERGED; 0 never stops). A step that makes β non-finite also
    ends the run as DIVERGED. ``prm``: the run record (:data:`~signoise.algorithms.RUN_DTYPE`).
    Random inputs come per step from ``omega_t``, ``ysign_t``, ``zeta_t`` (empty when the
    algorithm has none; see signoise.draws.draw_inputs).
    """
    two, m, k = Z0.shape
    n = k - 1
    Z = np.empty_like(Z0)
    shape = (2, m, n, 2)
    H, dHn, Hs = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    dH, Q, Qs = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    f, loss, d1, d2 = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    ys, omega = np.empty(n), np.empty(n)
    K = np.empty((0, 0))     # the rules read G (non-empty) for any product, never K
    blocks = np.empty((n, 2, 2))
    patch_blocks(G, y_true, prm.use_bias, blocks)
    none = np.empty(0)
    scalar = prm.readout == Readout.SCALAR
    P = np.empty((two * m, k))
    fH = f if scalar else none          # the outputs with H, where the scalar rule reads them
    trained = prm.readout == Readout.TRAINED
    gA, gAs, ros, dAn = (np.zeros((2, m)), np.zeros((2, m)), np.zeros((2, m)),
                         np.zeros((2, m)))
    for t in range(nsteps):
        preacts(G, Z0, beta, bias, y_true, Z, H, P, prm.q, prm.a, fH)
        if zeta_t.shape[0]:
            noise_preacts(zeta_t[t], F, y_true, prm.use_bias, dHn)
            if trained:
                dAn[...] = zeta_t[t, :, :, k + 1]
        ysign = ysign_t[t] if ysign_t.shape[0] else none
        omega_in = omega_t[t] if omega_t.shape[0] else none
        if scalar:
            L = step_coef_given(prm, H, dHn, K, G, y_true, blocks, y, ysign, omega_in,
                                f, loss, d1, d2, ys, omega, Hs, dH, Q, Qs)
        else:
            L = step_coef_ro(prm, H, ro, dHn, dAn, K, G, y_true, blocks, y, ysign, omega_in,
                             f, loss, d1, d2, ys, omega, Hs, dH, Q, Qs, gA, gAs, ros)
        if not np.isfinite(L):
            return t, DIVERGED
        if L < prm.loss_threshold:
            return t, CONVERGED
        finite = apply_coef(Q, y_true, -prm.lr, prm.use_bias, beta, bias)
        if trained:
            lincomb(ro, 1.0, ro, -prm.lr, gA)
        if not (finite and is_finite(bias) and is_finite(ro)):
            return t + 1, DIVERGED
    return nsteps, RUNNING


@njit(cache=True)
def test_outputs(Z, Zt, Z0t, bias, y_true_t, q, a, ft):
    """f(x_t) of the test points from ⟨w_{j,r}, μ⟩ = Z[j,r,0] and ⟨w_{j,r}, ξ_t⟩ = Zt + Z0t.

    The arithmetic of :func:`~signoise.preacts.outputs` on the test pre-activations
    H_t = (ỹ_t⟨w, μ⟩ + b, ⟨w, ξ_t⟩ + b), term for term and in the same order, without forming
    them: the signal activation takes one value per filter and sign of ỹ_t, and the sums run
    over the contiguous rows of Zt. ``Zt`` may be empty (β = 0: ⟨w, ξ_t⟩ = Z0t).
    """
    _, m, _ = Z.shape
    nt = ft.shape[0]
    acc = np.zeros((2, nt))
    zero = Zt.shape[0] == 0
    for j in range(2):
        for r in range(m):
            b = bias[j, r]
            pos = act(Z[j, r, 0] + b, q)          # ỹ = +1 (ỹ Z is exact)
            neg = act(-Z[j, r, 0] + b, q)
            z0 = Z0t[j, r]
            for t in range(nt):
                acc[j, t] += pos if y_true_t[t] > 0.0 else neg
                h = (0.0 + z0[t] if zero else Zt[j * m + r, t] + z0[t]) + b
                acc[j, t] += act(h, q)
    for t in range(nt):
        ft[t] = 0.0 + a * acc[0, t] + (-a) * acc[1, t]


@njit(cache=True)
def test_outputs_ro(Z, Zt, Z0t, bias, ro, y_true_t, q, ft):
    """:func:`test_outputs` with per-filter readout weights a_{j,r}
    (:func:`signoise.readout.outputs_ro`'s arithmetic on the test pre-activations)."""
    _, m, _ = Z.shape
    nt = ft.shape[0]
    zero = Zt.shape[0] == 0
    ft[:] = 0.0
    acc = np.zeros(nt)
    for j in range(2):
        sj = 1.0 if j == 0 else -1.0
        for r in range(m):
            b = bias[j, r]
            pos = act(Z[j, r, 0] + b, q)
            neg = act(-Z[j, r, 0] + b, q)
            z0 = Z0t[j, r]
            for t in range(nt):
                h = (0.0 + z0[t] if zero else Zt[j * m + r, t] + z0[t]) + b
                acc[t] = (pos if y_true_t[t] > 0.0 else neg) + act(h, q)
            c = sj * ro[j, r]
            for t in range(nt):
                ft[t] += c * acc[t]


@njit(cache=True)
def evaluate_kernel(G, Z0, y, y_true, Gt, Z0t, y_t, y_true_t, beta, bias, ro, prm, out):
    """:data:`~signoise.diagnostics.METRICS` of the state (β, bias), train and test."""
    two, m, k = Z0.shape
    if is_zero(beta):                     # the first record: ⟨w0, ξ_t⟩ alone, no product
        Zt = np.empty((0, 0))
    else:
        Zt = np.dot(beta.reshape(two * m, k), Gt)
    evaluate_given(G, Z0, y, y_true, Zt, Z0t, y_t, y_true_t, beta, bias, ro, prm, out)


@njit(cache=True)
def evaluate_given(G, Z0, y, y_true, Zt, Z0t, y_t, y_true_t, beta, bias, ro, prm, out):
    """:func:`evaluate_kernel` with the test product ``Zt = β Gt`` (2m, n_test) given
    (empty when β = 0), so that runs sharing a test set can share one product."""
    q, a = prm.q, prm.a
    _, m, k = Z0.shape
    n = k - 1
    Z = np.empty_like(Z0)
    H = np.empty((2, m, n, 2))
    preacts(G, Z0, beta, bias, y_true, Z, H, np.empty((2 * m, k)), q, a, np.empty(0))
    ft = np.empty(y_t.shape[0])
    scalar = prm.readout == Readout.SCALAR
    if scalar:
        test_outputs(Z, Zt, Z0t, bias, y_true_t, q, a, ft)
    else:
        test_outputs_ro(Z, Zt, Z0t, bias, ro, y_true_t, q, ft)
    K = np.empty((2 * n, 2 * n))
    patch_gram(G, y_true, prm.use_bias, K)
    xmu = np.empty(2 * n)
    for i in range(n):
        xmu[2 * i] = y_true[i] * G[0, 0]
        xmu[2 * i + 1] = G[i + 1, 0]
    if scalar:
        metrics(H, y, ft, y_t, y_true_t, K, xmu, G[0, 0], q, a, out)
    else:
        metrics_ro(H, ro, prm.readout == Readout.TRAINED, y, ft, y_t, y_true_t, K, xmu,
                   G[0, 0], q, out)


@njit(cache=True)
def is_zero(x):
    """True when every entry of ``x`` is zero."""
    for v in x.ravel():
        if v != 0.0:
            return False
    return True


_TEST = ("Gt", "Z0t", "y_t", "y_true_t")


class Batch:
    """B runs of this engine stacked on a leading axis; one ``prange`` kernel advances them all.

    Each run's arithmetic is that of a lone :func:`advance` call, so a run's numbers do not
    depend on the batch it is in or on the thread count. All runs share n, m and n_test.
    """

    def __init__(self, inputs: list, params: list, readouts: list | None = None):
        for name in ("G", "Z0", "b0", "y", "y_true"):
            setattr(self, name, np.stack([getattr(inp, name) for inp in inputs]).astype(
                np.float64, copy=False))
        # the test sets, once per distinct set (runs sharing a draw share the arrays)
        tests, owners = {}, []
        test_of = []
        for inp in inputs:
            key = (id(inp.Gt), id(inp.Z0t), id(inp.y_t), id(inp.y_true_t))
            if key not in tests:
                tests[key] = len(owners)
                owners.append(inp)
            test_of.append(tests[key])
        self.test_of = np.array(test_of, np.int64)
        for name in _TEST:
            setattr(self, name, np.stack([getattr(inp, name) for inp in owners]))
        # the inputs now read their test set from the stacked copy (equal views), so the
        # per-run arrays are freed: one copy of each test set, not two (10⁴ runs of 1000
        # test points with their own seeds: 3.3 GB less). One view object per set, so
        # inputs that shared arrays still share them.
        views = [{name: getattr(self, name)[t] for name in _TEST} for t in range(len(owners))]
        for inp, t in zip(inputs, test_of):
            for name in _TEST:
                setattr(inp, name, views[t][name])
        self.groups = eval_groups(self.test_of)
        self.beta = np.zeros_like(self.Z0)
        self.bias = self.b0.copy()
        self.prm = _records(params)
        self.ro = _readouts(readouts, self.prm, self.Z0.shape[2])
        # the noise factor F (F Fᵀ = G) only where the rule draws weight noise; zeros elsewhere
        self.F = np.zeros_like(self.G)
        codes = self.prm["code"]
        noisy = [c for c in np.unique(codes) if needs_eval_noise(c)]
        for b in np.flatnonzero(np.isin(codes, noisy)):
            self.F[b] = noise_factor(self.G[b])

    @property
    def noise_width(self):
        """Gaussian weight-noise draws per filter: one per basis vector, one for the bias, one
        for a trained readout weight."""
        return (self.G.shape[1] + 1 + (self.prm["readout"] == Readout.TRAINED)).tolist()

    def advance(self, nsteps, omega, ysign, zeta, active):
        """Advance the ``active`` runs by up to ``nsteps``; returns (done, status) per run.

        ``omega``, ``ysign``, ``zeta``: per run, the random inputs of these steps
        (:func:`~signoise.draws.draw_inputs`; empty for a rule that has none).
        """
        B, n = self.y.shape
        done, status = np.zeros(B, np.int64), np.zeros(B, np.int64)
        kernel = advance_batch if _parallel(B) else advance_runs
        kernel(self.G, self.Z0, self.y, self.y_true, self.beta, self.bias, self.ro, self.prm,
               nsteps,
               _stack(omega, 1.0 / n), _stack(ysign, 1.0), _stack(zeta, 0.0), self.F, active,
               done, status)
        return done, status

    def evaluate(self, out):
        """Fill ``out`` (B, len(METRICS)) with every run's metrics."""
        kernel = evaluate_batch if _parallel(self.G.shape[0]) else evaluate_runs
        kernel(self.G, self.Z0, self.y, self.y_true, self.Gt, self.Z0t, self.y_t, self.y_true_t,
               self.test_of, *self.groups, self.beta, self.bias, self.ro, self.prm, out)

    def coefficients(self):
        """(γ (B, 2, m), ρ (B, 2, m, n), None): γ = j β_0 ‖μ‖², ρ_i = β_i ‖ξ_i‖² (no residual)."""
        sq = np.einsum("bii->bi", self.G)
        gamma = np.array([1.0, -1.0])[None, :, None] * self.beta[:, :, :, 0] * sq[:, None, None, 0]
        return gamma, self.beta[:, :, :, 1:] * sq[:, None, None, 1:], None

    def summaries(self):
        """(γ (B, 2, m), ρ summaries (B, 3)): :func:`~signoise.driver.rho_summaries` of
        :meth:`coefficients`, bit for bit, without forming ρ (``record_rho = "summary"``)."""
        from ..summaries import coefficient_summaries

        return coefficient_summaries(self.beta, self.G, self.y, _parallel(self.G.shape[0]))

    def get_state(self):
        """The state a run continues from: β (B, 2, m, n+1), the biases (B, 2, m) and, for
        a per-filter readout, a_{j,r} (B, 2, m)."""
        state = {"beta": self.beta, "bias": self.bias}
        if (self.prm["readout"] != Readout.SCALAR).any():
            state["readout"] = self.ro
        return state

    def set_state(self, state):
        self.beta[...] = state["beta"]
        self.bias[...] = state["bias"]
        if "readout" in state:
            self.ro[...] = state["readout"]


def _readouts(readouts, prm, m):
    """(B, 2, m) readout weights: the given ones, else the scalar a of each run."""
    if readouts is None:
        return np.ascontiguousarray(np.broadcast_to(prm["a"][:, None, None], (len(prm), 2, m)))
    return np.stack([np.asarray(r, dtype=np.float64) for r in readouts])


def _records(params):
    """The runs' records as one array: ``np.concatenate(params)`` without its per-array dtype
    promotion (which cost more than the rest of the set-up), byte for byte."""
    dtype = params[0].dtype
    if all(p.dtype == dtype and p.shape == (1,) for p in params):
        return np.frombuffer(b"".join([p.tobytes() for p in params]), dtype).copy()
    return np.concatenate(params)


def _parallel(runs: int) -> bool:
    """Whether a parallel region pays: more than one run and more than one thread."""
    import numba

    return runs > 1 and numba.get_num_threads() > 1


def _stack(arrays, fill):
    """Stack per-run random inputs; runs without any (empty) get the neutral value ``fill``
    (weight 1/n, label sign 1, zero noise), which their rule ignores or which equals GD."""
    if len(arrays) == 1:
        return arrays[0][None]
    longest = max(arrays, key=lambda a: a.shape[0])
    # weight noise of a trained readout has one more column: narrower draws are padded (their
    # kernels never read the extra column)
    shape = longest.shape[:-1] + (max(a.shape[-1] for a in arrays),)
    if longest.shape[0] == 0:
        return np.empty((len(arrays),) + shape)
    out = np.full((len(arrays),) + shape, fill)
    for b, a in enumerate(arrays):
        if a.shape[0] == longest.shape[0]:
            out[b, ..., :a.shape[-1]] = a
    return out


class Runner:
    """One run of this engine (a :class:`Batch` of one): ``state = (β, bias)``, ``advance(k)``,
    ``evaluate()``, ``coefficients()``. ``params``: :func:`~signoise.algorithms.run_record` of
    the config. Random inputs come from ``rng`` in step order."""

    def __init__(self, inp: GramInputs, params, rng, readout=None):
        self.inp, self.params, self.rng = inp, params, rng
        self.batch = Batch([inp], [params], None if readout is None else [readout])
        self.t = 0

    @property
    def state(self):
        return self.batch.beta[0], self.batch.bias[0]

    @state.setter
    def state(self, value):
        self.batch.set_state({"beta": value[0], "bias": value[1]})

    def advance(self, nsteps):
        n, m = self.inp.y.shape[0], self.inp.Z0.shape[1]
        omega, ysign, zeta = draw_inputs(self.params[0], self.rng, self.t, nsteps, n, m,
                                         self.batch.noise_width[0])
        done, status = self.batch.advance(nsteps, [omega], [ysign], [zeta], np.ones(1, np.bool_))
        self.t += int(done[0])
        return int(done[0]), int(status[0])

    def evaluate(self):
        out = np.empty((1, len(METRICS)))
        self.batch.evaluate(out)
        return out[0]

    def coefficients(self):
        """(γ (2, m), ρ (2, m, n), out-of-span residual norm (2, m) = 0)."""
        gamma, rho, _ = self.batch.coefficients()
        return gamma[0], rho[0], np.zeros(gamma.shape[1:])


@njit(cache=True, parallel=True)
def advance_batch(G, Z0, y, y_true, beta, bias, ro, prm, nsteps, omega_t, ysign_t, zeta_t, F,
                  active, done, status):
    """:func:`advance` for a batch of runs (leading axis), in parallel over runs only.

    Runs with ``active[b] == False`` are skipped. Each run's arithmetic is exactly that of a
    single :func:`advance` call, so results do not depend on the thread count.
    """
    for b in prange(G.shape[0]):
        if active[b]:
            done[b], status[b] = advance(G[b], Z0[b], y[b], y_true[b], beta[b], bias[b], ro[b],
                                         prm[b], nsteps, omega_t[b], ysign_t[b], zeta_t[b], F[b])


@njit(cache=True)
def advance_runs(G, Z0, y, y_true, beta, bias, ro, prm, nsteps, omega_t, ysign_t, zeta_t, F,
                 active, done, status):
    """:func:`advance_batch` on the calling thread (one run, or one thread: a parallel region
    would cost more to open than the work it shares)."""
    for b in range(G.shape[0]):
        if active[b]:
            done[b], status[b] = advance(G[b], Z0[b], y[b], y_true[b], beta[b], bias[b], ro[b],
                                         prm[b], nsteps, omega_t[b], ysign_t[b], zeta_t[b], F[b])


#: Runs per shared test product (β of up to this many runs stacked, one product with Gt).
#: 1: each run its own product. Stacking is row for row the same product only where the BLAS
#: kernel's summation order does not depend on the number of rows (true of this machine's
#: OpenBLAS, tested; not promised by BLAS, whose small-matrix paths differ by CPU), and its
#: gain on the full Kou grid was not measurable (docs/performance.md): results must not depend
#: on batching, so it is off by default.
EVAL_GROUP = 1


def eval_groups(test_of, size=EVAL_GROUP):
    """Runs grouped by test set, at most ``size`` per group: ``(order, starts)``, group g being
    the runs ``order[starts[g]:starts[g+1]]`` (in run order, all on one test set)."""
    order = np.argsort(test_of, kind="stable")
    keys = test_of[order]
    starts = [0]
    for b in range(1, len(order) + 1):
        if b == len(order) or keys[b] != keys[starts[-1]] or b - starts[-1] == size:
            starts.append(b)
    return order.astype(np.int64), np.array(starts, np.int64)


@njit(cache=True)
def evaluate_group(G, Z0, y, y_true, Gt, Z0t, y_t, y_true_t, test_of, members, beta, bias,
                   ro, prm, out):
    """:func:`evaluate_kernel` for the runs ``members`` (one test set): the test products of
    those with β ≠ 0 as one product of their stacked β with Gt. Row for row it is the product
    of each run alone (the same dot products of length n + 1, checked bit for bit in
    tests/test_evaluate.py), at a fraction of the cost of many small products."""
    _, two, m, k = Z0.shape
    rows = two * m
    t = test_of[members[0]]
    live = np.empty(members.shape[0], np.int64)
    count = 0
    for c in members:
        if is_zero(beta[c]):
            evaluate_given(G[c], Z0[c], y[c], y_true[c], np.empty((0, 0)), Z0t[t], y_t[t],
                           y_true_t[t], beta[c], bias[c], ro[c], prm[c], out[c])
        else:
            live[count] = c
            count += 1
    if count == 0:
        return
    A = np.empty((count * rows, k))
    for g in range(count):
        A[g * rows:(g + 1) * rows] = beta[live[g]].reshape(rows, k)
    Zt = np.dot(A, Gt[t])
    for g in range(count):
        c = live[g]
        evaluate_given(G[c], Z0[c], y[c], y_true[c], Zt[g * rows:(g + 1) * rows], Z0t[t],
                       y_t[t], y_true_t[t], beta[c], bias[c], ro[c], prm[c], out[c])


@njit(cache=True, parallel=True)
def evaluate_batch(G, Z0, y, y_true, Gt, Z0t, y_t, y_true_t, test_of, order, starts, beta,
                   bias, ro, prm, out):
    """:func:`evaluate_kernel` for a batch of runs, in parallel over groups of runs that share
    a test set (:func:`eval_groups`). Run b is evaluated on the test set ``test_of[b]`` of the
    tables ``Gt``, ``Z0t``, ``y_t``, ``y_true_t`` (runs that share a draw share its test set,
    which is not copied per run)."""
    for g in prange(starts.shape[0] - 1):
        evaluate_group(G, Z0, y, y_true, Gt, Z0t, y_t, y_true_t, test_of,
                       order[starts[g]:starts[g + 1]], beta, bias, ro, prm, out)


@njit(cache=True)
def evaluate_runs(G, Z0, y, y_true, Gt, Z0t, y_t, y_true_t, test_of, order, starts, beta,
                  bias, ro, prm, out):
    """:func:`evaluate_batch` on the calling thread."""
    for g in range(starts.shape[0] - 1):
        evaluate_group(G, Z0, y, y_true, Gt, Z0t, y_t, y_true_t, test_of,
                       order[starts[g]:starts[g + 1]], beta, bias, ro, prm, out)
