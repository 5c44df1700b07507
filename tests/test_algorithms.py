"""The shared test table over every algorithm of SPEC §4 (issue: algorithms).

Each row: the algorithm's parameters at strength 0 (must be GD bit for bit) and at a working
strength. The tests below run over the table; adding an algorithm means adding a row.
"""

import numpy as np
import pytest

import signoise as sn
from signoise import algorithms as A
from signoise.engines import gram, weights
from signoise.algorithms import run_record

from . import naive
from .conftest import make_cfg

N = 6
TABLE = {
    #  name: (strength 0, active)
    "sgd": ({"b": N}, {"b": 3}),
    "msgd": ({"kind": "fisher", "s": 0.0}, {"kind": "fisher", "s": 0.5}),
    "label_noise_gd": ({"p_step": 0.0}, {"p_step": 0.2}),
    "gr": ({"lam": 0.0}, {"lam": 0.01}),
    "pegr": ({"lam": 0.0}, {"lam": 0.003}),
    "fdgr": ({"lam": 0.0, "eps": 0.01}, {"lam": 0.05, "eps": 0.01, "scheme": "central"}),
    "sam": ({"rho": 0.0}, {"rho": 0.05}),
    "usam": ({"rho": 0.0}, {"rho": 0.05}),
    "flooding": ({"level": 0.0}, {"level": 0.3}),
    "clip": ({"max_norm": 1e300}, {"max_norm": 0.05}),
    "noisy_eval": ({"s": 0.0}, {"s": 0.05, "layerwise": True}),
    "anti_pgd": ({"s": 0.0}, {"s": 0.05}),
    "pgd": ({"s": 0.0}, {"s": 0.01}),
    "grad_noise": ({"s": 0.0}, {"s": 0.01}),
    "lpg": ({"alpha_pos": 0.0, "alpha_neg": 0.0}, {"alpha_pos": 0.5, "alpha_neg": -0.3, "adapt": 0.5}),
}
EXTRA_ZERO = [("msgd", {"kind": "bernoulli", "keep": 1.0}), ("msgd", {"kind": "cov", "s": 0.0}),
              ("fdgr", {"lam": 0.0, "eps": 0.1, "scheme": "backward"}),
              ("fdgr", {"lam": 0.0, "eps": 0.1, "scheme": "central"}),
              ("noisy_eval", {"s": 0.0, "layerwise": True})]


def test_table_covers_every_algorithm():
    assert set(TABLE) | {"gd"} == set(A.ALGORITHMS)


def cfg_for(name, params, **changes):
    base = dict(data__n=N, data__d=30, data__flip=0.2, model__m=2, train__steps=100,
                train__record_every=25, train__lr=0.1)
    base.update(changes)
    cfg = make_cfg(**base)
    return cfg.updated({"algorithm.name": name, **{f"algorithm.{k}": v for k, v in params.items()}})


def engines_for(name):
    return ("gram", "weights") if A.ALGORITHMS[name].in_span else ("weights",)


def assert_same_run(a, b):
    for var in ("gamma", "rho", "train_loss", "test_loss", "grad_sq", "hessian_trace"):
        np.testing.assert_array_equal(a[var].values, b[var].values, err_msg=var)


# (a) strength 0 ≡ GD, bit for bit ------------------------------------------------------------
@pytest.mark.parametrize("name,params", [(k, v[0]) for k, v in TABLE.items()] + EXTRA_ZERO)
def test_strength_zero_is_gd_bit_for_bit(name, params):
    for engine in engines_for(name):
        gd = sn.simulate(cfg_for("gd", {}), engine=engine, quiet=True)
        other = sn.simulate(cfg_for(name, params), engine=engine, quiet=True)
        assert_same_run(gd, other)


# (b) deterministic algorithms: gram ≡ weights ---------------------------------------------------
DETERMINISTIC = [(k, v[1]) for k, v in TABLE.items() if not A.ALGORITHMS[k].stochastic] + [
    ("fdgr", {"lam": 0.05, "eps": 0.01, "scheme": "forward"}),
    ("fdgr", {"lam": 0.05, "eps": 0.01, "scheme": "backward"})]


