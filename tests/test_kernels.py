"""The gram engine's step and evaluation kernels against plain Python loops in the reference
order (signoise.preacts' 4-D loops as they were written first): the flat-indexed and fused
kernels must give the same numbers bit for bit, and the naive formulas (tests/naive.py) to
rounding."""

import math

import numpy as np
import pytest

from signoise.activation import act, dact, logistic_loss
from signoise.diagnostics import scores_on_test
from signoise.engines import gram
from signoise.preacts import gd_coef, is_finite, outputs

from . import naive

act_py, dact_py, loss_py = act.py_func, dact.py_func, logistic_loss.py_func


def _state(m=3, n=5, seed=0):
    """Random G, Z0, β, bias and labels, with exact zeros and negative pre-activations."""
    rng = np.random.default_rng(seed)
    V = rng.standard_normal((n + 1, 4 * n))
    G = V @ V.T
    Z0 = rng.standard_normal((2, m, n + 1))
    beta = 0.3 * rng.standard_normal((2, m, n + 1))
    bias = 0.2 * rng.standard_normal((2, m))
    bias[0, 0] = 0.0
    y_true = rng.choice([-1.0, 1.0], n)
    return G, Z0, beta, bias, y_true


def _outputs_reference(H, q, a):
    """f_i in the order of the first outputs(): i outermost, then j, then r, p."""
    _, m, n, P = H.shape
    f = np.empty(n)
    for i in range(n):
        s = 0.0
        for j in range(2):
            cj = a if j == 0 else -a
            acc = 0.0
            for r in range(m):
                for p in range(P):
                    acc += act_py(float(H[j, r, i, p]), q)
            s += cj * acc
        f[i] = s
    return f


