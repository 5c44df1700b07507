"""The Wishart sampler (SPEC §3) against explicit sampling: equal in law, checked statistically.

Every statistical check is a two-sample z-score between the two samplers at fixed seeds,
z = (mean_a − mean_b) / sqrt(var_a/N + var_b/N). Under equality in law each z is close to
N(0, 1); we require max |z| < Z_MAX = 5 over all compared statistics (at most ~1600 of them,
so a true null fails with probability < 1600 · 5.7e-7 ≈ 1e-3, and the seeds are fixed, so the
test is deterministic; the values reached are 3.1 and 3.4). A power check shows the same
statistic rejects a one-dimension error in d (the Wishart degrees of freedom) by a wide margin
(|z| = 14.5 and 12.7).
"""

import numpy as np
import pytest

import signoise as sn
from signoise.constraints import ConfigError
from signoise.engines import gram
from signoise.algorithms import run_record
from signoise.diagnostics import METRICS
from signoise.wishart import (bartlett_rows, fresh_test_inputs, population_test_error,
                              sample_gram_inputs, sample_reduced)

from .conftest import make_cfg

Z_MAX = 5.0


def _features(prob):
    """Every inner product the network can use, and the initial biases, as one vector."""
    T = np.vstack([prob.mu, prob.xi, prob.w0.reshape(-1, prob.w0.shape[2])])
    A = T @ T.T
    iu = np.triu_indices(A.shape[0])
    keep = (iu[0] > 0) | (iu[1] > 0)                   # ‖μ‖² is a constant
    return np.concatenate([A[iu][keep], (T @ prob.xi_test.T).ravel(), prob.b0.ravel()])


def _draws(sample, cfg, count, first_seed):
    return np.array([_features(sample(cfg, s)) for s in range(first_seed, first_seed + count)])


def _max_z(a, b):
    """Largest |two-sample z| over the first moments and all products of pairs of features."""
    scale = np.concatenate([a, b]).std(axis=0)
    scale[scale == 0] = 1.0
    a, b = a / scale, b / scale
    stats_a = [a] + [a[:, i:i + 1] * a[:, i:] for i in range(a.shape[1])]
    stats_b = [b] + [b[:, i:i + 1] * b[:, i:] for i in range(b.shape[1])]
    sa, sb = np.hstack(stats_a), np.hstack(stats_b)
    diff = sa.mean(0) - sb.mean(0)
    se = np.sqrt(sa.var(0, ddof=1) / len(sa) + sb.var(0, ddof=1) / len(sb))
    ok = se > 0
    assert np.all(diff[~ok] == 0)                      # constant in both (e.g. projected zeros)
    return float(np.max(np.abs(diff[ok] / se[ok]))), int(ok.sum())


@pytest.mark.parametrize("noise, d, bias", [("projected", 8, False),   # d − 1 = n + 2m exactly
                                            ("isotropic", 10, True)])
def test_gram_moments_match_explicit(noise, d, bias):
    """Means and covariances of all inner products (train, init, test) and biases agree."""
    cfg = make_cfg(data__n=3, data__d=d, data__n_test=2, data__noise=noise, data__flip=0.2,
                   model__m=2, model__sigma0=0.7, model__bias=bias, data__sigma_p=1.3)
    N = 3000
    wish = _draws(sample_reduced, cfg.updated({"data.sampler": "wishart"}), N, 0)
    expl = _draws(sn.sample_problem, cfg, N, 10**6)
    z, count = _max_z(wish, expl)
    assert count > 1000
    assert z < Z_MAX, (z, count)
    # power: one dimension off in the Wishart degrees of freedom is rejected clearly
    off = _draws(sample_reduced, cfg.updated({"data.sampler": "wishart", "data.d": d + 1}),
                 N, 0)
    assert _max_z(off, expl)[0] > 2 * Z_MAX


