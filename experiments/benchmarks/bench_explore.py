"""Explorer redraw latency: one control change, blitting against full redraw, and its split.

The explorer's default config (Cao et al. 2022 benign: n = 20, m = 10, d = 2000, 3000 GD
steps, record every 10, 500 test points), with the precomputed phase map in its panel. Each
change moves ‖μ‖ to a new value through ``Explorer.set`` (re-simulate, then redraw) on two
explorers side by side: the default one, which blits the data over a cached background and
redraws only the axes that changed (after, ``signoise.blit``), and one built with
``blit=False``, which draws the whole figure at each change (before). Under Agg a draw is
rendered at once; a GUI backend adds the copy to the screen. The split: the same config
through ``sn.simulate`` alone, and ``Explorer.redraw`` alone on the previous change's data
(so the panels' limits move, as in a change). Contenders alternate; medians over all changes.
Target (issue 9): a change redraws in under 0.2 s.

    python experiments/benchmarks/bench_explore.py [--tiny] [--changes 30]
"""

from __future__ import annotations

import statistics
import time

import _bench


def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - t0


def main(argv=None):
    p = _bench.parser(__doc__)
    p.add_argument("--changes", type=int, default=30, help="control changes timed")
    args = p.parse_args(argv)
    import matplotlib
    matplotlib.use("Agg")
    import numpy as np

    import signoise as sn
    from signoise.explore import Explorer, explore, phase_map

    _bench.header("explorer redraw latency")
    cfg = explore(show=False, phase=False).cfg
    if args.tiny:
        cfg = cfg.updated({"train.steps": 100})
    # a small map so the phase panel costs what it costs in the real figure
    phase = phase_map(cfg, ns=(5, 20) if args.tiny else (5, 10, 20, 40),
                      snrs=np.geomspace(0.05, 1.5, 3 if args.tiny else 6))
    after, before = Explorer(cfg, phase=phase), Explorer(cfg, phase=phase, blit=False)
    for ex in (after, before):
        ex.fig.canvas.draw()
    changes = 3 if args.tiny else args.changes
    times = {k: [] for k in ("after", "before", "simulate", "redraw")}
    for mu in np.linspace(5.0, 40.0, changes):
        previous = after.ds
        times["after"].append(_timed(after.set, mu_norm=float(mu)))
        times["before"].append(_timed(before.set, mu_norm=float(mu)))
        times["simulate"].append(_timed(sn.simulate, after.cfg, engine="gram", quiet=True))
        current, after.ds = after.ds, previous
        times["redraw"].append(_timed(after.redraw))
        after.ds = current
        after.redraw()
    c = after.cfg
    print(f"config: n = {c.data.n}, m = {c.model.m}, d = {c.data.d}, steps = {c.train.steps}, "
          f"record_every = {c.train.record_every} ({after.ds.sizes['step']} points), "
          f"n_test = {c.data.n_test}; {changes} changes\n")
    names = {"after": "change, blitting (`Explorer.set`)",
             "before": "change, full draw (`Explorer(..., blit=False).set`)",
             "simulate": "split: `sn.simulate` alone",
             "redraw": "split: `Explorer.redraw` alone (blitting, limits moving)"}
    print("| contender | median (s) | min (s) | max (s) |")
    print("|---|---|---|---|")
    for key, name in names.items():
        ts = times[key]
        print(f"| {name} | {statistics.median(ts):.3f} | {min(ts):.3f} | {max(ts):.3f} |")
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\nratio full draw / blitting (medians of a change): {med['before'] / med['after']:.2f}")
    print(f"full-draw part of a change (before − simulate): {med['before'] - med['simulate']:.3f} s")


if __name__ == "__main__":
    main()
