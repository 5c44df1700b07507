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
