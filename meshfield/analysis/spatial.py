"""Spatial statistics: correlation vs distance, spatial and space-time spectra, wave speed.

Wave numbers are angular, in rad/mm; the lattice wave-number step of an axis of
``n`` sites is ``2 pi / (n dx)``. Space-time spectra use the physical sign
convention ``exp(-i (k.x - omega t))``: a wave ``cos(k.x - omega t)`` travelling
along ``+k`` has its power at ``(f, k)`` with ``f > 0`` (and the mirror point
``(-f, -k)``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..lattice import wave_number_shell
from ._record import (AnalysisInputError, Record, ShiftedMoments, as_record, batches, check_finite, floor_samples,
                      is_path, is_result, number, real_array, type_index, whole)
from .stats import DEFAULT_BLOCKS

# A site whose variance is below this fraction of its squared mean is treated
# as constant (its fluctuations are rounding noise, not activity).
CONSTANT_RTOL = 1e-12


def _displacements(n: int, periodic: bool, size: int) -> np.ndarray:
    """Signed site displacement of each FFT offset along one axis.

    Periodic (``size == n``): minimum image. Open (``size == 2 n``): offsets
    ``n .. 2n-1`` are the negative displacements of the zero-padded transform.
    """
    offsets = np.arange(size)
    if periodic:
        return np.where(offsets <= n // 2, offsets, offsets - n)
    return np.where(offsets < n, offsets, offsets - size)


@dataclass(frozen=True)
class CorrelationVsDistance:
    """Correlation coefficient of activity fluctuations between sites vs distance.

    Attributes
    ----------
    distances : ndarray, shape (n_distances,)
        Euclidean lattice distances in site spacings present on the lattice up
        to ``max_distance`` (0, 1, sqrt 2, 2, ... in 2-D).
    distances_mm : ndarray, shape (n_distances,)
        The same in mm.
    r : ndarray, shape (n_types, n_distances)
        Mean correlation coefficient over all site pairs at that distance
        (1 at distance 0 by construction; NaN for a type without fluctuations).
    r_err : ndarray, shape (n_types, n_distances)
        Standard error of ``r`` from time blocks.
    n_pairs : ndarray of int, shape (n_distances,)
        Number of ordered site pairs at each distance.
    n_blocks : int
        Number of time blocks used for the standard errors.
    types : tuple of str
        Type names.
    """

    distances: np.ndarray
    distances_mm: np.ndarray
    r: np.ndarray
    r_err: np.ndarray
    n_pairs: np.ndarray
    n_blocks: int
    types: tuple


def _site_moments(record: Record, i_end: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-site mean and variance over samples ``0 .. i_end-1``."""
    moments = ShiftedMoments()
    for j0, j1 in batches(0, i_end, record.n_types * record.n_sites):
        moments.add(record.read(j0, j1))
    return moments.mean(), moments.var()