def test_labels_equal_explicit_and_gram_inputs_shapes():
    cfg = make_cfg(data__flip=0.3)
    w = cfg.updated({"data.sampler": "wishart"})
    a, b = sn.sample_problem(cfg, 5), sample_reduced(w, 5)
    for name in ("y", "y_true", "y_test", "y_true_test"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    inp = sample_gram_inputs(w, 5)
    n, m, nt = cfg.data.n, cfg.model.m, cfg.data.n_test
    assert inp.G.shape == (n + 1, n + 1) and inp.Z0.shape == (2, m, n + 1)
    assert inp.Gt.shape == (n + 1, nt) and inp.Z0t.shape == (2, m, nt)
    assert np.allclose(inp.G[0, 1:], 0.0)                # projected noise: ⟨μ, ξ_i⟩ = 0
    # data rows do not depend on m (the filters come from their own stream)
    c = sample_reduced(w.updated({"model.m": 5}), 5)
    G1, G2 = b.xi @ b.xi.T, c.xi @ c.xi.T
    np.testing.assert_allclose(G1, G2, rtol=1e-14)


def test_bartlett_is_wishart_mean():
    """E[L Lᵀ] = dof · I for the Bartlett factor (χ² diagonal, Gaussian below)."""
    rng = np.random.default_rng(0)
    k, dof, N = 4, 6.0, 4000
    A = np.zeros((k, k))
    A2 = np.zeros((k, k))
    for _ in range(N):
        L = bartlett_rows(rng, dof, 0, k)
        S = L @ L.T
        A += S / N
        A2 += S * S / N
    se = np.sqrt((A2 - A * A) / N)
    # Var of diagonal entries 2·dof, off-diagonal dof
    assert np.max(np.abs(A - dof * np.eye(k)) / se) < Z_MAX
    np.testing.assert_allclose(A2 - A * A, dof * (np.ones((k, k)) + np.eye(k)), rtol=0.15)


def test_large_d_costs_nothing_and_rejects_what_it_cannot_draw():
    cfg = make_cfg(data__sampler="wishart", data__d=10**9, data__mu_norm=3e4,
                   model__sigma0=1e-5, train__steps=20)
    ds = sn.simulate(cfg, quiet=True)
    assert ds.sizes["step"] == 3 and np.isfinite(ds.train_loss).all()
    with pytest.raises(ConfigError, match=r"data\.d = 20 .*d - 1 >= n \+ 2m = 22.*explicit"):
        make_cfg(data__sampler="wishart", data__d=20, data__n=16)
    with pytest.raises(ConfigError, match=r"model\.init = 'uniform'.*explicit"):
        make_cfg(data__sampler="wishart", model__init="uniform")
    with pytest.raises(ConfigError, match=r"engine = 'weights'.*'gram'"):
        sn.simulate(cfg, engine="weights")
    with pytest.raises(ConfigError, match=r"data\.sampler = 'wishart'.*'explicit'"):
        sn.sample_problem(cfg)


def _final(cfg, seeds):
    out = []
    for s in seeds:
        ds = sn.simulate(cfg, seed=s, quiet=True).isel(step=-1)
        out.append([float(ds[v]) for v in ("test_error", "test_loss", "test_error_clean",
                                            "train_loss", "rho_bar_max")]
                   + list(np.asarray(ds.gamma_max).ravel()))
    return np.array(out)


@pytest.mark.parametrize("noise", ["projected", "isotropic"])
def test_trained_run_statistics_match_explicit(noise):
    """After training, test error, losses, γ and ρ have the same law under both samplers."""
    cfg = make_cfg(data__n=6, data__d=30, data__mu_norm=4.0, data__n_test=100,
                   data__flip=0.1, data__noise=noise, model__m=2, model__sigma0=0.1,
                   train__lr=0.05, train__steps=30, train__record_every=30)
    S = 300
    a = _final(cfg.updated({"data.sampler": "wishart"}), range(S))
    b = _final(cfg, range(10**6, 10**6 + S))
    assert 0.05 < a[:, 0].mean() < 0.45                  # an informative regime
    se = np.sqrt(a.var(0, ddof=1) / S + b.var(0, ddof=1) / S)
    z = np.abs(a.mean(0) - b.mean(0)) / se
    assert z.max() < Z_MAX, z
    # spread too: second moments of the test error
    a2, b2 = a[:, 0] ** 2, b[:, 0] ** 2
    assert abs(a2.mean() - b2.mean()) / np.sqrt(a2.var() / S + b2.var() / S) < Z_MAX


def test_population_test_error_matches_a_large_explicit_test_set():
    cfg = make_cfg(data__n=6, data__d=30, data__mu_norm=4.0, data__n_test=40_000,
                   data__flip=0.1, model__m=2, model__sigma0=0.1, train__lr=0.05,
                   train__steps=40, train__record_every=10)
    prob = sn.sample_problem(cfg, 1)
    ds = sn.simulate(cfg, problem=prob, quiet=True)
    pop = population_test_error(prob, ds, cfg, points=40_000, seed=2)
    e = ds.test_error.values
    se = np.sqrt(pop["test_error_se"] ** 2 + e * (1 - e) / cfg.data.n_test)
    assert np.all(np.abs(pop["test_error"] - e) < Z_MAX * se + 1e-12)
    assert np.ptp(e) > 0.02                               # the error moves over training
    # the same function on a Wishart run at d = 10^8 (cost independent of d)
    w = cfg.updated({"data.sampler": "wishart", "data.d": 10**8, "data.n_test": 20_000,
                     "data.mu_norm": 4e3, "model.sigma0": 1e-4})
    dsw = sn.simulate(w, quiet=True)
    reduced = sample_reduced(w)                  # the problem that run used, given back
    assert reduced.d == 1 + 6 + 2 * 2
    again = sn.simulate(w, problem=reduced, quiet=True)
    np.testing.assert_array_equal(again.rho.values, dsw.rho.values)
    popw = population_test_error(reduced, dsw, w, points=20_000)
    ew = dsw.test_error.values                  # 20,000 test points drawn d-free by the sampler
    sew = np.sqrt(popw["test_error_se"] ** 2 + ew * (1 - ew) / w.data.n_test)
    assert np.all(np.abs(popw["test_error"] - ew) < Z_MAX * sew + 1e-12)
    assert np.ptp(ew) > 0.02


@pytest.mark.parametrize("sampler", ["explicit", "wishart"])
def test_fresh_test_inputs_estimate_the_population_error(sampler):
    """Averaged over fresh test sets, the evaluated test error is the population estimate."""
    cfg = make_cfg(data__n=6, data__d=30, data__mu_norm=4.0, data__n_test=500,
                   data__flip=0.1, model__m=2, model__sigma0=0.1, train__lr=0.05,
                   train__steps=20, train__record_every=20, data__sampler=sampler)
    prob = sn.sample_problem(cfg) if sampler == "explicit" else sample_reduced(cfg)
    ds = sn.simulate(cfg, quiet=True)            # draws the same problem again (same seed)
    inp, params = gram.prepare(prob), run_record(cfg)
    beta = np.zeros_like(inp.Z0)               # rebuild the final state from γ, ρ
    sq = inp.sq_norms
    beta[:, :, 0] = np.array([1.0, -1.0])[:, None] * ds.gamma.values[-1] / sq[0]
    beta[:, :, 1:] = ds.rho.values[-1] / sq[1:]
    rng = np.random.default_rng(4)
    errs = []
    for _ in range(40):
        runner = gram.Runner(fresh_test_inputs(prob, inp, cfg, rng), params, rng)
        runner.state = (beta, inp.b0)
        errs.append(runner.evaluate()[METRICS.index("test_error")])
    pop = population_test_error(prob, ds, cfg, points=40_000, seed=5)
    se = np.sqrt(np.var(errs, ddof=1) / len(errs) + pop["test_error_se"][-1] ** 2)
    assert abs(np.mean(errs) - pop["test_error"][-1]) < Z_MAX * se
    assert np.std(errs) > 0                    # the test sets are fresh


def test_simulate_batch_draws_wishart_runs_like_simulate():
    """The batch driver samples each run through the same path: equal numbers, d-free."""
    cfg = make_cfg(data__sampler="wishart", data__d=10**8, data__mu_norm=3e4,
                   model__sigma0=1e-5, train__lr=2e-8, train__steps=20)
    cfgs = [cfg.updated({"data.mu_norm": mu}) for mu in (1e4, 3e4, 1e5)]
    batch = sn.simulate_batch(cfgs, [0, 1, 2], record_rho="full")
    assert float(np.abs(batch.gamma).max()) > 1.0           # the runs learn
    for k, (c, s) in enumerate(zip(cfgs, [0, 1, 2])):
        one = sn.simulate(c, seed=s, quiet=True)
        for name in ("gamma", "rho", "train_loss", "test_error"):
            np.testing.assert_allclose(batch[name].isel(run=k).values, one[name].values,
                                       rtol=1e-12, atol=0)
