"""One view of the data every analysis function reads: plain arrays or results.

An analysis function accepts either

* a plain array in the result layout ``[time, type, *lattice]`` (a 1-D array is
  one type at one site, a 2-D array ``[time, type]`` is a single-site lattice),
  plus the record interval in ms, or
* a result object (as returned by ``meshfield.io.open_result``) with attributes
  ``A`` (``[time, type, *lattice]``, Hz), ``types``, ``record_interval`` (ms),
  ``shape`` (lattice shape) and ``config`` (nested dict; ``config["lattice"]``
  holds ``dx`` in mm and ``boundary``).

:class:`Record` hides the difference. It reads the time axis in slices, and
takes a result's records from ``records_of`` (``Result.records``): a large
result file is then never read into memory at once by the block-wise
statistics, which read it in batches of about ``BATCH_ELEMENTS`` values.
"""

from __future__ import annotations

import inspect
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..io.result import records_of

BOUNDARIES = ("periodic", "open")


class AnalysisInputError(ValueError):
    """Input that an analysis function cannot use (shape, units, parameters)."""


@dataclass(frozen=True)
class Record:
    """A record ``[time, type, *lattice]`` with its sampling and geometry.

    Attributes
    ----------
    data : array-like, shape (n_time_total, n_types, *lattice_shape)
        Activity in Hz: a numpy array, or a result file's records read slice by
        slice on demand (``CheckedRecords``, or any object sliced like an array).
    start : int
        Index of the first sample after the discarded transient.
    record_interval : float or None
        Sampling interval in ms (None for an array given without one).
    types : tuple of str
        Type names (``"0", "1", ...`` for plain arrays).
    lattice_shape : tuple of int
        Lattice shape; at least one axis (a single site is ``(1,)``).
    dx : float or None
        Lattice spacing in mm.
    boundary : str or None
        ``"periodic"`` or ``"open"``.
    """

    data: Any
    start: int
    record_interval: float | None
    types: tuple
    lattice_shape: tuple
    dx: float | None
    boundary: str | None

    @property
    def n_time(self) -> int:
        """Number of samples after the discarded transient."""
        return int(self.data.shape[0]) - self.start

    @property
    def n_types(self) -> int:
        return len(self.types)

    @property
    def n_sites(self) -> int:
        return int(np.prod(self.lattice_shape))

    @property
    def duration(self) -> float:
        """Duration in ms of the samples after the transient."""
        return self.n_time * self.need_interval()

    def need_interval(self) -> float:
        """The record interval (ms); an error if an array came without one."""
        if self.record_interval is None:
            raise AnalysisInputError(
                "record_interval (ms) is required for array input; pass "
                "record_interval=<sampling interval of the record in ms>"
            )
        return self.record_interval

    def need_geometry(self) -> tuple[float, str]:
        """``(dx, boundary)``; an error if either is unknown."""
        if self.dx is None:
            raise AnalysisInputError("dx (lattice spacing in mm) is required for array input")
        if self.boundary is None:
            raise AnalysisInputError(
                f"boundary is required for array input; allowed: {', '.join(BOUNDARIES)}"
            )
        return self.dx, self.boundary

    def read(self, i0: int, i1: int, only_type: int | None = None, rows: slice | None = None) -> np.ndarray:
        """Samples ``i0 .. i1-1`` (counted after the transient) as float64, of
        all types or of the type of index ``only_type`` only, and with
        ``only_type`` of the lattice rows ``rows`` only (a slice of the first
        lattice axis).

        Returns
        -------
        ndarray, shape (i1 - i0, n_types, *lattice_shape), or (i1 - i0, *lattice_shape)
            for one type (the first lattice axis cut to ``rows``); a view of a
            float64 array given as ``data``, so never to be changed in place
        """
        times = slice(self.start + i0, self.start + i1)
        if only_type is None:
            block = np.asarray(self.data[times], dtype=np.float64)
            check_finite("A", block, offset=self.start + i0)
            return block.reshape((i1 - i0, self.n_types) + self.lattice_shape)
        shape = self.lattice_shape
        r0 = 0
        if rows is None:
            block = np.asarray(self.data[times, only_type], dtype=np.float64)
        else:
            r0, r1, _ = rows.indices(shape[0])
            if len(self.data.shape) == 2 + len(shape):
                block = np.asarray(self.data[times, only_type, r0:r1], dtype=np.float64)
            elif len(self.data.shape) == 2:  # one site, stored without a lattice axis
                block = np.asarray(self.data[times, only_type], dtype=np.float64)[:, None][:, r0:r1]
            else:  # a result-like object that stores the lattice flat
                row_size = int(np.prod(shape[1:]))
                block = np.asarray(self.data[times, only_type, r0 * row_size: r1 * row_size], dtype=np.float64)
            shape = (r1 - r0,) + shape[1:]
        check_finite("A", block, offset=self.start + i0, type_index=only_type, row_offset=r0)
        return block.reshape((i1 - i0,) + shape)

    def blocks(self, n_blocks: int) -> tuple[int, list[tuple[int, int]]]:
        """Split the record into ``n_blocks`` equal contiguous blocks.

        Returns the block length (samples) and the ``(i0, i1)`` of each block;
        the ``n_time mod n_blocks`` last samples are left out so that all blocks
        have the same weight.
        """
        n_blocks = whole("n_blocks", n_blocks, 2)
        length = self.n_time // n_blocks
        if length < 1:
            raise AnalysisInputError(
                f"n_blocks = {n_blocks} is more than the {self.n_time} samples left after "
                "the discarded transient"
            )
        return length, [(b * length, (b + 1) * length) for b in range(n_blocks)]


