"""Reading meshfield results (the file layout is described in docs/results.md).

A result is a pair: the master file ``OUT.h5`` and the folder ``OUT.h5.blocks/``
beside it, which holds one HDF5 file per rank with that rank's block of the
lattice. The master presents the blocks as global HDF5 virtual datasets whose
source paths are relative to the master's folder, so the pair can be moved or
copied together and read from any working directory, and readers see the same
arrays whatever the number of ranks that wrote them.
"""

from __future__ import annotations

import json
import os
from functools import cached_property

import h5py
import numpy as np

FORMAT_NAME = "meshfield-result"
FORMAT_VERSION = 1
RECORD_NAMES = ("A", "Abar")


class ResultError(ValueError):
    """A path that is not a readable meshfield result."""


def blocks_dirname(master_path: str) -> str:
    """Return the block folder that belongs to the master file ``master_path``."""
    return master_path + ".blocks"


def rank_filename(rank: int) -> str:
    """Return the name of rank ``rank``'s block file inside the block folder."""
    return f"rank{rank:05d}.h5"


def _decode_attrs(attrs: h5py.AttributeManager) -> dict:
    """Return HDF5 attributes as plain Python values (str, bool, int, float, list)."""
    plain = {}
    for key, value in attrs.items():
        if isinstance(value, np.ndarray):
            plain[key] = [v.decode() if isinstance(v, bytes) else v for v in value.tolist()]
        elif isinstance(value, np.generic):
            plain[key] = value.item()
        elif isinstance(value, bytes):
            plain[key] = value.decode()
        else:
            plain[key] = value
    return plain


class Result:
    """The records of one meshfield run, read from a result file.

    Use :func:`open_result` to create one. The file stays open until
    :meth:`close` (or the end of a ``with`` block); ``A`` and ``Abar`` are read on
    first access and then kept in memory.

    Attributes
    ----------
    path : str
        Absolute path of the master file.
    times : numpy.ndarray
        Time of each record (ms), shape (n_records,).
    types : list of str
        Population type names, in the order of the type axis.
    config : dict
        The resolved configuration, nested as in the TOML file.
    meta : dict
        Run metadata (version, seed, ranks, dims, level, dt, record_interval,
        n_records, wall_time, created, hostname, command, ...); docs/results.md
        lists the keys.
    dt : float
        Simulation time step (ms).
    record_interval : float
        Time between records (ms).
    shape : tuple of int
        Global lattice shape (sites).
    """

    def __init__(self, path: str, file: h5py.File):
        self.path = path
        self._file = file
        self.times = file["times"][()]
        self.types = [str(name) for name in file.attrs["types"]]
        self.config = json.loads(file.attrs["config_json"])
        self.meta = _decode_attrs(file["meta"].attrs)
        self.dt = float(self.meta["dt"])
        self.record_interval = float(self.meta["record_interval"])
        self.shape = tuple(int(n) for n in file["A"].shape[2:])

    @cached_property
    def A(self) -> np.ndarray:
        """Activity A (Hz), float32, shape (n_records, n_types, *shape)."""
        return self._file["A"][()]

    @cached_property
    def Abar(self) -> np.ndarray:
        """Expected activity Ā (Hz), float32, shape (n_records, n_types, *shape)."""
        return self._file["Abar"][()]

    def dataset(self, name: str) -> h5py.Dataset:
        """Return the h5py dataset ``name`` ("A", "Abar" or "times") for lazy slicing.

        Valid while the result is open.
        """
        if name not in (*RECORD_NAMES, "times"):
            raise ResultError(f"no dataset {name!r} in a meshfield result; "
                              f"allowed are {', '.join((*RECORD_NAMES, 'times'))}")
        return self._file[name]

    @property
    def extra_names(self) -> list[str]:
        """Names of the extra per-rank datasets (e.g. micro spike trains)."""
        return sorted(self._file["extra"]) if "extra" in self._file else []

    def extra(self, name: str) -> dict[int, np.ndarray]:
        """Return the extra dataset ``name`` of every rank that wrote one.

        Returns
        -------
        dict of int to numpy.ndarray
            Rank -> that rank's array, as written by ``Recorder.write_extra``.
        """
        if name not in self.extra_names:
            raise ResultError(f"{self.path}: no extra dataset {name!r}; "
                              f"present: {self.extra_names or 'none'}")
        group = self._file["extra"][name]
        return {int(key.removeprefix("rank")): group[key][()] for key in sorted(group)}

    def close(self) -> None:
        """Close the file (arrays already read stay usable)."""
        self._file.close()

    def __enter__(self) -> Result:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"Result({self.path!r}, types={self.types}, shape={self.shape}, "
                f"n_records={len(self.times)})")


def _missing_block_files(path: str, file: h5py.File) -> list[str]:
    # HDF5 fills a virtual dataset silently where a source file is missing; a
    # reader must instead be told that the block folder did not travel along.
    folder = os.path.dirname(path)
    missing = set()
    for name in RECORD_NAMES:
        for source in file[name].virtual_sources():
            if not os.path.isfile(os.path.join(folder, source.file_name)):
                missing.add(source.file_name)
    return sorted(missing)


def open_result(path: str | os.PathLike) -> Result:
    """Open the meshfield result whose master file is ``path``.

    Parameters
    ----------
    path : str or os.PathLike
        The master file ``OUT.h5``; its block folder ``OUT.h5.blocks`` must lie
        beside it.

    Returns
    -------
    Result
        Usable as a context manager.

    Raises
    ------
    ResultError
        If ``path`` does not exist, is not an HDF5 file, is not a meshfield
        result, was written by a newer format, or its block files are missing.
    """
    path = os.path.abspath(os.fspath(path))
    if not os.path.isfile(path):
        raise ResultError(f"{path}: no such result file")
    try:
        file = h5py.File(path, "r")
    except OSError as exc:
        raise ResultError(f"{path}: not an HDF5 file, so not a meshfield result ({exc})") from exc
    try:
        if file.attrs.get("format") != FORMAT_NAME:
            raise ResultError(f"{path}: not a meshfield result (its 'format' attribute is "
                              f"{file.attrs.get('format')!r}, expected {FORMAT_NAME!r})")
        version = int(file.attrs["format_version"])
        if version > FORMAT_VERSION:
            raise ResultError(f"{path}: result format version {version} is newer than this "
                              f"meshfield reads ({FORMAT_VERSION}); update meshfield")
        missing = _missing_block_files(path, file)
        if missing:
            raise ResultError(f"{path}: block files missing beside it: {', '.join(missing)}; "
                              f"move or copy a result together with its block folder, "
                              f"keeping that folder's name")
        return Result(path, file)
    except BaseException:
        file.close()
        raise
