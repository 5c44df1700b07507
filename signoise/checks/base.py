"""One check = one declarative :class:`Check` entry; :class:`CheckResult` is what a run returns.

A check states a claim, its source, the experiment at a ``quick`` and a ``paper`` size, the
statistic and the criterion with a tolerance from the sampling error. ``run(size, **premise)``
does the experiment and returns ``(value, uncertainty, verdict, data, where)``; keyword
``premise`` overrides let a test run the check on a deliberately broken premise.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import Callable

#: The backend the checks' runs use (``sn.check(..., backend=...)`` sets it for one check).
BACKEND = contextvars.ContextVar("signoise_check_backend", default="numba")

VERDICTS = ("PASS", "FAIL", "INCONCLUSIVE")
SIZES = ("quick", "paper")


@dataclass(frozen=True)
class Check:
    """A registry entry.

    Attributes
    ----------
    name, claim, source, criterion : str
        Identifier, the claim in one sentence, paper/theorem/equation, and the pass rule with
        how its tolerance is derived.
    run : callable
        ``run(size, **premise) -> dict`` with keys ``value``, ``uncertainty``, ``verdict``,
        ``data`` (xarray.Dataset), ``where`` (str: the range where the claim holds, or ""),
        ``configs`` (list of TOML strings) and ``seeds`` (list of int).
    draw : callable
        ``draw(data, ax)`` draws the check's figure from its data and returns the Axes.
    """

    name: str
    claim: str
    source: str
    criterion: str
    run: Callable
    draw: Callable


@dataclass
class CheckResult:
    """The outcome of one check: verdict, measured value ± uncertainty, and the data."""

    name: str
    claim: str
    source: str
    criterion: str
    size: str
    verdict: str
    value: float
    uncertainty: float
    data: object
    where: str = ""
    runtime: float = 0.0
    configs: list = field(default_factory=list)
    seeds: list = field(default_factory=list)
    draw: Callable | None = None

    def figure(self, path=None, ax=None):
        """Draw the check's figure (and save it to ``path`` if given); returns the Axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5, 3.6), layout="constrained")
        self.draw(self.data, ax)
        ax.set_title(f"{self.name}: {self.verdict}", fontsize=9)
        if path is not None:
            ax.figure.savefig(path, dpi=120)
            plt.close(ax.figure)
        return ax

    def to_dict(self):
        """The machine-readable record (no data, no callables)."""
        return {"name": self.name, "claim": self.claim, "source": self.source,
                "criterion": self.criterion, "size": self.size, "verdict": self.verdict,
                "value": float(self.value), "uncertainty": float(self.uncertainty),
                "where": self.where, "runtime_s": round(self.runtime, 3),
                "seeds": [int(s) for s in self.seeds], "configs": list(self.configs)}


def verdict_interval(lo, hi, target_lo, target_hi):
    """PASS if the interval [lo, hi] lies inside [target_lo, target_hi], FAIL if it is
    disjoint from it, INCONCLUSIVE if it straddles an edge (too wide to decide)."""
    import math

    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "INCONCLUSIVE"
    if target_lo <= lo and hi <= target_hi:
        return "PASS"
    if hi < target_lo or lo > target_hi:
        return "FAIL"
    return "INCONCLUSIVE"
