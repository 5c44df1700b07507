"""Adaptive boundary search (signoise.boundary): known crossings of synthetic statistics, a dense
grid of real runs as the oracle, determinism, bad input, the CLI, and the Cao exponent checks at
the theorem's conditions with their negative controls."""

import math

import numpy as np
import pytest
import xarray as xr

import signoise as sn
from signoise import boundary as bd
from signoise import theory
from signoise.cli import main

Q = 3.0


def _star(cfg):
    """The synthetic boundary: ‖μ‖* = 20·n^(−1/3), so log n vs log ‖μ‖* has slope −3."""
    return 20.0 * cfg.data.n ** (-1.0 / Q)


def logistic(cfgs, seeds):
    """Deterministic, smooth, increasing in log ‖μ‖: P = 1/(1 + (‖μ‖*/‖μ‖)^4); 1/2 at ‖μ‖*."""
    return np.array([1.0 / (1.0 + (_star(c) / c.data.mu) ** 4) for c in cfgs])


def bernoulli(cfgs, seeds):
    """A 0/1 draw with the logistic's probability, decreasing in ‖μ‖ (like a test error);
    independent across (seed, ‖μ‖, n)."""
    out = []
    for c, s in zip(cfgs, seeds):
        u = np.random.default_rng([s, int(c.data.n), round(c.data.mu * 1e9)]).random()
        out.append(float(u < 1.0 - logistic([c], [s])[0]))
    return np.array(out)


def _cfg(**grid):
    base = sn.RunConfig.from_dict({
        "data": {"n": 10, "d": 500, "mu_norm": 10.0, "n_test": 100, "sampler": "wishart"},
        "model": {"m": 5, "q": 3.0, "sigma0": 0.01},
        "train": {"lr": 2e-3, "steps": 800, "record_every": 800}})
    if grid:
        d = base.to_dict()
        d["sweep"] = {"seeds": 1, "grid": grid}
        base = sn.RunConfig.from_dict(d)
    return base


NS = [10, 20, 40, 80]


def test_deterministic_synthetic_crossing_found_within_its_resolution():
    ds = bd.find_boundary(_cfg(), "data.mu_norm", "data.n", NS, (1.0, 40.0), level=0.5,
                          stat=logistic, tol=0.02)
    truth = np.array([_star(_cfg().updated({"data.n": n})) for n in NS])
    assert list(ds.status.values) == ["converged"] * 4
    assert np.all(ds.se_bootstrap.values <= 1e-12) and np.all(ds.se.values <= 0.02)
    # x* lies in the final bracket, whose half-width is √3·se
    assert np.all(np.abs(np.log(ds.crossing.values / truth)) <= math.sqrt(3) * ds.se.values)
    fit = bd.fit_boundary_exponent(ds)
    assert fit["ci"][0] <= -Q <= fit["ci"][1] and fit["slope"] == pytest.approx(-Q, abs=0.1)


def test_noisy_synthetic_crossing_within_three_se_and_tolerance_met():
    ds = bd.find_boundary(_cfg(), "data.mu_norm", "data.n", NS, (2.0, 30.0), level=0.5,
                          stat=bernoulli, tol=0.06, max_seeds=256)
    truth = np.array([_star(_cfg().updated({"data.n": n})) for n in NS])
    conv = ds.status.values == "converged"
    assert conv.all()
    assert np.all(ds.se.values <= 0.06)
    z = np.log(ds.crossing.values / truth) / ds.se.values
    assert np.all(np.abs(z) <= 3), z
    # seeds were added where they were needed: more than the start, and the runs add up
    assert ds.seeds_used.max() > 8
    assert int(ds.runs.sum()) == ds.attrs["runs"] == int(np.isfinite(ds.value).sum())