def correlation_vs_distance(
    A,
    dx: float | None = None,
    boundary: str | None = None,
    max_distance: float | None = None,
    *,
    record_interval: float | None = None,
    discard: float = 0.0,
    n_blocks: int = DEFAULT_BLOCKS,
) -> CorrelationVsDistance:
    """Correlation coefficient of fluctuations between sites as a function of distance.

    Fluctuations are ``z(x, t) = (A(x, t) - m_x) / s_x`` with the per-site mean
    ``m_x`` and standard deviation ``s_x`` over the whole record (after
    ``discard``). For each time block ``b`` the average of ``z(x) z(y)`` over
    all ordered site pairs at distance ``d`` and over the block's samples is
    ``c_b(d)``. ``r(d) = sum_b c_b(d) / sum_b c_b(0)``, the correlation over the
    whole record, whatever the number of blocks (``r(0) = 1`` exactly); its
    standard error is that of a ratio of block means (delta method): the
    standard deviation of ``c_b(d) - r(d) c_b(0)`` over the blocks, over
    ``sqrt(n_blocks)`` and the mean of ``c_b(0)``. Periodic lattices use the
    minimum image; open lattices only pairs inside the lattice. Sites without
    fluctuations are left out. All pair sums are computed with FFTs over the
    lattice.

    Parameters
    ----------
    A : array, shape (n_time, n_types, *lattice), or a result
        Activity in Hz.
    dx : float
        Lattice spacing in mm (arrays; taken from a result's config).
    boundary : {"periodic", "open"}
        Boundary condition (arrays; taken from a result's config).
    max_distance : float, optional
        Largest distance reported, in site spacings; default half the shortest
        lattice axis longer than one site (0 on a single site).
    record_interval : float, optional
        ms; needed for arrays when ``discard > 0``.
    discard : float
        Initial transient to drop, ms.
    n_blocks : int
        Number of time blocks for the standard errors (>= 2); see
        :func:`meshfield.analysis.mean_var` for the choice of block length.

    Returns
    -------
    CorrelationVsDistance
    """
    record = as_record(A, record_interval, discard, dx=dx, boundary=boundary)
    dx, boundary = record.need_geometry()
    lattice = record.lattice_shape
    periodic = boundary == "periodic"
    if max_distance is None:
        long_axes = [n for n in lattice if n > 1]
        max_distance = min(long_axes) // 2 if long_axes else 0
    max_distance = number("max_distance", max_distance, "a distance >= 0 in site spacings", 0.0)
    # no offset is longer than the lattice's diagonal (and 1e300**2 overflows)
    max_distance = min(max_distance, float(sum(lattice)))
    length, blocks = record.blocks(n_blocks)
    mean, var = _site_moments(record, length * len(blocks))
    valid = var > CONSTANT_RTOL * mean**2
    valid &= var > 0.0
    scale = np.where(valid, 1.0 / np.sqrt(np.where(valid, var, 1.0)), 0.0)

    fft_shape = tuple(n if periodic else 2 * n for n in lattice)
    axes = tuple(range(-len(lattice), 0))
    grids = np.meshgrid(
        *[_displacements(n, periodic, size) for n, size in zip(lattice, fft_shape)], indexing="ij"
    )
    squared = sum(g.astype(np.int64) ** 2 for g in grids)
    geometric = np.ones(fft_shape, dtype=bool)
    for g, n in zip(grids, lattice):
        geometric &= np.abs(g) < n
    wanted = geometric & (squared <= max_distance**2 + 1e-9)
    distances_sq, label = np.unique(squared[wanted], return_inverse=True)
    groups = np.full(fft_shape, -1)
    groups[wanted] = label
    n_groups = distances_sq.size
    keep = groups.ravel() >= 0

    def grouped(values: np.ndarray) -> np.ndarray:
        """Sum of values (n_types, *fft_shape) over the offsets of each distance."""
        flat = values.reshape(values.shape[0], -1)[:, keep]
        return np.stack([np.bincount(label, weights=row, minlength=n_groups) for row in flat])

    def autocorrelate(field: np.ndarray) -> np.ndarray:
        """sum_x f(x) f(x + offset) for every FFT offset, summed over leading axes."""
        spectrum = np.fft.fftn(field, s=fft_shape, axes=axes)
        power = (spectrum.real**2 + spectrum.imag**2).reshape((-1, record.n_types) + fft_shape).sum(axis=0)
        return np.fft.ifftn(power, axes=axes).real

    pairs_per_sample = grouped(np.rint(autocorrelate(valid.astype(float)[None])))
    n_pairs = grouped(np.rint(autocorrelate(np.ones((1, record.n_types) + lattice))))[0].astype(int)
    per_sample = record.n_types * int(np.prod(fft_shape))
    block_c = np.empty((len(blocks), record.n_types, n_groups))
    with np.errstate(invalid="ignore", divide="ignore"):
        for b, (i0, i1) in enumerate(blocks):
            sums = np.zeros((record.n_types,) + fft_shape)
            for j0, j1 in batches(i0, i1, per_sample):
                sums += autocorrelate((record.read(j0, j1) - mean) * scale)
            # No pairs at a distance: undefined (NaN), never the +-inf of
            # rounding noise over zero.
            block_c[b] = np.where(pairs_per_sample > 0, grouped(sums) / (pairs_per_sample * length), np.nan)
        # A ratio of the block sums, not a mean of the blocks' ratios: that
        # estimator's bias grows as the blocks shorten, so r would depend on
        # n_blocks. The SE is the ratio's (delta method): the residuals
        # c_b(d) - r c_b(0) keep out the blocks' common changes of variance.
        c0 = block_c[:, :, :1]
        mean_c = block_c.mean(axis=0)
        mean_c0 = mean_c[:, :1]
        r = np.where(mean_c0 > 0, mean_c / mean_c0, np.nan)
        residual = block_c - r * c0
        n = len(blocks)
        r_err = np.sqrt((residual**2).sum(axis=0) / (n * (n - 1))) / mean_c0
    distances = np.sqrt(distances_sq.astype(float))
    return CorrelationVsDistance(
        distances=distances,
        distances_mm=distances * dx,
        r=r,
        r_err=r_err,
        n_pairs=n_pairs,
        n_blocks=len(blocks),
        types=record.types,
    )


