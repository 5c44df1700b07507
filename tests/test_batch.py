"""The one driver: simulate is a batch of one; batches equal their runs bit for bit whatever the
thread count; divergence, continuation, config recovery and interrupts."""

import os
import subprocess
import sys

import numpy as np
import pytest

import signoise as sn
from signoise import driver, interrupt

from .conftest import make_cfg

RUNS = [
    ({}, 0), ({"data.mu_norm": 6.0}, 1), ({"data.flip": 0.2, "train.lr": 0.05}, 2),
    ({"algorithm.name": "pegr", "algorithm.lam": 0.002}, 3),
    ({"algorithm.name": "noisy_eval", "algorithm.s": 0.05}, 4),
    ({"algorithm.name": "sgd", "algorithm.b": 4}, 5),
    ({"data.d": 60, "model.bias": True}, 6),
    ({"train.lr": 1e6, "model.sigma0": 3.0}, 7),                 # diverges
    ({"train.loss_threshold": 0.3}, 8),                           # stops early
]
COMPARED = ("gamma", "rho", "train_loss", "test_error", "margin_min", "grad_var_noise",
            "rho_bar_mean", "y", "stopped_at", "diverged")


def batch_cfgs():
    base = make_cfg(train__steps=60, train__record_every=20)
    return [base.updated(changes) for changes, _ in RUNS], [s for _, s in RUNS]


@pytest.mark.parametrize("engine", ["gram", "weights"])
def test_batch_equals_one_by_one(engine):
    cfgs, seeds = batch_cfgs()
    if engine == "weights":
        cfgs, seeds = cfgs[:4] + cfgs[6:], seeds[:4] + seeds[6:]   # noise draws differ in d
    ds = sn.simulate_batch(cfgs, seeds, engine=engine, record_rho="full")
    assert ds.sizes["run"] == len(cfgs) and list(ds.seed.values) == seeds
    for b, (cfg, seed) in enumerate(zip(cfgs, seeds)):
        one = sn.simulate(cfg, seed=seed, engine=engine, quiet=True)
        run = ds.isel(run=b)
        for var in COMPARED:
            np.testing.assert_array_equal(run[var].values, one[var].values, err_msg=f"run {b} {var}")
        assert str(run.status.values) == one.attrs["status"]


def test_stopped_runs_diverged_nan_converged_frozen():
    cfgs, seeds = batch_cfgs()
    ds = sn.simulate_batch(cfgs, seeds)
    dv, cv = ds.isel(run=7), ds.isel(run=8)
    assert bool(dv.diverged) and str(dv.status.values) == "diverged"
    after = dv.step >= int(dv.stopped_at)
    for var in ("train_loss", "train_error", "test_error", "test_error_clean", "margin_min",
                "gamma", "rho_bar_max", "hessian_trace"):
        assert bool(dv[var].where(after).isnull().sum() == dv[var].where(after).size), var
    # errors never score a diverged state as correct
    assert not np.any(ds.test_error.isel(run=7).values == 0.0)
    assert str(cv.status.values) == "converged" and int(cv.stopped_at) < 60
    later = cv.step >= int(cv.stopped_at)
    assert float(cv.train_loss.where(later).max()) < 0.3
    np.testing.assert_array_equal(np.unique(cv.gamma.where(later, drop=True).values, axis=0).shape[0], 1)


def test_diverging_single_run_has_nan_records_and_no_repeated_step():
    cfg = make_cfg(train__lr=1e6, model__sigma0=3.0, train__steps=40, train__record_every=1)
    ds = sn.simulate(cfg, quiet=True)
    assert ds.attrs["status"] == "diverged" and bool(ds.diverged)
    assert len(np.unique(ds.step)) == ds.sizes["step"] == 41
    stop = int(ds.stopped_at)
    assert np.isnan(ds.test_error.sel(step=stop)) and np.isnan(ds.margin_min.values[-1])
    assert np.all(np.isfinite(ds.train_loss.sel(step=slice(0, stop - 1)).values))


