"""A trained second layer (SPEC §2, issue 13): every rule's step against central finite
differences of its objective over both layers, gram ≡ weights, the fixed readout untouched,
layer-wise noise one layer per step, and the recorded diagnostics over both layers."""

import numpy as np
import pytest

import signoise as sn
from signoise import algorithms as A
from signoise.algorithms import run_record
from signoise.constraints import ConfigError
from signoise.engines import gram, weights

from . import naive
from .conftest import make_cfg

N, M, D = 4, 2, 8


def cfg_for(name="gd", params=None, **changes):
    base = dict(data__n=N, data__d=D, data__flip=0.25, model__m=M, model__sigma0=0.5,
                model__bias=True, model__readout="trainable", model__readout_init="gaussian",
                train__steps=40, train__record_every=10, train__lr=0.1)
    base.update(changes)
    cfg = make_cfg(**base)
    return cfg.updated({"algorithm.name": name,
                        **{f"algorithm.{k}": v for k, v in (params or {}).items()}})


def readout0(cfg):
    return sn.data.initial_readout(cfg.model, cfg.seed)


def split(x):
    """θ = (W (2, m, d), b (2, m), a (2, m)) from a flat vector."""
    k = 2 * M * D
    return x[:k].reshape(2, M, D), x[k:k + 2 * M].reshape(2, M), x[k + 2 * M:].reshape(2, M)


def fd_grad(prob, x, q, omega=None, y=None, h=1e-6):
    """Central finite differences of Σ ω_i ℓ_i over both layers (and the biases)."""
    f = lambda z: naive.weighted_loss_ro(*split(z), prob, q, omega, y)  # noqa: E731
    return np.array([(f(x + h * e) - f(x - h * e)) / (2 * h) for e in np.eye(x.size)])


def kernel_step(cfg, prob, omega=None, ysign=None, zeta=None):
    """One weights-engine step from (w0, b0, a0) with explicit random inputs: Δθ, flat."""
    prm = run_record(cfg)[0]
    inp = weights.prepare(prob)
    K = inp.X @ inp.X.T + 1.0
    W, b, ro = prob.w0.copy(), prob.b0.copy(), readout0(cfg)
    before = np.concatenate([W.ravel(), b.ravel(), ro.ravel()])
    rows = lambda x, shape: np.empty((0,) + shape) if x is None else x[None]  # noqa: E731
    weights.advance(inp.X, K, inp.y, W, b, ro, prm, 1, rows(omega, (N,)), rows(ysign, (N,)),
                    rows(zeta, (2, M, D + 2)))
    return np.concatenate([W.ravel(), b.ravel(), ro.ravel()]) - before


RULES = [("gd", {}), ("sgd", {"b": 2}), ("msgd", {"s": 0.5}), ("label_noise_gd", {"p_step": 0.3}),
         ("sam", {"rho": 0.2}), ("usam", {"rho": 0.3}), ("flooding", {"level": 5.0}),
         ("clip", {"max_norm": 0.01}), ("noisy_eval", {"s": 0.3}), ("anti_pgd", {"s": 0.3}),
         ("pgd", {"s": 0.1}), ("grad_noise", {"s": 0.1}),
         ("fdgr", {"lam": 0.05, "eps": 0.1, "scheme": "forward"}),
         ("fdgr", {"lam": 0.05, "eps": 0.1, "scheme": "backward"}),
         ("fdgr", {"lam": 0.05, "eps": 0.1, "scheme": "central"})]


@pytest.mark.parametrize("name,params", RULES,
                         ids=[f"{n}-{p.get('scheme', '')}" for n, p in RULES])
