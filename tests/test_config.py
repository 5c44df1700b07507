"""Validation: every rule rejects its bad value before any work, naming the key."""

import math

import pytest

import signoise as sn
from signoise.config import parse_value

from .conftest import make_cfg

GOOD = {"data": {"n": 8, "d": 40, "mu_norm": 3.0}}


def with_(section, key, value):
    d = {"data": dict(GOOD["data"])}
    d.setdefault(section, {})[key] = value
    return d


BAD = [
    (with_("data", "n", 0), "data.n"),
    (with_("data", "n", -3), "data.n"),
    (with_("data", "n", 2.5), "data.n"),
    (with_("data", "n", "8"), "data.n"),
    (with_("data", "n", 40), "data.n"),            # n > d - 1
    (with_("data", "d", 1), "data.d"),
    (with_("data", "sigma_p", 0.0), "data.sigma_p"),
    (with_("data", "sigma_p", math.nan), "data.sigma_p"),
    (with_("data", "mu_norm", math.inf), "data.mu_norm"),
    (with_("data", "mu_norm", -1.0), "data.mu_norm"),
    (with_("data", "snr", 0.3), "data.mu_norm"),   # both given
    (with_("data", "flip", 0.5), "data.flip"),
    (with_("data", "flip", -0.1), "data.flip"),
    (with_("data", "noise", "gaussian"), "data.noise"),
    (with_("data", "n_test", 0), "data.n_test"),
    (with_("data", "nn", 3), "did you mean 'data.n'"),
    (with_("model", "q", 0.5), "model.q"),
    (with_("model", "m", 0), "model.m"),
    (with_("model", "sigma0", -0.1), "model.sigma0"),
    (with_("model", "bias", 1), "model.bias"),
    (with_("model", "init", "xavier"), "model.init"),
    (with_("model", "sigma_0", 0.1), "did you mean 'model.sigma0'"),
    (with_("train", "lr", 0.0), "train.lr"),
    (with_("train", "lr", -1.0), "train.lr"),
    (with_("train", "steps", 0), "train.steps"),
    (with_("train", "record_every", 2000), "train.record_every"),
    (with_("train", "loss_threshold", 0.0), "train.loss_threshold"),
    (with_("algorithm", "name", "adam"), "algorithm.name"),
    (with_("algorithm", "lam", 0.1), "algorithm.lam"),
    (with_("sweep", "seeds", 0), "sweep.seeds"),
    (with_("sweep", "grid", {"data.nn": [1, 2]}), "data.nn"),
    (with_("sweep", "grid", {"data.n": {"geomspace": [0, 4, 3]}}), "sweep.grid.data.n"),
    (with_("sweep", "grid", {"data.n": []}), "sweep.grid.data.n"),
    (with_("sweep", "grid", {"data.n": {"logspace": [1, 2, 3]}}), "sweep.grid.data.n"),
    ({**GOOD, "traine": {}}, "did you mean 'train'"),
    ({"data": {"n": 8, "d": 40}}, "data.mu_norm"),
    ({}, "data"),
]


@pytest.mark.parametrize("d,match", BAD, ids=[m for _, m in BAD])
def test_bad_values_are_rejected_with_the_key(d, match):
    with pytest.raises((ValueError, TypeError), match=match.replace(".", r"\.")) as info:
        sn.RunConfig.from_dict(d)
    assert "is not allowed" in str(info.value) or "unknown key" in str(info.value) \
        or "missing" in str(info.value) or "both given" in str(info.value)


def test_good_config_round_trips_through_toml(tmp_path):
    cfg = make_cfg().updated({"data.flip": 0.1, "model.bias": True, "train.loss_threshold": 1e-3})
    path = tmp_path / "c.toml"
    sn.dump_config(cfg, path)
    assert sn.load_config(path) == cfg


def test_updated_switches_between_mu_norm_and_snr():
    cfg = make_cfg().updated({"data.snr": 0.2})
    assert cfg.data.mu_norm is None and cfg.data.snr == 0.2
    assert cfg.updated({"data.mu_norm": 1.0}).data.snr is None


def test_ints_are_accepted_for_reals():
    cfg = make_cfg().updated({"train.lr": 1, "model.q": 2})
    assert isinstance(cfg.train.lr, float) and cfg.model.q == 2.0


def test_grid_axes_expand():
    cfg = sn.RunConfig.from_dict({**GOOD, "sweep": {"seeds": 3, "grid": {
        "data.n": [4, 8], "data.mu_norm": {"geomspace": [1.0, 16.0, 5]},
        "train.lr": {"linspace": [0.1, 0.3, 3]}}}})
    axes = cfg.sweep.axes()
    assert axes["data.n"] == [4, 8]
    assert axes["data.mu_norm"] == pytest.approx([1, 2, 4, 8, 16])
    assert axes["train.lr"] == pytest.approx([0.1, 0.2, 0.3])


def test_parse_value():
    assert parse_value("3") == 3 and parse_value("0.5") == 0.5 and parse_value("true") is True
    assert parse_value("gd") == "gd" and parse_value('"x"') == "x"


# Bad values generated from each field's own constraint (scikit-learn's way): every value a
# constraint refuses must be refused when built into a config, with the key in the message.
def _generated_bad_values():
    from dataclasses import fields

    from signoise.algorithms import ALGORITHMS
    from signoise.config import _SECTIONS

    cases = []
    for section, cls in _SECTIONS.items():
        if section in ("algorithm", "sweep"):
            continue
        for f in fields(cls):
            for bad in f.metadata["constraint"].invalid():
                cases.append(("gd", f"{section}.{f.name}", bad))
    for name, algo in ALGORITHMS.items():
        for key, p in algo.params.items():
            for bad in p.constraint.invalid():
                cases.append((name, f"algorithm.{key}", bad))
    return cases


GENERATED = _generated_bad_values()


@pytest.mark.parametrize("algorithm,key,bad", GENERATED,
                         ids=[f"{a}-{k}-{b!r}" for a, k, b in GENERATED])
def test_every_constraint_rejects_its_invalid_values(algorithm, key, bad):
    from .conftest import make_cfg

    with pytest.raises(sn.ConfigError) as info:
        make_cfg(data__flip=0.1).updated({"algorithm.name": algorithm, key: bad})
    assert key in str(info.value)


def test_numpy_scalars_are_numbers():
    import numpy as np

    from .conftest import make_cfg

    cfg = make_cfg().updated({"data.n": np.int64(10), "data.mu_norm": np.float32(2.5),
                              "model.bias": np.bool_(True), "train.steps": np.float64(20.0)})
    assert (cfg.data.n, cfg.data.mu_norm, cfg.model.bias, cfg.train.steps) == (10, 2.5, True, 20)
    assert type(cfg.data.n) is int and type(cfg.model.bias) is bool
    with pytest.raises(TypeError, match="data.n"):
        make_cfg().updated({"data.n": np.bool_(True)})
