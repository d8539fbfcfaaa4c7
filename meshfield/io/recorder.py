"""Recording A and Ā per site into a meshfield result (layout: docs/results.md).

Every rank writes its own block of the lattice to its own HDF5 file, so no
parallel HDF5 is needed; at the end the root rank writes a small master file whose
virtual datasets present the blocks as global arrays ``A[time, type, *lattice]``.

Nothing is ever half-written or overwritten by accident: the blocks and the master
are written under temporary names and renamed into place only by a successful
:meth:`Recorder.close`, so an interrupted or aborted run leaves no file at the
output path, and an existing result is replaced only with ``overwrite=True``.
Temporaries left by a killed job are named ``OUT.h5.tmp-*`` and
``OUT.h5.blocks.tmp-*`` and can be deleted.

All ranks must see the same file system. Communication goes through the
decomposition object (``rank``, ``size``, ``is_root``, ``bcast``,
``allreduce_sum``); this module never imports mpi4py.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import shlex
import shutil
import socket
import sys
from collections.abc import Mapping
from contextlib import suppress
from datetime import datetime, timezone

import h5py
import numpy as np

import meshfield
from meshfield._agreed import agreed
from meshfield.io._hdf5 import CHUNK_BYTES, hdf5_text
from meshfield.io.result import (
    _RANK_FILE,
    FORMAT_NAME,
    FORMAT_VERSION,
    RECORD_NAMES,
    blocks_dirname,
    in_block_folder,
    is_result_file,
    rank_filename,
)

#: set when HDF5 failed to write a block file (a full disk or quota); see
#: :meth:`Recorder._set_aside` and ``meshfield.cli``
HDF5_WRITE_FAILED = False
# The handles of such a file: kept alive, because HDF5 crashes when it releases
# them with data it cannot write.
_UNWRITABLE = []

#: The temporary master and block folder of every run that has neither
#: published nor discarded its output, by run token: what
#: :func:`discard_unfinished` removes when an MPI job must be aborted.
_UNFINISHED: dict[str, tuple[str, str]] = {}


def discard_unfinished() -> None:
    """Remove the temporary output of every unfinished run of this process.

    For a rank that is about to abort the MPI job (``meshfield.cli``): the rank
    that would remove them in :meth:`Recorder.abort` is then killed before it
    can. Only temporaries (``*.tmp-*``) are touched, never a published result.
    """
    for tmp_master, tmp_blocks in list(_UNFINISHED.values()):
        with suppress(OSError):
            os.remove(tmp_master)
        shutil.rmtree(tmp_blocks, ignore_errors=True)
    _UNFINISHED.clear()


_REQUIRED_META = ("level", "seed", "dt")
_RESERVED_META = ("version", "ranks", "dims", "global_shape", "record_interval", "t0",
                  "n_records", "wall_time", "created", "hostname", "command")


class RecorderError(ValueError):
    """Invalid recorder arguments, or an output that cannot be written safely."""


def _attr_value(label: str, value):
    """Return ``value`` in a form HDF5 stores as an attribute, or raise RecorderError."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return np.array(value, dtype=h5py.string_dtype())
    array = np.asarray(value)
    if array.ndim <= 1 and array.dtype.kind in "biuf":
        return array if array.ndim == 1 else array[()]
    raise RecorderError(f"{label} = {value!r} cannot be stored: allowed are str, bool, int, "
                        f"float, or a flat list of numbers or of strings")


def _check_meta(meta, label: str, required: tuple[str, ...] = ()) -> dict:
    """Return ``meta`` with storable values, or raise RecorderError naming the key."""
    if not isinstance(meta, Mapping):
        raise RecorderError(f"{label} must be a dict, got {type(meta).__name__}")
    for key in required:
        if key not in meta:
            raise RecorderError(f"{label} lacks the key {key!r} (required: "
                                f"{', '.join(required)})")
    checked = {}
    for key, value in meta.items():
        _check_attr_key(label, key, _RESERVED_META, "the recorder", RecorderError)
        checked[key] = _attr_value(f"{label}[{key!r}]", value)
    return checked


