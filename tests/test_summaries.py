"""The compiled γ and ρ summaries (signoise.summaries) against the NumPy definitions:
``rho_summaries(coefficients())`` of the gram Batch, bit for bit, NaN and ties included."""

import numpy as np
import pytest

from signoise.driver import rho_summaries
from signoise.summaries import coefficient_summaries


def _numpy(beta, G, y):
    """The oracle: γ and ρ as gram.Batch.coefficients forms them, then rho_summaries."""
    sq = np.einsum("bii->bi", G)
    gamma = np.array([1.0, -1.0])[None, :, None] * beta[:, :, :, 0] * sq[:, None, None, 0]
    rho = beta[:, :, :, 1:] * sq[:, None, None, 1:]
    return gamma, np.stack(rho_summaries(rho, y), axis=-1)


@pytest.mark.parametrize("parallel", [False, True])
def test_coefficient_summaries_equal_numpy(parallel):
    rng = np.random.default_rng(3)
    B, m, n = 40, 3, 9
    beta = rng.standard_normal((B, 2, m, n + 1)) * 10.0 ** rng.integers(-6, 4, (B, 2, m, n + 1))
    A = rng.standard_normal((B, n + 1, n + 4))
    G = A @ A.transpose(0, 2, 1)
    y = np.where(rng.random((B, n)) < 0.5, -1.0, 1.0)
    y[0] = 1.0                                   # one class only: ρ̲ over the other j alone
    beta[1] = 0.0                                # the first record: all zero
    beta[2, 0, 1, 3] = np.nan                    # NaN where y_3 = j or not: both cases
    beta[3, 1, 0, 2] = np.nan
    beta[4, :, :, 5] = np.inf
    beta[5, 0, 0, 0] = np.nan                    # γ only
    beta[6, :, :, 1:] = 1.0                      # ties
    g, s = coefficient_summaries(beta, G, y, parallel)
    g0, s0 = _numpy(beta, G, y)
    assert np.array_equal(g, g0, equal_nan=True)
    assert np.array_equal(s, s0, equal_nan=True)
    assert np.isnan(s[2]).sum() >= 1 and np.isfinite(s[7:]).all()   # the cases were reached


def test_batch_summaries_equal_coefficients():
    import signoise as sn
    from signoise import driver

    cfg = sn.RunConfig.from_dict({
        "seed": 0, "data": {"n": 8, "d": 40, "mu_norm": 1.5, "n_test": 20, "flip": 0.1},
        "model": {"m": 3, "q": 1.0, "sigma0": 0.05},
        "train": {"lr": 0.3, "steps": 12, "record_every": 12}})
    runs = driver.prepare_many([cfg] * 5, list(range(5)), "gram")
    rec = driver.run(runs, "gram", record_rho="full", quiet=True)
    batch = driver.make_batch(runs, "gram")
    batch.set_state(rec.state)
    g0, rho, _ = batch.coefficients()
    g, s = batch.summaries()
    assert np.array_equal(g, g0)
    assert np.array_equal(s, np.stack(rho_summaries(rho, batch.y), axis=-1))
    assert np.array_equal(rec.rho_summary[:, -1], s)   # what the driver records in "full" mode
    summary = driver.run(runs, "gram", record_rho="summary", quiet=True)
    assert np.array_equal(summary.rho_summary, rec.rho_summary)
    assert np.array_equal(summary.gamma, rec.gamma)
