"""Parameter constraints: one small constraint object per field, one error format for all.

A constraint checks a value and says in words what is allowed; the message names the key, the
value given and what is allowed (scikit-learn's convention), before any work starts. Each
constraint can also produce values it refuses (:meth:`invalid`), so every field's rejection is
tested from its own declaration.
"""

from __future__ import annotations

import difflib
import math
import numbers
from dataclasses import dataclass

import numpy as np


class ConfigError(ValueError):
    """A configuration value or key that is not allowed (a ``ValueError``)."""


class ConfigTypeError(ConfigError, TypeError):
    """A configuration value of the wrong type (both a ``ConfigError`` and a ``TypeError``)."""


def reject(key, value, allowed, error=ConfigError, context: str = ""):
    """Raise ``error`` with the project's one message format, "KEY = VALUE is not allowed
    [CONTEXT]: expected ALLOWED". ``TypeError`` (or :class:`ConfigTypeError`) for a wrong
    type, :class:`ConfigError` otherwise; ``context`` names what makes the value wrong here,
    e.g. "with data.sampler = 'wishart'"."""
    if error is TypeError:
        error = ConfigTypeError
    raise error(f"{key} = {value!r} is not allowed{' ' + context if context else ''}: "
                f"expected {allowed}")


def _is_bool(value):
    return isinstance(value, (bool, np.bool_))


def unknown_key(key, known):
    """Raise for an unknown key, with a did-you-mean hint."""
    leaf = key.rsplit(".", 1)[-1]
    hint = difflib.get_close_matches(leaf, list(known), n=1)
    msg = f"unknown key {key!r}"
    if hint:
        prefix = key.rsplit(".", 1)[0] + "." if "." in key else ""
        msg += f"; did you mean {prefix + hint[0]!r}?"
    msg += f" Known keys: {', '.join(sorted(known))}"
    raise ConfigError(msg)


@dataclass(frozen=True)
class Real:
    """A finite real number in an interval; ints are accepted and converted."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    optional: bool = False

    def describe(self):
        if self.low is None and self.high is None:
            text = "a finite real number"
        else:
            lo = "(-inf" if self.low is None else ("(" if self.low_open else "[") + f"{self.low:g}"
            hi = "inf)" if self.high is None else f"{self.high:g}" + (")" if self.high_open else "]")
            text = f"a finite real number in {lo}, {hi}"
        return text + (" or None" if self.optional else "")

    def __call__(self, key, value):
        if value is None and self.optional:
            return None
        if _is_bool(value) or not isinstance(value, numbers.Real):
            reject(key, value, self.describe(), TypeError)
        value = float(value)
        if not math.isfinite(value):
            reject(key, value, self.describe())
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            reject(key, value, self.describe())
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            reject(key, value, self.describe())
        return value

    def invalid(self):
        """Values this constraint refuses."""
        out = [float("nan"), float("inf"), "1.0", True] + ([] if self.optional else [None])
        if self.low is not None:
            out.append(self.low - 1.0 if not self.low_open else self.low)
        if self.high is not None:
            out.append(self.high + 1.0 if not self.high_open else self.high)
        return out


@dataclass(frozen=True)
class Int:
    """An integer in [low, high]."""

    low: int | None = None
    high: int | None = None
    optional: bool = False

    def describe(self):
        lo = "-inf" if self.low is None else str(self.low)
        hi = "inf" if self.high is None else str(self.high)
        return f"an integer in [{lo}, {hi}]" + (" or None" if self.optional else "")

    def __call__(self, key, value):
        if value is None and self.optional:
            return None
        if isinstance(value, numbers.Real) and not _is_bool(value) and not isinstance(
                value, numbers.Integral) and float(value).is_integer():
            value = int(value)
        if _is_bool(value) or not isinstance(value, numbers.Integral):
            reject(key, value, self.describe(), TypeError)
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            reject(key, value, self.describe())
        return int(value)

    def invalid(self):
        """Values this constraint refuses."""
        out = [1.5, "3", True] + ([] if self.optional else [None])
        if self.low is not None:
            out.append(self.low - 1)
        if self.high is not None:
            out.append(self.high + 1)
        return out


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of strings."""

    options: tuple

    def describe(self):
        return "one of " + ", ".join(repr(o) for o in self.options)

    def __call__(self, key, value):
        if not isinstance(value, str):
            reject(key, value, self.describe(), TypeError)
        if value not in self.options:
            reject(key, value, self.describe())
        return value

    def invalid(self):
        """Values this constraint refuses."""
        return ["not-" + self.options[0], 1, None]


@dataclass(frozen=True)
class Bool:
    """True or False (not 0/1)."""

    def describe(self):
        return "true or false"

    def __call__(self, key, value):
        if not _is_bool(value):
            reject(key, value, self.describe(), TypeError)
        return bool(value)

    def invalid(self):
        """Values this constraint refuses."""
        return [1, 0, "true", None]
