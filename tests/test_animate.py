"""Animations: bounded frame counts, first/last frames equal the Dataset, files Pillow reads."""

import matplotlib
import numpy as np
import pytest
from PIL import Image

import signoise as sn
from signoise.animate import RunAnimation, SweepAnimation, frame_indices
from signoise.cli import main

matplotlib.use("Agg")

CFG = {"seed": 0, "data": {"n": 6, "d": 100, "mu_norm": 8.0, "n_test": 40}, "model": {"m": 3},
       "train": {"lr": 0.02, "steps": 40, "record_every": 5}}


@pytest.fixture(scope="module")
def run_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("anim") / "run.nc"
    sn.save_dataset(sn.simulate(sn.RunConfig.from_dict(CFG), quiet=True), path)
    return path


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    cfg = sn.RunConfig.from_dict({**CFG, "sweep": {"seeds": 2, "grid": {
        "data.n": [4, 6], "data.mu_norm": [2.0, 8.0, 16.0]}}})
    path = tmp_path_factory.mktemp("anim") / "s.zarr"
    sn.sweep(cfg, store=path, workers=1, quiet=True)
    return path


def test_frame_indices():
    assert list(frame_indices(9, 200)) == list(range(9))
    idx = frame_indices(301, 5)
    assert list(idx) == [0, 75, 150, 225, 300]
    with pytest.raises(ValueError, match="frames"):
        frame_indices(10, 201)


def test_run_frames_equal_dataset(run_file):
    import xarray as xr
    ds = xr.load_dataset(run_file)
    anim = RunAnimation(ds, frames=4)
    assert len(anim.idx) == 4
    anim.update(0)
    x, y = anim.lines["rho"].get_data()
    assert list(x) == [0] and y[0] == ds["rho_bar_max"].values[0]
    anim.update(3)
    np.testing.assert_array_equal(anim.lines["gamma+"].get_data()[1], ds["gamma_max"].sel(j=1).values)
    np.testing.assert_array_equal(anim.lines["test"].get_data()[1], ds["test_error"].values)


def test_run_gif_has_frames_and_no_silent_overwrite(run_file, tmp_path):
    out = tmp_path / "race.gif"
    assert main(["animate", str(run_file), "-o", str(out), "--frames", "5", "-q"]) == 0
    with Image.open(out) as im:
        assert im.n_frames == 5
    assert main(["animate", str(run_file), "-o", str(out), "-q"]) == 2          # exists
    assert main(["animate", str(run_file), "-o", str(out), "--frames", "3", "-q", "--overwrite"]) == 0
    with Image.open(out) as im:
        assert im.n_frames == 3


def test_bad_output_and_missing_ffmpeg(run_file, tmp_path, monkeypatch, capsys):
    assert main(["animate", str(run_file), "-o", str(tmp_path / "a.avi"), "-q"]) == 2
    assert "output" in capsys.readouterr().err
    from matplotlib import animation
    monkeypatch.setattr(animation.writers, "is_available", lambda name: False)
    assert main(["animate", str(run_file), "-o", str(tmp_path / "a.mp4"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "ffmpeg" in err and ".gif" in err


def test_sweep_frames_equal_cell_statistic(store, tmp_path):
    ds = sn.open_sweep(store)
    anim = SweepAnimation(ds, "data.n", "data.mu_norm", frames=3)
    assert len(anim.idx) == 3
    for k in (0, 2):
        anim.update(k)
        want = sn.cell_statistic(ds, "test_error", "mean", step=int(anim.idx[k]))
        np.testing.assert_array_equal(anim.mesh.get_array().ravel(),
                                      want.transpose("data.mu_norm", "data.n").values.ravel())
    out = tmp_path / "phase.gif"
    assert main(["animate", str(store), "-x", "data.n", "-y", "data.mu_norm", "-o", str(out),
                 "--frames", "4", "-q"]) == 0
    with Image.open(out) as im:
        assert im.n_frames == 4