@dataclass(frozen=True)
class SpatialSpectrum:
    """Radially averaged spatial power spectrum and its dominant wave number.

    Attributes
    ----------
    k : ndarray, shape (n_shells,)
        Shell wave numbers ``m * k_step`` (rad/mm), m = 0, 1, ...
    power : ndarray, shape (n_types, n_shells)
        Mean power per Fourier mode in each shell, Hz^2:
        ``|sum_x A(x) exp(-i k.x)|^2 / n_sites^2``, averaged over the modes of
        the shell and over time; summed over all modes this is the spatial
        mean square of A (after removing the spatial mean if asked).
    n_modes : ndarray of int, shape (n_shells,)
        Number of lattice wave vectors in each shell.
    k_step : float
        Shell width ``2 pi / (n dx)`` with ``n`` the longest lattice axis
        (rad/mm): the lattice wave-number step on a square lattice, the finer
        of the two steps on a rectangular one.
    k_peak : ndarray, shape (n_types,)
        Dominant wave number (rad/mm): the power-weighted mean ``|k|`` of the
        modes in the shell of largest mean power, excluding ``k = 0``; NaN for
        a type whose field has no spatial structure (no power at ``k != 0``
        beyond rounding).
    k_peak_steps : ndarray of int, shape (n_types,)
        Index of that shell: ``|k|`` in steps of ``k_step``, rounded (0 where
        ``k_peak`` is NaN).
    wavelength : ndarray, shape (n_types,)
        ``2 pi / k_peak``, mm.
    k_vector_peak : ndarray, shape (n_types, lattice_ndim)
        The single lattice wave vector of largest power, rad/mm (of the pair
        ``+-k`` of a real field, the first in FFT order; NaN where ``k_peak``
        is).
    types : tuple of str
        Type names (``("0",)`` for a snapshot).
    """

    k: np.ndarray
    power: np.ndarray
    n_modes: np.ndarray
    k_step: float
    k_peak: np.ndarray
    k_peak_steps: np.ndarray
    wavelength: np.ndarray
    k_vector_peak: np.ndarray
    types: tuple