# Samples x sites per batch: bounds the memory of the block-wise transforms and
# reads (about 64 MB of complex128) without a Python loop per time step.
BATCH_ELEMENTS = 1 << 22
#: Samples x sites of one type that the transforms along the time axis hold at a
#: time when they go through the lattice in chunks of rows (``psd`` with
#: ``per_site=False``, ``phase_coherence``): 128 MB of float64 input.
CHUNK_ELEMENTS = 1 << 24


def batches(i0: int, i1: int, per_sample: int):
    """``(j0, j1)`` ranges covering samples ``i0 .. i1-1`` in batches of about
    ``BATCH_ELEMENTS`` values, ``per_sample`` values per sample."""
    step = max(1, BATCH_ELEMENTS // max(per_sample, 1))
    for j in range(i0, i1, step):
        yield j, min(j + step, i1)


class ShiftedMoments:
    """Count, sum and sum of squares of samples streamed in batches ``[n, *shape]``.

    The sums run over deviations from a shift (the first sample added),
    which keeps the variance free of the cancellation of ``sum x^2`` against
    ``(sum x)^2`` when the fluctuations are small against the mean: the shift
    lies within the data's spread, so the deviations are of the size of the
    fluctuations.
    """

    def __init__(self) -> None:
        self.n = 0
        self.shift = self.total = self.total_sq = None

    def add(self, x: np.ndarray) -> None:
        """Add the samples ``x[0], x[1], ...`` (an array ``[n, *shape]``)."""
        if len(x) == 0:
            return
        if self.shift is None:
            self.shift = np.array(x[0], dtype=float)
            self.total = np.zeros_like(self.shift)
            self.total_sq = np.zeros_like(self.shift)
        d = x - self.shift
        self.total += d.sum(axis=0)
        np.multiply(d, d, out=d)  # in place: one batch-sized array less at the peak
        self.total_sq += d.sum(axis=0)
        self.n += len(x)

    def mean(self) -> np.ndarray:
        return self.shift + self.total / self.n

    def var(self, ddof: int = 0) -> np.ndarray:
        """Variance about the samples' own mean, with ``n - ddof`` in the denominator."""
        offset = self.total / self.n
        return np.maximum(self.total_sq - offset * self.total, 0.0) / (self.n - ddof)


class Stages:
    """Announces the stages of an analysis, by name, to ``progress(stage, done,
    total)`` (``done`` of the ``total`` stages ``names`` are finished); nothing
    without a ``progress``."""

    def __init__(self, names, progress=None, error: type = AnalysisInputError):
        if progress is not None and not callable(progress):
            raise error(f"progress = {progress!r}: must be a callable progress(stage, done, total) or None")
        self.names = list(names)
        self.progress = progress

    def __call__(self, name: str) -> None:
        if self.progress is not None:
            self.progress(name, self.names.index(name), len(self.names))


#: what to do with a path given where a result is needed
OPEN_FIRST = "open the result first: with meshfield.open_result(path) as res: ...(res)"


def is_path(obj: Any) -> bool:
    """Whether ``obj`` is a file name (given where a result or an array belongs)."""
    return isinstance(obj, (str, bytes, os.PathLike))


def _has(obj: Any, name: str) -> bool:
    """``obj`` has the attribute ``name``, found without calling a property:
    on a result file, ``hasattr(obj, "A")`` would read all of A."""
    try:
        inspect.getattr_static(obj, name)
        return True
    except AttributeError:
        return False


def is_result(obj: Any) -> bool:
    """True for a result object (has ``A`` and ``record_interval``).

    Looks ``A`` up without reading it; a wrapper that supplies attributes
    through ``__getattr__`` is asked for ``records`` (a result file behind it)
    before ``A``.
    """
    if _has(obj, "A"):
        return hasattr(obj, "record_interval")
    if inspect.getattr_static(type(obj), "__getattr__", None) is None:
        return False
    return hasattr(obj, "record_interval") and (callable(getattr(obj, "records", None)) or hasattr(obj, "A"))


def number(name: str, value: Any, what: str, minimum: float | None = None, strict: bool = False,
           error: type = AnalysisInputError) -> float:
    """``value`` as a finite float, or one error naming ``name``, the value and ``what`` is allowed.

    ``minimum`` is a lower bound (excluded with ``strict``).
    """
    try:
        valid = not isinstance(value, (bool, np.bool_, str, bytes)) and math.isfinite(float(value))
    except (TypeError, ValueError, OverflowError):
        valid = False
    if valid:
        result = float(value)
        valid = minimum is None or (result > minimum if strict else result >= minimum)
    if not valid:
        raise error(f"{name} = {value!r}: must be {what}")
    return result


def whole(name: str, value: Any, minimum: int, error: type = AnalysisInputError) -> int:
    """``value`` as an int ``>= minimum`` (an integral float is accepted), or one
    error naming ``name`` and the value."""
    try:
        valid = (not isinstance(value, (bool, np.bool_, str, bytes)) and math.isfinite(float(value))
                 and float(value) == int(value) and int(value) >= minimum)
    except (TypeError, ValueError, OverflowError):
        valid = False
    if not valid:
        raise error(f"{name} = {value!r}: must be a whole number >= {minimum}")
    return int(value)


#: a sample count beyond any record: what a time of 1e300 ms, or the infinity of
#: a ratio that overflows, becomes in samples, so that it meets the check
#: against the record's length instead of an OverflowError
SAMPLES_BEYOND_ANY_RECORD = 2**62


def floor_samples(samples: float) -> int:
    """``floor(samples)`` as an int (the 1e-9 keeps 2.9999999999999996 at 3),
    at most :data:`SAMPLES_BEYOND_ANY_RECORD`."""
    return int(math.floor(min(samples, SAMPLES_BEYOND_ANY_RECORD) + 1e-9))


def ceil_samples(samples: float) -> int:
    """``ceil(samples)`` as an int (the 1e-9 keeps 3.0000000000000004 at 3), at
    most :data:`SAMPLES_BEYOND_ANY_RECORD`."""
    return int(math.ceil(min(samples, SAMPLES_BEYOND_ANY_RECORD) - 1e-9))


def _check_interval(record_interval: Any) -> float | None:
    if record_interval is None:
        return None
    interval = number("record_interval", record_interval, "a positive number of ms", 0.0, strict=True)
    if not (interval / 1000.0 > 0.0 and math.isfinite(1000.0 / interval)):
        # the spectra work in seconds and Hz: 5e-324 ms is 0 s, and its rate infinite
        raise AnalysisInputError(f"record_interval = {record_interval!r}: must be a positive number of ms "
                                 "whose rate, 1000 / record_interval Hz, and length in seconds are "
                                 "finite and non-zero in double precision")
    return interval


def _check_dx(dx: Any) -> float | None:
    if dx is None:
        return None
    return number("dx", dx, "a positive lattice spacing in mm", 0.0, strict=True)


def _check_boundary(boundary: Any) -> str | None:
    if boundary is None:
        return None
    if boundary not in BOUNDARIES:
        raise AnalysisInputError(f"boundary = {boundary!r}: allowed values are {', '.join(BOUNDARIES)}")
    return boundary


def _agree(name: str, given: Any, from_result: Any) -> Any:
    """The result's value, unless the caller gave a different one."""
    if given is not None and from_result is not None and not np.isclose(given, from_result, rtol=1e-12, atol=0.0):
        raise AnalysisInputError(
            f"{name} = {given!r} contradicts the result's {name} = {from_result!r}; leave it out for results"
        )
    return from_result if from_result is not None else given


def as_record(
    obj: Any,
    record_interval: float | None = None,
    discard: float = 0.0,
    dx: float | None = None,
    boundary: str | None = None,
) -> Record:
    """Wrap an array or a result as a :class:`Record`.

    Parameters
    ----------
    obj : array-like or result
        ``[time, type, *lattice]`` (Hz), ``[time, type]`` or ``[time]``; or a
        result object.
    record_interval : float, optional
        Sampling interval in ms (arrays; for a result it must agree if given).
    discard : float
        Initial transient to drop, in ms: the first
        ``ceil(discard / record_interval)`` samples.
    dx : float, optional
        Lattice spacing in mm (arrays; for a result it must agree if given).
    boundary : {"periodic", "open"}, optional
        Boundary condition (arrays; for a result it must agree if given).
    """
    record_interval = _check_interval(record_interval)
    dx = _check_dx(dx)
    boundary = _check_boundary(boundary)
    if is_path(obj):
        raise AnalysisInputError(f"A = {obj!r} is a path; {OPEN_FIRST}")
    if is_result(obj):
        data = records_of(obj, "A")  # a large result file's in slices, on demand
        types = tuple(str(t) for t in obj.types)
        lattice = getattr(obj, "shape", None)
        lattice = tuple(int(n) for n in (data.shape[2:] if lattice is None else lattice))
        lattice_cfg = (getattr(obj, "config", None) or {}).get("lattice", {})
        record_interval = _agree("record_interval", record_interval, _check_interval(obj.record_interval))
        dx = _agree("dx", dx, _check_dx(lattice_cfg.get("dx")))
        result_boundary = _check_boundary(lattice_cfg.get("boundary"))
        if boundary is not None and result_boundary is not None and boundary != result_boundary:
            raise AnalysisInputError(
                f"boundary = {boundary!r} contradicts the result's boundary = {result_boundary!r}"
            )
        boundary = result_boundary or boundary
        if len(data.shape) < 2 or data.shape[1] != len(types):
            raise AnalysisInputError(
                f"result A has shape {tuple(data.shape)}; expected [time, type, *lattice] with "
                f"{len(types)} types {list(types)}"
            )
        if int(np.prod(data.shape[2:])) != int(np.prod(lattice)):
            raise AnalysisInputError(
                f"result A has shape {tuple(data.shape)}, which does not hold the lattice shape {list(lattice)}"
            )
    else:
        refuse_masked("A", obj)
        data = np.asarray(obj)
        if data.ndim == 0:
            raise AnalysisInputError("A must have a time axis; got a scalar")
        if not (np.issubdtype(data.dtype, np.integer) or np.issubdtype(data.dtype, np.floating)
                or data.dtype == bool):
            raise AnalysisInputError(f"A must hold real numbers (activity in Hz); got dtype {data.dtype}")
        if data.ndim == 1:
            data = data[:, None]
        if data.shape[1] == 0:
            raise AnalysisInputError(f"A has shape {data.shape}: its type axis (axis 1) is empty")
        if data.ndim > 4:
            raise AnalysisInputError(f"A has shape {data.shape}: expected [time, type, *lattice] with 1 or 2 "
                                     f"lattice axes (meshfield lattices are 1-D or 2-D)")
        types = tuple(str(i) for i in range(data.shape[1]))
        lattice = tuple(int(n) for n in data.shape[2:])
    if not lattice:
        lattice = (1,)
    if any(n < 1 for n in lattice):
        raise AnalysisInputError(f"lattice shape {list(lattice)} has an empty axis")
    discard = number("discard", discard, "a non-negative time in ms", 0.0)
    start = 0
    if discard > 0.0:
        if record_interval is None:
            raise AnalysisInputError("discard > 0 needs record_interval (ms) for array input")
        start = ceil_samples(discard / record_interval)
    n_total = int(data.shape[0])
    if n_total - start < 2:
        raise AnalysisInputError(
            f"only {max(n_total - start, 0)} samples remain after discarding {discard} ms of a record of "
            f"{n_total} samples; need at least 2"
        )
    return Record(data, start, record_interval, types, lattice, dx, boundary)


def refuse_masked(name: str, value: Any) -> None:
    """Refuse a numpy masked array: ``np.asarray`` would drop its mask, and the
    statistics would silently include the masked values."""
    if np.ma.isMaskedArray(value):
        raise AnalysisInputError(f"{name} is a masked array; the statistics would include its masked "
                                 "values (np.asarray drops the mask): pass the samples to use, e.g. "
                                 "a slice without them, or fill them explicitly (a.filled(value))")


def real_array(name: str, value: Any) -> np.ndarray:
    """``value`` as a float64 array, refusing a path, a masked array, non-real
    numbers, empty axes and NaN/inf."""
    if is_path(value):
        as_record(value)  # the message for a path
    refuse_masked(name, value)
    array = np.asarray(value)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
            or array.dtype == bool):
        raise AnalysisInputError(f"{name} must hold real numbers; got dtype {array.dtype}")
    if 0 in array.shape:
        raise AnalysisInputError(f"{name} has shape {array.shape}, with an empty axis")
    check_finite(name, array)
    return array.astype(np.float64)


