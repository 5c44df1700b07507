"""The ``signoise`` command: a thin layer over the Python API (testable via ``main([...])``)."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from importlib import resources
from pathlib import Path

from .config import RunConfig, load_config, parse_value
from .engines import ENGINES
from .constraints import ConfigError, reject
from .interrupt import Interrupted, handle_signals
from .io import DamagedInputError

# Errors a user can fix: one line, exit 2. Anything else is a bug and keeps its traceback.
USER_ERRORS = (ConfigError, FileExistsError, FileNotFoundError, PermissionError,
               IsADirectoryError, NotADirectoryError, DamagedInputError)


def _config(args, grid_axes_fixed=False):
    """The config file with ``--set`` and ``--seed`` applied. ``sweep.seeds`` and
    ``sweep.grid.KEY`` are set on the sweep table; with ``grid_axes_fixed`` (the sweep command)
    a ``--set`` on a grid axis is an error naming the axis, since the grid would override it."""
    cfg = load_config(args.config)
    changes, sweep_changes = {}, {}
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep:
            reject("--set", item, "KEY=VALUE")
        key = key.strip()
        (sweep_changes if key.startswith("sweep.") else changes)[key] = parse_value(value.strip())
    if args.seed is not None:
        changes["seed"] = args.seed
    if sweep_changes:
        d = cfg.to_dict()
        sweep = d.setdefault("sweep", {})
        for key, value in sweep_changes.items():
            if key == "sweep.seeds":
                sweep["seeds"] = value
            elif key.startswith("sweep.grid.") and len(key) > len("sweep.grid."):
                sweep.setdefault("grid", {})[key[len("sweep.grid."):]] = value
            else:
                reject("--set", key, "sweep.seeds or sweep.grid.KEY (e.g. sweep.grid.data.n=[10, 20])")
        cfg = RunConfig.from_dict(d)
    if grid_axes_fixed:
        for key in changes:
            if key in cfg.sweep.grid:
                reject("--set", key, f"a key that is not a grid axis of the sweep; set "
                       f"sweep.grid.{key}=[...] instead", context="(a grid axis)")
    return cfg.updated(changes) if changes else cfg


def _check_output(path, overwrite=False, resumable=False):
    """Before any work: the folder of ``path`` exists and is writable, and ``path`` itself is
    absent unless ``overwrite`` (or ``resumable``: a sweep store is resumed by design)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"{path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"{path}: the folder {folder} is not writable")
    if path.exists() and not (overwrite or resumable):
        raise FileExistsError(f"{path} exists; pass --overwrite to replace it")
    return path


def _headless():
    """The CLI saves figures to files: Agg needs no display (the library leaves it alone)."""
    import matplotlib

    matplotlib.use("Agg")


def cmd_run(args):
    from .io import save_dataset
    from .simulate import simulate

    cfg = _config(args)
    out = _check_output(args.output, args.overwrite)
    try:
        with handle_signals():
            ds = simulate(cfg, engine=args.engine, quiet=args.quiet, backend=args.backend)
    except Interrupted as exc:
        if getattr(exc, "partial", None) is None:
            print(f"signoise: interrupted; nothing computed, {out} not written", file=sys.stderr)
        else:
            save_dataset(exc.partial, out, overwrite=args.overwrite)  # atomic: never half a file
            print(f"signoise: interrupted; the steps computed so far are in {out} "
                  f"(status 'interrupted')", file=sys.stderr)
        raise
    save_dataset(ds, out, overwrite=args.overwrite)
    if not args.quiet:
        last = ds.isel(step=-1)
        print(f"{out}: {ds.attrs['status']} at step {int(ds.stopped_at)}; train loss "
              f"{float(last.train_loss):.4g}, test error {float(last.test_error):.4f}, "
              f"max γ {float(last.gamma_max.max()):.4g}, max ρ̄ {float(last.rho_bar_max):.4g}")