def spatial_spectrum(
    A,
    dx: float | None = None,
    *,
    lattice_ndim: int | None = None,
    record_interval: float | None = None,
    discard: float = 0.0,
    remove_mean: bool = True,
) -> SpatialSpectrum:
    """Spatial power spectrum (radially averaged in 2-D) and the dominant wave number.

    Parameters
    ----------
    A : array or result
        A snapshot ``[*lattice]`` (Hz, 1 or 2 axes) when ``lattice_ndim`` is
        None; with ``lattice_ndim`` an array in the result layout
        ``[time, type, *lattice]``; or a result. The transform treats the
        lattice as periodic, also an open one (whose edges then add some
        power at all wave numbers). Records are averaged over time
        (after ``discard``), per type, which suits stationary patterns and
        travelling waves alike.
    dx : float
        Lattice spacing in mm (arrays; taken from a result's config).
    lattice_ndim : int, optional
        Number of lattice axes of an array in the result layout.
    record_interval : float, optional
        ms; needed for arrays when ``discard > 0``.
    discard : float
        Initial transient to drop, ms.
    remove_mean : bool
        Subtract the spatial mean of each snapshot (then the ``k = 0`` power is 0).

    Returns
    -------
    SpatialSpectrum
    """
    if not isinstance(remove_mean, (bool, np.bool_)):
        raise AnalysisInputError(f"remove_mean = {remove_mean!r}: must be True or False")
    if lattice_ndim is not None:
        lattice_ndim = whole("lattice_ndim", lattice_ndim, 1)
        if is_result(A) and lattice_ndim != len(A.shape):
            raise AnalysisInputError(
                f"lattice_ndim = {lattice_ndim} contradicts the result's {len(A.shape)}-D lattice "
                f"{list(A.shape)}; leave it out for results"
            )
    if is_path(A):
        as_record(A)  # the message for a path
    if is_result(A) or lattice_ndim is not None:
        if not is_result(A) and np.ndim(A) != lattice_ndim + 2:
            raise AnalysisInputError(
                f"A has {np.ndim(A)} axes; with lattice_ndim = {lattice_ndim} the layout "
                f"[time, type, *lattice] needs {lattice_ndim + 2}"
            )
        record = as_record(A, record_interval, discard, dx=dx)
        lattice = record.lattice_shape
        per_sample = record.n_types * record.n_sites
        chunks = (record.read(j0, j1) for j0, j1 in batches(0, record.n_time, per_sample))
        n_time, types = record.n_time, record.types
        dx = record.dx
    else:
        snapshot = real_array("A", A)
        if not 1 <= snapshot.ndim <= 2:
            raise AnalysisInputError(
                f"A has shape {snapshot.shape}: a snapshot has 1 or 2 lattice axes; for an array in the "
                "result layout [time, type, *lattice] pass lattice_ndim (1 or 2)"
            )
        lattice = snapshot.shape
        chunks = iter([snapshot[None, None]])
        n_time, types = 1, ("0",)
    if dx is None:
        raise AnalysisInputError("dx (lattice spacing in mm) is required for array input")
    dx = number("dx", dx, "a positive lattice spacing in mm", 0.0, strict=True)
    long_axes = [n for n in lattice if n > 1]
    if not long_axes:
        raise AnalysisInputError("a spatial spectrum needs a lattice with more than one site")
    axes = tuple(range(-len(lattice), 0))
    n_sites = int(np.prod(lattice))
    power = np.zeros((len(types),) + tuple(lattice))
    mean_square = np.zeros(len(types))
    for x in chunks:
        mean_square += (x**2).mean(axis=axes).sum(axis=0)
        if remove_mean:
            x = x - x.mean(axis=axes, keepdims=True)
        spectrum = np.fft.fftn(x, axes=axes)
        power += (spectrum.real**2 + spectrum.imag**2).sum(axis=0)
    power /= n_time * n_sites**2

    k_axes = [2.0 * np.pi * np.fft.fftfreq(n, d=dx) for n in lattice]
    k_grid = np.meshgrid(*k_axes, indexing="ij")
    k_norm = np.sqrt(sum(k**2 for k in k_grid))
    # The step of the longest axis: every non-zero wave vector of any axis is at
    # least one step long, so shell 0 holds k = 0 alone.
    k_step = 2.0 * np.pi / (max(long_axes) * dx)
    shell = wave_number_shell(k_norm, k_step).ravel()
    n_modes = np.bincount(shell)
    flat = power.reshape(len(types), -1)
    shell_power = np.stack([np.bincount(shell, weights=row, minlength=n_modes.size) for row in flat])
    with np.errstate(invalid="ignore"):
        shell_power = np.where(n_modes > 0, shell_power / np.maximum(n_modes, 1), 0.0)
    peak_shell = 1 + np.argmax(shell_power[:, 1:], axis=1)
    # A field without spatial structure (power at k != 0 at the level of
    # rounding) has no dominant wave number.
    flat_field = shell_power[:, 1:].max(axis=1) <= 1e-20 * mean_square / n_time
    peak_shell[flat_field] = 0
    k_peak = np.full(len(types), np.nan)
    k_vectors = np.stack([k.ravel() for k in k_grid], axis=1)
    nonzero = k_norm.ravel() > 0
    k_vector_peak = np.full((len(types), len(lattice)), np.nan)
    for t in range(len(types)):
        if flat_field[t]:
            continue
        members = shell == peak_shell[t]
        weight = flat[t, members].sum()
        k_peak[t] = (flat[t, members] @ k_norm.ravel()[members]) / weight if weight > 0 else peak_shell[t] * k_step
        # Of the pair +-k, whose powers a real field makes equal up to rounding,
        # the first in FFT order (argmax alone picks whichever rounding favours).
        values = flat[t, nonzero]
        best = np.flatnonzero(nonzero)[np.flatnonzero(values >= values.max() * (1.0 - 1e-9))[0]]
        k_vector_peak[t] = k_vectors[best]
    return SpatialSpectrum(
        k=np.arange(n_modes.size) * k_step,
        power=shell_power,
        n_modes=n_modes,
        k_step=k_step,
        k_peak=k_peak,
        k_peak_steps=peak_shell,
        wavelength=2.0 * np.pi / k_peak,
        k_vector_peak=k_vector_peak,
        types=types,
    )


