"""Oscillation frequency, amplitude and phase coherence (validation V7) on
synthetic signals with known answers.

Statistical tolerances are derived from the sample sizes in comments next to
each assertion; seeds are fixed so that every test is deterministic.
"""

from __future__ import annotations

import importlib
import re
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.stats import chi2

from meshfield.analysis import (
    AnalysisInputError,
    Oscillation,
    PhaseCoherence,
    oscillation,
    phase_coherence,
)

DT = 1.0  # ms
NYQUIST = 500.0  # Hz at DT
#: relative variance of a sum of n Hann-window bins of a smooth spectrum, per
#: bin: neighbours' powers are correlated by (2/3)^2, next neighbours' by (1/6)^2
HANN_SUM_VARIANCE = 1 + 2 * (2 / 3) ** 2 + 2 * (1 / 6) ** 2


def times(n_time, dt=DT):
    return np.arange(n_time) * dt


def stand_in(A, dt, types=None, dx=0.1, boundary="periodic"):
    """A minimal result object as meshfield.io.open_result returns it."""
    A = np.asarray(A, dtype=float)
    types = types or [f"T{i}" for i in range(A.shape[1])]
    return SimpleNamespace(
        A=A, Abar=A, times=np.arange(1, A.shape[0] + 1) * dt, types=types, record_interval=dt,
        shape=A.shape[2:], config={"lattice": {"shape": list(A.shape[2:]), "dx": dx, "boundary": boundary}},
    )


def edge_samples(f_lo, dt=DT):
    """The samples phase_coherence drops at each end: two periods of f_lo."""
    return int(np.ceil(2 * 1000.0 / f_lo / dt - 1e-9))


# ----------------------------------------------------------------------------- oscillation


def test_sine_frequency_and_amplitude_per_type():
    """7 Hz at 13.3 Hz and 3 Hz at 31.7 Hz on 20 Hz, weak white noise (SD 0.5 Hz),
    20 s at 1 ms: 20 Hann segments of 1 s, bins 1 Hz apart."""
    rng = np.random.default_rng(1)
    t = times(20_000)
    A = np.empty((t.size, 2, 3))
    A[:, 0] = 20 + 7 * np.cos(2 * np.pi * 13.3e-3 * t)[:, None] + 0.5 * rng.normal(size=(t.size, 3))
    A[:, 1] = 20 + 3 * np.cos(2 * np.pi * 31.7e-3 * t + 1.0)[:, None] + 0.5 * rng.normal(size=(t.size, 3))
    osc = oscillation(A, DT)
    assert isinstance(osc, Oscillation)
    assert osc.types == ("0", "1") and osc.segment_ms == 1000.0 and osc.n_segments == 20
    # The log-parabola through a Hann line is biased by at most 0.016 bins (a
    # scan of offsets between bins); 0.1 Hz is a tenth of a bin.
    np.testing.assert_allclose(osc.frequency, [13.3, 31.7], atol=0.1)
    # Noise adds its band's variance: 0.25 Hz^2 x (band width / Nyquist rate)
    # of the 3 sites, below 0.25 x 22 / 500 = 0.011 Hz^2 against a^2 / 2 = 4.5:
    # 0.1 % of the amplitude; Hann's leakage beyond the band is smaller still.
    np.testing.assert_allclose(osc.amplitude, [7.0, 3.0], rtol=0.02)
    np.testing.assert_allclose(osc.band, np.stack([osc.frequency / np.sqrt(2), osc.frequency * np.sqrt(2)], 1))
    # errors: finite and small against a bin and the amplitude
    assert np.all(np.isfinite(osc.frequency_err)) and np.all(osc.frequency_err < 0.05)
    assert np.all(np.isfinite(osc.amplitude_err)) and np.all(osc.amplitude_err < 0.01 * osc.amplitude)
    assert osc.frequency.shape == osc.amplitude_err.shape == (2,) and osc.band.shape == (2, 2)


