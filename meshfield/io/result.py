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
import re
from functools import cached_property

import h5py
import numpy as np

from meshfield.io._hdf5 import READ_ERRORS, fails_checksum, hdf5_text

FORMAT_NAME = "meshfield-result"
FORMAT_VERSION = 1
RECORD_NAMES = ("A", "Abar")
#: environment variable: the size (MiB) up to which :meth:`Result.records`
#: reads a record dataset whole; larger ones are read in slices
WHOLE_READ_ENV = "MESHFIELD_READ_WHOLE_MIB"
#: its default: 1 GiB of float32 records, read whole (one pass over the file)
WHOLE_READ_MIB = 1024.0


class ResultError(ValueError):
    """A path that is not a readable meshfield result."""


def blocks_dirname(master_path: str) -> str:
    """Return the block folder that belongs to the master file ``master_path``."""
    return master_path + ".blocks"


def is_result_file(path: str) -> bool:
    """True if ``path`` is the master file of a meshfield result (HDF5 with the
    result's ``A`` dataset and ``meta`` group)."""
    try:
        with h5py.File(path, "r") as f:
            return "A" in f and "meta" in f
    except OSError:
        return False


def in_block_folder(path: str) -> str | None:
    """The result block folder that ``path`` lies in, if any (such a folder
    belongs to its result: a file written into it, or over one of its block
    files, would corrupt the result or vanish with the folder).

    A block folder is ``OUT.h5.blocks`` beside a master ``OUT.h5``, one holding
    rank block files, or a run's temporary ``OUT.h5.blocks.tmp-<id>``; another
    folder whose name ends in ``.blocks`` is the user's."""
    parent = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(parent)
    if ".blocks.tmp-" in name:
        return parent
    if not name.endswith(".blocks"):
        return None
    if os.path.isfile(parent.removesuffix(".blocks")):
        return parent
    try:
        return parent if any(_RANK_FILE.fullmatch(entry) for entry in os.listdir(parent)) else None
    except OSError:
        return None


_RANK_FILE = re.compile(r"rank\d{5}\.h5")


def rank_filename(rank: int) -> str:
    """Return the name of rank ``rank``'s block file inside the block folder."""
    return f"rank{rank:05d}.h5"


def whole_read_limit() -> float:
    """The size in bytes up to which :meth:`Result.records` reads a record dataset
    whole: ``$MESHFIELD_READ_WHOLE_MIB`` MiB (default 1024), a number >= 0."""
    text = os.environ.get(WHOLE_READ_ENV)
    if text is None or not text.strip():
        return WHOLE_READ_MIB * 2**20
    try:
        mib = float(text)
    except ValueError:
        mib = float("nan")
    if not (mib >= 0.0 and np.isfinite(mib)):
        raise ResultError(f"environment variable {WHOLE_READ_ENV} = {text!r}: must be a size in MiB, a "
                          f"number >= 0 (0 reads every result in slices; default {WHOLE_READ_MIB:g})")
    return mib * 2**20