@pytest.mark.parametrize("name,params", DETERMINISTIC)
@pytest.mark.parametrize("bias", [False, True])
def test_gram_equals_weights(name, params, bias):
    cfg = cfg_for(name, params, model__bias=bias)
    prob = sn.sample_problem(cfg)
    a = sn.simulate(cfg, engine="gram", problem=prob, quiet=True)
    b = sn.simulate(cfg, engine="weights", problem=prob, quiet=True)
    gd = sn.simulate(cfg_for("gd", {}, model__bias=bias), problem=prob, quiet=True)
    assert not np.allclose(a.rho, gd.rho), "the algorithm must differ from GD here"
    # measured: ≤ 3e-15 for every rule; flooding flips between descent and ascent where L_S
    # crosses its level, so a last-bit difference at a crossing grows (measured 6e-10, with bias)
    tol = 1e-8 if name == "flooding" else 1e-12
    for var in ("gamma", "rho", "train_loss", "test_loss", "grad_sq", "example_grad_sq",
                "grad_var_signal", "hessian_trace"):
        scale = max(float(np.abs(b[var]).max()), 1e-300)
        assert float(np.abs(a[var] - b[var]).max()) / scale <= tol, var
    assert float(b.residual_norm.max()) < 1e-9


# (c) GR and PEGR against central finite differences of their objectives -----------------------
@pytest.mark.parametrize("name,objective", [("gr", naive.gr_objective), ("pegr", naive.pegr_objective)])
@pytest.mark.parametrize("q,bias", [(3.0, False), (2.0, True)])
def test_regularised_step_is_finite_difference_gradient(name, objective, q, bias):
    lam = 0.7
    cfg = cfg_for(name, {"lam": lam}, data__n=4, data__d=8, data__flip=0.25, model__q=q,
                  model__bias=bias, model__sigma0=0.6)
    prob = sn.sample_problem(cfg)
    prob.b0 = np.array([[0.2, -0.1], [0.15, 0.05]]) if bias else prob.b0
    assert np.any(prob.y != prob.y_true)
    m, d = cfg.model.m, cfg.data.d
    runner = weights.Runner(weights.prepare(prob), run_record(cfg), None)
    runner.advance(1)
    step = np.concatenate([(runner.state[0] - prob.w0).ravel(), (runner.state[1] - prob.b0).ravel()])

    def obj(flat):
        return objective(flat[:2 * m * d].reshape(2, m, d), flat[2 * m * d:].reshape(2, m), prob,
                         q, cfg.model.readout_scale, lam, bias)
    flat = np.concatenate([prob.w0.ravel(), prob.b0.ravel()])
    h = 1e-5
    fd = np.array([(obj(flat + h * e) - obj(flat - h * e)) / (2 * h) for e in np.eye(flat.size)])
    if not bias:
        fd[2 * m * d:] = 0.0
    np.testing.assert_allclose(step, -cfg.train.lr * fd, rtol=1e-6, atol=1e-9 * np.abs(fd).max())
    # and the regulariser really acts (the step differs from GD's)
    gW, _ = naive.grad(prob.w0, prob.b0, prob, q, cfg.model.readout_scale)
    assert np.abs(step[:2 * m * d] + cfg.train.lr * gW.ravel()).max() > 1e-6


# (d) identities of SPEC §6 ---------------------------------------------------------------------
def first_step(name, params, engine="weights", **changes):
    cfg = cfg_for(name, params, **changes)
    E = weights if engine == "weights" else gram
    runner = E.Runner(E.prepare(sn.sample_problem(cfg)), run_record(cfg), None)
    before = np.concatenate([np.ravel(x).copy() for x in runner.state])
    runner.advance(1)
    return np.concatenate([np.ravel(x) for x in runner.state]) - before


def test_forward_fdgr_with_lam_equal_eps_is_usam():
    for eps in (0.01, 0.3):
        a = sn.simulate(cfg_for("fdgr", {"lam": eps, "eps": eps, "scheme": "forward"}), quiet=True)
        b = sn.simulate(cfg_for("usam", {"rho": eps}), quiet=True)
        assert_same_run(a, b)