@dataclass(frozen=True)
class SpaceTimeSpectrum:
    """Power of a (time x space) field over frequency and wave vector.

    Attributes
    ----------
    freqs : ndarray, shape (n_time,)
        Frequencies in Hz, ascending (``fftshift`` order).
    k : tuple of ndarray, one of shape (n_i,) per lattice axis
        Angular wave numbers in rad/mm, ascending.
    power : ndarray, shape (n_time, *lattice)
        ``|sum_{t,x} dA(t, x) exp(-i (k.x - 2 pi f t))|^2 / (n_time n_sites)^2``
        in Hz^2, with ``dA`` the field minus its overall mean; the sum over all
        entries is the mean square of ``dA``.
    """

    freqs: np.ndarray
    k: tuple
    power: np.ndarray


def _field(A, record_interval, dx, which, discard, duration) -> tuple[np.ndarray, float, float]:
    """One type's field ``[time, *lattice]`` with its record interval and dx."""
    array = None
    if is_result(A):
        record = as_record(A, record_interval, discard, dx=dx)
    else:
        if is_path(A):
            as_record(A)  # the message for a path
        array = np.asarray(A)
        if not 2 <= array.ndim <= 3:
            raise AnalysisInputError(
                f"A has shape {array.shape}; expected one type's field [time, *lattice] with 1 or 2 "
                "lattice axes (for an array in the result layout [time, type, *lattice] pass A[:, type])"
            )
        record = as_record(array[:, None], record_interval, discard, dx=dx)
    dt = record.need_interval()
    if record.dx is None:
        raise AnalysisInputError("dx (lattice spacing in mm) is required for array input")
    n_time = record.n_time
    if duration is not None:
        duration = number("duration", duration, "a positive time in ms", 0.0, strict=True)
        n_time = min(n_time, floor_samples(duration / dt))
        if n_time < 2:
            raise AnalysisInputError(f"duration = {duration} ms holds fewer than 2 samples")
    if array is not None:  # its NaN named by the index into the array given
        check_finite("A", array[record.start:record.start + n_time], offset=record.start)
    return record.read(0, n_time, only_type=type_index(record, which)), dt, record.dx


