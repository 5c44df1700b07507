"""The array-API engine (signoise.engines.xp) against the Numba gram engine, in float64.

Oracle: ``sn.simulate_batch(..., record_rho="full")`` on the compiled gram engine, run by run. Each
algorithm runs a batch of three runs with different seeds/values, including one that diverges
(huge lr) and one that stops early (loss_threshold), so the stop rules are compared as well.
"""

import numpy as np
import pytest

import signoise as sn
from signoise.diagnostics import METRICS
from signoise.engines import DIVERGED
from signoise.engines.xp import (FLOAT32_RTOL, XPBatch, block_bytes, get_backend, max_block,
                                 run_batch_xp)

from .conftest import make_cfg

ALGOS = [
    ("gd", {}), ("sgd", {"b": 3}), ("msgd", {"kind": "fisher", "s": 0.5}),
    ("msgd", {"kind": "bernoulli", "keep": 0.7}), ("msgd", {"kind": "cov", "s": 0.5}),
    ("label_noise_gd", {"p_step": 0.2}), ("gr", {"lam": 0.3}), ("pegr", {"lam": 0.5}),
    ("fdgr", {"lam": 0.2, "eps": 0.05, "scheme": "forward"}),
    ("fdgr", {"lam": 0.2, "eps": 0.05, "scheme": "backward"}),
    ("fdgr", {"lam": 0.2, "eps": 0.05, "scheme": "central"}),
    ("sam", {"rho": 0.1}), ("usam", {"rho": 0.1}), ("flooding", {"level": 0.4}),
    ("clip", {"max_norm": 0.05}), ("noisy_eval", {"s": 0.05}),
    ("noisy_eval", {"s": 0.05, "layerwise": True}), ("anti_pgd", {"s": 0.05}),
    ("lpg", {"alpha_pos": 0.3, "alpha_neg": -0.2, "adapt": 0.5}),
]


def cfgs_for(name, params, **model):
    base = make_cfg(train__steps=30, train__record_every=10,
                    **{f"model__{k}": v for k, v in model.items()})
    base = base.updated({"algorithm.name": name, **{f"algorithm.{k}": v for k, v in params.items()}})
    return [base, base.updated({"train.lr": 1e6, "model.sigma0": 3.0}),
            base.updated({"train.loss_threshold": 0.55})], [1, 7, 8]


def assert_matches(res, ds, rtol=1e-10, atol=1e-12):
    """xp records == gram records (NaN where gram has NaN), run by run.

    Equal stop step and status for every run; equal records everywhere except, for a diverged
    run, after its stop step (the state there is the non-finite one, which the driver turns
    into NaN records: DESIGN "divergence makes every record at and after it NaN")."""
    np.testing.assert_array_equal(res["step"], ds.step.values)
    np.testing.assert_array_equal(res["stopped_at"], ds.stopped_at.values)
    np.testing.assert_array_equal(res["status"] == DIVERGED, ds.diverged.values)
    valid = ~(ds.diverged.values[:, None] & (res["step"][None, :] > res["stopped_at"][:, None]))
    for name, ours in (("gamma", res["gamma"]), ("rho", res["rho"])):
        np.testing.assert_allclose(ours[valid], ds[name].values[valid], rtol=rtol, atol=atol,
                                   err_msg=name)
    for k, metric in enumerate(METRICS):
        np.testing.assert_allclose(res["metrics"][..., k][valid], ds[metric].values[valid],
                                   rtol=rtol, atol=atol, err_msg=metric)


@pytest.mark.parametrize("name,params", ALGOS, ids=[f"{a}-{i}" for i, (a, _) in enumerate(ALGOS)])
def test_float64_matches_gram_engine(name, params):
    cfgs, seeds = cfgs_for(name, params)
    ds = sn.simulate_batch(cfgs, seeds, record_rho="full", quiet=True)
    res = run_batch_xp(cfgs, seeds, get_backend("numpy"))
    if name != "clip":   # clipping keeps lr = 1e6 finite: its stop rule is tested elsewhere
        assert ds.diverged.values[1]   # the divergence scenario is exercised
    assert_matches(res, ds)


