"""Benchmark: the main process of a sweep, phase by phase (issue 11): when the plan, the
schema probe, the store's creation, the first and the last block's write end, and the CPU the
main process spends (its workers' excluded) and each block's write costs.

    python experiments/benchmarks/bench_sweep_phases.py [--stride S] [--workers N]
        [--against CHECKOUT] [--rounds R] [--tiny]

The sweep is the Kou et al. theory grid (experiments/kou2023_theory_full.toml, 100 × 100 cells
× 10 seeds; ``--stride S`` keeps every S-th d). Each sweep is a fresh process (``PYTHONPATH`` =
the checkout, its own Numba cache folder, started in a temporary folder: with ``-c`` the
current folder comes first on ``sys.path``, and a checkout's root would shadow PYTHONPATH) that wraps ``sweeps.plan``, ``sweeps._schema``,
``store.create`` and ``store.write_block`` to stamp their ends (seconds since ``sweep`` was
called) and the process CPU (``getrusage(RUSAGE_SELF)``: the main process and its threads,
zarr's included) each ``write_block`` takes. With ``--against`` the two checkouts alternate
(ABBA) for ``--rounds`` rounds after one warm-up each; the table shows medians.
``--tiny``: a 3 × 3 × 2-seed corner, this checkout, one round (a CI smoke run).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve()
CONFIG = HERE.parents[1] / "kou2023_theory_full.toml"

#: What a contender runs: argv = config, store, workers, stride, tiny; prints one JSON line.
CHILD = r"""
import json, resource, sys, time
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
import signoise as sn
from signoise import store, sweeps
marks, writes = {}, []
def stamp(mod, name):
    f = getattr(mod, name)
    def g(*a, **k):
        c = cpu()
        r = f(*a, **k)
        marks.setdefault(name, time.perf_counter() - T0)
        if name == "write_block":
            writes.append(cpu() - c)
            marks["last write"] = time.perf_counter() - T0
        return r
    setattr(mod, name, g)
for mod, name in ((sweeps, "plan"), (sweeps, "_schema"), (store, "create"),
                  (store, "write_block")):
    stamp(mod, name)
cfg = sn.load_config(sys.argv[1])
d = cfg.to_dict()
if sys.argv[5] == "1":
    d["sweep"] = {"seeds": 2, "grid": {"data.d": [100, 110, 120], "data.mu_norm": [0.0, 0.1, 0.2]}}
else:
    d["sweep"]["grid"]["data.d"] = cfg.sweep.axes()["data.d"][::int(sys.argv[4])]
cfg = sn.RunConfig.from_dict(d)
T0, C0 = time.perf_counter(), cpu()
sn.sweep(cfg, sys.argv[2], workers=int(sys.argv[3]), quiet=True)
marks["end"] = time.perf_counter() - T0
print(json.dumps({"marks": marks, "cpu": cpu() - C0, "writes": writes}))
"""

PHASES = ("plan", "_schema", "create", "write_block", "last write", "end")


def contender(tree: Path, workers: int, stride: int, tiny: bool, tmp: str, tag: str) -> dict:
    store = Path(tmp) / f"{tag}-{os.getpid()}-{len(os.listdir(tmp))}.zarr"
    env = {**os.environ, "PYTHONPATH": str(tree),
           "NUMBA_CACHE_DIR": str(Path(tempfile.gettempdir()) / f"signoise-bench-{tag}")}
    out = subprocess.run([sys.executable, "-c", CHILD, str(CONFIG), str(store), str(workers),
                          str(stride), "1" if tiny else "0"],
                         env=env, capture_output=True, text=True, check=True, cwd=tmp)
    subprocess.run(["rm", "-rf", str(store)], check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--stride", type=int, default=1, help="every S-th d value only")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--against", help="another checkout, timed side by side")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--tiny", action="store_true", help="3 x 3 cells x 2 seeds, one round")
    args = p.parse_args(argv)
    trees = {"this checkout": HERE.parents[2]}
    if args.against and not args.tiny:
        trees["against"] = Path(args.against).resolve()
    rounds = 1 if args.tiny else args.rounds
    runs = {k: [] for k in trees}
    with tempfile.TemporaryDirectory(prefix="bench_phases_") as tmp:
        if not args.tiny:
            for k, tree in trees.items():     # warm-up: compile into the checkout's cache
                contender(tree, args.workers, 50, False, tmp, k.split()[0])
        for r in range(rounds):               # ABBA order
            order = list(trees.items()) if r % 2 == 0 else list(trees.items())[::-1]
            for k, tree in order:
                runs[k].append(contender(tree, args.workers, args.stride, args.tiny, tmp,
                                         k.split()[0]))
    load = os.getloadavg()
    size = "3 × 3 cells × 2 seeds" if args.tiny else f"Kou theory grid, stride {args.stride}"
    print(f"Sweep phases ({size}, {args.workers} workers): seconds since `sweep` was called, "
          f"medians of {rounds} round(s) (ABBA); load average {load[0]:.1f} {load[1]:.1f} "
          f"{load[2]:.1f} ({os.cpu_count()} cores)\n")
    print("| code | plan | schema | store created | first block written | last block written "
          "| end | main-process CPU | write_block CPU per block (median) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for k, tree in trees.items():
        med = {ph: statistics.median(r["marks"][ph] for r in runs[k]) for ph in PHASES}
        cpu = statistics.median(r["cpu"] for r in runs[k])
        wb = statistics.median(w for r in runs[k] for w in r["writes"]) * 1e3
        print(f"| {k} ({tree}) | " + " | ".join(f"{med[ph]:.2f} s" for ph in PHASES)
              + f" | {cpu:.2f} s | {wb:.1f} ms |")
    print("\nEach sweep (end / main CPU):", "; ".join(
        f"{k.split()[0]}: " + ", ".join(f"{r['marks']['end']:.1f} s / {r['cpu']:.1f} s"
                                          for r in runs[k]) for k in trees))


if __name__ == "__main__":
    main()