def test_weights_engine_batch_with_divergence():
    """The case that failed with 'cannot reindex ... duplicate values'."""
    cfg = make_cfg(train__lr=1e6, model__sigma0=3.0, train__steps=10, train__record_every=1)
    ds = sn.simulate_batch([cfg, make_cfg(train__steps=10, train__record_every=1)], [2, 1],
                           engine="weights")
    assert bool(ds.diverged[0]) and not bool(ds.diverged[1])


def test_two_half_runs_equal_one_full_run():
    for name, params in (("gd", {}), ("noisy_eval", {"s": 0.05}), ("sgd", {"b": 3})):
        full = make_cfg(train__steps=60, train__record_every=10, train__lr=0.05).updated(
            {"algorithm.name": name, **{f"algorithm.{k}": v for k, v in params.items()}})
        a = sn.simulate(full, quiet=True)
        half = sn.simulate(full.updated({"train.steps": 30}), quiet=True)
        rest = sn.simulate(full, start=half, quiet=True)
        assert list(rest.step.values) == [30, 40, 50, 60]
        for var in ("gamma", "rho", "train_loss", "test_error", "state_beta"):
            np.testing.assert_array_equal(rest[var].values, a[var].sel(step=rest.step).values
                                          if "step" in a[var].dims else a[var].values, err_msg=name)
    with pytest.raises(ValueError, match="start"):
        sn.simulate(full.updated({"data.mu_norm": 2.0}), start=half, quiet=True)


def test_config_of_recovers_each_run():
    cfgs, seeds = batch_cfgs()
    ds = sn.simulate_batch(cfgs, seeds)
    assert "data.mu_norm" in ds.coords and "algorithm.name" in ds.coords
    assert list(ds["algorithm.name"].values[3:6]) == ["pegr", "noisy_eval", "sgd"]
    for b in (0, 3, 6):
        cfg = sn.config_of(ds, b)
        assert cfg == cfgs[b].updated({"seed": seeds[b]})
        again = sn.simulate(cfg, quiet=True)
        np.testing.assert_array_equal(again.gamma.values, ds.gamma.isel(run=b).values)
    one = sn.simulate(cfgs[1], seed=11, quiet=True)     # the stored config holds the run's seed
    assert sn.config_of(one).seed == 11 and one.attrs["seed"] == 11
    with pytest.raises(ValueError, match="run"):
        sn.config_of(ds)


def test_simulate_accepts_a_path(tmp_path):
    path = tmp_path / "c.toml"
    sn.dump_config(make_cfg(), path)
    np.testing.assert_array_equal(sn.simulate(path, quiet=True).rho.values,
                                  sn.simulate(make_cfg(), quiet=True).rho.values)
    with pytest.raises(TypeError, match="RunConfig"):
        sn.simulate({"data": {}}, quiet=True)


def test_summary_record_never_holds_full_rho():
    cfgs, seeds = batch_cfgs()
    ds = sn.simulate_batch(cfgs[:3], seeds[:3])
    assert "rho" not in ds and ds.rho_bar_max.dims == ("run", "step")
    with pytest.raises(ValueError, match="record_rho"):
        sn.simulate_batch(cfgs[:3], seeds[:3], record_rho="some")


def test_batch_rejects_unequal_shapes():
    with pytest.raises(ValueError, match="data.n"):
        sn.simulate_batch([make_cfg(), make_cfg(data__n=5)])


def test_interrupt_stops_at_a_chunk_and_keeps_what_was_computed(monkeypatch):
    """The flag is read between chunks: the run stops there, records its state, and says so."""
    monkeypatch.setattr(driver, "CHUNK_WORK", 1.0)        # one step per chunk
    calls = {"n": 0}

    def requested():
        calls["n"] += 1
        return calls["n"] > 13
    monkeypatch.setattr(interrupt, "requested", requested)
    cfg = make_cfg(train__steps=50, train__record_every=10)
    with pytest.raises(interrupt.Interrupted) as info:
        sn.simulate(cfg, quiet=True)
    part = info.value.partial
    assert part.attrs["status"] == "interrupted" and int(part.stopped_at) == 14
    assert list(part.step.values) == [0, 10, 14]
    monkeypatch.setattr(interrupt, "requested", lambda: False)
    full = sn.simulate(cfg.updated({"train.steps": 14, "train.record_every": 2}), quiet=True)
    np.testing.assert_array_equal(part.gamma.values[-1], full.gamma.values[-1])


