"""Bistable switching: state signal, smoothing, hysteresis thresholds and dwell times.

For two mutually inhibitory populations the state signal is the difference of
their activities, ``A_1 - A_2`` (Hz), smoothed over a window a few times longer
than the synaptic and membrane time constants but well below the dwell times.
The signal is "up" while population 1 dominates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._record import (AnalysisInputError, _check_interval, as_record, batches, floor_samples, is_result, number,
                      real_array, type_index, whole)


class NotBimodalError(AnalysisInputError):
    """The histogram of a signal has no two well-separated modes."""


def _is_index(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _need_interval(record_interval) -> float:
    if record_interval is None:
        raise AnalysisInputError("record_interval (ms) is required for array input")
    return _check_interval(record_interval)


def smooth(a, window_ms: float, record_interval: float | None = None) -> np.ndarray:
    """Centred moving average along the time axis (axis 0).

    Each sample is replaced by the mean of the samples within ``window_ms / 2``
    of it: ``2 h + 1`` samples with ``h = floor(window_ms / (2
    record_interval))``, so a window shorter than two record intervals leaves
    the signal as it is. Near the ends the window shrinks to the samples
    available, so the output has the length of the input and no edge is padded
    with invented values.

    Parameters
    ----------
    a : array, shape (n_time, ...), or a result
        Signal (a result's ``A`` is smoothed).
    window_ms : float
        Window length in ms (0 returns a copy).
    record_interval : float
        Sampling interval in ms (arrays).

    Returns
    -------
    ndarray, shape like ``a`` (float64)
    """
    if is_result(a):
        record = as_record(a, record_interval)
        a = record.read(0, record.n_time)
        record_interval = record.record_interval
    a = real_array("the signal", a)
    if a.ndim == 0:
        raise AnalysisInputError("smooth needs a signal with a time axis")
    record_interval = _need_interval(record_interval)
    window_ms = number("window_ms", window_ms, "a non-negative time in ms", 0.0)
    # floor, not round: Python's round takes halves to even, so 3, 4 and 5
    # record intervals all averaged 5 samples and 1.5 averaged 3
    half = floor_samples(window_ms / (2.0 * record_interval))
    if half == 0:
        return a.copy()
    n = a.shape[0]
    cumulative = np.concatenate([np.zeros((1,) + a.shape[1:]), np.cumsum(a, axis=0)])
    index = np.arange(n)
    hi = np.minimum(index + half + 1, n)
    lo = np.maximum(index - half, 0)
    count = (hi - lo).reshape((n,) + (1,) * (a.ndim - 1))
    return (cumulative[hi] - cumulative[lo]) / count


def bistable_signal(
    A,
    record_interval: float | None = None,
    populations=None,
    window_ms: float = 0.0,
    discard: float = 0.0,
) -> np.ndarray:
    """The state signal ``A_1 - A_2`` of a pair of competing populations, in Hz.

    Parameters
    ----------
    A : array, shape (n_time, n_types, *lattice), or a result
        Activity in Hz.
    record_interval : float, optional
        ms (arrays; needed when ``window_ms`` or ``discard`` is non-zero).
    populations : pair, optional
        ``(p1, p2)``; each a type (name or index; its activity averaged over
        all sites) or ``(type, site)`` with ``site`` a flat site index or a
        tuple of lattice indices. Default: the two types when there are two,
        else the two sites of a one-type, two-site lattice.
    window_ms : float
        Smoothing window, ms (see :func:`smooth`).
    discard : float
        Initial transient to drop, ms.

    Returns
    -------
    ndarray, shape (n_time_after_discard,)
    """
    window_ms = number("window_ms", window_ms, "a non-negative time in ms", 0.0)
    record = as_record(A, record_interval, discard)
    if populations is None:
        if record.n_types == 2:
            populations = (0, 1)
        elif record.n_types == 1 and record.n_sites == 2:
            populations = ((0, 0), (0, 1))
        else:
            raise AnalysisInputError(
                f"populations must be given for {record.n_types} types on {record.n_sites} sites: "
                "a pair (p1, p2) of types or (type, site)"
            )
    if isinstance(populations, np.ndarray) and populations.ndim in (1, 2):
        populations = tuple(populations.tolist())  # np.array([0, 1]) as (0, 1)
    if isinstance(populations, (str, bytes)) or not isinstance(populations, (tuple, list)) or len(populations) != 2:
        raise AnalysisInputError(
            f"populations = {populations!r}: must be a pair (p1, p2) of types (name or index) or (type, site)"
        )
    chosen = []
    for p in populations:
        if isinstance(p, (tuple, list)):
            if len(p) != 2:
                raise AnalysisInputError(f"population {p!r}: expected (type, site)")
            site = p[1]
            if isinstance(site, (tuple, list, np.ndarray)):
                if len(site) != len(record.lattice_shape) or not all(
                    _is_index(i) and 0 <= i < n for i, n in zip(site, record.lattice_shape)
                ):
                    raise AnalysisInputError(f"site {site!r} is not on the lattice {list(record.lattice_shape)}")
                site = int(np.ravel_multi_index(tuple(int(i) for i in site), record.lattice_shape))
            if not (_is_index(site) and 0 <= site < record.n_sites):
                raise AnalysisInputError(
                    f"site {site!r}: must be a flat site index from 0 to {record.n_sites - 1} "
                    f"or a tuple of lattice indices"
                )
            chosen.append((type_index(record, p[0]), int(site)))
        else:
            chosen.append((type_index(record, p), None))
    if chosen[0] == chosen[1]:
        raise AnalysisInputError(f"populations = {populations!r} names the same population twice")
    signals = np.empty((2, record.n_time))
    for i0, i1 in batches(0, record.n_time, record.n_types * record.n_sites):
        x = record.read(i0, i1).reshape(i1 - i0, record.n_types, record.n_sites)
        for k, (t, site) in enumerate(chosen):
            signals[k, i0:i1] = x[:, t].mean(axis=1) if site is None else x[:, t, site]
    difference = signals[0] - signals[1]
    if window_ms > 0:
        difference = smooth(difference, window_ms, record.need_interval())
    return difference


@dataclass(frozen=True)
class DwellTimes:
    """Dwell times of a two-state signal.

    Attributes
    ----------
    up, down : ndarray
        Complete dwell times in the up and down states, ms (the partial dwells
        at the start and end of the record are left out).
    n_switches : int
        Number of state changes (the first classification is not a switch).
    switch_times : ndarray, shape (n_switches,)
        Times of the switches, ms from the first analysed sample.
    state : ndarray of int8, shape (n_time,)
        +1 up, -1 down, 0 before the signal first reaches a threshold.
    """

    up: np.ndarray
    down: np.ndarray
    n_switches: int
    switch_times: np.ndarray
    state: np.ndarray

    @property
    def mean_up(self) -> float:
        """Mean up dwell time, ms (NaN without complete dwells)."""
        return float(self.up.mean()) if self.up.size else float("nan")

    @property
    def mean_down(self) -> float:
        """Mean down dwell time, ms (NaN without complete dwells)."""
        return float(self.down.mean()) if self.down.size else float("nan")

    @property
    def se_up(self) -> float:
        """Standard error of ``mean_up`` (dwells taken as independent), ms."""
        return float(self.up.std(ddof=1) / np.sqrt(self.up.size)) if self.up.size > 1 else float("nan")

    @property
    def se_down(self) -> float:
        """Standard error of ``mean_down`` (dwells taken as independent), ms."""
        return float(self.down.std(ddof=1) / np.sqrt(self.down.size)) if self.down.size > 1 else float("nan")


def dwell_times(a, record_interval: float | None = None, low: float | None = None, high: float | None = None) -> DwellTimes:
    """Dwell times by two-threshold (hysteresis) detection.

    The state becomes up when ``a >= high`` and down when ``a <= low``;
    between the thresholds it keeps its last value, so noise around a single
    level cannot produce spurious switches. Before ``a`` first reaches either
    threshold the state is undetermined (0). A switch at sample ``i`` is dated
    ``i * record_interval``; dwell times are differences of successive switch
    times, so the partial dwell before the first switch and the one after the
    last are discarded.

    Parameters
    ----------
    a : array, shape (n_time,), or a result
        State signal (e.g. :func:`bistable_signal`); a result is turned into
        its default :func:`bistable_signal` (unsmoothed).
    record_interval : float
        Sampling interval in ms.
    low, high : float
        Thresholds in the units of ``a`` (``low < high``); see
        :func:`auto_thresholds`.

    Returns
    -------
    DwellTimes
    """
    if is_result(a):
        record_interval = as_record(a, record_interval).record_interval
        a = bistable_signal(a)
    a = real_array("the signal", a)
    if a.ndim != 1:
        raise AnalysisInputError(f"the state signal must be 1-D; got shape {a.shape}")
    record_interval = _need_interval(record_interval)
    if low is None or high is None:
        raise AnalysisInputError(f"thresholds low = {low!r}, high = {high!r}: both are required (see auto_thresholds)")
    low = number("low", low, "a finite threshold in the units of the signal")
    high = number("high", high, "a finite threshold in the units of the signal")
    if not low < high:
        raise AnalysisInputError(f"thresholds low = {low!r}, high = {high!r}: need low < high")
    mark = np.where(a >= high, 1, np.where(a <= low, -1, 0)).astype(np.int8)
    # Forward fill: every sample takes the mark of the latest sample that was
    # beyond a threshold.
    latest = np.maximum.accumulate(np.where(mark != 0, np.arange(a.size), -1))
    state = np.where(latest >= 0, mark[np.maximum(latest, 0)], 0).astype(np.int8)
    change = np.flatnonzero((state[1:] != state[:-1]) & (state[:-1] != 0)) + 1
    dwell = np.diff(change) * record_interval
    entered = state[change[:-1]]
    return DwellTimes(
        up=dwell[entered == 1],
        down=dwell[entered == -1],
        n_switches=int(change.size),
        switch_times=change * record_interval,
        state=state,
    )


@dataclass(frozen=True)
class Thresholds:
    """Hysteresis thresholds from a bimodal histogram (units of the signal).

    Attributes
    ----------
    low, high : float
        Thresholds: halfway between each mode and the trough.
    mode_low, mode_high : float
        Positions of the two modes.
    trough : float
        Position of the histogram minimum between the modes.
    """

    low: float
    high: float
    mode_low: float
    mode_high: float
    trough: float


#: histogram bins of :func:`auto_thresholds` unless given
DEFAULT_BINS = 60


def auto_thresholds(a, n_bins: int = DEFAULT_BINS, min_dip: float = 0.5) -> Thresholds:
    """Pick hysteresis thresholds from the bimodal histogram of a (smoothed) signal.

    The histogram of ``a`` over its 0.5 to 99.5 percentile range with
    ``n_bins`` bins is smoothed with a Gaussian of 1.5 bins. Among its local
    maxima, the highest one and the partner that forms the deepest dip between
    them (depth = smaller peak minus the minimum between) are the two modes.
    The trough is the median position of the bins between them whose height is
    within 10 % of the depth above the minimum (the minimum itself for a sharp
    trough, the middle of the plateau that smoothing a switching signal leaves
    between the modes). The thresholds are halfway between
    the trough and each mode, which keeps both away from the noise around
    either state. Smooth the signal first (:func:`smooth`): raw finite-size
    noise fills the trough.

    Parameters
    ----------
    a : array
        Signal samples (any shape; flattened).
    n_bins : int
        Histogram bins: at least 5, and at most the number of samples where
        that exceeds 60.
    min_dip : float
        Required relative depth of the trough, ``1 - trough height / smaller
        peak height`` (0..1).

    Returns
    -------
    Thresholds

    Raises
    ------
    NotBimodalError
        If there are no two modes separated by a trough of the required depth.
    """
    if is_result(a):
        raise AnalysisInputError(
            "auto_thresholds takes the state signal as an array; compute it first, e.g. "
            "auto_thresholds(bistable_signal(result, window_ms=...))"
        )
    n_bins = whole("n_bins", n_bins, 5)
    min_dip = number("min_dip", min_dip, "a relative depth between 0 and 1", 0.0, strict=True)
    if not min_dip < 1:
        raise AnalysisInputError(f"min_dip = {min_dip!r}: must be a relative depth between 0 and 1")
    values = real_array("the signal", a).ravel()
    if values.size < 10:
        raise AnalysisInputError(f"auto_thresholds needs at least 10 samples; got {values.size}")
    if n_bins > max(values.size, DEFAULT_BINS):
        # most bins would be empty, and the 1.5-bin smoothing could not join
        # them into modes: the peaks found would be single samples (a million
        # bins over 1000 samples put both "modes" in one cluster)
        raise AnalysisInputError(f"n_bins = {n_bins}: more histogram bins than the {values.size} samples; "
                                 f"use at most one bin per sample (or the default {DEFAULT_BINS})")
    lo, hi = np.percentile(values, [0.5, 99.5])
    if not hi > lo:
        raise NotBimodalError("the signal is (nearly) constant; it has no two states")
    counts, edges = np.histogram(values, bins=int(n_bins), range=(lo, hi))
    centres = 0.5 * (edges[:-1] + edges[1:])
    offsets = np.arange(-4, 5)
    kernel = np.exp(-0.5 * (offsets / 1.5) ** 2)
    height = np.convolve(counts, kernel / kernel.sum(), mode="same")
    padded = np.concatenate([[-np.inf], height, [-np.inf]])
    peaks = np.flatnonzero((padded[1:-1] > padded[:-2]) & (padded[1:-1] >= padded[2:]))
    first = peaks[np.argmax(height[peaks])]
    best, best_depth = None, 0.0
    for other in peaks:
        if other == first:
            continue
        i, j = sorted((first, other))
        depth = min(height[i], height[j]) - height[i : j + 1].min()
        if depth > best_depth:
            best, best_depth = other, depth
    if best is None or best_depth < min_dip * min(height[first], height[best]):
        raise NotBimodalError(
            f"the histogram of the signal has no two modes with a trough deeper than {min_dip:.0%} of the "
            "smaller mode; smooth the signal more, or give the thresholds by hand"
        )
    i, j = sorted((first, best))
    between = height[i : j + 1]
    # Smoothing a switching signal turns each switch into a ramp, which fills
    # the trough with a flat plateau; its exact minimum is then noise. The
    # median of the bins within 10 % of the dip depth of the minimum is the
    # middle of such a plateau and the minimum of a sharp trough.
    low_bins = np.flatnonzero(between <= between.min() + 0.1 * best_depth)
    trough = i + int(low_bins[(low_bins.size - 1) // 2])
    return Thresholds(
        low=float(0.5 * (centres[i] + centres[trough])),
        high=float(0.5 * (centres[trough] + centres[j])),
        mode_low=float(centres[i]),
        mode_high=float(centres[j]),
        trough=float(centres[trough]),
    )