class CheckedRecords:
    """A record dataset (``A`` or ``Abar``) of an open :class:`Result`, read slice
    by slice: ``view[key]`` (any h5py selection, e.g. ``view[i0:i1]`` or
    ``view[:, t, row]``) returns a numpy array. ``shape``, ``dtype``, ``ndim``,
    ``nbytes`` and ``len()`` need no read.

    Made by :meth:`Result.records`, which first reads one record of every site
    (HDF5 then holds every block file open) and checks the block files, as
    reading ``A`` whole does. Each slice is then checked against what the block
    files were at that moment (inode, size and modification time, one ``stat``
    each): a block folder replaced, or a block file rewritten in place (which
    HDF5 would read as zeros or as another run's numbers), makes the read fail
    rather than return numbers that are not this run's.
    """

    def __init__(self, result: "Result", dataset: h5py.Dataset, name: str):
        self._result = result
        self._dataset = dataset
        self.name = name
        self.shape = tuple(dataset.shape)
        self.dtype = dataset.dtype
        self.ndim = len(self.shape)
        self.nbytes = int(np.prod(self.shape)) * self.dtype.itemsize
        folder = os.path.dirname(result.path)
        self._blocks = {block: os.path.join(folder, block) for block in _block_sources(result._file, (name,))}
        self._stamps = self._stamp()

    def _stamp(self) -> dict:
        """What each block file is now: ``(inode, size, mtime_ns)``, None if gone."""
        stamps = {}
        for block, path in self._blocks.items():
            try:
                st = os.stat(path)
                stamps[block] = (st.st_ino, st.st_size, st.st_mtime_ns)
            except OSError:
                stamps[block] = None
        return stamps

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> np.ndarray:
        self._result._open_file()  # a ResultError once the result is closed
        try:
            data = self._dataset[key]
        except READ_ERRORS as exc:
            raise self._result._read_error(self.name, exc) from exc
        now = self._stamp()
        if now != self._stamps:
            changed = [block for block in self._blocks if now[block] != self._stamps[block]]
            raise ResultError(f"{self._result.path}: block file{'s' if len(changed) > 1 else ''} "
                              f"{', '.join(changed)} changed while the result was being read (replaced, "
                              f"rewritten or removed, e.g. by a later run written to the same name with "
                              f"--overwrite); open the result again")
        return data

    def __array__(self, dtype=None, copy=None):
        if copy is False:
            raise ValueError(f"{self!r}: reading it makes a copy; use copy=None or True")
        data = self[()]
        return data if dtype is None else data.astype(dtype, copy=False)

    def __repr__(self) -> str:
        return f"<records {self.name!r} of {self._result.path!r}, shape {self.shape}, read in slices>"


def records_of(result, name: str = "A"):
    """``A`` or ``Abar`` of any result, to be read in slices: a result file's
    :meth:`Result.records`, another result's attribute as it is (e.g. the array
    of a :class:`meshfield.simulation.MemoryResult`)."""
    records = getattr(result, "records", None)
    return records(name) if callable(records) else getattr(result, name)


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


