"""Phase diagrams of a sweep: the slice to draw, the theory's boundary with its fitted constant,
and the figures (the Python API behind ``signoise plot phase`` and ``plot collapse``).

The statistic over seeds comes from :func:`signoise.cell_statistic`; the boundary is the
level set ``control = C`` of a theory's control parameter (:mod:`signoise.theory`), with C
given or fitted to the cells (:func:`signoise.theory.fit_constant`).
"""

from __future__ import annotations

import tomllib

from .constraints import reject


def phase_slice(ds, value: str = "test_error", stat: str = "mean", sel: dict | None = None):
    """The seed statistic of ``value`` over the grid, with other axes fixed by ``sel``.

    Parameters
    ----------
    ds : xarray.Dataset
        A sweep (:func:`signoise.open_sweep`).
    value, stat : str
        As in :func:`signoise.cell_statistic`.
    sel : dict, optional
        Grid axis -> value for every axis that is not drawn (nearest value for numbers).

    Returns
    -------
    (xarray.Dataset, xarray.DataArray)
        The selected sweep and the statistic over its remaining grid axes.
    """
    from .store import cell_statistic

    grid = list(ds["done"].dims)
    sel = dict(sel or {})
    for key in sel:
        if key not in grid:
            reject("sel", key, f"a grid axis, one of {grid}")
    if sel:
        exact = any(isinstance(v, str) for v in sel.values())
        ds = ds.sel(sel, method=None if exact else "nearest")
    return ds, cell_statistic(ds, value, stat)


def benign_threshold(ds, threshold: float | None = None) -> float:
    """The error below which a cell counts as benign: given, or midway between the flip rate
    (the benign floor) and 1/2."""
    if threshold is not None:
        return float(threshold)
    flip = tomllib.loads(ds.attrs["config"])["data"].get("flip", 0.0)
    return (flip + 0.5) / 2


def theory_boundary(ds, da, theory: str, x: str, y: str, const: float | None = None,
                    threshold: float | None = None):
    """The boundary ``control = C`` over the (x, y) plane of a phase slice.

    Returns
    -------
    (xs, ys, label)
        Points of the boundary and a legend text naming C (given, or fitted with the
        fraction of cells it misclassifies).
    """
    from .theory import fit_constant, sweep_boundary, sweep_control

    control = sweep_control(ds, theory)
    note = "given"
    if const is None:
        const, miss = fit_constant(control, da, benign_threshold(ds, threshold))
        note = f"fitted; {100 * miss:.0f}% of cells off"
    xs, ys = sweep_boundary(ds, theory, const, x, y)
    return xs, ys, f"{control.name} = {const:.3g} ({note})"


def free_boundary(ds, x: str, y: str, value: str = "test_error", level: float | None = None,
                  sel: dict | None = None, n_boot: int = 400):
    """The boundary fitted freely: per value of ``y``, the ``x`` where the seed mean of
    ``value`` crosses ``level``, and the log-log slope of y against those crossings with its
    bootstrap interval over seeds (:func:`signoise.theory.fit_exponent`).

    For Cao et al. with x = ‖μ‖ (or SNR) and y = n the theorem predicts slope −q; for Kou et
    al. with y = d, slope 4. ``level`` defaults to the benign threshold
    (:func:`benign_threshold`). Returns ``(xs, ys, label, fit)``: the fitted power law over the
    crossings' range, a legend text with the exponent and its 95 % interval, and the fit dict.
    """
    import warnings

    import numpy as np

    from .theory import fit_exponent

    ds, _ = phase_slice(ds, value, "mean", sel)
    level = benign_threshold(ds, level)
    da = ds[value].isel(step=-1) if "step" in ds[value].dims else ds[value]
    for extra in ("j", "r", "i"):
        if extra in da.dims:
            da = da.max(extra)
    if "diverged" in ds and "seed" in ds["diverged"].dims:
        da = da.where(~ds["diverged"].astype(bool))
    stat = da.transpose("seed", y, x).values
    xv, yv = ds[x].values.astype(float), ds[y].values.astype(float)
    if np.any(xv <= 0) or np.any(yv <= 0):
        reject("x/y", (x, y), "grid axes with positive values for a log-log fit")
    with warnings.catch_warnings():   # a cell whose seeds all diverged: NaN, not a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        fit = fit_exponent(stat, xv, yv, level, n_boot=n_boot)
    ok = np.isfinite(fit["crossings"])
    if ok.sum() < 2:
        return np.array([]), np.array([]), "free fit: fewer than two rows cross", fit
    k, c = np.polyfit(np.log(fit["crossings"][ok]), np.log(yv[ok]), 1)
    xs = np.geomspace(fit["crossings"][ok].min(), fit["crossings"][ok].max(), 50)
    lo, hi = fit["ci"]
    label = f"free fit: slope {k:.2f} (95% CI [{lo:.2f}, {hi:.2f}])"
    return xs, np.exp(c) * xs ** k, label, fit


def phase_diagram(ds, x: str, y: str, value: str = "test_error", stat: str = "mean",
                  theory: str | None = None, const: float | None = None,
                  threshold: float | None = None, sel: dict | None = None, ax=None,
                  title: str | None = None):
    """Draw the phase diagram of ``value`` over the grid axes ``x`` and ``y``; with a
    ``theory``, its boundary (constant given or fitted) and the freely fitted boundary
    (:func:`free_boundary`, exponent in the legend) overlaid. Returns the Axes
    (:func:`signoise.plot.plot_phase`)."""
    from .plot import plot_phase

    ds, da = phase_slice(ds, value, stat, sel)
    for key in (x, y):
        if key not in da.dims:
            reject("x/y", key, f"a grid axis, one of {list(da.dims)}")
    extra = [d for d in da.dims if d not in (x, y)]
    if extra:
        reject("sel", sel or {}, f"a value for every other grid axis: {extra}")
    lines = []
    if theory is not None:
        lines.append(theory_boundary(ds, da, theory, x, y, const, threshold))
        xs, ys, label, _ = free_boundary(ds, x, y, value, threshold, sel)
        if xs.size:
            lines.append((xs, ys, label))
    return plot_phase(da, x, y, ax=ax, boundaries=lines, title=title)


def collapse_diagram(ds, theory: str, value: str = "test_error", stat: str = "mean",
                     const: float | None = None, threshold: float | None = None,
                     hue: str | None = None, sel: dict | None = None, ax=None,
                     title: str | None = None):
    """Every cell's ``value`` against the theory's control parameter, with C marked; returns
    the Axes (:func:`signoise.plot.plot_collapse`)."""
    from .plot import plot_collapse
    from .theory import fit_constant, sweep_control

    ds, da = phase_slice(ds, value, stat, sel)
    control = sweep_control(ds, theory)
    if const is None:
        const, _ = fit_constant(control, da, benign_threshold(ds, threshold))
    hue = hue or (list(da.dims)[0] if da.dims else None)
    return plot_collapse(control, da, ax=ax, const=const, hue=hue, title=title)


__all__ = ["phase_slice", "benign_threshold", "theory_boundary", "free_boundary", "phase_diagram",
           "collapse_diagram"]
