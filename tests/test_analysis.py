"""Synthetic signals with known answers for meshfield.analysis (issue 4).

Statistical tolerances are derived from the sample sizes in comments next to
each assertion; seeds are fixed so that every test is deterministic.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from scipy.signal import lfilter

from meshfield.analysis import (
    AnalysisInputError,
    NotBimodalError,
    NoWaveError,
    auto_thresholds,
    bistable_signal,
    correlation_vs_distance,
    dwell_times,
    fano_factor,
    log_band_average,
    mean_var,
    psd,
    smooth,
    space_time_spectrum,
    spatial_spectrum,
    wave_speed,
)
from meshfield.lattice import wave_number_shell


def stand_in(A, dt, types=None, dx=0.1, boundary="periodic"):
    """A minimal result object as meshfield.io.open_result returns it."""
    A = np.asarray(A, dtype=float)
    types = types or [f"T{i}" for i in range(A.shape[1])]
    return SimpleNamespace(
        A=A,
        Abar=A,
        times=np.arange(1, A.shape[0] + 1) * dt,
        types=types,
        record_interval=dt,
        shape=A.shape[2:],
        config={"lattice": {"shape": list(A.shape[2:]), "dx": dx, "boundary": boundary}},
    )


def telegraph(rng, n_time, p_leave_up, p_leave_down):
    """Discrete-time two-state Markov chain (+1/-1) and its number of switches.

    Each step the chain leaves the up (down) state with probability
    p_leave_up (p_leave_down), so dwell lengths are geometric with means
    1/p steps.
    """
    u = rng.random(n_time)
    state = np.empty(n_time, dtype=np.int8)
    state[0] = 1
    for i in range(1, n_time):
        leave = p_leave_up if state[i - 1] == 1 else p_leave_down
        state[i] = -state[i - 1] if u[i] < leave else state[i - 1]
    return state, int(np.count_nonzero(state[1:] != state[:-1]))


# ---------------------------------------------------------------- spectra


def test_psd_sine_peak_and_power():
    dt, amplitude, f0 = 1.0, 3.0, 10.0
    t = np.arange(10_000) * dt
    spectrum = psd(amplitude * np.sin(2 * np.pi * f0 * 1e-3 * t + 0.4), dt)
    df = spectrum.freqs[1]
    assert spectrum.segment_ms == 1000.0 and spectrum.n_segments == 10
    peak = np.argmax(spectrum.S[:, 0])
    assert spectrum.freqs[peak] == pytest.approx(f0)
    # Two-sided: the line at +f0 carries half the variance a^2/2.
    assert spectrum.S[peak, 0] * df == pytest.approx(amplitude**2 / 4, rel=1e-9)
    assert spectrum.S_site.shape == (spectrum.freqs.size, 1, 1)


@pytest.mark.parametrize("f0", [10.37, 101.5])
def test_psd_hann_line_between_bins(f0):
    dt, amplitude = 1.0, 2.0
    t = np.arange(16_000) * dt
    spectrum = psd(amplitude * np.sin(2 * np.pi * f0 * 1e-3 * t), dt, n_segments=16, window="hann")
    peak = np.argmax(spectrum.S[:, 0])
    df = spectrum.freqs[1]
    assert abs(spectrum.freqs[peak] - f0) <= df
    # The periodic Hann window spreads a line over at most 2 bins to each
    # side of its exact position, so +-3 bins around the peak hold it all.
    assert spectrum.S[peak - 3 : peak + 4, 0].sum() * df == pytest.approx(amplitude**2 / 4, rel=1e-3)


def test_psd_parseval_two_sided():
    rng = np.random.default_rng(11)
    x = rng.normal(size=(4000, 2, 3)) * np.array([1.0, 3.0])[:, None]
    spectrum = psd(x, 0.5, n_segments=4)
    df = spectrum.freqs[1]
    # S(0) df + 2 sum_{0<f<Nyquist} S df + S(Nyquist) df = variance of each
    # mean-removed segment, exactly (boxcar window).
    weights = np.full(spectrum.freqs.size, 2.0)
    weights[[0, -1]] = 1.0
    total = np.einsum("f,ftx->tx", weights, spectrum.S_site) * df
    segments = x.reshape(4, 1000, 2, 3)
    assert np.allclose(total, segments.var(axis=1).mean(axis=0), rtol=1e-12)


def test_psd_white_noise_flat_at_s2_dt():
    rng = np.random.default_rng(1)
    s, dt, n_segments, n_sites = 2.0, 0.5, 16, 8
    x = rng.normal(0.0, s, size=(n_segments * 2000, 1, n_sites)) + 7.0
    spectrum = psd(x, dt, n_segments=n_segments)
    level = s**2 * dt * 1e-3
    assert spectrum.freqs[-1] == pytest.approx(1000.0 / (2 * dt))
    bins = spectrum.S[1:, 0]
    # Each bin of the site- and segment-averaged periodogram has relative SE
    # 1/sqrt(n_segments n_sites); boxcar bins are independent, so the mean
    # over n bins has relative SE 1/sqrt(n_segments n_sites n).
    rel_se = 1.0 / np.sqrt(n_segments * n_sites * bins.size)
    assert abs(bins.mean() / level - 1.0) < 3 * rel_se
    # The reported per-bin standard error matches that prediction; its own
    # scatter (16 segments) averages out over ~1000 bins to well under 10 %.
    assert spectrum.S_err[1:, 0].mean() / (level / np.sqrt(n_segments * n_sites)) == pytest.approx(1.0, rel=0.1)
    assert spectrum.S_site_err[1:].mean() / (level / np.sqrt(n_segments)) == pytest.approx(1.0, rel=0.1)
    # Flat: every log band within 3 of its (segment-scatter) standard errors.
    bands = log_band_average(spectrum)
    assert bands.value.shape == (8, 1) and np.all(bands.n_bins > 0)
    assert np.all(np.abs(bands.value[:, 0] - level) < 3 * bands.se[:, 0])


def test_psd_hann_first_bin_deficit():
    # Documented: with the mean removed, Hann's first bin of a flat spectrum
    # is low by 1/6. 200 segments x 16 sites: relative SE 1/sqrt(3200) = 1.8 %.
    rng = np.random.default_rng(5)
    x = rng.normal(size=(200 * 64, 1, 16))
    spectrum = psd(x, 1.0, n_segments=200, window="hann")
    level = 1e-3
    assert spectrum.S[1, 0] / level == pytest.approx(5 / 6, abs=3 / np.sqrt(3200))
    assert spectrum.S[3, 0] / level == pytest.approx(1.0, abs=3 / np.sqrt(3200))


@pytest.mark.parametrize("draw", ["poisson", "bernoulli"])
def test_psd_spike_counts_give_r_over_N(draw):
    rng = np.random.default_rng(2)
    N, rate, dt, n_time = 50, 20.0, 1.0, 64_000
    p = rate * dt * 1e-3
    counts = rng.poisson(N * p, n_time) if draw == "poisson" else rng.binomial(N, p, n_time)
    A = counts / (N * dt * 1e-3)
    spectrum = psd(A, dt)
    # Poisson counts are white with variance N p: S = r/N. Binomial counts
    # have variance N p (1 - p): S = r (1 - r dt)/N.
    expected = rate / N * (1.0 if draw == "poisson" else 1.0 - p)
    high = spectrum.freqs > 100.0
    rel_se = 1.0 / np.sqrt(spectrum.n_segments * high.sum())
    assert abs(spectrum.S[high, 0].mean() / expected - 1.0) < 3 * rel_se


def test_psd_mean_is_that_of_the_samples_it_transforms():
    """The discarded transient (10 samples) and the tail beyond the last whole
    segment (7 samples) are out of the mean, as they are out of the spectrum."""
    rng = np.random.default_rng(8)
    A = rng.normal(size=(417, 2, 3)) + np.array([5.0, 40.0])[:, None]
    A[:10] += 1000.0
    A[-7:] -= 1000.0
    spectrum = psd(A, 0.5, n_segments=4, discard=5.0)
    np.testing.assert_allclose(spectrum.mean, A[10:410].mean(axis=(0, 2)), rtol=1e-13)


@pytest.mark.parametrize("window", ["boxcar", "hann"])
@pytest.mark.parametrize("shape", [(1,), (5,), (5, 3)])
def test_psd_without_per_site_spectra_is_the_same_in_chunks(monkeypatch, shape, window):
    """per_site=False transforms one type and a few lattice rows at a time (here
    chunks of 1, 2 and all rows): the site averages, their errors, the segment
    spectra and the means are those of the whole-lattice transform."""
    import meshfield.analysis.spectra as spectra

    rng = np.random.default_rng(23)
    A = rng.normal(size=(1630, 2) + shape) * rng.uniform(0.5, 2.0, size=(1, 2) + shape) + 9.0
    given = A.copy()
    result = stand_in(A, 0.5, types=["E", "I"], boundary="open")
    whole_lattice = psd(A, 0.5, segment_ms=200.0, discard=7.0, window=window)
    length = 400  # samples per segment
    row_size = int(np.prod(shape[1:]))
    for chunk_rows in (1, 2, shape[0]):
        monkeypatch.setattr(spectra, "CHUNK_ELEMENTS", chunk_rows * length * row_size)
        for source in (A, result):
            chunked = psd(source, 0.5 if source is A else None, segment_ms=200.0, discard=7.0,
                          window=window, per_site=False)
            assert chunked.S_site is None and chunked.S_site_err is None
            assert chunked.n_segments == whole_lattice.n_segments == 4
            for name in ("freqs", "S", "S_err", "segments", "mean"):
                expected = getattr(whole_lattice, name)
                # atol: the f = 0 bin of a mean-removed segment is rounding (1e-30)
                np.testing.assert_allclose(getattr(chunked, name), expected, rtol=1e-12,
                                           atol=1e-12 * np.abs(expected).max(), err_msg=name)
            assert chunked.types == (("0", "1") if source is A else ("E", "I"))
            assert chunked.segment_ms == whole_lattice.segment_ms
            assert np.array_equal(A, given)  # the caller's records are read, never changed


def test_psd_rejects_bad_input():
    x = np.zeros(100)
    with pytest.raises(AnalysisInputError, match="record_interval"):
        psd(x)
    with pytest.raises(AnalysisInputError, match="n_segments"):
        psd(x, 1.0, n_segments=1)
    with pytest.raises(AnalysisInputError, match="window"):
        psd(x, 1.0, n_segments=2, window="welch")
    with pytest.raises(AnalysisInputError, match="discard"):
        psd(x, 1.0, discard=-1.0)
    with pytest.raises(AnalysisInputError, match=r"per_site = 'no': must be True or False"):
        psd(x, 1.0, per_site="no")


def test_log_band_average_edges_and_errors():
    freqs = np.arange(0, 501, 1.0)
    S = np.ones((freqs.size, 2))
    S_err = np.full_like(S, 0.1)
    bands = log_band_average(freqs, S, S_err, f_min=1.0, f_max=500.0, n_bands=8)
    assert np.allclose(bands.f_lo[0], 1.0) and np.allclose(bands.f_hi[-1], 500.0)
    assert np.allclose(bands.f_hi[:-1], bands.f_lo[1:])
    assert bands.n_bins.sum() == 500  # 1 .. 500 Hz, each bin in exactly one band
    assert np.allclose(bands.value, 1.0)
    assert np.allclose(bands.se[:, 0], 0.1 / np.sqrt(bands.n_bins))
    sparse = log_band_average(np.array([0.0, 1.0, 500.0]), np.ones(3), n_bands=8)
    assert np.isnan(sparse.value[3]) and sparse.n_bins.tolist() == [1, 0, 0, 0, 0, 0, 0, 1]
    # bins on the log-spaced edges, which geomspace computes an ulp off
    # (geomspace(1, 256, 9)[5] is 32.000000000000007): f_lo <= f < f_hi held
    # the 32 Hz bin in the 16-32 Hz band
    powers = log_band_average(np.arange(257.0), np.ones(257), f_min=1.0, f_max=256.0, n_bands=8)
    assert powers.n_bins.tolist() == [1, 2, 4, 8, 16, 32, 64, 129]
    with pytest.raises(AnalysisInputError, match="f_min"):
        log_band_average(freqs, S, f_min=600.0, f_max=500.0)


# ---------------------------------------------------------------- mean, variance


def test_mean_var_of_ar1_process():
    rng = np.random.default_rng(3)
    n_time, a, mean, sd = 200_000, 0.9, 5.0, 2.0
    x = mean + lfilter([sd * np.sqrt(1 - a * a)], [1, -a], rng.normal(size=n_time))
    result = mean_var(x, 1.0, n_blocks=20)
    assert result.block_ms == 10_000.0
    assert abs(result.mean[0] - mean) < 3 * result.mean_se[0]
    assert abs(result.var[0] - sd**2) < 3 * result.var_se[0]
    # The SE of the mean of an AR(1) process is sd sqrt((1+a)/((1-a) n)); the
    # batch-means estimate from 20 blocks scatters by ~16 %, and ignoring the
    # correlation would be 3.2 times too small: 50 % tolerance separates them.
    expected_se = sd * np.sqrt((1 + a) / ((1 - a) * n_time))
    assert result.mean_se[0] == pytest.approx(expected_se, rel=0.5)


def test_batch_means_errors_against_the_scatter_over_records_and_block_length():
    """The calibration that docs/analysis.md states for mean_var: over R = 400
    independent AR(1) records (tau = 10 samples; the types of one array) the
    RMS of mean_se over the SD of mean is 1 with blocks of 50 tau (a record of
    1000 tau in 20 blocks), and about 0.6 with blocks of one tau (20 tau in 20
    blocks: the SE 40 % low). The Monte Carlo error of such a ratio is about
    sqrt(1/(2 R)) = 0.035; 0.12 is 3.5 of those."""
    R, tau = 400, 10.0
    rng = np.random.default_rng(12)
    a = np.exp(-1.0 / tau)

    def records(n_time):
        e = rng.normal(size=(n_time, R))
        e[0] /= np.sqrt(1 - a * a)  # a stationary start
        return 5.0 + lfilter([np.sqrt(1 - a * a)], [1, -a], e, axis=0)

    def ratio(result):
        return np.sqrt(np.mean(result.mean_se**2)) / result.mean.std(ddof=1)

    long_blocks = mean_var(records(int(1000 * tau)), 1.0, n_blocks=20)
    assert ratio(long_blocks) == pytest.approx(1.0, abs=0.12)
    var_ratio = np.sqrt(np.mean(long_blocks.var_se**2)) / long_blocks.var.std(ddof=1)
    assert var_ratio == pytest.approx(1.0, abs=0.12)
    short_blocks = mean_var(records(int(20 * tau)), 1.0, n_blocks=20)
    assert ratio(short_blocks) == pytest.approx(0.6, abs=0.1)
    # var is low by the variance of the record's mean, 2 tau / T = 0.1 at 20 tau
    # (the mean of 400 records of SD 0.29 is good to 0.015)
    assert short_blocks.var.mean() == pytest.approx(0.9, abs=0.05)


def test_batch_means_errors_are_the_sample_sd_of_the_blocks_over_root_n():
    """Exact on a record whose blocks are constant: 20 blocks of 7 samples with
    values v_b (the 3 samples left over are dropped). The block means are v_b
    and the block variances (v_b - mean v)^2, so the SEs are their sample SDs
    (ddof = 1) over sqrt(20). A population SD (ddof = 0) would be 2.6 % smaller,
    too little for the statistical tests to see."""
    v = np.random.default_rng(5).normal(10.0, 2.0, 20)
    x = np.concatenate((np.repeat(v, 7), [50.0, 50.0, 50.0]))
    result = mean_var(x, 1.0, n_blocks=20)
    assert result.block_ms == 7.0
    assert result.mean[0] == pytest.approx(v.mean(), rel=1e-13)
    assert result.mean_se[0] == pytest.approx(v.std(ddof=1) / np.sqrt(20), rel=1e-12)
    block_var = (v - v.mean()) ** 2
    assert result.var[0] == pytest.approx(block_var.mean(), rel=1e-12)
    assert result.var_se[0] == pytest.approx(block_var.std(ddof=1) / np.sqrt(20), rel=1e-12)


def test_mean_var_per_type_and_sites():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(20_000, 2, 3, 2)) * np.array([1.0, 2.0])[:, None, None] + np.array([3.0, -1.0])[:, None, None]
    result = mean_var(x, 0.5, discard=100.0)
    assert np.allclose(result.mean, [3.0, -1.0], atol=3 * result.mean_se.max())
    assert np.allclose(result.var, [1.0, 4.0], atol=3 * result.var_se.max())
    constant = mean_var(np.full((100, 1, 2), 4.0), 1.0)
    assert np.allclose(constant.mean, 4.0) and np.allclose(constant.var, 0.0)


# ---------------------------------------------------------------- spatial


def _distance2(x, y, lattice, boundary):
    total = 0
    for xi, yi, n in zip(x, y, lattice):
        d = abs(yi - xi)
        if boundary == "periodic":
            d = min(d, n - d)
        total += d * d
    return total


def _correlation_reference(A, boundary, max_distance, n_blocks):
    """Pair-by-pair loop implementing the definition in correlation_vs_distance."""
    n_time, n_types = A.shape[:2]
    lattice = A.shape[2:]
    length = n_time // n_blocks
    used = A[: length * n_blocks]
    z = (used - used.mean(axis=0)) / used.std(axis=0)
    sites = list(np.ndindex(*lattice))
    sums, counts = {}, {}
    for x in sites:
        for y in sites:
            key = _distance2(x, y, lattice, boundary)
            if key > max_distance**2:
                continue
            products = z[(slice(None), slice(None)) + x] * z[(slice(None), slice(None)) + y]
            block_means = products.reshape(n_blocks, length, n_types).mean(axis=1)
            sums[key] = sums.get(key, 0.0) + block_means
            counts[key] = counts.get(key, 0) + 1
    keys = sorted(sums)
    c = np.stack([sums[k] / counts[k] for k in keys], axis=-1)
    return np.sqrt(keys), c.mean(axis=0) / c[:, :, :1].mean(axis=0)


@pytest.mark.parametrize("boundary", ["periodic", "open"])
def test_correlation_matches_pairwise_definition(boundary):
    rng = np.random.default_rng(6)
    A = rng.normal(size=(300, 2, 4, 3)) + np.arange(12).reshape(4, 3)
    A[:, :, 1:, :] += 0.7 * A[:, :, :-1, :]
    result = correlation_vs_distance(A, dx=0.2, boundary=boundary, max_distance=2.5, n_blocks=3)
    distances, r = _correlation_reference(A, boundary, 2.5, 3)
    assert np.allclose(result.distances, distances)
    assert np.allclose(result.distances_mm, 0.2 * distances)
    assert np.allclose(result.r, r, atol=1e-12)


def test_correlation_of_independent_noise():
    rng = np.random.default_rng(7)
    n_time, n = 4000, 16
    A = rng.normal(size=(n_time, 2, n)) * 2.0 + 10.0
    result = correlation_vs_distance(A, dx=0.05, boundary="periodic", max_distance=5)
    assert np.allclose(result.distances, np.arange(6))
    assert np.all(result.r[:, 0] == 1.0) and np.all(result.r_err[:, 0] == 0.0)
    assert np.all(np.abs(result.r[:, 1:]) < 3 * result.r_err[:, 1:])
    # Independent sites: each pair product has unit variance, so the SE of the
    # average over n_time samples and the n_pairs/2 distinct pairs is about
    # 1/sqrt(n_time n_pairs/2); the block estimate must be within a factor 2.
    expected = 1.0 / np.sqrt(n_time * result.n_pairs[1:] / 2)
    assert np.all((result.r_err[:, 1:] > expected / 2) & (result.r_err[:, 1:] < 2 * expected))


@pytest.mark.parametrize("boundary", ["periodic", "open"])
def test_correlation_of_neighbour_average(boundary):
    # Field = sum of white noise over a site and its 4 neighbours (5 terms).
    # Pairs share 2 terms at distance 1 and sqrt 2, 1 term at distance 2 and
    # none beyond: r = 2/5, 2/5, 1/5, 0.
    rng = np.random.default_rng(8)
    n = 10
    # Open: build on a lattice one site larger on every side and keep the
    # interior, so no sum wraps around; periodic: sums wrap by construction.
    size = n + 2 if boundary == "open" else n
    noise = rng.normal(size=(3000, 1, size, size))
    field = noise + sum(np.roll(noise, s, axis=axis) for axis in (2, 3) for s in (1, -1))
    if boundary == "open":
        field = field[:, :, 1:-1, 1:-1]
    result = correlation_vs_distance(field, dx=0.1, boundary=boundary, max_distance=3)
    expected = {0: 1.0, 1: 0.4, 2: 0.4, 4: 0.2, 5: 0.0, 8: 0.0, 9: 0.0}
    assert [int(round(d * d)) for d in result.distances] == list(expected)
    target = np.array(list(expected.values()))
    # 3 SE plus a tiny allowance for the exact zeros at distance 0.
    assert np.all(np.abs(result.r[0] - target) <= 3 * result.r_err[0] + 1e-12)
    assert result.r_err[0, 1:].max() < 0.01


def test_correlation_does_not_depend_on_the_number_of_blocks():
    """Sparse counts (0.7 per sample) with a term shared by neighbours: each
    site is own + c_x + c_(x-1) with Poisson means 0.3, 0.2, 0.2, so r(1) =
    0.2 / 0.7 and r(2) = 0. The ratio of block sums is the whole record's
    correlation for any number of blocks (a mean of the blocks' own ratios
    gave 0.2855 with 20 blocks and 0.2772, 2 SE less, with 600); its SE covers
    the truth, and r(0) is 1 with no error."""
    rng = np.random.default_rng(12)
    common = rng.poisson(0.2, (6000, 1, 8))
    counts = rng.poisson(0.3, (6000, 1, 8)) + common + np.roll(common, 1, axis=2)
    results = {n: correlation_vs_distance(counts.astype(float), dx=0.1, boundary="periodic", max_distance=2,
                                          n_blocks=n) for n in (2, 20, 600)}
    np.testing.assert_allclose(results[2].r, results[600].r, rtol=1e-10)
    np.testing.assert_allclose(results[20].r, results[600].r, rtol=1e-10)
    r, r_err = results[20].r[0], results[20].r_err[0]
    assert r[0] == 1.0 and r_err[0] == 0.0
    assert np.all(np.abs(r - [1.0, 0.2 / 0.7, 0.0]) <= 3 * r_err + 1e-12)
    # about 1/sqrt(6000 * 8) for the pair average, within a factor 2
    assert 0.5 / np.sqrt(48_000) < r_err[2] < 2 / np.sqrt(48_000)


def test_correlation_single_site_and_errors():
    x = np.random.default_rng(9).normal(size=(100, 2, 1))
    result = correlation_vs_distance(x, dx=1.0, boundary="open")
    assert result.distances.tolist() == [0.0] and np.all(result.r == 1.0)
    with pytest.raises(AnalysisInputError, match="dx"):
        correlation_vs_distance(x, boundary="open")
    with pytest.raises(AnalysisInputError, match="boundary"):
        correlation_vs_distance(x, dx=1.0, boundary="reflecting")


def _plane_wave(rng, n=64, dx=0.05, dt=1.0, n_time=1000, mode=4, f=10.0, noise=0.3, sign=1):
    x = np.arange(n) * dx
    t = np.arange(n_time) * dt
    k = 2 * np.pi * mode / (n * dx)
    omega = 2 * np.pi * f * 1e-3
    field = np.cos(sign * k * x[None, :] - omega * t[:, None]) + noise * rng.normal(size=(n_time, n))
    return field, k, omega / k


def test_spatial_spectrum_of_plane_wave():
    rng = np.random.default_rng(10)
    field, k, _ = _plane_wave(rng)
    result = spatial_spectrum(field[:, None, :], 0.05, lattice_ndim=1)
    assert result.k_step == pytest.approx(2 * np.pi / (64 * 0.05))
    assert result.k_peak_steps.tolist() == [4]
    assert result.k_peak[0] == pytest.approx(k)
    assert result.wavelength[0] == pytest.approx(0.8)
    # Parseval: mean power per mode times modes = spatial mean square.
    total = (result.power[0] * result.n_modes).sum()
    assert total == pytest.approx(np.mean((field - field.mean(axis=1, keepdims=True)) ** 2), rel=1e-12)


@pytest.mark.parametrize("mode", [(3, 4), (2, 3)])
def test_spatial_spectrum_of_stripes(mode):
    rng = np.random.default_rng(11)
    n, dx = 32, 0.1
    X, Y = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    stripes = 5.0 + np.cos(2 * np.pi * (mode[0] * X + mode[1] * Y) / n) + 0.5 * rng.normal(size=(n, n))
    result = spatial_spectrum(stripes, dx)
    steps = np.hypot(*mode)
    assert result.k_peak_steps.tolist() == [int(round(steps))]
    # The power-weighted |k| of the peak shell is the stripes' wave number up
    # to noise power in the other modes of the shell.
    assert result.k_peak[0] / result.k_step == pytest.approx(steps, rel=0.01)
    assert result.wavelength[0] == pytest.approx(n * dx / steps, rel=0.01)
    assert np.allclose(np.abs(result.k_vector_peak[0]) / result.k_step, mode)
    assert result.power[0, 0] == pytest.approx(0.0, abs=1e-20)


def test_k_vector_peak_is_the_first_of_the_pair_in_fft_order():
    # A real field has equal power at +k and -k; the documented choice is the
    # first of the pair in FFT order, here (3, 4) steps, not (-3, -4), whatever
    # the stripes' phase (argmax alone followed the rounding: 11 of 50 phases).
    n, dx = 32, 0.1
    X, Y = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    k_step = 2 * np.pi / (n * dx)
    for j in range(50):
        stripes = 5.0 + np.cos(2 * np.pi * (3 * X + 4 * Y) / n + 2 * np.pi * j / 50)
        result = spatial_spectrum(stripes, dx)
        np.testing.assert_allclose(result.k_vector_peak[0] / k_step, [3.0, 4.0], atol=1e-12)


def test_shells_round_half_steps_up():
    assert wave_number_shell([0.0, 0.49, 0.5, 1.5, 2.5, 4.5], 1.0).tolist() == [0, 0, 1, 2, 3, 5]
    # also where |k| / k_step is x.5 only to rounding: the first mode of the short
    # axis of 9 x 6 sites (0.1 mm) is 1.5 steps, computed as 1.4999999999999998
    k_short = 2 * np.pi * np.fft.fftfreq(6, d=0.1)[1]
    assert wave_number_shell(k_short, 2 * np.pi / (9 * 0.1)) == 2
    # On 24 x 16 sites the steps are 1 (axis 0) and 1.5 (axis 1) shells: three
    # stripes along axis 1 lie at 4.5 steps, which np.rint put into shell 4
    # beside 4-step modes; they now lead shell 5.
    x, y = np.meshgrid(np.arange(24), np.arange(16), indexing="ij")
    result = spatial_spectrum(np.cos(2 * np.pi * 3 * y / 16), 0.1)
    assert result.k_peak_steps[0] == 5
    assert result.k_peak[0] == pytest.approx(2 * np.pi * 3 / 1.6)


def test_spatial_spectrum_of_result_per_type():
    rng = np.random.default_rng(12)
    n = 16
    x = np.arange(n)
    A = np.empty((50, 2, n, n))
    A[:, 0] = np.cos(2 * np.pi * 2 * x / n)[:, None] + 0.1 * rng.normal(size=(50, n, n))
    A[:, 1] = np.cos(2 * np.pi * 5 * x / n)[None, :] + 0.1 * rng.normal(size=(50, n, n))
    result = spatial_spectrum(stand_in(A, 1.0, dx=0.2), discard=10.0)
    assert result.k_peak_steps.tolist() == [2, 5]
    assert result.types == ("T0", "T1")


@pytest.mark.parametrize("sign", [1, -1])
def test_wave_speed_spectrum_and_xcorr(sign):
    rng = np.random.default_rng(13)
    field, k, speed = _plane_wave(rng, sign=sign)
    assert speed == pytest.approx(0.008)
    by_spectrum = wave_speed(field, 1.0, 0.05)
    # Mode numbers are whole: the peak falls exactly on a bin.
    assert by_spectrum.speed == pytest.approx(speed, rel=1e-12)
    assert by_spectrum.direction == (float(sign),)
    assert by_spectrum.k == pytest.approx(k) and by_spectrum.frequency == pytest.approx(10.0)
    assert by_spectrum.directionality > 0.99
    # Cross-correlation over 4 sites (25 ms lag, a quarter period): the flat
    # top of the correlation and the noise limit the lag to ~0.5 ms.
    by_lag = wave_speed(field, 1.0, 0.05, method="xcorr", shift=4)
    assert by_lag.speed == pytest.approx(speed, rel=0.05)
    assert by_lag.direction == (float(sign),)
    assert by_lag.lag == pytest.approx(sign * 25.0, rel=0.05)


def test_wave_speed_2d_direction_and_standing_wave():
    n, dx, dt, n_time = 16, 0.1, 1.0, 400
    X, Y = np.meshgrid(np.arange(n) * dx, np.arange(n) * dx, indexing="ij")
    t = np.arange(n_time)[:, None, None] * dt
    kx, ky = 2 * np.pi * np.array([1, -2]) / (n * dx)
    omega = 2 * np.pi * 20.0 * 1e-3
    field = np.cos(kx * X + ky * Y - omega * t)
    result = wave_speed(field, dt, dx)
    k_abs = np.hypot(kx, ky)
    assert result.speed == pytest.approx(omega / k_abs)
    assert np.allclose(result.direction, np.array([kx, ky]) / k_abs)
    assert np.allclose(result.velocity, omega / k_abs * np.array([kx, ky]) / k_abs)
    standing = np.cos(kx * X)[None] * np.cos(omega * t)
    assert abs(wave_speed(standing, dt, dx).directionality) < 1e-9


@pytest.mark.parametrize("n_sites", [7, 16, 30])
def test_wave_speed_refuses_a_field_without_a_wave(n_sites):
    # A synchronous oscillation and a frozen stripe pattern have power only at
    # k = 0 or f = 0; what the FFT leaves elsewhere is rounding (on 7 and 30
    # sites about 1e-34 of the power; 16 happens to transform exactly), which
    # once gave speeds such as 0.095 mm/ms at 190 Hz.
    t = np.arange(1000.0)
    synchronous = ((10 + 5 * np.sin(2 * np.pi * 0.01 * t + 0.3))[:, None] * np.ones(n_sites)).astype(np.float32)
    with pytest.raises(NoWaveError, match="no wave"):
        wave_speed(synchronous, 1.0, 0.1)
    x, y = np.meshgrid(np.arange(n_sites), np.arange(16), indexing="ij")
    stripes = np.cos(2 * np.pi * (2 * x / n_sites + y / 16)).astype(np.float32)
    with pytest.raises(NoWaveError, match="no wave"):
        wave_speed(np.broadcast_to(stripes, (200, n_sites, 16)), 1.0, 0.1)


def test_wave_speed_xcorr_of_a_synchronous_oscillation():
    # a hump symmetric about zero lag: its centre is 0 to rounding, reported as 0
    # (on 7 sites it came out as 1.8e-15 ms: 5.6e13 mm/ms in direction +1)
    t = np.arange(1000.0)[:, None]
    synchronous = 10 + 5 * np.sin(2 * np.pi * 0.01 * t) * np.ones(7)
    result = wave_speed(synchronous, 1.0, 0.1, method="xcorr")
    assert result.lag == 0.0 and result.speed == np.inf and result.direction == (0.0,)


def test_wave_speed_xcorr_needs_the_whole_hump_within_max_lag():
    # a bump drifting at 0.002 mm/ms: its neighbour correlation is a hump ~200 ms
    # wide around 50 ms, cut by max_lag = 70 ms (NaN) and whole within the default
    dx, n, v, sigma = 0.1, 32, 0.002, 0.3
    x = np.arange(n) * dx
    t = np.arange(2000.0)[:, None]
    ring = n * dx
    bump = np.exp(-((((x - v * t) + ring / 2) % ring - ring / 2) ** 2) / (2 * sigma**2))
    assert np.isnan(wave_speed(bump, 1.0, dx, method="xcorr", max_lag=70.0).speed)
    assert wave_speed(bump, 1.0, dx, method="xcorr").speed == pytest.approx(v, rel=0.05)


def test_wave_speed_xcorr_of_a_noisy_drifting_bump():
    # A Gaussian bump (sigma 0.2 mm) drifting at 0.008 mm/ms round a ring of 32
    # sites, in white noise of its own standard deviation. The correlation of
    # neighbours is a hump 80 ms wide around the 12.5-ms lag, flat within the
    # noise over ten milliseconds; its highest sample (the earlier rule) gave
    # 0.022 mm/ms. The hump's centre is off by 1 % (SD over 20 seeds, shift 1;
    # 0.4 % for shifts 2 and 4).
    dx, n, v, sigma = 0.1, 32, 0.008, 0.2
    x = np.arange(n) * dx
    t = np.arange(2000.0)[:, None]
    ring = n * dx
    clean = 20 * np.exp(-((((x - 0.5 - v * t) + ring / 2) % ring - ring / 2) ** 2) / (2 * sigma**2))
    for seed in range(3):
        noisy = clean + clean.std() * np.random.default_rng(seed).normal(size=clean.shape)
        for shift in (1, 2, 4):
            result = wave_speed(noisy, 1.0, dx, method="xcorr", shift=shift)
            assert result.speed == pytest.approx(v, rel=0.05)
            assert result.direction == (1.0,)


def test_wave_speed_of_a_bump_moving_in_2d_and_its_components():
    # A bump moving at v = (0.008, 0.004) mm/ms on 16 x 16 periodic sites: the
    # spectrum method gives the phase velocity of the strongest mode (here
    # (0, 1) at 2.5 Hz), which is v's projection on that mode's direction
    # (documented); the field summed over one axis moves at the other axis's
    # component, recovered exactly.
    n, dx, sigma, v = 16, 0.1, 0.2, np.array([0.008, 0.004])
    ring = n * dx
    t = np.arange(1600.0)[:, None, None]
    x = np.arange(n)[None, :, None] * dx
    y = np.arange(n)[None, None, :] * dx

    def wrapped(d):
        return (d + ring / 2) % ring - ring / 2

    bump = np.exp(-(wrapped(x - 0.5 - v[0] * t) ** 2 + wrapped(y - 0.5 - v[1] * t) ** 2) / (2 * sigma**2))
    whole = wave_speed(bump, 1.0, dx)
    assert whole.speed == pytest.approx(v @ np.array(whole.direction), rel=1e-9)
    assert np.allclose(whole.velocity, [0.0, 0.004])
    assert wave_speed(bump.sum(axis=2), 1.0, dx).speed == pytest.approx(v[0], rel=1e-9)
    assert wave_speed(bump.sum(axis=1), 1.0, dx).speed == pytest.approx(v[1], rel=1e-9)


def test_space_time_spectrum_sign_convention_and_parseval():
    rng = np.random.default_rng(14)
    field, k, _ = _plane_wave(rng, noise=0.1)
    result = space_time_spectrum(stand_in(field[:, None, :], 1.0, dx=0.05))
    assert result.power.shape == (1000, 64)
    f_index, k_index = np.unravel_index(np.argmax(np.where(result.freqs[:, None] > 0, result.power, 0)), result.power.shape)
    assert result.freqs[f_index] == pytest.approx(10.0) and result.k[0][k_index] == pytest.approx(k)
    assert result.power.sum() == pytest.approx(np.mean((field - field.mean()) ** 2), rel=1e-12)


# ---------------------------------------------------------------- bistable


def test_dwell_times_of_telegraph_process():
    rng = np.random.default_rng(15)
    dt, p_up, p_down = 0.5, 1 / 60, 1 / 150
    state, n_switches = telegraph(rng, 200_000, p_up, p_down)
    signal = 10.0 * (state > 0) + rng.normal(0.0, 1.0, state.size)
    result = dwell_times(signal, dt, low=3.0, high=7.0)
    # Noise of SD 1 never crosses from one level past the far threshold
    # (3 SD), so every switch of the chain is found, and no other.
    assert result.n_switches == n_switches
    assert result.up.size + result.down.size == n_switches - 1
    # Geometric dwell lengths: mean dt/p, SD dt sqrt(1-p)/p; the sample mean
    # of n dwells is within 3 SD/sqrt(n).
    for dwells, p in ((result.up, p_up), (result.down, p_down)):
        assert abs(dwells.mean() - dt / p) < 3 * dt * np.sqrt(1 - p) / p / np.sqrt(dwells.size)
    assert result.mean_up == pytest.approx(result.up.mean())
    assert result.se_down == pytest.approx(result.down.std(ddof=1) / np.sqrt(result.down.size))


def test_dwell_times_hysteresis_exact():
    # Undetermined, then up at 2, chatter between thresholds, down at 7, up at 10.
    signal = np.array([0.5, 0.6, 0.9, 0.5, 0.4, 0.6, 0.35, 0.1, 0.5, 0.6, 0.8, 0.5])
    result = dwell_times(signal, 2.0, low=0.2, high=0.75)
    assert result.state.tolist() == [0, 0, 1, 1, 1, 1, 1, -1, -1, -1, 1, 1]
    assert result.n_switches == 2
    assert result.switch_times.tolist() == [14.0, 20.0]
    assert result.down.tolist() == [6.0] and result.up.size == 0
    assert np.isnan(result.mean_up)
    quiet = dwell_times(0.5 + 0.2 * np.sin(np.arange(500)), 1.0, low=0.2, high=0.75)
    assert quiet.n_switches == 0 and np.all(quiet.state == 0)
    with pytest.raises(AnalysisInputError, match="low < high"):
        dwell_times(signal, 1.0, low=0.8, high=0.2)


def test_auto_thresholds_and_smoothing_recover_switches():
    rng = np.random.default_rng(16)
    dt = 1.0
    state, n_switches = telegraph(rng, 100_000, 1 / 200, 1 / 200)
    raw = 8.0 * state + rng.normal(0.0, 6.0, state.size)
    smoothed = smooth(raw, 9.0, dt)
    thresholds = auto_thresholds(smoothed)
    assert thresholds.mode_low < thresholds.low < thresholds.trough < thresholds.high < thresholds.mode_high
    assert thresholds.mode_low == pytest.approx(-8.0, abs=1.5) and thresholds.mode_high == pytest.approx(8.0, abs=1.5)
    result = dwell_times(smoothed, dt, thresholds.low, thresholds.high)
    # The 9-sample average has noise SD 6/3 = 2 and the thresholds lie near
    # +-4, 12 = 6 SD from the opposite mode: a noise-driven switch has
    # probability ~1e-9 per sample. So noise adds or removes no switch ...
    noiseless = dwell_times(smooth(8.0 * state, 9.0, dt), dt, thresholds.low, thresholds.high)
    assert result.n_switches == noiseless.n_switches
    # ... and only dwells shorter than the window (each hiding 2 switches)
    # can be lost to the smoothing.
    lengths = np.diff(np.flatnonzero(np.diff(state)))
    assert n_switches - 2 * np.count_nonzero(lengths < 9) <= result.n_switches <= n_switches
    with pytest.raises(NotBimodalError):
        auto_thresholds(rng.normal(size=10_000))


def test_smooth_is_centred_moving_average():
    rng = np.random.default_rng(17)
    x = rng.normal(size=(50, 3))
    y = smooth(x, 2.0, 0.5)  # 5 samples
    assert np.allclose(y[10], x[8:13].mean(axis=0))
    assert np.allclose(y[0], x[0:3].mean(axis=0))
    assert np.allclose(y[-1], x[-3:].mean(axis=0))
    assert np.array_equal(smooth(x, 0.2, 0.5), x)
    assert np.allclose(smooth(np.full(20, 4.0), 7.0, 1.0), 4.0)
    # the samples within window_ms / 2 of each sample: 1, 3, 3, 5, 5, 7, 7 for
    # windows of 1..7 record intervals (round() took 3, 4 and 5 alike, and 7 to 9)
    impulse = np.zeros(21)
    impulse[10] = 1.0
    averaged = [np.count_nonzero(smooth(impulse, w, 1.0)) for w in range(1, 8)]
    assert averaged == [1, 3, 3, 5, 5, 7, 7]
    assert np.count_nonzero(smooth(impulse, 0.6, 0.1)) == 7  # 0.6 / 0.2 = 2.9999999999999996 is 3


def test_bistable_signal_populations():
    rng = np.random.default_rng(18)
    A = rng.random((100, 2, 2, 3))
    result = stand_in(A, 0.5, types=["E1", "E2"])
    assert np.allclose(bistable_signal(result), A[:, 0].mean(axis=(1, 2)) - A[:, 1].mean(axis=(1, 2)))
    by_site = bistable_signal(A, populations=(("1", (0, 2)), (0, 4)))
    assert np.allclose(by_site, A[:, 1, 0, 2] - A[:, 0, 1, 1])
    # numpy arrays as pairs, as lists and tuples (they were refused)
    assert np.array_equal(bistable_signal(result, populations=np.array([1, 0])),
                          bistable_signal(result, populations=(1, 0)))
    assert np.array_equal(bistable_signal(A, populations=np.array([[1, 2], [0, 4]])),
                          bistable_signal(A, populations=((1, 2), (0, 4))))
    smoothed = bistable_signal(result, window_ms=2.0, discard=5.0)
    assert np.allclose(smoothed, smooth(bistable_signal(result)[10:], 2.0, 0.5))
    one_type = rng.random((100, 1, 2))
    assert np.allclose(bistable_signal(one_type), one_type[:, 0, 0] - one_type[:, 0, 1])
    with pytest.raises(AnalysisInputError, match="populations"):
        bistable_signal(rng.random((10, 3, 1)))
    with pytest.raises(AnalysisInputError, match="not found"):
        bistable_signal(result, populations=("E1", "I"))


# ---------------------------------------------------------------- result objects


def test_result_stand_in_matches_arrays():
    rng = np.random.default_rng(19)
    A = rng.normal(size=(3000, 2, 3, 4)) + 5.0
    result = stand_in(A, 0.5, types=["E", "I"], dx=0.2, boundary="open")
    from_result = psd(result, discard=100.0, n_segments=4)
    from_array = psd(A, 0.5, n_segments=4, discard=100.0)
    assert np.array_equal(from_result.S, from_array.S)
    assert from_result.types == ("E", "I")
    corr = correlation_vs_distance(result, max_distance=1)
    assert np.array_equal(corr.r, correlation_vs_distance(A, 0.2, "open", 1).r)
    assert np.array_equal(mean_var(result).mean, mean_var(A).mean)
    with pytest.raises(AnalysisInputError, match="contradicts"):
        psd(result, record_interval=1.0)
    with pytest.raises(AnalysisInputError, match="samples remain"):
        mean_var(result, discard=1e6)


# -- fano_factor ---------------------------------------------------------------------


def test_fano_factor_of_poisson_binomial_and_regular_counts():
    rng = np.random.default_rng(7)
    N, dt = 500, 0.5
    to_hz = 1.0 / (N * dt * 1e-3)
    poisson = fano_factor(rng.poisson(2.0, (100_000, 1, 4)) * to_hz, [0.5, 5.0, 25.0], N=N, record_interval=dt)
    assert np.array_equal(poisson.windows_ms, [0.5, 5.0, 25.0])
    # counts of independent bins: F = 1 at every window, within 4 standard errors
    assert np.all(np.abs(poisson.fano - 1.0) < 4 * poisson.se)
    assert np.all(poisson.se < 0.05)
    binomial = fano_factor(rng.binomial(10, 0.3, (100_000, 1, 4)) * to_hz, [0.5, 2.0], N=N, record_interval=dt)
    assert np.all(np.abs(binomial.fano - 0.7) < 4 * binomial.se)
    # one spike every step: the count in any window is fixed, F = 0
    regular = fano_factor(np.full((4000, 2, 3), to_hz), [1.0, 10.0], N=[N, N], record_interval=dt)
    assert np.array_equal(regular.fano, np.zeros((2, 2)))


def test_fano_factor_is_unbiased_with_two_windows_per_block():
    # Binomial counts (1 - p = 0.5) in 10 blocks of 2 windows, 1000 independent
    # records as the types of one array: the variance over a block's windows has
    # n - 1 = 1 in the denominator, so the mean of fano is 0.5 (docs/analysis.md);
    # the "low by 1 - 1/n" that the docs once stated would give 0.25. The scatter
    # of one record's fano is about 0.22, so its mean over 1000 is good to 0.007:
    # 0.03 is 4 of those.
    R, N, dt = 1000, 100, 1.0
    counts = np.random.default_rng(11).binomial(N, 0.5, (40, R))
    ff = fano_factor(counts / (N * dt * 1e-3), [2.0], N=[N] * R, record_interval=dt, n_blocks=10)
    assert abs(ff.fano[0].mean() - 0.5) < 0.03
    # and se is the scatter over records: the RMS of se over the SD of fano within
    # 4 Monte Carlo errors of an SD from 1000 samples (sqrt(1/(2 R)) = 0.022)
    assert abs(np.sqrt(np.mean(ff.se[0] ** 2)) / ff.fano[0].std(ddof=1) - 1.0) < 0.09


def test_fano_factor_reads_N_from_a_result_and_refuses_unusable_input():
    class R:  # a result stand-in: A, types, record_interval, shape, config
        A = np.random.default_rng(1).poisson(1.0, (2000, 2, 3)) / (np.array([100, 20])[:, None] * 0.5e-3)
        types, record_interval, shape = ["E", "I"], 0.5, (3,)
        config = dict(populations=dict(E=dict(N=100), I=dict(N=20)), lattice=dict(dx=0.1, boundary="periodic"))

    f = fano_factor(R(), [0.5], n_blocks=4)
    assert f.types == ("E", "I") and f.n_blocks == 4 and f.block_ms == 250.0
    assert np.all(np.abs(f.fano - 1.0) < 5 * f.se)
    A = np.ones((100, 1, 2))
    with pytest.raises(AnalysisInputError, match="N .* is required for array input"):
        fano_factor(A, [0.5], record_interval=0.5)
    with pytest.raises(AnalysisInputError, match="windows_ms = 0.75: must be a whole multiple of the record interval"):
        fano_factor(A, [0.75], N=10, record_interval=0.5)
    with pytest.raises(AnalysisInputError, match="expected one neuron count per type"):
        fano_factor(A, [0.5], N=[10, 10], record_interval=0.5)
    with pytest.raises(AnalysisInputError, match="fewer than two windows"):
        fano_factor(A, [5.0], N=10, record_interval=0.5, n_blocks=10)


# -- reading in batches ------------------------------------------------------------------


def test_statistics_in_small_batches_equal_those_of_whole_blocks(monkeypatch):
    """The block-wise statistics read a record in batches of about BATCH_ELEMENTS
    values; batches of 7 samples (windows of 2 and 5 samples straddle them) give
    what whole blocks give, and the Fano factor what its definition does."""
    import meshfield.analysis._record as record_module

    rng = np.random.default_rng(11)
    n_time, shape, dt, N = 3003, (3, 4), 0.5, np.array([200, 50])
    counts = rng.poisson(np.array([2.0, 0.7])[None, :, None, None], (n_time, 2, *shape))
    counts[:, 0] += (np.arange(n_time) // 400 % 2)[:, None, None] * 3  # slow switching
    A = counts / (N[None, :, None, None] * dt * 1e-3)

    def everything():
        return (mean_var(A, dt, n_blocks=6), fano_factor(A, [0.5, 2.5, 10.0], N=N, record_interval=dt, n_blocks=5),
                bistable_signal(A, dt), correlation_vs_distance(A, dx=0.1, boundary="periodic",
                                                                record_interval=dt, n_blocks=4),
                spatial_spectrum(A, dx=0.1, record_interval=dt, lattice_ndim=2))

    whole = everything()
    monkeypatch.setattr(record_module, "BATCH_ELEMENTS", 7 * 2 * 12)
    batched = everything()
    for one, other in zip(whole, batched):
        for key, value in (vars(one) if hasattr(one, "__dict__") else {"signal": one}).items():
            other_value = getattr(other, key) if hasattr(other, "__dict__") else other
            if isinstance(value, np.ndarray) and value.dtype.kind == "f":
                np.testing.assert_allclose(other_value, value, rtol=1e-11, atol=1e-13, err_msg=key)
            else:
                assert np.all(other_value == value), key
    # the Fano factor by its definition: per block, window counts, var/mean per site
    fano = whole[1]
    length = n_time // 5
    for j, k in enumerate((1, 5, 20)):
        per_block = []
        for b in range(5):
            c = counts[b * length:(b + 1) * length].reshape(length, 2, -1)
            n_win = length // k
            w = c[:n_win * k].reshape(n_win, k, 2, -1).sum(axis=1)
            per_block.append((w.var(axis=0, ddof=1) / w.mean(axis=0)).mean(axis=1))
        np.testing.assert_allclose(fano.fano[j], np.mean(per_block, axis=0), rtol=1e-12)
