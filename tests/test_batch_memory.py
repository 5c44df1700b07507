"""One copy of each test set in a gram Batch: the runs' inputs read the Batch's stacked arrays,
and prepare_many drops the draws' coordinates, without changing a number."""

import numpy as np

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
