"""Theorem checks: fit_exponent against closed forms, the registry/runner/report/CLI, and for
every check a run on its premise (PASS) and on a broken premise (FAIL, negative control)."""

import json

import numpy as np
import pytest

import signoise as sn
from signoise import theory
from signoise.checks import REGISTRY, run_checks, verdict_interval
from signoise.cli import main


def _ramp(q, ys, xs, seeds=1):
    """stat = 1/2 + log(x / x*(y)) clipped to [0, 1], x*(y) = y^(−1/q): linear in log x, so the
    interpolated crossing is exact and log y against log x* has slope −q exactly."""
    star = ys ** (-1.0 / q)
    stat = np.clip(0.5 + np.log(xs[None, :] / star[:, None]), 0, 1)
    return np.broadcast_to(stat, (seeds,) + stat.shape).copy(), star


@pytest.mark.parametrize("q", [3.0, 4.0])
def test_fit_exponent_exact_on_a_linear_crossing(q):
    ys = np.array([10.0, 20.0, 40.0, 80.0])
    xs = np.geomspace(0.05, 1.0, 25)
    stat, star = _ramp(q, ys, xs, seeds=3)
    fit = theory.fit_exponent(stat, xs, ys, 0.5, n_boot=20)
    np.testing.assert_allclose(fit["crossings"], star, rtol=1e-12)
    assert fit["slope"] == pytest.approx(-q, rel=1e-10)
    assert fit["ci"][0] == pytest.approx(-q, rel=1e-10) and fit["ci"][1] == pytest.approx(-q, rel=1e-10)


def test_fit_exponent_bootstrap_covers_truth_on_bernoulli_seeds():
    # each seed is a 0/1 outcome with the ramp's probability: the CI must cover −3 and shrink
    rng = np.random.default_rng(1)
    ys = np.array([10.0, 20.0, 40.0, 80.0])
    xs = np.geomspace(0.05, 1.0, 25)
    p, _ = _ramp(3.0, ys, xs)
    small = (rng.random((20,) + p.shape[1:]) < p).astype(float)
    large = (rng.random((400,) + p.shape[1:]) < p).astype(float)
    f_small = theory.fit_exponent(small, xs, ys, 0.5, n_boot=200)
    f_large = theory.fit_exponent(large, xs, ys, 0.5, n_boot=200)
    assert f_large["ci"][0] <= -3.0 <= f_large["ci"][1]
    assert f_large["se"] < f_small["se"]


def test_bootstrap_interval_covers_at_its_level_with_few_seeds():
    # Monte Carlo coverage of the mean of S = 6 normal draws (truth 0), 1000 replications:
    # the expanded interval covers about 92 %, the plain percentile interval about 85 % (its
    # resamples spread √(5/6) too little and 1.96 is not t₅); 0.885 separates them by > 2.5 se.
    rng = np.random.default_rng(1)
    S, R = 6, 1000
    hits = plain = 0
    for _ in range(R):
        x = rng.standard_normal(S)
        boot = x[rng.integers(0, S, (2000, S))].mean(1)
        lo, hi = theory.bootstrap_interval(boot, S)
        hits += lo <= 0.0 <= hi
        a, b = np.quantile(boot, [0.025, 0.975])
        plain += a <= 0.0 <= b
    assert hits / R > 0.885 > plain / R
    # many seeds: the plain interval; one seed: no interval
    boot = rng.standard_normal(20000)
    np.testing.assert_allclose(theory.bootstrap_interval(boot, 10**6),
                               np.quantile(boot, [0.025, 0.975]), atol=2e-3)
    assert np.isnan(theory.bootstrap_interval(boot, 1)).all()


def test_fit_exponent_rejects_a_wrong_shape_and_marks_rows_that_never_cross():
    with pytest.raises(sn.ConfigError, match=r"stat.shape = \(2, 3\)"):
        theory.fit_exponent(np.zeros((2, 3)), [1, 2, 3], [1, 2], 0.5)
    stat = np.zeros((1, 2, 3))
    stat[0, 1] = [0, 0.4, 1]
    xs = theory.crossings(stat, np.array([1.0, 2.0, 4.0]), 0.5)
    assert np.isnan(xs[0]) and xs[1] == pytest.approx(2.0 * 2 ** (1 / 6))


def test_verdict_interval():
    assert verdict_interval(1.0, 2.0, 0.0, 3.0) == "PASS"
    assert verdict_interval(4.0, 5.0, 0.0, 3.0) == "FAIL"
    assert verdict_interval(2.0, 4.0, 0.0, 3.0) == "INCONCLUSIVE"
    assert verdict_interval(np.nan, 4.0, 0.0, 3.0) == "INCONCLUSIVE"


def test_check_rejects_unknown_name_and_size():
    with pytest.raises(sn.ConfigError, match="'nope'.*cao_late_monotone"):
        sn.check("nope")
    with pytest.raises(sn.ConfigError, match="size"):
        sn.check("cao_late_monotone", size="huge")


# --- check 4: late-phase monotonicity ---------------------------------------------------------