def cmd_sweep(args):
    from .sweeps import sweep

    cfg = _config(args, grid_axes_fixed=True)
    _check_output(args.output, resumable=True)
    client = None
    if args.scheduler:
        try:
            from distributed import Client
        except ImportError:
            reject("--scheduler", args.scheduler, "Dask installed: pip install 'signoise[dask]'")
        client = Client(args.scheduler)
    try:
        with handle_signals():   # SIGINT/SIGTERM: finish the blocks in hand, keep them, exit 130
            ds = sweep(cfg, args.output, workers=args.workers, client=client,
                       record_rho=args.record_rho, backend=args.backend, engine=args.engine,
                       quiet=args.quiet)
    finally:
        if client is not None:
            client.close()
    if not args.quiet:
        print(f"{args.output}: {int(ds.done.sum())}/{ds.done.size} cells, "
              f"{int(ds.diverged.sum())} diverged runs")


def _sel(args) -> dict:
    """``--sel KEY=VALUE`` items as a dict."""
    out = {}
    for item in args.sel or []:
        key, _, value = item.partition("=")
        out[key] = parse_value(value)
    return out


def cmd_plot_phase(args):
    from .phase import phase_diagram
    from .plot import save
    from .store import open_checked

    ax = phase_diagram(open_checked(args.input), args.x, args.y, args.value, args.stat,
                       theory=None if args.theory == "none" else args.theory, const=args.const,
                       threshold=args.threshold, sel=_sel(args), title=args.title)
    save(ax.figure, args.output)


def cmd_plot_collapse(args):
    from .phase import collapse_diagram
    from .plot import save
    from .store import open_checked

    if args.theory == "none":
        reject("--theory", args.theory, "'cao' or 'kou' for a collapse plot")
    ax = collapse_diagram(open_checked(args.input), args.theory, args.value, args.stat,
                          const=args.const, threshold=args.threshold, hue=args.y,
                          sel=_sel(args), title=args.title)
    save(ax.figure, args.output)


def _headless():
    """Figures that are only saved need no window: draw them with Agg."""
    import matplotlib

    matplotlib.use("Agg")


def cmd_plot(args):

    _headless()
    from . import plot

    _check_output(args.output, args.overwrite)
    if args.kind == "phase":
        cmd_plot_phase(args)
    elif args.kind == "collapse":
        cmd_plot_collapse(args)
    elif args.kind == "dynamics":
        from .io import open_result

        ds = open_result(args.input)
        axes = plot.plot_dynamics(ds, title=f"{ds.attrs.get('algorithm', '')} "
                                  f"(seed {ds.attrs.get('seed', '?')})")
        if args.theory != "none":
            from . import theory
            from .results import config_of

            cfg = config_of(ds)
            plot.plot_stage1_theory(theory.stage1_dynamics(cfg), axes[0],
                                    theory.lprime_leaves_half(ds))
        plot.save(axes[0].figure, args.output)
    if not args.quiet:
        print(args.output)


def cmd_demo(args):
    _headless()
    _check_output(args.output, args.overwrite)
    from .plot import plot_demo
    from .simulate import simulate

    _headless()

    runs = {}
    for name in ("benign", "harmful"):
        ref = resources.files("signoise") / "configs" / f"cao2022_{name}.toml"
        with resources.as_file(ref) as path:
            cfg = load_config(path)
        ds = simulate(cfg, quiet=args.quiet)
        nsnr = cfg.data.n * cfg.data.SNR ** cfg.model.q
        runs[f"{name}: ‖μ‖ = {cfg.data.mu:g}, n·SNR^q = {nsnr:.2g}"] = ds
        if not args.quiet:
            last = ds.isel(step=-1)
            print(f"{name:8s} ‖μ‖={cfg.data.mu:5.1f}  test error {float(last.test_error):.3f}  "
                  f"max γ {float(last.gamma_max.max()):.3f}  max ρ̄ {float(last.rho_bar_max):.3f}")
    grid = plot_demo(runs)
    if args.theory:   # Cao et al.'s stage-1 prediction over each run's γ and ρ̄
        from . import theory
        from .plot import plot_stage1_theory
        from .results import config_of

        for row, ds in zip(grid, runs.values()):
            plot_stage1_theory(theory.stage1_dynamics(config_of(ds)), row[0],
                               theory.lprime_leaves_half(ds))
    from .plot import save

    save(grid[0][0].figure, args.output)
    if not args.quiet:
        print(f"figure: {args.output}")


