"""Checkpoints: the whole dynamic state of a run in one HDF5 file (MODEL.md §7).

Every array of a checkpoint is indexed by *global* lattice site, so a run can be
restarted on any number of ranks and any process grid and continue bitwise
identically. The ranks send their blocks to the root rank, which alone writes the
file (no parallel HDF5 needed); readers take the hyperslab of their own block.

File layout (format ``"meshfield-checkpoint"``, version 1)
----------------------------------------------------------
Datasets
    One per state array, at the array's name; a name with ``/`` lies in HDF5
    groups (``"meso/y"`` is the dataset ``y`` of the group ``meso``). Shape
    ``global_shape + trailing``: the leading axes are the lattice sites, the
    trailing axes (types, history slots, ...) are those of the arrays passed to
    :func:`write_checkpoint`. Uncompressed, in the dtype written (bool, integer,
    float or complex), so every value is stored exactly. Chunked (:func:`_chunks`:
    whole trailing axes and as many sites as fit in 1 MiB, at most the writer's
    smallest block) with HDF5's fletcher32 checksum filter, so that bytes
    changed after writing are found when read (:func:`read_checkpoint` refuses
    the file naming the dataset). A dataset with no elements is contiguous and
    unfiltered (it stores no bytes).
    Checkpoints written before the checksums were added have contiguous,
    unfiltered datasets and are read as before, without that check; both are
    version 1 (any HDF5 reads fletcher32, so older meshfield reads the new ones).
Root attributes set by the writer
    ``format`` (str)
        ``"meshfield-checkpoint"``.
    ``version`` (int)
        Layout version, 1; readers refuse newer versions.
    ``global_shape`` (int64 array)
        Lattice shape in sites.
    ``names`` (JSON list of str)
        The array names, in the root rank's order.
    ``ranks`` (int)
        Number of ranks that wrote the checkpoint.
    ``dims`` (int64 array)
        Their process grid, ranks per axis.
    ``json_attrs`` (JSON list of str)
        Keys of the root attributes stored as JSON strings; the readers decode
        them and do not return this key itself.
Root attributes of the caller
    The ``attrs`` of :func:`write_checkpoint` (the root rank's copy): str, bool,
    float and int (int64 range) are stored as HDF5 attributes of that type; all
    other values (dicts, lists, tuples, None, larger ints) as JSON strings listed
    in ``json_attrs``. A tuple is read back as a list.

The readers return integer arrays (``global_shape``, ``dims``) as lists of int.

Publication is atomic: the root writes ``<path>.tmp-<token>`` in the target
folder, fsyncs it and renames it onto ``path``, so a file at ``path`` is always a
complete checkpoint. A temporary left by a killed job (``*.tmp-*``) can be
deleted.

Communication goes through the decomposition (``comm``, ``is_root``, ``bcast``);
large blocks travel with buffer-based sends of at most 1 GiB each, so blocks of
any size can be sent.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import tempfile
from collections.abc import Mapping

import h5py
import numpy as np

from meshfield._agreed import agreed
from meshfield.io._hdf5 import CHUNK_BYTES, READ_ERRORS, fails_checksum, hdf5_text
from meshfield.io.recorder import _check_attr_key, _discard, _fsync, _json_default
from meshfield.io.result import _decode_attrs as _plain_attrs, in_block_folder, is_result_file

__all__ = [
    "FORMAT",
    "VERSION",
    "CheckpointError",
    "check_checkpoint_target",
    "write_checkpoint",
    "read_checkpoint_attrs",
    "read_checkpoint",
]

FORMAT = "meshfield-checkpoint"
VERSION = 1

_RESERVED_ATTRS = ("format", "version", "global_shape", "names", "ranks", "dims",
                   "json_attrs")
# Storable exactly; object and string arrays are not state arrays.
_ARRAY_KINDS = "biufc"
# One message per at most this many bytes keeps every MPI count below 2**31.
_MESSAGE_BYTES = 1 << 30
# Distinct from the halo exchange's tags on the same communicator.
_TAG = 7411
_INT64 = np.iinfo(np.int64)


class CheckpointError(ValueError):
    """A checkpoint that cannot be written, or a path that is not a readable checkpoint."""


def check_checkpoint_target(path, overwrite: bool = False) -> str:
    """Check that a checkpoint can be written at ``path``.

    Pure; run it on the root rank before a simulation starts, so that a run does
    not fail at its first checkpoint.

    Parameters
    ----------
    path : str or os.PathLike
        Checkpoint file; its parent folder must exist.
    overwrite : bool
        Whether an existing file at ``path`` may be replaced.

    Returns
    -------
    str
        The absolute path.

    Raises
    ------
    CheckpointError
        If the parent folder does not exist, ``path`` is a folder, lies in a
        result's block folder, or exists and ``overwrite`` is false or it is
        not a checkpoint.
    """
    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise CheckpointError(f"cannot write the checkpoint {path}: the folder {parent} "
                              f"does not exist")
    if os.path.isdir(path):
        raise CheckpointError(f"cannot write the checkpoint {path}: it is a folder")
    if (blocks := in_block_folder(path)) is not None:
        raise CheckpointError(f"cannot write the checkpoint {path}: it lies in {blocks}, "
                              f"the block folder of a result; choose a path outside it")
    if os.path.lexists(path) and not overwrite:
        raise CheckpointError(f"{path} exists; refusing to overwrite it (use --overwrite, "
                              f"or overwrite=True, to replace the checkpoint)")
    if os.path.lexists(path) and is_result_file(path):
        raise CheckpointError(f"cannot write the checkpoint {path}: the file is a meshfield result, "
                              "which --overwrite replaces only with another result; choose another name")
    if os.path.lexists(path) and not is_checkpoint_file(path):
        raise CheckpointError(f"cannot write the checkpoint {path}: the file exists and is not a meshfield "
                              "checkpoint (--overwrite replaces only a checkpoint); move it away or choose "
                              "another name")
    # Write to the folder now rather than find out after the whole run.
    try:
        probe = tempfile.NamedTemporaryFile(dir=parent, prefix=".meshfield-write-test-")
        probe.close()
    except OSError as exc:
        raise CheckpointError(f"cannot write the checkpoint {path}: the folder {parent} is not "
                              f"writable ({exc.strerror or exc})") from None
    return path


def _text(value) -> str | None:
    return value.decode() if isinstance(value, bytes) else value if isinstance(value, str) else None


def is_checkpoint_file(path: str) -> bool:
    """True if ``path`` is a meshfield checkpoint (an HDF5 file with the checkpoint's
    attributes), so a result may not replace it."""
    try:
        with h5py.File(path, "r") as f:
            return _text(f.attrs.get("format")) == FORMAT
    except OSError:
        return False


# -- writing -----------------------------------------------------------------


def _check_name(name) -> str:
    """Return ``name`` if it is a valid relative HDF5 path, else raise CheckpointError."""
    if not isinstance(name, str) or not name:
        raise CheckpointError(f"array name {name!r}: expected a non-empty string")
    if any(part in ("", ".", "..") for part in name.split("/")):
        raise CheckpointError(f"array name {name!r}: expected names like 'y' or 'meso/y' "
                              f"(no leading, trailing or doubled '/', no '.' or '..' parts)")
    return name


def _prepare_blocks(arrays, decomposition) -> dict[str, np.ndarray]:
    """Return this rank's arrays, contiguous, keyed by name; raise CheckpointError.

    Everything that could fail before the transfer happens here, so that the
    transfer itself cannot fail on a sending rank.
    """
    if not isinstance(arrays, Mapping):
        raise CheckpointError(f"arrays must be a dict of name -> array, got "
                              f"{type(arrays).__name__}")
    local_shape = tuple(int(n) for n in decomposition.local_shape)
    blocks = {}
    for name, value in arrays.items():
        _check_name(name)
        block = np.ascontiguousarray(value)
        if block.dtype.kind not in _ARRAY_KINDS:
            raise CheckpointError(f"array {name!r} has dtype {block.dtype}; allowed are "
                                  f"bool, integer, float and complex dtypes")
        if block.shape[:len(local_shape)] != local_shape:
            raise CheckpointError(f"array {name!r} has shape {block.shape}; its leading "
                                  f"axes must equal this rank's local_shape {local_shape}")
        blocks[name] = block
    for name in blocks:
        for other in blocks:
            if other.startswith(name + "/"):
                raise CheckpointError(f"array names {name!r} and {other!r} clash: "
                                      f"{name!r} cannot be both a dataset and a group")
    return blocks


def _summary(decomposition, blocks, failure) -> tuple:
    """What the root needs to know about this rank's block (picklable, small)."""
    specs = None if blocks is None else [
        (name, block.shape[len(decomposition.local_shape):], block.dtype.str)
        for name, block in blocks.items()]
    return (tuple(int(n) for n in decomposition.global_shape),
            tuple(int(n) for n in decomposition.local_start),
            tuple(int(n) for n in decomposition.local_shape),
            specs, failure)


