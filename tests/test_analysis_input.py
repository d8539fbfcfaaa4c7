"""meshfield.analysis on bad and edge-case input: one clear error naming the
argument and what is allowed, never a deep traceback, a silent NaN or a wrong
answer. The correctness fixes found by the same probe have known answers here."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from meshfield.analysis import (
    AnalysisInputError,
    CompareInputError,
    auto_thresholds,
    bistable_signal,
    compare_results,
    correlation_vs_distance,
    dwell_times,
    log_band_average,
    mean_var,
    plot_comparison,
    psd,
    smooth,
    space_time_spectrum,
    spatial_spectrum,
    wave_speed,
)
from meshfield.io import ResultError


def stand_in(A, dt=1.0, types=("E", "I"), dx=0.1, boundary="periodic"):
    return SimpleNamespace(
        A=A, Abar=A, times=np.arange(1, A.shape[0] + 1) * dt, types=list(types), record_interval=dt,
        shape=A.shape[2:], config={"lattice": {"shape": list(A.shape[2:]), "dx": dx, "boundary": boundary}},
    )


RNG = np.random.default_rng(11)
FIELD = 10.0 + RNG.normal(size=(400, 2, 4, 4))
PAIR = 10.0 + RNG.normal(size=(400, 2, 1))
SIGNAL = np.where(np.arange(2000) // 100 % 2 == 0, 5.0, -5.0) + RNG.normal(0.0, 0.5, 2000)


# ----------------------------------------------------------------------------- bad arguments


BAD_CALLS = [
    (lambda: psd(FIELD, 1.0, segment_ms=float("inf")), "segment_ms = inf: must be a positive duration"),
    (lambda: psd(FIELD, 1.0, segment_ms="100"), "segment_ms = '100'"),
    (lambda: psd(FIELD, 1.0, n_segments=float("nan")), "n_segments = nan: must be a whole number >= 2"),
    (lambda: psd(FIELD, 1.0, n_segments=2.5), "n_segments = 2.5"),
    (lambda: psd(FIELD, 1.0, window="hamming"), "window = 'hamming': allowed values are boxcar, hann"),
    (lambda: psd(FIELD, 1.0, segment_ms=1000), r"segment_ms = 1000: the record .*400 ms.* does not hold 2 "
                                                 r"segments of at least 2 samples \(it holds 0 of 1000 ms\)"),
    (lambda: psd(FIELD, 1.0, segment_ms=1.5), r"segment_ms = 1.5: a segment must hold at least 2 samples of 1 ms "
                                              r"\(2 ms\); this one holds 1"),
    (lambda: psd(FIELD[:3], 1.0), r"the default segments: the record after the transient \(3 samples"),
    (lambda: psd(FIELD, 1.0, discard=None), "discard = None: must be a non-negative time"),
    (lambda: psd(FIELD, float("inf")), "record_interval = inf"),
    (lambda: mean_var(FIELD, n_blocks=float("inf")), "n_blocks = inf: must be a whole number >= 2"),
    (lambda: mean_var(FIELD, n_blocks=float("nan")), "n_blocks = nan"),
    (lambda: mean_var("result.h5"), "is a path; open the result first"),
    (lambda: mean_var(FIELD.astype(complex)), "real numbers"),
    (lambda: mean_var(np.zeros((10, 0, 3))), "type axis"),
    (lambda: correlation_vs_distance(np.zeros((10, 1, 3, 3, 3)), 0.1, "open"), "with 1 or 2 lattice axes"),
    (lambda: psd(np.zeros((10, 1, 3, 3, 3)), 1.0), "with 1 or 2 lattice axes"),
    (lambda: correlation_vs_distance(FIELD, 0.1, "periodic", max_distance="2"), "max_distance = '2'"),
    (lambda: correlation_vs_distance(FIELD, 0.1, "periodic", max_distance=-1), "max_distance = -1"),
    (lambda: spatial_spectrum(FIELD, 0.1), r"a snapshot has 1 or 2 lattice axes.*lattice_ndim"),
    (lambda: spatial_spectrum(FIELD[0, 0], float("inf")), "dx = inf"),
    (lambda: spatial_spectrum(FIELD, 0.1, lattice_ndim="2"), "lattice_ndim = '2'"),
    (lambda: space_time_spectrum(FIELD, 1.0, 0.1), r"\[time, \*lattice\].*A\[:, type\]"),
    (lambda: space_time_spectrum(FIELD[:, 0], 1.0, 0.1, duration=float("inf")), "duration = inf"),
    (lambda: wave_speed(FIELD, 1.0, 0.1), r"A\[:, type\]"),
    (lambda: wave_speed(FIELD[:, 0, :, 0], 1.0, 0.1, method="xcorr", max_lag=float("nan")), "max_lag = nan"),
    (lambda: wave_speed(FIELD[:, 0, :, 0], 1.0, 0.1, method="xcorr", shift=float("nan")), "shift = nan"),
    (lambda: wave_speed(FIELD[:, 0, :1, 0], 1.0, 0.1, method="xcorr"), "at least 2 sites"),
    (lambda: wave_speed(FIELD[:, 0, :, 0], 1.0, 0.1, method="fft"), "method = 'fft'"),
    (lambda: log_band_average(np.arange(10.0), np.ones(10), n_bands=float("inf")), "n_bands = inf"),
    (lambda: log_band_average(np.arange(10.0), np.ones(10), f_max=float("inf")), "f_max = inf"),
    (lambda: log_band_average(np.arange(10.0), np.ones(10), f_min=None), "f_min = None"),
    (lambda: log_band_average(np.arange(10.0), np.ones(10), np.ones(3)), "S_err has shape"),
    (lambda: log_band_average(np.zeros(0), np.zeros(0)), "empty axis"),
    # the spectra were not checked: NaN, inf and complex values gave NaN, inf or
    # a dropped imaginary part without an error, strings a bare ValueError
    (lambda: log_band_average(np.arange(10.0), np.where(np.arange(10) == 5, np.nan, 1.0)),
     r"S holds non-finite values \(NaN or inf\): nan at index \(5,\)"),
    (lambda: log_band_average(np.arange(10.0), np.ones(10), np.full(10, np.inf)), "S_err holds non-finite"),
    (lambda: log_band_average(np.arange(10.0), np.ones(10), segments=np.full((3, 10), np.nan)),
     "segments holds non-finite"),
    (lambda: log_band_average(np.arange(10.0), np.ones(10) + 1j), "S must hold real numbers"),
    (lambda: log_band_average(np.arange(10.0), np.array(["a"] * 10)), "S must hold real numbers"),
    (lambda: log_band_average("psd.h5", np.ones(10)), "is a path"),
    # a billion bands took minutes and gigabytes before the bands were checked
    (lambda: log_band_average(np.arange(10.0), np.ones(10), n_bands=10**9),
     "n_bands = 1000000000: more bands than both the 10 frequency bins and 10000"),
    (lambda: auto_thresholds(SIGNAL, n_bins=10**6), "n_bins = 1000000: more histogram bins than the 2000 samples"),
    (lambda: auto_thresholds(SIGNAL[:50], n_bins=61), "n_bins = 61: more histogram bins than the 50 samples"),
    (lambda: psd(np.ma.masked_array(FIELD, FIELD > 12), 1.0), "A is a masked array"),
    (lambda: smooth(np.ma.masked_array(SIGNAL), 2.0, 1.0), "the signal is a masked array"),
    # ratios that overflow: OverflowError tracebacks
    (lambda: psd(FIELD, 5e-324), r"record_interval = 5e-324: .*1000 / record_interval Hz"),
    (lambda: psd(FIELD, 1e-300, segment_ms=1000), r"segment_ms = 1000.*does not hold 2 segments"),
    (lambda: psd(FIELD, 1e-300, discard=1e10), "only 0 samples remain after discarding"),
    # numpy's booleans passed for numbers, a string for remove_mean meant True
    (lambda: psd(FIELD, np.True_), "record_interval = np.True_"),
    (lambda: correlation_vs_distance(FIELD, 0.1, "periodic", max_distance=np.True_), "max_distance = np.True_"),
    (lambda: spatial_spectrum(FIELD[0, 0], 0.1, remove_mean="no"), "remove_mean = 'no': must be True or False"),
    (lambda: psd(FIELD, 1.0, n_segments=1e300), r"^n_segments = 1e\+300: a segment must hold at least 2"),  # not 301 digits
    (lambda: smooth(SIGNAL, None, 1.0), "window_ms = None"),
    (lambda: smooth(SIGNAL, 2.0, float("inf")), "record_interval = inf"),
    (lambda: bistable_signal(PAIR, 1.0, window_ms=-5), "window_ms = -5"),
    (lambda: bistable_signal(PAIR, 1.0, window_ms=float("nan")), "window_ms = nan"),
    (lambda: bistable_signal(PAIR, 1.0, populations=(0, 0)), "the same population twice"),
    (lambda: bistable_signal(PAIR, 1.0, populations="AB"), "populations = 'AB': must be a pair"),
    (lambda: bistable_signal(PAIR, 1.0, populations=(0, 1.7)), "type 1.7"),
    (lambda: bistable_signal(FIELD, 1.0, populations=((0, 1.5), (1, 0))), "site 1.5"),
    (lambda: dwell_times(SIGNAL, 1.0, "-1", "1"), "low = '-1'"),
    (lambda: dwell_times(SIGNAL, 1.0, -1.0, float("inf")), "high = inf"),
    (lambda: dwell_times(SIGNAL, float("inf"), -1.0, 1.0), "record_interval = inf"),
    (lambda: auto_thresholds(SIGNAL, n_bins=float("inf")), "n_bins = inf"),
    (lambda: auto_thresholds(stand_in(PAIR)), r"compute it first.*bistable_signal"),
]


@pytest.mark.parametrize("call,message", BAD_CALLS, ids=[str(i) for i in range(len(BAD_CALLS))])
def test_bad_input_gets_one_clear_message(call, message):
    with pytest.raises(AnalysisInputError, match=message):
        call()


def test_lattice_ndim_must_agree_with_a_result():
    result = stand_in(FIELD)
    with pytest.raises(AnalysisInputError, match=r"lattice_ndim = 1 contradicts the result's 2-D lattice \[4, 4\]"):
        spatial_spectrum(result, lattice_ndim=1)
    np.testing.assert_array_equal(spatial_spectrum(result, lattice_ndim=2).power, spatial_spectrum(result).power)


def test_type_by_index_must_be_whole():
    result = stand_in(FIELD[:, :, :, 0])
    with pytest.raises(AnalysisInputError, match=r"type 1.9: must be a type name \(E, I\) or an index"):
        space_time_spectrum(result, type=1.9)
    with pytest.raises(AnalysisInputError, match="type None"):
        space_time_spectrum(result, type=None)
    with pytest.raises(AnalysisInputError, match="type True"):
        space_time_spectrum(result, type=True)
    assert space_time_spectrum(result, type=np.int64(1)).power.shape == (400, 4)


def test_non_finite_activity_is_refused_by_every_function():
    field = FIELD.copy()
    field[123, 1, 2, 3] = np.nan
    result = stand_in(field)
    signal = SIGNAL.copy()
    signal[7] = np.inf
    calls = [
        lambda: psd(result), lambda: mean_var(result), lambda: correlation_vs_distance(result),
        lambda: spatial_spectrum(result), lambda: spatial_spectrum(field[123, 1]),
        lambda: space_time_spectrum(result, type=1), lambda: wave_speed(result, type=1),
        lambda: bistable_signal(result, populations=(0, 1)), lambda: smooth(signal, 2.0, 1.0),
        lambda: dwell_times(signal, 1.0, -1.0, 1.0), lambda: auto_thresholds(signal),
    ]
    for call in calls:
        with pytest.raises(AnalysisInputError, match="non-finite values"):
            call()
    # the message locates the first bad sample in the whole record, also after a discard
    with pytest.raises(AnalysisInputError, match=r"nan at index \(123, 1, 2, 3\)"):
        mean_var(result, discard=50.0)
    for call in (lambda: space_time_spectrum(result, type=1, discard=50.0),  # one type read: its index too
                 lambda: wave_speed(result, type="I", discard=50.0)):
        with pytest.raises(AnalysisInputError, match=r"nan at index \(123, 1, 2, 3\)"):
            call()
    with pytest.raises(AnalysisInputError, match=r"nan at index \(123, 2, 3\)"):  # an array of one type's field
        space_time_spectrum(field[:, 1], 1.0, 0.1, discard=50.0)


def test_closed_result_from_a_run(tmp_path):
    import meshfield

    config = meshfield.load_config("bistable_pair", overrides=["run.t_end=20"])
    meshfield.run(config, output=str(tmp_path / "r.h5")).close()
    result = meshfield.open_result(tmp_path / "r.h5")
    result.close()
    with pytest.raises(ResultError, match=r"r.h5: the result is closed; open it again"):
        psd(result)
    for access in (lambda: result.Abar, lambda: result.extra_names, lambda: result.dataset("A")):
        with pytest.raises(ResultError, match="the result is closed"):
            access()
    read_before = meshfield.open_result(tmp_path / "r.h5")
    shape = read_before.A.shape
    read_before.close()
    assert read_before.A.shape == shape  # arrays read before closing stay usable


# ----------------------------------------------------------------------------- answers


def test_spatial_spectrum_on_a_rectangular_lattice():
    """Stripes along the long axis of an 8 x 16 lattice: mode 1 of 16 sites, k = 2 pi / (16 dx)."""
    dx = 0.1
    snapshot = np.ones((8, 1)) * np.cos(2 * np.pi * np.arange(16) / 16)
    spec = spatial_spectrum(snapshot, dx)
    k_true = 2 * np.pi / (16 * dx)
    assert spec.k_step == pytest.approx(k_true)
    assert spec.power[0, 0] == pytest.approx(0.0, abs=1e-20)    # shell 0 is k = 0 alone
    assert spec.k_peak[0] == pytest.approx(k_true)
    assert spec.k_peak_steps[0] == 1
    assert spec.wavelength[0] == pytest.approx(1.6)
    np.testing.assert_allclose(np.abs(spec.k_vector_peak[0]), [0.0, k_true], atol=1e-12)
    # across the short axis: mode 1 of 8 sites is 2 steps of the long axis
    across = spatial_spectrum(np.cos(2 * np.pi * np.arange(8) / 8)[:, None] * np.ones((1, 16)), dx)
    assert across.k_peak_steps[0] == 2 and across.wavelength[0] == pytest.approx(0.8)


def test_spatial_spectrum_without_structure_has_no_peak():
    for field in (np.ones((8, 8)), np.zeros((8, 8)), 3.0 + np.zeros(16)):
        spec = spatial_spectrum(field, 0.1)
        assert np.isnan(spec.k_peak[0]) and np.isnan(spec.wavelength[0])
        assert spec.k_peak_steps[0] == 0 and np.all(np.isnan(spec.k_vector_peak[0]))
    # one type flat, the other patterned: only the flat one has no peak
    x = np.zeros((5, 2, 16))
    x[:, 1] = np.cos(2 * np.pi * 3 * np.arange(16) / 16)
    spec = spatial_spectrum(x, 0.1, lattice_ndim=1)
    assert np.isnan(spec.k_peak[0]) and spec.k_peak_steps[1] == 3


def test_streamed_moments_are_exact_for_small_fluctuations_on_a_large_mean():
    """ShiftedMoments (behind the Fano factor's windows and the
    correlations' site moments) sums deviations from its first sample: batches
    of uneven sizes give numpy's two-pass mean and variance, where
    sum x^2 - (sum x)^2 / n loses every digit (off by up to 3e-9 here, against
    a variance of 1e-10)."""
    from meshfield.analysis._record import ShiftedMoments

    x = 500.0 + 1e-5 * np.random.default_rng(2).normal(size=(30_000, 2, 3))
    moments = ShiftedMoments()
    for j0, j1 in ((0, 1), (1, 1), (1, 7000), (7000, 30_000)):
        moments.add(x[j0:j1])
    assert moments.n == 30_000
    np.testing.assert_allclose(moments.mean(), x.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(moments.var(ddof=1), x.var(axis=0, ddof=1), rtol=1e-9)
    np.testing.assert_allclose(moments.var(), x.var(axis=0), rtol=1e-9)


def test_mean_var_is_exact_for_small_fluctuations_on_a_large_mean():
    """500 Hz with fluctuations of 1e-5 Hz: sum A^2 - (sum A)^2 / n cancels to
    rounding noise (it used to give -2e-10); the two-pass variance is exact."""
    rng = np.random.default_rng(0)
    x = 500.0 + 1e-5 * rng.normal(size=(200_000, 1, 4))
    result = mean_var(x, n_blocks=20)
    used = x[: 20 * (x.shape[0] // 20)]
    expected = used.var(axis=0).mean()
    assert result.var[0] == pytest.approx(expected, rel=1e-9)
    assert result.var[0] == pytest.approx(1e-10, rel=0.01)   # SE of a variance of 8e5 samples: 0.16 %


def test_mean_var_memory_is_one_array_of_block_sums():
    """Beyond a batch, mean_var holds the per-site sums of each block (blocks x
    types x sites doubles, 6.25 MiB here) and nothing of that size more: three
    per-block accumulators took 31 MiB on this 64 x 64 lattice with 100 blocks,
    and 500 MiB on a 256 x 256 one."""
    import tracemalloc

    x = (10.0 + RNG.normal(size=(400, 2, 64, 64))).astype(np.float32)
    tracemalloc.start()
    try:
        result = mean_var(x, n_blocks=100)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    block_sums = 100 * 2 * 64 * 64 * 8
    assert peak < 1.25 * block_sums, f"{peak / 2**20:.1f} MiB"
    blocks = x.astype(float).reshape(100, 4, 2, 64 * 64)
    np.testing.assert_allclose(result.mean, blocks.mean(axis=(0, 1, 3)), rtol=1e-12)
    site_mean = blocks.mean(axis=(0, 1))
    expected = ((blocks - site_mean) ** 2).mean(axis=(1, 3)).mean(axis=0)
    np.testing.assert_allclose(result.var, expected, rtol=1e-12)


def test_psd_counts_the_segments_of_the_length_as_cut():
    """segment_ms = 333 at 1 ms is cut to 332 samples (even): 665 samples hold
    two of them (counting segments of the uncut 333 refused the record, with
    a message that said it held 1 of 332 ms); 600 samples hold one, and the
    refusal says so."""
    spectrum = psd(RNG.normal(size=665), 1.0, segment_ms=333)
    assert spectrum.segment_ms == 332.0 and spectrum.n_segments == 2
    with pytest.raises(AnalysisInputError, match=r"\(600 samples of 1 ms = 600 ms\) does not hold 2 segments "
                                                  r"of at least 2 samples \(it holds 1 of 332 ms\)"):
        psd(RNG.normal(size=600), 1.0, segment_ms=333)


@pytest.mark.parametrize("duration,segment,count", [(2500, 1000.0, 2), (3999, 1000.0, 3), (1500, 750.0, 2),
                                                    (10_000, 1000.0, 10)])
def test_psd_default_segments_are_1000_ms(duration, segment, count):
    spectrum = psd(RNG.normal(size=duration), 1.0)
    assert spectrum.segment_ms == segment and spectrum.n_segments == count


def test_correlation_at_a_distance_without_pairs_is_nan_not_inf():
    """Two fluctuating sites (7, 7) apart on a 16 x 16 lattice: at every other
    distance there is no pair, and the correlation is undefined (NaN)."""
    x = np.zeros((200, 2, 16, 16))
    x[::7, :, 1, 1] = 2.5
    x[::5, :, 8, 8] = 2.5
    result = correlation_vs_distance(x, 0.1, "periodic", max_distance=3)
    assert not np.isinf(result.r).any()
    assert np.all(result.r[:, 0] == 1.0) and np.all(np.isnan(result.r[:, 1:]))


def field_result(seed, n_time=4000):
    rng = np.random.default_rng(seed)
    return stand_in(10.0 + rng.normal(size=(n_time, 2, 4, 4)))


def test_compare_checks_distances():
    a, b = field_result(1), field_result(2)
    with pytest.raises(CompareInputError, match="distances = -1: must be a sequence of distances >= 0"):
        compare_results(a, b, discard=0, distances=(-1,))
    with pytest.raises(CompareInputError, match=r"no site pairs at 100 .*distances present up to 100: 0, 1, 1.41, 2"):
        compare_results(a, b, discard=0, distances=(100,))
    with pytest.raises(CompareInputError, match="distances = 1: must be a sequence"):
        compare_results(a, b, discard=0, distances=1)
    single = stand_in(a.A[:, :, :1, :1])
    with pytest.raises(CompareInputError, match="single site"):
        compare_results(single, single, discard=0, distances=(0, 1))
    report = compare_results(a, b, discard=0, distances=(1, 2 ** 0.5))
    assert [row.quantity for row in report.rows if row.quantity.startswith("corr")] == \
        ["corr d=1", "corr d=1.41421"] * 2
    for name, value in (("n_blocks", float("inf")), ("n_bands", 0), ("min_switches", -1), ("f_min", 0.0)):
        with pytest.raises(CompareInputError, match=f"{name} = "):
            compare_results(a, b, discard=0, **{name: value})


def test_times_and_distances_far_beyond_the_record_are_what_the_record_holds():
    """1e300 ms windows and lattice distances were OverflowError tracebacks
    (int(inf), 1e300**2); they now mean what any time or distance beyond the
    record and the lattice means."""
    signal = np.arange(10.0)
    assert np.array_equal(smooth(signal, 1e300, 1.0), np.full(10, 4.5))  # every sample's window is the whole
    far = correlation_vs_distance(FIELD, 0.1, "periodic", max_distance=1e300)
    whole = correlation_vs_distance(FIELD, 0.1, "periodic", max_distance=8)
    assert np.array_equal(far.distances, whole.distances) and np.array_equal(far.r, whole.r)
    with pytest.raises(CompareInputError, match="no site pairs at 1e"):
        compare_results(field_result(1), field_result(2), discard=0, distances=(1e300,))
    with pytest.raises(AnalysisInputError, match="max_lag = 1e"):
        wave_speed(FIELD[:, 0, :, 0], 1.0, 0.1, method="xcorr", max_lag=1e300)
    assert len(space_time_spectrum(FIELD[:, 0], 1.0, 0.1, duration=1e300).freqs) == 400  # all the samples


def test_messages_say_what_is_wrong():
    """Findings of the API probe whose messages misled: a short record blamed a
    max_lag nobody gave, a single site or two samples 'had no power', a Path or
    a path where a result belongs was 'A has shape ()' or 'not a result', and N
    given with a result silently replaced the configuration's."""
    import pathlib

    from meshfield.analysis import NoWaveError, fano_factor, summarize

    with pytest.raises(AnalysisInputError, match="the record holds 3 samples; the cross-correlation needs at least 4"):
        wave_speed(FIELD[:3, 0, :, 0], 1.0, 0.1, method="xcorr")
    with pytest.raises(NoWaveError, match="2 samples resolve no frequency f > 0"):
        wave_speed(FIELD[:2, 0], 1.0, 0.1)
    with pytest.raises(NoWaveError, match=r"the lattice \[1, 1\] is a single site"):
        wave_speed(FIELD[:, 0, :1, :1], 1.0, 0.1)
    for call in (lambda: wave_speed(pathlib.Path("r.h5"), 1.0, 0.1),
                 lambda: space_time_spectrum(pathlib.Path("r.h5"), 1.0, 0.1),
                 lambda: spatial_spectrum("r.h5", 0.1, lattice_ndim=2)):
        with pytest.raises(AnalysisInputError, match="is a path; open the result first"):
            call()
    with pytest.raises(AnalysisInputError, match="result = 'r.h5' is not a result .*it is a path: open the result"):
        summarize("r.h5")
    with pytest.raises(CompareInputError, match="A = 'r.h5' is not a result .*it is a path: open the result"):
        compare_results("r.h5", field_result(1))
    result = field_result(1)
    assert fano_factor(result, [10.0], N=[400, 100]).fano.shape == (1, 2)  # a configuration without N
    result.config["populations"] = {"E": {"N": 400}, "I": {"N": 100}}
    assert fano_factor(result, [10.0], N=[400, 100]).fano.shape == (1, 2)
    with pytest.raises(AnalysisInputError, match=r"N = \[1, 1\] contradicts the result's .* \[400, 100\]"):
        fano_factor(result, [10.0], N=[1, 1])


def test_scalar_fields_are_python_floats():
    """WaveSpeed.speed and .direction and Thresholds.low and .high were np.float64,
    which messages and reprs show as np.float64(...)."""
    x = np.arange(32) * 0.1
    t = np.arange(2000)
    wave = wave_speed(10.0 + np.sin(2 * np.pi * (0.02 * t[:, None] - x[None, :] / 0.5)), 1.0, 0.1)
    assert type(wave.speed) is float and all(type(c) is float for c in wave.direction)
    th = auto_thresholds(smooth(SIGNAL, 10.0, 1.0))
    assert all(type(v) is float for v in (th.low, th.high, th.mode_low, th.mode_high, th.trough))


def test_fano_factor_of_a_silent_type_is_nan_without_a_warning():
    import warnings

    from meshfield.analysis import fano_factor

    A = np.stack([np.random.default_rng(3).poisson(5.0, size=(2000, 3)) * 100.0, np.zeros((2000, 3))], axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "Mean of empty slice" leaked before
        result = fano_factor(A, [10.0], N=[10, 10], record_interval=1.0)
    assert np.isnan(result.fano[0, 1]) and 0.9 < result.fano[0, 0] < 1.1  # Poisson counts: 1


@pytest.mark.parametrize("labels", [None, 5, "AB", ("A", "B", "C")])
def test_compare_labels_must_be_a_pair(labels):
    """None or 5 gave a bare TypeError; "AB" was split into ("A", "B")."""
    with pytest.raises(CompareInputError, match=r"labels = .*: must be a pair of names"):
        compare_results(field_result(1), field_result(2), discard=0, labels=labels)


def test_plot_comparison_checks_its_arguments(tmp_path):
    report = compare_results(field_result(1), field_result(2), discard=0)
    with pytest.raises(ValueError, match="unknown image format '.noformat'"):
        plot_comparison(report, tmp_path / "cmp.noformat")
    with pytest.raises(ValueError, match="output folder .* does not exist"):
        plot_comparison(report, tmp_path / "missing" / "cmp.png")
    with pytest.raises(CompareInputError, match="must be the ComparisonReport"):
        plot_comparison("x", tmp_path / "cmp.png")
    assert list(tmp_path.iterdir()) == []   # nothing half-written


def test_a_result_is_recognized_without_reading_its_records():
    """is_result looks A up without calling it (on a result file, a property that
    reads all of A), and accepts a wrapper that hands out A through __getattr__."""
    from meshfield.analysis._record import is_result

    reads = []
    A = np.random.default_rng(2).normal(10.0, 1.0, (400, 2, 3))

    class Lazy:
        types, record_interval, shape = ("E", "I"), 1.0, (3,)
        config = {"lattice": {"dx": 0.1, "boundary": "periodic"}}

        @property
        def A(self):
            reads.append("A")
            return A

    class Wrapper:
        def __init__(self, inner):
            self._inner = inner

        def __getattr__(self, name):
            return getattr(self._inner, name)

    class WithRecords(Lazy):  # as a result file: records() reads in slices
        def records(self, name):
            return A

    assert is_result(Lazy()) and is_result(Wrapper(WithRecords())) and reads == []
    assert is_result(Wrapper(stand_in(A))) and not is_result(Wrapper(A))
    assert not is_result(A) and not is_result(SimpleNamespace(A=A))  # no record_interval
    np.testing.assert_allclose(mean_var(Wrapper(stand_in(A)), n_blocks=4).mean, A.mean(axis=(0, 2)), rtol=1e-12)
