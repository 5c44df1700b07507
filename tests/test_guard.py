"""Preflight estimates (checked against the arrays a run actually holds) and warnings."""

import numpy as np
import pytest

import signoise as sn
from signoise import guard

from .conftest import make_cfg


def test_output_estimate_matches_a_real_run():
    cfg = make_cfg(data__n=6, train__steps=20, train__record_every=2)
    ds = sn.simulate(cfg, quiet=True)
    recorded = sum(v.nbytes for v in ds.data_vars.values() if "step" in v.dims)
    est = guard.output_bytes(cfg, "full")
    assert 0.5 * recorded <= est <= 2 * recorded, (est, recorded)


def test_refuses_what_cannot_fit_with_the_alternatives():
    cfg = make_cfg(data__n=200, data__d=10 ** 8)
    assert guard.run_bytes(cfg) >= 8 * (200 + cfg.data.n_test) * 10 ** 8
    with pytest.raises(sn.ConfigError, match="wishart") as err:
        guard.preflight(cfg, available=16 * 2 ** 30)
    assert "GB" in str(err.value) and "record_every" in str(err.value)


def test_warnings_once_and_returned():
    cfg = make_cfg(train__lr=1e6, model__sigma0=1.0, data__d=400)
    with pytest.warns(guard.SignoiseWarning) as rec:
        texts = guard.preflight([cfg, cfg], available=2 ** 40)
    assert any("train.lr" in t for t in texts) and any("σ₀ σ_p √d" in t for t in texts)
    assert len(rec) == len(texts) == len(set(texts))


def test_quiet_for_a_benign_config():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert guard.preflight(make_cfg(model__sigma0=0.01), available=2 ** 40) == []


def test_big_output_warns():
    cfg = make_cfg(train__steps=2 * 10 ** 6, train__record_every=1, data__n=10)
    with pytest.warns(guard.SignoiseWarning, match="record_every"):
        guard.preflight(cfg, available=2 ** 50)
    assert np.isfinite(guard.output_bytes(cfg))