def _ranks_text(ranks: list[int]) -> str:
    return ("rank " if len(ranks) == 1 else "ranks ") + ", ".join(map(str, ranks))


def _check_summaries(summaries: list[tuple]) -> list[tuple[str, tuple, np.dtype]]:
    """Check that the ranks' blocks fit together; return (name, trailing, dtype).

    Pure. ``summaries[r]`` is rank r's ``(global_shape, local_start, local_shape,
    specs, failure)``, ``specs`` a list of ``(name, trailing shape, dtype str)``
    and ``failure`` None or the message of the error that rank met. The names are
    returned in rank 0's order.

    Raises
    ------
    CheckpointError
        Naming the ranks and, for mismatched arrays, the array.
    """
    failures = [f"rank {rank}: {failure}" for rank, (*_, failure) in enumerate(summaries)
                if failure is not None]
    if failures:
        raise CheckpointError("; ".join(failures))
    global_shape = summaries[0][0]
    for rank, (shape, start, extent, _, _) in enumerate(summaries):
        if shape != global_shape:
            raise CheckpointError(f"rank {rank} has the lattice {shape}, rank 0 has "
                                  f"{global_shape}")
        if len(start) != len(shape) or len(extent) != len(shape) or any(
                s < 0 or n < 1 or s + n > g for s, n, g in zip(start, extent, shape)):
            raise CheckpointError(f"rank {rank}'s block (start {start}, shape {extent}) "
                                  f"lies outside the lattice {shape}")
    if sum(math.prod(extent) for _, _, extent, _, _ in summaries) != math.prod(global_shape):
        raise CheckpointError(f"the blocks of the {len(summaries)} ranks do not tile the "
                              f"lattice {global_shape}")
    names = [name for name, _, _ in summaries[0][3]]
    for rank, summary in enumerate(summaries):
        theirs = [name for name, _, _ in summary[3]]
        if sorted(theirs) != sorted(names):
            raise CheckpointError(f"the ranks pass different arrays: rank 0 has "
                                  f"{sorted(names)}, rank {rank} has {sorted(theirs)}")
    result = []
    for name in names:
        ranks_by_spec: dict[tuple, list[int]] = {}
        for rank, summary in enumerate(summaries):
            spec = next((tuple(trailing), dtype) for other, trailing, dtype in summary[3]
                        if other == name)
            ranks_by_spec.setdefault(spec, []).append(rank)
        if len(ranks_by_spec) > 1:
            found = " and ".join(
                f"trailing shape {trailing} dtype {np.dtype(dtype)} on {_ranks_text(ranks)}"
                for (trailing, dtype), ranks in ranks_by_spec.items())
            raise CheckpointError(f"array {name!r} must have the same trailing shape and "
                                  f"dtype on every rank, got {found}")
        (trailing, dtype), = ranks_by_spec
        result.append((name, trailing, np.dtype(dtype)))
    return result