@pytest.mark.parametrize("scheme,order", [("forward", 1), ("backward", 1), ("central", 2)])
def test_fdgr_converges_to_gr_at_its_order(scheme, order):
    lam = 0.05
    exact = first_step("gr", {"lam": lam}, model__sigma0=0.5)
    gd = first_step("gd", {}, model__sigma0=0.5)
    errs = [np.abs(first_step("fdgr", {"lam": lam, "eps": e, "scheme": scheme}, model__sigma0=0.5)
                   - exact).max() for e in (1e-3, 5e-4, 2.5e-4)]
    assert errs[0] < 0.05 * np.abs(exact - gd).max()
    for big, small in zip(errs, errs[1:]):
        assert 2 ** order * 0.8 < big / small < 2 ** order * 1.25


def test_sam_tends_to_gd_linearly():
    gd = first_step("gd", {}, model__sigma0=0.5)
    errs = [np.abs(first_step("sam", {"rho": r}, model__sigma0=0.5) - gd).max() for r in (1e-3, 5e-4)]
    assert errs[0] > 0 and 1.6 < errs[0] / errs[1] < 2.4


def test_flooding_ascends_below_the_level():
    gd = first_step("gd", {})
    flood = first_step("flooding", {"level": 10.0})      # the loss starts below 10
    np.testing.assert_allclose(flood, -gd, rtol=1e-12, atol=1e-15)


def test_clip_rescales_to_max_norm():
    cfg = cfg_for("gd", {})
    gd = first_step("gd", {})
    norm = np.linalg.norm(gd) / cfg.train.lr            # ‖g‖ (no bias)
    clipped = first_step("clip", {"max_norm": 0.5 * norm})
    np.testing.assert_allclose(clipped, 0.5 * gd, rtol=1e-12)


def test_lpg_fixed_alpha_is_weighted_gd():
    cfg = cfg_for("lpg", {"alpha_pos": 0.5, "alpha_neg": -0.3})
    prob = sn.sample_problem(cfg)
    omega = np.where(prob.y > 0, 1.5, 0.7) / N
    gW, _ = naive.grad(prob.w0, prob.b0, prob, cfg.model.q, cfg.model.readout_scale, omega=omega)
    step = first_step("lpg", {"alpha_pos": 0.5, "alpha_neg": -0.3})
    np.testing.assert_allclose(step, np.r_[-cfg.train.lr * gW.ravel(), np.zeros(4)], rtol=1e-9,
                               atol=1e-14)


# (e) stochastic algorithms: given their random inputs, and in distribution ---------------------
def kernel_step(cfg, prob, omega=None, ysign=None, eps=None):
    """One weights-engine step with explicit random inputs; returns ΔW (flattened)."""
    prm = run_record(cfg)[0]
    n, m, d = cfg.data.n, cfg.model.m, cfg.data.d
    inp = weights.prepare(prob)
    K = inp.X @ inp.X.T
    W, b = prob.w0.copy(), prob.b0.copy()
    as_rows = lambda x, shape: np.empty((0,) + shape) if x is None else x[None]  # noqa: E731
    ro = np.full((2, m), prm["a"])
    weights.advance(inp.X, K, inp.y, W, b, ro, prm, 1, as_rows(omega, (n,)), as_rows(ysign, (n,)),
                    as_rows(eps, (2, m, d + 1)))
    return (W - prob.w0).ravel()


def test_given_random_inputs_each_rule_is_its_gradient():
    cfg = cfg_for("gd", {})
    prob = sn.sample_problem(cfg)
    q, a, lr = cfg.model.q, cfg.model.readout_scale, cfg.train.lr
    rng = np.random.default_rng(0)
    omega = rng.random(N)                                # sgd / msgd: example weights
    gW, _ = naive.grad(prob.w0, prob.b0, prob, q, a, omega=omega)
    np.testing.assert_allclose(kernel_step(cfg.updated({"algorithm.name": "sgd"}), prob, omega=omega),
                               -lr * gW.ravel(), rtol=1e-10)
    ysign = np.array([1, -1, 1, 1, -1, 1.0])             # label_noise_gd: flipped labels
    gW, _ = naive.grad(prob.w0, prob.b0, prob, q, a, y=prob.y * ysign)
    np.testing.assert_allclose(kernel_step(cfg.updated({"algorithm.name": "label_noise_gd"}), prob,
                                           ysign=ysign), -lr * gW.ravel(), rtol=1e-10)
    zeta = 0.3 * rng.standard_normal((2, 2, cfg.data.d + 1))   # noisy_eval: ∇L(W + ζ)
    gW, _ = naive.grad(prob.w0 + zeta[..., :-1], prob.b0, prob, q, a)
    np.testing.assert_allclose(kernel_step(cfg.updated({"algorithm.name": "noisy_eval"}), prob,
                                           eps=zeta), -lr * gW.ravel(), rtol=1e-10)