def _space_time_power(field: np.ndarray, dt: float, dx: float):
    """Unshifted frequencies (Hz), wave numbers (rad/mm) and power of a field."""
    n_time = field.shape[0]
    lattice = field.shape[1:]
    axes = tuple(range(1, field.ndim))
    fluctuation = field - field.mean()
    # exp(-i k.x) in space and exp(+i omega t) in time: the physical convention.
    transform = np.fft.ifft(np.fft.fftn(fluctuation, axes=axes), axis=0) * n_time
    power = (transform.real**2 + transform.imag**2) / (n_time * int(np.prod(lattice))) ** 2
    freqs = np.fft.fftfreq(n_time, d=dt * 1e-3)
    ks = tuple(2.0 * np.pi * np.fft.fftfreq(n, d=dx) for n in lattice)
    return freqs, ks, power


def space_time_spectrum(
    A,
    record_interval: float | None = None,
    dx: float | None = None,
    *,
    type: int | str = 0,
    discard: float = 0.0,
    duration: float | None = None,
) -> SpaceTimeSpectrum:
    """2-D (or 3-D) FFT power of a field over time and space.

    Parameters
    ----------
    A : array, shape (n_time, *lattice), or a result
        One type's activity in Hz on 1 or 2 lattice axes (e.g. a row of sites
        over time), or a result from which ``type`` is taken. Space and time
        are transformed as periodic, also on an open lattice.
    record_interval : float
        Sampling interval in ms (arrays).
    dx : float
        Lattice spacing in mm (arrays).
    type : int or str
        Type of a result, by index or name.
    discard : float
        Initial transient to drop, ms.
    duration : float, optional
        Analyse only this many ms after the transient (bounds memory).

    Returns
    -------
    SpaceTimeSpectrum
    """
    field, dt, dx = _field(A, record_interval, dx, type, discard, duration)
    freqs, ks, power = _space_time_power(field, dt, dx)
    return SpaceTimeSpectrum(
        freqs=np.fft.fftshift(freqs),
        k=tuple(np.fft.fftshift(k) for k in ks),
        power=np.fft.fftshift(power),
    )


class NoWaveError(AnalysisInputError):
    """A field without fluctuations at f > 0 and k != 0: no wave to measure."""


@dataclass(frozen=True)
class WaveSpeed:
    """Speed and direction of a travelling wave.

    Attributes
    ----------
    speed : float
        Phase speed in mm/ms (``inf`` for a synchronous oscillation found by
        cross-correlation, NaN if no wave was found).
    direction : tuple of float
        Unit vector of propagation on the lattice axes (``(+1.0,)`` towards
        increasing site index in 1-D); ``(0.0,)`` where the cross-correlation
        finds no direction (a synchronous oscillation, or no wave).
    frequency : float
        Frequency of the spectral peak, Hz (spectrum method; NaN otherwise).
    k : float
        Wave number of the spectral peak, rad/mm (spectrum method; NaN otherwise).
    lag : float
        Time lag of the cross-correlation peak between sites ``shift`` apart,
        ms (cross-correlation method; NaN otherwise).
    directionality : float
        ``(P(f, k) - P(f, -k)) / (P(f, k) + P(f, -k))`` at the peak: 1 for a
        pure travelling wave, 0 for a standing wave (spectrum method; NaN
        otherwise). Between 0 and 1, since the peak is the larger of the two,
        and anywhere in that range for noise too (0.8 on average for white
        noise): it means something only where ``share`` stands out. A peak at the spatial Nyquist wave number is its
        own mirror and gives 0.
    method : str
        ``"spectrum"`` or ``"xcorr"``.
    share : float
        Fraction of the field's fluctuation power (its mean square over time
        and sites) in the peak mode ``(f, k)`` and its twin ``(-f, -k)``,
        which a real field holds equally: 1 for a clean plane wave, 1/2 for a
        standing wave (its power is split with ``(f, -k)``). White noise gives
        about ``2 (ln(n/2) + 0.6) / n`` with ``n = n_time n_sites`` (the
        largest of ``n/2`` exponentially distributed mode powers of mean
        ``1/n``); coloured noise, with its power at low ``f`` and ``k``, more
        (spectrum method; NaN otherwise).
    """

    speed: float
    direction: tuple
    frequency: float
    k: float
    lag: float
    directionality: float
    method: str
    share: float = float("nan")

    @property
    def velocity(self) -> np.ndarray:
        """Velocity vector, mm/ms."""
        return self.speed * np.asarray(self.direction)


