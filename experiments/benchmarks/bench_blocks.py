"""simulate_batch with and without blocks: runs per second and peak memory at 10⁴ runs.

Runs of the Kou et al. setting (bench_batch.py's config: n = 20, m = 10, ReLU, 100 GD steps,
1000 test points, Wishart sampler, each run with its own seed) through
``signoise.simulate_batch``, once with ``signoise.simulate.BLOCK_RUNS`` = 10³ (the default:
at most 10³ runs drawn and trained at once) and once with one block for the whole batch (the
behaviour before blocks). Each call runs in a fresh process with one Numba thread, so its
peak RSS is its own; the two settings alternate, round after round.

    python experiments/benchmarks/bench_blocks.py [--batch 10000] [--rounds 2]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path

import _bench

CHILD = """
import resource, sys, time, warnings
sys.path.insert(0, {here!r})
import numba
numba.set_num_threads(1)
import signoise as sn
from bench_batch import kou_config
sys.modules["signoise.simulate"].BLOCK_RUNS = {block}
cfg = kou_config(n_test={n_test})
warnings.simplefilter("ignore")
sn.simulate_batch([cfg] * 2, [0, 1], quiet=True)                  # compile
t = time.perf_counter()
ds = sn.simulate_batch([cfg] * {batch}, list(range(10, 10 + {batch})), quiet=True)
dt = time.perf_counter() - t
print(dt, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
      float(ds.test_error.isel(step=-1).mean()))
"""


def main(argv=None):
    p = _bench.parser(__doc__)
    p.add_argument("--batch", type=int, default=10_000, help="runs per call")
    p.set_defaults(rounds=2)
    args = p.parse_args(argv)
    batch, block, n_test, rounds = ((40, 10, 100, 1) if args.tiny else
                                    (args.batch, 1000, 1000, args.rounds))
    here = str(Path(__file__).resolve().parent)
    settings = {"one batch": 10**9, f"blocks of {block}": block}
    res = {k: [] for k in settings}
    _bench.header(f"simulate_batch of {batch} runs: blocks against one batch")
    for _ in range(rounds):
        for name, size in settings.items():
            code = CHILD.format(here=here, block=size, n_test=n_test, batch=batch)
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 check=True)
            res[name].append([float(v) for v in out.stdout.split()[-3:]])
    rows = []
    for name, vals in res.items():
        dt = statistics.median(v[0] for v in vals)
        rows.append([name, f"{batch / dt:.0f}", f"{max(v[1] for v in vals):.2f} GB",
                     f"{vals[0][2]:.6f}"])
    _bench.table(["setting", "runs/s (median)", "peak RSS", "mean final test error"], rows)
    print(f"Medians of {rounds} rounds, each call a fresh process with one Numba thread; the "
          "test errors agree because the numbers do not depend on the blocks.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