def test_msgd_step_is_unbiased_with_the_stated_covariance():
    """Monte Carlo over 4000 masks: mean within 5 standard errors of the GD step; covariance
    within 15% (Frobenius) of η² (s²/n) F̂ (fisher) and η² (s²/n) Σ̂ (cov) (SPEC §4)."""
    draws = 4000
    for kind in ("fisher", "cov"):
        cfg = cfg_for("msgd", {"kind": kind, "s": 0.8}, model__sigma0=0.5)
        prob = sn.sample_problem(cfg)
        params = run_record(cfg)
        rng = np.random.default_rng(1)
        from signoise.draws import draw_inputs
        omegas, _, _ = draw_inputs(params[0], rng, 0, draws, N, 2, 1)
        steps = np.array([kernel_step(cfg, prob, omega=o) for o in omegas])
        lr = cfg.train.lr
        grads = np.array([g[0].ravel() for g in naive.example_grads(prob.w0, prob.b0, prob,
                                                                    cfg.model.q, cfg.model.readout_scale)])
        gd = -lr * grads.mean(axis=0)
        se = steps.std(axis=0) / np.sqrt(draws) + 1e-15
        assert np.max(np.abs(steps.mean(axis=0) - gd) / se) < 5.0
        centred = grads - grads.mean(axis=0) if kind == "cov" else grads
        want = lr ** 2 * 0.8 ** 2 / N * (centred.T @ centred / N)
        got = np.cov(steps.T)
        assert np.linalg.norm(got - want) < 0.15 * np.linalg.norm(want)


def test_noisy_eval_mean_step_is_gd_on_trace_regularised_loss():
    """E_ζ ∇L(W + ζ) = ∇[L + (s²/2) Tr ∇²L] + O(s⁴). Antithetic pairs ±ζ cancel the O(s) part;
    ∇ Tr ∇²L by central differences of the closed-form trace. Tolerance 10% of the O(s²) term."""
    s, draws = 0.02, 3000
    cfg = cfg_for("noisy_eval", {"s": s}, model__sigma0=0.6, data__d=10, data__n=4, model__q=3.0)
    prob = sn.sample_problem(cfg)
    lr, m, d = cfg.train.lr, cfg.model.m, cfg.data.d
    rng = np.random.default_rng(2)
    total = np.zeros(2 * m * d)
    for _ in range(draws):
        zeta = s * rng.standard_normal((2, m, d + 1))
        total += kernel_step(cfg, prob, eps=zeta) + kernel_step(cfg, prob, eps=-zeta)
    mean_step = total / (2 * draws)
    gd = kernel_step(cfg.updated({"algorithm.name": "gd"}), prob)

    def trace(W):
        p2 = sn.Problem(**{**prob.__dict__, "w0": W})
        ds = sn.simulate(cfg.updated({"algorithm.name": "gd", "train.steps": 1,
                                      "train.record_every": 1}), problem=p2, quiet=True)
        return float(ds.hessian_trace[0])
    h = 1e-5
    flat = prob.w0.ravel()
    grad_tr = np.array([(trace((flat + h * e).reshape(prob.w0.shape)) -
                         trace((flat - h * e).reshape(prob.w0.shape))) / (2 * h)
                        for e in np.eye(flat.size)])
    expected = -lr * 0.5 * s ** 2 * grad_tr
    assert np.linalg.norm(mean_step - gd - expected) < 0.1 * np.linalg.norm(expected)


