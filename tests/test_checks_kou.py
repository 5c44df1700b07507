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


# --- check 2: Kou et al. 2023 -------------------------------------------------------------------

def test_kou_boundary_slope_is_four_at_the_theorems_conditions(tmp_path):
    r = sn.check("kou_boundary_theorem")
    assert r.verdict == "PASS"
    assert 3.6 <= r.data.attrs["ci_lo"] <= r.value <= r.data.attrs["ci_hi"] <= 4.4
    d = r.data.d.values
    assert d[-1] / d[0] >= 100                       # at least two decades of d
    assert np.isfinite(r.data.crossing).all() and r.data.sizes["pair"] == d.size - 1
    # the local slopes are the two-point slopes of the crossings
    x = r.data.crossing.values
    np.testing.assert_allclose(r.data.local_slope, np.diff(np.log(d)) / np.diff(np.log(x)))
    r.figure(tmp_path / "k.png")
    assert (tmp_path / "k.png").stat().st_size > 0
    # negative controls: a wrong exponent, and the paper's settings (the law bends there)
    assert sn.check("kou_boundary_theorem", expected=3.0).verdict == "FAIL"
    assert sn.check("kou_boundary_theorem", settings="paper").verdict == "FAIL"


def test_kou_boundary_bends_at_the_papers_settings():
    r = sn.check("kou_boundary_paper_settings")
    assert r.verdict == "PASS"
    assert r.data.local_slope[0] > r.data.local_slope[-1] and r.data.local_hi[-1] < 3.6
    assert "within 10% of 4 for d in" in r.where
    # negative control: at the theorem's conditions there is no bend to see
    assert sn.check("kou_boundary_paper_settings", settings="theorem").verdict == "FAIL"


def test_kou_error_floor_is_the_flip_rate():
    r = sn.check("kou_error_floor")
    assert r.verdict == "PASS" and r.where == "holds for p in {0.05, 0.1, 0.2}"
    benign = r.data.test_error.sel(cell="benign").mean("seed")
    # with exact flips on the test labels the floor is p to within the rounding of p·n_c
    np.testing.assert_allclose(benign, r.data.p, atol=3 * float(r.data.se.max()))
    # negative controls: a "benign" cell that is not (control 0.3 < C), and a wrong floor
    assert sn.check("kou_error_floor", controls={"benign": 0.3}).verdict == "FAIL"
    assert sn.check("kou_error_floor", offset=0.05).verdict == "FAIL"


# --- check 3: Cao's early-phase race ------------------------------------------------------------

@pytest.mark.parametrize("which", ["signal", "noise"])
def test_cao_race_time_slopes_match_stage1_theory(which, tmp_path):
    r = sn.check(f"cao_race_{which}_time")
    assert r.verdict == "PASS"
    axes = ("mu_norm", "sigma0") if which == "signal" else ("d",)
    for axis in axes:
        expected = r.data.attrs[f"expected_{axis}"]
        assert abs(r.data.attrs[f"slope_{axis}"] - expected) <= 0.1 * abs(expected)
        assert np.isfinite(r.data[f"time_{axis}"]).all()
    r.figure(tmp_path / "r.png")
    # negative control: the theory evaluated at the wrong exponent q = 4
    assert sn.check(f"cao_race_{which}_time", q=4.0).verdict == "FAIL"
