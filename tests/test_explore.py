"""The explorer draws exactly what sn.simulate returns for the config its controls stand for."""

import matplotlib
import numpy as np
import pytest

import signoise as sn
from signoise.explore import Explorer, config_of, gram_algorithms, phase_map, state_of


@pytest.fixture(scope="module")
def explorer():
    matplotlib.use("Agg")
    cfg = sn.RunConfig.from_dict({"seed": 1, "data": {"n": 8, "d": 200, "mu_norm": 12.0, "n_test": 50},
                                  "model": {"m": 4}, "train": {"lr": 0.01, "steps": 60, "record_every": 5}})
    ex = Explorer(cfg, phase=False)
    yield ex
    import matplotlib.pyplot as plt
    plt.close(ex.fig)


def _assert_drawn(ex, ds):
    x, y = ex.lines["gamma+"].get_data()
    np.testing.assert_array_equal(x, ds["step"].values)
    np.testing.assert_array_equal(y, ds["gamma_max"].sel(j=1).values)
    np.testing.assert_array_equal(ex.lines["gamma-"].get_data()[1], ds["gamma_max"].sel(j=-1).values)
    np.testing.assert_array_equal(ex.lines["rho"].get_data()[1], ds["rho_bar_max"].values)
    np.testing.assert_array_equal(ex.lines["train"].get_data()[1], ds["train_error"].values)
    np.testing.assert_array_equal(ex.lines["test"].get_data()[1], ds["test_error"].values)
    np.testing.assert_array_equal(ex.lines["path"].get_data()[0], ds["rho_bar_max"].values)


def test_slider_change_draws_simulate(explorer):
    explorer.sliders["mu_norm"].set_val(20.0)           # as a user's drag would
    explorer.sliders["n"].set_val(10)
    cfg = explorer.cfg
    assert (cfg.data.mu, cfg.data.n, cfg.seed) == (20.0, 10, 1)
    _assert_drawn(explorer, sn.simulate(cfg, engine="gram", quiet=True))


def test_algorithm_and_parameter(explorer):
    explorer.set(algorithm="sam", param=0.05)
    assert explorer.cfg.algorithm.name == "sam"
    assert explorer.cfg.algorithm.params["rho"] == 0.05
    assert explorer.sliders["param"].label.get_text() == "rho"
    _assert_drawn(explorer, sn.simulate(explorer.cfg, quiet=True))
    explorer.selector.set_active(gram_algorithms().index("pegr"))   # the radio-button click
    assert explorer.cfg.algorithm.name == "pegr"
    _assert_drawn(explorer, sn.simulate(explorer.cfg, quiet=True))


def test_large_d_switches_to_wishart(explorer):
    explorer.set(log10_d=6.0, algorithm="gd")
    assert explorer.cfg.data.d == 10 ** 6 and explorer.cfg.data.sampler == "wishart"
    _assert_drawn(explorer, sn.simulate(explorer.cfg, quiet=True))
    explorer.set(log10_d=np.log10(300))
    assert explorer.cfg.data.sampler == "explicit"


def test_state_round_trip():
    cfg = sn.RunConfig.from_dict({"data": {"n": 8, "d": 200, "mu_norm": 5.0},
                                  "algorithm": {"name": "gr", "lam": 0.3}})
    assert config_of(cfg, state_of(cfg)) == cfg


def test_gram_algorithms_exclude_out_of_span():
    names = gram_algorithms()
    assert "gd" in names and "pegr" in names
    assert "pgd" not in names and "grad_noise" not in names


def test_phase_map_matches_simulate():
    cfg = sn.RunConfig.from_dict({"data": {"n": 4, "d": 100, "mu_norm": 5.0, "n_test": 30},
                                  "model": {"m": 2}, "train": {"lr": 0.02, "steps": 20, "record_every": 10}})
    ns, snrs, error, const = phase_map(cfg, ns=(4, 6), snrs=(0.1, 1.0))
    assert error.shape == (2, 2) and const > 0
    one = sn.simulate(cfg.updated({"data.n": 6, "data.snr": 1.0}), quiet=True)
    assert error[1, 1] == float(one["test_error"][-1])
