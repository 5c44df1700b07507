"""The xp engine on CuPy against the Numba gram engine (skipped without CuPy and a device)."""

import numpy as np
import pytest

cupy = pytest.importorskip("cupy")
try:
    _HAS_DEVICE = cupy.cuda.runtime.getDeviceCount() > 0
except Exception:  # CUDARuntimeError when the driver is absent
    _HAS_DEVICE = False
if not _HAS_DEVICE:
    pytest.skip("no CUDA device", allow_module_level=True)

import signoise as sn  # noqa: E402
from signoise.engines.xp import get_backend, max_block, run_batch_xp  # noqa: E402

from .test_xp import ALGOS, FLOAT32_RTOL, assert_matches, cfgs_for  # noqa: E402


@pytest.mark.parametrize("name,params", ALGOS, ids=[f"{a}-{i}" for i, (a, _) in enumerate(ALGOS)])
def test_cupy_float64_matches_gram_engine(name, params):
    cfgs, seeds = cfgs_for(name, params, bias=True)
    ds = sn.simulate_batch(cfgs, seeds, record_rho="full", quiet=True)
    assert_matches(run_batch_xp(cfgs, seeds, get_backend("cupy")), ds)


def test_cupy_float32_within_stated_tolerance():
    xp = get_backend("cupy")
    cfgs, seeds = cfgs_for("gd", {})
    ref = run_batch_xp(cfgs[:1], seeds[:1], get_backend("numpy"))
    low = run_batch_xp(cfgs[:1], seeds[:1], xp, dtype=xp.float32)
    np.testing.assert_allclose(low["gamma"], ref["gamma"], rtol=FLOAT32_RTOL, atol=1e-5)


def test_block_estimate_bounds_real_peak():
    """block_bytes is an upper estimate of the memory pool's peak for one block."""
    from signoise.engines.xp import block_bytes
    pool = cupy.get_default_memory_pool()
    pool.free_all_blocks()
    cfgs, seeds = cfgs_for("gd", {})
    run_batch_xp(cfgs * 10, list(range(30)), get_backend("cupy"))
    c = cfgs[0]
    assert pool.total_bytes() <= block_bytes(30, c.data.n, c.model.m, c.data.n_test,
                                             nsteps=c.train.record_every)
    assert max_block(c.data.n, c.model.m, c.data.n_test) >= 1