@pytest.mark.parametrize("model", [{"bias": True}, {"q": 1.0}, {"q": 2.0, "bias": True},
                                   {"q": 2.5}])
@pytest.mark.parametrize("name,params", [("gd", {}), ("pegr", {"lam": 0.5}), ("gr", {"lam": 0.3}),
                                         ("anti_pgd", {"s": 0.05})])
def test_model_variants_match(name, params, model):
    cfgs, seeds = cfgs_for(name, params, **model)
    ds = sn.simulate_batch(cfgs, seeds, record_rho="full", quiet=True)
    assert_matches(run_batch_xp(cfgs, seeds, get_backend("numpy")), ds)


def test_isotropic_and_wishart_match():
    for changes in ({"data.noise": "isotropic"}, {"data.sampler": "wishart", "data.d": 2000}):
        cfgs, seeds = cfgs_for("pegr", {"lam": 0.5})
        cfgs = [c.updated(changes) for c in cfgs]
        ds = sn.simulate_batch(cfgs, seeds, record_rho="full", quiet=True)
        assert_matches(run_batch_xp(cfgs, seeds, get_backend("numpy")), ds)


@pytest.mark.parametrize("name,params", ALGOS, ids=[f"{a}-{i}" for i, (a, _) in enumerate(ALGOS)])
def test_runs_under_array_api_strict(name, params):
    """Proof that the engine uses only the standard: the strict namespace runs every rule."""
    xps = pytest.importorskip("array_api_strict")
    cfgs, seeds = cfgs_for(name, params, bias=True)
    ds = sn.simulate_batch(cfgs, seeds, record_rho="full", quiet=True)
    assert_matches(run_batch_xp(cfgs, seeds, xps), ds)


def test_float32_within_stated_tolerance():
    """Opt-in float32 on a run that stays at moderate margins (see docs/gpu.md)."""
    xp = get_backend("numpy")
    cfgs, seeds = cfgs_for("gd", {})
    cfgs, seeds = cfgs[:1], seeds[:1]        # run 0: trains to loss ~1e-3, margins < 10
    ref = run_batch_xp(cfgs, seeds, xp)
    low = run_batch_xp(cfgs, seeds, xp, dtype=xp.float32)
    assert not np.allclose(low["gamma"], ref["gamma"], rtol=1e-12, atol=0)   # really float32
    np.testing.assert_allclose(low["gamma"], ref["gamma"], rtol=FLOAT32_RTOL, atol=1e-5)
    for k in (0, 2):   # train and test loss
        np.testing.assert_allclose(low["metrics"][..., k], ref["metrics"][..., k],
                                   rtol=FLOAT32_RTOL)


def test_logistic_stable_at_any_margin():
    """ℓ, ℓ', ℓ'' against closed forms at margins where the naive formulas overflow."""
    xp = get_backend("numpy")
    cfgs, seeds = cfgs_for("gd", {})
    b = XPBatch([sn.engines.gram.prepare(sn.sample_problem(cfgs[0], 1))], cfgs[:1], xp)
    z = np.array([-800.0, -40.0, 0.0, 40.0, 800.0])
    loss, d1, d2 = b._logistic(xp.asarray(z))
    np.testing.assert_allclose(loss, [800.0, 40.0 + np.exp(-40.0), np.log(2), np.exp(-40.0), 0.0],
                               rtol=1e-15, atol=0)
    np.testing.assert_allclose(d1, [-1.0, -1.0, -0.5, -np.exp(-40.0), -0.0], rtol=1e-15)
    np.testing.assert_allclose(d2, [0.0, np.exp(-40.0), 0.25, np.exp(-40.0), 0.0], rtol=1e-14)


def test_backend_names_and_errors():
    assert get_backend("numba") is None
    with pytest.raises(ValueError, match="backend"):
        get_backend("torch")
    try:
        import cupy  # noqa: F401
        has_device = cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        has_device = False
    if not has_device:
        with pytest.raises(sn.ConfigError, match=r"signoise\[gpu\]"):
            get_backend("cupy")