def cmd_verify(args):
    from .store import verify

    if not Path(args.store).exists():
        raise FileNotFoundError(f"{args.store}: no such store")
    health = verify(args.store)
    done, damaged = health["done"], health["damaged"]
    print(f"{args.store}: {done.size} cells, {int(done.sum())} done, "
          f"{int(health['missing'].sum())} missing, {int(damaged.sum())} damaged")
    return 1 if damaged.any() else 0


def cmd_info(args):
    import platform

    import numba
    import numpy
    import xarray

    from . import __version__
    from .algorithms import ALGORITHMS

    print(f"signoise {__version__}")
    print(f"python {platform.python_version()}, numpy {numpy.__version__}, "
          f"numba {numba.__version__}, xarray {xarray.__version__}")
    print(f"numba threads: {numba.config.NUMBA_NUM_THREADS} "
          f"(threading layer: {numba.config.THREADING_LAYER})")
    print(f"engines: {', '.join(ENGINES)}")
    print("algorithms:")
    for name, algo in ALGORITHMS.items():
        params = "; ".join(f"{k}: {p.doc} (default {p.default!r})"
                           for k, p in algo.params.items()) or "—"
        print(f"  {name}: {algo.update}\n      parameters: {params}\n      {algo.reference}")


def cmd_explore(args):
    from .explore import explore

    cfg = load_config(args.config) if args.config else None
    explore(cfg)


def cmd_animate(args):
    from .animate import animate

    path = animate(args.input, args.output, x=args.x, y=args.y, var=args.value, stat=args.stat,
                   frames=args.frames, fps=args.fps, dpi=args.dpi, overwrite=args.overwrite,
                   quiet=args.quiet)
    if not args.quiet:
        print(f"wrote {path}")


def cmd_check(args):
    from .checks import REGISTRY, run_checks
    from .checks.runner import table

    if args.list:
        for name, entry in REGISTRY.items():
            print(f"{name}: {entry.claim} [{entry.source}]")
        return 0
    results = run_checks(args.names or None, size=args.size, out=args.out,
                         workers=args.workers, backend=args.backend,
                         progress=not args.quiet and sys.stderr.isatty())
    print(table(results))
    return 1 if any(r.verdict == "FAIL" for r in results) else 0


def cmd_boundary(args):
    from . import boundary as bd
    from .io import save_dataset

    cfg = _config(args)
    out = _check_output(args.out, args.overwrite)
    fig = _check_output(out.with_suffix(".png"), args.overwrite)
    with handle_signals():
        ds = bd.find_boundary(cfg, args.x, args.y, level=args.level, stat=args.stat, tol=args.tol,
                           seeds=args.seeds, max_seeds=args.max_seeds, workers=args.workers,
                           backend=args.backend)
    save_dataset(ds, out, overwrite=args.overwrite)
    _headless()
    theory_name = {"auto": "kou" if cfg.model.q == 1 else "cao", "none": None}.get(
        args.theory, args.theory)
    ax = bd.draw_boundary(ds, theory_name=theory_name)
    ax.figure.savefig(fig, dpi=120)
    if not args.quiet:
        grid, fit = bd.equal_precision_grid(ds), bd.fit_boundary_exponent(ds)
        print(bd.table(ds))
        print(f"free slope of log {args.y} on log {args.x}*: {fit['slope']:.3g} "
              f"[{fit['ci'][0]:.3g}, {fit['ci'][1]:.3g}] ({fit['rows']} rows)")
        print(f"{ds.attrs['runs']} runs in {ds.attrs['rounds']} rounds; a grid of equal precision"
              f": {grid['points']} points x {grid['seeds']} seeds per row = {grid['runs']} runs "
              f"({grid['runs'] / max(ds.attrs['runs'], 1):.1f}x)")
        print(f"wrote {out} and {fig}")