def _encode_attrs(attrs) -> tuple[dict, list[str]]:
    """Return ``attrs`` as HDF5 attribute values, and the keys stored as JSON."""
    if not isinstance(attrs, Mapping):
        raise CheckpointError(f"attrs must be a dict, got {type(attrs).__name__}")
    encoded, json_keys = {}, []
    for key, value in attrs.items():
        _check_attr_key("attrs", key, _RESERVED_ATTRS, "the checkpoint writer", CheckpointError)
        if isinstance(value, (bool, np.bool_)):
            encoded[key] = np.bool_(value)
        elif (isinstance(value, (int, np.integer))
              and _INT64.min <= value <= _INT64.max):
            encoded[key] = np.int64(value)
        elif isinstance(value, (float, np.floating)):
            encoded[key] = np.float64(value)
        elif isinstance(value, str):
            encoded[key] = value
        else:
            try:
                encoded[key] = json.dumps(value, default=_json_default)
            except (TypeError, ValueError) as exc:
                raise CheckpointError(f"attrs[{key!r}] = {value!r} cannot be stored: "
                                      f"allowed are JSON-serialisable values ({exc})") from exc
            json_keys.append(key)
    return encoded, json_keys


def _chunks(shape: tuple, block: tuple, itemsize: int) -> tuple | None:
    """Chunk shape of a checkpoint dataset of ``shape``, whose leading axes are
    the lattice sites, written by ranks whose smallest block is ``block`` (sites
    per lattice axis); None for a dataset with no elements (contiguous, nothing
    to check). Pure.

    Starts from one smallest block with whole trailing axes and halves the
    longest lattice axis (the first of equals) until a chunk holds at most
    ``CHUNK_BYTES``; only when one site's state exceeds that are the trailing
    axes halved too, longest first. So a chunk holds whole sites, and it never
    spans more than two blocks along an axis: the root writes the blocks one at
    a time, and a chunk that several blocks share is read back, merged and
    checksummed again for each of them (equal blocks, whose starts are
    multiples of the chunk, share none).
    """
    if math.prod(shape) == 0:
        return None
    n_sites_axes = len(block)
    chunk = [min(int(b), int(n)) for b, n in zip(block, shape)] + list(shape[n_sites_axes:])
    while math.prod(chunk) * itemsize > CHUNK_BYTES:
        axes = [i for i in range(n_sites_axes) if chunk[i] > 1] or [
            i for i in range(len(chunk)) if chunk[i] > 1]
        longest = max(axes, key=lambda i: chunk[i])
        chunk[longest] = -(-chunk[longest] // 2)
    return tuple(chunk)


class _RootWriter:
    """The root rank's side of :func:`write_checkpoint`: the temporary file.

    Checks the ranks' summaries, the attributes and the target, then creates the
    temporary file with all datasets and attributes. ``arrays`` lists
    ``(name, trailing shape, dtype)`` in the order the blocks are sent.
    """

    def __init__(self, path, decomposition, summaries, attrs, overwrite):
        self.path = check_checkpoint_target(path, overwrite)
        self._overwrite = overwrite
        self._decomposition = decomposition
        self._summaries = summaries
        try:
            self.arrays = _check_summaries(summaries)
            encoded, json_keys = _encode_attrs(attrs)
        except CheckpointError as exc:
            raise CheckpointError(f"cannot write the checkpoint {self.path}: {exc}") from exc
        self._tmp = f"{self.path}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
        global_shape = summaries[0][0]
        self._file = None
        try:
            # The 1.10 format stores attributes beyond 64 KiB (a large config).
            self._file = h5py.File(self._tmp, "x", libver="v110")
            smallest = tuple(min(extent[axis] for _, _, extent, _, _ in summaries)
                             for axis in range(len(global_shape)))
            for name, trailing, dtype in self.arrays:
                shape = global_shape + trailing
                chunks = _chunks(shape, smallest, dtype.itemsize)
                self._file.create_dataset(name, shape=shape, dtype=dtype, chunks=chunks,
                                          fletcher32=chunks is not None)
            for key, value in encoded.items():
                self._file.attrs[key] = value
            self._file.attrs["format"] = FORMAT
            self._file.attrs["version"] = VERSION
            self._file.attrs["global_shape"] = np.array(global_shape, dtype=np.int64)
            self._file.attrs["names"] = json.dumps([name for name, _, _ in self.arrays])
            self._file.attrs["ranks"] = np.int64(decomposition.size)
            self._file.attrs["dims"] = np.array(decomposition.dims, dtype=np.int64)
            self._file.attrs["json_attrs"] = json.dumps(json_keys + ["names"])
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        """Close and delete the temporary file; never touches ``path``."""
        _discard(self._file, self._tmp)
        self._file = None

    def _region(self, rank: int) -> tuple[slice, ...]:
        _, start, extent, _, _ = self._summaries[rank]
        return tuple(slice(s, s + n) for s, n in zip(start, extent))

    def collect(self, own_blocks: dict[str, np.ndarray]) -> None:
        """Write the root's blocks, receive and write every other rank's, publish.

        Every message is received even after a failure, so that no sending rank
        is left waiting; the first failure is raised at the end, after the
        temporary file has been deleted.
        """
        comm = self._decomposition.comm
        failure = None
        try:
            for name, _, _ in self.arrays:
                self._file[name][self._region(0)] = own_blocks[name]
        except Exception as exc:  # the other ranks' messages must still be received
            failure = exc
        for rank in range(1, len(self._summaries)):
            extent = self._summaries[rank][2]
            for name, trailing, dtype in self.arrays:
                block = None
                if failure is None:
                    try:
                        block = np.empty(extent + trailing, dtype=dtype)
                    except MemoryError as exc:
                        failure = exc
                nbytes = math.prod(extent + trailing) * dtype.itemsize
                _receive(comm, rank, nbytes, None if block is None else
                         block.reshape(-1).view(np.uint8))
                if failure is None:
                    try:
                        self._file[name][self._region(rank)] = block
                    except Exception as exc:  # keep receiving, see above
                        failure = exc
        try:
            if failure is not None:
                raise failure
            self._publish()
        except BaseException:
            self.discard()
            raise

    def _publish(self) -> None:
        self._file.close()
        self._file = None
        _fsync(self._tmp)
        if os.path.lexists(self.path) and not self._overwrite:
            raise CheckpointError(f"{self.path} appeared while the checkpoint was written; "
                                  f"refusing to overwrite it (use --overwrite, or "
                                  f"overwrite=True)")
        os.replace(self._tmp, self.path)
        _fsync(os.path.dirname(self.path))


def _send(comm, block: np.ndarray) -> None:
    data = block.reshape(-1).view(np.uint8)
    for offset in range(0, data.size, _MESSAGE_BYTES):
        comm.Send(data[offset:offset + _MESSAGE_BYTES], dest=0, tag=_TAG)


def _receive(comm, source: int, nbytes: int, into: np.ndarray | None) -> None:
    """Receive ``nbytes`` sent by :func:`_send` into the byte array ``into``, or
    discard them when ``into`` is None."""
    scratch = None if into is not None else np.empty(min(_MESSAGE_BYTES, nbytes),
                                                     dtype=np.uint8)
    for offset in range(0, nbytes, _MESSAGE_BYTES):
        size = min(_MESSAGE_BYTES, nbytes - offset)
        buffer = scratch[:size] if into is None else into[offset:offset + size]
        comm.Recv(buffer, source=source, tag=_TAG)


def _describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, CheckpointError) else f"{type(exc).__name__}: {exc}"


