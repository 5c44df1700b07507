"""Graceful interrupts: SIGINT/SIGTERM set a flag that the drivers read between bounded chunks.

Compiled kernels cannot be stopped mid-call, so every driver advances in chunks of bounded work
and calls :func:`requested` between them. Inside :func:`handle_signals` (the CLI wraps its
commands in it) a first SIGINT or SIGTERM only sets the flag: the run stops at the end of the
current chunk and what was computed is kept, marked ``status = "interrupted"``. A second one
raises ``KeyboardInterrupt`` at once. Outside it, Python's default applies (KeyboardInterrupt
between chunks, which the bounded chunks make prompt).
"""

from __future__ import annotations

import contextlib
import signal
import threading

_flag = threading.Event()


def requested() -> bool:
    """True once an interrupt was asked for inside :func:`handle_signals`."""
    return _flag.is_set()


def _handler(signum, frame):
    if _flag.is_set():
        raise KeyboardInterrupt
    _flag.set()


@contextlib.contextmanager
def handle_signals(signals=(signal.SIGINT, signal.SIGTERM)):
    """Within this block SIGINT/SIGTERM set the :func:`requested` flag (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, _handler) for s in signals}
    _flag.clear()
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        _flag.clear()


class Interrupted(Exception):
    """Raised by a driver that stopped on request; ``partial`` holds what was computed."""

    def __init__(self, message, partial=None):
        super().__init__(message)
        self.partial = partial


__all__ = ["requested", "handle_signals", "Interrupted"]