def build_parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")
    common.add_argument("--debug", action="store_true", help="show tracebacks for every error")
    p = argparse.ArgumentParser(prog="signoise", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", parents=[common], help="train one network from a TOML config")
    r.add_argument("config")
    r.add_argument("-o", "--output", default="run.nc")
    r.add_argument("--engine", choices=ENGINES, default="gram")
    r.add_argument("--backend", choices=["numba", "numpy", "cupy"], default="numba",
                   help="compiled kernels (numba) or the array-API engine (numpy, cupy: GPU)")
    r.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config key, e.g. --set data.n=40 (repeatable)")
    r.add_argument("--seed", type=int)
    r.add_argument("--overwrite", action="store_true")
    r.set_defaults(func=cmd_run)

    sw = sub.add_parser("sweep", parents=[common],
                        help="a grid x seeds from the config's [sweep] into a resumable Zarr store")
    sw.add_argument("config")
    sw.add_argument("-o", "--output", required=True, help="the store (resumed if it exists)")
    sw.add_argument("--workers", type=int, help="local worker processes (default: cores)")
    sw.add_argument("--scheduler", metavar="ADDRESS", help="a Dask scheduler, e.g. tcp://host:8786")
    sw.add_argument("--record-rho", choices=["summary", "full"], default="summary",
                    help="store ρ summaries (default) or the full ρ (…, step, j, r, i)")
    sw.add_argument("--engine", choices=ENGINES, default="gram")
    sw.add_argument("--backend", choices=["numba", "numpy", "cupy"], default="numba",
                    help="compiled kernels (numba) or the array-API engine (numpy, cupy: GPU)")
    sw.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="override a config key (repeatable)")
    sw.add_argument("--seed", type=int)
    sw.set_defaults(func=cmd_sweep)

    pl = sub.add_parser("plot", parents=[common], help="draw a figure from saved results")
    pl.add_argument("kind", choices=["dynamics", "phase", "collapse"])
    pl.add_argument("input")
    pl.add_argument("-o", "--output", required=True)
    pl.add_argument("-x", help="phase: grid axis on x")
    pl.add_argument("-y", help="phase: grid axis on y (collapse: colour by this axis)")
    pl.add_argument("--value", default="test_error", help="variable (default test_error)")
    pl.add_argument("--stat", default="mean",
                    help="over seeds: mean, median, std, spread or qX (quantile X)")
    pl.add_argument("--theory", choices=["none", "cao", "kou"], default="none", nargs="?",
                    const="cao",
                    help="overlay this theory's boundary (phase) / its control parameter "
                         "(collapse); dynamics: --theory overlays the stage-1 prediction")
    pl.add_argument("--const", type=float, help="the boundary constant C (default: fitted)")
    pl.add_argument("--threshold", type=float,
                    help="error below which a cell counts as benign for the fit "
                         "(default (flip + 1/2)/2)")
    pl.add_argument("--sel", action="append", metavar="KEY=VALUE",
                    help="fix another grid axis at (the nearest) value (repeatable)")
    pl.add_argument("--title")
    pl.add_argument("--overwrite", action="store_true")
    pl.set_defaults(func=cmd_plot)

    d = sub.add_parser("demo", parents=[common], help="GD in a benign and a harmful setting (Cao et al. 2022)")
    d.add_argument("-o", "--output", default="signoise-demo.png")
    d.add_argument("--overwrite", action="store_true")
    d.add_argument("--theory", action="store_true",
                   help="overlay Cao et al.'s stage-1 prediction and mark where |ℓ'| leaves 1/2")
    d.set_defaults(func=cmd_demo)

    e = sub.add_parser("explore", parents=[common],
                       help="a live figure: move sliders, watch γ race ρ̄ (gram engine)")
    e.add_argument("config", nargs="?", help="starting config (default: Cao et al. benign)")
    e.set_defaults(func=cmd_explore)

    an = sub.add_parser("animate", parents=[common],
                        help="a run's race (RUN.nc) or a sweep's phase diagram forming (STORE -x -y)")
    an.add_argument("input")
    an.add_argument("-o", "--output", required=True, help="FILE.gif, or FILE.mp4 (needs ffmpeg)")
    an.add_argument("-x", help="sweep: grid axis on x")
    an.add_argument("-y", help="sweep: grid axis on y")
    an.add_argument("--value", default="test_error", help="sweep: variable (default test_error)")
    an.add_argument("--stat", default="mean", help="sweep: statistic over seeds")
    an.add_argument("--frames", type=int, help="at most this many frames (<= 200; default 100 "
                    "for a run, 50 for a sweep)")
    an.add_argument("--fps", type=int, default=20)
    an.add_argument("--dpi", type=int, default=80)
    an.add_argument("--overwrite", action="store_true")
    an.set_defaults(func=cmd_animate)

    v = sub.add_parser("verify", parents=[common],
                       help="read back a sweep store: cells done, missing, damaged (exit 1 if damaged)")
    v.add_argument("store")
    v.set_defaults(func=cmd_verify)

    i = sub.add_parser("info", parents=[common], help="versions, threads, engines and algorithms")
    i.set_defaults(func=cmd_info)

    b = sub.add_parser("boundary", parents=[common],
                       help="per value of -y, the -x where the seed-mean statistic crosses a "
                            "level (adaptive: bracketing, bisection in log x, seeds added)")
    b.add_argument("config", help="TOML; its [sweep.grid] gives the -y values and the -x range")
    b.add_argument("-x", required=True, help="the searched key, e.g. data.mu_norm (positive)")
    b.add_argument("-y", required=True, help="the row key, e.g. data.n")
    b.add_argument("--level", type=float,
                   help="default: 1/2 for race, 0.1 for loss, (flip + 1/2)/2 for error (1/4 "
                        "without flips)")
    b.add_argument("--stat", choices=["error", "loss", "race"], default="error",
                   help="final test error, final test loss, or 1 where min_j max_r γ > "
                        "mean_i max_r ρ̄")
    b.add_argument("--tol", type=float, default=0.05, help="target se of log x* (default 0.05)")
    b.add_argument("--seeds", type=int, default=8, help="seeds per point at the start")
    b.add_argument("--max-seeds", type=int, default=128, help="seeds per point at most")
    b.add_argument("--out", default="boundary.nc",
                   help="the Dataset (netCDF); the figure goes beside it as .png")
    b.add_argument("--workers", type=int, default=1, help="worker processes per round")
    b.add_argument("--theory", choices=["auto", "none", "cao", "kou"], default="auto",
                   help="theorem boundary drawn through the crossings (auto: kou if q = 1)")
    b.add_argument("--backend", choices=["numba", "numpy", "cupy"], default="numba")
    b.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config key (repeatable)")
    b.add_argument("--seed", type=int)
    b.add_argument("--overwrite", action="store_true")
    b.set_defaults(func=cmd_boundary)

    ck = sub.add_parser("check", parents=[common], help="run theorem checks (PASS/FAIL table)")
    ck.add_argument("names", nargs="*", metavar="NAME", help="checks to run (default: all)")
    ck.add_argument("--size", choices=["quick", "paper"], default="quick")
    ck.add_argument("--out", metavar="DIR", help="write NAME.png per check and report.json")
    ck.add_argument("--workers", type=int, default=1, help="checks run in parallel processes")
    ck.add_argument("--list", action="store_true", help="list the checks and exit")
    ck.add_argument("--backend", choices=["numba", "numpy", "cupy"], default="numba",
                    help="compiled kernels (numba) or the array-API engine (numpy, cupy: GPU)")
    ck.set_defaults(func=cmd_check)
    return p


def main(argv=None):
    """Run a subcommand. Exit status: 0 done, 2 a user error (one line, no traceback unless
    ``--debug``), 130 interrupted (SIGINT/SIGTERM). Bugs propagate with their traceback."""
    args = build_parser().parse_args(argv)
    try:
        status = args.func(args)
    except BrokenPipeError:          # the reader of our output went away (e.g. `| head`)
        return 0
    except USER_ERRORS as exc:
        if args.debug:
            traceback.print_exc()
        print(f"signoise: error: {exc}", file=sys.stderr)
        return 2
    except (Interrupted, KeyboardInterrupt) as exc:
        if args.debug:
            traceback.print_exc()
        print(f"signoise: interrupted ({str(exc) or 'SIGINT'})", file=sys.stderr)
        return 130
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
