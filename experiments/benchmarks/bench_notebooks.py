"""Wall time of each notebook in notebooks/, executed top to bottom in a fresh kernel.

    python experiments/benchmarks/bench_notebooks.py [--tiny] [NOTEBOOK ...]

Prints a table, one row per notebook: its wall time with nbclient (kernel start included).
``--tiny`` is the CI smoke size: SIGNOISE_QUICK=1 (the sizes the test suite runs) and only the
first notebook unless some are named (the test suite executes all of them already). Run it
twice to time with Numba's cache warm; the first run in a fresh checkout also compiles.
"""
import argparse
import os
import sys
import time
from pathlib import Path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*")
    parser.add_argument("--tiny", action="store_true", help="SIGNOISE_QUICK=1 sizes")
    args = parser.parse_args(argv)
    import nbclient
    import nbformat

    if args.tiny:
        os.environ["SIGNOISE_QUICK"] = "1"
    else:
        os.environ.pop("SIGNOISE_QUICK", None)
    root = Path(__file__).resolve().parents[2]
    paths = args.notebooks or sorted(str(p) for p in (root / "notebooks").glob("*.ipynb"))
    if args.tiny and not args.notebooks:
        paths = paths[:1]
    print(f"| notebook | wall time{' (SIGNOISE_QUICK=1)' if args.tiny else ''} |")
    print("|---|---|")
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        nbclient.NotebookClient(nb, timeout=600, kernel_name="python3").execute()
        print(f"| `{Path(path).name}` | {time.perf_counter() - start:.1f} s |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
