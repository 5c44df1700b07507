"""Worker processes that belong to their parent: they die with it and leave SIGINT to it.

A sweep's local workers (``ProcessPoolExecutor`` with spawn) run :func:`init` first. On Linux it
asks the kernel for SIGKILL when the parent dies (``prctl(PR_SET_PDEATHSIG)``), so a
``kill -9`` of ``signoise sweep`` leaves no worker computing for nobody (issue 12); with the
workers gone, multiprocessing's resource tracker sees its pipe close and exits too. Workers
ignore SIGINT: Ctrl-C reaches the whole process group, and the parent decides what to keep.
"""

from __future__ import annotations

import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def die_with_parent() -> bool:
    """Ask for SIGKILL when the parent process exits (Linux); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    # the parent may have died before prctl took effect: then we were re-parented already
    if os.getppid() == 1:
        os._exit(1)
    return True


def init() -> None:
    """Worker initializer: die with the parent, ignore SIGINT (the parent handles it)."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def ready() -> int:
    """A no-op task: submitting one starts a worker process (see ``sweeps._start_pool``)."""
    return os.getpid()


__all__ = ["die_with_parent", "init", "ready"]
