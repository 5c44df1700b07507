"""Explorer redraw latency: one control change, blitting against full redraw, and its split.

The explorer's default config (Cao et al. 2022 benign: n = 20, m = 10, d = 2000, 3000 GD
steps, 500 test points; the explorer records at most ~150 points), with a precomputed phase
map in its panel. Each change moves ‖μ‖ to a new value through ``Explorer.set`` (re-simulate,
then redraw) on two explorers side by side: the default one, which blits the data over a
cached background and redraws only the axes that changed (after, ``signoise.blit``), and one
built with ``blit=False``, which draws the whole figure at each change (before). Under Agg a
draw is rendered at once; a GUI backend adds the copy to the screen. The split comes from
``Explorer.timing`` (seconds in ``simulate`` and in drawing, per change); bare ``sn.simulate``
on the same config is timed too. Contenders alternate; medians over all changes. Target
(issue 9): a change redraws in under 0.2 s.

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
    cfg = explore(show=False, phase=False).base
    if args.tiny:
        cfg = cfg.updated({"train.steps": 100})
    # a small map so the phase panel costs what it costs in the real figure
    phase = phase_map(cfg, ns=(5, 20) if args.tiny else (5, 10, 20, 40),
                      snrs=np.geomspace(0.05, 1.5, 3 if args.tiny else 6))
    after, before = Explorer(cfg, phase=phase), Explorer(cfg, phase=phase, blit=False)
    for ex in (after, before):
        ex.fig.canvas.draw()
    changes = 3 if args.tiny else args.changes
    rows = {"after": [], "before": []}
    bare = []
    for mu in np.linspace(5.0, 40.0, changes):
        for key, ex in (("after", after), ("before", before)):
            t = _timed(ex.set, mu_norm=float(mu))
            rows[key].append((t, ex.timing["simulate"], ex.timing["draw"]))
        bare.append(_timed(sn.simulate, after.cfg, engine="gram", quiet=True))
    c = after.cfg
    print(f"config: n = {c.data.n}, m = {c.model.m}, d = {c.data.d}, steps = {c.train.steps}, "
          f"record_every = {c.train.record_every} ({after.ds.sizes['step']} points), "
          f"n_test = {c.data.n_test}; {changes} changes\n")
    names = {"after": "blitting (`Explorer.set`, default)",
             "before": "full draw (`Explorer(..., blit=False).set`)"}
    print("| a change of ‖μ‖ | median (s) | min (s) | max (s) | simulate part, median (s) "
          "| draw part, median (s) |")
    print("|---|---|---|---|---|---|")
    med = {}
    for key, name in names.items():
        total, sim, draw = (list(col) for col in zip(*rows[key]))
        med[key] = statistics.median(total)
        print(f"| {name} | {med[key]:.3f} | {min(total):.3f} | {max(total):.3f} | "
              f"{statistics.median(sim):.3f} | {statistics.median(draw):.3f} |")
    print(f"| bare `sn.simulate`, same config | {statistics.median(bare):.3f} | {min(bare):.3f} | "
          f"{max(bare):.3f} | | |")
    print(f"\nratio full draw / blitting (medians of a change): {med['before'] / med['after']:.2f}")

if __name__ == "__main__":
    main()
