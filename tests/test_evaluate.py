"""The gram engine's batched evaluation, runs grouped by test set with one shared test product
(engines.gram.evaluate_group), against each run evaluated alone (evaluate_kernel): bit for bit."""

import itertools

import numpy as np
import pytest

import signoise as sn
from signoise import driver
from signoise.diagnostics import METRICS
from signoise.engines import gram


def _batch():
    """Runs sharing draws (seed × ‖μ‖, both noise models), half of them trained a few steps."""
    base = {"seed": 0, "data": {"n": 6, "d": 30, "n_test": 40, "flip": 0.1},
            "model": {"m": 2, "q": 1.0, "sigma0": 0.05},
            "train": {"lr": 0.3, "steps": 4, "record_every": 4}}
    cfgs, seeds = [], []
    for noise in ("projected", "isotropic"):
        for mu in (0.0, 0.5, 2.0, 5.0, 9.0):
            c = sn.RunConfig.from_dict({**base, "data": {**base["data"], "mu_norm": mu,
                                                         "noise": noise}})
            cfgs += [c] * 3
            seeds += [0, 1, 2]
    runs = driver.prepare_many(cfgs, seeds, "gram")
    rec = driver.run(runs, "gram", quiet=True)
    batch = driver.make_batch(runs, "gram")
    beta = rec.state["beta"].copy()
    beta[::2] = 0.0                             # every other run at its initial state (β = 0)
    batch.set_state({"beta": beta, "bias": rec.state["bias"]})
    return batch


def _alone(batch):
    """The oracle: evaluate_kernel run by run on its own test set."""
    out = np.empty((batch.G.shape[0], len(METRICS)))
    for b in range(out.shape[0]):
        t = batch.test_of[b]
        gram.evaluate_kernel(batch.G[b], batch.Z0[b], batch.y[b], batch.y_true[b], batch.Gt[t],
                             batch.Z0t[t], batch.y_t[t], batch.y_true_t[t], batch.beta[b],
                             batch.bias[b], batch.ro[b], batch.prm[b], out[b])
    return out


def test_eval_groups_partition_runs_by_test_set():
    test_of = np.array([2, 0, 1, 0, 2, 0, 0, 1, 0])
    order, starts = gram.eval_groups(test_of, size=3)
    assert sorted(order.tolist()) == list(range(len(test_of)))
    groups = [order[a:b].tolist() for a, b in itertools.pairwise(starts)]
    assert groups == [[1, 3, 5], [6, 8], [2, 7], [0, 4]]


@pytest.mark.parametrize("size", [1, 4, 64])
@pytest.mark.parametrize("kernel", ["evaluate_runs", "evaluate_batch"])
def test_grouped_evaluation_equals_runs_alone(size, kernel):
    batch = _batch()
    # projected noise: 3 seeds share across ‖μ‖; isotropic: Gt depends on ‖μ‖ (15 sets)
    assert len(np.unique(batch.test_of)) == 18
    want = _alone(batch)
    out = np.empty_like(want)
    getattr(gram, kernel)(batch.G, batch.Z0, batch.y, batch.y_true, batch.Gt, batch.Z0t,
                          batch.y_t, batch.y_true_t, batch.test_of,
                          *gram.eval_groups(batch.test_of, size), batch.beta, batch.bias,
                          batch.ro, batch.prm, out)
    assert np.isfinite(want).all()
    if size == gram.EVAL_GROUP:      # the default: each run its own product, bit for bit
        assert np.array_equal(out, want)
    else:                            # stacked products: equal up to the BLAS's summation order
        np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-14)


def test_batch_setup_equals_concatenation():
    """Batch.__init__ stacks the run records field for field as np.concatenate does (padding
    bytes aside), whatever the mix of algorithms, and builds noise factors exactly where a rule
    draws weight noise."""
    from signoise.algorithms import run_record

    base = {"seed": 0, "data": {"n": 5, "d": 30, "mu_norm": 1.0, "n_test": 10},
            "model": {"m": 2}, "train": {"lr": 0.1, "steps": 2, "record_every": 2}}
    algos = [{"name": "gd"}, {"name": "noisy_eval", "s": 0.1}, {"name": "pegr", "lam": 0.3},
             {"name": "sgd", "b": 2}]
    cfgs = [sn.RunConfig.from_dict({**base, "algorithm": a}) for a in algos]
    runs = driver.prepare_many(cfgs, [0, 1, 2, 3], "gram")
    batch = driver.make_batch(runs, "gram")
    want = np.concatenate([run_record(c) for c in cfgs])
    assert batch.prm.dtype == want.dtype
    for name in want.dtype.names:
        assert np.array_equal(batch.prm[name], want[name]), name
    assert [bool(batch.F[b].any()) for b in range(4)] == [False, True, False, False]
    F = batch.F[1]
    assert np.allclose(F @ F.T, batch.G[1], atol=1e-12)
