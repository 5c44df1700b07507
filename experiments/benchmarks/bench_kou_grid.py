"""Benchmark: the Kou et al. (2023) grid as a sweep (100 × 100 cells × 10 seeds, n = 20,
m = 10, 100 GD steps, n_test = 1000).

    python experiments/benchmarks/bench_kou_grid.py [--config papercode|theory] [--workers N]
        [--stride S] [--tiny] [--against CHECKOUT --rounds R]

``--config papercode`` (default): experiments/kou2023_papercode.toml (explicit sampler, uniform
init, bias); ``--config theory``: experiments/kou2023_theory_full.toml (the theory model,
Wishart sampler). Prints cells per second, runs per second and the total time (store creation
and writes included). ``--stride S`` runs every S-th value of d only (all ‖μ‖ and seeds) and
also prints the time scaled to the full grid; ``--tiny`` runs a 3 × 3 × 2-seed corner (a CI
smoke run). ``--against CHECKOUT`` times the same sweep with this checkout and with another
(e.g. the previous version: ``git worktree add /tmp/old main``) side by side: each run is a
fresh process (``PYTHONPATH`` = the checkout) under ``/usr/bin/time``, the two alternate (ABBA)
for ``--rounds`` rounds after one warm-up each (compiled kernels cached per checkout), and the
table shows median wall time, peak memory (``/usr/bin/time``'s max RSS: the largest process
of the sweep, main or worker, in MB) and the ratio. The store goes to a temporary folder and is removed afterwards unless ``--store`` is
given.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import signoise as sn

HERE = Path(__file__).resolve()
CONFIGS = {"papercode": HERE.parents[1] / "kou2023_papercode.toml",
           "theory": HERE.parents[1] / "kou2023_theory_full.toml"}

#: What a contender process runs: the sweep of argv[1] (stride argv[4]) into argv[2].
CHILD = """
import sys, time
import signoise as sn
cfg = sn.load_config(sys.argv[1])
stride, workers = int(sys.argv[4]), int(sys.argv[3])
d = cfg.to_dict()
d["sweep"]["grid"]["data.d"] = cfg.sweep.axes()["data.d"][::stride]
t0 = time.perf_counter()
sn.sweep(sn.RunConfig.from_dict(d), sys.argv[2], workers=workers, quiet=True)
print(time.perf_counter() - t0)
"""


def grid(cfg, tiny: bool, stride: int):
    d = cfg.to_dict()
    if tiny:
        d["sweep"] = {"seeds": 2, "grid": {"data.d": [100, 110, 120],
                                           "data.mu_norm": [0.0, 0.1, 0.2]}}
    elif stride > 1:
        d["sweep"]["grid"]["data.d"] = cfg.sweep.axes()["data.d"][::stride]
    return sn.RunConfig.from_dict(d)


def contender(tree: Path, config: Path, workers: int, stride: int, tmp: str, tag: str):
    """(wall seconds inside the sweep, peak RSS in MB, CPU seconds) of one sweep run by
    ``tree``: the CPU time (user + system of the process and its workers, from
    ``/usr/bin/time``) moves less than the wall time when other jobs share the cores."""
    store = Path(tmp) / f"{tag}-{time.monotonic_ns()}.zarr"
    env = {**os.environ, "PYTHONPATH": str(tree),
           "NUMBA_CACHE_DIR": str(Path(tempfile.gettempdir()) / f"signoise-bench-{tag}")}
    out = subprocess.run(["/usr/bin/time", "-f", "MAXRSS %M CPU %U %S", sys.executable, "-c",
                          CHILD, str(config), str(store), str(workers), str(stride)],
                         env=env, capture_output=True, text=True, check=True,
                         cwd=tmp)  # with -c the current folder precedes PYTHONPATH on sys.path
    shutil.rmtree(store, ignore_errors=True)
    fields = out.stderr.rsplit("MAXRSS", 1)[1].split()
    rss, cpu = int(fields[0]) / 1024, float(fields[2]) + float(fields[3])
    return float(out.stdout.strip().splitlines()[-1]), rss, cpu


def side_by_side(args, workers):
    trees = {"this checkout": HERE.parents[2], "against": Path(args.against).resolve()}
    config = CONFIGS[args.config]
    cells = len(grid(sn.load_config(config), False, args.stride).sweep.axes()["data.d"]) * 100
    times = {k: [] for k in trees}
    rss = {k: [] for k in trees}
    cpu = {k: [] for k in trees}
    tmp = tempfile.mkdtemp(prefix="bench_kou_")
    try:
        for k, tree in trees.items():     # warm-up: compile into the checkout's cache
            contender(tree, config, workers, 50, tmp, f"{k.split()[0]}")
        for r in range(args.rounds):   # ABBA order: a trend in the load favours neither
            for k, tree in (list(trees.items()) if r % 2 == 0 else list(trees.items())[::-1]):
                t, m, c = contender(tree, config, workers, args.stride, tmp, f"{k.split()[0]}")
                times[k].append(t)
                rss[k].append(m)
                cpu[k].append(c)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load = os.getloadavg()
    print(f"Kou et al. grid ({args.config}, {config.name}) as a sweep, {cells} cells × 10 seeds, "
          f"{workers} workers, stride {args.stride}: medians of {args.rounds} alternating "
          f"(ABBA) rounds; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} "
          f"({os.cpu_count()} cores)\n")
    base = statistics.median(times["against"])
    base_cpu = statistics.median(cpu["against"])
    print("| code | median wall | full grid (scaled) | runs/s | peak RSS (largest process) "
          "| speed-up | median CPU (all processes) | CPU ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for k, tree in trees.items():
        t, c = statistics.median(times[k]), statistics.median(cpu[k])
        print(f"| {k} ({tree}) | {t:.1f} s | {t * 10_000 / cells:.1f} s | {cells * 10 / t:.0f} "
              f"| {max(rss[k]):.0f} MB | {base / t:.2f}× | {c:.1f} s | {base_cpu / c:.2f}× |")
    print("\nEach sweep (wall, CPU):", "; ".join(
        f"{k.split()[0]}: " + ", ".join(f"{t:.1f} s / {c:.1f} s" for t, c in zip(times[k], cpu[k]))
        for k in trees))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", choices=sorted(CONFIGS), default="papercode")
    p.add_argument("--workers", type=int, default=None, help="processes (default: cores)")
    p.add_argument("--stride", type=int, default=1, help="every S-th d value only")
    p.add_argument("--tiny", action="store_true", help="3 x 3 cells x 2 seeds")
    p.add_argument("--store", help="keep the store here (must not exist)")
    p.add_argument("--against", help="another checkout to time side by side")
    p.add_argument("--rounds", type=int, default=3, help="rounds with --against")
    args = p.parse_args(argv)
    workers = args.workers or len(os.sched_getaffinity(0))
    if args.against:
        return side_by_side(args, workers)

    cfg = grid(sn.load_config(CONFIGS[args.config]), args.tiny, args.stride)
    tmp = None
    if args.store:
        store = Path(args.store)
        if store.exists():
            raise SystemExit(f"{store} exists: a benchmark must start from nothing")
    else:
        tmp = tempfile.mkdtemp(prefix="bench_kou_")
        store = Path(tmp) / "kou.zarr"
    try:
        t0 = time.perf_counter()
        ds = sn.sweep(cfg, store, workers=args.workers)
        elapsed = time.perf_counter() - t0
        cells, runs = ds.done.size, ds.done.size * ds.sizes["seed"]
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    sampler = cfg.data.sampler
    print(f"Kou et al. grid as a sweep{' (tiny)' if args.tiny else ''}: sn.sweep, {sampler} "
          "sampler, store writes included\n")
    full = "" if args.tiny else f" | {elapsed * 10_000 / cells / 60:.1f} min"
    print("| cells | seeds | workers | total time | cells/s | runs/s |"
          + ("" if args.tiny else " full grid (scaled) |"))
    print("|---|---|---|---|---|---|" + ("" if args.tiny else "---|"))
    print(f"| {cells} | {runs // cells} | {workers} | {elapsed:.1f} s | {cells / elapsed:.2f} "
          f"| {runs / elapsed:.1f}{full} |")


if __name__ == "__main__":
    main()
