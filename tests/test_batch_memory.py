"""One copy of each test set in a gram Batch: the runs' inputs read the Batch's stacked arrays,
and prepare_many drops the draws' coordinates, without changing a number."""

import numpy as np
import pytest

import signoise as sn
from signoise import driver


def _cfgs():
    base = {"seed": 0, "data": {"n": 6, "d": 30, "n_test": 40, "flip": 0.1, "sampler": "wishart"},
            "model": {"m": 2, "q": 1.0, "sigma0": 0.05},
            "train": {"lr": 0.3, "steps": 6, "record_every": 3}}
    cfgs, seeds = [], []
    for noise in ("projected", "isotropic"):
        for mu in (0.0, 2.0):
            c = sn.RunConfig.from_dict({**base, "data": {**base["data"], "mu_norm": mu,
                                                         "noise": noise}})
            cfgs += [c, c]
            seeds += [0, 1]
    return cfgs, seeds


def test_batch_inputs_view_the_stacked_test_sets():
    cfgs, seeds = _cfgs()
    runs = driver.prepare_many(cfgs, seeds, "gram")
    assert all(r.problem is None for r in runs)          # the draws' coordinates are gone
    before = [{k: getattr(r.inputs, k).copy() for k in ("Gt", "Z0t", "y_t", "y_true_t")}
              for r in runs]
    batch = driver.make_batch(runs, "gram")
    # projected noise: seeds 0, 1 shared over ‖μ‖ (2 sets); isotropic: Gt moves with ‖μ‖ (4)
    assert batch.Gt.shape[0] == 6
    for b, r in enumerate(runs):
        t = batch.test_of[b]
        for k, want in before[b].items():
            have = getattr(r.inputs, k)
            assert np.array_equal(have, want)
            assert np.shares_memory(have, getattr(batch, k)[t])
    # inputs that shared a test set still share one array object: a second Batch dedupes
    again = driver.make_batch(runs, "gram")
    assert again.Gt.shape[0] == 6 and np.array_equal(again.Gt, batch.Gt)


def test_released_draws_change_no_number():
    """The batch (drawn with release) equals simulate run by run, which keeps its problem."""
    cfgs, seeds = _cfgs()
    ds = sn.simulate_batch(cfgs, seeds, quiet=True)
    for b in (0, 3, 5, 7):
        one = sn.simulate(cfgs[b].updated({"seed": seeds[b]}), quiet=True)
        for name in ("gamma", "test_loss", "test_error", "train_loss", "grad_sq"):
            assert np.array_equal(ds[name].isel(run=b).values, one[name].values), name


# --- simulate_batch in blocks (at most BLOCK_RUNS runs drawn and trained at once) -------------

def _blocks(monkeypatch, size):
    import sys
    monkeypatch.setattr(sys.modules["signoise.simulate"], "BLOCK_RUNS", size)


def test_blocks_give_the_batch_bit_for_bit_with_each_warning_once(monkeypatch):
    import warnings

    from tests.test_batch import batch_cfgs
    cfgs, seeds = batch_cfgs()          # mixed rules, a diverging and a converging run
    with warnings.catch_warnings(record=True) as whole:
        warnings.simplefilter("always")
        one = sn.simulate_batch(cfgs * 3, seeds * 3, record_rho="full", quiet=True)
    _blocks(monkeypatch, 4)             # 27 runs: 7 blocks, the last one of 3
    with warnings.catch_warnings(record=True) as blocked:
        warnings.simplefilter("always")
        ds = sn.simulate_batch(cfgs * 3, seeds * 3, record_rho="full", quiet=True)
    assert ds.identical(one)            # every variable, coordinate and attribute
    assert sorted(str(w.message) for w in blocked) == sorted(str(w.message) for w in whole)
    assert len(blocked) == len({str(w.message) for w in blocked}) > 0


def test_an_interrupt_stops_at_its_block_and_keeps_the_blocks_before(monkeypatch):
    from signoise import interrupt

    cfgs, seeds = _cfgs()               # 8 runs of 6 steps, recorded at 0, 3, 6
    _blocks(monkeypatch, 3)
    monkeypatch.setattr(driver, "CHUNK_WORK", 1.0)        # one step per chunk
    calls = {"n": 0}

    def requested():                    # block 1 reads the flag 6 times; stop block 2 at t = 2
        calls["n"] += 1
        return calls["n"] > 7
    monkeypatch.setattr(interrupt, "requested", requested)
    with pytest.raises(interrupt.Interrupted, match="2 runs not started") as info:
        sn.simulate_batch(cfgs, seeds, quiet=True)
    part = info.value.partial
    assert part.sizes["run"] == 6 and list(part.step.values) == [0, 2, 3, 6]
    assert list(part.status.values) == ["finished"] * 3 + ["interrupted"] * 3
    monkeypatch.setattr(interrupt, "requested", lambda: False)
    full = sn.simulate_batch(cfgs[:6], seeds[:6], quiet=True)
    # the finished block: its records, NaN at the step only the interrupted block recorded
    np.testing.assert_array_equal(part.gamma_max.isel(run=slice(0, 3)).sel(step=[0, 3, 6]),
                                  full.gamma_max.isel(run=slice(0, 3)))
    assert np.isnan(part.test_loss.isel(run=slice(0, 3)).sel(step=2)).all()
    # the interrupted block: its records up to the stop, nothing after
    np.testing.assert_array_equal(part.gamma_max.isel(run=slice(3, 6)).sel(step=0),
                                  full.gamma_max.isel(run=slice(3, 6)).sel(step=0))
    assert (part.stopped_at.values[3:] == 2).all()
    assert np.isnan(part.test_loss.isel(run=slice(3, 6)).sel(step=[3, 6])).all()