def _check_attr_key(label: str, key, reserved, owner: str, error: type[Exception]) -> None:
    """Raise ``error`` unless ``key`` can name an HDF5 attribute of ``label`` that
    ``owner`` (the writer) does not set itself."""
    if not isinstance(key, str) or not key or "/" in key:
        raise error(f"{label} key {key!r}: keys must be non-empty strings without '/'")
    if key in reserved:
        raise error(f"{label}[{key!r}] is set by {owner} itself; reserved keys: {', '.join(reserved)}")


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{value!r} of type {type(value).__name__} is not JSON serialisable")


def _discard(file, path) -> None:
    """Close ``file`` (an open h5py.File, or None) and delete ``path``.

    The output is being discarded, possibly because of an I/O error that closing
    would raise again; that must not hide the original error.
    """
    if file is not None:
        with suppress(Exception):
            file.close()
    with suppress(FileNotFoundError):
        os.remove(path)


def _fsync(path: str) -> None:
    # Data must reach the disk before the rename that publishes it, or a crash
    # could expose a complete-looking name with incomplete contents.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_replaceable_blocks(folder: str) -> None:
    """Refuse to replace a block folder that holds anything but rank block files.

    Replacing a result replaces its whole block folder; a folder of that name
    that holds other files (the user's, or another program's) is not deleted.
    """
    if not os.path.isdir(folder) or os.path.islink(folder):
        return
    foreign = sorted(name for name in os.listdir(folder) if not _RANK_FILE.fullmatch(name))
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise RecorderError(f"{folder} holds files that are not result blocks ({shown}); "
                            f"replacing the result would delete them: move them away first")


