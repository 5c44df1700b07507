"""Explorer redraw latency: one control change (re-simulate + full Agg draw) against bare simulate.

The explorer's default config (Cao et al. 2022 benign: n = 20, m = 10, d = 2000, 3000 GD
steps, record every 10, 500 test points). Each change moves ‖μ‖ to a new value through
``Explorer.set``, which re-simulates and draws the whole canvas once (``draw_idle`` draws at
once under Agg; a GUI backend coalesces it, so this is an upper bound); side by side, the
same config through ``sn.simulate`` alone. Changes alternate between the two contenders;
medians over all changes. Target (issue 9): a change redraws in under 0.2 s.

    python experiments/benchmarks/bench_explore.py [--tiny] [--changes 30]
"""

from __future__ import annotations

import statistics
import time

import _bench


def main(argv=None):
    p = _bench.parser(__doc__)
    p.add_argument("--changes", type=int, default=30, help="control changes timed")
    args = p.parse_args(argv)
    import matplotlib
    matplotlib.use("Agg")
    import numpy as np

    import signoise as sn
    from signoise.explore import explore, phase_map

    _bench.header("explorer redraw latency")
    ex = explore(show=False, phase=False)
    cfg = ex.cfg
    if args.tiny:
        cfg = cfg.updated({"train.steps": 100})
        ex = sn.explore(cfg, show=False, phase=False)
    # a small map so the phase panel costs what it costs in the real figure
    phase = phase_map(cfg, ns=(5, 20) if args.tiny else (5, 10, 20, 40),
                      snrs=np.geomspace(0.05, 1.5, 3 if args.tiny else 6))
    ex = sn.explore(cfg, show=False, phase=phase)
    ex.fig.canvas.draw()
    changes = 3 if args.tiny else args.changes
    mus = np.linspace(5.0, 40.0, changes)
    redraw, bare = [], []
    for mu in mus:
        t0 = time.perf_counter()
        ex.set(mu_norm=float(mu))
        redraw.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        sn.simulate(ex.cfg, engine="gram", quiet=True)
        bare.append(time.perf_counter() - t0)
    c = ex.cfg
    print(f"config: n = {c.data.n}, m = {c.model.m}, d = {c.data.d}, steps = {c.train.steps}, "
          f"record_every = {c.train.record_every}, n_test = {c.data.n_test}; {changes} changes\n")
    print("| contender | median (s) | min (s) | max (s) |")
    print("|---|---|---|---|")
    for name, ts in (("change: Explorer.set (simulate + Agg draw)", redraw), ("bare sn.simulate", bare)):
        print(f"| {name} | {statistics.median(ts):.3f} | {min(ts):.3f} | {max(ts):.3f} |")
    print(f"\nratio redraw / simulate (medians): {statistics.median(redraw) / statistics.median(bare):.2f}")


if __name__ == "__main__":
    main()