def _message(exc: BaseException, path) -> str:
    if isinstance(exc, CheckpointError):
        return str(exc)
    return f"writing the checkpoint {path} failed: {_describe(exc)}"


def write_checkpoint(path, decomposition, arrays: dict, attrs: dict,
                     overwrite: bool = False) -> str:
    """Write the state arrays of all ranks as global arrays to one checkpoint file.

    Collective over ``decomposition.comm``: every rank passes its own block of
    every array. The root rank gathers and writes them (layout: module
    docstring) and moves the file into place only when it is complete.

    Parameters
    ----------
    path : str or os.PathLike
        Checkpoint file (the root rank's value counts); its parent folder must
        exist.
    decomposition : Decomposition
        Provides ``comm``, ``rank``, ``size``, ``is_root``, ``bcast``, ``dims``,
        ``global_shape``, ``local_start`` and ``local_shape``.
    arrays : dict of str to numpy.ndarray
        Name -> this rank's block, shape ``local_shape + trailing``; the same
        names, trailing shapes and dtypes (bool, integer, float, complex) on
        every rank. Names may contain ``/`` (HDF5 groups), e.g. ``"meso/y"``.
    attrs : dict
        JSON-serialisable metadata stored as root attributes (the root rank's
        copy); the keys in the module docstring are reserved.
    overwrite : bool
        Replace an existing file at ``path`` (only once the new one is
        complete).

    Returns
    -------
    str
        Absolute path of the checkpoint, on every rank.

    Raises
    ------
    CheckpointError
        On every rank, if any rank's arrays are invalid or differ in names,
        trailing shape or dtype from the others' (the message names the array
        and the ranks), ``attrs`` cannot be stored, the target is refused (see
        :func:`check_checkpoint_target`) or writing fails. No temporary file is
        left behind and an existing checkpoint is kept.

    Notes
    -----
    When the call returns on any rank, the complete file is at ``path``. The
    root writes its own blocks first, then receives each other rank's blocks in
    rank order and array order; besides its own state it holds one block of one
    array at a time.
    """
    d = decomposition
    blocks, failure = None, None
    try:
        blocks = _prepare_blocks(arrays, d)
    except Exception as exc:  # must reach the root, or the others wait in gather
        failure = exc
    summaries = d.comm.gather(
        _summary(d, blocks, None if failure is None else _describe(failure)), root=0)

    # Phase 1: the root checks everything and creates the temporary file; no
    # rank sends data before all know that this succeeded.
    writer, verdict = None, None
    if d.is_root:
        try:
            writer = _RootWriter(path, d, summaries, attrs, bool(overwrite))
            verdict = (None, writer.path, [name for name, _, _ in writer.arrays])
        except Exception as exc:  # must reach the waiting ranks
            failure = failure or exc
            verdict = (_message(exc, path), None, None)
    message, final_path, names = d.bcast(verdict)
    if message is not None:  # on every rank alike
        raise agreed(CheckpointError(message)) from failure

    # Phase 2: the blocks travel to the root in rank order; the root publishes.
    message = None
    if d.is_root:
        try:
            writer.collect(blocks)
        except Exception as exc:  # must reach the waiting ranks
            failure = exc
            message = _message(exc, final_path)
    else:
        for name in names:
            _send(d.comm, blocks[name])
    message = d.bcast(message)
    if message is not None:  # on every rank alike
        raise agreed(CheckpointError(message)) from failure
    return final_path


