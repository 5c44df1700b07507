"""Engines: one compiled kernel each, the same driver for all (DESIGN.md principle 1).

An engine module provides ``prepare(problem)``, ``init_state(inputs)``, ``step_fn(inputs,
params)``, ``evaluate(inputs, state, params)`` and ``coefficients(inputs, state)``.
"""

from importlib import import_module

from ..rules import reject

ENGINES = ("gram", "weights")


def get_engine(name):
    """The engine module called ``name``."""
    if name not in ENGINES:
        reject("engine", name, "one of " + ", ".join(map(repr, ENGINES)))
    return import_module(f"{__name__}.{name}")
