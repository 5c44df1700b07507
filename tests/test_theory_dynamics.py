"""The stage-1 early-phase theory (signoise.theory.stage1_dynamics, race_times,
lprime_leaves_half) against closed forms, a naive loop and the simulation, and its overlay
in `signoise plot dynamics RUN.nc --theory` (the line data, not only "no error")."""

import warnings

import numpy as np
import pytest
import xarray as xr

import signoise as sn
from signoise import theory
from signoise.cli import main
from signoise.data import sample_problem


def _cfg(q=3.0, steps=600, every=20, **data):
    base = {"n": 10, "d": 2000, "mu_norm": 20.0, "n_test": 10}
    return sn.RunConfig.from_dict({"data": {**base, **data},
                                   "model": {"m": 5, "q": q, "sigma0": 1e-3},
                                   "train": {"lr": 2.5e-4, "steps": steps, "record_every": every}})


def _naive_stage1(prob, q, lr, a, steps):
    """The stage-1 recursion written out with Python loops (ℓ' = −1/2, own coefficient only)."""
    n, m = prob.xi.shape[0], prob.w0.shape[1]
    def act1(z):
        return q * z ** (q - 1) if z > 0 else 0.0

    gamma, rho = np.zeros((2, m)), np.zeros((2, m, n))
    for _ in range(steps):
        g_new, r_new = gamma.copy(), rho.copy()
        for jj, j in enumerate((1.0, -1.0)):
            for r in range(m):
                a0 = float(prob.w0[jj, r] @ prob.mu)
                for i in range(n):
                    yt, y = prob.y_true[i], prob.y[i]
                    g_new[jj, r] += lr * a / (2 * n) * float(prob.mu @ prob.mu) * act1(
                        yt * (a0 + j * gamma[jj, r])) * y * yt
                    b0 = float(prob.w0[jj, r] @ prob.xi[i])
                    r_new[jj, r, i] += lr * a / (2 * n) * float(prob.xi[i] @ prob.xi[i]) * act1(
                        b0 + rho[jj, r, i]) * j * y
        gamma, rho = g_new, r_new
    return gamma, rho