def test_unbracketed_row_is_widened_or_reported():
    # the crossing (‖μ‖* ≈ 9.3 at n = 10) lies right of [1, 2]: widened by the range's own
    # width (×2 each side) it is found; with no widening the row says "no crossing"
    ds = bd.find_boundary(_cfg(), "data.mu_norm", "data.n", [10], (1.0, 2.0), level=0.5,
                          stat=logistic, tol=0.05, max_expand=3)
    assert ds.status.item() == "converged" and 8 < ds.crossing.item() < 11
    ds = bd.find_boundary(_cfg(), "data.mu_norm", "data.n", [10], (1.0, 2.0), level=0.5,
                          stat=logistic, tol=0.05, max_expand=0)
    assert ds.status.item() == "no crossing" and np.isnan(ds.crossing.item())


def test_search_is_deterministic_and_independent_of_workers():
    kw = {"level": 0.5, "stat": bernoulli, "tol": 0.08}
    a = bd.find_boundary(_cfg(), "data.mu_norm", "data.n", [10, 40], (2.0, 30.0), **kw)
    b = bd.find_boundary(_cfg(), "data.mu_norm", "data.n", [10, 40], (2.0, 30.0), **kw)
    c = bd.find_boundary(_cfg(), "data.mu_norm", "data.n", [10, 40], (2.0, 30.0), workers=2,
                         **kw)
    xr.testing.assert_identical(a, b)
    xr.testing.assert_identical(a, c)


def test_real_cao_crossing_agrees_with_a_dense_grid():
    """Race statistic of real GD runs: the search's crossing against theory.crossings on a dense
    grid of the same seeds, within the two standard errors combined (z <= 3)."""
    cfg = _cfg()
    ds = bd.find_boundary(cfg, "data.mu_norm", "data.n", [10], (10.0, 40.0), stat="race",
                          tol=0.08, seeds=8, max_seeds=32)
    K = ds.seeds_used.item()
    # every value is the run of its own config and seed, whatever the search path
    k = int(np.flatnonzero(np.isfinite(ds.x_eval[0].values))[1])
    x1 = float(ds.x_eval[0, k])
    direct = bd.race_indicator([cfg.updated({"data.mu_norm": x1})] * 3, [0, 1, 2])
    np.testing.assert_array_equal(ds.value[0, k, :3].values, direct)
    # the oracle: a dense log grid over the same range, seeds 0..K-1
    xs = np.geomspace(10.0, 40.0, 17)
    runs = [cfg.updated({"data.mu_norm": float(x)}) for x in xs for _ in range(K)]
    stat = bd.race_indicator(runs, [s for _ in xs for s in range(K)]).reshape(xs.size, K).T
    grid = theory.crossings(stat[:, None, :], xs, 0.5)[0]
    rng = np.random.default_rng(0)
    boot = np.array([theory.crossings(stat[rng.integers(0, K, K)][:, None, :], xs, 0.5)[0]
                     for _ in range(200)])
    se_grid = math.hypot(np.nanstd(np.log(boot)), math.log(xs[1] / xs[0]) / math.sqrt(12))
    assert ds.status.item() == "converged" and np.isfinite(grid)
    assert abs(math.log(ds.crossing.item() / grid)) <= 3 * math.hypot(ds.se.item(), se_grid)


def test_fit_boundary_exponent_exact_on_exact_crossings():
    ys = np.array([10.0, 20.0, 40.0, 80.0])
    ds = xr.Dataset({"crossing": ("data.n", 3.0 * ys ** (-1 / 4.0)),
                     "se": ("data.n", np.full(4, 0.01))}, coords={"data.n": ys},
                    attrs={"y": "data.n"})
    fit = bd.fit_boundary_exponent(ds)
    assert fit["slope"] == pytest.approx(-4.0, rel=1e-12) and fit["rows"] == 4
    assert fit["ci"][0] < -4.0 < fit["ci"][1]
    # a boundary that bends: the scatter widens the interval (√(χ²/dof) scaling)
    bent = ds.assign(crossing=ds.crossing * np.exp([0.0, 0.1, -0.1, 0.0]))
    f2 = bd.fit_boundary_exponent(bent)
    assert f2["se"] > 5 * fit["se"]


def _spy():
    calls = []

    def stat(cfgs, seeds):
        calls.append(len(cfgs))
        return np.zeros(len(cfgs))
    return stat, calls


