"""Bit-identity of two checkouts: the same sweeps and batches run by each, compared variable by
variable with ``np.array_equal`` (NaN equal to NaN).

    python experiments/benchmarks/compare_trees.py --against OLD_CHECKOUT [--rows 2] [--rtol R]

``--rtol R`` reports, per variable that differs, the largest relative difference
|a − b| / max(|a|, |b|) over its entries (NaN at the same places in both counts as equal, NaN
against a number as a failure), and accepts differences up to R (exit status 1 above it).

Each checkout runs in its own process (``PYTHONPATH`` = the checkout, one Numba thread):
``--rows`` values of d of experiments/kou2023_theory_full.toml (all ‖μ‖ and seeds, Wishart), a
corner of experiments/kou2023_papercode.toml (explicit sampler, uniform init, bias), and a
``simulate_batch`` with ``record_rho = "full"`` mixing deterministic and stochastic rules and
seeds shared between ‖μ‖ values. Exit status 1 if any variable differs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve()
EXP = HERE.parents[1]


def child(out: str, rows: int) -> None:
    """Run the three workloads with the ``signoise`` on PYTHONPATH; save every variable."""
    import numpy as np

    import signoise as sn

    print(f"signoise from {Path(sn.__file__).parent}", file=sys.stderr)
    arrays = {}

    def grab(prefix, ds):
        for name, da in ds.data_vars.items():
            if da.dtype.kind in "fiub":
                arrays[f"{prefix}/{name}"] = np.asarray(da.values)

    cfg = sn.load_config(EXP / "kou2023_theory_full.toml")
    d = cfg.to_dict()
    d["sweep"]["grid"]["data.d"] = cfg.sweep.axes()["data.d"][:rows]
    with tempfile.TemporaryDirectory() as tmp:
        grab("theory", sn.sweep(sn.RunConfig.from_dict(d), Path(tmp) / "a.zarr", workers=1,
                                quiet=True).load())
        cfg = sn.load_config(EXP / "kou2023_papercode.toml")
        d = cfg.to_dict()
        d["sweep"] = {"seeds": 3, "grid": {"data.d": [100, 500],
                                           "data.mu_norm": [0.0, 0.5, 1.0, 2.0, 4.0]}}
        grab("papercode", sn.sweep(sn.RunConfig.from_dict(d), Path(tmp) / "b.zarr", workers=1,
                                   quiet=True).load())
    base = {"seed": 0, "data": {"n": 12, "d": 60, "mu_norm": 1.0, "n_test": 50, "flip": 0.1},
            "model": {"m": 3, "q": 1.0, "sigma0": 0.05},
            "train": {"lr": 0.2, "steps": 30, "record_every": 10}}
    cfgs, seeds = [], []
    for algo in ({"name": "gd"}, {"name": "noisy_eval", "s": 0.01}, {"name": "pegr", "lam": 0.1},
                 {"name": "sgd", "b": 4}):
        for mu in (0.0, 0.7, 3.0):
            for noise in ("projected", "isotropic"):
                c = sn.RunConfig.from_dict({**base, "algorithm": algo,
                                            "data": {**base["data"], "mu_norm": mu,
                                                     "noise": noise}})
                cfgs += [c, c]
                seeds += [0, 1]
    grab("batch", sn.simulate_batch(cfgs, seeds, record_rho="full", quiet=True))
    np.savez(out, **arrays)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--against", help="the other checkout (a git worktree); required")
    p.add_argument("--rows", type=int, default=2, help="rows (values of d) of the theory grid")
    p.add_argument("--rtol", type=float, default=None,
                   help="report the max relative difference per variable; accept up to RTOL")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args.child, args.rows)
        return 0
    if args.against is None:
        p.error("the following arguments are required: --against")
    import numpy as np

    trees = {"this": HERE.parents[2], "other": Path(args.against).resolve()}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, tree in trees.items():
            out = Path(tmp) / f"{name}.npz"
            env = {**os.environ, "PYTHONPATH": str(tree), "NUMBA_NUM_THREADS": "1",
                   "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                   # compiled kernels cached outside both checkouts (never written into them)
                   "NUMBA_CACHE_DIR": str(Path(tempfile.gettempdir()) / f"signoise-compare-{name}")}
            subprocess.run([sys.executable, str(HERE), "--child", str(out), "--rows",
                            str(args.rows)], env=env, check=True)
            with np.load(out) as z:
                results[name] = dict(z)
    a, b = results["this"], results["other"]
    bad = sorted(set(a) ^ set(b))
    differ = {}
    for key in sorted(set(a) & set(b)):
        if a[key].shape != b[key].shape:
            bad.append(key)
        elif not np.array_equal(a[key], b[key], equal_nan=True):
            differ[key] = max_rel_diff(a[key], b[key])
    print(f"{len(set(a) & set(b))} variables compared ({trees['this']} against "
          f"{trees['other']}): {len(set(a) & set(b)) - len(differ) - len(bad)} bit-identical")
    for key, rel in differ.items():
        print(f"  {key}: max relative difference {rel:.3g}")
    if args.rtol is None:
        bad += list(differ)
    else:
        bad += [key for key, rel in differ.items() if not rel <= args.rtol]
    print("all within tolerance" if not bad else "DIFFERENT: " + ", ".join(bad))
    return 1 if bad else 0


def max_rel_diff(x, y) -> float:
    """max |x − y| / max(|x|, |y|) over the entries (0 where both are equal, NaN included;
    inf where exactly one is NaN or the two differ in an infinite entry)."""
    import numpy as np

    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    same = (x == y) | (np.isnan(x) & np.isnan(y))
    if same.all():
        return 0.0
    xd, yd = x[~same], y[~same]
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.abs(xd - yd) / np.maximum(np.abs(xd), np.abs(yd))
    rel[~np.isfinite(rel)] = np.inf
    return float(rel.max())

if __name__ == "__main__":
    raise SystemExit(main())
