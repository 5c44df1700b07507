"""The sweep's main-process side: store writes through ``store.Writer`` give the bytes of plain
per-array assignments, the layout given to the workers before the store exists is the one read
back from it, a failed write leaves its block not done, and a sweep refused by its plan leaves
no worker behind."""

import multiprocessing as mp
from pathlib import Path

import numpy as np
import pytest
import zarr

import signoise as sn
from signoise import store as st
from signoise import sweeps

from .test_sweep import sweep_cfg


def _files(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _empty_store(path, cfg, record_rho="full"):
    """A new store of ``cfg`` made as ``sweep`` makes it (schema, attributes, block)."""
    p = sweeps.plan(cfg)
    coords, variables = sweeps._schema(p, record_rho, "gram")
    st.create(path, coords, variables, sweeps._attrs(cfg.to_toml(), record_rho, "gram"), 2)
    return p, coords, variables


def test_writer_writes_the_bytes_of_plain_assignments(tmp_path):
    """Oracle: the previous write path, ``group[name][region] = values`` per variable and then
    ``done``. A sweep written by the Writer and a store filled that way, block by block, from
    the same blocks computed again (``run_block``) hold the same files byte for byte (so
    either code resumes the other's store) and read back identical; and the layout sent to
    the workers before the store exists (``_layout_of``) is the one read back from it."""
    cfg = sweep_cfg({"data.n": [4, 6], "train.steps": [20, 30], "data.mu_norm": [1.0, 2.0, 3.0]},
                    seeds=2)
    new = tmp_path / "new.zarr"
    sn.sweep(cfg, new, workers=1, block=2, record_rho="full", quiet=True)
    old = tmp_path / "old.zarr"
    p, coords, variables = _empty_store(old, cfg)
    group = zarr.open_group(str(old), mode="r+")
    got = sweeps._layout(group)
    want = sweeps._layout_of(coords, variables)
    assert got["vars"] == want["vars"] and (got["r"], got["i"]) == (want["r"], want["i"])
    assert got["step"].dtype == want["step"].dtype
    np.testing.assert_array_equal(got["step"], want["step"])
    for region in p.blocks(2):   # each block computed again, as a worker does
        shape = tuple(s.stop - s.start for s in region)
        arrays = sweeps.run_block([p.configs[c] for c in p.cells(region)], p.seeds, got, "full")
        for name, values in arrays.items():
            group[name][region] = values.reshape(shape + values.shape[1:])
        group["done"][region] = np.ones(shape, dtype=bool)
    a, b = _files(new), _files(old)
    assert sorted(a) == sorted(b)
    assert [k for k in a if a[k] != b[k]] == []
    with st.open_sweep(new) as x, st.open_sweep(old) as y:
        assert x.load().identical(y.load())


class _Failing:
    """An async array whose writes fail like a full disk."""

    async def setitem(self, region, values):
        import errno

        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_failed_variable_write_leaves_its_block_not_done(tmp_path):
    """One variable's chunk fails while the others are written concurrently: the error reaches
    the caller and ``done`` stays False for that block (the reliability contract), while a
    block written without failure is done and reads back its values."""
    cfg = sweep_cfg(seeds=2)
    path = tmp_path / "s.zarr"
    p, _, _ = _empty_store(path, cfg, record_rho="summary")
    writer = st.Writer(st.open_group(path, cfg.to_toml(), "summary", "gram"))
    first, second = list(p.blocks(2))[:2]
    shape = tuple(s.stop - s.start for s in first)
    values = {"test_error": np.full(shape + writer.group["test_error"].shape[len(shape):], 0.25)}
    st.write_block(writer, first, values)
    writer.arrays["train_loss"] = _Failing()
    with pytest.raises(OSError, match="No space left"):
        st.write_block(writer, second, {**values, "train_loss": values["test_error"]})
    done = st.done_mask(writer.group)
    assert done[first].all() and not done[second].any()
    np.testing.assert_array_equal(writer.group["test_error"][first], values["test_error"])


def test_a_sweep_refused_by_its_plan_leaves_no_worker(tmp_path):
    """The workers start before the plan is checked; an invalid cell still raises the plan's
    error (naming the cell), writes nothing, and the started workers exit."""
    cfg = sweep_cfg({"data.mu_norm": [1.0, 3.0], "data.n": [4, -6]})
    with pytest.raises(sn.ConfigError, match="sweep cell"):
        sn.sweep(cfg, tmp_path / "s.zarr", workers=2, block=1, quiet=True)
    assert not (tmp_path / "s.zarr").exists()
    for child in mp.active_children():
        child.join(timeout=120)
    assert not mp.active_children()


def test_new_blocks_counts_the_plans_blocks():
    """``_new_blocks`` (from the axes' lengths, before the plan) equals the plan's count."""
    for grid, block in (({"data.mu_norm": [1.0, 3.0, 6.0], "data.n": [4, 6]}, None),
                        ({"data.mu_norm": [1.0, 3.0, 6.0], "data.n": [4, 5, 6, 7, 8]}, 2),
                        ({"data.n": [4, 6]}, 1)):
        cfg = sweep_cfg(grid, seeds=3)
        p = sweeps.plan(cfg)
        b = block or sweeps._default_block(p.shape, len(p.seeds))
        assert sweeps._new_blocks(cfg, block) == len(list(p.blocks(b)))
    assert sweeps._new_blocks(sweep_cfg({}), None) == 0