def test_step_is_minus_lr_times_finite_difference_direction(name, params):
    """Each rule's step over (W, b, a) = −η × its direction built from central finite
    differences of the naive loss (tests/naive.py), at the rule's perturbed points."""
    cfg = cfg_for(name, params)
    prob = sn.sample_problem(cfg)
    q, lr = cfg.model.q, cfg.train.lr
    x0 = np.concatenate([prob.w0.ravel(), prob.b0.ravel(), readout0(cfg).ravel()])
    rng = np.random.default_rng(5)
    omega = ysign = zeta = None
    grad = lambda x, **kw: fd_grad(prob, x, q, **kw)  # noqa: E731
    g = grad(x0)
    if name in ("sgd", "msgd"):
        omega = rng.random(N)
        want = -lr * grad(x0, omega=omega)
    elif name == "label_noise_gd":
        ysign = np.array([1.0, -1.0, -1.0, 1.0])
        want = -lr * grad(x0, y=prob.y * ysign)
    elif name in ("noisy_eval", "anti_pgd", "pgd", "grad_noise"):
        zeta = 0.3 * rng.standard_normal((2, M, D + 2))
        flat = np.concatenate([zeta[..., :D].ravel(), zeta[..., D].ravel(), zeta[..., D + 1].ravel()])
        want = (-lr * grad(x0 + flat) if name in ("noisy_eval", "anti_pgd")
                else -lr * g + flat)     # pgd adds ζ after the step; grad_noise's ζ is drawn as −η s ε
    elif name == "sam":
        want = -lr * grad(x0 + params["rho"] * g / np.linalg.norm(g))
    elif name == "usam":
        want = -lr * grad(x0 + params["rho"] * g)
    elif name == "flooding":      # L_S < level: ascent
        want = lr * g
    elif name == "clip":
        want = -lr * g * params["max_norm"] / np.linalg.norm(g)
    elif name == "fdgr":
        lam, eps = params["lam"], params["eps"]
        want = -lr * {"forward": (1 - lam / eps) * g + lam / eps * grad(x0 + eps * g),
                      "backward": (1 + lam / eps) * g - lam / eps * grad(x0 - eps * g),
                      "central": g + lam * (grad(x0 + eps * g) - grad(x0 - eps * g)) / (2 * eps)
                      }[params["scheme"]]
    else:
        want = -lr * g
    step = kernel_step(cfg, prob, omega, ysign, zeta)
    np.testing.assert_allclose(step, want, rtol=1e-6, atol=1e-8 * np.abs(want).max())
    # the readout really moves, and by its own gradient (not a copy of the filters' step)
    assert np.abs(step[-2 * M:]).max() > 1e-3 * np.abs(step).max()


SAME_DRAWS = [(n, {"rho": 0.05} if n == "usam" else p) for n, p in RULES
              if A.ALGORITHMS[n].in_span and n not in ("noisy_eval", "anti_pgd")]


@pytest.mark.parametrize("name,params", SAME_DRAWS
                         + [("lpg", {"alpha_pos": 0.5, "alpha_neg": -0.3, "adapt": 0.5}),
                            ("gr", {"lam": 0.05}), ("pegr", {"lam": 0.02})])
def test_gram_equals_weights(name, params):
    """Deterministic rules and those whose draws do not depend on the engine (example weights,
    label signs): the two engines agree over 40 steps, readout included."""
    cfg = cfg_for(name, params, data__d=30, data__n=6, model__m=3, model__sigma0=0.3,
                  train__lr=0.02)
    prob = sn.sample_problem(cfg)
    a = sn.simulate(cfg, engine="gram", problem=prob, quiet=True)
    b = sn.simulate(cfg, engine="weights", problem=prob, quiet=True)
    assert float(np.abs(a.readout[-1] - a.readout[0]).max()) > 1e-4
    for var in ("gamma", "rho", "readout", "train_loss", "test_loss", "grad_sq",
                "example_grad_sq", "grad_var_signal", "hessian_trace"):
        scale = max(float(np.abs(b[var]).max()), 1e-300)
        assert float(np.abs(a[var] - b[var]).max()) / scale <= 1e-9, var
    assert float(b.residual_norm.max()) < 1e-9