def test_clean_line_between_bins_and_a_silent_type():
    """Without noise the amplitude is exact to Hann's leakage (< 1e-4); a
    constant type (its computed mean leaves rounding) gives NaN throughout."""
    t = times(8_000)
    A = np.stack([5 + 2.5 * np.cos(2 * np.pi * 40.5e-3 * t), np.full(t.size, 0.1)], axis=1)
    osc = oscillation(A, DT, segment_ms=500)
    assert osc.segment_ms == 500.0 and osc.n_segments == 16
    assert osc.frequency[0] == pytest.approx(40.5, abs=0.016 * 2)  # bins 2 Hz apart: 0.016 bins
    assert osc.amplitude[0] == pytest.approx(2.5, rel=1e-4)
    for field in (osc.frequency, osc.frequency_err, osc.amplitude, osc.amplitude_err):
        assert np.isnan(field[1])
    assert np.all(np.isnan(osc.band[1]))


def test_a_rhythm_on_a_falling_spectrum_is_found():
    """Red noise (correlated over 100 ms, SD 20 Hz) with a 15 Hz line of amplitude 2 Hz,
    60 s on 4 sites: the noise's spectrum is largest at the lowest bin, the line is
    the most prominent. Taking the largest bin gave 1 Hz with a zero jackknife error."""
    rng = np.random.default_rng(11)
    n_time, n_sites, tau = 60_000, 4, 100.0
    a = np.exp(-DT / tau)
    noise = np.empty((n_time, n_sites))
    noise[0] = rng.normal(size=n_sites)
    kicks = np.sqrt(1 - a * a) * rng.normal(size=(n_time, n_sites))
    for i in range(1, n_time):
        noise[i] = a * noise[i - 1] + kicks[i]
    t = times(n_time)
    A = (20 + 20 * noise + 2 * np.cos(2 * np.pi * 15e-3 * t)[:, None])[:, None]
    osc = oscillation(A, DT)
    # the line's bin holds about as much noise as line here: the peak is placed to
    # a fraction of a bin, within 3 jackknife SEs plus the Hann bias (0.016 bins)
    assert osc.frequency_err[0] < 0.2
    assert abs(osc.frequency[0] - 15.0) < 3 * osc.frequency_err[0] + 0.016
    # the band holds the line and the noise in it: amplitude^2 = 2^2 + 2 * noise
    # variance in the band (the Lorentzian of 20^2 Hz^2 over 1/(2 pi tau) = 1.6 Hz)
    lo, hi = osc.band[0]
    corner = 1000.0 / (2 * np.pi * tau)
    noise_var = 400 * (2 / np.pi) * (np.arctan(hi / corner) - np.arctan(lo / corner))
    assert osc.amplitude[0] == pytest.approx(np.sqrt(4 + 2 * noise_var), rel=0.1)


@pytest.mark.parametrize("f", [2.0, 2.5, 3.0, 3.5])
def test_amplitude_of_a_line_a_few_bins_above_zero(f):
    """An octave around 2-3.5 Hz spans only 1-2 bins of 1 Hz, narrower than a line's
    Hann leakage (+-1.5 bins): the band is widened to +-2 bins, which holds it all
    (it lost 18 % at 2 Hz and 9 % at 3 Hz before)."""
    t = times(20_000)
    A = (20 + 2 * np.cos(2 * np.pi * f * 1e-3 * t))[:, None, None]
    osc = oscillation(A, DT)
    assert osc.frequency[0] == pytest.approx(f, abs=0.02)
    assert osc.amplitude[0] == pytest.approx(2.0, rel=0.01)


