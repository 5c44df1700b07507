"""Benchmark: the Kou et al. (2023) grid as a sweep (100 × 100 cells × 10 seeds, n = 20,
m = 10, 100 GD steps, n_test = 1000; the settings of experiments/kou2023_papercode.toml).

    python experiments/benchmarks/bench_kou_grid.py [--workers N] [--stride S] [--tiny]

Prints cells per second, runs per second and the total time (store creation and writes
included). ``--stride S`` runs every S-th value of d only (all ‖μ‖ and seeds) and also prints
the time scaled to the full grid; ``--tiny`` runs a 3 × 3 × 2-seed corner (a CI smoke run). The store
goes to a temporary folder and is removed afterwards unless ``--store`` is given.
"""

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import signoise as sn

CONFIG = Path(__file__).resolve().parents[1] / "kou2023_papercode.toml"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", type=int, default=None, help="processes (default: cores)")
    p.add_argument("--stride", type=int, default=1, help="every S-th d value only")
    p.add_argument("--tiny", action="store_true", help="3 x 3 cells x 2 seeds")
    p.add_argument("--store", help="keep the store here (must not exist)")
    args = p.parse_args(argv)

    cfg = sn.load_config(CONFIG)
    if args.tiny:
        d = cfg.to_dict()
        d["sweep"] = {"seeds": 2, "grid": {"data.d": [100, 110, 120],
                                           "data.mu_norm": [0.0, 0.1, 0.2]}}
        cfg = sn.RunConfig.from_dict(d)
    elif args.stride > 1:
        d = cfg.to_dict()
        d["sweep"]["grid"]["data.d"] = cfg.sweep.axes()["data.d"][::args.stride]
        cfg = sn.RunConfig.from_dict(d)
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
    workers = args.workers or len(os.sched_getaffinity(0))
    print(f"Kou et al. grid as a sweep{' (tiny)' if args.tiny else ''}: sn.sweep, explicit "
          "sampler, store writes included\n")
    full = "" if args.tiny else f" | {elapsed * 10_000 / cells / 60:.1f} min"
    print("| cells | seeds | workers | total time | cells/s | runs/s |"
          + ("" if args.tiny else " full grid (scaled) |"))
    print("|---|---|---|---|---|---|" + ("" if args.tiny else "---|"))
    print(f"| {cells} | {runs // cells} | {workers} | {elapsed:.1f} s | {cells / elapsed:.2f} "
          f"| {runs / elapsed:.1f}{full} |")


if __name__ == "__main__":
    main()