def test_hessian_trace_matches_finite_differences():
    cfg = cfg_for("gd", {}, data__n=4, data__d=8, model__sigma0=0.6, model__bias=True)
    prob = sn.sample_problem(cfg)
    prob.b0 = np.array([[0.2, -0.1], [0.15, 0.05]])
    m, d, q, a = cfg.model.m, cfg.data.d, cfg.model.q, cfg.model.readout_scale
    flat = np.concatenate([prob.w0.ravel(), prob.b0.ravel()])
    L = lambda x: naive.train_loss(x[:2 * m * d].reshape(2, m, d), x[2 * m * d:].reshape(2, m),  # noqa: E731
                                   prob, q, a)
    h = 1e-4
    tr = sum((L(flat + h * e) - 2 * L(flat) + L(flat - h * e)) / h ** 2 for e in np.eye(flat.size))
    ds = sn.simulate(cfg.updated({"train.steps": 1, "train.record_every": 1}), problem=prob, quiet=True)
    assert float(ds.hessian_trace[0]) == pytest.approx(tr, rel=1e-5)
    grads = naive.example_grads(prob.w0, prob.b0, prob, q, a)
    gi = np.array([np.concatenate([g.ravel(), gb.ravel()]) for g, gb in grads])
    g = gi.mean(axis=0)
    assert float(ds.grad_sq[0]) == pytest.approx(g @ g, rel=1e-10)
    assert float(ds.example_grad_sq[0]) == pytest.approx(np.mean(np.sum(gi ** 2, axis=1)), rel=1e-10)
    along_mu = (gi[:, :2 * m * d].reshape(-1, 2, m, d) @ prob.mu) / np.linalg.norm(prob.mu)
    signal = np.mean(np.sum((along_mu - along_mu.mean(axis=0)) ** 2, axis=(1, 2)))
    assert float(ds.grad_var_signal[0]) == pytest.approx(signal, rel=1e-8)
    assert float(ds.grad_var[0]) == pytest.approx(np.mean(np.sum((gi - g) ** 2, axis=1)), rel=1e-8)


def test_gram_noise_has_covariance_s2_times_patch_gram():
    """⟨ζ, x_i^(p)⟩ drawn in coefficient space must be N(0, s² K): 20000 draws, 5% tolerance."""
    cfg = cfg_for("noisy_eval", {"s": 0.5}, data__noise="isotropic")
    inp = gram.prepare(sn.sample_problem(cfg))
    F = gram.noise_factor(inp.G)
    K = np.empty((2 * N, 2 * N))
    gram.patch_gram(inp.G, inp.y_true, False, K)
    rng = np.random.default_rng(3)
    samples = []
    dHn = np.empty((2, 2, N, 2))
    for _ in range(20000):
        gram.noise_preacts(0.5 * rng.standard_normal((2, 2, N + 2)), F, inp.y_true, False, dHn)
        samples.append(dHn[0, 0].ravel().copy())
    cov = np.cov(np.array(samples).T)
    assert np.linalg.norm(cov - 0.25 * K) < 0.05 * np.linalg.norm(0.25 * K)


# (f) reproducibility and pairing -----------------------------------------------------------------
@pytest.mark.parametrize("name", [k for k in TABLE if A.ALGORITHMS[k].stochastic])
def test_stochastic_runs_reproducible_and_independent_of_chunking(name):
    engine = engines_for(name)[0]
    cfg = cfg_for(name, TABLE[name][1], train__steps=40, train__record_every=20)
    a = sn.simulate(cfg, engine=engine, quiet=True)
    b = sn.simulate(cfg, engine=engine, quiet=True)
    c = sn.simulate(cfg.updated({"train.record_every": 4}), engine=engine, quiet=True)
    assert_same_run(a, b)
    assert_same_run(a, c.sel(step=a.step))
    gd = sn.simulate(cfg_for("gd", {}, train__steps=40, train__record_every=20), engine=engine,
                     quiet=True)
    assert float(a.train_loss[0]) == float(gd.train_loss[0])   # same data and init as gd
    assert not np.array_equal(a.rho.values, gd.rho.values)
    d = sn.simulate(cfg.updated({"seed": cfg.seed + 1}), engine=engine, quiet=True)
    assert not np.array_equal(a.rho.values[-1], d.rho.values[-1])


def test_out_of_span_algorithms_leave_the_span_and_gram_refuses_them():
    for name in ("pgd", "grad_noise"):
        cfg = cfg_for(name, TABLE[name][1])
        ds = sn.simulate(cfg, engine="weights", quiet=True)
        assert float(ds.residual_norm[-1].min()) > 0.0
        with pytest.raises(ValueError, match="engine='weights'"):
            sn.simulate(cfg, engine="gram", quiet=True)