def test_white_noise_amplitude_is_its_band_variance():
    """White noise of variance s^2 has S = s^2 dt_s: the variance in a band of
    w Hz is s^2 w / f_Nyq, and the amplitude sqrt(2 s^2 w / f_Nyq)."""
    rng = np.random.default_rng(5)
    s, n_seg, n_sites = 2.0, 20, 4
    A = 10 + s * rng.normal(size=(20_000, 1, n_sites))
    osc = oscillation(A, DT, f_min=100.0)  # a band of at least 70 bins
    freqs = np.fft.rfftfreq(1000, 1e-3)
    lo, hi = osc.band[0]
    assert lo >= 100 / np.sqrt(2) and hi <= NYQUIST
    inside = (freqs >= lo) & (freqs <= hi)
    # the band's width in bins: each bin 1 Hz, the Nyquist bin counted half
    width = np.where(freqs == NYQUIST, 0.5, 1.0)[inside].sum()
    expected = np.sqrt(2 * s**2 * width / NYQUIST)
    # The band variance sums `width` Hann bins, each averaged over 20 segments
    # and 4 sites: relative SD sqrt(1.94 / (width * 80)), halved for the
    # amplitude. Across 40 seeds (z SD 1.08, largest |z| 2.9) this holds;
    # 4 SD bounds also the excess of the peak bin the band is centred on.
    rel_sd = 0.5 * np.sqrt(HANN_SUM_VARIANCE / (width * n_seg * n_sites))
    assert abs(osc.amplitude[0] / expected - 1) < 4 * rel_sd
    # Without a rhythm the peak bin wanders between the jackknife's replicates
    # (here by hundreds of Hz), and so do the band and the amplitude: errors
    # far beyond the spectrum's own scatter are the sign of no rhythm.
    assert osc.frequency_err[0] > 10 * (1000.0 / osc.segment_ms)
    assert osc.amplitude_err[0] > 3 * rel_sd * expected


def test_jackknife_error_of_the_amplitude_matches_the_scatter_across_seeds():
    """A 2-Hz rhythm at 20.3 Hz in white noise of SD 3 Hz, 30 seeds: the mean
    jackknife SE against the SD of the amplitudes across seeds."""
    t = times(20_000)
    n_seeds = 30
    amplitudes, errors = [], []
    for seed in range(n_seeds):
        rng = np.random.default_rng(100 + seed)
        A = 20 + 2 * np.cos(2 * np.pi * 20.3e-3 * t + rng.uniform(0, 2 * np.pi)) + 3 * rng.normal(size=t.size)
        osc = oscillation(A, DT)
        amplitudes.append(osc.amplitude[0])
        errors.append(osc.amplitude_err[0])
    scatter = np.std(amplitudes, ddof=1)
    # The sample SD of 30 values: (n-1) sd^2 / sigma^2 is chi-square with 29
    # degrees of freedom; its 0.1 % and 99.9 % points bound sd / sigma to
    # 0.63 .. 1.42. The mean of 30 jackknife SEs (each about 16 % uncertain
    # with 20 segments) scatters by 3 %, and is the sigma it estimates.
    low, high = np.sqrt(chi2.ppf([0.001, 0.999], n_seeds - 1) / (n_seeds - 1))
    ratio = np.mean(errors) / scatter
    assert 1 / high / 1.1 < ratio < 1 / low * 1.1


# ----------------------------------------------------------------------------- phase coherence


def test_synchronous_ring_is_locked_without_lag():
    rng = np.random.default_rng(2)
    t = times(20_000)
    A = 20 + 5 * np.cos(2 * np.pi * 10e-3 * t)[:, None, None] + 0.3 * rng.normal(size=(t.size, 1, 8))
    pc = phase_coherence(A, DT, boundary="periodic")
    assert isinstance(pc, PhaseCoherence)
    assert pc.n_pairs == 8 and pc.n_blocks == 20 and pc.types == ("0",)
    # the band of oscillation: 10 / sqrt 2 .. 10 sqrt 2 Hz
    np.testing.assert_allclose(pc.band[0], [10 / np.sqrt(2), 10 * np.sqrt(2)], rtol=0.01)
    # Noise of variance 0.09 in a 7-Hz band of 500: 1.3e-3 Hz^2 against 12.5,
    # a phase jitter of about 0.01 rad and a PLV of 1 - 5e-5.
    assert pc.plv[0] > 0.99
    assert abs(pc.lag[0]) < 0.01
    assert 0 <= pc.plv_err[0] < 0.01


