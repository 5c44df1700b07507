"""What every engine shares: run parameters, status codes, per-step random inputs, and the
recorded metrics (computed by one compiled function for both engines)."""

from __future__ import annotations

import numpy as np
from numba import njit

from .. import algorithms as A
from ..model import diagnostics, logistic_loss, margin_terms, outputs, patch_sqnorm_blocks

RUNNING, DIVERGED, CONVERGED = 0, 1, 2

#: Scalar metrics recorded at every recorded step (SPEC §5), in this order.
METRICS = ("train_loss", "train_error", "test_loss", "test_error", "test_error_clean",
           "margin_min", "margin_max", "grad_sq", "example_grad_sq", "grad_var",
           "grad_var_signal", "grad_var_noise", "hessian_trace")


def needs_eval_noise(code) -> bool:
    return code in (A.NOISY_EVAL, A.ANTI_PGD)


def draw_inputs(prm, rng: np.random.Generator, t0: int, k: int, n: int, m: int, width: int):
    """Random inputs of steps t0 .. t0+k−1, drawn outside the kernels (DESIGN.md principle 4).

    ``prm``: the run record (:func:`~signoise.algorithms.run_record`). Returns ``(omega_t
    (k|0, n), ysign_t (k|0, n), zeta_t (k|0, 2, m, width))``: per-step example weights (sgd,
    msgd), label signs (label_noise_gd), and Gaussian weight noise already scaled (noisy_eval,
    anti_pgd, pgd: s; grad_noise: −η s). Draws fill arrays in step order, so the numbers do not
    depend on how the steps are split into chunks.
    """
    code = prm["code"]
    omega = np.empty((0, n))
    ysign = np.empty((0, n))
    zeta = np.empty((0, 2, m, width))
    if code == A.SGD:
        b = int(prm["batch_size"])
        chosen = np.argsort(rng.random((k, n)), axis=1)[:, :b]
        omega = np.zeros((k, n))
        np.put_along_axis(omega, chosen, 1.0 / b, axis=1)
    elif code == A.MSGD:
        kind, keep, s = prm["mask_kind"], prm["keep"], prm["mask_scale"]
        if kind == A.MaskKind.BERNOULLI:
            mask = (rng.random((k, n)) < keep) / keep
        else:
            e = rng.standard_normal((k, n))
            if kind == A.MaskKind.COV:
                e = e - e.mean(axis=1, keepdims=True)
            mask = 1.0 + s * e
        omega = mask / n
    elif code == A.LABEL_NOISE_GD:
        ysign = np.where(rng.random((k, n)) < prm["p_step"], -1.0, 1.0)
    elif code in (A.NOISY_EVAL, A.ANTI_PGD, A.PGD, A.GRAD_NOISE):
        s = prm["noise_std"]
        zeta = (-prm["lr"] * s if code == A.GRAD_NOISE else s) * rng.standard_normal((k, 2, m, width))
        if code == A.NOISY_EVAL and prm["layerwise"]:   # layerwise: block (t mod 2) only
            steps = t0 + np.arange(k)
            zeta[np.arange(k), 1 - steps % 2] = 0.0
    return omega, ysign, zeta


@njit(cache=True)
def metrics(H, y, ft, y_t, y_true_t, K, xmu, mu2, q, a, out):
    """Fill ``out`` with :data:`METRICS` from the training pre-activations ``H`` and the test
    outputs ``ft`` (a 0-1 error counts y·f ≤ 0 as wrong)."""
    n = y.shape[0]
    nt = y_t.shape[0]
    f = np.empty(n)
    loss = np.empty(n)
    d1 = np.empty(n)
    d2 = np.empty(n)
    outputs(H, q, a, f)
    margin_terms(f, y, loss, d1, d2)
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
    lt = np.empty(nt)
    for k in range(nt):
        lt[k] = logistic_loss(y_t[k] * ft[k])
    out[2] = lt.sum() / nt
    noisy = 0.0
    clean = 0.0
    for k in range(nt):
        noisy += 1.0 if y_t[k] * ft[k] <= 0.0 else 0.0
        clean += 1.0 if y_true_t[k] * ft[k] <= 0.0 else 0.0
    out[3] = noisy / nt
    out[4] = clean / nt
    out[5] = mmin
    out[6] = mmax
    blocks = np.empty((n, 2, 2))
    patch_sqnorm_blocks(K, blocks)
    diagnostics(H, y, d1, d2, K, blocks, xmu, mu2, q, a, out[7:])


_BLAS = None


def single_threaded_blas():
    """A context limiting every loaded BLAS to one thread.

    The gram engine's matrix products are small (O(m n²)): threaded BLAS gains nothing there,
    spins on a loaded machine (measured 100× slower per product with other work running), and
    would oversubscribe the cores under a ``prange`` over runs.
    """
    global _BLAS
    if _BLAS is None:
        import scipy.linalg.cython_blas  # noqa: F401  (the BLAS Numba calls: load it first)
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")
