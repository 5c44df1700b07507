"""Phase and collapse plots: cell edges, axes, scales, a valid image, and the CLI path."""

import matplotlib
import numpy as np
import xarray as xr

from signoise import plot

matplotlib.use("Agg")


def test_edges_linear_and_geometric():
    edges, log = plot._edges([1.0, 2.0, 3.0])
    assert not log
    np.testing.assert_allclose(edges, [0.5, 1.5, 2.5, 3.5])
    edges, log = plot._edges([1.0, 4.0, 16.0])
    assert log
    np.testing.assert_allclose(edges, [0.5, 2.0, 8.0, 32.0])
    edges, _ = plot._edges([0.0, 0.1, 0.2])  # zero allowed on a linear axis
    np.testing.assert_allclose(edges, [-0.05, 0.05, 0.15, 0.25])


def phase_array():
    mu = np.geomspace(1.0, 16.0, 5)
    n = np.array([10, 20, 30])
    values = np.outer(1.0 / n, mu) / 16
    da = xr.DataArray(values, coords={"data.n": n, "data.mu_norm": mu},
                      dims=("data.n", "data.mu_norm"), attrs={"variable": "test_error",
                                                              "stat": "mean"})
    return da


def test_plot_phase_axes_and_image(tmp_path):
    da = phase_array()
    xs = np.geomspace(1.0, 16.0, 50)
    ax = plot.plot_phase(da, "data.mu_norm", "data.n", boundaries=[(xs, 200 / xs ** 2, "C")])
    assert ax.get_xlabel() == "data.mu_norm" and ax.get_ylabel() == "data.n"
    assert ax.get_xscale() == "log" and ax.get_yscale() == "linear"
    mesh = ax.collections[0]
    # rows are the y axis (n), columns the x axis (‖μ‖): a transposed image fails here
    np.testing.assert_array_equal(np.asarray(mesh.get_array()).reshape(3, 5), da.values)
    corners = mesh.get_coordinates()                     # (rows + 1, columns + 1, 2)
    assert corners.shape == (4, 6, 2)
    assert np.all(np.diff(corners[0, :, 0]) > 0) and np.all(np.diff(corners[:, 0, 1]) > 0)
    np.testing.assert_allclose(ax.get_xlim(), [1.0 / np.sqrt(2), 16.0 * np.sqrt(2)])
    cbar = ax.figure.axes[-1]
    assert "test_error (mean over seeds)" in cbar.get_ylabel()
    assert ax.get_legend() is not None
    path = tmp_path / "phase.png"
    plot.save(ax.figure, path)
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100


def test_plot_collapse(tmp_path):
    da = phase_array()
    control = da["data.n"] * da["data.mu_norm"] ** 2
    control.name = "n·SNR^q"
    ax = plot.plot_collapse(control, da, const=100.0, hue="data.n")
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "n·SNR^q"
    assert len(ax.collections[0].get_offsets()) == 15
    plot.save(ax.figure, tmp_path / "collapse.png")
    assert (tmp_path / "collapse.png").read_bytes()[:4] == b"\x89PNG"


def test_phase_diagram_python_api(tmp_path):
    """The API behind `signoise plot phase`: slice, fitted boundary, and errors that name the key."""
    import pytest

    import signoise as sn
    from tests.test_sweep import sweep_cfg

    cfg = sweep_cfg({"data.mu_norm": [1.0, 3.0, 6.0], "data.n": [4, 6]}, seeds=2)
    ds = sn.sweep(cfg, tmp_path / "s.zarr", workers=1, quiet=True)
    ax = sn.phase_diagram(ds, "data.mu_norm", "data.n", theory="cao")
    assert any("fitted" in t.get_text() for t in ax.get_legend().get_texts())
    with pytest.raises(sn.ConfigError, match="x/y"):
        sn.phase_diagram(ds, "data.mu_norm", "train.lr")
    with pytest.raises(sn.ConfigError, match="sel"):
        sn.phase_diagram(ds, "data.mu_norm", "data.n", sel={"train.lr": 0.1})
    ax = sn.collapse_diagram(ds, "cao", const=1.0)
    assert ax.get_xscale() == "log"


def synthetic_sweep(exponent=-3.0, C=400.0, seeds=4, noise=0.02):
    """A sweep-like Dataset whose test error falls from 1/2 to 0 across n = C ‖μ‖^exponent
    (a logistic step in log ‖μ‖), with seed noise: the free fit must find ``exponent``."""
    mu = np.geomspace(1.0, 16.0, 41)
    n = np.array([10.0, 20.0, 40.0, 80.0])
    star = (n / C) ** (1.0 / exponent)                         # ‖μ‖* per row
    rng = np.random.default_rng(0)
    err = 0.5 / (1.0 + np.exp((np.log(mu)[None, :] - np.log(star)[:, None]) / 0.05))
    err = err[:, :, None] + noise * rng.standard_normal((n.size, mu.size, seeds))
    ds = xr.Dataset({"test_error": (("data.n", "data.mu_norm", "seed", "step"), err[..., None]),
                     "done": (("data.n", "data.mu_norm"), np.ones((n.size, mu.size), bool))},
                    coords={"data.n": n, "data.mu_norm": mu, "seed": np.arange(seeds),
                            "step": [100]},
                    attrs={"config": "[data]\nflip = 0.0\nd = 2000\nsigma_p = 1.0\nmu_norm = 1.0\n"
                                     "[model]\nq = 3.0\n"})
    return ds, star


def test_free_boundary_finds_the_exponent_and_phase_diagram_draws_it():
    import signoise as sn
    from signoise.phase import free_boundary

    ds, star = synthetic_sweep()
    xs, ys, label, fit = free_boundary(ds, "data.mu_norm", "data.n")
    np.testing.assert_allclose(fit["crossings"], star, rtol=0.02)
    assert fit["slope"] == __import__("pytest").approx(-3.0, abs=0.05)
    assert fit["ci"][0] < -3.0 < fit["ci"][1]
    assert "-3.0" in label or "-2.9" in label
    np.testing.assert_allclose(ys, 400.0 * xs ** fit["slope"], rtol=0.1)
    wrong, _ = synthetic_sweep(exponent=-4.0)
    assert free_boundary(wrong, "data.mu_norm", "data.n")[3]["ci"][1] < -3.5
    ax = sn.phase_diagram(ds, "data.mu_norm", "data.n", theory="cao")
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("fitted" in t for t in labels) and label in labels
    line = [ln for ln in ax.get_lines() if ln.get_label() == label][0]
    np.testing.assert_allclose(line.get_xdata(), xs)