@pytest.mark.parametrize("q", [1.0, 2.0, 3.0])
def test_preacts_with_outputs_equal_reference_loops(q):
    G, Z0, beta, bias, y_true = _state()
    _, m, k = Z0.shape
    Z, H, f = np.empty_like(Z0), np.empty((2, m, k - 1, 2)), np.empty(k - 1)
    gram.preacts(G, Z0, beta, bias, y_true, Z, H, np.empty((2 * m, k)), q, 0.4, f)
    # H from its definition (NumPy's product: the same BLAS call, so to the last bit here)
    Zr = Z0 + (beta.reshape(2 * m, k) @ G).reshape(Z0.shape)
    Hr = np.stack([y_true[None, None, :] * Zr[:, :, :1], Zr[:, :, 1:]], axis=-1) \
        + bias[:, :, None, None]
    np.testing.assert_allclose(H, Hr, rtol=1e-14, atol=1e-14)
    assert np.array_equal(f, _outputs_reference(H, q, 0.4))
    f2 = np.empty_like(f)
    outputs(H, q, 0.4, f2)                       # the engines' shared function, same bits
    assert np.array_equal(f2, f)
    naive_f = [sum(s * 0.4 * naive.act(H[j, r, i, p], q) for j, s in ((0, 1), (1, -1))
                   for r in range(m) for p in range(2)) for i in range(k - 1)]
    np.testing.assert_allclose(f, naive_f, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("q", [1.0, 3.0])
def test_gd_coef_equals_reference_loop(q):
    G, Z0, beta, bias, y_true = _state(seed=1)
    _, m, k = Z0.shape
    n = k - 1
    H = np.empty((2, m, n, 2))
    gram.preacts(G, Z0, beta, bias, y_true, np.empty_like(Z0), H, np.empty((2 * m, k)), q,
                 0.4, np.empty(0))
    rng = np.random.default_rng(2)
    y, d1, omega = rng.choice([-1.0, 1.0], n), -rng.random(n), rng.random(n) / n
    Q = np.empty_like(H)
    gd_coef(H, y, d1, omega, q, 0.4, Q)
    want = np.empty_like(H)
    for j in range(2):
        cj = 0.4 if j == 0 else -0.4
        for r in range(m):
            for i in range(n):
                u = omega[i] * d1[i] * y[i] * cj
                for p in range(2):
                    want[j, r, i, p] = u * dact_py(float(H[j, r, i, p]), q)
    assert np.array_equal(Q, want)


@pytest.mark.parametrize("bad", [None, np.inf, np.nan])
@pytest.mark.parametrize("use_bias", [False, True])
def test_apply_coef_updates_and_reports_finiteness(bad, use_bias):
    """β, bias as the reference loop gives them; the flag equals is_finite(β) afterwards."""
    _, Z0, beta, bias, y_true = _state(seed=3)
    _, m, k = Z0.shape
    Q = np.random.default_rng(4).standard_normal((2, m, k - 1, 2))
    if bad is not None:
        Q[1, 2, 3, 1] = bad
    b1, c1 = beta.copy(), bias.copy()
    finite = gram.apply_coef(Q, y_true, -0.1, use_bias, b1, c1)
    b2, c2 = beta.copy(), bias.copy()
    for j in range(2):
        for r in range(m):
            s = sb = 0.0
            for i in range(k - 1):
                s += Q[j, r, i, 0] * y_true[i]
                b2[j, r, i + 1] += -0.1 * Q[j, r, i, 1]
                sb += Q[j, r, i, 0] + Q[j, r, i, 1]
            b2[j, r, 0] += -0.1 * s
            if use_bias:
                c2[j, r] += -0.1 * sb
    assert np.array_equal(b1, b2, equal_nan=True) and np.array_equal(c1, c2, equal_nan=True)
    assert finite == is_finite(b1) == (bad is None)


def test_scores_on_test_in_one_pass():
    """Test loss and both errors in one pass: the loss to full precision against log1p/exp
    in Python at margins from −800 to 800 (where a naive log(1 + e^−z) overflows or rounds
    to 0), the errors counted exactly, ties (y f = 0) counted as wrong."""
    rng = np.random.default_rng(5)
    ft = np.concatenate([rng.standard_normal(50) * 3, [0.0, -0.0, 40.0, -40.0, 800.0, -800.0]])
    y_t = rng.choice([-1.0, 1.0], ft.size)
    y_true_t = np.where(rng.random(ft.size) < 0.2, -y_t, y_t)
    out = np.full(7, np.nan)
    scores_on_test(ft, y_t, y_true_t, out)
    z = y_t * ft
    want = [math.log1p(math.exp(-abs(v))) + max(-v, 0.0) for v in z]
    assert out[2] == pytest.approx(math.fsum(want) / z.size, rel=1e-14)
    assert out[2] == sum(loss_py(float(v)) for v in z) / z.size      # sequential sum, same bits
    assert out[3] == np.mean(z <= 0.0) and out[4] == np.mean(y_true_t * ft <= 0.0)
    assert np.isnan(out[[0, 1, 5, 6]]).all()                             # nothing else written


@pytest.mark.parametrize("use_bias", [False, True])
def test_patch_blocks_are_the_diagonal_blocks_of_the_patch_gram(use_bias):
    """The step reads each example's 2×2 block off G (O(n)); they are K's diagonal blocks,
    bit for bit, and the inner products of the explicit patches to rounding."""
    from signoise.preacts import patch_sqnorm_blocks

    G, _, _, _, y_true = _state(seed=5)
    n = y_true.shape[0]
    K = np.empty((2 * n, 2 * n))
    gram.patch_gram(G, y_true, use_bias, K)
    want = np.empty((n, 2, 2))
    patch_sqnorm_blocks(K, want)
    got = np.empty((n, 2, 2))
    gram.patch_blocks(G, y_true, use_bias, got)
    assert np.array_equal(got, want)
    V = np.linalg.cholesky(G + 1e-12 * np.eye(n + 1))    # rows: vectors with Gram matrix ≈ G
    for i in range(n):
        x = (y_true[i] * V[0], V[i + 1])
        ref = [[x[p] @ x[s] + use_bias for s in range(2)] for p in range(2)]
        np.testing.assert_allclose(got[i], ref, rtol=1e-9, atol=1e-9)