@pytest.mark.parametrize("direction", [1, -1])
def test_travelling_wave_on_a_ring_gives_its_phase_step(direction):
    """cos(2 pi f t - direction 2 pi x / 8): phi_x - phi_{x+1} = direction 2 pi / 8."""
    rng = np.random.default_rng(3)
    t = times(10_000)
    x = np.arange(8)
    A = 10 + np.cos(2 * np.pi * 12e-3 * t[:, None] - direction * 2 * np.pi * x / 8)[:, None]
    A += 0.05 * rng.normal(size=A.shape)
    pc = phase_coherence(A, DT, boundary="periodic", band=(8.0, 16.0))
    assert pc.plv[0] > 0.99
    assert pc.lag[0] == pytest.approx(direction * 2 * np.pi / 8, abs=0.01)
    np.testing.assert_array_equal(pc.band, [[8.0, 16.0]])


def test_travelling_wave_on_a_2d_lattice_averages_the_axes():
    """Along axis 0 of a periodic 4 x 4 lattice: pairs along axis 0 lag by
    2 pi / 4, those along axis 1 by 0; the lag of their mean is pi / 4."""
    t = times(6_000)
    x = np.arange(4)
    A = np.cos(2 * np.pi * 20e-3 * t[:, None, None] - 2 * np.pi * x[None, :, None] / 4) * np.ones((1, 1, 4))
    pc = phase_coherence(A[:, None], DT, boundary="periodic", band=(15.0, 25.0))
    assert pc.n_pairs == 32
    assert pc.plv[0] == pytest.approx(1.0, abs=1e-6)
    assert pc.lag[0] == pytest.approx(np.pi / 4, abs=1e-6)


def test_independent_narrow_band_noise_gives_the_chance_level():
    """Independent white noise at 16 sites in a 10-20 Hz band: the phase
    differences of a pair decorrelate in about 1 / (10 Hz), so n_eff is about
    band width x duration, and a pair's PLV is Rayleigh-distributed with mean
    sqrt(pi / (4 n_eff)) (0.063 here); over 16 pairs (relative SD 0.52 / 4)
    with n_eff uncertain by about 30 %, 0.5 .. 2 times it is a wide bound.
    Five seeds gave 0.043 .. 0.061."""
    rng = np.random.default_rng(4)
    n_time = 20_000
    A = rng.normal(size=(n_time, 1, 16))
    pc = phase_coherence(A, DT, boundary="periodic", band=(10.0, 20.0))
    n_eff = 10.0 * (n_time - 2 * edge_samples(10.0)) * DT * 1e-3
    chance = np.sqrt(np.pi / (4 * n_eff))
    assert 0.5 * chance < pc.plv[0] < 2 * chance
    assert 0 < pc.plv_err[0] < chance


