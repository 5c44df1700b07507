"""The gradient-perturbation checks (issue 8, items 5-8): each on its premise (PASS, with the
measured value where the theory puts it) and on a broken premise (FAIL, negative control);
the helpers they rely on against independent oracles."""

import warnings

import numpy as np
import pytest

import signoise as sn
from signoise import probe
from signoise.checks import REGISTRY
from signoise.checks.orvieto import trace_gradient
from signoise.checks.probing import gd_iterate
from signoise.checks.wu import matching_scale

NAMES = ("pegr_window", "karakida_fdgr_order", "orvieto_smoothed_loss", "wu_msgd_noise")


def test_registered_with_their_claims():
    for name in NAMES:
        assert name in REGISTRY and REGISTRY[name].source and REGISTRY[name].criterion


# --- item 6: fdgr → gr at order 1, 1, 2 ---------------------------------------------------------

def test_fdgr_order_passes_and_a_wrong_order_fails(tmp_path):
    r = sn.check("karakida_fdgr_order")
    assert r.verdict == "PASS"
    np.testing.assert_allclose(r.data.slope.values, [1, 1, 2], atol=r.uncertainty)
    # exact at every ε: residuals far above the rounding floor
    assert (r.data.residual > 10 * r.data.rounding).all()
    r.figure(tmp_path / "k.png")
    bad = sn.check("karakida_fdgr_order", orders={"central": 1})
    assert bad.verdict == "FAIL" and bad.value == pytest.approx(1.0, abs=0.01)


# --- item 7: noisy_eval's mean step is GD on the smoothed loss to O(s⁴) ----------------------------

def test_trace_gradient_matches_finite_differences_of_the_trace_along_a_direction():
    # oracle: d/dt Tr∇²L(W + t v) at t = 0 by a 4-point stencil along a random β direction,
    # against ⟨∇Tr, v⟩ = c G vᵀ from the per-coordinate differences
    from signoise.diagnostics import METRICS
    from signoise.engines import get_engine

    it = probe.iterate(gd_iterate(200, 4))
    c = trace_gradient(it)
    G = it.run.inputs.G
    v = np.random.default_rng(0).standard_normal(c.shape) / np.sqrt(np.diag(G))
    h = 1e-4
    ts = np.array([2, 1, -1, -2]) * h
    B = ts.size
    batch = get_engine("gram").Batch([it.run.inputs] * B, [it.run.params] * B)
    batch.set_state({"beta": it.state["beta"][None] + ts[:, None, None, None] * v[None],
                     "bias": np.broadcast_to(it.state["bias"], (B,) + it.state["bias"].shape)})
    out = np.empty((B, len(METRICS)))
    batch.evaluate(out)
    tr = out[:, METRICS.index("hessian_trace")]
    deriv = (-tr[0] + 8 * tr[1] - 8 * tr[2] + tr[3]) / (12 * h)
    assert np.einsum("jra,ab,jrb->", c, G, v) == pytest.approx(deriv, rel=1e-6)


def test_smoothed_loss_order_passes_and_a_wrong_smoothing_fails():
    r = sn.check("orvieto_smoothed_loss")
    assert r.verdict == "PASS" and abs(r.value - 4.0) < 0.5
    # the residual is resolved above its Monte-Carlo error (by 3x at the three largest s)
    res, mc = r.data.residual, r.data.mc_error
    assert (res > mc).all() and (res.isel(s=slice(2, None)) > 3 * mc.isel(s=slice(2, None))).all()
    # anti_pgd's z-step is the noisy_eval rule on the same draws: the same residuals
    np.testing.assert_allclose(r.data.residual.sel(algorithm="anti_pgd"),
                               r.data.residual.sel(algorithm="noisy_eval"), rtol=1e-12)
    bad = sn.check("orvieto_smoothed_loss", smoothing=0.25, algorithms=("noisy_eval",),
                   pairs=300)
    assert bad.verdict == "FAIL" and bad.value < 3.0


# --- item 8: msgd's noise has SGD's mean and covariance ---------------------------------------------

def test_matching_scale_gives_sgd_covariance_factor():
    # (s²/n) = (n − b)/(b(n − 1)); b = n (GD) needs no noise, b = 1 the most
    assert matching_scale(10, 10) == 0.0
    n, b = 10, 5
    assert matching_scale(n, b) ** 2 / n == pytest.approx((n - b) / (b * (n - 1)), rel=1e-15)


def test_msgd_noise_passes_and_a_biased_scale_fails():
    r = sn.check("wu_msgd_noise")
    assert r.verdict == "PASS" and r.value <= 4.0
    z = r.data.z
    # Fisher's total variance is visibly above SGD's (its g gᵀ term), and matches its own formula
    assert (z.sel(kind="fisher", statistic="trace") > 4).all()
    assert (abs(z.sel(kind="fisher", statistic="trace_own")) < 4).all()
    bad = sn.check("wu_msgd_noise", scale=1.3, draws=500)
    assert bad.verdict == "FAIL" and bad.value > 10


# --- item 5: the PEGR window ------------------------------------------------------------------------

def test_pegr_window_passes_and_gd_in_its_place_fails():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # large λ: far from converged, on purpose
        r = sn.check("pegr_window")
        bad = sn.check("pegr_window", algorithm="gd", lam=(0.003, 0.03, 2))
    assert r.verdict == "PASS" and r.data.holds.any() and "λ in [" in r.where
    assert r.value <= 0.2
    # GR at the window's λ stays harmful (its noise penalty is n times weaker)
    lam = r.data.lam[r.data.holds]
    assert (r.data.test_error.sel(algorithm="gr", lam=lam).mean("seed") >= 0.4).all()
    # GD's pattern-learning variance is all noise; PEGR's, in the window, partly signal
    assert float(r.data.gd_noise_share.mean()) > 0.99
    assert (r.data.noise_share.sel(algorithm="pegr", lam=lam).mean("seed") < 0.99).all()
    assert bad.verdict == "FAIL" and not bad.data.holds.any()


def test_forward_vs_backward_reports_its_range_and_a_swapped_claim_fails():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = sn.check("karakida_forward_vs_backward")
    assert r.verdict == "PASS" and r.value < 0 and "holds for ε <=" in r.where
    # paired differences: the reported mean is the seeds' mean difference forward − backward
    d = r.data.test_error.sel(scheme="forward") - r.data.test_error.sel(scheme="backward")
    np.testing.assert_allclose(r.data.difference, d.mean("seed"), rtol=1e-12)
    # non-inferiority at every judged ε: difference + 2 SE within the margin
    judged = r.data.eps <= 0.1
    assert (r.data.difference + 2 * r.data.difference_se)[judged].max() <= 0.02
    bad = sn.check("karakida_forward_vs_backward", swap=True)   # claims backward >= forward
    assert bad.verdict == "FAIL"


def test_msgd_test_error_matches_sgd_at_b5_and_a_tripled_noise_fails():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = sn.check("wu_msgd_test_error")
        bad = sn.check("wu_msgd_test_error", scale=3.0)
    assert r.verdict == "PASS" and "b=5: match" in r.where and "b=1:" in r.where
    d = r.data.test_error.sel(kind="cov") - r.data.test_error.sel(kind="sgd")
    np.testing.assert_allclose(r.data.difference.sel(kind="cov"), d.mean("seed"), rtol=1e-12)
    assert bad.verdict == "FAIL"
