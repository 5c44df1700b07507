"""The ``signoise`` command: a thin layer over the Python API (testable via ``main([...])``)."""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

from .config import load_config, parse_value
from .engines import ENGINES
from .rules import ConfigError


def _config(args):
    cfg = load_config(args.config)
    changes = {}
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r} is not allowed: expected KEY=VALUE")
        changes[key.strip()] = parse_value(value.strip())
    if args.seed is not None:
        changes["seed"] = args.seed
    return cfg.updated(changes) if changes else cfg


def cmd_run(args):
    from .io import save_dataset
    from .simulate import simulate

    cfg = _config(args)
    out = Path(args.output)
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    ds = simulate(cfg, engine=args.engine, quiet=args.quiet)
    save_dataset(ds, out, overwrite=args.overwrite)
    if not args.quiet:
        last = ds.isel(step=-1)
        print(f"{out}: {ds.attrs['status']} at step {int(ds.stopped_at)}; train loss "
              f"{float(last.train_loss):.4g}, test error {float(last.test_error):.4f}, "
              f"max γ {float(last.gamma_max.max()):.4g}, max ρ̄ {float(last.rho_bar_max):.4g}")


def cmd_plot(args):
    import xarray as xr

    from . import plot

    if args.kind == "dynamics":
        with xr.open_dataset(args.input, engine="h5netcdf") as ds:
            axes = plot.plot_dynamics(ds.load(), title=f"{ds.attrs.get('algorithm', '')} "
                                      f"(seed {ds.attrs.get('seed', '?')})")
        plot.save(axes[0].figure, args.output)
    if not args.quiet:
        print(args.output)


def cmd_demo(args):
    from .plot import plot_demo
    from .simulate import simulate

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
    plot_demo(runs, args.output)
    if not args.quiet:
        print(f"figure: {args.output}")


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
    print(f"algorithms: {', '.join(ALGORITHMS)}")


def build_parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")
    p = argparse.ArgumentParser(prog="signoise", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", parents=[common], help="train one network from a TOML config")
    r.add_argument("config")
    r.add_argument("-o", "--output", default="run.nc")
    r.add_argument("--engine", choices=ENGINES, default="gram")
    r.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config key, e.g. --set data.n=40 (repeatable)")
    r.add_argument("--seed", type=int)
    r.add_argument("--overwrite", action="store_true")
    r.set_defaults(func=cmd_run)

    pl = sub.add_parser("plot", parents=[common], help="draw a figure from saved results")
    pl.add_argument("kind", choices=["dynamics"])
    pl.add_argument("input")
    pl.add_argument("-o", "--output", required=True)
    pl.set_defaults(func=cmd_plot)

    d = sub.add_parser("demo", parents=[common], help="GD in a benign and a harmful setting (Cao et al. 2022)")
    d.add_argument("-o", "--output", default="signoise-demo.png")
    d.set_defaults(func=cmd_demo)

    i = sub.add_parser("info", parents=[common], help="versions, threads, engines and algorithms")
    i.set_defaults(func=cmd_info)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ConfigError, TypeError, ValueError, FileExistsError, FileNotFoundError) as exc:
        print(f"signoise: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
