"""BLAS threads: the small products of the kernels run on one BLAS thread."""

from __future__ import annotations

_BLAS = None


def single_threaded_blas():
    """A context limiting every loaded BLAS to one thread.

    The gram engine's matrix products are small (O(m n²)): threaded BLAS gains nothing there,
    spins on a loaded machine (measured 100× slower per product with other work running), and
    would oversubscribe the cores under a ``prange`` over runs.
    """
    global _BLAS
    if _BLAS is None:
        import scipy.linalg.cython_blas  # noqa: F401  (the BLAS Numba calls: load it first)
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")