def _read_only(array: np.ndarray) -> np.ndarray:
    """A view of ``array`` that cannot be written through."""
    view = array.view()
    view.flags.writeable = False
    return view


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
        try:
            self.times = file["times"][()]
        except READ_ERRORS as exc:
            if not fails_checksum(file["times"], exc):
                raise
            raise ResultError(f"{path}: damaged result, its dataset 'times' fails its checksum (its bytes "
                              f"changed after it was written)") from exc
        self.types = [str(name) for name in file.attrs["types"]]
        self.config = json.loads(file.attrs["config_json"])
        self.meta = _decode_attrs(file["meta"].attrs)
        self.dt = float(self.meta["dt"])
        self.record_interval = float(self.meta["record_interval"])
        self.shape = tuple(int(n) for n in file["A"].shape[2:])
        self._views: dict[str, CheckedRecords] = {}  # made by records()

    @cached_property
    def A(self) -> np.ndarray:
        """Activity A (Hz), float32, shape (n_records, n_types, *shape).

        Raises
        ------
        ResultError
            If the result was closed before the first access, or a block file
            cannot be read (naming the result and the block file).
        """
        return self._read_record("A")

    @cached_property
    def Abar(self) -> np.ndarray:
        """Expected activity Ā (Hz), float32, shape (n_records, n_types, *shape).

        Raises
        ------
        ResultError
            If the result was closed before the first access, or a block file
            cannot be read (naming the result and the block file).
        """
        return self._read_record("Abar")

    def _open_file(self) -> h5py.File:
        """The master file; a ResultError once the result is closed."""
        if not self._file:
            raise ResultError(f"{self.path}: the result is closed; open it again with meshfield.open_result "
                              "(arrays read before closing, such as A, stay usable)")
        return self._file

    def _read_record(self, name: str) -> np.ndarray:
        """Read the record dataset ``name`` whole; a read error becomes a ResultError."""
        dataset = self._open_file()[name]
        try:
            data = dataset[()]
            self._check_blocks_current()
            return data
        except READ_ERRORS as exc:
            raise self._read_error(name, exc) from exc

    def _read_error(self, name: str, exc: BaseException) -> ResultError:
        """The ResultError for a failed read of dataset ``name``, naming the block
        file at fault when it can be found."""
        folder = os.path.dirname(self.path)
        culprit = next((problem[1] for block, datasets in _block_sources(self._file, (name,)).items()
                        if (problem := _block_file_problem(folder, block, datasets, read=True))), None)
        where = f"block file {culprit}" if culprit else hdf5_text(exc)
        return ResultError(f"{self.path}: cannot read dataset {name!r}: {where}; the result is "
                           f"damaged (copy it again together with its block folder, or rerun)")

    def _check_blocks_current(self) -> None:
        """Raise a ResultError if a block file is now missing, damaged or another run's.

        HDF5 opens the block files by name when data is read and fills what it
        cannot read with NaN, and a later run written to the same name with
        ``--overwrite`` (or to the original name of a renamed master) would
        otherwise be read under this result's times, configuration and
        metadata. Checked after each read: data read before the blocks changed
        is then known to be this run's.
        """
        _check_blocks(self.path, self._file, datasets=False)  # the read found them

    def records(self, name: str = "A"):
        """``A`` or ``Abar`` for reading in slices, as the analysis functions and
        ``meshfield plot`` do.

        Once the attribute (``A`` or ``Abar``) has been read, that array.
        Otherwise a dataset of at most ``$MESHFIELD_READ_WHOLE_MIB`` MiB (default
        1024) is read whole, once, and returned as the array (the attribute):
        each statistic then reads memory, not the file again. A larger one (any,
        with the limit 0) is returned as a :class:`CheckedRecords` view, made
        once per result, that reads each slice on demand; the block-wise
        statistics then hold one batch of records at a time, so their memory is
        set by the lattice, not by the length of the record. Reading a short
        slice of a result below the limit this way reads all of it; use
        ``dataset(name)`` for that.

        The array is a read-only view of the attribute, so that a script cannot
        change what later statistics read. Index either with h5py selections
        (slices with positive steps, increasing lists of indices): the array
        also takes numpy's other indexing, the view does not.

        Raises
        ------
        ResultError
            A bad ``$MESHFIELD_READ_WHOLE_MIB``; as for ``A``, the result is
            closed (unless the array was read before), or a block file is
            missing, damaged or another run's.
        """
        if name not in RECORD_NAMES:
            raise ResultError(f"no record {name!r} in a meshfield result; allowed are {', '.join(RECORD_NAMES)}")
        limit = whole_read_limit()
        if name in self.__dict__:  # read whole before (the cached property): usable after closing too
            return _read_only(self.__dict__[name])
        dataset = self._open_file()[name]
        if name in self._views:
            return self._views[name]
        if dataset.size * dataset.dtype.itemsize <= limit:
            return _read_only(getattr(self, name))
        view = CheckedRecords(self, dataset, name)
        # One record of every site opens every block file behind the dataset
        # (HDF5 then keeps them open); checked then, as after reading it whole.
        view[:1]
        self._check_blocks_current()
        self._views[name] = view
        return view

    def dataset(self, name: str) -> h5py.Dataset:
        """Return the h5py dataset ``name`` ("A", "Abar" or "times") for lazy slicing.

        Valid while the result is open and its block folder is not replaced (a
        sliced read does not check the blocks' run id, unlike ``A`` and ``Abar``).
        """
        if name not in (*RECORD_NAMES, "times"):
            raise ResultError(f"no dataset {name!r} in a meshfield result; "
                              f"allowed are {', '.join((*RECORD_NAMES, 'times'))}")
        return self._open_file()[name]

    @property
    def extra_names(self) -> list[str]:
        """Names of the extra per-rank datasets (e.g. micro spike trains)."""
        file = self._open_file()
        return sorted(file["extra"]) if "extra" in file else []

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
        arrays = {}
        for key in sorted(group):
            try:
                arrays[int(key.removeprefix("rank"))] = group[key][()]
            except READ_ERRORS as exc:
                link = group.get(key, getlink=True)
                block = f" (block file {link.filename})" if isinstance(link, h5py.ExternalLink) else ""
                why = ("it fails its checksum (its bytes changed after it was written)"
                       if fails_checksum(group.get(key), exc) else hdf5_text(exc))
                raise ResultError(f"{self.path}: cannot read extra dataset {name!r} of {key}"
                                  f"{block}: {why}; the result is damaged "
                                  f"(copy it again together with its block folder, or rerun)") from exc
        self._check_blocks_current()
        return arrays

    def _missing_extra(self, what: str, key: str) -> ResultError:
        level = self.config.get("run", {}).get("level", "meso")
        return ResultError(
            f"{self.path}: the result holds no {what} (level {level!r}, record.{key} = "
            f"{self.config.get('record', {}).get(key, 0)}); run the micro level with "
            f"--set record.{key}=K to record neurons i < K of every type at every site")

    def spikes(self) -> np.ndarray:
        """The recorded spike trains of the microscopic level (``record.spikes_per_site``).

        Returns
        -------
        numpy.ndarray, int64, shape (n_spikes, 4)
            Rows ``(step, global site, type, neuron)``, sorted by step, then site,
            type and neuron, whatever the number of ranks that wrote them. A
            spike of step ``step`` fell in ``[step dt, (step + 1) dt)`` ms (it is
            drawn at the end of that step); the global site is the C-order flat
            index into ``shape`` (``numpy.unravel_index(site, shape)``).
        """
        if "spikes" not in self.extra_names:
            raise self._missing_extra("spike trains", "spikes_per_site")
        parts = list(self.extra("spikes").values())
        rows = np.concatenate(parts) if parts else np.zeros((0, 4), dtype=np.int64)
        return rows[np.lexsort(rows.T[::-1])] if len(rows) else rows.astype(np.int64)

    def voltage(self) -> tuple[np.ndarray, np.ndarray]:
        """The recorded membrane potentials of the microscopic level
        (``record.voltage_neurons``), assembled from the ranks' blocks.

        Returns
        -------
        times : numpy.ndarray, float64, shape (n_steps,)
            ms: the end of each recorded step (after a restart, from the
            checkpoint's step on).
        u : numpy.ndarray, float64, shape (n_steps, n_types, *shape, voltage_neurons)
            ``u`` (mV) of neurons ``i < record.voltage_neurons`` of every type at
            every site at the end of each step, after a reset; NaN where a type
            has fewer neurons per site. Needs ``n_steps * n_types * sites *
            voltage_neurons * 8`` bytes of memory.
        """
        if "voltage" not in self.extra_names:
            raise self._missing_extra("membrane potentials", "voltage_neurons")
        blocks = self.extra("voltage")
        attrs = self._file["extra"]["voltage"]
        first = next(iter(blocks.values()))
        u = np.full((first.shape[0], first.shape[1], *self.shape, first.shape[-1]), np.nan)
        for rank, block in blocks.items():
            start = attrs[rank_filename(rank).removesuffix(".h5")].attrs["local_start"]
            sites = tuple(slice(int(i), int(i) + n) for i, n in zip(start, block.shape[2:-1]))
            u[(slice(None), slice(None), *sites)] = block
        step0 = int(round(float(self.meta.get("t0", 0.0)) / self.dt))
        times = (step0 + 1 + np.arange(u.shape[0])) * self.dt
        return times, u

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


