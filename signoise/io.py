"""Atomic writes: a temporary file in the target's folder, then an atomic rename."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _temp_beside(path: Path) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)   # mkstemp's 0600 would make results private
    return Path(tmp)


class DamagedInputError(ValueError):
    """An input file or store that cannot be read as what it should be; the message names the
    file and what is wrong."""


def open_result(path):
    """Load a run's netCDF file (from ``signoise run``/``save_dataset``) fully into memory.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    DamagedInputError
        ``path`` is not a readable netCDF file (a text file, a truncated download) or lacks the
        ``step`` axis of a run.
    """
    import xarray as xr

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            ds = ds.load()
    except Exception as exc:  # h5py/h5netcdf raise OSError, ValueError, KeyError... on damage
        raise DamagedInputError(f"{path}: not a readable signoise result (netCDF/HDF5): "
                                f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                                ) from exc
    if "step" not in ds.dims:
        raise DamagedInputError(f"{path}: not a signoise run (no 'step' axis)")
    return ds


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half."""
    path = Path(path)
    tmp = _temp_beside(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_dataset(ds, path, overwrite: bool = False) -> Path:
    """Write an xarray Dataset to netCDF (h5netcdf) atomically.

    Refuses to replace an existing file unless ``overwrite`` is true, so nothing a user saved
    is lost silently.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (CLI: --overwrite) to replace it")
    tmp = _temp_beside(path)
    try:
        ds.to_netcdf(tmp, engine="h5netcdf")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
