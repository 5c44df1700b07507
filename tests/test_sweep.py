"""Sweeps: grid parsing and its errors, executors bit for bit, resume (also after SIGKILL),
config mismatch, divergence, full ρ."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import signoise as sn
from signoise import store as st
from signoise.cli import main
from signoise.sweeps import plan

from .conftest import make_cfg

ROOT = Path(__file__).resolve().parents[1]


def sweep_cfg(grid=None, seeds=2, **changes):
    base = make_cfg(**{"train__steps": 30, **changes}).to_dict()
    base["sweep"] = {"seeds": seeds, "grid": grid if grid is not None else {"data.mu_norm": [1.0, 3.0, 6.0],
                                                      "data.n": [4, 6]}}
    return sn.RunConfig.from_dict(base)


def loaded(path):
    with st.open_sweep(path) as ds:
        return ds.load()


# ---------------------------------------------------------------------------- grid parsing

def test_grid_axes_lists_linspace_geomspace():
    cfg = sweep_cfg({"data.n": [4, 6], "data.mu_norm": {"geomspace": [1.0, 8.0, 4]},
                     "train.lr": {"linspace": [0.1, 0.3, 3]}}, seeds=5)
    p = plan(cfg)
    assert list(p.axes) == ["data.n", "data.mu_norm", "train.lr"]
    np.testing.assert_allclose(p.axes["data.mu_norm"], [1.0, 2.0, 4.0, 8.0])
    np.testing.assert_allclose(p.axes["train.lr"], [0.1, 0.2, 0.3])
    assert p.shape == (2, 4, 3) and len(p.configs) == 24
    assert list(p.seeds) == [cfg.seed + k for k in range(5)]
    last = p.configs[-1]
    assert (last.data.n, last.data.mu, last.train.lr) == (6, 8.0, 0.3)


@pytest.mark.parametrize("grid, match", [
    ({}, r"sweep.grid = \{\} is not allowed: expected at least one axis"),
    ({"data.n": [4, 4]}, "sweep.grid.data.n"),
    ({"data.mu_norm": [1.0], "data.snr": [0.1]}, "at most one of data.mu_norm and data.snr"),
    ({"data.n": [4, 60]}, r"sweep cell \{'data.n': 60\}.*data.n = 60"),
    ({"train.lr": [0.1, -1.0]}, "train.lr = -1.0"),
    ({"data.noise": ["projected", "gaussian"]}, "data.noise = 'gaussian'"),
    ({"data.n": {"linspace": [4, 8]}}, "sweep.grid.data.n"),
])
def test_grid_errors_name_the_key(grid, match):
    with pytest.raises(sn.ConfigError, match=match):
        plan(sweep_cfg(grid))


def test_algorithm_name_and_parameter_axes(tmp_path):
    """An algorithm axis: parameters an algorithm does not take are dropped for its cells."""
    cfg = sweep_cfg({"algorithm.name": ["gd", "pegr"], "algorithm.lam": [0.0, 1e-3]}, seeds=1)
    p = plan(cfg)
    assert [c.algorithm.to_dict() for c in p.configs] == [
        {"name": "gd"}, {"name": "gd"}, {"name": "pegr", "lam": 0.0},
        {"name": "pegr", "lam": 1e-3}]
    ds = sn.sweep(cfg, tmp_path / "s.zarr", workers=1, quiet=True).load()
    assert list(ds["algorithm.name"].values) == ["gd", "pegr"]
    gd = ds.gamma.sel({"algorithm.name": "gd"}).values
    np.testing.assert_array_equal(gd[0], gd[1])  # lam is not a GD parameter
    ref = sn.simulate_batch([p.configs[3]], seeds=[cfg.seed])
    np.testing.assert_array_equal(
        ds.gamma.sel({"algorithm.name": "pegr", "algorithm.lam": 1e-3}).values, ref.gamma.values)
    with pytest.raises(sn.ConfigError, match="sweep.grid.algorithm.lam"):
        plan(sweep_cfg({"algorithm.name": ["gd"], "algorithm.lam": [0.0, 0.5]}))
    # the base algorithm takes a parameter that a swept one does not
    cfg = sweep_cfg({"algorithm.name": ["gd", "pegr"]}, seeds=1, algorithm__name="pegr",
                    algorithm__lam=0.25)
    assert [c.algorithm.to_dict() for c in plan(cfg).configs] == [
        {"name": "gd"}, {"name": "pegr", "lam": 0.25}]


def test_sweep_rejects_bad_arguments(tmp_path):
    with pytest.raises(sn.ConfigError, match="rho = 'some'"):
        sn.sweep(sweep_cfg(), tmp_path / "s.zarr", record_rho="some")
    with pytest.raises(sn.ConfigError, match="workers = 0"):
        sn.sweep(sweep_cfg(), tmp_path / "s.zarr", workers=0)
    assert not (tmp_path / "s.zarr").exists()


# ---------------------------------------------------------------------------- executors

def test_serial_processes_dask_bit_identical(tmp_path):
    distributed = pytest.importorskip("distributed")
    cfg = sweep_cfg()
    serial = sn.sweep(cfg, tmp_path / "serial.zarr", workers=1, block=1, quiet=True).load()
    procs = sn.sweep(cfg, tmp_path / "procs.zarr", workers=2, block=1, quiet=True).load()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        dask = sn.sweep(cfg, tmp_path / "dask.zarr", client=client, quiet=True).load()
    assert bool(serial.done.all())
    xr.testing.assert_identical(serial, procs)
    # the Dask store used the default block size: other chunks, same numbers
    xr.testing.assert_identical(serial.assign_attrs(block=dask.attrs["block"]), dask)
    # and a cell equals simulate_batch on its config and seeds
    cell = {"data.mu_norm": 3.0, "data.n": 6}
    ref = sn.simulate_batch([cfg.updated(cell)] * 2, seeds=[cfg.seed, cfg.seed + 1])
    got = serial.sel(cell)
    for name in ("gamma", "test_error", "rho_bar_max", "train_loss"):
        np.testing.assert_array_equal(got[name].values, ref[name].values)
    assert serial.attrs["config"] == cfg.to_toml()


def test_unequal_shapes_are_padded_and_full_rho(tmp_path):
    cfg = sweep_cfg({"data.n": [4, 6], "train.steps": [20, 30]}, seeds=1)
    ds = sn.sweep(cfg, tmp_path / "s.zarr", workers=1, record_rho="full", quiet=True).load()
    assert ds.sizes["i"] == 6 and list(ds.step.values) == [0, 10, 20, 30]
    small = ds.sel({"data.n": 4, "train.steps": 20}).isel(seed=0)
    assert np.isnan(small.rho.sel(step=10).values[..., 4:]).all()
    assert np.isnan(small.test_error.sel(step=30)) and np.isfinite(small.test_error.sel(step=20))
    ref = sn.simulate(cfg.updated({"data.n": 4, "train.steps": 20}))
    np.testing.assert_array_equal(small.rho.sel(step=ref.step).values[..., :4], ref.rho.values)


def test_diverging_cell_is_marked_not_fatal(tmp_path):
    cfg = sweep_cfg({"train.lr": [0.05, 1e6]}, seeds=2, model__sigma0=3.0)
    ds = sn.sweep(cfg, tmp_path / "s.zarr", workers=1, quiet=True).load()
    assert bool(ds.done.all())
    for lr in (0.05, 1e6):
        ref = sn.simulate_batch([cfg.updated({"train.lr": lr})] * 2, seeds=[3, 4])
        np.testing.assert_array_equal(ds.diverged.sel({"train.lr": lr}).values, ref.diverged.values)
        np.testing.assert_array_equal(ds.gamma.sel({"train.lr": lr}).values, ref.gamma.values)
    assert ds.diverged.any() and not ds.diverged.all()


# ---------------------------------------------------------------------------- resume

def test_resume_computes_only_missing_and_rejects_other_config(tmp_path, monkeypatch):
    import signoise.sweeps as sw_module

    cfg = sweep_cfg()
    path = tmp_path / "s.zarr"
    full = sn.sweep(cfg, path, workers=1, block=1, quiet=True).load()
    # forget two cells (as if never computed), then resume
    group = st.open_group(path, cfg.to_toml(), "summary")
    group["done"][1, :] = False
    group["test_error"][1, :] = np.nan
    calls = []
    real = sw_module.run_block
    monkeypatch.setattr(sw_module, "run_block", lambda *a: calls.append(a) or real(*a))
    again = sn.sweep(cfg, path, workers=1, quiet=True).load()
    assert len(calls) == 2 and sum(len(c[0]) for c in calls) == 2
    xr.testing.assert_identical(full, again)
    calls.clear()
    sn.sweep(cfg, path, workers=1, quiet=True)
    assert calls == []
    with pytest.raises(sn.ConfigError, match="differing keys data.d"):
        sn.sweep(cfg.updated({"data.d": 50}), path, workers=1)
    with pytest.raises(sn.ConfigError, match="record_rho = 'full' is not allowed: expected 'summary'"):
        sn.sweep(cfg, path, workers=1, record_rho="full")
    with pytest.raises(sn.ConfigError, match="engine = 'weights' is not allowed: expected 'gram'"):
        sn.sweep(cfg, path, workers=1, engine="weights")


KILLED_SCRIPT = textwrap.dedent("""
    import sys, signoise as sn
    cfg = sn.load_config(sys.argv[1])
    sn.sweep(cfg, sys.argv[2], workers=1, block=1, quiet=True)
