"""Engines: one compiled kernel each, the same driver for all (DESIGN.md principle 1).

An engine module provides ``prepare(problem)`` (its inputs from a Problem) and ``Batch(inputs,
params)``: B runs with ``advance(nsteps, omega, ysign, zeta, active) -> (done, status)``,
``evaluate(out)``, ``coefficients()``, ``get_state()``/``set_state()`` and ``noise_width``; and
``Runner``, one run (a Batch of one). A kernel reports one of the status codes below.
"""

from importlib import import_module

from ..constraints import reject

ENGINES = ("gram", "weights")

#: Status of a run after a kernel call: still running, stopped on a non-finite loss or state,
#: or stopped under ``train.loss_threshold``.
RUNNING, DIVERGED, CONVERGED = 0, 1, 2


def get_engine(name):
    """The engine module called ``name``."""
    if name not in ENGINES:
        reject("engine", name, "one of " + ", ".join(map(repr, ENGINES)))
    return import_module(f"{__name__}.{name}")
