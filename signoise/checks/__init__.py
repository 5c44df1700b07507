"""Theorem checks a user can run: a registry of declarative entries, one module per paper.

``sn.check(name, size="quick")`` runs one and returns a :class:`CheckResult`;
:func:`run_checks` runs several and writes the report (``signoise check``).
"""

from __future__ import annotations

from .base import SIZES, VERDICTS, Check, CheckResult, verdict_interval
from .registry import REGISTRY, check, register
from . import cao2022, kou2023  # noqa: F401,E402  (register their checks)
from . import karakida, orvieto, pegr, wu  # noqa: F401  (gradient perturbation, issue 8)
from .runner import run_checks

__all__ = ["Check", "CheckResult", "REGISTRY", "register", "check", "run_checks", "SIZES",
           "VERDICTS", "verdict_interval"]