""")


def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
    cfg = sweep_cfg({"data.mu_norm": [1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0],
                     "data.n": [4, 5, 6, 8]}, seeds=3, train__steps=200)
    conf = tmp_path / "c.toml"
    sn.dump_config(cfg, conf)
    script = tmp_path / "run.py"
    script.write_text(KILLED_SCRIPT)
    reference = sn.sweep(cfg, tmp_path / "ref.zarr", workers=1, block=1, quiet=True).load()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NUMBA_NUM_THREADS": "1"}
    rng = np.random.default_rng(7)
    for trial in range(2):
        path = tmp_path / f"killed{trial}.zarr"
        proc = subprocess.Popen([sys.executable, str(script), str(conf), str(path)], env=env)
        deadline = time.time() + 60
        while not path.exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        partial = loaded(path)  # readable whatever the moment of the kill
        finished = int(partial.done.sum())
        assert finished < partial.done.size, "the kill came too late to test anything"
        mask = partial.done.values
        np.testing.assert_array_equal(partial.test_error.values[mask],
                                      reference.test_error.values[mask])
        resumed = sn.sweep(cfg, path, workers=1, quiet=True).load()
        xr.testing.assert_identical(resumed, reference)


# ---------------------------------------------------------------------------- CLI

def test_cli_sweep_and_plot(tmp_path, capsys):
    conf = tmp_path / "c.toml"
    sn.dump_config(sweep_cfg(), conf)
    out = tmp_path / "s.zarr"
    assert main(["sweep", str(conf), "-o", str(out), "--workers", "1", "--quiet"]) == 0
    assert bool(loaded(out).done.all())
    assert main(["sweep", str(conf), "-o", str(out), "--set", "data.d=50", "--quiet"]) == 2
    assert "differing keys data.d" in capsys.readouterr().err
    fig = tmp_path / "p.png"
    assert main(["plot", "phase", str(out), "-x", "data.mu_norm", "-y", "data.n",
                 "--theory", "cao", "-o", str(fig), "--quiet"]) == 0
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["plot", "collapse", str(out), "--theory", "cao", "-y", "data.n",
                 "-o", str(tmp_path / "c.png"), "--quiet"]) == 0
    assert main(["plot", "phase", str(out), "-x", "data.mu_norm", "-y", "data.lr",
                 "-o", str(fig), "--overwrite", "--quiet"]) == 2
    assert "x/y = 'data.lr' is not allowed" in capsys.readouterr().err


def test_cell_statistic_over_seeds():
    values = np.arange(2 * 4 * 3, dtype=float).reshape(2, 4, 3)  # (axis, seed, step)
    ds = xr.Dataset({"test_error": (("data.n", "seed", "step"), values)},
                    coords={"data.n": [4, 6], "seed": np.arange(4), "step": [0, 10, 20]})
    last = values[:, :, -1]
    np.testing.assert_array_equal(sn.cell_statistic(ds).values, last.mean(1))
    np.testing.assert_array_equal(sn.cell_statistic(ds, stat="spread").values, np.ptp(last, 1))
    np.testing.assert_allclose(sn.cell_statistic(ds, stat="q0.5").values, np.median(last, 1))
    assert sn.cell_statistic(ds, stat="std").attrs["stat"] == "std"
    with pytest.raises(sn.ConfigError, match="stat = 'q2'"):
        sn.cell_statistic(ds, stat="q2")
    with pytest.raises(sn.ConfigError, match="value = 'nope'"):
        sn.cell_statistic(ds, "nope")


def test_interrupted_sweep_keeps_finished_blocks_and_resumes(tmp_path, monkeypatch):
    """A block that was interrupted is never written; resuming computes the rest and equals an
    uninterrupted sweep."""
    from signoise import driver, interrupt

    monkeypatch.setattr(driver, "CHUNK_WORK", 1.0)              # one step per chunk
    calls = {"n": 0}

    def requested():
        calls["n"] += 1
        return calls["n"] > 40                                   # in the second block
    monkeypatch.setattr(interrupt, "requested", requested)
    cfg = sweep_cfg()
    with pytest.raises(interrupt.Interrupted):
        sn.sweep(cfg, tmp_path / "s.zarr", workers=1, block=1, quiet=True)
    part = loaded(tmp_path / "s.zarr")
    assert 0 < int(part.done.sum()) < part.done.size
    assert np.isnan(part.test_loss.where(~part.done)).all()      # nothing half written
    monkeypatch.setattr(interrupt, "requested", lambda: False)
    resumed = sn.sweep(cfg, tmp_path / "s.zarr", workers=1, quiet=True).load()
    ref = sn.sweep(cfg, tmp_path / "r.zarr", workers=1, block=1, quiet=True).load()
    np.testing.assert_array_equal(resumed.test_loss.values, ref.test_loss.values)


def test_resume_recomputes_a_damaged_cell(tmp_path):
    """A chunk that no longer reads back is found on resume and its cells computed again."""
    path = tmp_path / "s.zarr"
    cfg = sweep_cfg()
    ref = sn.sweep(cfg, path, workers=1, quiet=True).load()
    chunks = sorted(p for p in (path / "test_error").rglob("*")
                    if p.is_file() and p.name != "zarr.json")
    chunks[0].write_bytes(b"\x00garbage")
    assert st.verify(path)["damaged"].any()
    again = sn.sweep(cfg, path, workers=1, quiet=True).load()
    np.testing.assert_array_equal(again.test_error.values, ref.test_error.values)
    assert not st.verify(path)["damaged"].any()


def test_sweep_stops_between_blocks_on_request_and_resumes(tmp_path, monkeypatch):
    """SIGINT/SIGTERM under handle_signals set the flag; the sweep keeps the blocks written,
    cancels the rest, raises Interrupted, and the same call resumes to the full result."""
    from signoise import interrupt

    monkeypatch.setattr(interrupt, "requested", lambda: True)   # workers do not see this
    cfg = sweep_cfg()
    with pytest.raises(interrupt.Interrupted, match="resume"):
        sn.sweep(cfg, tmp_path / "s.zarr", workers=2, block=1, quiet=True)
    part = loaded(tmp_path / "s.zarr")
    assert 1 <= int(part.done.sum()) < part.done.size
    monkeypatch.setattr(interrupt, "requested", lambda: False)
    resumed = sn.sweep(cfg, tmp_path / "s.zarr", workers=1, quiet=True).load()
    ref = sn.sweep(cfg, tmp_path / "r.zarr", workers=1, block=1, quiet=True).load()
    np.testing.assert_array_equal(resumed.test_loss.values, ref.test_loss.values)


def test_a_write_error_leaves_a_readable_store_that_resumes(tmp_path, monkeypatch):
    """A full disk (ENOSPC) while writing the second block: the error reaches the caller, the
    store still reads back (the first block done, the rest missing), and resuming completes it
    to the uninterrupted result."""
    import errno

    cfg = sweep_cfg()
    path = tmp_path / "s.zarr"
    real, calls = st.write_block, {"n": 0}

    def full_disk(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)
    monkeypatch.setattr(st, "write_block", full_disk)
    with pytest.raises(OSError, match="No space left"):
        sn.sweep(cfg, path, workers=1, block=1, quiet=True)
    health = st.verify(path)
    assert int(health["done"].sum()) == 1 and not health["damaged"].any()
    monkeypatch.setattr(st, "write_block", real)
    resumed = sn.sweep(cfg, path, workers=1, quiet=True).load()
    ref = sn.sweep(cfg, tmp_path / "r.zarr", workers=1, block=1, quiet=True).load()
    np.testing.assert_array_equal(resumed.test_loss.values, ref.test_loss.values)


def test_a_worker_killed_mid_block_leaves_a_store_that_resumes(tmp_path):
    """SIGKILL of one worker process while blocks are running: the sweep fails (the pool is
    broken), the store reads back with only whole blocks done, and resuming equals an
    uninterrupted sweep."""
    import multiprocessing as mp
    import threading
    from concurrent.futures.process import BrokenProcessPool

    cfg = sweep_cfg({"data.mu_norm": [1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0],
                     "data.n": [4, 5, 6, 8]}, seeds=3, train__steps=200)
    path = tmp_path / "s.zarr"
    killed = []

    def killer():
        deadline = time.time() + 60
        while time.time() < deadline and not killed:
            workers = mp.active_children()
            if path.exists() and workers:
                time.sleep(0.2)                            # a block is under way
                os.kill(workers[0].pid, signal.SIGKILL)
                killed.append(workers[0].pid)
            time.sleep(0.02)
    thread = threading.Thread(target=killer)
    thread.start()
    with pytest.raises(BrokenProcessPool):
        sn.sweep(cfg, path, workers=2, block=1, quiet=True)
    thread.join()
    assert killed
    health = st.verify(path)
    assert not health["damaged"].any() and not health["done"].all()
    resumed = sn.sweep(cfg, path, workers=1, quiet=True).load()
    reference = sn.sweep(cfg, tmp_path / "ref.zarr", workers=1, block=1, quiet=True).load()
    xr.testing.assert_identical(resumed, reference)
