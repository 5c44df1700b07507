"""Reliability (issue 12): diverged runs are reported, never scored; the CLI checks before it
computes and shows no traceback for user errors."""

import matplotlib
import numpy as np
import pytest
import xarray as xr

from signoise import plot
from signoise.store import cell_statistic

matplotlib.use("Agg")


def fake_sweep():
    """A 2 x 3 grid x 4 seeds store-like Dataset: cell (0, 1) has 1 diverged run (NaN error),
    cell (1, 2) all 4, cell (1, 0) is not computed yet."""
    err = np.full((2, 3, 4, 2), 0.1)
    err[..., -1] = np.arange(4) / 10  # seeds 0..3: errors 0, .1, .2, .3 at the last step
    div = np.zeros((2, 3, 4), dtype=bool)
    err[0, 1, 2, -1] = np.nan
    div[0, 1, 2] = True
    err[1, 2, :, -1] = np.nan
    div[1, 2, :] = True
    done = np.ones((2, 3), dtype=bool)
    done[1, 0] = False
    err[1, 0] = np.nan
    coords = {"data.n": [10, 20], "data.mu_norm": [1.0, 2.0, 4.0], "seed": np.arange(4),
              "step": [0, 10]}
    return xr.Dataset({"test_error": (("data.n", "data.mu_norm", "seed", "step"), err),
                       "diverged": (("data.n", "data.mu_norm", "seed"), div),
                       "done": (("data.n", "data.mu_norm"), done)}, coords=coords)


def test_cell_statistic_reports_diverged_beside_the_rest():
    da = cell_statistic(fake_sweep(), "test_error", "mean")
    frac = da["diverged_fraction"].values
    np.testing.assert_allclose(frac, [[0, 0.25, 0], [np.nan, 0, 1.0]])
    # cell (0, 1): seeds 0, 1, 3 -> mean (0 + .1 + .3)/3, not (0 + .1 + 0 + .3)/4
    np.testing.assert_allclose(da.values[0, 1], 0.4 / 3)
    np.testing.assert_allclose(da.values[0, 0], 0.15)
    assert np.isnan(da.values[1, 2]) and np.isnan(da.values[1, 0])


def test_cell_statistic_counts_nan_seeds_even_without_flag():
    ds = fake_sweep().drop_vars("diverged")
    da = cell_statistic(ds, "test_error", "median")
    assert da["diverged_fraction"].values[0, 1] == 0.25
    np.testing.assert_allclose(da.values[0, 1], 0.1)  # median of 0, .1, .3


def test_plot_phase_hatches_diverged_cells(tmp_path):
    da = cell_statistic(fake_sweep(), "test_error", "mean")
    ax = plot.plot_phase(da, "data.mu_norm", "data.n")
    hatched = [p for p in ax.patches if p.get_hatch() and p.get_width() > 0]
    assert len(hatched) == 2  # cells (0, 1) and (1, 2); the uncomputed cell is not one
    corners = sorted((p.get_x(), p.get_y()) for p in hatched)
    xe, _ = plot._edges([1.0, 2.0, 4.0])
    ye, _ = plot._edges([10, 20])
    assert corners == sorted([(xe[1], ye[0]), (xe[2], ye[1])])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("diverged (25–100%" in t for t in labels)
    plot.save(ax.figure, tmp_path / "p.png")


def test_plot_phase_without_divergence_has_no_hatch():
    da = cell_statistic(fake_sweep().isel({"data.n": [0]}).isel({"data.mu_norm": [0, 2]}))
    ax = plot.plot_phase(da, "data.mu_norm", "data.n")
    assert not [p for p in ax.patches if p.get_hatch()]
    assert ax.get_legend() is None


