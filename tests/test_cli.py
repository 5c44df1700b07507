"""The CLI in-process: run, plot, info, demo, and errors that name the key."""

import numpy as np
import pytest
import xarray as xr

import signoise as sn
from signoise.cli import main

from .conftest import make_cfg


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "c.toml"
    sn.dump_config(make_cfg(), path)
    return path


def test_run_and_plot_round_trip(tmp_path, config_file):
    out = tmp_path / "run.nc"
    assert main(["run", str(config_file), "-o", str(out), "--set", "data.n=6",
                 "--set", "train.steps=30", "--quiet"]) == 0
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        ds = ds.load()
    direct = sn.simulate(make_cfg(data__n=6, train__steps=30), quiet=True)
    np.testing.assert_array_equal(ds.rho.values, direct.rho.values)
    assert ds.sizes["i"] == 6 and int(ds.step[-1]) == 30
    fig = tmp_path / "dyn.png"
    assert main(["plot", "dynamics", str(out), "-o", str(fig), "--quiet"]) == 0
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # existing output is not overwritten silently
    assert main(["run", str(config_file), "-o", str(out), "--quiet"]) == 2
    assert main(["run", str(config_file), "-o", str(out), "--quiet", "--overwrite",
                 "--engine", "weights"]) == 0


def test_run_rejects_bad_key(tmp_path, config_file, capsys):
    assert main(["run", str(config_file), "-o", str(tmp_path / "x.nc"), "--set", "train.lr=-1"]) == 2
    assert "train.lr = -1" in capsys.readouterr().err
    assert not (tmp_path / "x.nc").exists()


def test_diverging_run_is_saved_and_marked(tmp_path, config_file):
    out = tmp_path / "div.nc"
    assert main(["run", str(config_file), "-o", str(out), "--set", "train.lr=1e6",
                 "--set", "model.sigma0=3.0", "--quiet"]) == 0
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        assert bool(ds.diverged) and ds.attrs["status"] == "diverged"


def test_info(capsys):
    assert main(["info"]) == 0
    text = capsys.readouterr().out
    assert "numba threads" in text and "gram" in text and "gd" in text


def test_demo_configs_are_benign_and_harmful():
    from importlib import resources
    benign = sn.load_config(resources.files("signoise") / "configs" / "cao2022_benign.toml")
    harmful = sn.load_config(resources.files("signoise") / "configs" / "cao2022_harmful.toml")
    q = benign.model.q
    assert benign.data.n * benign.data.SNR ** q > 1 > harmful.data.n * harmful.data.SNR ** q


def test_saved_files_follow_the_umask(tmp_path, config_file):
    import os
    out = tmp_path / "perm.nc"
    assert main(["run", str(config_file), "-o", str(out), "--quiet", "--set", "train.steps=10"]) == 0
    umask = os.umask(0)
    os.umask(umask)
    assert (out.stat().st_mode & 0o777) == 0o666 & ~umask


def test_demo_runs_and_writes_its_figure(tmp_path, capsys):
    out = tmp_path / "demo.png"
    assert main(["demo", "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = capsys.readouterr().out
    benign = float(text.split("benign")[1].split("test error")[1].split()[0])
    harmful = float(text.split("harmful")[1].split("test error")[1].split()[0])
    assert benign < 0.05 and harmful > 0.4          # the two regimes the figure shows


def test_demo_theory_overlays_the_stage1_prediction_on_both_runs(tmp_path, monkeypatch):
    """`signoise demo --theory`: each row's coefficient panel carries the stage-1 lines of
    signoise.theory.stage1_dynamics for that run's config (the line data themselves)."""
    from importlib import resources

    import numpy as np

    from signoise import plot, theory
    from signoise.config import load_config

    saved = {}
    monkeypatch.setattr(plot, "save", lambda fig, path: saved.setdefault("fig", fig))
    assert main(["demo", "--theory", "-q", "-o", str(tmp_path / "d.png")]) == 0
    fig = saved["fig"]
    for row, name in ((0, "benign"), (1, "harmful")):
        with resources.as_file(resources.files("signoise") / "configs"
                               / f"cao2022_{name}.toml") as path:
            want = theory.stage1_dynamics(load_config(path))
        ax = fig.axes[3 * row]
        line = [ln for ln in ax.get_lines() if ln.get_label() == "stage-1 theory ρ̄"][0]
        np.testing.assert_array_equal(line.get_ydata(), want["rho_bar_max"].values)


def test_a_bug_is_not_reported_as_a_user_error(monkeypatch, config_file, tmp_path):
    """Only config and file errors become one line and exit 2; a bug shows its traceback."""
    import sys

    def broken(*args, **kwargs):
        raise KeyError("a bug")
    monkeypatch.setattr(sys.modules["signoise.simulate"], "simulate", broken)
    with pytest.raises(KeyError, match="a bug"):
        main(["run", str(config_file), "-o", str(tmp_path / "x.nc"), "--quiet"])


def test_importing_plot_leaves_the_backend_alone():
    import subprocess
    import sys
    code = ("import matplotlib; matplotlib.use('svg'); import signoise.plot; "
            "print(matplotlib.get_backend())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "svg"
