"""The registry of checks and :func:`check`, which runs one."""

from __future__ import annotations

import time
import warnings

from ..constraints import reject
from ..guard import SignoiseWarning
from .base import BACKEND, SIZES, Check, CheckResult

#: name -> Check, in registration order.
REGISTRY: dict[str, Check] = {}


def register(entry: Check) -> Check:
    """Add one entry (adding a check = adding one entry)."""
    if entry.name in REGISTRY:
        reject("check", entry.name, "a name not registered yet")
    REGISTRY[entry.name] = entry
    return entry


def check(name: str, size: str = "quick", backend: str = "numba", **premise) -> CheckResult:
    """Run the check ``name`` at ``size`` ("quick" or "paper") on ``backend`` ("numba",
    "numpy", "cupy": see :func:`signoise.simulate_batch`).

    ``premise`` overrides the check's assumptions (e.g. ``expected=-4``): negative controls
    run a check on a broken premise and must see FAIL.
    """
    if name not in REGISTRY:
        reject("check", name, "one of " + ", ".join(map(repr, REGISTRY)))
    if size not in SIZES:
        reject("size", size, "'quick' or 'paper'")
    entry = REGISTRY[name]
    t0 = time.perf_counter()
    token = BACKEND.set(backend)
    try:
        with warnings.catch_warnings():
            # a check's settings are deliberate (the paper's, far from the theorem's conditions,
            # a negative control): the advice for a user's own run would only be noise here
            warnings.simplefilter("ignore", SignoiseWarning)
            out = entry.run(size, **premise)
    finally:
        BACKEND.reset(token)
    return CheckResult(name=entry.name, claim=entry.claim, source=entry.source,
                       criterion=entry.criterion, size=size, verdict=out["verdict"],
                       value=out["value"], uncertainty=out["uncertainty"], data=out["data"],
                       where=out.get("where", ""), runtime=time.perf_counter() - t0,
                       configs=out.get("configs", []), seeds=out.get("seeds", []),
                       draw=entry.draw)