# (g) bad parameters ------------------------------------------------------------------------------
BAD = [("gr", {"lam": -0.1}, "algorithm.lam"), ("pegr", {"lam": float("nan")}, "algorithm.lam"),
       ("fdgr", {"eps": 0.0}, "algorithm.eps"), ("fdgr", {"scheme": "upwind"}, "algorithm.scheme"),
       ("sam", {"rho": -1.0}, "algorithm.rho"), ("sgd", {"b": N + 1}, "algorithm.b"),
       ("sgd", {"b": 0}, "algorithm.b"), ("msgd", {"kind": "gauss"}, "algorithm.kind"),
       ("msgd", {"keep": 0.0}, "algorithm.keep"), ("label_noise_gd", {"p_step": 0.5}, "algorithm.p_step"),
       ("clip", {"max_norm": 0.0}, "algorithm.max_norm"), ("flooding", {"level": -1.0}, "algorithm.level"),
       ("noisy_eval", {"layerwise": 1}, "algorithm.layerwise"), ("noisy_eval", {"s": -0.1}, "algorithm.s"),
       ("lpg", {"alpha_pos": -1.0}, "algorithm.alpha_pos"), ("gd", {"lam": 0.1}, "algorithm.lam"),
       ("sam", {"lam": 0.1}, "algorithm.lam")]


@pytest.mark.parametrize("name,params,key", BAD, ids=[f"{n}-{k}" for n, _, k in BAD])
def test_bad_parameters_rejected_with_their_key(name, params, key):
    with pytest.raises((ValueError, TypeError), match=key.replace(".", r"\.")):
        cfg_for(name, params)


def test_switching_algorithm_drops_parameters_it_does_not_take():
    cfg = cfg_for("pegr", {"lam": 0.1}).updated({"algorithm.name": "sam", "algorithm.rho": 0.1})
    assert cfg.algorithm.params == {"rho": 0.1}


def test_signal_variance_is_centred_when_every_example_pushes_alike():
    """One class and tiny noise: every example's gradient along μ is nearly the same, so
    E a² − (E a)² cancels to 0 (here: 0.0 against 3.7e-21). The two-pass variance matches the
    explicit per-example gradients (to the 1e-5 their own rounding allows) and stays > 0."""
    cfg = cfg_for("gd", {}, data__flip=0.0, data__mu_norm=3.0, data__sigma_p=1e-4,
                  model__sigma0=0.5, train__steps=1, train__record_every=1)
    prob = sn.sample_problem(cfg)
    one_class = sn.Problem(**{**prob.__dict__, "y": np.ones(N), "y_true": np.ones(N)})
    ds = sn.simulate(cfg, problem=one_class, engine="weights", quiet=True)
    grads = naive.example_grads(one_class.w0, one_class.b0, one_class, cfg.model.q,
                                cfg.model.readout_scale)
    along = np.array([g.reshape(2, -1, cfg.data.d) @ one_class.mu for g, _ in grads])
    along /= np.linalg.norm(one_class.mu)
    want = np.mean(np.sum((along - along.mean(axis=0)) ** 2, axis=(1, 2)))
    assert np.sum(np.mean(along, axis=0) ** 2) > 1e20 * want      # the cancelling regime
    got = float(ds.grad_var_signal[0])
    assert got > 0.0 and got == pytest.approx(want, rel=1e-4)


def test_flat_loops_refuse_non_contiguous_arrays():
    from signoise.preacts import lincomb
    x = np.ones((4, 4))
    with pytest.raises(AssertionError, match="C-contiguous"):
        lincomb(x[:, ::2], 1.0, x[:, ::2], 1.0, x[:, ::2])


# Each perturbed rule against a naive gradient at the perturbed point (tests/naive.py), so the
# kernel's evaluation point, radius and combination are each checked independently ----------
def _naive_grad(prob, cfg, W, b):
    """(∇_W L, ∇_b L) flattened, the bias part zero for a model without bias."""
    gW, gb = naive.grad(W, b, prob, cfg.model.q, cfg.model.readout_scale)
    return np.concatenate([gW.ravel(), gb.ravel() if cfg.model.bias else np.zeros(gb.size)])


def _split(flat, prob):
    k = prob.w0.size
    return flat[:k].reshape(prob.w0.shape), flat[k:].reshape(prob.b0.shape)