_SCRIPT = """
import numpy as np, signoise as sn
from tests.test_batch import batch_cfgs
cfgs, seeds = batch_cfgs()
ds = sn.simulate_batch(cfgs * 3, seeds * 3, record_rho="full")
np.save({out!r}, np.concatenate([ds.gamma.values.ravel(), ds.rho.values.ravel(), ds.test_loss.values.ravel()]))
"""


def test_batch_bit_identical_across_thread_counts(tmp_path):
    """27 runs in one prange kernel: 1 and 2 Numba threads give the same bytes."""
    root = os.path.dirname(os.path.dirname(__file__))
    outs = []
    for threads in (1, 2):
        out = str(tmp_path / f"t{threads}.npy")
        env = {**os.environ, "NUMBA_NUM_THREADS": str(threads)}
        subprocess.run([sys.executable, "-c", _SCRIPT.format(out=out)], check=True, cwd=root, env=env)
        outs.append(np.load(out))
    assert outs[0].tobytes() == outs[1].tobytes()


@pytest.mark.parametrize("sampler,noise,bias", [("explicit", "projected", False),
                                                ("explicit", "isotropic", True),
                                                ("wishart", "isotropic", False)])
def test_runs_sharing_a_draw_equal_separate_draws(sampler, noise, bias):
    """Runs of one seed that differ in ‖μ‖ (and lr) share one draw: bit for bit the numbers
    of separate draws, ‖μ‖ = 0 included."""
    base = make_cfg(data__sampler=sampler, data__noise=noise, model__bias=bias, data__d=60,
                    train__steps=30)
    cfgs = [base.updated({"data.mu_norm": mu, "train.lr": lr})
            for mu in (0.0, 1.5, 4.0) for lr in (0.1, 0.2)]
    ds = sn.simulate_batch(cfgs, [5] * len(cfgs), record_rho="full")
    for b, cfg in enumerate(cfgs):
        one = sn.simulate(cfg, seed=5, quiet=True)
        for var in COMPARED + ("test_loss", "grad_var_signal", "hessian_trace"):
            np.testing.assert_array_equal(ds[var].isel(run=b).values, one[var].values,
                                          err_msg=f"run {b} {var}")


@pytest.mark.parametrize("name,params", [
    ("gd", {}), ("sgd", {"b": 4}), ("msgd", {"s": 0.5}), ("label_noise_gd", {"p_step": 0.1}),
    ("gr", {"lam": 0.01}), ("pegr", {"lam": 0.01}), ("fdgr", {"lam": 0.05}), ("sam", {"rho": 0.1}),
    ("usam", {"rho": 0.1}), ("flooding", {"level": 0.1}), ("noisy_eval", {"s": 0.05}),
    ("anti_pgd", {"s": 0.05}), ("lpg", {"alpha_pos": 0.5})])
def test_every_divergent_algorithm_is_marked_and_never_scored(name, params):
    """lr = 1e6 from a large init: every rule that can diverge stops, is marked, and has NaN
    (not 0) errors and margins at and after the stop, in simulate and simulate_batch alike.
    (clip bounds its step and cannot diverge.)"""
    cfg = make_cfg(train__lr=1e6, model__sigma0=3.0, train__steps=60, train__record_every=5,
                   data__flip=0.1).updated(
        {"algorithm.name": name, **{f"algorithm.{k}": v for k, v in params.items()}})
    seed = next(s for s in range(20)
                if sn.simulate(cfg, seed=s, quiet=True).attrs["status"] == "diverged")
    one = sn.simulate(cfg, seed=seed, quiet=True)
    after = one.step >= int(one.stopped_at)
    for var in ("train_error", "test_error", "test_error_clean", "margin_min", "train_loss"):
        assert bool(one[var].where(after).isnull().all()), var
    batch = sn.simulate_batch([cfg, cfg], [seed, seed])
    np.testing.assert_array_equal(batch.test_error.isel(run=0).values, one.test_error.values)
