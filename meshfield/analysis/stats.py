"""Mean and variance of activity per type, with batch-means standard errors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._record import ShiftedMoments, as_record, batches

DEFAULT_BLOCKS = 20


@dataclass(frozen=True)
class MeanVar:
    """Mean and variance of the activity per type.

    Attributes
    ----------
    mean : ndarray, shape (n_types,)
        Time- and site-averaged activity, Hz.
    mean_se : ndarray, shape (n_types,)
        Standard error of ``mean`` from batch means (Hz).
    var : ndarray, shape (n_types,)
        Temporal variance of one site's activity, averaged over sites, Hz^2
        (for a single site simply the variance of A).
    var_se : ndarray, shape (n_types,)
        Standard error of ``var`` from the same blocks, Hz^2.
    n_blocks : int
        Number of blocks.
    block_ms : float
        Block duration, ms.
    types : tuple of str
        Type names.
    """

    mean: np.ndarray
    mean_se: np.ndarray
    var: np.ndarray
    var_se: np.ndarray
    n_blocks: int
    block_ms: float
    types: tuple


def mean_var(
    A,
    record_interval: float | None = None,
    discard: float = 0.0,
    n_blocks: int = DEFAULT_BLOCKS,
) -> MeanVar:
    """Mean and variance of the activity per type with batch-means standard errors.

    The record after ``discard`` is split into ``n_blocks`` contiguous blocks of
    equal length (the remainder at the end is left out). Block means of the
    activity, and block means of ``(A(x, t) - mean_x)^2`` with the per-site
    mean over the whole record, are treated as independent samples; the
    standard errors are their standard deviations over ``sqrt(n_blocks)``.

    Block length: the blocks are independent only if each is much longer than
    the correlation time of the activity (for bistable switching: several mean
    dwell times). With blocks of ``L`` and an integrated correlation time
    ``tau`` (the area under the normalized autocorrelation, one side) the
    standard errors come out low by about a factor ``sqrt(1 - tau/L)``: 5 %
    for blocks of 10 ``tau``, 10 % for 5 ``tau``, 40 % for blocks of one
    ``tau`` (Monte Carlo on an Ornstein-Uhlenbeck process). The default of 20
    blocks makes the relative uncertainty of the standard error itself about
    ``1/sqrt(2*19) = 16 %`` and suits records at least ~200 times longer than
    the slowest correlation time (blocks of 10 ``tau``); for shorter records
    choose fewer, longer blocks. ``var`` is taken about the whole record's
    mean and is low by that mean's variance, about ``2 tau / T`` of ``var``
    for a record of ``T``.

    Parameters
    ----------
    A : array, shape (n_time, n_types, *lattice) or (n_time,), or a result
        Activity in Hz.
    record_interval : float, optional
        Sampling interval in ms (needed for arrays when ``discard > 0``, and
        for ``block_ms``).
    discard : float
        Initial transient to drop, ms.
    n_blocks : int
        Number of blocks (>= 2).

    Returns
    -------
    MeanVar
    """
    record = as_record(A, record_interval, discard)
    length, blocks = record.blocks(n_blocks)
    per_sample = record.n_types * record.n_sites

    # One pass over deviations d from the record's first sample (free of the
    # cancellation of sum A^2 against (sum A)^2 when the fluctuations are small
    # against the mean): per block the per-site sums of d and, already summed
    # over the sites, of d^2. Each block's squares about the whole record's
    # per-site mean m follow: sum (d - o)^2 = sum d^2 - 2 o sum d + length o^2,
    # o = m - shift. The memory beyond one batch is that of the block sums, as
    # for any batch-means estimate of a per-site variance.
    n_types, n_sites = record.n_types, record.n_sites
    shift = np.asarray(record.read(0, 1), dtype=float).reshape(n_types, n_sites)
    sums = np.zeros((len(blocks), n_types, n_sites))
    squares = np.zeros((len(blocks), n_types))
    for b, (i0, i1) in enumerate(blocks):
        for j0, j1 in batches(i0, i1, per_sample):
            d = record.read(j0, j1).reshape(j1 - j0, n_types, n_sites) - shift
            sums[b] += d.sum(axis=0)
            np.multiply(d, d, out=d)
            squares[b] += d.sum(axis=(0, 2))
    offset = sums.sum(axis=0) / (length * len(blocks))
    block_mean = shift.mean(axis=1) + sums.mean(axis=2) / length
    cross = np.einsum("bts,ts->bt", sums, offset)
    block_var = np.maximum(squares - 2.0 * cross + length * (offset**2).sum(axis=1), 0.0) / (length * n_sites)
    root_n = np.sqrt(len(blocks))
    block_ms = length * record.record_interval if record.record_interval is not None else float("nan")
    return MeanVar(
        mean=block_mean.mean(axis=0),
        mean_se=block_mean.std(axis=0, ddof=1) / root_n,
        var=block_var.mean(axis=0),
        var_se=block_var.std(axis=0, ddof=1) / root_n,
        n_blocks=len(blocks),
        block_ms=block_ms,
        types=record.types,
    )


@dataclass(frozen=True)
class FanoFactor:
    """Fano factor of the population spike counts per type, for several windows.

    Attributes
    ----------
    windows_ms : ndarray, shape (n_windows,)
        Counting windows, ms.
    fano : ndarray, shape (n_windows, n_types)
        ``var(n) / mean(n)`` of the spike count ``n`` of one population (one site
        and type) in a window, averaged over sites and blocks (dimensionless; 1
        for Poisson counts, ``1 - p`` for binomial ones).
    se : ndarray, shape (n_windows, n_types)
        Standard error of ``fano`` from the blocks.
    n_blocks : int
    block_ms : float
    types : tuple of str
    """

    windows_ms: np.ndarray
    fano: np.ndarray
    se: np.ndarray
    n_blocks: int
    block_ms: float
    types: tuple


def fano_factor(
    A,
    windows_ms,
    N=None,
    record_interval: float | None = None,
    discard: float = 0.0,
    n_blocks: int = 10,
) -> FanoFactor:
    """Fano factor of the population spike counts in windows of ``windows_ms``.

    The count of a population (one site, one type of ``N`` neurons) in a record
    interval is ``A N record_interval / 1000`` (exact for a record interval of one
    step; otherwise the spikes of the interval). Counts are summed over
    consecutive windows; in each of ``n_blocks`` contiguous blocks, the variance
    over the block's windows (with ``n - 1`` in the denominator for ``n``
    windows) divided by their mean is computed per site (sites without spikes
    are left out) and averaged over the sites; the result is the mean over
    blocks, with their standard error. For counts independent from window to
    window (Poisson, binomial) that is unbiased however few windows a block
    holds. Counts correlated across windows (a rate that varies more slowly
    than the window) lose the part of their variance slower than the block,
    so blocks must be long against the rate's correlation time: for a Poisson
    count whose rate follows an Ornstein-Uhlenbeck process of 50 ms, 10-ms
    windows give 1.545, 1.811 and 1.838 with blocks of 4, 40 and 400 times 50 ms.

    Parameters
    ----------
    A : array, shape (n_time, n_types, *lattice) or (n_time,), or a result
        Activity in Hz.
    windows_ms : sequence of float
        Counting windows (ms), each a whole multiple of the record interval.
    N : int or sequence of int, optional
        Neurons per population, one per type (a result supplies them; given
        with a result, they must agree with its configuration).
    record_interval : float, optional
        ms; required for arrays.
    discard : float
        Initial transient to drop, ms.
    n_blocks : int
        Number of blocks for the standard error (>= 2).

    Returns
    -------
    FanoFactor
    """
    from ._record import AnalysisInputError, is_result, number, whole

    record = as_record(A, record_interval, discard)
    interval = record.need_interval()
    populations = ((getattr(A, "config", None) or {}).get("populations") or {}) if is_result(A) else {}
    configured = ([populations[name]["N"] for name in record.types]
                  if all("N" in populations.get(name, {}) for name in record.types) else None)
    if N is None:
        if configured is None:
            raise AnalysisInputError("N (neurons per population, one per type) is required for array input "
                                     "and for a result whose configuration does not give them")
        N = configured
    N = np.atleast_1d(np.asarray(N))
    if N.ndim != 1 or len(N) != record.n_types:
        raise AnalysisInputError(f"N = {N.tolist()!r}: expected one neuron count per type ({record.n_types})")
    N = np.array([whole(f"N[{i}]", n, 1) for i, n in enumerate(N)], dtype=float)
    if configured is not None and N.tolist() != [float(n) for n in configured]:
        # as for record_interval, dx and boundary: a result's own value is the truth
        raise AnalysisInputError(f"N = {[int(n) for n in N]} contradicts the result's neurons per population "
                                 f"{configured}; leave N out for results")
    windows = np.atleast_1d(np.asarray(windows_ms, dtype=object))
    if windows.ndim != 1 or len(windows) == 0:
        raise AnalysisInputError(f"windows_ms = {windows_ms!r}: expected a non-empty list of windows (ms)")
    steps = []
    for w in windows:
        w = number("windows_ms", w, "a window in ms > 0", minimum=0.0, strict=True)
        k = w / interval
        if abs(k - round(k)) > 1e-9 * max(1.0, k):
            raise AnalysisInputError(f"windows_ms = {w:g}: must be a whole multiple of the record "
                                     f"interval ({interval:g} ms)")
        steps.append(int(round(k)))
    length, blocks = record.blocks(n_blocks)
    for k in steps:
        if length // k < 2:
            raise AnalysisInputError(
                f"windows_ms = {k * interval:g}: a block of {length * interval:g} ms holds fewer than two "
                f"windows; use fewer blocks (n_blocks = {len(blocks)}), a longer record or shorter windows")
    scale = N[None, :, None] * interval * 1e-3
    fano = np.empty((len(blocks), len(steps), record.n_types))
    for b, (i0, i1) in enumerate(blocks):
        # the whole windows of the block (the tail shorter than a window is left out)
        moments = [_WindowMoments(k, (record.n_types, record.n_sites)) for k in steps]
        for j0, j1 in batches(i0, i1, record.n_types * record.n_sites):
            counts = record.read(j0, j1).reshape(j1 - j0, record.n_types, record.n_sites) * scale
            for m in moments:
                m.add(counts)
        for j, m in enumerate(moments):
            mean, var = m.mean_var()
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio = np.where(mean > 0, var / mean, np.nan)
            # the mean over the sites with spikes, NaN for a type without any (as
            # np.nanmean, without its warning about such a type)
            finite = np.isfinite(ratio)
            n_sites = finite.sum(axis=1)
            total = np.where(finite, ratio, 0.0).sum(axis=1)
            fano[b, j] = np.where(n_sites > 0, total / np.maximum(n_sites, 1), np.nan)
    return FanoFactor(
        windows_ms=np.array([k * interval for k in steps]),
        fano=fano.mean(axis=0),
        se=fano.std(axis=0, ddof=1) / np.sqrt(len(blocks)),
        n_blocks=len(blocks),
        block_ms=length * interval,
        types=record.types,
    )


class _WindowMoments:
    """Mean and variance over windows of ``k`` samples of counts streamed in
    batches ``[time, *shape]``: the sums of each whole window go to a
    :class:`ShiftedMoments`."""

    def __init__(self, k: int, shape: tuple):
        self.k = k
        self.partial = np.zeros(shape)  # the sum over the open window's samples
        self.filled = 0  # samples in the open window
        self.windows = ShiftedMoments()

    def add(self, x: np.ndarray) -> None:
        k, pos = self.k, 0
        if self.filled:
            pos = min(k - self.filled, len(x))
            self.partial += x[:pos].sum(axis=0)
            self.filled += pos
            if self.filled < k:
                return
            self.windows.add(self.partial[None])
            self.filled = 0
        whole = (len(x) - pos) // k
        if whole:
            self.windows.add(x[pos:pos + whole * k].reshape((whole, k) + x.shape[1:]).sum(axis=1))
            pos += whole * k
        if pos < len(x):
            self.partial = x[pos:].sum(axis=0)
            self.filled = len(x) - pos

    def mean_var(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance (ddof 1) over the whole windows added (at least 2)."""
        return self.windows.mean(), self.windows.var(ddof=1)