def test_late_monotone_passes_under_gd_and_fails_with_signed_mask_noise(tmp_path):
    r = sn.check("cao_late_monotone")
    assert r.verdict == "PASS" and r.value <= r.uncertainty
    assert r.data.sizes["run"] == 12 and "gamma_max" in r.data
    ax = r.figure(tmp_path / "m.png")
    assert (tmp_path / "m.png").stat().st_size > 0 and ax is not None
    # negative control: Fisher-mask noise of scale 2 makes masks negative, so coefficients step
    # backwards
    bad = sn.check("cao_late_monotone", algorithm={"name": "msgd", "kind": "fisher", "s": 2.0})
    assert bad.verdict == "FAIL" and bad.value > 1e-6


def test_late_growth_is_logarithmic_and_the_transition_is_not():
    """Late phase: the slope against log t is the same on [1000, 4000] and [4000, 16000]
    (measured ratio 0.90); at the end of stage 1 (t ∈ [4, 64]) growth slows down: FAIL."""
    r = sn.check("cao_late_log_growth")
    assert r.verdict == "PASS" and 2 / 3 < r.value < 1.5
    assert (r.data.slope_early > 0).all()
    bad = sn.check("cao_late_log_growth", window=(4, 16, 64))
    assert bad.verdict == "FAIL" and bad.value < 2 / 3


# --- check 1: the Cao boundary exponent, race statistic, q = 3 --------------------------------

@pytest.fixture(scope="module")
def race_q3():
    return sn.check("cao_exponent_q3_race")


def test_cao_exponent_race_q3(race_q3):
    r = race_q3
    assert r.verdict in ("PASS", "INCONCLUSIVE")
    lo, hi = r.data.attrs["ci_lo"], r.data.attrs["ci_hi"]
    assert lo <= -3.0 <= hi
    assert np.isfinite(r.data.crossing).all()


def test_cao_exponent_negative_control_wrong_exponent():
    # the same experiment, expecting the wrong exponent −6: the CI excludes it
    r = sn.check("cao_exponent_q3_race", expected=-6.0)
    assert r.verdict == "FAIL"


# --- runner, report, CLI ------------------------------------------------------------------------

def test_cli_check_writes_report_and_figure_and_exit_status(tmp_path, capsys):
    assert main(["check", "--list"]) == 0
    listed = capsys.readouterr().out
    for name in REGISTRY:
        assert name in listed
    assert main(["check", "cao_late_monotone", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "cao_late_monotone" in out and "PASS" in out
    rep = json.loads((tmp_path / "report.json").read_text())
    assert rep["checks"][0]["verdict"] == "PASS" and rep["versions"]["signoise"] == sn.__version__
    assert "[train]" in rep["checks"][0]["configs"][0] and rep["checks"][0]["seeds"]
    assert (tmp_path / "cao_late_monotone.png").exists()
    # the check's data, to re-analyse, with its verdict
    import xarray as xr
    with xr.open_dataset(tmp_path / "cao_late_monotone.nc", engine="h5netcdf") as ds:
        assert ds.attrs["verdict"] == "PASS" and ds.attrs["check"] == "cao_late_monotone"
        assert ds.sizes["run"] == 12 and float(ds.gamma_max.max()) > 0
    assert main(["check", "nope"]) == 2


def test_an_interrupted_run_keeps_the_checks_it_finished(monkeypatch, tmp_path):
    import xarray as xr
    from signoise.checks import base, registry

    ok = base.Check(name="fine", claim="c", source="s", criterion="k",
                    run=lambda size: {"value": 1.0, "uncertainty": 0.0, "verdict": "PASS",
                                      "data": xr.Dataset({"v": ("x", [1.0, 2.0])},
                                                         attrs={"flag": True, "pair": (1, 2)})},
                    draw=lambda data, ax: ax)

    def boom(size):
        raise RuntimeError("killed")
    monkeypatch.setitem(registry.REGISTRY, "fine", ok)
    monkeypatch.setitem(registry.REGISTRY, "boom", base.Check(
        name="boom", claim="c", source="s", criterion="k", run=boom, draw=lambda d, ax: ax))
    with pytest.raises(RuntimeError, match="killed"):
        run_checks(["fine", "boom"], out=tmp_path)
    rep = json.loads((tmp_path / "report.json").read_text())
    assert [c["name"] for c in rep["checks"]] == ["fine"]
    with xr.open_dataset(tmp_path / "fine.nc", engine="h5netcdf") as ds:
        assert ds.attrs["flag"] == "True" and list(ds.attrs["pair"]) == [1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fine.nc", "fine.png", "report.json"]


def test_run_checks_exit_nonzero_on_fail(monkeypatch, capsys):
    from signoise.checks import base, registry

    fake = base.Check(name="always_fail", claim="c", source="s", criterion="k",
                      run=lambda size: {"value": 1.0, "uncertainty": 0.0, "verdict": "FAIL",
                                        "data": None},
                      draw=lambda data, ax: ax)
    monkeypatch.setitem(registry.REGISTRY, "always_fail", fake)
    assert main(["check", "always_fail"]) == 1
    assert "FAIL" in capsys.readouterr().out
    assert [r.verdict for r in run_checks(["always_fail"])] == ["FAIL"]


def test_a_check_runs_on_the_array_api_backend():
    """sn.check(..., backend="numpy") runs the check's simulations on the xp engine: the same
    monotonicity verdict as numba."""
    a = sn.check("cao_late_monotone", backend="numpy")
    b = sn.check("cao_late_monotone")
    assert a.verdict == b.verdict == "PASS"
    assert a.value == pytest.approx(b.value, abs=1e-9)