def _block_sources(file: h5py.File, names=RECORD_NAMES) -> dict[str, list[str]]:
    """The block files behind the virtual datasets ``names``, each with the
    datasets it serves (in the order the sources appear)."""
    sources: dict[str, list[str]] = {}
    for name in names:
        if file[name].is_virtual:
            for source in file[name].virtual_sources():
                # HDF5 reads "%" in a source file name as a format character; the
                # recorder writes a literal "%" as "%%" (e.g. `-o run_50%.h5`).
                sources.setdefault(source.file_name.replace("%%", "%"), []).append(source.dset_name)
    return sources


def _run_id(file: h5py.File) -> str | None:
    """The ``run_id`` attribute of a master or block file (None if absent)."""
    value = _plain(file.attrs.get("run_id"))
    return value if isinstance(value, str) else None


def _block_file_problem(folder: str, file_name: str, dset_names, read: bool = False,
                        run_id: str | None = None) -> tuple[bool, str] | None:
    """``(foreign, "FILE_NAME: reason")`` if the block file cannot serve the
    datasets ``dset_names`` (``foreign``: it belongs to another run), else None.
    Opens the file once.

    Parameters
    ----------
    folder : str
        The master file's folder (block paths are relative to it).
    file_name : str
        A block file, as a virtual source names it.
    dset_names : sequence of str
        The datasets of that file behind the record datasets.
    read : bool
        Also read the datasets whole (finds damage beyond the file's header).
    run_id : str, optional
        The master's run id, which the block must carry too (results written
        before run ids existed have none and are not checked).
    """
    try:
        with h5py.File(os.path.join(folder, file_name), "r") as block:
            theirs = _run_id(block)
            if run_id is not None and theirs != run_id:
                return True, (f"{file_name} belongs to another run (run id {theirs}, this result's is "
                              f"{run_id}): its block folder was replaced, e.g. by a later run written to the "
                              f"same name with --overwrite (or to the old name of this renamed master); open "
                              f"the result that owns the blocks, or rerun this one")
            rank = _plain(block.attrs.get("rank"))
            if isinstance(rank, int) and os.path.basename(file_name) != rank_filename(rank):
                return False, (f"{file_name}: it holds rank {rank}'s block, which belongs in "
                               f"{rank_filename(rank)}; the block folder was rearranged")
            for dset_name in dset_names:
                dataset = block.get(dset_name)
                if not isinstance(dataset, h5py.Dataset):
                    return False, f"{file_name}: it has no dataset {dset_name.lstrip('/')!r}"
                if read:
                    try:
                        dataset[()]
                    except READ_ERRORS as exc:
                        if not fails_checksum(dataset, exc):
                            raise
                        return False, (f"{file_name}: its dataset {dset_name.lstrip('/')!r} fails its "
                                       f"checksum (its bytes changed after it was written)")
    except READ_ERRORS as exc:
        return False, f"{file_name}: not a readable HDF5 file ({hdf5_text(exc)})"
    return None


