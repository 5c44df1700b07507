"""Smoke test: every benchmark script runs at its tiny size and prints a table (no timing)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "experiments" / "benchmarks"
SCRIPTS = sorted(p.name for p in BENCH.glob("bench_*.py"))
NEEDS_TORCH = {"bench_torch.py"}


def test_every_benchmark_is_listed():
    assert {"bench_torch.py", "bench_algorithms.py", "bench_large_d.py", "bench_batch.py",
            "bench_kou_grid.py", "bench_kou_samplers.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_runs_tiny(script):
    if script in NEEDS_TORCH and importlib.util.find_spec("torch") is None:
        pytest.skip("PyTorch is not installed (optional extra 'bench')")
    out = subprocess.run([sys.executable, str(BENCH / script), "--tiny"], cwd=BENCH,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "\n| " in out.stdout and "|---" in out.stdout, out.stdout[-2000:]


def test_kou_profile_times_the_pieces_of_a_run():
    out = subprocess.run([sys.executable, str(BENCH / "profile_kou_grid.py"), "--parts",
                          "--rounds", "1", "--reps", "5"], cwd=BENCH, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "| step: whole (gram.advance, per step) |" in out.stdout, out.stdout[-2000:]
    assert "10⁵ runs on 2 cores" in out.stdout


def test_width_experiment_runs_at_its_quick_size(tmp_path):
    """experiments/orvieto_width.py (figures/orvieto_width.png) at SIGNOISE_QUICK: it runs,
    prints both tables and writes its figure."""
    import os

    script = BENCH.parent / "orvieto_width.py"
    out = subprocess.run([sys.executable, str(script), "--out", str(tmp_path / "w.png")],
                         capture_output=True, text=True, timeout=600,
                         env={**os.environ, "SIGNOISE_QUICK": "1"})
    assert out.returncode == 0, out.stderr[-3000:]
    assert "layer-wise" in out.stdout and "training loss, test error" in out.stdout
    assert (tmp_path / "w.png").read_bytes()[:4] == b"\x89PNG"


def test_error_vs_loss_experiment_prints_its_table():
    """experiments/cao_error_vs_loss.py (docs/checks.md's table) at a small size: both n, all
    nine ‖μ‖, and the race, error and loss columns read as numbers in [0, 1]."""
    script = BENCH.parent / "cao_error_vs_loss.py"
    out = subprocess.run([sys.executable, str(script), "--steps", "400", "--seeds", "2"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [line.split() for line in out.stdout.splitlines()[1:] if line.strip()]
    assert len(rows) == 18 and {r[0] for r in rows} == {"10", "40"}
    for r in rows:
        race, err, loss = (float(v) for v in r[2:5])
        assert 0 <= race <= 1 and 0 <= err <= 1 and 0 < loss < 1