def test_per_filter_kernels_at_the_constant_readout_equal_the_fixed_model():
    """The per-filter kernels with a_{j,r} ≡ 1/m, not trained, reproduce the fixed readout's
    scalar kernels (to rounding: the sums associate differently)."""
    cfg = cfg_for("sam", {"rho": 0.1}, model__readout="fixed", model__readout_init="constant")
    prob = sn.sample_problem(cfg)
    prm = run_record(cfg)
    assert prm["readout"][0] == A.Readout.SCALAR
    per = prm.copy()
    per["readout"] = A.Readout.PER_FILTER
    inp = gram.prepare(prob)
    runs = [gram.Runner(inp, p, None, np.full((2, M), cfg.model.readout_scale)) for p in (prm, per)]
    for r in runs:
        r.advance(30)
    (b0, c0), (b1, c1) = (r.state for r in runs)
    np.testing.assert_allclose(b1, b0, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(runs[1].evaluate(), runs[0].evaluate(), rtol=1e-10, atol=1e-14)


def test_fixed_random_readout_stays_put_and_engines_agree():
    cfg = cfg_for("gd", model__readout="fixed", model__readout_init="sign")
    prob = sn.sample_problem(cfg)
    a = sn.simulate(cfg, engine="gram", problem=prob, quiet=True)
    b = sn.simulate(cfg, engine="weights", problem=prob, quiet=True)
    assert np.all(a.readout.values == a.readout.values[:1])
    assert set(np.abs(a.readout.values[0]).ravel().round(12)) == {round(1 / np.sqrt(M), 12)}
    np.testing.assert_allclose(a.gamma, b.gamma, rtol=1e-10, atol=1e-14)


def test_readout_init_streams():
    """constant = the readout scale; gaussian/sign from the readout's own stream (data and
    filters unchanged); the fixed default records no readout variable."""
    cfg = cfg_for("gd")
    assert readout0(cfg.updated({"model.readout_init": "constant"})).tolist() == [[0.5, 0.5]] * 2
    g = readout0(cfg)
    assert not np.array_equal(g, readout0(cfg.updated({"seed": 4})))
    p1 = sn.sample_problem(cfg)
    p0 = sn.sample_problem(cfg.updated({"model.readout": "fixed", "model.readout_init": "constant"}))
    np.testing.assert_array_equal(p1.w0, p0.w0)
    np.testing.assert_array_equal(p1.xi, p0.xi)
    ds = sn.simulate(make_cfg(), quiet=True)
    assert "readout" not in ds and "state_readout" not in ds


def test_continuing_a_trained_readout_run_equals_one_run():
    cfg = cfg_for("noisy_eval", {"s": 0.05, "layerwise": True})
    full = sn.simulate(cfg, quiet=True)
    half = sn.simulate(cfg.updated({"train.steps": 20}), quiet=True)
    rest = sn.simulate(cfg, start=half, quiet=True)
    np.testing.assert_array_equal(rest.readout[-1], full.readout[-1])
    np.testing.assert_array_equal(rest.gamma[-1], full.gamma[-1])


def test_layerwise_takes_each_layer_gradient_at_its_own_noise():
    """Independent layer-wise noise (Orvieto et al. 2023): Δ(W, b) = −η ∇_{W,b} L(W + ζ_W,
    b + ζ_b, a), Δa = −η ∇_a L(W, b, a + ζ_a), by finite differences; with the fixed readout
    (one trained layer) layer-wise is all-weights noise, bit for bit."""
    cfg = cfg_for("noisy_eval", {"s": 0.3, "layerwise": True})
    prob = sn.sample_problem(cfg)
    x0 = np.concatenate([prob.w0.ravel(), prob.b0.ravel(), readout0(cfg).ravel()])
    zeta = 0.3 * np.random.default_rng(6).standard_normal((2, M, D + 2))
    zw = np.concatenate([zeta[..., :D].ravel(), zeta[..., D].ravel(), np.zeros(2 * M)])
    za = np.concatenate([np.zeros(2 * M * D + 2 * M), zeta[..., D + 1].ravel()])
    k = 2 * M * D + 2 * M
    gw = fd_grad(prob, x0 + zw, cfg.model.q)[:k]
    ga = fd_grad(prob, x0 + za, cfg.model.q)[k:]
    want = -cfg.train.lr * np.concatenate([gw, ga])
    step = kernel_step(cfg, prob, zeta=zeta)
    np.testing.assert_allclose(step, want, rtol=1e-6, atol=1e-8 * np.abs(want).max())
    all_weights = -cfg.train.lr * fd_grad(prob, x0 + zw + za, cfg.model.q)
    assert np.abs(all_weights - want).max() > 1e-3 * np.abs(want).max()
    fixed = cfg.updated({"model.readout": "fixed", "model.readout_init": "constant"})
    a = sn.simulate(fixed, quiet=True)
    b = sn.simulate(fixed.updated({"algorithm.layerwise": False}), quiet=True)
    np.testing.assert_array_equal(a.gamma, b.gamma)


def test_diagnostics_cover_both_layers():
    """‖∇L‖², (1/n)Σ‖∇ℓ_i‖² and Tr ∇²L over (W, b, a) against finite differences."""
    cfg = cfg_for("gd", train__steps=1, train__record_every=1)
    prob = sn.sample_problem(cfg)
    prob.b0 = np.array([[0.2, -0.1], [0.15, 0.05]])
    q = cfg.model.q
    x0 = np.concatenate([prob.w0.ravel(), prob.b0.ravel(), readout0(cfg).ravel()])
    ds = sn.simulate(cfg, problem=prob, quiet=True)
    g = fd_grad(prob, x0, q)
    assert float(ds.grad_sq[0]) == pytest.approx(g @ g, rel=1e-7)
    gi = np.array([fd_grad(prob, x0, q, omega=np.eye(N)[i]) for i in range(N)])
    assert float(ds.example_grad_sq[0]) == pytest.approx(np.mean(np.sum(gi ** 2, axis=1)), rel=1e-7)
    L = lambda x: naive.weighted_loss_ro(*split(x), prob, q)  # noqa: E731
    h = 1e-4
    tr = sum((L(x0 + h * e) - 2 * L(x0) + L(x0 - h * e)) / h ** 2 for e in np.eye(x0.size))
    assert float(ds.hessian_trace[0]) == pytest.approx(tr, rel=1e-5)


@pytest.mark.parametrize("changes,key", [
    ({"model.readout": "both"}, "model.readout"), ({"model.readout_init": "ones"}, "model.readout_init")])
def test_bad_readout_configs_name_their_key(changes, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        cfg_for("gd").updated(changes)


def test_array_api_backend_refuses_a_per_filter_readout():
    with pytest.raises(ConfigError, match=r"model\.readout"):
        sn.simulate(cfg_for("gd"), backend="numpy", quiet=True)


# The probes by layer (signoise.probe) ----------------------------------------------------------
def exact_grad(cfg, prob, x):
    """∇L at θ = x over (W, b, a) from one weights-engine GD step with η = 1 (exact: the step
    itself is checked against finite differences above)."""
    W, b, ro = (v.copy() for v in split(x))
    prm = run_record(cfg.updated({"algorithm.name": "gd"}))[0].copy()
    prm["lr"] = 1.0
    inp = weights.prepare(prob)
    e = np.empty((0, N))
    weights.advance(inp.X, inp.X @ inp.X.T + 1.0, inp.y, W, b, ro, prm, 1, e, e,
                    np.empty((0, 2, M, D + 2)))
    return x - np.concatenate([W.ravel(), b.ravel(), ro.ravel()])


@pytest.mark.parametrize("layerwise", [False, True])
def test_perturbed_gradient_variance_by_layer_is_s2_times_hessian_blocks(layerwise):
    """Var_ζ ∇L(θ + ζ) = s² ‖∇²L‖_F² + O(s⁴), per layer: all-weights noise gives the rows'
    full norms s² ‖H_{l,:}‖², layer-wise noise only the diagonal blocks s² ‖H_{ll}‖² (the
    cross-layer terms are gone). Hessian by central differences of the exact gradient; Monte
    Carlo over 3000 draws, tolerance 5 standard errors."""
    from signoise import probe

    cfg = cfg_for("gd", train__steps=10, train__record_every=10)
    prob = sn.sample_problem(cfg)
    ds = sn.simulate(cfg, engine="weights", problem=prob, quiet=True)
    x = np.concatenate([ds.state_W.values.ravel(), ds.state_bias.values.ravel(),
                        ds.state_readout.values.ravel()])
    h = 1e-5
    Hs = np.array([(exact_grad(cfg, prob, x + h * e) - exact_grad(cfg, prob, x - h * e)) / (2 * h)
                   for e in np.eye(x.size)])
    k = 2 * M * D + 2 * M
    f, a = slice(0, k), slice(k, None)
    s = 1e-3
    pv = probe.perturbed_grad_variance(ds, s, draws=3000, seed=1, layerwise=layerwise)
    cols_f, cols_a = (f, a) if layerwise else (slice(None), slice(None))
    want = {"filters": s ** 2 * np.sum(Hs[f, cols_f] ** 2),
            "readout": s ** 2 * np.sum(Hs[a, cols_a] ** 2)}
    for layer, w in want.items():
        got, se = float(pv[f"variance_{layer}"]), float(pv[f"variance_{layer}_se"])
        assert abs(got - w) < 5 * se, (layer, got, w, se)
    assert float(pv.variance) == pytest.approx(float(pv.variance_filters + pv.variance_readout))
    if not layerwise:   # the cross-layer block is not negligible here, so the test can tell
        assert s ** 2 * np.sum(Hs[f, a] ** 2) > 10 * float(pv.variance_filters_se)


def test_hessian_trace_by_layer_against_finite_differences():
    from signoise import probe

    cfg = cfg_for("gd", train__steps=10, train__record_every=10)
    prob = sn.sample_problem(cfg)
    ds = sn.simulate(cfg, engine="weights", problem=prob, quiet=True)
    x = np.concatenate([ds.state_W.values.ravel(), ds.state_bias.values.ravel(),
                        ds.state_readout.values.ravel()])
    L = lambda z: naive.weighted_loss_ro(*split(z), prob, cfg.model.q)  # noqa: E731
    h = 1e-4
    diag = np.array([(L(x + h * e) - 2 * L(x) + L(x - h * e)) / h ** 2 for e in np.eye(x.size)])
    k = 2 * M * D + 2 * M
    got = probe.hessian_trace_by_layer(ds)
    assert got["filters"] == pytest.approx(diag[:k].sum(), rel=1e-5)
    assert got["readout"] == pytest.approx(diag[k:].sum(), rel=1e-5)
    assert got["total"] == pytest.approx(float(ds.hessian_trace[-1]), rel=1e-12)
    gram_ds = sn.simulate(cfg, problem=prob, quiet=True)
    assert probe.hessian_trace_by_layer(gram_ds)["readout"] == pytest.approx(got["readout"], rel=1e-9)


def test_options_added_later_stay_out_of_the_config_text_at_their_default():
    """readout, readout_init and flip_exact at their defaults leave the TOML as it was before
    they existed (stores and configs written earlier compare unchanged); set, they round-trip."""
    cfg = make_cfg()
    text = cfg.to_toml()
    for key in ("readout", "readout_init", "flip_exact"):
        assert key not in text
    assert cfg.get("model.readout") == "fixed" and cfg.get("data.flip_exact") is False
    new = cfg.updated({"model.readout": "trainable", "model.readout_init": "sign",
                       "data.flip_exact": True})
    assert sn.RunConfig.from_dict(__import__("tomllib").loads(new.to_toml())) == new


def assert_step_descends(objective, cfg, prob, x0, trained):
    """One kernel step from x0 = −η × central finite differences of ``objective`` over
    (W, b, a) (over (W, b) when the readout is not trained), and not the GD step."""
    k = 2 * M * D + 2 * M
    h = 1e-5
    fd = np.array([(objective(x0 + h * e) - objective(x0 - h * e)) / (2 * h) for e in np.eye(x0.size)])
    if not trained:
        fd[k:] = 0.0
    step = kernel_step(cfg, prob)
    np.testing.assert_allclose(step, -cfg.train.lr * fd, rtol=1e-6, atol=1e-8 * np.abs(fd).max())
    gd = exact_grad(cfg.updated({"model.readout": "trainable"}), prob, x0)
    assert np.abs(step[:k] + cfg.train.lr * gd[:k]).max() > 1e-3 * np.abs(step).max()


@pytest.mark.parametrize("readout", ["trainable", "fixed"])
def test_gr_step_is_finite_difference_gradient_of_its_objective(readout):
    """gr with a per-filter readout: the step over (W, b, a) = −η ∇[L + (λ/2)‖∇L‖²], central
    finite differences of the objective built on the exact gradient; with a frozen random
    readout (readout = "fixed", readout_init = "gaussian") only (W, b) move, along the same
    objective's gradient restricted to them (‖∇L‖² over (W, b) only)."""
    lam = 0.7
    cfg = cfg_for("gr", {"lam": lam}, model__readout=readout)
    prob = sn.sample_problem(cfg)
    x0 = np.concatenate([prob.w0.ravel(), prob.b0.ravel(), readout0(cfg).ravel()])
    k = 2 * M * D + 2 * M
    trained = readout == "trainable"
    gcfg = cfg.updated({"model.readout": "trainable"})   # the gradient over all of θ

    def objective(x):
        g = exact_grad(gcfg, prob, x)
        g = g if trained else g[:k]
        return naive.weighted_loss_ro(*split(x), prob, cfg.model.q) + 0.5 * lam * g @ g
    assert_step_descends(objective, cfg, prob, x0, trained)


def exact_grad_weighted(cfg, prob, x, omega):
    """∇ Σ_i ω_i ℓ_i at θ = x over (W, b, a), from one exact weights-engine step (η = 1)."""
    W, b, ro = (v.copy() for v in split(x))
    prm = run_record(cfg.updated({"algorithm.name": "sgd"}))[0].copy()
    prm["lr"] = 1.0
    inp = weights.prepare(prob)
    e = np.empty((0, N))
    weights.advance(inp.X, inp.X @ inp.X.T + 1.0, inp.y, W, b, ro, prm, 1, omega[None], e,
                    np.empty((0, 2, M, D + 2)))
    return x - np.concatenate([W.ravel(), b.ravel(), ro.ravel()])


@pytest.mark.parametrize("readout", ["trainable", "fixed"])
def test_pegr_step_is_finite_difference_gradient_of_its_objective(readout):
    """pegr with a per-filter readout: the step = −η ∇[L + (λ/2)(1/n) Σ_i ‖∇ℓ_i‖²] by central
    finite differences, the per-example gradients exact (over (W, b, a) when the readout is
    trained, over (W, b) with a frozen random readout)."""
    lam = 0.7
    cfg = cfg_for("pegr", {"lam": lam}, model__readout=readout)
    prob = sn.sample_problem(cfg)
    x0 = np.concatenate([prob.w0.ravel(), prob.b0.ravel(), readout0(cfg).ravel()])
    k = 2 * M * D + 2 * M
    trained = readout == "trainable"
    gcfg = cfg.updated({"model.readout": "trainable"})

    def objective(x):
        pen = 0.0
        for i in range(N):
            g = N * exact_grad_weighted(gcfg, prob, x, np.eye(N)[i] / N)
            g = g if trained else g[:k]
            pen += g @ g / N
        return naive.weighted_loss_ro(*split(x), prob, cfg.model.q) + 0.5 * lam * pen
    assert_step_descends(objective, cfg, prob, x0, trained)


def test_a_batch_mixing_readouts_equals_its_runs_alone():
    """Trained, frozen-random and fixed readouts with weight noise in one gram batch (their
    noise draws differ in width): each run equals its own simulate, bit for bit."""
    cfgs = [cfg_for("noisy_eval", {"s": 0.05}, data__d=30, data__n=6, model__m=3, **ro)
            for ro in ({}, {"model__readout": "fixed"},
                       {"model__readout": "fixed", "model__readout_init": "constant"})]
    batch = sn.simulate_batch(cfgs, [0, 1, 2], quiet=True)
    for k, cfg in enumerate(cfgs):
        alone = sn.simulate(cfg.updated({"seed": k}), quiet=True)
        np.testing.assert_array_equal(batch.gamma[k], alone.gamma)
        np.testing.assert_array_equal(batch.test_loss[k], alone.test_loss)