# -- reading -----------------------------------------------------------------


def _decode_attrs(path: str, file: h5py.File) -> dict:
    """Return the root attributes as plain Python values, JSON strings decoded."""
    try:
        plain = _plain_attrs(file.attrs)
        json_keys = set(json.loads(plain.pop("json_attrs")))
        attrs = {key: json.loads(value) if key in json_keys else value for key, value in plain.items()}
        attrs["global_shape"] = [int(n) for n in attrs["global_shape"]]
        attrs["names"] = [str(name) for name in attrs["names"]]
    except (TypeError, ValueError) + READ_ERRORS as exc:
        raise CheckpointError(f"{path}: damaged checkpoint, its attributes cannot be read "
                              f"({type(exc).__name__}: {exc})") from exc
    return attrs


def _open_checkpoint(path) -> tuple[str, h5py.File, dict]:
    """Open a checkpoint read-only; return its absolute path, the file and its attrs.

    Raises CheckpointError (and closes the file) unless ``path`` is a meshfield
    checkpoint of a version this module reads.
    """
    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path):
        raise CheckpointError(f"{path}: is a folder, not a checkpoint file")
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        file = h5py.File(path, "r")
    except OSError as exc:
        raise CheckpointError(f"{path}: not an HDF5 file, so not a meshfield checkpoint "
                              f"({exc})") from exc
    try:
        try:
            found = file.attrs["format"] if "format" in file.attrs else None
        except READ_ERRORS as exc:  # HDF5's own checksums cover its metadata
            raise CheckpointError(f"{path}: damaged HDF5 file, its root attributes cannot be "
                                  f"read ({hdf5_text(exc)})") from exc
        if isinstance(found, bytes):
            found = found.decode(errors="replace")
        if found != FORMAT:
            raise CheckpointError(f"{path}: not a meshfield checkpoint (its 'format' "
                                  f"attribute is {found!r}, expected {FORMAT!r})")
        try:
            version = file.attrs.get("version")
        except READ_ERRORS as exc:
            raise CheckpointError(f"{path}: damaged checkpoint, its attributes cannot be read "
                                  f"({hdf5_text(exc)})") from exc
        if not isinstance(version, (int, np.integer)) or version < 1:
            raise CheckpointError(f"{path}: damaged checkpoint, its 'version' attribute is "
                                  f"{version!r}, expected an integer >= 1")
        if version > VERSION:
            raise CheckpointError(f"{path}: checkpoint version {int(version)} is newer than "
                                  f"this meshfield reads ({VERSION}); update meshfield")
        return path, file, _decode_attrs(path, file)
    except BaseException:
        file.close()
        raise


