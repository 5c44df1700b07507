"""Parameter constraints: one small rule object per field, one error format for all.

A rule checks a value and says in words what is allowed; the message names the key, the
value given and what is allowed (scikit-learn's convention), before any work starts.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass


class ConfigError(ValueError):
    """A configuration value or key that is not allowed (a ``ValueError``)."""


def reject(key, value, allowed, error=ConfigError):
    """Raise ``error`` with the project's one message format."""
    raise error(f"{key} = {value!r} is not allowed: expected {allowed}")


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
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            reject(key, value, self.describe(), TypeError)
        value = float(value)
        if not math.isfinite(value):
            reject(key, value, self.describe())
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            reject(key, value, self.describe())
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            reject(key, value, self.describe())
        return value


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
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            reject(key, value, self.describe(), TypeError)
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            reject(key, value, self.describe())
        return int(value)


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


@dataclass(frozen=True)
class Bool:
    """True or False (not 0/1)."""

    def describe(self):
        return "true or false"

    def __call__(self, key, value):
        if not isinstance(value, bool):
            reject(key, value, self.describe(), TypeError)
        return value
