import pytest

import signoise as sn


def make_cfg(**changes):
    """A small config; ``changes`` uses dotted keys with '__' for '.', e.g. data__n=8."""
    base = {
        "seed": 3,
        "data": {"n": 8, "d": 40, "mu_norm": 3.0, "sigma_p": 1.0, "n_test": 50},
        "model": {"m": 3, "q": 3.0, "sigma0": 0.3},
        "train": {"lr": 0.2, "steps": 50, "record_every": 10},
    }
    cfg = sn.RunConfig.from_dict(base)
    return cfg.updated({k.replace("__", "."): v for k, v in changes.items()}) if changes else cfg


@pytest.fixture
def small_cfg():
    return make_cfg
