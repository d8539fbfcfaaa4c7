"""Limit-cycle oscillations: frequency and amplitude per type, phase coherence of neighbours.

:func:`oscillation` reads the rhythm off the site-averaged power spectral
density of :func:`meshfield.analysis.psd` (same convention: two-sided density
in Hz, only ``f >= 0`` returned), :func:`phase_coherence` the phase locking of
neighbouring lattice sites from the analytic signal of each site's band-passed
activity. Both give delete-one jackknife standard errors: over the PSD
segments, and over contiguous time blocks. Units: Hz, ms, rad.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._record import (
    AnalysisInputError,
    Record,
    as_record,
    BATCH_ELEMENTS,
    CHUNK_ELEMENTS,
    batches,
    ceil_samples,
    number,
    refuse_masked,
    whole,
)
from .spatial import CONSTANT_RTOL as SILENT_RTOL
from .spectra import EDGE_RTOL, psd, rhythm_bins
from .stats import DEFAULT_BLOCKS

#: half the width of the band around a rhythm, as a frequency ratio: the band
#: of :func:`oscillation` is ``f0 / BAND_RATIO .. f0 * BAND_RATIO`` ...
BAND_RATIO = math.sqrt(2.0)
#: ... and at least this many bins either side of ``f0``
BAND_MIN_BINS = 2


def _jackknife_se(replicates: np.ndarray) -> np.ndarray:
    """Delete-one jackknife standard error from the replicates ``x_j`` (axis 0):
    ``sqrt((n - 1)/n * sum_j (x_j - mean x_j)^2)``; NaN where any replicate is."""
    n = replicates.shape[0]
    deviation = replicates - replicates.mean(axis=0)
    return np.sqrt((n - 1) / n * (deviation**2).sum(axis=0))


# ----------------------------------------------------------------------------- oscillation


@dataclass(frozen=True)
class Oscillation:
    """Frequency and amplitude of the rhythm of each type.

    Attributes
    ----------
    types : tuple of str
        Type names.
    frequency : ndarray, shape (n_types,)
        Frequency of the rhythm's bin of the site-averaged PSD at or
        above ``f_min`` (below the Nyquist rate; the prominence of
        ``meshfield analyze``), refined between bins by a parabola through
        log S, Hz; NaN for a type without fluctuations there.
    frequency_err : ndarray, shape (n_types,)
        Delete-one jackknife standard error of ``frequency`` over the segments, Hz.
    amplitude : ndarray, shape (n_types,)
        Amplitude of the sine with the power of one site's activity in
        ``band``: ``sqrt(2 * variance in the band)``, Hz (``a`` for
        ``a cos(2 pi f0 t) + const``; noise in the band counts too).
    amplitude_err : ndarray, shape (n_types,)
        Delete-one jackknife standard error of ``amplitude`` over the segments, Hz.
    band : ndarray, shape (n_types, 2)
        An octave around ``frequency`` (``f0 / sqrt 2 .. f0 * sqrt 2``), widened
        to at least 2 bins either side of ``f0``, within one bin and the
        Nyquist rate, Hz.
    segment_ms : float
        PSD segment duration, ms (the bins are ``1000 / segment_ms`` Hz apart).
    n_segments : int
        Number of PSD segments (the jackknife's samples).
    """

    types: tuple
    frequency: np.ndarray
    frequency_err: np.ndarray
    amplitude: np.ndarray
    amplitude_err: np.ndarray
    band: np.ndarray
    segment_ms: float
    n_segments: int


def _variance_weights(freqs: np.ndarray) -> np.ndarray:
    """Weights (Hz) that turn a two-sided PSD on ``f >= 0`` into variance:
    ``df`` for the zero and the Nyquist bin, ``2 df`` for the others."""
    df = freqs[1] - freqs[0]
    weight = np.full(freqs.size, 2.0 * df)
    weight[0] = weight[-1] = df
    return weight


def _peaks(spectra: np.ndarray, freqs: np.ndarray, first: int, floor: np.ndarray):
    """Rhythm of each spectrum in ``spectra`` (shape ``(n_freqs, ...)``, Hz).

    The peak is the rhythm's bin (:func:`meshfield.analysis.spectra.rhythm_bins`)
    from index ``first`` up to below the Nyquist bin; ``floor`` (broadcast
    against ``spectra[0]``) is the variance from ``first`` up (Hz^2) at or
    below which a spectrum counts as silent. Returns the frequency, amplitude
    and band edges (Hz), each of shape ``spectra.shape[1:]``, NaN for a silent
    spectrum.
    """
    df = freqs[1] - freqs[0]
    nyquist = freqs[-1]
    k, _ = rhythm_bins(spectra, freqs, first)
    peak = np.take_along_axis(spectra, k[None], axis=0)[0]
    # the vertex of the parabola through log S at the peak and its neighbours
    # (the one below f_min included), where the three are positive, the one
    # above is not the Nyquist bin and the peak is a local maximum: it lies
    # within half a bin of the peak
    inner = (k >= 1) & (k < freqs.size - 2)
    left = np.take_along_axis(spectra, np.maximum(k - 1, 0)[None], axis=0)[0]
    right = np.take_along_axis(spectra, np.minimum(k + 1, freqs.size - 1)[None], axis=0)[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        log_left, log_peak, log_right = np.log(left), np.log(peak), np.log(right)
        curvature = log_left - 2.0 * log_peak + log_right
        local = inner & (left > 0) & (right > 0) & (peak >= left) & (peak >= right) & (curvature < 0)
        shift = np.where(local, 0.5 * (log_left - log_right) / curvature, 0.0)
    f0 = freqs[k] + shift * df
    # the band: an octave around f0, and at least 2 bins either side, which
    # holds the leakage of a line between bins through the Hann window
    lo = np.maximum(np.minimum(f0 / BAND_RATIO, f0 - BAND_MIN_BINS * df), df)
    hi = np.minimum(np.maximum(f0 * BAND_RATIO, f0 + BAND_MIN_BINS * df), nyquist)
    weight = _variance_weights(freqs).reshape((-1,) + (1,) * (spectra.ndim - 1))
    grid = freqs.reshape(weight.shape)
    inside = (grid >= lo * (1.0 - EDGE_RTOL)) & (grid <= hi * (1.0 + EDGE_RTOL))
    amplitude = np.sqrt(2.0 * (spectra * weight * inside).sum(axis=0))
    silent = (spectra[first:] * weight[first:]).sum(axis=0) <= floor
    nan = np.full(f0.shape, np.nan)
    return (np.where(silent, nan, f0), np.where(silent, nan, amplitude),
            np.where(silent, nan, lo), np.where(silent, nan, hi))


def oscillation(
    A,
    record_interval: float | None = None,
    discard: float = 0.0,
    *,
    segment_ms: float | None = None,
    n_segments: int | None = None,
    f_min: float = 1.0,
    window: str = "hann",
) -> Oscillation:
    """Frequency and amplitude of the rhythm of each type, with jackknife errors.

    From the site-averaged two-sided PSD ``S`` of :func:`meshfield.analysis.psd`
    (segments of ``segment_ms``, each with its per-site mean removed, Hann
    window by default):

    * ``frequency``: the rhythm's bin at or above ``f_min`` and below the
      Nyquist rate (:func:`meshfield.analysis.spectra.rhythm_bins`, the peak
      ``meshfield analyze`` reports): the largest local maximum of ``S`` whose
      prominence (``S(f)`` over the median of ``S`` from ``f/2`` to ``2 f``) is
      at least 4, or the most prominent bin where no peak is that prominent.
      So a rhythm on a falling spectrum is found rather than its lowest bin,
      and a limit cycle's fundamental rather than a harmonic. It is refined by
      the vertex of the parabola through ``log S`` at that bin and its two
      neighbours when the bin is a local maximum below the Nyquist bin.
      For a clean line and the Hann window the vertex is off by at most 0.016
      bins from 2.5 bins up (0.17 with boxcar); this bias is not in
      ``frequency_err``. Lines within the lowest 2 bins are placed and
      measured less well (up to half a bin and 10 % at the first bin).
    * ``amplitude``: ``a = sqrt(2 v)`` with ``v = 2 sum_band S df`` the
      variance of one site's activity in the band (the Nyquist bin, if in it,
      counted once; ``df = 1000 / segment_ms`` Hz): the amplitude of the sine
      of that power, ``a`` for ``a cos(2 pi f0 t) + const``. The band is the
      octave ``f0 / sqrt 2 .. f0 * sqrt 2``, widened to at least 2 bins either
      side of ``f0`` so that it holds a line's leakage through the Hann window
      (a line of a few bins' frequency would otherwise lose up to 18 %), and
      kept within one bin and the Nyquist rate. With the boxcar window a line
      between bins leaks several percent of its power out of the band (with
      1-s segments: 3 % at 15.5 Hz, 6 % at 10.5 Hz, 12 % at 2.5 Hz). Noise in the
      band counts too: white noise of variance ``s^2`` alone gives
      ``sqrt(2 s^2 w / f_Nyq)`` for a band of width ``w`` Hz.
    * Standard errors: the delete-one jackknife over the segments, each
      replicate computed from the mean of the segment spectra without segment
      ``j``: ``sqrt((n - 1)/n * sum_j (x_j - mean x_j)^2)``. Segments should be
      long against the rhythm's correlation time (its period for a clean
      limit cycle). Without a clear peak (noise) the peak bin wanders between
      the replicates, and the errors, far beyond the scatter of the
      spectrum, say that there is no rhythm.

    A type without fluctuations at or above ``f_min`` (their variance at most
    1e-12 of the mean square: rounding) gives NaN throughout.

    Parameters
    ----------
    A : array, shape (n_time, n_types, *lattice) or (n_time,), or a result
        Activity in Hz.
    record_interval : float, optional
        Sampling interval in ms (required for arrays).
    discard : float
        Initial transient to drop, ms.
    segment_ms : float, optional
        PSD segment duration, ms; give this or ``n_segments``, by default as
        :func:`~meshfield.analysis.psd` (1000 ms). At least 2 segments.
    n_segments : int, optional
        Number of PSD segments (>= 2).
    f_min : float
        Lowest frequency searched for the peak, Hz (> 0).
    window : {"hann", "boxcar"}
        PSD window; Hann confines a line between bins to a few bins, which
        the parabola needs.

    Returns
    -------
    Oscillation
    """
    f_min = number("f_min", f_min, "a positive frequency in Hz", 0.0, strict=True)
    spectrum = psd(A, record_interval, n_segments, discard, segment_ms=segment_ms, window=window, per_site=False)
    freqs = spectrum.freqs
    first = max(1, int(np.searchsorted(freqs, f_min * (1.0 - EDGE_RTOL))))
    if first >= freqs.size - 1:
        raise AnalysisInputError(
            f"f_min = {f_min:g}: no frequency bin from f_min up to below the Nyquist rate {freqs[-1]:g} Hz "
            f"with segments of {spectrum.segment_ms:g} ms (bins {freqs[1]:g} Hz apart); lower f_min or use "
            "longer segments"
        )
    segments = spectrum.segments  # (n_segments, n_freqs, n_types)
    n = spectrum.n_segments
    variance = np.einsum("ft,f->t", spectrum.S, _variance_weights(freqs))
    floor = SILENT_RTOL * (variance + spectrum.mean**2)
    # the full estimate first, then the n leave-one-out replicates: spectra
    # (n_freqs, 1 + n, n_types)
    leave_out = (segments.sum(axis=0) - segments) / (n - 1)
    spectra = np.concatenate([spectrum.S[None], leave_out]).transpose(1, 0, 2)
    f0, amplitude, lo, hi = _peaks(spectra, freqs, first, floor[None, :])
    return Oscillation(
        types=spectrum.types,
        frequency=f0[0],
        frequency_err=_jackknife_se(f0[1:]),
        amplitude=amplitude[0],
        amplitude_err=_jackknife_se(amplitude[1:]),
        band=np.stack([lo[0], hi[0]], axis=1),
        segment_ms=float(spectrum.segment_ms),
        n_segments=int(n),
    )


# ----------------------------------------------------------------------------- phase coherence


@dataclass(frozen=True)
class PhaseCoherence:
    """Phase locking of neighbouring lattice sites per type.

    Attributes
    ----------
    types : tuple of str
        Type names.
    plv : ndarray, shape (n_types,)
        Phase-locking value ``|mean_t exp(i (phi_x - phi_y))|`` of each pair of
        neighbouring sites, averaged over the pairs (dimensionless, 0 .. 1);
        NaN for a type with no pair of sites that fluctuate in its band.
    plv_err : ndarray, shape (n_types,)
        Delete-one jackknife standard error of ``plv`` over the time blocks.
    lag : ndarray, shape (n_types,)
        Angle of the mean over pairs and time of ``exp(i (phi_x - phi_{x+e}))``
        for pairs oriented from ``x`` to its neighbour ``x + e`` along the
        lattice axes, rad in ``[-pi, pi]``: positive where a site leads its
        neighbour towards higher index, as for a wave travelling that way.
    band : ndarray, shape (n_types, 2)
        Pass band ``(f_lo, f_hi)`` of each type, Hz.
    n_pairs : int
        Number of neighbouring site pairs on the lattice (pairs with a site
        silent in the band are left out of that type's ``plv``).
    n_blocks : int
        Number of time blocks of the jackknife.
    """

    types: tuple
    plv: np.ndarray
    plv_err: np.ndarray
    lag: np.ndarray
    band: np.ndarray
    n_pairs: int
    n_blocks: int


def _neighbour_pairs(lattice: tuple, periodic: bool) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices ``(x, x + e)`` of every pair of sites one step apart along
    an axis: wrapping on a periodic lattice (an axis of 2 sites, whose two
    neighbours are the same site, gives its pair once), inside it on an open one."""
    index = np.arange(int(np.prod(lattice))).reshape(lattice)
    sources, targets = [], []
    for axis, n in enumerate(lattice):
        if n < 2:
            continue
        if periodic and n > 2:
            neighbour = np.roll(index, -1, axis=axis)
            sources.append(index.ravel())
            targets.append(neighbour.ravel())
        else:
            head = [slice(None)] * len(lattice)
            tail = [slice(None)] * len(lattice)
            head[axis], tail[axis] = slice(0, n - 1), slice(1, n)
            sources.append(index[tuple(head)].ravel())
            targets.append(index[tuple(tail)].ravel())
    if not sources:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    return np.concatenate(sources), np.concatenate(targets)


def _check_band(band, n_types: int, nyquist: float) -> np.ndarray:
    """``band`` as an array (n_types, 2) of ``0 < f_lo < f_hi <= nyquist`` (Hz).

    One pair per type may also be ``(nan, nan)``, as :func:`oscillation` gives
    a type without a rhythm: that type's results are NaN.
    """
    allowed = (f"a pair (f_lo, f_hi) in Hz, or one per type (shape ({n_types}, 2), a type without "
               f"a rhythm (nan, nan)), with 0 < f_lo < f_hi <= {nyquist:g} Hz (the Nyquist rate)")
    refuse_masked("band", band)
    try:
        edges = np.asarray(band, dtype=float)
        valid = not isinstance(band, (str, bytes)) and np.asarray(band).dtype.kind in "iuf" and not any(
            isinstance(v, (bool, np.bool_)) for v in np.asarray(band, dtype=object).ravel())
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise AnalysisInputError(f"band = {band!r}: must be {allowed}")
    per_type = edges.shape == (n_types, 2)
    if edges.shape == (2,):
        edges = np.tile(edges, (n_types, 1))
    if edges.shape != (n_types, 2):
        raise AnalysisInputError(f"band = {band!r} has shape {edges.shape}: must be {allowed}")
    missing = np.isnan(edges).all(axis=1) & per_type
    with np.errstate(invalid="ignore"):
        valid = (edges[:, 0] > 0) & (edges[:, 0] < edges[:, 1]) & (edges[:, 1] <= nyquist * (1.0 + EDGE_RTOL))
    if not (valid | missing).all():
        raise AnalysisInputError(f"band = {band!r}: must be {allowed}")
    return np.minimum(edges, nyquist)


def _phases(x: np.ndarray, dt: float, f_lo: float, f_hi: float, edge: int, n_kept: int):
    """The phase ``phi(t)`` of each column of ``x`` (samples x sites, Hz) band-passed
    to ``f_lo .. f_hi``: samples ``edge .. edge + n_kept - 1`` (rad, float32: 2e-7
    rad at worst, half the memory of float64; shape (n_kept, n_sites)), and which
    sites fluctuate in the band (bool, (n_sites,))."""
    n_time, n_sites = x.shape
    freqs = np.fft.rfftfreq(n_time, d=dt * 1e-3)
    keep = (freqs > 0) & (freqs >= f_lo * (1.0 - EDGE_RTOL)) & (freqs <= f_hi * (1.0 + EDGE_RTOL))
    if not keep.any():
        raise AnalysisInputError(
            f"band = ({f_lo:g}, {f_hi:g}) Hz holds no frequency bin of the record's FFT (bins "
            f"{freqs[1]:g} Hz apart over {n_time} samples); widen the band or use a longer record"
        )
    # the analytic signal keeps the positive frequencies twice, the Nyquist bin once
    gain = np.where(keep, 2.0, 0.0)
    if n_time % 2 == 0:
        gain[-1] = 1.0 if keep[-1] else 0.0
    phases = np.empty((n_kept, n_sites), dtype=np.float32)
    active = np.zeros(n_sites, dtype=bool)
    step = max(1, BATCH_ELEMENTS // n_time)  # sites per transform
    full = np.zeros((n_time, min(step, n_sites)), dtype=complex)
    for s0 in range(0, n_sites, step):
        s1 = min(s0 + step, n_sites)
        chunk = x[:, s0:s1]
        mean = chunk.mean(axis=0)
        deviation = chunk - mean
        spectrum = np.fft.rfft(deviation, axis=0)
        # band power against the mean square: both as sum over the record of squares
        band_power = (np.abs(spectrum[keep]) ** 2 * gain[keep, None]).sum(axis=0) / n_time
        mean_square = n_time * mean**2 + (deviation**2).sum(axis=0)
        active[s0:s1] = band_power > SILENT_RTOL * mean_square
        block = full[:, : s1 - s0]
        block[:] = 0.0
        block[: freqs.size] = spectrum * gain[:, None]
        phases[:, s0:s1] = np.angle(np.fft.ifft(block, axis=0)[edge: edge + n_kept])
    return phases, active


def _pair_block_sums(record: Record, t: int, f_lo: float, f_hi: float, edge: int, n_kept: int,
                     n_blocks: int, sources: np.ndarray, targets: np.ndarray):
    """``sum_t exp(i (phi_x - phi_y))`` per time block and pair of one type, with
    the pairs kept (both sites fluctuate in the band).

    The lattice is read in chunks of rows (its first axis) with the next row
    as a halo, so memory grows with the chunk, not with the lattice.

    Returns
    -------
    sums : ndarray, complex, shape (n_blocks, n_pairs_kept)
    """
    dt = record.need_interval()
    n_rows = record.lattice_shape[0]
    row_size = record.n_sites // n_rows
    length = n_kept // n_blocks
    chunk_rows = max(1, CHUNK_ELEMENTS // (record.n_time * row_size))
    source_rows, target_rows = sources // row_size, targets // row_size
    sums = []
    for r0 in range(0, n_rows, chunk_rows):
        r1 = min(r0 + chunk_rows, n_rows)
        mine = (source_rows >= r0) & (source_rows < r1)
        if not mine.any():
            continue
        x = record.read(0, record.n_time, only_type=t, rows=slice(r0, r1)).reshape(record.n_time, -1)
        halo = np.unique(target_rows[mine][(target_rows[mine] < r0) | (target_rows[mine] >= r1)])
        # pairs go one step up an axis, so only the row after the chunk (wrapped on a
        # periodic lattice) can lie outside it; local() below relies on that
        assert halo.size <= 1, halo
        if halo.size:
            h = int(halo[0])
            extra = record.read(0, record.n_time, only_type=t, rows=slice(h, h + 1))
            x = np.concatenate([x, extra.reshape(record.n_time, -1)], axis=1)
        phases, active = _phases(x, dt, f_lo, f_hi, edge, n_kept)
        del x

        def local(site, rows):
            """Column of a global site in this chunk's phases (the halo row last)."""
            inside = (rows >= r0) & (rows < r1)
            return np.where(inside, rows - r0, r1 - r0) * row_size + site % row_size

        x_col, y_col = local(sources[mine], source_rows[mine]), local(targets[mine], target_rows[mine])
        used = active[x_col] & active[y_col]
        x_col, y_col = x_col[used], y_col[used]
        part = np.zeros((n_blocks, x_col.size), dtype=complex)
        for b in range(n_blocks):
            for j0, j1 in batches(b * length, (b + 1) * length, x_col.size):
                difference = phases[j0:j1, x_col].astype(float) - phases[j0:j1, y_col]
                part[b] += np.cos(difference).sum(axis=0) + 1j * np.sin(difference).sum(axis=0)
        sums.append(part)
    return np.concatenate(sums, axis=1) if sums else np.zeros((n_blocks, 0), dtype=complex)


def phase_coherence(
    A,
    record_interval: float | None = None,
    discard: float = 0.0,
    *,
    band=None,
    boundary: str | None = None,
    n_blocks: int = DEFAULT_BLOCKS,
    segment_ms: float | None = None,
) -> PhaseCoherence:
    """Phase-locking value of neighbouring lattice sites in the band of the rhythm.

    For each type, each site's activity after ``discard`` has its mean removed
    and is band-passed to ``band`` by FFT over the whole record: the positive
    frequencies inside the band are kept (times 2, the Nyquist bin once), all
    others set to zero, and the inverse FFT is the analytic signal, whose angle
    is the phase ``phi(x, t)``. The FFT treats the record as circular, so
    ``edge = ceil(2 periods of f_lo)`` samples are dropped at each end. The
    remaining samples are cut into ``n_blocks`` contiguous blocks of equal
    length (the remainder at the end is left out, as in
    :func:`meshfield.analysis.mean_var`).

    Pairs: every pair of sites one lattice step apart along an axis (periodic
    lattices wrap, an axis of 2 sites giving its pair once; open lattices only
    pairs inside the lattice); a pair with a site without fluctuations in the
    band is left out. For each pair ``PLV = |mean_t exp(i (phi_x - phi_y))|``;
    ``plv`` is its mean over the pairs (1 for locked phases, about
    ``sqrt(pi / (4 n_eff))`` for independent ones, ``n_eff`` ~ band width x
    duration), ``lag`` the angle of ``exp(i (phi_x - phi_{x+e}))`` averaged
    over pairs and time: ``+2 pi / n`` for ``cos(2 pi f t - 2 pi x / n)``, a
    wave travelling towards higher site index. ``plv_err`` is the delete-one
    jackknife standard error over the blocks (``plv`` recomputed without block
    ``j``).

    Parameters
    ----------
    A : array, shape (n_time, n_types, *lattice), or a result
        Activity in Hz, on more than one site.
    record_interval : float, optional
        Sampling interval in ms (required for arrays).
    discard : float
        Initial transient to drop, ms.
    band : pair of float, or array of shape (n_types, 2), optional
        Pass band ``(f_lo, f_hi)`` in Hz, ``0 < f_lo < f_hi <=`` the Nyquist
        rate, for all types or one per type. Default: each type's band of
        :func:`oscillation` (same ``discard`` and ``segment_ms``).
    boundary : {"periodic", "open"}
        Boundary condition (arrays; taken from a result's config).
    n_blocks : int
        Number of time blocks of the jackknife (>= 2).
    segment_ms : float, optional
        PSD segment duration for the default band, ms (not with ``band``).

    Returns
    -------
    PhaseCoherence

    Notes
    -----
    One type and a chunk of lattice rows (its first axis, with the next row)
    are analysed at a time: about ``CHUNK_ELEMENTS`` samples x sites (16
    million) in float64, their phases in float32 and FFTs of about 4 million
    values, some 0.4 GB whatever the lattice. The jackknife needs blocks long
    against the correlation time of the phase differences; with blocks of a
    couple of cycles its error comes out low (by about a quarter for a phase
    difference correlated over 200 ms and blocks of 130 ms).
    """
    record = as_record(A, record_interval, discard, boundary=boundary)
    dt = record.need_interval()
    if record.n_sites < 2:
        raise AnalysisInputError(
            f"A has a single site (lattice shape {list(record.lattice_shape)}): phase coherence needs "
            "neighbouring sites"
        )
    if record.boundary is None:
        raise AnalysisInputError("boundary is required for array input; allowed: periodic, open")
    n_blocks = whole("n_blocks", n_blocks, 2)
    nyquist = 1000.0 / (2.0 * dt)
    if band is None:
        rhythm = oscillation(A, record_interval, discard, segment_ms=segment_ms)
        edges = rhythm.band
    else:
        if segment_ms is not None:
            raise AnalysisInputError(
                f"segment_ms = {segment_ms!r}: it sets the PSD segments of the default band; "
                "give either band or segment_ms"
            )
        edges = _check_band(band, record.n_types, nyquist)
    sources, targets = _neighbour_pairs(record.lattice_shape, record.boundary == "periodic")
    plv = np.full(record.n_types, np.nan)
    plv_err = np.full(record.n_types, np.nan)
    lag = np.full(record.n_types, np.nan)
    for t in range(record.n_types):
        f_lo, f_hi = edges[t]
        if not np.isfinite(f_lo):  # the default band of a type without a rhythm
            continue
        edge = ceil_samples(2.0 * 1000.0 / f_lo / dt)
        n_kept = record.n_time - 2 * edge
        if n_kept < 1:
            origin = ("band" if band is not None else
                      f"the default band of type {record.types[t]!r}, ({f_lo:g}, {f_hi:g}) Hz around the rhythm "
                      "that oscillation() finds")
            raise AnalysisInputError(
                f"{origin}: f_lo = {f_lo:g} Hz; the {record.n_time} samples ({record.n_time * dt:g} ms) after the "
                f"transient are all dropped as edges of the circular FFT (2 periods of f_lo, {edge} samples, "
                "at each end); use a longer record" + (" or a higher f_lo" if band is not None else
                                                        ", or give a band")
            )
        length = n_kept // n_blocks
        if length < 1:
            raise AnalysisInputError(
                f"n_blocks = {n_blocks} is more than the {n_kept} samples left after the discarded "
                f"transient and the {edge} edge samples dropped at each end"
            )
        sums = _pair_block_sums(record, t, f_lo, f_hi, edge, n_kept, n_blocks, sources, targets)
        if sums.shape[1] == 0:
            continue
        total = sums.sum(axis=0)
        plv[t] = np.abs(total / (n_blocks * length)).mean()
        replicates = np.abs((total - sums) / ((n_blocks - 1) * length)).mean(axis=1)
        plv_err[t] = _jackknife_se(replicates)
        lag[t] = float(np.angle(total.sum()))
    return PhaseCoherence(
        types=record.types,
        plv=plv,
        plv_err=plv_err,
        lag=lag,
        band=np.asarray(edges, dtype=float).copy(),
        n_pairs=int(sources.size),
        n_blocks=n_blocks,
    )