def check_finite(name: str, values, offset: int = 0, type_index: int | None = None, row_offset: int = 0) -> None:
    """One error naming ``name`` if ``values`` holds NaN or infinity.

    The message gives the index of the first such value, its time index shifted
    by ``offset`` (for a slice of a longer record) and, for one type's slice
    ``[time, *lattice]`` of a record, with ``type_index`` put in as its second
    and the first lattice index shifted by ``row_offset`` (a slice of rows).
    """
    values = np.asarray(values)
    if values.dtype == bool or np.issubdtype(values.dtype, np.integer):
        return
    finite = np.isfinite(values)
    if not finite.all():
        where = [int(i) for i in np.unravel_index(int(np.argmin(finite)), values.shape)]
        if where:
            where[0] += offset
        if len(where) > 1:
            where[1] += row_offset
        if type_index is not None:
            where.insert(1, type_index)
        raise AnalysisInputError(
            f"{name} holds non-finite values (NaN or inf): {values[~finite][0]} at index {tuple(where)}; "
            "the statistics need finite values"
        )


def onset_discard(ms: float, *results) -> float:
    """The transient the command line discards by default: ``ms`` where a
    result's run started at t = 0 (the onset transient of its initial
    condition), 0 where every result continues a run from a checkpoint (its
    first record starts later, and it has no onset transient). An array (no
    ``times``) counts as starting at 0."""
    def start(result) -> float:
        times = getattr(result, "times", None)
        return float(times[0]) if times is not None and len(times) else 0.0
    return float(ms) if any(start(result) <= 0.0 for result in results) else 0.0


def type_index(record: Record, which: int | str) -> int:
    """Index of a type given by name or index."""
    if isinstance(which, str):
        if which not in record.types:
            raise AnalysisInputError(f"type {which!r} not found; types are {list(record.types)}")
        return record.types.index(which)
    if isinstance(which, (bool, np.bool_)) or not isinstance(which, (int, np.integer)) \
            or not -record.n_types <= which < record.n_types:
        raise AnalysisInputError(
            f"type {which!r}: must be a type name ({', '.join(record.types)}) or an index "
            f"from {-record.n_types} to {record.n_types - 1}"
        )
    return int(which) % record.n_types
