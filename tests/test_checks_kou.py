"""data.flip_exact, the Kou et al. (2023) checks, Cao's early-phase race check and the
stage-1 theory curves: each against an independent oracle, and every check on a broken
premise (FAIL, negative control)."""

import numpy as np
import pytest

import signoise as sn
from signoise.data import STREAM_DATA, STREAM_TEST, flip_counts, rng_for, sample_problem
from signoise.wishart import sample_reduced


def _cfg(**data):
    base = {"n": 21, "d": 60, "mu_norm": 3.0, "flip": 0.2, "n_test": 37}
    return sn.RunConfig.from_dict({"data": {**base, **data}, "model": {"m": 3}})


def _bernoulli_labels(seed, stream, count, p):
    """The flips as they were before data.flip_exact existed (an obvious re-implementation)."""
    rng = rng_for(seed, stream)
    y_true = 2.0 * rng.integers(0, 2, size=count) - 1.0
    u = rng.random(count)
    return np.where(u < p, -y_true, y_true), y_true


# --- data.flip_exact ----------------------------------------------------------------------------

@pytest.mark.parametrize("sampler", ["explicit", "wishart"])
@pytest.mark.parametrize("p", [0.1, 0.2, 0.35])
def test_flip_exact_flips_round_p_nc_in_each_class(sampler, p):
    draw = sample_problem if sampler == "explicit" else sample_reduced
    for seed in range(5):
        prob = draw(_cfg(flip=p, flip_exact=True, sampler=sampler), seed)
        for y, yt in ((prob.y, prob.y_true), (prob.y_test, prob.y_true_test)):
            for c in (1.0, -1.0):
                n_c = int(np.sum(yt == c))
                # an independent count: the nearest integer to p·n_c, halves up
                want = int(np.floor(p * n_c + 0.5 + 1e-9))
                assert np.sum((y != yt) & (yt == c)) == want


def test_flip_counts_rounds_halves_up():
    y = np.array([1.0] * 5 + [-1.0] * 15)
    assert flip_counts(y, 0.1) == {1.0: 1, -1.0: 2}  # 0.5 -> 1, 1.5 -> 2
    assert flip_counts(y, 0.0) == {1.0: 0, -1.0: 0}


@pytest.mark.parametrize("sampler", ["explicit", "wishart"])
def test_default_flips_are_unchanged_and_flip_exact_moves_no_other_draw(sampler):
    draw = sample_problem if sampler == "explicit" else sample_reduced
    cfg = _cfg(sampler=sampler)
    assert cfg.data.flip_exact is False
    for seed in (0, 3):
        base = draw(cfg, seed)
        y, yt = _bernoulli_labels(seed, STREAM_DATA, 21, 0.2)
        np.testing.assert_array_equal(base.y, y)
        np.testing.assert_array_equal(base.y_true, yt)
        y, yt = _bernoulli_labels(seed, STREAM_TEST, 37, 0.2)
        np.testing.assert_array_equal(base.y_test, y)
        exact = draw(_cfg(sampler=sampler, flip_exact=True), seed)
        # same stream: the true labels, noises, filters and test points are bit-identical
        for name in ("y_true", "xi", "w0", "xi_test", "y_true_test"):
            np.testing.assert_array_equal(getattr(exact, name), getattr(base, name))


def test_flip_exact_picks_a_uniformly_random_subset():
    """Monte Carlo: given its class, every position flips with probability k_c/n_c; the sum
    over 3000 seeds of (flipped − k_c/n_c) is within 4.5 standard errors at every position."""
    from signoise.data import _labels

    n, p, S = 9, 0.25, 3000
    dev, var = np.zeros(n), np.zeros(n)
    for s in range(S):
        y, yt = _labels(rng_for(s, STREAM_DATA), n, p, exact=True)
        k = flip_counts(yt, p)
        prob = np.array([k[c] / np.sum(yt == c) for c in yt])
        dev += (y != yt) - prob
        var += prob * (1 - prob)
    assert np.all(np.abs(dev) <= 4.5 * np.sqrt(var))


def test_flip_exact_rejects_non_booleans():
    for bad in (1, "true", None):
        with pytest.raises(sn.ConfigError, match=r"data\.flip_exact"):
            _cfg(flip_exact=bad)
