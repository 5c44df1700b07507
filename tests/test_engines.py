"""The core simulator against its oracles: the other engine, finite differences, naive loops,
and the GD invariants of SPEC §6."""


import numpy as np
import pytest
from scipy.special import expit

import signoise as sn
from signoise.engines import gram, weights
from signoise.algorithms import run_record
from signoise.activation import logistic
from . import naive
from .conftest import make_cfg


def rel_diff(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.mark.parametrize("q", [1.0, 2.0, 3.0])
@pytest.mark.parametrize("flip", [0.0, 0.2])
@pytest.mark.parametrize("noise", ["projected", "isotropic"])
def test_gram_equals_weights(q, flip, noise):
    cfg = make_cfg(model__q=q, data__flip=flip, data__noise=noise, train__steps=200,
                   train__record_every=20, train__lr=0.3 if q > 1 else 0.1)
    prob = sn.sample_problem(cfg)
    a = sn.simulate(cfg, engine="gram", problem=prob, quiet=True)
    b = sn.simulate(cfg, engine="weights", problem=prob, quiet=True)
    assert a.sizes["step"] == 11
    assert float(np.abs(a.gamma).max()) > 0.1 and float(np.abs(a.rho).max()) > 0.1  # it moved
    for name in ("gamma", "rho", "train_loss", "test_loss", "margin_min", "margin_max"):
        assert rel_diff(a[name], b[name]) <= 1e-12, name      # measured ≤ 5.1e-15
    for name in ("train_error", "test_error", "test_error_clean"):
        np.testing.assert_array_equal(a[name], b[name])
    assert float(b.residual_norm.max()) < 1e-10   # GD stays in span{μ, ξ_i}


def test_gram_equals_weights_paper_code_model():
    """Bias, uniform init, sum over filters, mean over patches, isotropic ReLU (SPEC §7)."""
    cfg = make_cfg(model__q=1.0, model__bias=True, model__init="uniform",
                   model__filter_pool="sum", model__patch_pool="mean", data__noise="isotropic",
                   data__flip=0.1, train__lr=0.1, train__steps=200, train__record_every=50)
    prob = sn.sample_problem(cfg)
    assert np.any(prob.b0 != 0)
    a = sn.simulate(cfg, engine="gram", problem=prob, quiet=True)
    b = sn.simulate(cfg, engine="weights", problem=prob, quiet=True)
    for name in ("gamma", "rho", "train_loss", "test_loss"):
        assert rel_diff(a[name], b[name]) <= 1e-12, name


def _loss_of_flat(cfg, prob, flat):
    m, d = cfg.model.m, cfg.data.d
    W = flat[: 2 * m * d].reshape(2, m, d)
    b = flat[2 * m * d:].reshape(2, m)
    return naive.train_loss(W, b, prob, cfg.model.q, cfg.model.readout_scale)


@pytest.mark.parametrize("q,bias", [(3.0, False), (2.0, True), (1.0, False)])
def test_gd_step_is_minus_lr_times_finite_difference_gradient(q, bias):
    cfg = make_cfg(model__q=q, model__bias=bias, model__sigma0=0.5, data__flip=0.25,
                   data__n=5, data__d=12, model__m=2)
    prob = sn.sample_problem(cfg)
    prob.b0 = 0.1 * np.arange(4.0).reshape(2, 2)
    for E in (weights, gram):
        runner = E.Runner(E.prepare(prob), run_record(cfg), None)
        runner.advance(1)
        if E is weights:
            W1, b1 = runner.state
        else:  # map β back to weights: W = W0 + β V
            V = np.vstack([prob.mu, prob.xi])
            W1 = prob.w0 + np.einsum("jra,ad->jrd", runner.state[0], V)
            b1 = runner.state[1]
        flat = np.concatenate([prob.w0.ravel(), prob.b0.ravel()])
        h = 1e-6
        grad = np.zeros_like(flat)
        for k in range(flat.size):
            e = np.zeros_like(flat)
            e[k] = h
            grad[k] = (_loss_of_flat(cfg, prob, flat + e) - _loss_of_flat(cfg, prob, flat - e)) / (2 * h)
        step = np.concatenate([(W1 - prob.w0).ravel(), (b1 - prob.b0).ravel()])
        if not bias:
            grad[2 * cfg.model.m * cfg.data.d:] = 0.0
        np.testing.assert_allclose(step, -cfg.train.lr * grad, rtol=1e-6, atol=1e-10)


def test_naive_loop_agrees():
    cfg = make_cfg(data__n=4, data__d=10, model__m=2, data__flip=0.25, train__steps=20,
                   train__record_every=20, model__bias=True, data__noise="isotropic")
    prob = sn.sample_problem(cfg)
    prob.b0 = np.array([[0.05, -0.02], [0.01, 0.03]])
    W, b = naive.gd(prob, cfg.model.q, cfg.model.readout_scale, cfg.train.lr, 20, use_bias=True)
    gamma, rho = naive.decompose(W, prob)
    for engine in ("gram", "weights"):
        ds = sn.simulate(cfg, engine=engine, problem=prob, quiet=True)
        np.testing.assert_allclose(ds.gamma.isel(step=-1), gamma, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(ds.rho.isel(step=-1), rho, rtol=1e-9, atol=1e-12)
        assert ds.train_loss.values[-1] == pytest.approx(
            naive.train_loss(W, b, prob, cfg.model.q, cfg.model.readout_scale), rel=1e-10)


@pytest.mark.parametrize("q", [1.0, 3.0])
def test_gd_invariants(q):
    """SPEC §6: γ non-decreasing (clean labels), ρ̄ ≥ 0 non-decreasing, ρ̲ ≤ 0 non-increasing."""
    cfg = make_cfg(model__q=q, data__n=12, train__steps=300, train__record_every=5,
                   train__lr=0.1)
    ds = sn.simulate(cfg, quiet=True)
    own = (ds.y == ds.j)                     # y_i = j
    rho_bar, rho_under = ds.rho.where(own), ds.rho.where(~own)
    assert float(rho_bar.min()) >= 0.0 and float(rho_under.max()) <= 0.0
    assert float(rho_bar.diff("step").min()) >= 0.0
    assert float(rho_under.diff("step").max()) <= 0.0
    assert float(ds.gamma.diff("step").min()) >= 0.0
    assert float(ds.rho_bar_max[-1]) > 0.0 and float(ds.rho_under_min[-1]) < 0.0


def test_label_flips_push_gamma_down():
    """With flipped labels, a flipped example's gradient lowers γ (SPEC §3)."""
    cfg = make_cfg(data__flip=0.4, data__n=10, model__q=1.0, train__steps=1, train__record_every=1)
    prob = sn.sample_problem(cfg)
    flipped = prob.y != prob.y_true
    assert flipped.any() and (~flipped).any()
    prob_all_flipped = sn.Problem(**{**prob.__dict__, "y": -prob.y_true})
    ds = sn.simulate(cfg, problem=prob_all_flipped, quiet=True)
    assert float(ds.gamma.diff("step").max()) <= 0.0 and float(ds.gamma.diff("step").min()) < 0.0


@pytest.mark.parametrize("z", [-500.0, -50.0, -3.0, 0.0, 3.0, 50.0, 500.0])
def test_logistic_exact_at_any_margin(z):
    loss, d1, d2 = logistic(z)
    assert loss == pytest.approx(np.logaddexp(0.0, -z), rel=1e-14)
    assert d1 == pytest.approx(-expit(-z), rel=1e-14)
    assert d2 == pytest.approx(expit(z) * expit(-z), rel=1e-14)
    assert d2 > 0.0


def test_diverging_run_is_marked_not_raised():
    cfg = make_cfg(train__lr=1e6, model__sigma0=3.0, train__steps=200)
    ds = sn.simulate(cfg, quiet=True)
    assert bool(ds.diverged) and ds.attrs["status"] == "diverged"
    assert int(ds.stopped_at) < 200
    assert np.isnan(ds.test_error.sel(step=slice(int(ds.stopped_at), None))).all()


def test_loss_threshold_stops_early():
    cfg = make_cfg(train__loss_threshold=0.05, train__steps=5000, train__record_every=7,
                   train__lr=0.02)
    ds = sn.simulate(cfg, quiet=True)
    assert ds.attrs["status"] == "converged" and not bool(ds.diverged)
    stop = int(ds.stopped_at)
    assert 7 < stop < 5000 and float(ds.train_loss[-1]) < 0.05
    full = sn.simulate(cfg.updated({"train.loss_threshold": None, "train.steps": stop,
                                    "train.record_every": 1}), quiet=True)
    assert float(full.train_loss[-1]) == float(ds.train_loss[-1])     # same trajectory
    before = sn.simulate(cfg.updated({"train.loss_threshold": None, "train.steps": stop - 1,
                                      "train.record_every": 1}), quiet=True)
    assert float(before.train_loss[-1]) >= 0.05                       # stopped at the first


def test_same_seed_same_data_and_init_other_streams_independent():
    cfg = make_cfg()
    a = sn.sample_problem(cfg, seed=5)
    b = sn.sample_problem(cfg.updated({"data.n_test": 7, "train.lr": 0.01}), seed=5)
    np.testing.assert_array_equal(a.xi, b.xi)
    np.testing.assert_array_equal(a.w0, b.w0)
    np.testing.assert_array_equal(a.y, b.y)
    c = sn.sample_problem(cfg, seed=6)
    assert not np.array_equal(a.xi, c.xi)
    d = sn.sample_problem(cfg.updated({"data.n": 9}), seed=5)
    np.testing.assert_array_equal(a.w0, d.w0)          # init does not depend on n


def test_projected_noise_is_orthogonal_and_isotropic_is_not():
    cfg = make_cfg(data__d=200)
    p = sn.sample_problem(cfg)
    assert np.all(p.xi @ p.mu == 0.0) and np.all(p.xi_test @ p.mu == 0.0)
    q = sn.sample_problem(cfg.updated({"data.noise": "isotropic"}))
    assert np.all(q.xi @ q.mu != 0.0)


def test_snr_resolves_mu_norm():
    cfg = make_cfg().updated({"data.snr": 0.5})
    assert cfg.data.mu == pytest.approx(0.5 * np.sqrt(40))
    assert sn.sample_problem(cfg).mu[0] == pytest.approx(cfg.data.mu)


def test_dataset_contract():
    cfg = make_cfg()
    ds = sn.simulate(cfg, quiet=True)
    assert list(ds.j.values) == [1, -1]
    assert ds.gamma.dims == ("step", "j", "r") and ds.rho.dims == ("step", "j", "r", "i")
    assert list(ds.step.values) == [0, 10, 20, 30, 40, 50]
    for name in ("train_loss", "train_error", "test_loss", "test_error", "test_error_clean"):
        assert ds[name].dims == ("step",)
    assert sn.RunConfig.from_dict(__import__("tomllib").loads(ds.attrs["config"])) == cfg
    assert ds.attrs["engine"] == "gram" and ds.attrs["seed"] == cfg.seed
    small_init = sn.simulate(make_cfg(model__sigma0=0.01), quiet=True)
    assert float(small_init.train_loss[0]) == pytest.approx(np.log(2), abs=1e-3)


def test_bad_problem_arrays_are_rejected():
    cfg = make_cfg()
    p = sn.sample_problem(cfg)
    bad = dict(p.__dict__)
    bad["xi"] = p.xi.copy()
    bad["xi"][0, 0] = np.nan
    with pytest.raises(ValueError, match="problem.xi"):
        sn.Problem(**bad)
    with pytest.raises(ValueError, match="problem.w0.shape"):
        sn.Problem(**{**p.__dict__, "w0": p.w0[:, :, :5]})
    with pytest.raises(ValueError, match="problem.y"):
        sn.Problem(**{**p.__dict__, "y": 0.5 * p.y})
    with pytest.raises(ValueError, match="problem.d"):
        sn.simulate(make_cfg(data__d=41), problem=p)
    with pytest.raises(ValueError, match="problem.xi.shape"):
        sn.Problem(**{**p.__dict__, "xi": np.ones((40, 40)), "y": np.ones(40), "y_true": np.ones(40)})