def read_checkpoint_attrs(path) -> dict:
    """Return the root attributes of a checkpoint.

    Not collective.

    Parameters
    ----------
    path : str or os.PathLike
        Checkpoint file.

    Returns
    -------
    dict
        The caller's ``attrs`` as written (dicts and lists decoded from JSON,
        tuples as lists) and the writer's ``format``, ``version``,
        ``global_shape`` (list of int), ``names`` (list of str), ``ranks`` and
        ``dims`` (list of int).

    Raises
    ------
    CheckpointError
        If ``path`` does not exist, is a folder, is not an HDF5 file, is not a
        meshfield checkpoint, was written by a newer version or its attributes
        cannot be read (a metadata checksum of HDF5 fails, a JSON string is
        malformed); the message names the path.
    """
    _, file, attrs = _open_checkpoint(path)
    file.close()
    return attrs


def read_checkpoint(path, decomposition=None, into: dict | None = None) -> tuple[dict, dict]:
    """Read the arrays of a checkpoint, whole or this rank's block.

    Not collective: each rank opens the file read-only and reads its own
    hyperslabs, whatever the number of ranks and process grid that wrote it.

    Parameters
    ----------
    path : str or os.PathLike
        Checkpoint file.
    decomposition : Decomposition, optional
        Provides ``global_shape`` and ``local_slices``; without it the whole
        arrays are read.
    into : dict of str to numpy.ndarray, optional
        Arrays to read into, by name (a model's ``state_dict(copy=False)``, so
        that a restart holds the state once, not twice): an array of the shape
        read that is C-contiguous and writeable receives the values, converted
        to its dtype, and is returned as it is; other names are read into new
        arrays.

    Returns
    -------
    arrays : dict of str to numpy.ndarray
        Name -> array of shape ``local_shape + trailing`` (with a
        decomposition) or ``global_shape + trailing``, in the dtype written
        (or that of the array in ``into``).
    attrs : dict
        As :func:`read_checkpoint_attrs` returns them.

    Raises
    ------
    CheckpointError
        As :func:`read_checkpoint_attrs`; also if the checkpoint's lattice differs
        from ``decomposition.global_shape`` (the message names both shapes), a
        listed dataset is missing or has the wrong shape, or HDF5 cannot read
        it: a chunk that fails its fletcher32 checksum ("the dataset 'E/u' fails
        its checksum"), a damaged chunk index. Only the chunks of the block read
        are checked.
    """
    path, file, attrs = _open_checkpoint(path)
    with file:
        global_shape = tuple(attrs["global_shape"])
        if decomposition is None:
            region = ()
        else:
            expected = tuple(int(n) for n in decomposition.global_shape)
            if expected != global_shape:
                raise CheckpointError(f"{path}: the checkpoint holds a lattice of shape "
                                      f"{global_shape}, this run's lattice has shape "
                                      f"{expected}")
            region = tuple(decomposition.local_slices)
        arrays = {}
        for name in attrs["names"]:
            dataset = None
            try:
                # A link whose object HDF5 cannot open (a damaged object header) is
                # not a missing dataset: file.get would say None for both.
                if file.get(name, getlink=True) is not None:
                    dataset = file[name]
                if not isinstance(dataset, h5py.Dataset) or (
                        dataset.shape[:len(global_shape)] != global_shape):
                    found = "missing" if not isinstance(dataset, h5py.Dataset) else (
                        f"of shape {dataset.shape}")
                    raise CheckpointError(f"{path}: damaged checkpoint, the dataset {name!r} "
                                          f"is {found}, expected leading axes {global_shape}")
                target = (into or {}).get(name)
                if _can_receive(target, dataset, region):
                    dataset.read_direct(target, source_sel=region or np.s_[...])
                    arrays[name] = target
                else:
                    arrays[name] = dataset[region]
            except READ_ERRORS as exc:
                raise CheckpointError(_unreadable(path, name, dataset, exc)) from exc
    return arrays, attrs


def _can_receive(target, dataset: h5py.Dataset, region: tuple) -> bool:
    """Whether ``target`` can take the values of ``dataset[region]`` in place."""
    if not (isinstance(target, np.ndarray) and target.flags.c_contiguous and target.flags.writeable):
        return False
    shape = tuple(len(range(*r.indices(n))) for r, n in zip(region, dataset.shape)) + dataset.shape[len(region):]
    return target.shape == shape and target.size > 0 and target.dtype.kind == dataset.dtype.kind


def _unreadable(path: str, name: str, dataset, exc: Exception) -> str:
    """The message for a dataset that HDF5 cannot open or read: a checksum that
    does not match the bytes read, or else HDF5's words (a damaged object header
    or chunk index, which HDF5's metadata checksums find, an I/O error)."""
    if fails_checksum(dataset, exc):
        return (f"{path}: damaged checkpoint, the dataset {name!r} fails its checksum "
                f"(its bytes changed after it was written)")
    return f"{path}: damaged checkpoint, the dataset {name!r} cannot be read ({hdf5_text(exc)})"