def _hump_centres(c: np.ndarray, lags: np.ndarray) -> np.ndarray:
    """Centres (in lags) of the humps of ``c``: the runs of samples at or above
    half its maximum, each centred halfway between its two half-maximum
    crossings (interpolated linearly). A hump cut by either end of ``c`` has no
    centre. The midpoint of a symmetric hump is its peak, and unlike the highest
    sample it does not wander across a flat top with the noise."""
    half = 0.5 * c.max()
    above = np.concatenate(([False], c >= half, [False]))
    change = np.flatnonzero(above[1:] != above[:-1])
    first, stop = change[::2], change[1::2]  # a hump covers samples first .. stop - 1
    inside = (first > 0) & (stop < c.size)
    first, stop = first[inside], stop[inside]
    left = lags[first - 1] + (half - c[first - 1]) / (c[first] - c[first - 1])
    right = lags[stop - 1] + (c[stop - 1] - half) / (c[stop - 1] - c[stop])
    return 0.5 * (left + right)


def wave_speed(
    A,
    record_interval: float | None = None,
    dx: float | None = None,
    *,
    method: str = "spectrum",
    type: int | str = 0,
    discard: float = 0.0,
    duration: float | None = None,
    shift: int = 1,
    max_lag: float | None = None,
) -> WaveSpeed:
    """Speed (mm/ms) and direction of a travelling wave.

    ``method="spectrum"``: the peak of the space-time power over ``f > 0`` and
    ``k != 0`` gives the phase speed ``omega / |k| = 2 pi f / |k|`` (with f in
    kHz) and the direction ``k / |k|``. Its resolution is one frequency bin
    (``1 / duration``) and one wave-number step; use records holding several
    periods and wavelengths.

    ``method="xcorr"`` (1-D lattices): the cross-correlation of the
    fluctuations of sites ``shift`` apart, averaged over the site pairs that
    do not wrap around the lattice, peaks at
    the lag ``tau`` the wave needs to travel ``shift * dx``; the speed is
    ``shift dx / |tau|`` and the direction the sign of ``tau``. Within
    ``|tau| <= max_lag`` the humps of the correlation (runs at or above half
    its maximum) are located by their centres, halfway between their
    half-maximum crossings, and the hump nearest zero lag gives ``tau``; a
    hump cut by ``+-max_lag`` is not used (no hump left: NaN). Unambiguous
    when ``shift * dx`` is less than half a wavelength.

    Parameters
    ----------
    A : array, shape (n_time, *lattice), or a result
        One type's activity in Hz on 1 or 2 lattice axes, or a result from
        which ``type`` is taken.
    record_interval : float
        ms (arrays).
    dx : float
        mm (arrays).
    method : {"spectrum", "xcorr"}
    type : int or str
        Type of a result.
    discard, duration : float
        Transient to drop and duration to analyse, ms.
    shift : int
        Site separation for ``"xcorr"``.
    max_lag : float, optional
        Largest lag searched by ``"xcorr"``, ms; default a quarter of the record.

    Returns
    -------
    WaveSpeed
    """
    if method not in ("spectrum", "xcorr"):
        raise AnalysisInputError(f"method = {method!r}: allowed values are spectrum, xcorr")
    field, dt, dx = _field(A, record_interval, dx, type, discard, duration)
    lattice = field.shape[1:]
    if method == "spectrum":
        if all(n == 1 for n in lattice):
            raise NoWaveError(f"the lattice {list(lattice)} is a single site: it has no wave number k != 0, "
                              "so no wave to measure")
        if field.shape[0] < 3:
            raise NoWaveError(f"{field.shape[0]} samples resolve no frequency f > 0: no wave to measure "
                              "(analyse a longer duration)")
        freqs, ks, power = _space_time_power(field, dt, dx)
        k_grid = np.meshgrid(*ks, indexing="ij")
        k_nonzero = sum(k**2 for k in k_grid) > 0
        candidates = np.where((freqs > 0)[(slice(None),) + (None,) * len(lattice)] & k_nonzero, power, -1.0)
        peak = np.unravel_index(np.argmax(candidates), power.shape)
        # a synchronous oscillation or a frozen pattern leaves only rounding there
        if candidates[peak] <= 1e-20 * power.sum():
            raise NoWaveError("the field has no power at f > 0 and k != 0 beyond rounding: no wave to measure")
        k_vector = np.array([k[i] for k, i in zip(ks, peak[1:])])
        k_abs = float(np.sqrt(k_vector @ k_vector))
        mirror = (peak[0],) + tuple((-i) % n for i, n in zip(peak[1:], lattice))
        return WaveSpeed(
            speed=float(2.0 * np.pi * freqs[peak[0]] * 1e-3 / k_abs),
            direction=tuple(float(c) for c in k_vector / k_abs),
            frequency=float(freqs[peak[0]]),
            k=k_abs,
            lag=float("nan"),
            directionality=float((power[peak] - power[mirror]) / (power[peak] + power[mirror])),
            method=method,
            share=float(2.0 * power[peak] / power.sum()),
        )
    if len(lattice) != 1 or lattice[0] < 2:
        raise AnalysisInputError(
            f"method 'xcorr' needs a 1-D lattice of at least 2 sites; the field has lattice shape {list(lattice)}"
        )
    n_time, n = field.shape
    shift = whole("shift", shift, 1)
    if shift >= n:
        raise AnalysisInputError(f"shift = {shift!r}: must be an integer from 1 to {n - 1}")
    if max_lag is None:
        max_steps = n_time // 4
    else:
        max_steps = floor_samples(number("max_lag", max_lag, "a positive time in ms", 0.0, strict=True) / dt)
    if max_lag is None and max_steps < 1:
        raise AnalysisInputError(f"the record holds {n_time} samples; the cross-correlation needs at least 4 "
                                 "(its default max_lag is a quarter of the record)")
    if not 1 <= max_steps < n_time - 1:
        raise AnalysisInputError(f"max_lag = {max_lag!r} ms: must cover 1 to {n_time - 2} samples")
    fluctuation = field - field.mean(axis=0)
    spectrum = np.fft.rfft(fluctuation, n=2 * n_time, axis=0)
    # Pairs that do not wrap around are valid on both boundary conditions.
    earlier, later = spectrum[:, : n - shift], spectrum[:, shift:]
    cross = np.fft.irfft((np.conj(earlier) * later).sum(axis=1), n=2 * n_time)
    lags = np.arange(-max_steps, max_steps + 1)
    c = cross[lags] / (n_time - np.abs(lags))
    centres = _hump_centres(c, lags)
    if c.max() <= 0 or not centres.size:
        return WaveSpeed(float("nan"), (0.0,), float("nan"), float("nan"), float("nan"), float("nan"), method)
    lag = float(centres[np.argmin(np.abs(centres))]) * dt
    if abs(lag) < 1e-9 * dt:  # the centre of a hump symmetric about 0, to rounding
        lag = 0.0
    speed = shift * dx / abs(lag) if lag != 0 else float("inf")
    return WaveSpeed(
        speed=speed,
        direction=(float(np.sign(lag)),),
        frequency=float("nan"),
        k=float("nan"),
        lag=lag,
        directionality=float("nan"),
        method=method,
    )
