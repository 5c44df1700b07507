"""The explorer in a real Tk window: move controls, check the blitted window, take a screenshot.

    xvfb-run -s "-screen 0 1400x800x24" python experiments/explore_screenshot.py -o figures/explore_screenshot.png

Opens ``signoise explore`` (the default config and phase map) with the TkAgg backend, then,
from a Tk timer once the window is up, moves ‖μ‖ across the boundary and back as a user would
(``Slider.set_val``, so the widget callbacks run), each change blitted to the window. It prints
each change's time (re-simulate + blit to the window), checks that the blitted canvas equals a
full redraw pixel for pixel and that the lines hold ``sn.simulate``'s data, and saves a grab of
the window from the X screen (Pillow's ImageGrab) to ``-o``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("-o", "--output", required=True, help="PNG screenshot")
    p.add_argument("--mu", type=float, default=12.0, help="‖μ‖ shown in the screenshot")
    args = p.parse_args(argv)
    import matplotlib
    matplotlib.use("TkAgg")
    import matplotlib.pyplot as plt
    import numpy as np
    from PIL import ImageGrab

    import signoise as sn

    ex = sn.explore(show=False)
    fig, canvas = ex.fig, ex.fig.canvas
    fig.canvas.manager.window.geometry("+0+0")
    report = {}

    def drive():
        times = []
        for mu in [*np.linspace(8.0, 40.0, 9), args.mu]:
            t0 = time.perf_counter()
            ex.sliders["mu_norm"].set_val(float(mu))
            canvas.flush_events()
            times.append(time.perf_counter() - t0)
        report["times"] = times
        blitted = np.asarray(canvas.buffer_rgba()).copy()
        canvas.draw()
        report["equal"] = bool(np.array_equal(blitted, np.asarray(canvas.buffer_rgba())))
        ds = sn.simulate(ex.cfg, quiet=True)
        report["data"] = bool(np.array_equal(ex.lines["gamma+"].get_data()[1],
                                             ds["gamma_max"].sel(j=1).values))
        canvas.flush_events()
        canvas.get_tk_widget().after(1500, grab)

    def grab():
        w = fig.canvas.manager.window          # the window only, not the whole screen
        x, y = w.winfo_rootx(), w.winfo_rooty()
        box = (x, y, x + w.winfo_width(), y + w.winfo_height())
        ImageGrab.grab(bbox=box, xdisplay=os.environ["DISPLAY"]).save(args.output)
        plt.close(fig)

    canvas.get_tk_widget().after(3000, drive)
    plt.show()
    t = report["times"]
    print(f"backend {matplotlib.get_backend()}, blitting {ex.blitter.live}; {len(t)} slider moves: "
          f"median {statistics.median(t):.3f} s, min {min(t):.3f} s, max {max(t):.3f} s")
    print(f"blitted window equals a full redraw: {report['equal']}; lines equal sn.simulate: "
          f"{report['data']}; screenshot {args.output}")
    return 0 if report["equal"] and report["data"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