PERTURBED = [("sam", {"rho": 0.2}), ("usam", {"rho": 0.3}),
             ("fdgr", {"lam": 0.05, "eps": 0.1, "scheme": "forward"}),
             ("fdgr", {"lam": 0.05, "eps": 0.1, "scheme": "backward"}),
             ("fdgr", {"lam": 0.05, "eps": 0.1, "scheme": "central"})]


@pytest.mark.parametrize("name,params", PERTURBED, ids=[f"{n}-{p.get('scheme', '')}" for n, p in PERTURBED])
@pytest.mark.parametrize("bias", [False, True])
def test_perturbed_rules_equal_naive_gradients(name, params, bias):
    changes = dict(model__sigma0=0.5, model__bias=bias)
    cfg = cfg_for(name, params, **changes)
    prob = sn.sample_problem(cfg)
    x0 = np.concatenate([prob.w0.ravel(), prob.b0.ravel()])
    grad = lambda x: _naive_grad(prob, cfg, *_split(x, prob))  # noqa: E731
    g = grad(x0)
    if name == "sam":
        want = grad(x0 + params["rho"] * g / np.linalg.norm(g))
    elif name == "usam":
        want = grad(x0 + params["rho"] * g)
    else:
        lam, eps = params["lam"], params["eps"]
        want = {"forward": (1 - lam / eps) * g + lam / eps * grad(x0 + eps * g),
                "backward": (1 + lam / eps) * g - lam / eps * grad(x0 - eps * g),
                "central": g + lam * (grad(x0 + eps * g) - grad(x0 - eps * g)) / (2 * eps)
                }[params["scheme"]]
    step = first_step(name, params, **changes)
    np.testing.assert_allclose(step, -cfg.train.lr * want, rtol=1e-9, atol=1e-14)
    assert np.abs(step + cfg.train.lr * g).max() > 1e-4       # and it is not the GD step


def test_lpg_adaptive_weights_follow_the_class_losses():
    """α_c(t) = α_c + adapt (L_c/L_S − 1), ω_i = (1 + α_{y_i})/n, at the start."""
    params = {"alpha_pos": 0.2, "alpha_neg": -0.1, "adapt": 0.8}
    cfg = cfg_for("lpg", params, model__sigma0=0.8)
    prob = sn.sample_problem(cfg)
    q, a = cfg.model.q, cfg.model.readout_scale
    losses = np.array([naive.loss_fn(prob.y[i] * naive.network(prob.w0, prob.b0,
                                                                naive.patches(prob, i), q, a))
                       for i in range(N)])
    total = losses.mean()
    alpha = {1.0: params["alpha_pos"] + params["adapt"] * (losses[prob.y > 0].mean() / total - 1),
             -1.0: params["alpha_neg"] + params["adapt"] * (losses[prob.y < 0].mean() / total - 1)}
    assert abs(alpha[1.0] - params["alpha_pos"]) > 1e-3          # adapt really moves α
    omega = np.array([(1 + alpha[y]) / N for y in prob.y])
    gW, _ = naive.grad(prob.w0, prob.b0, prob, q, a, omega=omega)
    np.testing.assert_allclose(first_step("lpg", params, model__sigma0=0.8),
                               np.r_[-cfg.train.lr * gW.ravel(), np.zeros(4)], rtol=1e-9,
                               atol=1e-14)


def test_flooding_above_its_level_is_gd():
    np.testing.assert_array_equal(first_step("flooding", {"level": 0.01}), first_step("gd", {}))


def test_clip_rescales_the_bias_too():
    """With a bias, ‖g‖ counts the bias gradient and the clipped step scales it as well."""
    cfg = cfg_for("gd", {}, model__bias=True, model__sigma0=0.5)
    prob = sn.sample_problem(cfg)
    g = _naive_grad(prob, cfg, prob.w0, prob.b0)
    assert np.abs(g[prob.w0.size:]).max() > 1e-3
    clipped = first_step("clip", {"max_norm": 0.3 * np.linalg.norm(g)}, model__bias=True,
                         model__sigma0=0.5)
    np.testing.assert_allclose(clipped, -cfg.train.lr * 0.3 * g, rtol=1e-9, atol=1e-15)