@pytest.mark.parametrize("kwargs, match", [
    ({"x": "data.mu_nrm"}, "did you mean 'data.mu_norm'"),
    ({"y": "data.mu_norm"}, r"y = 'data.mu_norm' is not allowed.*other than x"),
    ({"level": 1.5, "stat": "race"}, r"level = 1.5 is not allowed"),
    ({"stat": "accuracy"}, r"stat = 'accuracy' is not allowed.*'error', 'loss', 'race'"),
    ({"tol": 0.0}, r"tol = 0.0 is not allowed"),
    ({"seeds": 1}, r"seeds = 1 is not allowed.*>= 2"),
    ({"seeds": 8, "max_seeds": 4}, r"max_seeds = 4 is not allowed.*>= 8"),
    ({"x_range": (5.0, 1.0)}, r"x_range = \(5.0, 1.0\) is not allowed"),
    ({"y_values": [10, 0]}, r"data.n = 0 is not allowed"),
    ({"workers": 0}, r"workers = 0 is not allowed"),
    ({"tol": float("nan")}, r"tol = nan is not allowed"),
    ({"x_range": ("a", "b")}, r"x_range = \('a', 'b'\) is not allowed"),
])
def test_bad_input_is_rejected_before_any_run(kwargs, match):
    stat, calls = _spy()
    args = {"x": "data.mu_norm", "y": "data.n", "y_values": [10, 20], "x_range": (1.0, 40.0),
                "level": 0.5, "stat": stat}
    args.update(kwargs)
    with pytest.raises(sn.ConfigError, match=match):
        bd.find_boundary(_cfg(), **args)
    assert calls == []


def test_defaults_from_the_sweep_grid_and_custom_stat_needs_a_level():
    stat, calls = _spy()
    with pytest.raises(sn.ConfigError, match="level = None is not allowed"):
        bd.find_boundary(_cfg(), "data.mu_norm", "data.n", [10], (1.0, 2.0), stat=stat)
    with pytest.raises(sn.ConfigError, match=r"y = 'data.n' is not allowed.*grid axis"):
        bd.find_boundary(_cfg(), "data.mu_norm", "data.n", stat="race")
    assert calls == []
    assert bd.default_level("error", _cfg().updated({"data.flip": 0.1})) == pytest.approx(0.3)
    assert bd.default_level("loss", _cfg()) == 0.1 and bd.default_level("race", _cfg()) == 0.5
    ds = bd.find_boundary(_cfg(**{"data.n": [10, 20], "data.mu_norm": [2.0, 30.0]}),
                          "data.mu_norm", "data.n", level=0.5, stat=logistic, tol=0.1)
    assert list(ds["data.n"].values) == [10, 20]
    assert np.nanmin(ds.x_eval) == 2.0 and np.nanmax(ds.x_eval) == 30.0


