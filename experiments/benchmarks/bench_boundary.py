"""Benchmark: runs and wall time of the adaptive boundary search against a grid of equal precision,
for the Cao et al. (2022) (n, ‖μ‖) race boundary at the demo settings (q = 3, d = 2000, σ₀ = 0.01,
η = 10⁻³, m = 10, 2000 GD steps).

    python experiments/benchmarks/bench_boundary.py [--tol T] [--rounds R] [--tiny]

The search (``sn.find_boundary``, race statistic, level 1/2) starts each row n from a factor-2
bracket around 25·(n/10)^(−1/3). The grid of equal precision (``equal_precision_grid``) covers
the union of the rows' evaluated ranges with the spacing of the narrowest final bracket and the
most seeds any row needed; it is run too, and its crossings (``theory.crossings``) and their
bootstrap se are printed beside the search's, so "equal precision" is measured, not assumed.
Wall times are medians over ``--rounds`` rounds, the two timed in turn.
"""

import math

import _bench
import numpy as np

from signoise import boundary as bd
from signoise import theory
from signoise.checks.cao2022 import base_config


def grid_crossings(cfg, ns, xs, seeds):
    """Per row: the crossing of the seed-mean race on the grid ``xs`` and its se (bootstrap over
    seeds, and the grid's resolution), from one simulate_batch call per row."""
    out = []
    for n in ns:
        runs = [cfg.updated({"data.n": int(n), "data.mu_norm": float(x)}) for x in xs
                for _ in range(seeds)]
        stat = bd.race_indicator(runs, [s for _ in xs for s in range(seeds)])
        stat = stat.reshape(xs.size, seeds).T[:, None, :]
        star = theory.crossings(stat, xs, 0.5)[0]
        rng = np.random.default_rng(0)
        boot = [theory.crossings(stat[rng.integers(0, seeds, seeds)], xs, 0.5)[0]
                for _ in range(200)]
        se = math.hypot(np.nanstd(np.log(boot)), math.log(xs[1] / xs[0]) / math.sqrt(12))
        out.append((star, se))
    return out


def main(argv=None):
    p = _bench.parser(__doc__)
    p.add_argument("--tol", type=float, default=0.05, help="target se of log ‖μ‖* per row")
    args = p.parse_args(argv)
    ns = np.array([10, 20] if args.tiny else [10, 20, 40])
    steps = 200 if args.tiny else 2000
    tol = 0.2 if args.tiny else args.tol
    rounds = 1 if args.tiny else args.rounds
    cfg = base_config({"train.steps": steps, "train.record_every": steps})
    guess = 25.0 * (ns / 10.0) ** (-1 / 3)
    search = {"x": "data.mu_norm", "y": "data.n", "y_values": ns,
                  "x_range": np.stack([guess / 2, guess * 2], 1), "stat": "race", "tol": tol}
    ds = bd.find_boundary(cfg, **search)            # warm: compiled kernels, the plan
    grid = bd.equal_precision_grid(ds)
    xs = np.geomspace(np.nanmin(ds.x_eval), np.nanmax(ds.x_eval), max(grid["points"], 2))
    last = {}
    wall = _bench.side_by_side({
        "search": lambda: last.update(search=bd.find_boundary(cfg, **search)),
        "grid": lambda: last.update(grid=grid_crossings(cfg, ns, xs, grid["seeds"]))}, rounds)
    found = last["grid"]
    assert last["search"].equals(ds)  # the search is deterministic

    _bench.header(f"Adaptive boundary search vs a grid of equal precision (Cao race, q = 3, "
                  f"{steps} steps, tol {tol:g})")
    _bench.table(["n", "search ‖μ‖*", "search se", "seeds", "runs", "grid ‖μ‖*", "grid se"],
                 [[int(n), f"{ds.crossing.values[k]:.4g}", f"{ds.se.values[k]:.3f}",
                   int(ds.seeds_used.values[k]), int(ds.runs.values[k]),
                   f"{found[k][0]:.4g}", f"{found[k][1]:.3f}"] for k, n in enumerate(ns)])
    _bench.table(["", "runs", "points per row", "seeds per point", "wall (median)"],
                 [["search", ds.attrs["runs"], "own bracket", (f"{ds.attrs['seeds']}–"
                   f"{int(ds.seeds_used.max())}"), _bench.fmt_time(wall["search"])],
                  ["grid", grid["runs"], grid["points"], grid["seeds"],
                   _bench.fmt_time(wall["grid"])],
                  ["ratio grid/search", f"{grid['runs'] / ds.attrs['runs']:.1f}×", "", "",
                   f"{wall['grid'] / wall['search']:.1f}×"]])


if __name__ == "__main__":
    main()