def test_import_plot_leaves_backend_alone():
    import subprocess
    import sys

    code = ("import matplotlib; matplotlib.use('pdf'); import signoise.plot; "
            "print(matplotlib.get_backend())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "pdf", out.stderr


# ---- the CLI checks before it computes -------------------------------------------------------

import signoise as sn  # noqa: E402
from signoise.cli import main  # noqa: E402

from .conftest import make_cfg  # noqa: E402

import sys  # noqa: E402

import signoise.sweeps  # noqa: E402,F401

SIM = sys.modules["signoise.simulate"]  # the package's ``simulate`` attribute is the function
SWEEPS = sys.modules["signoise.sweeps"]


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "c.toml"
    sn.dump_config(make_cfg(data__n=6, train__steps=10), path)
    return path


@pytest.fixture
def no_compute(monkeypatch):
    """Fail the test if a command computes anything: the checks must come first."""
    def boom(*a, **k):
        raise AssertionError("computed before checking the output")
    monkeypatch.setattr(SIM, "simulate", boom)
    monkeypatch.setattr(SWEEPS, "sweep", boom)


def test_missing_output_folder_fails_before_the_run(tmp_path, config_file, no_compute, capsys):
    out = tmp_path / "nowhere" / "r.nc"
    assert main(["run", str(config_file), "-o", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert "nowhere" in err and "does not exist" in err and "Traceback" not in err
    assert main(["sweep", str(config_file), "-o", str(out.with_suffix(".zarr")), "-q"]) == 2


def test_read_only_output_folder_fails_before_the_run(tmp_path, config_file, no_compute, capsys):
    import os

    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as root: permissions are not enforced")
        assert main(["run", str(config_file), "-o", str(folder / "r.nc"), "-q"]) == 2
        assert "not writable" in capsys.readouterr().err
    finally:
        folder.chmod(0o700)


def test_plot_and_demo_refuse_to_overwrite(tmp_path, config_file, no_compute, capsys):
    existing = tmp_path / "fig.png"
    existing.write_bytes(b"keep me")
    assert main(["demo", "-o", str(existing), "-q"]) == 2
    assert main(["plot", "dynamics", str(config_file), "-o", str(existing), "-q"]) == 2
    assert existing.read_bytes() == b"keep me"
    assert "--overwrite" in capsys.readouterr().err


def test_set_on_a_grid_axis_is_an_error(tmp_path, no_compute, capsys):
    path = tmp_path / "s.toml"
    sn.dump_config(make_cfg().updated({}), path)
    text = path.read_text() + '\n[sweep]\nseeds = 2\n[sweep.grid]\n"data.n" = [6, 8]\n'
    path.write_text(text)
    assert main(["sweep", str(path), "-o", str(tmp_path / "s.zarr"), "--set", "data.n=5"]) == 2
    err = capsys.readouterr().err
    assert "data.n" in err and "grid axis" in err


def test_set_sweep_keys(tmp_path, monkeypatch):
    seen = {}

    def fake_sweep(cfg, *a, **k):
        seen["cfg"] = cfg
        raise sn.ConfigError("stop here")
    monkeypatch.setattr(SWEEPS, "sweep", fake_sweep)
    path = tmp_path / "s.toml"
    sn.dump_config(make_cfg(), path)
    assert main(["sweep", str(path), "-o", str(tmp_path / "s.zarr"), "-q", "--set",
                 "sweep.seeds=3", "--set", "sweep.grid.data.n=[6, 8]"]) == 2
    cfg = seen["cfg"]
    assert cfg.sweep.seeds == 3 and cfg.sweep.axes()["data.n"] == [6, 8]
    assert main(["sweep", str(path), "-o", str(tmp_path / "s.zarr"), "--set",
                 "sweep.seeds=0"]) == 2  # validated like the file


def test_damaged_run_file_is_one_line(tmp_path, capsys):
    text = tmp_path / "notes.nc"
    text.write_text("not a netCDF file\n")
    out = tmp_path / "d.png"
    assert main(["plot", "dynamics", str(text), "-o", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert str(text) in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    run = tmp_path / "run.nc"
    sn.save_dataset(sn.simulate(make_cfg(data__n=6, train__steps=10), quiet=True), run)
    cut = tmp_path / "cut.nc"
    cut.write_bytes(run.read_bytes()[: run.stat().st_size // 2])
    assert main(["plot", "dynamics", str(cut), "-o", str(out), "-q"]) == 2
    assert str(cut) in capsys.readouterr().err
    assert not out.exists()


def test_bugs_keep_their_traceback_and_debug_shows_all(tmp_path, config_file, monkeypatch,
                                                        capsys):
    def bug(*a, **k):
        raise KeyError("a bug")
    monkeypatch.setattr(SIM, "simulate", bug)
    with pytest.raises(KeyError):
        main(["run", str(config_file), "-o", str(tmp_path / "r.nc"), "-q"])
    assert main(["run", str(config_file), "-o", str(tmp_path / "r.nc"), "-q", "--debug",
                 "--set", "train.lr=-1"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_interrupted_run_writes_partial_and_exits_130(tmp_path, config_file, monkeypatch):
    partial = sn.simulate(make_cfg(data__n=6, train__steps=10), quiet=True)
    partial.attrs["status"] = "interrupted"

    def stopped(*a, **k):
        raise sn.interrupt.Interrupted("SIGINT", partial=partial)
    monkeypatch.setattr(SIM, "simulate", stopped)
    out = tmp_path / "r.nc"
    assert main(["run", str(config_file), "-o", str(out), "-q"]) == 130
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        assert ds.attrs["status"] == "interrupted"
    assert not list(tmp_path.glob(".r.nc.*"))  # no temporary left behind

    def nothing(*a, **k):
        raise sn.interrupt.Interrupted("SIGINT")
    monkeypatch.setattr(SIM, "simulate", nothing)
    assert main(["run", str(config_file), "-o", str(tmp_path / "n.nc"), "-q"]) == 130
    assert not (tmp_path / "n.nc").exists()


# ---- worker processes die with their parent ----------------------------------------------------

PARENT = r"""
import multiprocessing as mp, sys, time
from signoise.workers import init
INIT = None if "--bare" in sys.argv else init

def work():
    time.sleep(120)

if __name__ == "__main__":
    ctx = mp.get_context("spawn")
    from concurrent.futures import ProcessPoolExecutor
    pool = ProcessPoolExecutor(1, mp_context=ctx, initializer=INIT)
    fut = pool.submit(time.sleep, 120)
    time.sleep(1.0)
    print(" ".join(str(pid) for pid in pool._processes), flush=True)
    time.sleep(120)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
def test_workers_die_with_a_killed_parent(tmp_path):
    import os
    import signal
    import subprocess
    import time

    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        line = parent.stdout.readline()
        workers = [int(pid) for pid in line.split()]
        assert workers, "the pool started no worker"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        alive = workers
        while alive and time.monotonic() < deadline:
            time.sleep(0.1)
            alive = [pid for pid in workers if _alive(pid)]
        assert not alive, f"workers {alive} outlived their parent"
    finally:
        if parent.poll() is None:
            parent.kill()


def _alive(pid):
    import os

    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    finally:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


# ---- signoise verify: a damaged chunk is found -------------------------------------------------

def test_verify_finds_a_damaged_chunk(tmp_path, capsys):
    from .test_sweep import sweep_cfg

    path = tmp_path / "s.zarr"
    sn.sweep(sweep_cfg(), path, workers=1, quiet=True)
    assert main(["verify", str(path)]) == 0
    assert "6 done, 0 missing, 0 damaged" in capsys.readouterr().out
    chunks = sorted(p for p in (path / "test_error").rglob("*") if p.is_file()
                    and p.name != "zarr.json")
    assert chunks
    chunks[0].write_bytes(b"\x00garbage")
    assert main(["verify", str(path)]) == 1
    out = capsys.readouterr().out
    assert "0 damaged" not in out and "damaged" in out
    assert main(["verify", str(tmp_path / "none.zarr")]) == 2


def test_plot_phase_on_a_damaged_store_is_one_line(tmp_path, capsys):
    from .test_sweep import sweep_cfg

    path = tmp_path / "s.zarr"
    sn.sweep(sweep_cfg(), path, workers=1, quiet=True)
    chunks = sorted(p for p in (path / "test_error").rglob("*")
                    if p.is_file() and p.name != "zarr.json")
    chunks[0].write_bytes(b"\x00garbage")
    assert main(["plot", "phase", str(path), "-x", "data.mu_norm", "-y", "data.n",
                 "-o", str(tmp_path / "p.png")]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "do not read back" in err and "Traceback" not in err
    assert not (tmp_path / "p.png").exists()


def test_real_sigint_stops_a_run_promptly_and_keeps_it(tmp_path):
    """A real SIGINT to `signoise run` (10^7 steps): it exits 130 within seconds, and the file
    holds the steps computed, status "interrupted", never half a file."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import signoise as sn

    from .conftest import make_cfg

    conf = tmp_path / "c.toml"
    sn.dump_config(make_cfg(train__steps=10**7, train__record_every=10**6, train__lr=0.01), conf)
    out = tmp_path / "r.nc"
    root = os.path.dirname(os.path.dirname(__file__))
    proc = subprocess.Popen([sys.executable, "-m", "signoise.cli", "run", str(conf), "-o",
                             str(out), "--quiet"], cwd=root, stderr=subprocess.PIPE, text=True)
    time.sleep(6.0)                       # imported, compiled from the cache, training
    assert proc.poll() is None, proc.stderr.read()
    sent = time.time()
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    finally:
        proc.kill()
    waited = time.time() - sent
    assert proc.returncode == 130, proc.stderr.read()
    assert waited < 10.0, waited          # bounded chunks: measured well under a second alone
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        assert ds.attrs["status"] == "interrupted"
        assert 0 < int(ds.stopped_at) < 10**7 and int(ds.step[-1]) == int(ds.stopped_at)
    assert not list(tmp_path.glob(".r.nc.*"))   # no temporary file left behind