def test_phase_locked_three_quarters_of_the_time():
    """Two sites, the second lagging by pi/2 for the last quarter of every
    10-s block: PLV = |0.75 + 0.25 exp(i pi/2)| = 0.79."""
    rng = np.random.default_rng(6)
    n_time, f = 40_000, 10.0
    t = times(n_time)
    delta = np.where(t % 10_000 >= 7_500, np.pi / 2, 0.0)
    A = np.stack([np.cos(2 * np.pi * f * 1e-3 * t), np.cos(2 * np.pi * f * 1e-3 * t - delta)], axis=1)[:, None]
    A += 0.05 * rng.normal(size=A.shape)
    pc = phase_coherence(A, DT, boundary="open")
    assert pc.n_pairs == 1
    f_lo, f_hi = pc.band[0]
    edge = edge_samples(f_lo)
    n_kept = n_time - 2 * edge
    used = delta[edge: edge + 20 * (n_kept // 20)]  # the samples of the 20 blocks
    expected = abs(np.mean(np.exp(1j * used)))  # about |0.75 + 0.25 i| = 0.79
    # Each of the 8 phase jumps is smeared over about 1 / band width (0.14 s)
    # by the band-pass: at most that fraction of the time is off the ideal.
    transitions = 8 / ((f_hi - f_lo) * n_kept * DT * 1e-3)
    assert abs(pc.plv[0] - expected) < transitions
    # the second site lags: phi_0 - phi_1 = delta >= 0
    assert 0 < pc.lag[0] < np.pi / 2


@pytest.mark.parametrize("lattice, boundary, pairs", [
    ((4, 4), "periodic", 32), ((4, 4), "open", 24), ((2,), "periodic", 1), ((2,), "open", 1),
    ((3,), "periodic", 3), ((1, 5), "periodic", 5), ((2, 3), "periodic", 3 + 6), ((8,), "open", 7),
])
def test_neighbour_pairs_are_counted_once(lattice, boundary, pairs):
    t = times(3_000)
    rng = np.random.default_rng(7)
    A = np.cos(2 * np.pi * 30e-3 * t)[(slice(None), None) + (None,) * len(lattice)] * np.ones((1, 1) + lattice)
    A = A + 0.01 * rng.normal(size=A.shape)
    pc = phase_coherence(A, DT, boundary=boundary, band=(20.0, 40.0), n_blocks=4)
    assert pc.n_pairs == pairs
    assert pc.plv[0] > 0.99


@pytest.mark.parametrize("lattice, boundary", [((6, 4), "periodic"), ((5, 3), "open"), ((7,), "periodic"),
                                               ((2, 3), "periodic")])
def test_rows_read_in_chunks_give_the_numbers_of_one_read(lattice, boundary, monkeypatch):
    """phase_coherence reads the lattice a few rows at a time with the next row as a
    halo; one row per chunk gives what the whole lattice at once gives."""
    module = importlib.import_module("meshfield.analysis.oscillation")  # the package's name is the function

    rng = np.random.default_rng(12)
    n_time = 4000
    t = times(n_time)
    n_sites = int(np.prod(lattice))
    # a common rhythm with a random phase per site, drifting slowly, plus noise
    drift = np.cumsum(0.02 * rng.normal(size=(n_time, n_sites)), axis=0)
    A = 10 + np.cos(2 * np.pi * 12e-3 * t[:, None] + rng.uniform(0, 1, n_sites) + drift)
    A = (A + 0.3 * rng.normal(size=A.shape)).reshape((n_time, 1) + lattice)
    whole = phase_coherence(A, DT, boundary=boundary, band=(8.0, 16.0))
    row_size = n_sites // lattice[0]
    monkeypatch.setattr(module, "CHUNK_ELEMENTS", n_time * row_size)
    chunked = phase_coherence(A, DT, boundary=boundary, band=(8.0, 16.0))
    assert chunked.n_pairs == whole.n_pairs
    np.testing.assert_allclose([chunked.plv, chunked.plv_err, chunked.lag], [whole.plv, whole.plv_err, whole.lag],
                               rtol=1e-9, atol=1e-12)
    # a NaN in a later chunk is reported at its place in the whole lattice
    A[100, 0, lattice[0] - 1] = np.nan
    with pytest.raises(AnalysisInputError, match=re.escape(f"at index (100, 0, {lattice[0] - 1}")):
        phase_coherence(A, DT, boundary=boundary, band=(8.0, 16.0))


def test_a_result_that_stores_its_lattice_flat_is_read_by_rows():
    """A result-like object whose A is [time, type, site] with a 4 x 4 lattice in its
    config: the rows are sliced from the flat sites."""
    rng = np.random.default_rng(14)
    t = times(3000)
    A = 10 + np.cos(2 * np.pi * 12e-3 * t)[:, None, None, None] + 0.3 * rng.normal(size=(3000, 1, 4, 4))
    flat = stand_in(A.reshape(3000, 1, 16), DT)
    flat.config["lattice"]["shape"], flat.shape = [4, 4], (4, 4)
    expected = phase_coherence(A, DT, boundary="periodic", band=(8.0, 16.0))
    got = phase_coherence(flat, band=(8.0, 16.0))
    assert got.n_pairs == expected.n_pairs == 32
    np.testing.assert_array_equal(got.plv, expected.plv)


def test_silent_sites_and_types_are_left_out():
    """A constant site leaves its two pairs out of the ring of 8; a constant
    type has no pair left (NaN), the other type is unaffected."""
    t = times(5_000)
    wave = np.cos(2 * np.pi * 10e-3 * t)[:, None] * np.ones((1, 8))
    wave[:, 3] = 4.0
    A = np.stack([wave, np.full((t.size, 8), 2.0)], axis=1)
    pc = phase_coherence(A, DT, boundary="periodic", band=(5.0, 20.0), n_blocks=5)
    assert pc.plv[0] == pytest.approx(1.0, abs=1e-9) and pc.lag[0] == pytest.approx(0.0, abs=1e-9)
    assert np.isnan(pc.plv[1]) and np.isnan(pc.plv_err[1]) and np.isnan(pc.lag[1])
    # the default band of a type without a rhythm is NaN: so is its coherence
    default = phase_coherence(A, DT, boundary="periodic", segment_ms=500)
    assert np.all(np.isnan(default.band[1])) and np.isnan(default.plv[1])
    assert default.plv[0] == pytest.approx(1.0, abs=1e-9)
    # ... and oscillation's bands, NaN included, can be passed as they are
    osc = oscillation(A, DT, segment_ms=500)
    given = phase_coherence(A, DT, boundary="periodic", band=osc.band)
    for key, value in vars(default).items():
        np.testing.assert_array_equal(getattr(given, key), value, err_msg=key)


# ----------------------------------------------------------------------------- bad input


RNG = np.random.default_rng(11)
RING = 10 + RNG.normal(size=(4_000, 1, 6))
SITE = 10 + RNG.normal(size=(4_000, 2))
SLOW = RING + 5 * np.cos(2 * np.pi * 2e-3 * np.arange(4_000))[:, None, None]  # a 2 Hz rhythm

BAD_CALLS = [
    (lambda: phase_coherence(SITE, DT, boundary="periodic"), "A has a single site (lattice shape [1])"),
    (lambda: phase_coherence(SITE[:, :, None], DT, boundary="open", band=(5, 10)), "A has a single site"),
    (lambda: phase_coherence(RING, DT, band=(5, 10)), "boundary is required for array input; allowed: periodic"),
    (lambda: phase_coherence(RING, DT, boundary="wrap"), "boundary = 'wrap': allowed values are periodic, open"),
    (lambda: phase_coherence(RING, DT, boundary="open", band=(0, 10)),
     "band = (0, 10): must be a pair (f_lo, f_hi) in Hz"),
    (lambda: phase_coherence(RING, DT, boundary="open", band=(-5, 10)), "band = (-5, 10): must be"),
    (lambda: phase_coherence(RING, DT, boundary="open", band=(10, 600)),
     ("band = (10, 600): must be a pair (f_lo, f_hi) in Hz, or one per type (shape (1, 2), a type "
      "without a rhythm (nan, nan)), with 0 < f_lo < f_hi <= 500 Hz (the Nyquist rate)")),
    (lambda: phase_coherence(RING, DT, boundary="open", band=(float("nan"), float("nan"))),
     "band = (nan, nan): must be"),
    (lambda: phase_coherence(RING, DT, boundary="open", band=[[5, 10], [5, 10]]), "has shape (2, 2)"),
    (lambda: phase_coherence(RING, DT, boundary="open", band=np.ma.masked_array([5, 10])), "band is a masked"),
    (lambda: phase_coherence(RING, DT, boundary="open", band=(20, 10)), "band = (20, 10): must be"),
    (lambda: phase_coherence(RING, DT, boundary="open", band=(10, 10)), "band = (10, 10): must be"),
    (lambda: phase_coherence(RING, DT, boundary="open", band=(10, float("nan"))), "band = (10, nan)"),
    (lambda: phase_coherence(RING, DT, boundary="open", band=(1, 2, 3)), "band = (1, 2, 3) has shape (3,)"),
    (lambda: phase_coherence(RING, DT, boundary="open", band="10-20"), "band = '10-20': must be"),
    (lambda: phase_coherence(RING, DT, boundary="open", band=(5, 10), segment_ms=500),
     "segment_ms = 500: it sets the PSD segments of the default band; give either band or segment_ms"),
    (lambda: phase_coherence(RING, DT, boundary="open", band=(0.4, 10)),
     "band: f_lo = 0.4 Hz; the 4000 samples (4000 ms) after the transient are all dropped"),
    (lambda: phase_coherence(SLOW, DT, boundary="open"),
     "the default band of type '0', (1, 4.00024) Hz around the rhythm that oscillation() finds: "
     "f_lo = 1 Hz; the 4000 samples (4000 ms) after the transient are all dropped as edges of the circular "
     "FFT (2 periods of f_lo, 2000 samples, at each end); use a longer record, or give a band"),
    (lambda: phase_coherence(RING, DT, boundary="open", band=(True, 10)), "band = (True, 10): must be"),
    (lambda: phase_coherence(RING, DT, boundary="open", band=(5, 10), n_blocks=1),
     "n_blocks = 1: must be a whole number >= 2"),
    (lambda: phase_coherence(RING, DT, boundary="open", band=(5, 10), n_blocks=5000),
     "n_blocks = 5000 is more than the 3200 samples left"),
    (lambda: phase_coherence(RING, DT, boundary="open", band=(100.05, 100.2)),
     "band = (100.05, 100.2) Hz holds no frequency bin of the record's FFT (bins 0.25 Hz apart"),
    (lambda: phase_coherence(RING, None, boundary="open", band=(5, 10)), "record_interval (ms) is required"),
    (lambda: oscillation(RING, DT, n_segments=1), "n_segments = 1: must be a whole number >= 2"),
    (lambda: oscillation(RING, DT, segment_ms=3000), "segment_ms = 3000: the record after the transient"),
    (lambda: oscillation(RING[:3], DT), "the default segments: the record after the transient (3 samples"),
    (lambda: oscillation(RING, DT, f_min=0), "f_min = 0: must be a positive frequency in Hz"),
    (lambda: oscillation(RING, DT, f_min=float("inf")), "f_min = inf: must be a positive frequency"),
    (lambda: oscillation(RING, DT, f_min=500),
     "f_min = 500: no frequency bin from f_min up to below the Nyquist rate 500 Hz"),
    (lambda: oscillation(RING, DT, segment_ms=2),
     "f_min = 1: no frequency bin from f_min up to below the Nyquist rate 500 Hz with segments of 2 ms (bins "
     "500 Hz apart); lower f_min or use longer segments"),
    (lambda: oscillation(RING, DT, window="flattop"), "window = 'flattop': allowed values are boxcar, hann"),
    (lambda: oscillation(RING), "record_interval (ms) is required"),
    (lambda: oscillation("out/r.h5", DT), "A = 'out/r.h5' is a path; open the result first"),
]


@pytest.mark.parametrize("call, message", BAD_CALLS)
def test_bad_input_names_the_argument(call, message):
    with pytest.raises(AnalysisInputError, match=re.escape(message)):
        call()


def test_non_finite_activity_is_refused():
    A = RING.copy()
    A[123, 0, 4] = np.nan
    for call in (lambda: oscillation(A, DT), lambda: phase_coherence(A, DT, boundary="open", band=(5, 10)),
                 lambda: phase_coherence(A, DT, boundary="open")):
        with pytest.raises(AnalysisInputError, match=re.escape("A holds non-finite values (NaN or inf): nan at "
                                                               "index (123, 0, 4)")):
            call()


# ----------------------------------------------------------------------------- results


def test_a_result_gives_what_its_array_gives():
    """A result stand-in: the same numbers as its array with the record
    interval and boundary, which the result supplies."""
    rng = np.random.default_rng(12)
    t = times(3_000, 0.5)
    A = 5 + np.cos(2 * np.pi * 25e-3 * t)[:, None, None, None] + 0.2 * rng.normal(size=(t.size, 2, 3, 4))
    res = stand_in(A, 0.5, types=["E", "I"], boundary="open")
    osc = oscillation(res, discard=100.0, segment_ms=250.0)
    assert osc.types == ("E", "I")
    for key, value in vars(oscillation(A, 0.5, 100.0, segment_ms=250.0)).items():
        if key != "types":  # "0", "1" for an array
            np.testing.assert_array_equal(getattr(osc, key), value, err_msg=key)
    pc = phase_coherence(res, discard=100.0, segment_ms=250.0, n_blocks=5)
    assert pc.n_pairs == 2 * 4 + 3 * 3 and pc.types == ("E", "I")
    for key, value in vars(phase_coherence(A, 0.5, 100.0, boundary="open", segment_ms=250.0,
                                           n_blocks=5)).items():
        if key != "types":
            np.testing.assert_array_equal(getattr(pc, key), value, err_msg=key)
    with pytest.raises(AnalysisInputError, match="contradicts the result's boundary"):
        phase_coherence(res, boundary="periodic")


def test_a_meso_run_gives_what_its_array_gives():
    """A short meso run of v3_field (8 x 8, periodic, 500 ms): 0.6 s, or about
    10 s where numba compiles the kernels first (a fresh checkout)."""
    import meshfield

    run = meshfield.run(meshfield.load_config("v3_field", overrides=["run.t_end=500"]))
    args = {"discard": 100.0, "band": (20.0, 80.0), "n_blocks": 4}
    from_run = phase_coherence(run, **args)
    assert from_run.n_pairs == 128 and from_run.types == ("E", "I")
    assert np.all((from_run.plv > 0) & (from_run.plv <= 1)) and np.all(np.isfinite(from_run.plv_err))
    from_array = phase_coherence(np.asarray(run.A), run.record_interval, boundary="periodic", **args)
    for key, value in vars(from_array).items():
        if key != "types":
            np.testing.assert_array_equal(getattr(from_run, key), value, err_msg=key)
    np.testing.assert_array_equal(oscillation(run, discard=100.0, segment_ms=100.0).amplitude,
                                  oscillation(np.asarray(run.A), run.record_interval, 100.0,
                                              segment_ms=100.0).amplitude)


@pytest.mark.parametrize("f0", [9.3, 11.5, 14.93, 17.2, 23.8])
def test_a_cycle_with_a_harmonic_gives_its_fundamental(f0):
    """A noise-free cycle cos(f0) + 0.3 cos(2 f0): the leakage around the fundamental
    leaves emptier neighbourhoods at the harmonic and beside the line, so the most
    prominent bin was often one of those (38 of 247 frequencies at h = 0.05, 218 at
    h = 0.5); the largest prominent peak is the fundamental."""
    t = times(20_000)
    A = (20 + 5 * np.cos(2 * np.pi * f0 * 1e-3 * t) + 1.5 * np.cos(4 * np.pi * f0 * 1e-3 * t))[:, None, None]
    osc = oscillation(A, DT)
    assert osc.frequency[0] == pytest.approx(f0, abs=0.02)  # the Hann vertex bias: 0.016 bins
    assert osc.amplitude[0] == pytest.approx(5.0, rel=0.01)


def test_a_rhythm_at_f_min_is_found():
    """A 3.3 Hz line searched from f_min = 3 Hz: its prominence is measured over a
    neighbourhood on both sides (from the first bin above zero), not one clipped at
    f_min, which the line's own skirt filled (it gave 4.00 +- 0)."""
    rng = np.random.default_rng(13)
    t = times(20_000)
    A = (20 + np.cos(2 * np.pi * 3.3e-3 * t) + 0.1 * rng.normal(size=t.size))[:, None, None]
    osc = oscillation(A, DT, f_min=3.0)
    assert osc.frequency[0] == pytest.approx(3.3, abs=0.02)


def test_the_v7_mean_field_cycle_has_the_frequency_of_its_period():
    """The deterministic limit cycle of v7_oscillation (mean field, 10 s after 0.5 s):
    the PSD peak against the mean period between upward crossings of the mean."""
    import meshfield

    run = meshfield.run(meshfield.load_config("v7_oscillation", overrides=["run.t_end=10500",
                                                                             "run.mean_field=true"]))
    E = np.asarray(run.A[500:, 0, 0])
    up = np.flatnonzero((E[:-1] < E.mean()) & (E[1:] >= E.mean()))
    # crossing times interpolated within the 1-ms record
    times_up = up + (E.mean() - E[up]) / (E[up + 1] - E[up])
    f_period = 1000.0 / np.diff(times_up).mean()
    osc = oscillation(run, discard=500.0)
    assert osc.frequency[0] == pytest.approx(f_period, abs=0.02), (osc.frequency, f_period)
