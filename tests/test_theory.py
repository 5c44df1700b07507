"""Theory oracles: SNR, control parameters, boundaries (they solve control = C) and the fit."""

import numpy as np
import pytest
import xarray as xr

import signoise as sn
from signoise import theory


def test_snr_and_control_parameters():
    assert theory.snr(8.0, 1.0, 2000) == pytest.approx(8 / np.sqrt(2000))
    assert theory.cao_control(20, 30.0, 1.0, 2000, 3) == pytest.approx(20 * (30 / np.sqrt(2000)) ** 3)
    assert theory.kou_control(20, 3.0, 2.0, 500) == pytest.approx(20 * 81 / (16 * 500))
    # the config-keyed form, with snr in place of mu_norm
    v = {"data.n": 20, "data.d": 400, "data.snr": 0.5, "data.sigma_p": 2.0, "model.q": 3}
    assert theory.control("cao", v) == pytest.approx(20 * 0.125)
    with pytest.raises(sn.ConfigError, match="theory = 'x'"):
        theory.control("x", v)


@pytest.mark.parametrize("name, x_key, y_key", [
    ("cao", "data.n", "data.mu_norm"), ("cao", "data.d", "data.mu_norm"),
    ("cao", "data.mu_norm", "data.n"), ("kou", "data.mu_norm", "data.d"),
    ("kou", "data.d", "data.mu_norm"), ("cao", "data.mu_norm", "data.d"),
])
def test_boundary_solves_control_equals_constant(name, x_key, y_key):
    fixed = {"data.n": 20.0, "data.d": 800.0, "data.mu_norm": 4.0, "data.sigma_p": 1.3,
             "model.q": 3.0}
    fixed = {k: v for k, v in fixed.items() if k not in (x_key, y_key)}
    x = np.geomspace(2.0, 50.0, 7)
    xs, ys = theory.boundary(name, 2.5, x_key, y_key, x, fixed)
    back = theory.control(name, {**fixed, x_key: xs, y_key: ys})
    np.testing.assert_allclose(back, 2.5, rtol=1e-12)
    # Kou: d ∝ ‖μ‖⁴ along the boundary
    if (name, x_key, y_key) == ("kou", "data.mu_norm", "data.d"):
        np.testing.assert_allclose(ys / xs ** 4, ys[0] / xs[0] ** 4)


def test_fit_constant_recovers_a_sharp_threshold():
    c = np.geomspace(1e-3, 1e3, 61)
    error = np.where(c >= 2.0, 0.1, 0.5)
    const, miss = theory.fit_constant(c, error, threshold=0.3)
    assert miss == 0.0 and c[c < 2.0].max() < const < c[c >= 2.0].min()
    # noisy labels near the threshold: still close, few cells off
    rng = np.random.default_rng(0)
    noisy = np.where(rng.random(c.size) < 0.05, 0.6 - error, error)
    const, miss = theory.fit_constant(c, noisy, threshold=0.3)
    assert 0.2 < const < 20 and miss <= 0.1


def test_sweep_control_reads_axes_and_config():
    cfg = sn.RunConfig.from_dict({"data": {"n": 20, "d": 500, "mu_norm": 2.0, "sigma_p": 1.0},
                                  "model": {"q": 3.0}})
    ds = xr.Dataset(coords={"data.mu_norm": [1.0, 2.0], "data.n": [10, 40], "seed": [0]},
                    attrs={"config": cfg.to_toml()})
    ds["done"] = (("data.mu_norm", "data.n"), np.ones((2, 2), bool))
    c = theory.sweep_control(ds, "kou")
    assert c.dims == ("data.mu_norm", "data.n")
    np.testing.assert_allclose(c.values, [[10 / 500, 40 / 500], [160 / 500, 640 / 500]])