def test_cli_boundary_writes_dataset_figure_and_table(tmp_path, capsys):
    cfg = _cfg(**{"data.n": [10, 20], "data.mu_norm": {"geomspace": [10.0, 40.0, 3]}})
    path = tmp_path / "b.toml"
    sn.dump_config(cfg, path)
    out = tmp_path / "b.nc"
    assert main(["boundary", str(path), "-x", "data.mu_norm", "-y", "data.n", "--stat", "race",
                 "--tol", "0.15", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "data.mu_norm*" in text and "grid of equal precision" in text
    ds = xr.open_dataset(out, engine="h5netcdf").load()
    assert ds.sizes["data.n"] == 2 and ds.attrs["stat"] == "race"
    assert (tmp_path / "b.png").stat().st_size > 0
    # a bad key: one line, exit 2, nothing written
    assert main(["boundary", str(path), "-x", "data.mu", "-y", "data.n",
                 "--out", str(tmp_path / "c.nc")]) == 2
    assert "data.mu" in capsys.readouterr().err and not (tmp_path / "c.nc").exists()
    # an existing output is not overwritten silently
    assert main(["boundary", str(path), "-x", "data.mu_norm", "-y", "data.n",
                 "--out", str(out)]) == 2


# --- the Cao exponent checks at the theorem's conditions, with negative controls ---------------

def test_theorem_race_exponent_is_decided_only_where_the_rows_allow_and_can_fail():
    r = sn.check("cao_exponent_q3_race_theorem")
    assert (r.data.status == "converged").all()
    # three rows that bend (local slopes about −2.2 and −3.1): the scatter is estimated from one
    # degree of freedom, so the interval is t₁-wide and holds −3: undecided at quick size
    assert r.verdict == "INCONCLUSIVE" and -3.5 < r.value < -2.0, r.where
    # negative control: a linear law n·SNR = C is excluded even so
    assert sn.check("cao_exponent_q3_race_theorem", expected=-1.0).verdict == "FAIL"


def test_theorem_loss_exponent_holds_three_and_can_fail():
    r = sn.check("cao_exponent_q3_loss_theorem")
    # measured at quick size: −2.37, CI [−3.66, −1.75]: undecided, holds −3
    assert r.verdict != "FAIL" and -3.5 < r.value < -1.8, r.where
    assert r.data.attrs["level"] == 0.1
    # negative control: a steep exponent expected is excluded
    assert sn.check("cao_exponent_q3_loss_theorem", expected=-8.0).verdict == "FAIL"


def test_theorem_q4_exponents_hold_four_and_can_fail():
    r = sn.check("cao_exponent_q4_race_theorem")
    assert (r.data.status == "converged").all()
    assert r.verdict != "FAIL" and -5.5 < r.value < -3.0, r.where
    assert sn.check("cao_exponent_q4_race_theorem", expected=-2.0).verdict == "FAIL"
    # the loss row reuses the race row's runs where they coincide (one process, one memo)
    loss = sn.check("cao_exponent_q4_loss_theorem")
    assert loss.verdict != "FAIL" and loss.value < -3.0, loss.where
    assert sn.check("cao_exponent_q4_loss_theorem", expected=-2.0).verdict == "FAIL"


def test_fit_boundary_exponent_uses_t_when_the_scatter_is_estimated():
    # three rows bent by ±0.1 in log x* with se 0.01: χ²/dof ≫ 1, so the interval of b is
    # b ± t₁(0.975) se_b (12.7, not 1.96); exact rows keep 1.96 with the given se
    ys = np.array([10.0, 20.0, 40.0])
    ds = xr.Dataset({"crossing": ("data.n", 3.0 * ys ** (-1 / 3.0)),
                     "se": ("data.n", np.full(3, 0.01))}, coords={"data.n": ys},
                    attrs={"y": "data.n"})
    exact = bd.fit_boundary_exponent(ds)
    u = np.log(ys)
    se_b = 0.01 / np.sqrt(((u - u.mean()) ** 2).sum())
    np.testing.assert_allclose(exact["b_ci"], (-1 / 3 - 1.959964 * se_b, -1 / 3 + 1.959964 * se_b),
                               rtol=1e-6)
    assert bd.exponent_in_interval(exact, -3.0) and not bd.exponent_in_interval(exact, -3.5)
    bent = bd.fit_boundary_exponent(ds.assign(crossing=ds.crossing * np.exp([0.0, 0.1, 0.0])))
    half = (bent["b_ci"][1] - bent["b_ci"][0]) / 2
    resid = np.array([0.0, 0.1, 0.0]) - np.polyval(np.polyfit(u, [0.0, 0.1, 0.0], 1), u)
    scale = np.sqrt((resid ** 2).sum() / 0.01 ** 2 / 1)
    assert half == pytest.approx(12.7062047 * se_b * scale, rel=1e-6)
    # an interval of b holding 0 leaves the slope unbounded, yet still excludes some slopes
    flat = bd.fit_boundary_exponent(ds.assign(crossing=ds.crossing * 0 + 5.0,
                                              se=("data.n", np.full(3, 0.2))))
    assert flat["ci"] == (-np.inf, np.inf)
    assert not bd.exponent_in_interval(flat, -0.1) and bd.exponent_in_interval(flat, -40.0)