def _plain(value):
    """An attribute value as a plain Python value (for checks and messages)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value


def _check_version(path: str, file: h5py.File) -> None:
    """The ``format_version`` attribute: a whole number this meshfield can read."""
    allowed = (f"the whole number {FORMAT_VERSION}, the result format version this meshfield reads"
               if FORMAT_VERSION == 1 else
               f"a whole number from 1 to {FORMAT_VERSION}, the result format versions this meshfield reads")
    if "format_version" not in file.attrs:
        raise ResultError(f"{path}: attribute 'format_version' is missing; it must be {allowed}")
    version = _plain(file.attrs["format_version"])
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ResultError(f"{path}: attribute 'format_version' = {version!r} is invalid; it must be {allowed}")
    if version > FORMAT_VERSION:
        raise ResultError(f"{path}: result format version {version} is newer than this "
                          f"meshfield reads ({FORMAT_VERSION}); update meshfield")


def _check_layout(path: str, file: h5py.File) -> None:
    """Check that the master file holds what :class:`Result` reads, with
    consistent shapes (docs/results.md, "Master file")."""
    missing, wrong = [], []
    datasets = {}
    for name in (*RECORD_NAMES, "times"):
        obj = file.get(name)
        if obj is None:
            missing.append(f"dataset {name!r}")
        elif not isinstance(obj, h5py.Dataset):
            wrong.append(f"{name!r} is a group, expected a dataset")
        elif not np.issubdtype(obj.dtype, np.number):
            wrong.append(f"dataset {name!r} has dtype {obj.dtype}, expected numbers")
        else:
            datasets[name] = obj
    meta = file.get("meta")
    if meta is None:
        missing.append("group 'meta'")
    elif not isinstance(meta, h5py.Group):
        wrong.append("'meta' is a dataset, expected a group of attributes")
    else:
        for key in ("dt", "record_interval"):
            if key not in meta.attrs:
                missing.append(f"attribute 'meta/{key}'")
                continue
            value = _plain(meta.attrs[key])
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                    np.isfinite(value) and value > 0):
                wrong.append(f"attribute 'meta/{key}' = {value!r}, expected a positive time in ms")
    types = None
    if "types" not in file.attrs:
        missing.append("attribute 'types'")
    else:
        value = file.attrs["types"]
        if (isinstance(value, np.ndarray) and value.ndim == 1 and value.size > 0
                and all(isinstance(v, (str, bytes)) for v in value.tolist())):
            types = [_plain(v) for v in value.tolist()]
        else:
            wrong.append(f"attribute 'types' = {_plain(value)!r}, expected a list of type names")
    if "config_json" not in file.attrs:
        missing.append("attribute 'config_json'")
    else:
        text = _plain(file.attrs["config_json"])
        try:
            config = json.loads(text) if isinstance(text, str) else None
        except ValueError as exc:
            wrong.append(f"attribute 'config_json' is not valid JSON ({exc})")
        else:
            if not isinstance(config, dict):
                wrong.append("attribute 'config_json' does not hold a JSON object (the configuration)")
    if missing:
        raise ResultError(f"{path}: not a complete meshfield result: missing {', '.join(missing)} "
                          f"(docs/results.md lists what a result holds)")
    if not wrong:
        A, Abar, times = (datasets[name] for name in (*RECORD_NAMES, "times"))
        if A.ndim < 3:
            wrong.append(f"dataset 'A' has shape {A.shape}, expected (n_records, n_types, *lattice)")
        else:
            if A.shape[1] != len(types):
                wrong.append(f"dataset 'A' has shape {A.shape}, whose axis 1 does not match the "
                             f"{len(types)} types {types}")
            if Abar.shape != A.shape:
                wrong.append(f"dataset 'Abar' has shape {Abar.shape}, expected that of 'A' {A.shape}")
            if times.shape != A.shape[:1]:
                wrong.append(f"dataset 'times' has shape {times.shape}, expected ({A.shape[0]},), "
                             f"one time per record of 'A'")
    if wrong:
        raise ResultError(f"{path}: not a valid meshfield result: {'; '.join(wrong)}")


def open_result(path: str | os.PathLike, check_blocks: bool = True) -> Result:
    """Open the meshfield result whose master file is ``path``.

    Parameters
    ----------
    path : str, bytes or os.PathLike
        The master file ``OUT.h5``, or a link to it; its block folder
        ``OUT.h5.blocks`` must lie beside the master file.
    check_blocks : bool
        Check the block files now (one open each). ``False`` leaves that to
        the first read of ``A``, ``Abar`` or an extra, which opens them anyway;
        :func:`meshfield.run` passes it on all ranks but the root, so that the
        ranks of a large job do not each open every block file.

    Returns
    -------
    Result
        Usable as a context manager.

    Raises
    ------
    ResultError
        If ``path`` does not exist, is not an HDF5 file, is not a meshfield
        result, has a ``format_version`` that is not a whole number or is newer
        than this meshfield reads, lacks a dataset, group or attribute that a
        reader needs (or their shapes disagree), or its block files are missing,
        belong to another run (a later run replaced the block folder), sit
        under another rank's name, are not readable HDF5 files or lack their
        dataset. The message names the file and what is wrong.
    """
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise ResultError(f"path = {path!r}: expected the name of a result file OUT.h5 (a str or a path)")
    # A link to the master file (in another folder) reads the block folder beside
    # the file it points to: HDF5 resolves the blocks relative to the opened path.
    path = os.path.realpath(os.fspath(path))
    if os.path.isdir(path):
        master = path.removesuffix(".blocks")
        hint = (f"; it is the block folder of {master}: open that file"
                if path.endswith(".blocks") and os.path.isfile(master) else "")
        raise ResultError(f"{path}: a folder, not a result file{hint}")
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
        _check_version(path, file)
        _check_layout(path, file)
        if check_blocks:
            _check_blocks(path, file)
        return Result(path, file)
    except READ_ERRORS as exc:
        file.close()
        raise ResultError(f"{path}: cannot be read as a meshfield result ({hdf5_text(exc)})") from exc
    except BaseException:
        file.close()
        raise


def _check_blocks(path: str, file: h5py.File, datasets: bool = True) -> None:
    """The block files are all there, this run's, in their places and (with
    ``datasets``) hold their datasets. One open per block file, no data read."""
    folder, run_id = os.path.dirname(path), _run_id(file)
    sources = sorted(_block_sources(file).items())
    # HDF5 fills a virtual dataset silently where a source file is missing; a
    # reader must instead be told that the block folder did not travel along.
    missing = [block for block, _ in sources if not os.path.isfile(os.path.join(folder, block))]
    if missing:
        raise ResultError(f"{path}: block files missing beside it: {', '.join(missing)}; "
                          f"move or copy a result together with its block folder, "
                          f"keeping that folder's name")
    unreadable = []
    for block, dset_names in sources:
        problem = _block_file_problem(folder, block, dset_names if datasets else (), run_id=run_id)
        if problem is not None:
            foreign, message = problem
            if foreign:
                raise ResultError(f"{path}: block file {message}")
            unreadable.append(message)
    if unreadable:
        raise ResultError(f"{path}: block file{'s' if len(unreadable) > 1 else ''} "
                          f"{'; '.join(unreadable)}; the result is damaged "
                          f"(copy it again together with its block folder, or rerun)")
