"""The probes (signoise.probe): mean steps against one exact naive step and across engines, the
perturbed-gradient variance against its small-s closed form s²‖∇²L‖_F² (Hessian by finite
differences of the naive gradient), msgd's noise against its covariance formula."""

import numpy as np
import pytest

import signoise as sn
from signoise import probe

from . import naive

CFG = {"seed": 0, "data": {"n": 5, "d": 20, "mu_norm": 3.0, "n_test": 10},
       "model": {"m": 2, "q": 3.0, "sigma0": 0.3},
       "train": {"lr": 0.05, "steps": 20, "record_every": 10}}


@pytest.fixture(scope="module")
def runs():
    cfg = sn.RunConfig.from_dict(CFG)
    with pytest.warns(Warning, match="not small"):
        dg = sn.simulate(cfg, quiet=True)
    with pytest.warns(Warning, match="not small"):
        dw = sn.simulate(cfg, engine="weights", quiet=True)
    prob = sn.sample_problem(cfg)
    return cfg, dg, dw, prob


def _weights(ds, prob):
    """The final W of a gram result, W0 + β V (explicit, for the naive oracle)."""
    V = np.vstack([prob.mu, prob.xi])
    return prob.w0 + ds.state_beta.values @ V


def test_gd_mean_step_is_the_naive_gradient_on_both_engines(runs):
    cfg, dg, dw, prob = runs
    a = cfg.model.readout_scale
    W = _weights(dg, prob)
    np.testing.assert_allclose(W, dw.state_W.values, atol=1e-12)
    gW, _ = naive.grad(W, prob.b0, prob, cfg.model.q, a)
    mg, mw = probe.mean_step(dg), probe.mean_step(dw)
    assert int(mg.draws) == 1 and float(mg.variance) == 0.0
    V = np.vstack([prob.mu, prob.xi])
    np.testing.assert_allclose(mg.mean_beta.values @ V, gW, atol=1e-12 * np.abs(gW).max())
    np.testing.assert_allclose(mw.mean_W.values, gW, atol=1e-12 * np.abs(gW).max())
    assert float(mg.mean_sq_norm) == pytest.approx(np.sum(gW ** 2), rel=1e-10)


@pytest.mark.parametrize("algorithm", [{"name": "pegr", "lam": 0.05},
                                       {"name": "fdgr", "lam": 0.05, "eps": 0.01,
                                        "scheme": "central"}])
def test_deterministic_rules_agree_across_engines(runs, algorithm):
    _, dg, dw, prob = runs
    V = np.vstack([prob.mu, prob.xi])
    mg, mw = probe.mean_step(dg, algorithm), probe.mean_step(dw, algorithm)
    ref = mw.mean_W.values
    np.testing.assert_allclose(mg.mean_beta.values @ V, ref, atol=1e-10 * np.abs(ref).max())


def _hessian_fro2(W, prob, q, a, h=1e-5):
    """‖∇²L_S(W)‖_F² in weight space by central differences of the naive gradient."""
    w = W.ravel()
    rows = []
    for k in range(w.size):
        e = np.zeros_like(w)
        e[k] = h
        gp, _ = naive.grad((w + e).reshape(W.shape), prob.b0, prob, q, a)
        gm, _ = naive.grad((w - e).reshape(W.shape), prob.b0, prob, q, a)
        rows.append((gp - gm).ravel() / (2 * h))
    Hm = np.array(rows)
    return np.sum((0.5 * (Hm + Hm.T)) ** 2)


def test_perturbed_gradient_variance_is_s2_hessian_frobenius_at_small_s(runs):
    # Var_ζ ∇L(W + ζ) = s² ‖∇²L‖_F² + O(s⁴) (odd terms vanish): at s = 1e-3 the bias is ~1e-5
    # relative, far below the Monte-Carlo error; both engines, each within 4 standard errors
    cfg, dg, dw, prob = runs
    W = _hessian_fro2(_weights(dg, prob), prob, cfg.model.q, cfg.model.readout_scale)
    s = 1e-3
    for ds in (dg, dw):
        v = probe.perturbed_grad_variance(ds, s, draws=600, seed=1)
        assert abs(float(v.variance) - s * s * W) < 4 * float(v.variance_se)
        assert float(v.variance_se) < 0.1 * s * s * W
    # s = 0 is GD: no variance, the mean is the gradient
    v0 = probe.perturbed_grad_variance(dg, 0.0, draws=4)
    assert float(v0.variance) == 0.0
    np.testing.assert_array_equal(v0.mean_beta, probe.mean_step(dg).mean_beta)


def test_msgd_noise_mean_and_covariance_match_the_formula(runs):
    # msgd cov: E u = g, Tr Cov u = (s²/n) (1/n) Σ_i ‖g_i − g‖² (SPEC §4); g_i from the naive loop
    cfg, dg, _, prob = runs
    W = _weights(dg, prob)
    a, n, s = cfg.model.readout_scale, cfg.data.n, 0.8
    gs = np.array([g for g, _ in naive.example_grads(W, prob.b0, prob, cfg.model.q, a)])
    g = gs.mean(axis=0)
    expect = s * s / n * np.mean(np.sum((gs - g) ** 2, axis=(1, 2, 3)))
    r = probe.mean_step(dg, {"name": "msgd", "kind": "cov", "s": s}, draws=800, seed=2)
    assert abs(float(r.variance) - expect) < 4 * float(r.variance_se)
    V = np.vstack([prob.mu, prob.xi])
    # the mean: every β entry within 4.5 standard errors of g's coefficients (exactly g's
    # where no mask reaches it: inactive patches, se = 0)
    coef = np.linalg.lstsq(V.T, g.reshape(2 * cfg.model.m, -1).T, rcond=None)[0].T
    diff = r.mean_beta.values - coef.reshape(r.mean_beta.shape)
    se = r.se_beta.values
    assert np.all(np.abs(diff) <= 4.5 * se + 1e-10 * np.abs(coef).max())
    assert (se > 0).sum() > se.size // 4


def test_probe_is_reproducible_and_rejects_bad_input(runs):
    cfg, dg, _, _ = runs
    a = probe.perturbed_grad_variance(dg, 0.1, draws=8, seed=3)
    b = probe.perturbed_grad_variance(dg, 0.1, draws=8, seed=3)
    assert float(a.variance) == float(b.variance)
    with pytest.raises(sn.ConfigError, match="draws = 0"):
        probe.mean_step(dg, {"name": "sgd", "b": 2}, draws=0)
    with pytest.raises(sn.ConfigError, match="s = -1"):
        probe.perturbed_grad_variance(dg, -1.0)
    with pytest.raises(sn.ConfigError, match="algorithm.name = 'pgd'"):
        probe.mean_step(dg, {"name": "pgd", "s": 0.1})
    batch = sn.simulate_batch([cfg, cfg], [0, 1], quiet=True)
    with pytest.raises(sn.ConfigError, match="source"):
        probe.mean_step(batch)
    # a batch run selected, and a config (the initial state), are probed too
    one = probe.mean_step(batch.isel(run=0))
    np.testing.assert_allclose(one.mean_beta, probe.mean_step(dg).mean_beta, rtol=1e-12)
    assert probe.iterate(cfg).t == 0