def test_mixed_algorithms_rejected():
    cfgs, _ = cfgs_for("gd", {})
    other = cfgs[0].updated({"algorithm.name": "pegr", "algorithm.lam": 0.1})
    inp = sn.engines.gram.prepare(sn.sample_problem(cfgs[0], 1))
    with pytest.raises(ValueError, match="algorithm.name"):
        XPBatch([inp, inp], [cfgs[0], other], get_backend("numpy"))


def test_block_sizes_from_free_memory():
    one = block_bytes(1, 20, 10, 1000)
    assert block_bytes(7, 20, 10, 1000) == 7 * one
    assert max_block(20, 10, 1000, free_bytes=10 * one, fraction=1.0) == 10
    with pytest.raises(MemoryError, match="n=20"):
        max_block(20, 10, 1000, free_bytes=one // 2)


def test_blocking_does_not_change_results():
    cfgs, seeds = cfgs_for("sgd", {"b": 3})
    xp = get_backend("numpy")
    whole, parts = run_batch_xp(cfgs, seeds, xp), run_batch_xp(cfgs, seeds, xp, block=2)
    for key in whole:
        np.testing.assert_array_equal(whole[key], parts[key], err_msg=key)


def test_block_estimate_bounds_numpy_peak():
    """block_bytes bounds the peak memory of a block (inputs on the device, a chunk of steps,
    a record) on NumPy, traced by tracemalloc; CuPy runs the same array expressions."""
    import tracemalloc

    from signoise.driver import prepare_many
    from signoise.engines.gram import _stack
    cfgs, _ = cfgs_for("pegr", {"lam": 0.5})
    c = cfgs[0].updated({"data.n_test": 400})
    runs = prepare_many([c] * 12, list(range(12)), "gram")
    inputs = [r.inputs for r in runs]
    xp = get_backend("numpy")
    tracemalloc.start()
    batch = XPBatch(inputs, [c] * 12, xp)
    n, m, k = c.data.n, c.model.m, c.train.record_every
    draws = (_stack([np.empty((0, n))] * 12, 1.0 / n), _stack([np.empty((0, n))] * 12, 1.0),
             _stack([np.empty((0, 2, m, n + 2))] * 12, 0.0))
    batch.advance(k, *draws, np.ones(12, bool))
    batch.evaluate()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    bound = block_bytes(12, c.data.n, c.model.m, c.data.n_test, nsteps=c.train.record_every)
    assert 0.5 * bound < peak <= bound, (peak, bound)   # an upper estimate, not a loose one


def test_backend_argument_runs_the_xp_engine_through_the_one_driver(tmp_path):
    """simulate, simulate_batch and sweep take backend="numpy": same runs as numba to 1e-10."""
    cfgs, seeds = cfgs_for("sam", {"rho": 0.05})
    a = sn.simulate(cfgs[0], seed=seeds[0], backend="numpy", quiet=True)
    b = sn.simulate(cfgs[0], seed=seeds[0], quiet=True)
    assert a.attrs["backend"] != b.attrs["backend"]
    for var in ("gamma", "rho", "train_loss", "test_error"):
        np.testing.assert_allclose(a[var].values, b[var].values, rtol=1e-10, atol=1e-12)
    batch = sn.simulate_batch(cfgs[:2], seeds[:2], backend="numpy", record_rho="full")
    np.testing.assert_allclose(batch.gamma.isel(run=0).values, b.gamma.values, rtol=1e-10,
                               atol=1e-12)
    with pytest.raises(sn.ConfigError, match="backend"):
        sn.simulate(cfgs[0], engine="weights", backend="numpy", quiet=True)
    grid = cfgs[0].to_dict()
    grid["sweep"] = {"seeds": 2, "grid": {"data.mu_norm": [1.0, 3.0]}}
    cfg = sn.RunConfig.from_dict(grid)
    xs = sn.sweep(cfg, tmp_path / "x.zarr", workers=1, backend="numpy", quiet=True).load()
    ns = sn.sweep(cfg, tmp_path / "n.zarr", workers=1, quiet=True).load()
    np.testing.assert_allclose(xs.test_loss.values, ns.test_loss.values, rtol=1e-10)