@pytest.mark.parametrize("flip", [0.0, 0.3])
def test_stage1_equals_a_naive_loop(flip):
    cfg = _cfg(steps=30, every=30, d=40, flip=flip)
    th = theory.stage1_dynamics(cfg)
    g, r = _naive_stage1(sample_problem(cfg), 3.0, 2.5e-4, 1 / 5, 30)
    np.testing.assert_allclose(th.gamma.isel(step=-1), g, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(th.rho.isel(step=-1), r, rtol=1e-12, atol=1e-15)


def test_stage1_is_a_power_iteration_closed_form_at_q2():
    """q = 2, no flips: each pre-activation is geometric, x_t = x_0 (1 + 2c)^t, with
    c = η a ‖μ‖² n_j/(2n) (signal) or η a ‖ξ_i‖²/(2n) (noise, y_i = j, x_0 > 0)."""
    cfg = _cfg(q=2.0, steps=50, every=10, d=200)
    prob = sample_problem(cfg)
    th = theory.stage1_dynamics(cfg)
    t = th.step.values[:, None, None]
    c0 = 2.5e-4 * (1 / 5) / (2 * 10)
    x0 = np.array([1.0, -1.0])[:, None] * (prob.w0 @ prob.mu)                     # j⟨w0, μ⟩
    n_j = np.array([(prob.y_true == 1).sum(), (prob.y_true == -1).sum()])[:, None]
    # x > 0: class j pushes it up, x_t = x_0 (1 + 2c n_j)^t; x < 0: class −j pulls it to 0,
    # x_t = x_0 (1 − 2c n_{−j})^t; γ_t = x_t − x_0
    factor = np.where(x0 > 0, 1 + 2 * c0 * 400.0 * n_j, 1 - 2 * c0 * 400.0 * n_j[::-1])
    want = x0 * (factor[None] ** t - 1)
    np.testing.assert_allclose(th.gamma, want, rtol=1e-10, atol=1e-14)
    b0 = np.einsum("jrd,id->jri", prob.w0, prob.xi)
    own = (np.array([1.0, -1.0])[:, None] * prob.y[None, :] > 0)[:, None, :]
    xi2 = np.einsum("id,id->i", prob.xi, prob.xi)
    want = np.where(own & (b0 > 0), b0 * ((1 + 2 * c0 * xi2) ** th.step.values[:, None, None,
                                                                                 None] - 1), 0)
    got = th.rho.values
    np.testing.assert_allclose(np.where(own, got, 0.0), want, rtol=1e-10, atol=1e-14)


def test_race_times_match_the_integrated_power_iteration():
    """race_times against x ← x + c q x^{q−1} with a tiny c (the continuous limit), from the
    typical initial pre-activation to twice it; and the exponents of SPEC §6."""
    mu, sp, d, n, q, s0, lr, a = 30.0, 1.0, 2000, 10, 3.0, 1e-3, 1e-5, 0.2
    t_s, t_n = theory.race_times(mu, sp, d, n, q, s0, lr, a)
    for c, x0, t in ((lr * a * mu ** 2 / 4, s0 * mu, t_s),
                     (lr * a * sp ** 2 * d / (2 * n), s0 * sp * np.sqrt(d), t_n)):
        x, k = x0, 0
        while x < 2 * x0:
            x += c * q * x ** (q - 1)
            k += 1
        assert k == pytest.approx(t, rel=2e-3)
    t2, _ = theory.race_times(2 * mu, sp, d, n, q, 2 * s0, lr, a)
    assert t2 == pytest.approx(t_s / 2 ** q / 2 ** (q - 2), rel=1e-12)
    assert t_s / t_n == pytest.approx(2 / (n * theory.snr(mu, sp, d) ** q), rel=1e-12)
    with pytest.raises(sn.ConfigError, match="q > 2"):
        theory.race_times(mu, sp, d, n, 2.0, s0, lr, a)


def test_lprime_leaves_half_reads_the_largest_margin():
    z = np.log(1 / 0.45 - 1)
    ds = xr.Dataset({"margin_max": ("step", [0.0, 0.1, z + 1e-9, 3.0])},
                    coords={"step": [0, 5, 10, 15]})
    assert theory.lprime_leaves_half(ds) == 10.0
    assert np.isnan(theory.lprime_leaves_half(ds.isel(step=[0, 1])))


@pytest.fixture(scope="module")
def run_and_theory():
    cfg = _cfg(steps=700, every=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = sn.simulate(cfg, quiet=True)
    return cfg, ds, theory.stage1_dynamics(cfg)


def test_stage1_follows_the_simulation_while_lprime_is_near_half(run_and_theory):
    """At the theorem's conditions (σ₀‖μ‖ = 0.02, σ₀σ_p√d = 0.045, η = 1/(2σ_p² d)) the
    prediction matches every γ_{j,r} and every ρ̄ to 2 % of the largest coefficient while every
    |ℓ'_i| >= 0.49 (its error terms: 1/2 − |ℓ'| ≈ f/4 <= 2 %, and the dropped cross terms
    ρ_k⟨ξ_k, ξ_i⟩/‖ξ_k‖² ~ ρ/√d); the |ℓ'| < 0.45 marker comes later, inside the run."""
    _, ds, th = run_and_theory
    stop, near = theory.lprime_leaves_half(ds), theory.lprime_leaves_half(ds, 0.49)
    assert 200 <= near < stop < 700
    early = ds.step.values < near
    scale_g = float(np.abs(ds.gamma.values[early]).max())
    np.testing.assert_allclose(th.gamma.values[early], ds.gamma.values[early],
                               atol=0.02 * scale_g, rtol=0)
    own = (np.array([1.0, -1.0])[:, None] * ds.y.values[None, :] > 0)[None, :, None, :]
    bar_sim = np.where(own, ds.rho.values, 0.0)[early]
    bar_th = np.where(own, th.rho.values, 0.0)[early]
    np.testing.assert_allclose(bar_th, bar_sim, atol=0.02 * np.abs(bar_sim).max(), rtol=0)
    # and it fails afterwards: the power iteration overshoots once ℓ' has moved
    late_th, late_sim = float(th.rho_bar_max[-1]), float(ds.rho_bar_max[-1])
    assert not np.isfinite(late_th) or late_th > 1.25 * late_sim   # off by > 20 %


def test_plot_dynamics_theory_draws_the_stage1_lines(run_and_theory, tmp_path, monkeypatch):
    from signoise import plot
    from signoise.io import save_dataset

    _, ds, th = run_and_theory
    run = save_dataset(ds, tmp_path / "run.nc")
    figs = []
    monkeypatch.setattr(plot, "save", lambda fig, path: figs.append(fig))
    assert main(["plot", "dynamics", str(run), "-o", str(tmp_path / "f.png"), "--theory",
                 "--quiet"]) == 0
    ax = figs[0].axes[0]
    lines = {ln.get_label(): ln for ln in ax.lines}
    for j in (1, -1):
        ln = lines[f"stage-1 theory γ (j={j:+d})"]
        np.testing.assert_array_equal(ln.get_xdata(), th.step.values)
        np.testing.assert_allclose(ln.get_ydata(), th.gamma_max.sel(j=j).values)
    np.testing.assert_allclose(lines["stage-1 theory ρ̄"].get_ydata(), th.rho_bar_max.values)
    stop = theory.lprime_leaves_half(ds)
    assert list(lines["|ℓ'| leaves 1/2"].get_xdata()) == [stop, stop]
    # without --theory: no theory line
    figs.clear()
    assert main(["plot", "dynamics", str(run), "-o", str(tmp_path / "g.png"), "--quiet"]) == 0
    assert not any("theory" in ln.get_label() for ln in figs[0].axes[0].lines)
