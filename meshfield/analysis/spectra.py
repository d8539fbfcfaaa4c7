"""Power spectral densities of activity records and their log-band averages.

Convention (shared with ``meshfield.theory``): frequencies in Hz, two-sided
density, for a segment of ``L`` samples at interval ``dt_s`` (seconds), duration
``T_s = L dt_s`` and window ``w``::

    S(f) = E | sum_t (A(t) - mean) w(t) dt_s exp(-2 pi i f t) |^2 / (T_s * mean(w^2))

so that white noise of variance ``s^2`` (Hz^2) has ``S = s^2 dt_s`` and N
independent Poisson neurons of rate r have ``S = r / N`` (Hz). Only ``f >= 0``
is returned, but the values are those of the two-sided density: the variance of
A is ``S(0) df + 2 * sum_{f > 0} S(f) df`` (the Nyquist bin counted once).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._record import CHUNK_ELEMENTS, AnalysisInputError, as_record, floor_samples, number, real_array, whole

WINDOWS = ("boxcar", "hann")
#: relative distance within which a frequency bin counts as on a band edge
EDGE_RTOL = 1e-9
#: log_band_average allows this many bands even where the spectrum has fewer bins
MAX_EMPTY_BANDS = 10_000
DEFAULT_SEGMENT_MS = 1000.0
#: the neighbourhood median of :func:`prominence` is at least this fraction of the spectrum's mean
PROMINENCE_FLOOR = 1e-6
#: the least prominence of a local maximum that :func:`rhythm_bins` takes for a rhythm
RHYTHM_PROMINENCE = 4.0


@dataclass(frozen=True)
class PSD:
    """Welch estimate of the two-sided power spectral density.

    Attributes
    ----------
    freqs : ndarray, shape (n_freqs,)
        Frequencies in Hz, ``0 .. 1/(2 dt)`` in steps of ``1/segment duration``.
    S : ndarray, shape (n_freqs, n_types)
        Per-site PSD averaged over sites and segments, in Hz.
    S_err : ndarray, shape (n_freqs, n_types)
        Standard error of ``S`` (Hz): standard deviation across segments of the
        site-averaged segment spectra over ``sqrt(n_segments)``. Valid whether
        or not sites are correlated.
    S_site : ndarray, shape (n_freqs, n_types, *lattice_shape), or None
        PSD of each site, averaged over segments, in Hz (None when
        :func:`psd` was called with ``per_site=False``).
    S_site_err : ndarray, shape (n_freqs, n_types, *lattice_shape), or None
        Standard error of ``S_site`` across segments (Hz), or None.
    segments : ndarray, shape (n_segments, n_freqs, n_types)
        The site-averaged spectrum of each segment (Hz), for band errors.
    mean : ndarray, shape (n_types,)
        Mean activity over the segments' samples and the sites, Hz (the
        segment means removed before the transform), e.g. for the level
        ``mean / N`` of independent spike trains.
    segment_ms : float
        Segment duration in ms (the frequency resolution is ``1000/segment_ms`` Hz).
    window : str
        ``"boxcar"`` or ``"hann"``.
    types : tuple of str
        Type names.
    """

    freqs: np.ndarray
    S: np.ndarray
    S_err: np.ndarray
    S_site: np.ndarray | None
    S_site_err: np.ndarray | None
    segments: np.ndarray
    mean: np.ndarray
    segment_ms: float
    window: str
    types: tuple

    @property
    def n_segments(self) -> int:
        return int(self.segments.shape[0])


def segment_samples(segment_ms: float, dt: float) -> int:
    """The whole records of ``dt`` ms in a segment of ``segment_ms`` (the 1e-9
    keeps 0.3 ms at 0.1 ms, 2.9999999999999996 records, at 3); :func:`psd` then
    cuts the segment to an even number of them."""
    return floor_samples(segment_ms / dt)


def segment_cut(segment_ms: float, dt: float) -> int:
    """The samples of a segment of ``segment_ms`` as :func:`psd` cuts it: the whole
    records (:func:`segment_samples`), rounded down to an even number."""
    n = segment_samples(segment_ms, dt)
    return n - n % 2


def _window(name: str, length: int) -> np.ndarray:
    if name == "boxcar":
        return np.ones(length)
    if name == "hann":
        # The periodic Hann window: its DFT has exactly three non-zero bins, so
        # leakage of a line never reaches beyond the two neighbouring bins.
        return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(length) / length)
    raise AnalysisInputError(f"window = {name!r}: allowed values are {', '.join(WINDOWS)}")


def psd(
    A,
    record_interval: float | None = None,
    n_segments: int | None = None,
    discard: float = 0.0,
    *,
    segment_ms: float | None = None,
    window: str = "boxcar",
    per_site: bool = True,
) -> PSD:
    """Two-sided power spectral density of the activity, per site and site-averaged.

    The record after ``discard`` is cut into non-overlapping segments of equal
    even length (so segments are independent and the Nyquist frequency is a
    bin); samples beyond the last whole segment are left out. Each segment has
    its own mean removed per site, is multiplied by the window and transformed;
    see the module docstring for the normalization.

    Parameters
    ----------
    A : array, shape (n_time, n_types, *lattice) or (n_time,), or a result
        Activity in Hz.
    record_interval : float, optional
        Sampling interval in ms (required for arrays).
    n_segments : int, optional
        Number of segments. Give either this or ``segment_ms``; by default
        segments of 1000 ms (1 Hz resolution, the lowest band edge of
        VALIDATION.md), or two halves of a record shorter than 2000 ms.
    discard : float
        Initial transient to drop, ms.
    segment_ms : float, optional
        Segment duration in ms (rounded down to an even number of samples).
    window : {"boxcar", "hann"}
        ``"boxcar"`` (default) keeps every bin ``f > 0`` unbiased after the
        mean removal and bins independent for white noise; ``"hann"`` reduces
        leakage around spectral lines (oscillations), at the price of
        correlated neighbouring bins and a 1/6 deficit in the first bin for a
        flat spectrum (the mean removal).
    per_site : bool
        Keep the spectrum of every site (``S_site``, ``S_site_err``; two
        arrays of ``n_freqs x n_types x n_sites`` values, 0.5 GB each for
        1-s segments at 1 ms on 256 x 256 sites with two types). With
        ``False`` they are None and the lattice is transformed in chunks of
        rows of one type (about ``CHUNK_ELEMENTS`` samples x sites at a
        time), so that the memory no longer grows with the lattice; the
        site-averaged results are the same up to rounding.

    Returns
    -------
    PSD
    """
    record = as_record(A, record_interval, discard)
    dt = record.need_interval()
    n_time = record.n_time
    _window(window, 2)  # the name, before any work
    if n_segments is not None and segment_ms is not None:
        raise AnalysisInputError("give either n_segments or segment_ms, not both")
    if n_segments is not None:
        n_segments = whole("n_segments", n_segments, 2)
        length = n_time // n_segments
        asked = f"n_segments = {n_segments if n_segments < 1e15 else f'{n_segments:.3g}'}"
    else:
        if segment_ms is None:
            # 1000 ms segments where the record holds two of them, else two halves.
            default = segment_samples(DEFAULT_SEGMENT_MS, dt)
            length = default if n_time >= 2 * default else n_time // 2
            asked = "the default segments"
        else:
            segment_ms = number("segment_ms", segment_ms, "a positive duration in ms", 0.0, strict=True)
            length = segment_samples(segment_ms, dt)
            asked = f"segment_ms = {segment_ms:g}"
    if length < 2 and n_time >= 4:
        raise AnalysisInputError(
            f"{asked}: a segment must hold at least 2 samples of {dt:g} ms ({2 * dt:g} ms); "
            f"this one holds {max(length, 0)}"
        )
    length -= length % 2
    if n_segments is None:  # as many segments as fit, of the length as cut
        n_segments = n_time // max(length, 1)
    if length < 2 or n_segments < 2:
        raise AnalysisInputError(
            f"{asked}: the record after the transient ({n_time} samples of {dt:g} ms = {n_time * dt:g} ms) "
            f"does not hold 2 segments of at least 2 samples"
            + (f" (it holds {n_segments} of {length * dt:g} ms)" if length >= 2 else "")
        )
    if not isinstance(per_site, (bool, np.bool_)):
        raise AnalysisInputError(f"per_site = {per_site!r}: must be True or False")
    w = _window(window, length)
    dt_s = dt * 1e-3
    norm = dt_s / (length * np.mean(w**2))
    freqs = np.fft.rfftfreq(length, d=dt_s)
    if per_site:
        segments, segment_means, S_site, S_site_err = _per_site(record, length, n_segments, w, norm, freqs.size)
    else:
        segments, segment_means = _site_averaged(record, length, n_segments, w, norm, freqs.size)
        S_site = S_site_err = None
    return PSD(
        freqs=freqs,
        S=segments.mean(axis=0),
        S_err=segments.std(axis=0, ddof=1) / np.sqrt(n_segments),
        S_site=S_site,
        S_site_err=S_site_err,
        segments=segments,
        mean=segment_means.mean(axis=0),
        segment_ms=length * dt,
        window=window,
        types=record.types,
    )


def _per_site(record, length: int, n_segments: int, w: np.ndarray, norm: float, n_freqs: int):
    """The spectra of every segment, one segment of the whole lattice at a time.

    Returns
    -------
    segments : ndarray, shape (n_segments, n_freqs, n_types)
        Site-averaged spectrum of each segment.
    segment_means : ndarray, shape (n_segments, n_types)
    S_site, S_site_err : ndarray, shape (n_freqs, n_types, *lattice_shape)
        Each site's spectrum averaged over the segments, and its standard error.
    """
    shape = (length, record.n_types, record.n_sites)
    total = np.zeros((n_freqs,) + shape[1:])
    total_sq = np.zeros_like(total)
    segments = np.empty((n_segments, n_freqs, record.n_types))
    segment_means = np.empty((n_segments, record.n_types))
    for k in range(n_segments):
        x = record.read(k * length, (k + 1) * length).reshape(shape)
        site_means = x.mean(axis=0)
        segment_means[k] = site_means.mean(axis=1)
        x = x - site_means
        power = norm * np.abs(np.fft.rfft(x * w[:, None, None], axis=0)) ** 2
        total += power
        total_sq += power**2
        segments[k] = power.mean(axis=2)
    S_site = total / n_segments
    # Sample variance across segments; clipped because a line spectrum has
    # (nearly) identical segments and the difference can round below zero.
    var_site = np.maximum(total_sq / n_segments - S_site**2, 0.0) * n_segments / (n_segments - 1)
    lattice_axes = (n_freqs, record.n_types) + record.lattice_shape
    return segments, segment_means, S_site.reshape(lattice_axes), np.sqrt(var_site / n_segments).reshape(lattice_axes)


def _site_averaged(record, length: int, n_segments: int, w: np.ndarray, norm: float, n_freqs: int):
    """The site-averaged spectrum and the mean of every segment, transforming
    one type and a chunk of lattice rows at a time.

    Returns
    -------
    segments : ndarray, shape (n_segments, n_freqs, n_types)
    segment_means : ndarray, shape (n_segments, n_types)
    """
    n_rows = record.lattice_shape[0]
    row_size = record.n_sites // n_rows
    chunk_rows = max(1, CHUNK_ELEMENTS // (length * row_size))
    segments = np.zeros((n_segments, n_freqs, record.n_types))
    segment_means = np.zeros((n_segments, record.n_types))
    for k in range(n_segments):
        for t in range(record.n_types):
            for r0 in range(0, n_rows, chunk_rows):
                rows = slice(r0, min(r0 + chunk_rows, n_rows))
                x = record.read(k * length, (k + 1) * length, only_type=t, rows=rows).reshape(length, -1)
                site_means = x.mean(axis=0)
                segment_means[k, t] += site_means.sum()
                x = x - site_means  # not in place: x may be a view of the caller's array
                x *= w[:, None]
                power = np.abs(np.fft.rfft(x, axis=0))
                del x
                np.square(power, out=power)
                segments[k, :, t] += power.sum(axis=1)
                del power
    return segments * (norm / record.n_sites), segment_means / record.n_sites


@dataclass(frozen=True)
class BandAverage:
    """Averages of a spectrum in logarithmically spaced frequency bands.

    Attributes
    ----------
    f_lo, f_hi : ndarray, shape (n_bands,)
        Band edges in Hz; a bin at ``f`` belongs to the band with
        ``f_lo <= f < f_hi`` (the last band also holds ``f = f_hi``), where a
        bin within a relative 1e-9 of an edge counts as on it (the computed
        log-spaced edges are off by rounding).
    f_center : ndarray, shape (n_bands,)
        Geometric band centres, Hz.
    value : ndarray, shape (n_bands, ...)
        Mean of the spectrum over the bins of each band (units of the
        spectrum, Hz for a PSD); NaN for a band without bins.
    se : ndarray, shape (n_bands, ...)
        Standard error of ``value``.
    n_bins : ndarray of int, shape (n_bands,)
        Number of frequency bins in each band.
    """

    f_lo: np.ndarray
    f_hi: np.ndarray
    f_center: np.ndarray
    value: np.ndarray
    se: np.ndarray
    n_bins: np.ndarray


def log_band_average(
    freqs,
    S=None,
    S_err=None,
    f_min: float = 1.0,
    f_max: float | None = None,
    n_bands: int = 8,
    *,
    segments=None,
) -> BandAverage:
    """Average a spectrum in ``n_bands`` log-spaced bands from ``f_min`` to ``f_max``.

    This is the band comparison of VALIDATION.md (at least 8 bands from 1 Hz to
    the Nyquist rate of the record).

    Parameters
    ----------
    freqs : ndarray, shape (n_freqs,), or PSD
        Frequencies in Hz; or a :class:`PSD`, which supplies ``freqs``, ``S``,
        ``S_err`` and ``segments``.
    S : ndarray, shape (n_freqs, ...)
        Spectrum (any trailing shape, e.g. per type).
    S_err : ndarray, shape like S, optional
        Standard error of each bin. Used only without ``segments``; bins are
        then taken as independent, ``se = sqrt(sum S_err^2) / n_bins``, which is
        exact for a boxcar-window Welch estimate of a smooth spectrum and an
        underestimate (by about 1.4) for correlated bins such as Hann's.
    f_min, f_max : float
        Lowest and highest band edges, Hz; ``f_max`` defaults to the highest
        frequency in ``freqs`` (the Nyquist rate for a :func:`psd` result).
    n_bands : int
        Number of bands (>= 1; VALIDATION.md requires at least 8).
    segments : ndarray, shape (n_segments, n_freqs, ...), optional
        Per-segment spectra; then ``se`` is the standard deviation of the
        per-segment band averages over ``sqrt(n_segments)``, which accounts for
        any correlation between bins.

    Returns
    -------
    BandAverage
    """
    if isinstance(freqs, PSD):
        if S is not None or S_err is not None:
            raise AnalysisInputError("give a PSD or the arrays freqs, S, S_err, not both")
        spectrum = freqs
        freqs, S, S_err = spectrum.freqs, spectrum.S, spectrum.S_err
        if segments is None:
            segments = spectrum.segments
    if S is None:
        raise AnalysisInputError("S (the spectrum to average) is required")
    freqs = real_array("freqs", freqs)
    S = real_array("S", S)
    if freqs.ndim != 1 or S.shape[:1] != freqs.shape:
        raise AnalysisInputError(
            f"freqs has shape {freqs.shape} and S {S.shape}: freqs must be a non-empty 1-D array "
            "and the first axis of S must match it"
        )
    if S_err is not None:
        S_err = real_array("S_err", S_err)
        if S_err.shape != S.shape:
            raise AnalysisInputError(f"S_err has shape {S_err.shape}; it must have the shape of S, {S.shape}")
    n_bands = whole("n_bands", n_bands, 1)
    if n_bands > max(freqs.size, MAX_EMPTY_BANDS):
        # bands without bins are NaN, as documented; beyond this many (10**9 took
        # minutes and gigabytes) the request cannot be meant
        raise AnalysisInputError(f"n_bands = {n_bands}: more bands than both the {freqs.size} frequency bins "
                                 f"and {MAX_EMPTY_BANDS}; most bands would hold no bin")
    f_min = number("f_min", f_min, "a positive frequency in Hz", 0.0, strict=True)
    f_max = float(freqs.max()) if f_max is None else number("f_max", f_max, "a finite frequency in Hz")
    if not f_min < f_max:
        raise AnalysisInputError(f"need 0 < f_min < f_max; got f_min = {f_min:g}, f_max = {f_max:g} Hz")
    edges = np.geomspace(f_min, f_max, n_bands + 1)
    # geomspace's inner edges are off by an ulp or so (geomspace(1, 256, 9)[5] is
    # 32.000000000000007): a bin within EDGE_RTOL of an edge counts as on it, so
    # that it joins the band above, as f_lo <= f < f_hi says
    band = np.searchsorted(edges[1:-1] * (1.0 - EDGE_RTOL), freqs, side="right")
    inside = (freqs >= f_min * (1.0 - EDGE_RTOL)) & (freqs <= f_max * (1.0 + EDGE_RTOL))
    value = np.full((n_bands,) + S.shape[1:], np.nan)
    se = np.full_like(value, np.nan)
    n_bins = np.zeros(n_bands, dtype=int)
    if segments is not None:
        segments = real_array("segments", segments)
        if segments.shape[1:] != S.shape or segments.shape[0] < 2:
            raise AnalysisInputError(
                f"segments has shape {segments.shape}; expected (n_segments >= 2,) + {S.shape}"
            )
    for b in range(n_bands):
        members = inside & (band == b)
        n_bins[b] = int(members.sum())
        if n_bins[b] == 0:
            continue
        value[b] = S[members].mean(axis=0)
        if segments is not None:
            per_segment = segments[:, members].mean(axis=1)
            se[b] = per_segment.std(axis=0, ddof=1) / np.sqrt(per_segment.shape[0])
        elif S_err is not None:
            se[b] = np.sqrt((S_err[members] ** 2).sum(axis=0)) / n_bins[b]
    return BandAverage(edges[:-1], edges[1:], np.sqrt(edges[:-1] * edges[1:]), value, se, n_bins)


def validation_bands(spectrum: PSD, record_interval: float, n_bands: int = 8,
                     f_min: float | None = None) -> tuple[BandAverage, float]:
    """The PSD bands of VALIDATION.md: ``n_bands`` log-spaced bands from ``f_min``
    to the Nyquist rate, each of which must hold a frequency bin.

    Parameters
    ----------
    spectrum : PSD
    record_interval : float
        ms (the Nyquist rate is ``1000 / (2 record_interval)`` Hz).
    n_bands : int
    f_min : float, optional
        Lowest band edge, Hz. Default: 1 Hz (VALIDATION.md), or the lowest
        resolved frequency (the first bin, ``1000 / segment_ms``) when segments
        are shorter than 1 s.

    Returns
    -------
    bands : BandAverage
    f_min : float
        The lowest band edge used, Hz.

    Raises
    ------
    AnalysisInputError
        If the segments resolve nothing below the Nyquist rate, or a band holds
        no frequency bin (too many bands for the segment length).
    """
    nyquist = 1000.0 / (2.0 * record_interval)
    if f_min is None:
        # the lowest bin itself, not 1000 / segment_ms, which can round above it
        f_min = max(1.0, float(spectrum.freqs[1]))
    if not f_min < nyquist:
        raise AnalysisInputError(
            f"segments of {spectrum.segment_ms:g} ms resolve nothing between {f_min:g} Hz and the Nyquist "
            f"rate {nyquist:g} Hz; use longer segments (segment_ms)"
        )
    bands = log_band_average(spectrum, f_min=f_min, f_max=nyquist, n_bands=n_bands)
    empty = np.flatnonzero(bands.n_bins == 0)
    if empty.size:
        i = int(empty[0])
        raise AnalysisInputError(
            f"PSD band {bands.f_lo[i]:.3g}-{bands.f_hi[i]:.3g} Hz holds no frequency bin with segments "
            f"of {spectrum.segment_ms:g} ms; use longer segments (segment_ms) or fewer bands (n_bands)"
        )
    return bands, f_min


def prominence(S: np.ndarray, freqs: np.ndarray, first: int) -> np.ndarray:
    """Prominence of every bin from ``freqs[first]`` up: ``S(f)`` over the median of
    ``S`` from ``f/2`` to ``2 f`` (within ``freqs[first]`` and the Nyquist rate),
    sampled at 201 log-spaced frequencies so that the median of a power law is
    its value at ``f``: a rhythm stands out of its neighbourhood, while a smooth
    spectrum, white or low-pass, stays near 1. The median is taken as at least
    ``PROMINENCE_FLOOR`` times the mean of ``S`` over the bins considered, so
    that the rounding noise between the lines of a noise-free signal does not
    outrank them.

    Parameters
    ----------
    S : ndarray, shape (n_freqs, ...)
        Spectra (any number of them along the trailing axes).
    freqs : ndarray, shape (n_freqs,)
        Their frequencies, evenly spaced.
    first : int
        Index of the lowest bin considered.

    Returns
    -------
    ndarray, shape (n_freqs - first, ...)
        The ratio per bin (NaN where the neighbourhood's median is 0, as for a
        spectrum without fluctuations).
    """
    S = S[first:]
    f = freqs[first:]
    # bins of a noise-free signal (a clean line, a deterministic cycle) between
    # its lines hold rounding noise; their ratios are meaningless, and the
    # floor keeps them from outranking the lines
    floor = PROMINENCE_FLOOR * S.mean(axis=0)
    ratio = np.full(S.shape, np.nan)
    octave = 2.0 ** np.linspace(-1.0, 1.0, 201)
    for j in range(f.size):
        # the bin nearest each log-spaced frequency; the same bin counts once per frequency it is
        # nearest to, so that the median weighs the window evenly in log f
        near = np.clip(np.searchsorted(f, f[j] * octave), 1, f.size - 1)
        near -= (f[j] * octave - f[near - 1]) < (f[near] - f[j] * octave)
        inside = (f[j] * octave >= f[0]) & (f[j] * octave <= f[-1])
        median = np.maximum(np.median(S[near[inside]], axis=0), floor)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio[j] = np.where(median > 0, S[j] / median, np.nan)
    return ratio


def rhythm_bins(S: np.ndarray, freqs: np.ndarray, first: int) -> tuple[np.ndarray, np.ndarray]:
    """The bin of the rhythm in each spectrum, searched from ``first`` (>= 1) to below
    the Nyquist bin, and its prominence.

    The rhythm is the largest of the local maxima of ``S`` (above the bin below,
    at least the bin above) whose prominence (:func:`prominence`, computed from
    the first bin above zero so that a peak at ``first`` has a neighbourhood on
    both sides) is at least ``RHYTHM_PROMINENCE``; where there is none (noise,
    a smooth spectrum), the most prominent bin. Taking the largest prominent
    peak rather than the most prominent bin keeps a limit cycle's fundamental
    ahead of its harmonics and of its own leakage, whose neighbourhoods can be
    emptier; requiring prominence keeps a falling spectrum's lowest bin out.

    Parameters
    ----------
    S : ndarray, shape (n_freqs, ...)
    freqs : ndarray, shape (n_freqs,)
    first : int
        Lowest bin searched, ``1 <= first < n_freqs - 1``.

    Returns
    -------
    index : ndarray of int, shape S.shape[1:]
        Index of the rhythm's bin into ``freqs``.
    prominence : ndarray, shape S.shape[1:]
        Its prominence (NaN for a spectrum without fluctuations).
    """
    n = freqs.size
    ratio = prominence(S, freqs, 1)[first - 1: n - 2]  # bins first .. n-2
    searched, below, above = S[first: n - 1], S[first - 1: n - 2], S[first + 1: n]
    with np.errstate(invalid="ignore"):
        peaks = (searched > below) & (searched >= above) & (ratio >= RHYTHM_PROMINENCE)
    largest = np.argmax(np.where(peaks, searched, -np.inf), axis=0)
    most_prominent = np.argmax(np.where(np.isnan(ratio), -np.inf, ratio), axis=0)
    best = np.where(peaks.any(axis=0), largest, most_prominent)
    return first + best, np.take_along_axis(ratio, best[None], axis=0)[0]


def peak_prominence(spectrum: PSD, f_min: float) -> tuple[np.ndarray, np.ndarray]:
    """The rhythm of each type's spectrum at or above ``f_min`` (:func:`rhythm_bins`)
    and its prominence.

    Returns
    -------
    freqs : ndarray, shape (n_types,)
        Frequency of the rhythm's bin, Hz (NaN where no bin has a prominence,
        or no bin lies from ``f_min`` up to below the Nyquist rate).
    prominence : ndarray, shape (n_types,)
        Its prominence (NaN where the neighbourhood's median is 0, as for a
        type without fluctuations).
    """
    freqs = spectrum.freqs
    first = max(1, int(np.searchsorted(freqs, f_min)))
    if first >= freqs.size - 1:
        nan = np.full(spectrum.S.shape[1], np.nan)
        return nan, nan.copy()
    index, peak = rhythm_bins(spectrum.S, freqs, first)
    return np.where(np.isnan(peak), np.nan, freqs[index]), peak