class Recorder:
    """Writes the decimated records of A and Ā to a result file.

    The records of one run are ``n_records`` snapshots of A and Ā (Hz) at every
    site and type; record ``i`` belongs to time ``t0 + i * record_interval`` (ms).
    Each rank buffers ``flush_every`` records of its block in memory (float32:
    ``2 * flush_every * n_types * prod(local_shape) * 4`` bytes, about 2 MiB with
    the default) and writes them to its block file when the buffer is full.

    Leaving a ``with`` block without :meth:`close` aborts the recording.

    Parameters
    ----------
    path : str or os.PathLike
        Output master file ``OUT.h5``; the block folder ``OUT.h5.blocks`` is
        created beside it. Its parent folder must exist.
    decomposition : Decomposition
        Provides ``rank``, ``size``, ``is_root``, ``bcast(obj)``,
        ``allreduce_sum(x)``, ``local_start``, ``local_shape``, ``global_shape``
        and ``dims``.
    types : list of str
        Population type names, the order of the type axis.
    n_records : int
        Number of records the run will write, >= 1.
    record_interval : float
        Time between records (ms), > 0.
    t0 : float
        Time of record 0 (ms).
    config : dict
        The resolved configuration, nested as in the TOML file (JSON-serialisable;
        NumPy scalars and arrays are converted). The root rank's copy is stored.
    meta : dict
        Run metadata stored as attributes; must contain ``level``, ``seed`` and
        ``dt`` (ms). Values: str, bool, int, float, or flat lists of numbers or of
        strings. The keys the recorder sets itself (``version``, ``ranks``,
        ``dims``, ...) are not allowed.
    overwrite : bool
        Replace an existing result at ``path`` (only when :meth:`close` succeeds).
    flush_every : int, optional
        Records buffered per rank before a write; by default as many as fill one
        HDF5 chunk of about 1 MiB per array.

    Attributes
    ----------
    path : str
        Absolute path of the master file (as seen by the root rank).
    types : list of str
    n_records : int
    record_interval, t0 : float
        ms.
    flush_every : int
        Records buffered per rank before a write.

    Raises
    ------
    RecorderError
        On every rank, if an argument is invalid, ``path`` or its block folder
        exists and ``overwrite`` is false, ``path`` is a folder, the parent folder
        is missing, or a block file cannot be created.

    Notes
    -----
    Collective: must be called on all ranks with the same arguments.
    """

    def __init__(self, path, decomposition, types, n_records, record_interval, t0,
                 config, meta, overwrite=False, flush_every=None):
        self._decomposition = decomposition
        self._state = "opening"
        self._file = None
        self._overwrite = bool(overwrite)
        # Nothing that can fail may run before the root's verdict: a rank that
        # raised on its own would leave the others waiting in the broadcast.
        names = self._decomposition.root_decides(lambda: self._validate_and_reserve(
            path, types, n_records, record_interval, t0, config, meta), RecorderError)
        self.path, self._tmp_master, self._tmp_blocks, self._token = names
        _UNFINISHED[self._token] = (self._tmp_master, self._tmp_blocks)
        self.types = list(types)
        self.n_records = int(n_records)
        self.record_interval = float(record_interval)
        self.t0 = float(t0)
        self._rank_path = os.path.join(self._tmp_blocks, rank_filename(decomposition.rank))
        self._state = "open"
        try:
            self._all_succeed(lambda: self._create_block_file(flush_every),
                              "creating the block file")
        except BaseException:
            self.abort()
            raise

    # -- collective error handling -------------------------------------------

    def _all_succeed(self, action, what: str) -> None:
        """Run ``action`` on every rank; raise on every rank if any failed.

        The ranks where ``action`` succeeded raise a RecorderError that carries the
        message of the first rank that failed: only rank 0 prints errors, and its
        own message must say what went wrong elsewhere; both are marked as raised
        on every rank (:mod:`meshfield._agreed`). Collective.
        """
        failure = None
        try:
            action()
        except Exception as exc:  # any failure must be counted, or the others hang
            failure = exc
        # A sum of lists concatenates them in rank order.
        failed = self._decomposition.allreduce_sum(
            [] if failure is None else [(self._decomposition.rank, str(failure) or type(failure).__name__)])
        if failure is not None:
            raise agreed(failure)
        if failed:
            rank, message = failed[0]
            more = f" (and on {len(failed) - 1} more rank(s))" if len(failed) > 1 else ""
            raise agreed(RecorderError(f"{what} failed on rank {rank}{more}: {message}"))

    # -- construction ------------------------------------------------------

    def _validate_and_reserve(self, path, types, n_records, record_interval, t0, config,
                              meta):
        """Check the arguments and the target, create the temporary block folder.

        Root rank only. Returns the absolute output path, the temporary master and
        block folder names, and the token that names temporaries.
        """
        path = os.path.abspath(os.fspath(path))
        parent = os.path.dirname(path)
        if not os.path.isdir(parent):
            raise RecorderError(f"cannot write {path}: the folder {parent} does not exist")
        if os.path.isdir(path):
            raise RecorderError(f"cannot write {path}: it is a folder, not a result file")
        if (blocks := in_block_folder(path)) is not None:
            raise RecorderError(f"cannot write the result {path}: it lies in {blocks}, the "
                                f"block folder of another result; choose a path outside it")
        for target in (path, blocks_dirname(path)):
            if os.path.lexists(target) and not self._overwrite:
                raise RecorderError(f"{target} exists; refusing to overwrite it (use "
                                    f"--overwrite, or overwrite=True, to replace the result)")
        _check_replaceable_blocks(blocks_dirname(path))
        from meshfield.io.checkpoint import is_checkpoint_file
        if os.path.lexists(path) and is_checkpoint_file(path):
            raise RecorderError(f"cannot write the result {path}: the file is a meshfield checkpoint, "
                                "which --overwrite replaces only with another checkpoint; choose another name")
        # --overwrite replaces a result, never someone's data (or the run's own TOML file)
        if os.path.lexists(path) and not is_result_file(path):
            raise RecorderError(f"cannot write the result {path}: the file exists and is not a meshfield "
                                "result (--overwrite replaces only a result); move it away or choose "
                                "another name")
        blocks = blocks_dirname(path)
        if os.path.lexists(blocks) and not os.path.isdir(blocks):
            raise RecorderError(f"cannot write the result {path}: {blocks} exists and is not a result's "
                                "block folder (--overwrite replaces only a result); move it away or "
                                "choose another name")
        if (not isinstance(types, (list, tuple)) or not types
                or not all(isinstance(name, str) and name for name in types)
                or len(set(types)) != len(types)):
            raise RecorderError(f"types = {types!r}: expected a non-empty list of distinct "
                                f"non-empty names")
        if (isinstance(n_records, bool) or not isinstance(n_records, (int, np.integer))
                or n_records < 1):
            raise RecorderError(f"n_records = {n_records!r}: expected an integer >= 1")
        if not (isinstance(record_interval, (int, float, np.number))
                and math.isfinite(record_interval) and record_interval > 0):
            raise RecorderError(f"record_interval = {record_interval!r} ms: expected a "
                                f"finite number > 0")
        if not (isinstance(t0, (int, float, np.number)) and math.isfinite(t0)):
            raise RecorderError(f"t0 = {t0!r} ms: expected a finite number")
        if not isinstance(config, Mapping):
            raise RecorderError(f"config must be a dict, got {type(config).__name__}")
        try:
            self._config_json = json.dumps(config, default=_json_default)
        except (TypeError, ValueError) as exc:
            raise RecorderError(f"config cannot be stored as JSON: {exc}") from exc
        self._meta = _check_meta(meta, "meta", _REQUIRED_META)
        token = f"{os.getpid()}-{secrets.token_hex(8)}"
        tmp_master = f"{path}.tmp-{token}"
        tmp_blocks = f"{blocks_dirname(path)}.tmp-{token}"
        try:
            os.mkdir(tmp_blocks)
        except OSError as exc:
            raise RecorderError(f"cannot write the result {path}: its temporary block folder cannot be "
                                f"created in {parent} ({exc.strerror})") from exc
        return path, tmp_master, tmp_blocks, token

    def _create_block_file(self, flush_every) -> None:
        d = self._decomposition
        local_shape = tuple(int(n) for n in d.local_shape)
        sites = math.prod(local_shape)
        if sites == 0:
            raise RecorderError(f"rank {d.rank} owns no sites (local_shape {local_shape})")
        n_types = len(self.types)
        chunk_records = max(1, min(self.n_records, CHUNK_BYTES // (n_types * sites * 4)))
        if flush_every is None:
            flush_every = chunk_records
        elif (isinstance(flush_every, bool) or not isinstance(flush_every, (int, np.integer))
              or flush_every < 1):
            raise RecorderError(f"flush_every = {flush_every!r}: expected an integer >= 1")
        self.flush_every = int(min(flush_every, self.n_records))
        self._local_shape = local_shape
        self._file = h5py.File(self._rank_path, "w")
        self._file.attrs["rank"] = d.rank
        # The master carries the same id: a reader can tell this run's blocks from
        # those of a later run written to the same name (meshfield.io.result).
        self._file.attrs["run_id"] = self._token
        self._file.attrs["local_start"] = np.array(d.local_start, dtype=np.int64)
        self._file.attrs["local_shape"] = np.array(local_shape, dtype=np.int64)
        self._datasets = []
        for name in RECORD_NAMES:
            # fletcher32: bytes changed after writing fail the read (docs/results.md)
            dataset = self._file.create_dataset(
                name, shape=(self.n_records, n_types, *local_shape), dtype=np.float32,
                chunks=(chunk_records, n_types, *local_shape), fillvalue=np.nan, fletcher32=True)
            dataset.attrs["units"] = "Hz"
            self._datasets.append(dataset)
        self._buffer = np.empty((len(RECORD_NAMES), self.flush_every, n_types, *local_shape),
                                dtype=np.float32)
        self._n_buffered = 0
        self._n_flushed = 0
        self._failure = None  # the exception of a failed write of the block file
        self._appended = {}  # name -> the growing extra dataset of append_extra

    # -- writing -------------------------------------------------------------

    def _require_open(self) -> None:
        if self._state != "open":
            raise RecorderError(f"{self.path}: the recorder is {self._state}")

    def write(self, first_record: int, A_block, Abar_block) -> None:
        """Append records ``first_record .. first_record + k - 1`` of this rank's block.

        Records must arrive in order without gaps. Not collective.

        Parameters
        ----------
        first_record : int
            Index of the first record in the arrays; must equal the number of
            records written so far.
        A_block, Abar_block : numpy.ndarray
            A and Ā (Hz), shape (k, n_types, *local_shape), float64 or float32;
            stored as float32.
        """
        self._require_open()
        expected = self._n_flushed + self._n_buffered
        if first_record != expected:
            raise RecorderError(f"records must arrive in order: expected first_record = "
                                f"{expected}, got {first_record}")
        blocks = (np.asarray(A_block), np.asarray(Abar_block))
        record_shape = (len(self.types), *self._local_shape)
        for label, block in zip(("A_block", "Abar_block"), blocks):
            if block.ndim != 1 + len(record_shape) or block.shape[1:] != record_shape:
                raise RecorderError(f"{label} has shape {block.shape}, expected "
                                    f"(k, {', '.join(map(str, record_shape))})")
        k = blocks[0].shape[0]
        if blocks[1].shape[0] != k:
            raise RecorderError(f"A_block holds {k} records but Abar_block holds "
                                f"{blocks[1].shape[0]}")
        if expected + k > self.n_records:
            raise RecorderError(f"records {expected} .. {expected + k - 1} exceed "
                                f"n_records = {self.n_records}")
        done = 0
        while done < k:
            take = min(k - done, self.flush_every - self._n_buffered)
            for buffer, block in zip(self._buffer, blocks):
                buffer[self._n_buffered:self._n_buffered + take] = block[done:done + take]
            self._n_buffered += take
            done += take
            if self._n_buffered == self.flush_every:
                self._flush()

    def _flush(self) -> None:
        start, stop, n = self._n_flushed, self._n_flushed + self._n_buffered, self._n_buffered

        def write() -> None:
            for dataset, buffer in zip(self._datasets, self._buffer):
                dataset[start:stop] = buffer[:n]

        self._write(write)
        self._n_flushed = stop
        self._n_buffered = 0

    def sync(self, t_ms: float | None = None) -> None:
        """Push what HDF5 holds of this rank's block file to the disk; raise on every
        rank if any rank's block file could not be written (a full disk or an
        exceeded quota).

        Records still in the recorder's own buffer (``flush_every`` records, about
        1 MiB per rank) go to HDF5 when it fills, so a failure shows at the first
        sync after the buffer that could not be written: a long run stops there
        instead of computing to its end and discarding the output then.
        Collective; call it at the same point of the run on every rank (the simulation does, after each chunk of
        records). ``t_ms``, the simulated time, goes into the message.
        """
        self._require_open()

        def push() -> None:
            self._write(lambda: self._file.flush())
            if self._failure is not None:
                raise self._write_error("" if t_ms is None else f" at t = {t_ms:g} ms")

        try:
            self._all_succeed(push, "writing the block file")
        except BaseException:
            self.abort()
            raise

    def _write(self, action) -> None:
        """Run the HDF5 write ``action`` unless the block file already failed; a
        failure (OSError or RuntimeError from h5py) is set aside, not raised. Not
        collective: the next :meth:`sync` or :meth:`close` raises it on every rank
        (raising here on one rank would leave the others waiting)."""
        if self._failure is not None:
            return
        try:
            action()
        except (OSError, RuntimeError) as exc:
            self._set_aside(exc)

    def _set_aside(self, exc: BaseException) -> None:
        """Note that the block file could not be written. HDF5 keeps data it could not
        write in its cache and crashes when it releases it, also at interpreter exit:
        the handles are kept alive, and :data:`HDF5_WRITE_FAILED` tells the command
        line to exit without that cleanup."""
        global HDF5_WRITE_FAILED
        HDF5_WRITE_FAILED = True
        _UNWRITABLE.append((self._file, self._datasets, list(self._appended.values())))
        self._file, self._datasets, self._appended = None, [], {}
        self._failure = exc

    def _write_error(self, when: str = "") -> RecorderError:
        """A RecorderError naming the block file and the system's reason (e.g. no
        space left on device)."""
        text = str(self._failure)
        reason = next((m.group(1) for m in [re.search(r"error message = '([^']*)'", text)] if m), None)
        return RecorderError(f"cannot write the block file {self._rank_path}{when}: "
                             f"{reason or hdf5_text(self._failure)}; the output is discarded")

    def write_extra(self, name: str, array, attrs: dict | None = None) -> None:
        """Store an additional array of this rank (e.g. micro spike trains).

        It lands in the block file as ``extra/<name>`` and is linked from the master
        as ``extra/<name>/rankNNNNN``; ranks may write different lengths, and
        ranks without data may skip the call. Not collective.

        Parameters
        ----------
        name : str
            Dataset name, without '/'; each name once per rank.
        array : array_like
            Any shape and numeric dtype.
        attrs : dict, optional
            Attributes of the dataset (e.g. ``{"units": "ms"}``); values as for
            ``meta``.
        """
        checked = self._check_extra(name, attrs)

        def write() -> None:
            group = self._file.require_group("extra")
            if name in group:
                raise RecorderError(f"extra dataset {name!r} was already written by rank "
                                    f"{self._decomposition.rank}")
            data = np.asarray(array)
            # Checksummed as the records are; HDF5 filters need chunks, which
            # need at least one element.
            dataset = group.create_dataset(name, data=data, chunks=True if data.size else None,
                                           fletcher32=data.size > 0)
            for key, value in checked.items():
                dataset.attrs[key] = value

        self._write(write)

    def append_extra(self, name: str, array, attrs: dict | None = None) -> None:
        """Append rows to an additional array of this rank, written as they come.

        For data that grows with the run (the micro level's spike trains and
        membrane potentials): the rows go to the block file at once, so the
        memory they take is that of one call, not that of the whole run. The
        first call creates ``extra/<name>`` (as :meth:`write_extra` does, chunked
        along the first axis with the fletcher32 checksum) with the attributes
        ``attrs``; later calls append along the first axis and must give the
        same trailing shape and dtype. A call with no rows creates the dataset
        empty. Not collective.

        Parameters
        ----------
        name : str
            Dataset name, without '/'; not also given to :meth:`write_extra`.
        array : array_like
            At least one axis; the rows to append along the first.
        attrs : dict, optional
            Attributes, taken at the first call.
        """
        checked = self._check_extra(name, attrs)
        data = np.asarray(array)
        if data.ndim < 1 or 0 in data.shape[1:]:
            raise RecorderError(f"extra dataset {name!r}: expected rows along the first axis and no empty "
                                f"trailing axis, got shape {data.shape}")
        dataset = self._appended.get(name)
        if dataset is not None and (dataset.shape[1:] != data.shape[1:] or dataset.dtype != data.dtype):
            raise RecorderError(f"extra dataset {name!r}: rows of shape {data.shape[1:]} and dtype {data.dtype} "
                                f"cannot extend rows of shape {dataset.shape[1:]} and dtype {dataset.dtype}")

        def write() -> None:
            target = self._appended.get(name)
            if target is None:
                group = self._file.require_group("extra")
                if name in group:
                    raise RecorderError(f"extra dataset {name!r} was already written by rank "
                                        f"{self._decomposition.rank}")
                row_bytes = data.dtype.itemsize * math.prod(data.shape[1:])
                target = group.create_dataset(name, shape=(0, *data.shape[1:]), dtype=data.dtype,
                                              maxshape=(None, *data.shape[1:]), fletcher32=True,
                                              chunks=(max(1, CHUNK_BYTES // row_bytes), *data.shape[1:]))
                for key, value in checked.items():
                    target.attrs[key] = value
                self._appended[name] = target
            n = target.shape[0]
            if len(data):
                target.resize(n + len(data), axis=0)
                target[n:] = data

        self._write(write)

    def _check_extra(self, name, attrs) -> dict:
        """Check an extra dataset's name and attributes; return the attributes."""
        self._require_open()
        if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
            raise RecorderError(f"extra dataset name {name!r}: expected a non-empty name "
                                f"without '/'")
        return _check_meta(attrs or {}, f"attrs of extra dataset {name!r}")

    # -- finishing -------------------------------------------------------------

    def close(self, wall_time: float, extra_meta: dict | None = None) -> None:
        """Complete the result and move it into place at ``path``.

        Collective. Flushes and closes the block files; the root rank writes the
        master and renames both into place (replacing an old result only with
        ``overwrite=True``). On failure every rank raises and the output is
        discarded; an invalid ``extra_meta`` raises first and leaves the recorder
        open.

        Parameters
        ----------
        wall_time : float
            Wall-clock duration of the run (s), stored as ``meta['wall_time']``.
        extra_meta : dict, optional
            More metadata known only at the end (the root rank's copy is stored).
        """
        self._require_open()
        self._decomposition.root_decides(lambda: self._meta.update(
            _check_meta(extra_meta or {}, "extra_meta")), RecorderError)
        try:
            self._all_succeed(self._finish_block_file, "finishing the block file")
            self._decomposition.root_decides(lambda: self._publish(float(wall_time)), RecorderError)
        except BaseException:
            self.abort()
            raise
        self._state = "closed"
        _UNFINISHED.pop(self._token, None)

    def _finish_block_file(self) -> None:
        n_recorded = self._n_flushed + self._n_buffered
        if n_recorded != self.n_records:
            raise RecorderError(f"rank {self._decomposition.rank} wrote {n_recorded} of "
                                f"n_records = {self.n_records} records; output discarded")
        self._flush()
        self._write(lambda: self._file.close())
        if self._failure is not None:
            raise self._write_error() from self._failure
        self._file = None
        _fsync(self._rank_path)

    def _read_blocks(self) -> list[tuple[tuple, tuple, list]]:
        """Return (local_start, local_shape, extra names) of every rank's block file."""
        blocks = []
        for rank in range(self._decomposition.size):
            with h5py.File(os.path.join(self._tmp_blocks, rank_filename(rank)), "r") as f:
                extra = sorted(f["extra"]) if "extra" in f else []
                blocks.append((tuple(int(n) for n in f.attrs["local_start"]),
                               tuple(int(n) for n in f.attrs["local_shape"]), extra))
        global_shape = tuple(int(n) for n in self._decomposition.global_shape)
        # Bounds plus the site count: with blocks from a partition this proves
        # that the virtual datasets cover every site.
        for rank, (start, shape, _) in enumerate(blocks):
            if len(start) != len(global_shape) or any(
                    s < 0 or s + n > g for s, n, g in zip(start, shape, global_shape)):
                raise RecorderError(f"rank {rank}'s block (start {start}, shape {shape}) "
                                    f"lies outside the lattice {global_shape}")
        if sum(math.prod(shape) for _, shape, _ in blocks) != math.prod(global_shape):
            raise RecorderError(f"the blocks of the {len(blocks)} ranks do not tile the "
                                f"lattice {global_shape}")
        return blocks

    def _publish(self, wall_time: float) -> None:
        """Write the master file and rename the result into place. Root rank only."""
        blocks = self._read_blocks()
        d = self._decomposition
        global_shape = tuple(int(n) for n in d.global_shape)
        n_types = len(self.types)
        folder = os.path.basename(blocks_dirname(self.path))
        # The 1.10 format (which virtual datasets need anyway) stores attributes
        # beyond 64 KiB, such as the JSON of a large configuration.
        with h5py.File(self._tmp_master, "w", libver="v110") as f:
            f.attrs["format"] = FORMAT_NAME
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["types"] = np.array(self.types, dtype=h5py.string_dtype())
            f.attrs["config_json"] = self._config_json
            f.attrs["run_id"] = self._token
            times = f.create_dataset(
                "times", data=self.t0 + self.record_interval * np.arange(self.n_records),
                chunks=True, fletcher32=True)
            times.attrs["units"] = "ms"
            for name in RECORD_NAMES:
                layout = h5py.VirtualLayout(shape=(self.n_records, n_types, *global_shape),
                                            dtype=np.float32)
                for rank, (start, shape, _) in enumerate(blocks):
                    # Relative source paths resolve against the master's folder, so
                    # the pair can be moved.
                    # HDF5 reads "%" in a source file name as a format character.
                    source = h5py.VirtualSource(f"{folder}/{rank_filename(rank)}".replace("%", "%%"), name,
                                                shape=(self.n_records, n_types, *shape),
                                                dtype=np.float32)
                    sites = tuple(slice(s, s + n) for s, n in zip(start, shape))
                    layout[(slice(None), slice(None), *sites)] = source
                dataset = f.create_virtual_dataset(name, layout, fillvalue=np.nan)
                dataset.attrs["units"] = "Hz"
            meta = f.create_group("meta")
            for key, value in {
                **self._meta,
                "version": meshfield.__version__,
                "ranks": d.size,
                "dims": np.array(d.dims, dtype=np.int64),
                "global_shape": np.array(global_shape, dtype=np.int64),
                "record_interval": self.record_interval,
                "t0": self.t0,
                "n_records": self.n_records,
                "wall_time": wall_time,
                "created": datetime.now(timezone.utc).astimezone().isoformat(
                    timespec="seconds"),
                "hostname": socket.gethostname(),
                "command": shlex.join(sys.argv),
            }.items():
                meta.attrs[key] = value
            for rank, (_, _, extra) in enumerate(blocks):
                for name in extra:
                    f[f"extra/{name}/{rank_filename(rank).removesuffix('.h5')}"] = (
                        h5py.ExternalLink(f"{folder}/{rank_filename(rank)}", f"/extra/{name}"))
        _fsync(self._tmp_master)
        self._move_into_place()

    def _move_into_place(self) -> None:
        final_blocks = blocks_dirname(self.path)
        existing = [p for p in (self.path, final_blocks) if os.path.lexists(p)]
        if existing and not self._overwrite:
            raise RecorderError(f"{existing[0]} appeared while the run was writing; "
                                f"refusing to overwrite it (use --overwrite, or overwrite=True)")
        _check_replaceable_blocks(final_blocks)
        # The old result is moved aside first and deleted last, so that at every
        # moment a file at self.path is a complete result.
        aside = []
        for old in existing:
            os.rename(old, f"{old}.old-{self._token}")
            aside.append(f"{old}.old-{self._token}")
        os.rename(self._tmp_blocks, final_blocks)
        os.rename(self._tmp_master, self.path)
        _fsync(os.path.dirname(self.path))
        for old in aside:
            if os.path.isdir(old) and not os.path.islink(old):
                shutil.rmtree(old)
            else:
                os.remove(old)

    def abort(self) -> None:
        """Discard this run's output; never touches an existing result at ``path``.

        Not collective: each rank removes its own block file, the root rank also
        the temporary master and block folder. Does nothing after a successful
        :meth:`close`. Safe to call more than once.
        """
        if self._state in ("closed", "aborted"):
            return
        self._state = "aborted"
        _discard(self._file, self._rank_path)
        self._file = None
        if self._decomposition.is_root:
            with suppress(FileNotFoundError):
                os.remove(self._tmp_master)
            shutil.rmtree(self._tmp_blocks, ignore_errors=True)
            _UNFINISHED.pop(self._token, None)

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc_info) -> None:
        if self._state == "open":
            self.abort()
