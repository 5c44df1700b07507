"""simulate_batch: each run equals simulate, bit for bit, whatever the thread count."""

import os
import subprocess
import sys

import numpy as np
import pytest

import signoise as sn

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


def batch_cfgs():
    base = make_cfg(train__steps=60, train__record_every=20)
    return [base.updated(changes) for changes, _ in RUNS], [s for _, s in RUNS]


def test_batch_equals_one_by_one():
    cfgs, seeds = batch_cfgs()
    ds = sn.simulate_batch(cfgs, seeds, rho="full")
    assert ds.sizes["run"] == len(RUNS) and list(ds.seed.values) == seeds
    assert bool(ds.diverged[7]) and not bool(ds.diverged[0])
    assert int(ds.stopped_at[8]) < 60 and int(ds.stopped_at[0]) == 60
    for b, (cfg, seed) in enumerate(zip(cfgs, seeds)):
        one = sn.simulate(cfg, seed=seed, quiet=True)
        run = ds.isel(run=b)
        if bool(one.diverged):
            assert int(run.stopped_at) == int(one.stopped_at)
            continue
        last = int(one.step[-1])
        for var in ("gamma", "rho", "train_loss", "test_error", "grad_var_noise", "rho_bar_mean"):
            got = run[var].sel(step=[s for s in run.step.values if s <= last]).values
            want = one[var].reindex(step=[s for s in run.step.values if s <= last],
                                    method="ffill").values
            np.testing.assert_array_equal(got, want, err_msg=f"run {b} {var}")


def test_batch_rejects_unequal_shapes():
    with pytest.raises(ValueError, match="data.n"):
        sn.simulate_batch([make_cfg(), make_cfg(data__n=5)])
    with pytest.raises(ValueError, match="rho"):
        sn.simulate_batch(make_cfg(), rho="some")


def test_weights_engine_batch_matches():
    cfgs, seeds = batch_cfgs()
    a = sn.simulate_batch(cfgs[:3], seeds[:3], engine="weights")
    b = sn.simulate_batch(cfgs[:3], seeds[:3])
    np.testing.assert_allclose(a.gamma, b.gamma, rtol=1e-9, atol=1e-12)


_SCRIPT = """
import numpy as np, signoise as sn
from tests.test_batch import batch_cfgs
cfgs, seeds = batch_cfgs()
ds = sn.simulate_batch(cfgs * 3, seeds * 3, rho="full")
np.save({out!r}, np.concatenate([ds.gamma.values.ravel(), ds.rho.values.ravel(), ds.test_loss.values.ravel()]))
"""


def test_batch_bit_identical_across_thread_counts(tmp_path):
    root = os.path.dirname(os.path.dirname(__file__))
    outs = []
    for threads in (1, 2):
        out = str(tmp_path / f"t{threads}.npy")
        env = {**os.environ, "NUMBA_NUM_THREADS": str(threads)}
        subprocess.run([sys.executable, "-c", _SCRIPT.format(out=out)], check=True, cwd=root, env=env)
        outs.append(np.load(out))
    assert outs[0].tobytes() == outs[1].tobytes()
