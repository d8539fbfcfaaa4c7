"""summarize / meshfield analyze: the numbers of one result, on signals with known answers."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from test_analysis_compare import bistable_result, field_result, stand_in
from scipy.signal import lfilter
from test_cli import TINY, cli

import meshfield
from meshfield.analysis import AnalysisInputError, summarize
from meshfield.analysis import summary as summary_module


def test_white_noise_moments_and_flat_spectrum():
    """Mean m and variance s^2 of independent Gaussian samples, within a few SE
    of the known values; the SEs agree with s/sqrt(n) and with the spread of a
    sample variance; the PSD is flat at s^2 dt in every band, with no peak that
    stands out (prominence ~ 1 + a few / sqrt(segments x sites))."""
    rng = np.random.default_rng(3)
    m, s, dt, n_time, shape = 10.0, 2.0, 1.0, 40_500, (4, 4)
    n = (n_time - 500) * 16
    res = stand_in(m + s * rng.normal(size=(n_time, 1) + shape), dt, ("E",))
    summary = summarize(res)
    mean, var = summary.value("mean", "E"), summary.value("variance", "E")
    se_mean, se_var = s / math.sqrt(n), s**2 * math.sqrt(2 / n)
    assert abs(mean - m) < 4 * se_mean
    assert abs(var - s**2) < 4 * se_var + s**2 / (n / 16)   # (the per-site mean takes one degree)
    mean_row = next(row for row in summary.rows if row.quantity == "mean")
    assert mean_row.se / se_mean == pytest.approx(1.0, abs=0.5)   # 20 blocks: the SE is good to ~16 %
    level = s**2 * dt * 1e-3
    bands = [row for row in summary.rows if row.quantity.startswith("psd ") and "Hz" in row.quantity]
    assert len(bands) == 8
    for row in bands:
        assert abs(row.value - level) < 4 * row.se, row
    # 40 segments of 16 sites: bins scatter by 1/sqrt(640) ~ 4 %; the largest of 500 bins over
    # its neighbourhood's median stays below 1 + 5 x 4 %
    assert summary.value("psd peak prominence", "E") < 1.2
    # independent sites: no correlation beyond d = 0
    assert summary.value("corr d=0", "E") == 1.0
    for d in ("1", "1.41", "2"):
        row = next(r for r in summary.rows if r.quantity == f"corr d={d}")
        assert abs(row.value) < 4 * row.se + 1e-3
    # no wave: each of the n = n_time n_sites space-time modes holds an exponentially
    # distributed power of mean 1/n of the total; the largest of the n/2 with f > 0
    # exceeds (ln(n/2) + 5)/n with probability e^-5, and the share counts it twice
    n_modes = (n_time - 500) * 16
    assert summary.value("wave share", "E") < 2 * (math.log(n_modes / 2) + 5) / n_modes


def test_stripes_in_noise_hold_their_share_of_the_spatial_variance():
    """Static stripes a cos(k x) with k = 4 steps on a 16 x 16 lattice, plus white
    noise of SD s: the peak shell holds the stripes' a^2/2 and its modes' part
    of the noise, m s^2/256, of a spatial variance a^2/2 + s^2 255/256. Averaged
    over 2000 snapshots the noise part scatters by ~s^2/sqrt(2000 * 256)."""
    from meshfield.analysis import spatial_spectrum
    rng = np.random.default_rng(8)
    n, a, s = 16, 2.0, 1.0
    stripes = a * np.cos(2 * np.pi * 4 * np.arange(n) / n)[:, None] * np.ones(n)
    res = stand_in(10.0 + stripes + s * rng.normal(size=(2000, 1, n, n)), 1.0, ("E",))
    summary = summarize(res, discard=0.0)
    assert summary.value("k peak steps", "E") == 4
    m = int(spatial_spectrum(res).n_modes[4])
    expected = (a**2 / 2 + m * s**2 / n**2) / (a**2 / 2 + s**2 * (n**2 - 1) / n**2)
    assert summary.value("k peak share", "E") == pytest.approx(expected, abs=0.01)


def test_sine_gives_its_frequency_and_stands_out():
    """A 40-Hz sine in weak noise at one site: the PSD peak is the 40-Hz bin and
    towers over the median; one site has no spatial rows."""
    rng = np.random.default_rng(4)
    t = np.arange(6000) * 0.5                                         # ms
    A = 20.0 + 5.0 * np.sin(2 * np.pi * 40.0 * t * 1e-3) + 0.1 * rng.normal(size=t.size)
    summary = summarize(stand_in(A[:, None, None], 0.5, ("E",)))
    assert summary.value("psd peak frequency", "E") == 40.0
    assert summary.value("psd peak prominence", "E") > 1e3
    assert not [row for row in summary.rows if row.quantity.startswith(("corr", "k peak", "wave"))]
    assert summary.settings["wave_ms"] is None and summary.settings["max_distance"] is None


def test_a_low_pass_spectrum_has_no_prominent_peak():
    """An Ornstein-Uhlenbeck process (tau = 20 ms) has its largest PSD values at
    the lowest frequencies, but no rhythm: each bin is within the scatter of
    its neighbourhood (half to twice its frequency), whose spectrum falls by at
    most 4x. 40 segments x 16 sites: bins scatter by ~4 %."""
    rng = np.random.default_rng(9)
    a = np.exp(-1.0 / 20.0)
    noise = lfilter([np.sqrt(1 - a * a)], [1, -a], rng.normal(size=(40_500, 1, 4, 4)), axis=0)
    summary = summarize(stand_in(10.0 + noise, 1.0, ("E",)))
    assert summary.value("psd peak prominence", "E") < 1.4


def test_an_oscillation_stands_out_of_low_pass_noise():
    """A 25-Hz rhythm of amplitude 1 in OU noise (SD 3, tau = 50 ms) whose low
    frequencies hold more power than the rhythm's bin: the most prominent peak
    is the rhythm's. Two-sided PSD in 1-Hz bins: the rhythm adds 1/4 Hz to the
    noise's 2 s^2 tau / (1 + (2 pi f tau)^2) = 0.014 Hz, a prominence of ~18
    (noise bins of 20 segments scatter by ~22 %)."""
    rng = np.random.default_rng(10)
    a = np.exp(-1.0 / 50.0)
    t = np.arange(20_500)
    noise = 3.0 * lfilter([np.sqrt(1 - a * a)], [1, -a], rng.normal(size=t.size))
    summary = summarize(stand_in((10.0 + noise + np.sin(2 * np.pi * 25e-3 * t))[:, None, None], 1.0, ("E",)))
    assert summary.value("psd peak frequency", "E") == 25.0
    assert summary.value("psd peak prominence", "E") > 10.0


@pytest.mark.parametrize("direction", [1, -1])
def test_plane_wave_gives_wave_number_speed_and_direction(direction):
    """cos(k x - w t) on a ring of 32 sites, k = 3 lattice steps, f = 10 Hz:
    dominant wave number 3 steps, wavelength n dx / 3, speed 2 pi f / k, all
    of the fluctuation power in the peak mode pair, directionality 1."""
    n, dx, dt, f, m = 32, 0.05, 1.0, 10.0, 3
    t = np.arange(3000) * dt
    x = np.arange(n) * dx
    k = 2 * np.pi * m / (n * dx)
    field = 15.0 + 4.0 * np.cos(direction * k * x[None, :] - 2 * np.pi * f * 1e-3 * t[:, None])
    summary = summarize(stand_in(field[:, None, :], dt, ("E",), dx=dx), discard=0.0)
    assert summary.value("k peak steps", "E") == m
    assert summary.value("k peak", "E") == pytest.approx(k, rel=1e-9)
    assert summary.value("wavelength", "E") == pytest.approx(n * dx / m, rel=1e-9)
    assert summary.value("k peak share", "E") == pytest.approx(1.0, abs=1e-9)
    assert summary.value("wave speed", "E") == pytest.approx(2 * np.pi * f * 1e-3 / k, rel=1e-9)
    assert summary.value("wave frequency", "E") == pytest.approx(f)
    assert summary.value("wave k", "E") == pytest.approx(k, rel=1e-9)
    assert summary.value("wave share", "E") == pytest.approx(1.0, abs=1e-9)
    assert summary.value("wave directionality", "E") == pytest.approx(1.0, abs=1e-9)
    assert summary.value("psd peak frequency", "E") == f
    # which way it travels: analyze printed only the speed's size
    assert summary.value("wave direction [0]", "E") == direction


def test_a_2d_pattern_gives_its_wave_vector_and_direction():
    """Stripes travelling along (1, 2) lattice steps on 24 x 24 sites: the shell
    average "k peak" mixes the (1, 2) and (2, 0) modes of shell 2 (a 2-D Mexican
    hat's spots read 3 % off the theory's |k| that way in the pattern audit); the
    wave vector and the direction are exact."""
    n, dx, dt, f = 24, 0.05, 1.0, 10.0
    X, Y = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    step = 2 * np.pi / (n * dx)
    t = np.arange(400) * dt
    phase = 2 * np.pi * (1 * X + 2 * Y)[None] / n - 2 * np.pi * f * 1e-3 * t[:, None, None]
    field = 15.0 + 4.0 * np.cos(phase)
    summary = summarize(stand_in(field[:, None], dt, ("E",), dx=dx), discard=0.0)
    assert summary.value("k vector peak [0]", "E") == pytest.approx(step, rel=1e-9)
    assert summary.value("k vector peak [1]", "E") == pytest.approx(2 * step, rel=1e-9)
    norm = np.hypot(1, 2)
    assert summary.value("wave direction [0]", "E") == pytest.approx(1 / norm, rel=1e-9)
    assert summary.value("wave direction [1]", "E") == pytest.approx(2 / norm, rel=1e-9)
    assert summary.value("wave speed", "E") == pytest.approx(2 * np.pi * f * 1e-3 / (norm * step), rel=1e-9)


def test_correlated_field_gives_its_correlations():
    """Each site sums the AR(1) noise of itself and its 4 neighbours on a 4x4
    periodic lattice: r = 0.4 at distances 1 and 2 (compare's stand-in)."""
    summary = summarize(field_result(5), max_distance=2)
    for name in ("E", "I"):
        for d in ("1", "2"):
            row = next(r for r in summary.rows if r.quantity == f"corr d={d}" and r.type == name)
            assert abs(row.value - 0.4) < 4 * row.se, row
        assert summary.value("mean", name) == pytest.approx({"E": 10.0, "I": 20.0}[name], abs=0.2)


def test_telegraph_dwell_times():
    """A symmetric telegraph process that leaves each state with probability
    0.01 per 1-ms sample: mean dwell 100 ms in both states."""
    summary = summarize(bistable_result(7), bistable={"low": -5.0, "high": 5.0, "window_ms": 10.0})
    switches = summary.value("switches", "E1-E2")
    assert switches > 400                                               # ~595 expected in 59.5 s
    for state in ("up", "down"):
        row = next(r for r in summary.rows if r.quantity == f"dwell {state}")
        assert abs(row.value - 100.0) < 4 * row.se, row
        assert row.se == pytest.approx(100.0 / math.sqrt(switches / 2), rel=0.25)


def test_wave_analysis_is_bounded_and_json_is_strict(monkeypatch):
    """Beyond WAVE_ENTRIES samples x sites the waves are analysed over the start
    of the record; NaN (a type without waves) becomes null in the JSON."""
    monkeypatch.setattr(summary_module, "WAVE_ENTRIES", 16 * 1000)
    res = field_result(6, n_time=5000)
    res.A[:, 1] = 20.0                                                  # I: constant, no fluctuations
    summary = summarize(res)
    assert summary.settings["wave_ms"] == 1000.0 and summary.settings["max_distance"] == 2.0
    assert math.isnan(summary.value("wave speed", "I"))
    # no fluctuations, no peak: the frequency is undefined with the prominence
    assert math.isnan(summary.value("psd peak frequency", "I"))
    assert math.isnan(summary.value("psd peak prominence", "I"))
    data = json.loads(json.dumps(summary.to_dict(), allow_nan=False))
    row = next(q for q in data["quantities"] if q["quantity"] == "wave speed" and q["type"] == "I")
    assert row["value"] is None and row["unit"] == "mm/ms"
    with pytest.raises(KeyError, match="'nope' of type 'E'"):
        summary.value("nope", "E")


@pytest.mark.parametrize("kwargs, words", [
    (dict(n_bands=0), ["n_bands"]),
    (dict(max_distance=-1), ["max_distance", "-1"]),
    (dict(segment_ms=0), ["segment_ms"]),
    (dict(wave_ms=float("nan")), ["wave_ms"]),
    (dict(wave_ms=1.5), ["wave_ms = 1.5 ms holds fewer than 2 records of 1 ms"]),
    (dict(n_bands=600), ["PSD band", "holds no frequency bin", "fewer bands"]),
    (dict(discard=1e6), ["samples remain"]),
    (dict(bistable={"low": 5, "high": 1}), ["low < high"]),
])
def test_bad_settings_are_named(kwargs, words):
    with pytest.raises(AnalysisInputError) as info:
        summarize(field_result(1, n_time=3000), **kwargs)
    for w in words:
        assert w in str(info.value)


def test_analyze_command(tmp_path, monkeypatch, capsys):
    """On a real (tiny) result: the table on stdout, the JSON with the same
    numbers as summarize, exit 0; bad input: one line, exit 2, nothing written."""
    out = tmp_path / "r.h5"
    p = cli("run", *TINY, "--set", "run.t_end=400", "-o", str(out), "-q")
    assert p.returncode == 0, p.stderr
    p = cli("analyze", str(out), "--discard", "100", "--json", str(tmp_path / "s.json"))
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[0] == f"result: {out}"
    assert "segment_ms=150" in p.stdout and "max_distance=2, wave_ms=300" in p.stdout
    data = json.loads((tmp_path / "s.json").read_text())
    assert data["settings"] == {"discard_ms": 100.0, "analysed_ms": 300.0, "segment_ms": 150.0, "segments": 2,
                                "f_min_hz": pytest.approx(1000 / 150), "n_bands": 8, "blocks": 20,
                                "block_ms": 15.0, "max_distance": 2.0, "wave_ms": 300.0}
    with meshfield.open_result(out) as res:
        expected = summarize(res, discard=100)
    assert data["quantities"] == expected.to_dict()["quantities"]
    # a clock 20 s ahead at every reading: a progress line per stage, none with -q
    from itertools import count

    from meshfield import cli as cli_module
    clock = count(0.0, 20.0)
    monkeypatch.setattr(cli_module.time, "perf_counter", lambda: next(clock))
    for quiet, lines in (([], 5), (["-q"], 0)):
        assert cli_module.main(["analyze", str(out), "--discard", "100", *quiet]) == 0
        said = capsys.readouterr()
        assert said.out.startswith(f"result: {out}")
        assert len(said.err.splitlines()) == lines and all(
            line.startswith("[meshfield analyze] ") for line in said.err.splitlines()), said.err
    # ... and printing them loads no numba (about 55 MiB of a sliced analysis's peak)
    script = ("import itertools, sys\nfrom meshfield import cli\nclock = itertools.count(0.0, 20.0)\n"
              "cli.time.perf_counter = lambda: next(clock)\n"
              f"assert cli.main(['analyze', {str(out)!r}, '--discard', '100']) == 0\n"
              f"assert cli.main(['compare', {str(out)!r}, {str(out)!r}, '--discard', '100', "
              "'--segment-ms', '100']) == 0\n"
              "print('numba loaded:', 'numba' in sys.modules)\n")
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[-1] == "numba loaded: False"
    assert p.stderr.count("[meshfield analyze] ") == 5 and p.stderr.count("[meshfield compare] ") >= 3, p.stderr
    assert [q["quantity"] for q in data["quantities"][:2]] == ["mean", "variance"]
    # a negative LOW (the signal A_0 - A_1 is symmetric about 0) is a value, not an option
    for option in ("--bistable", "--bist"):  # also as argparse's abbreviation
        said = cli_module.main(["analyze", str(out), "--discard", "100", option, "-5,5,10", "-q"])
        assert said == 0 and "switches" in capsys.readouterr().out
    for args, words in ((["--json", str(tmp_path / "no" / "s.json")], ["--json", "does not exist"]),
                        (["--json", str(tmp_path / "s.txt")], ["--json", ".json"]),
                        (["--bistable", "1,2"], ["--bistable '1,2'", "LOW,HIGH,WINDOW_MS"]),
                        (["--bistable", "-2,-3,10"], ["--bistable '-2,-3,10': LOW = -2 is not below HIGH = -3"]),
                        (["--bands", "0"], ["--bands 0: must be a whole number >= 1"]),
                        (["--wave-ms", "1.5"], ["--wave-ms 1.5 ms holds fewer than 2 records"]),
                        (["--max-distance", "-1"], ["--max-distance -1.0: must be a distance"]),
                        (["--json", ""], ["--json ''", ".json"]),
                        (["--blocks", "1000"], ["--blocks 1000 is more than", "samples left"])):
        before = sorted(tmp_path.iterdir())
        p = cli("analyze", str(out), "--discard", "100", *args)
        lines = p.stderr.strip().splitlines()
        assert p.returncode == 2 and p.stdout == "" and len(lines) == 1, p.stderr
        assert lines[0].startswith("meshfield analyze: unusable input:")
        assert all(w in lines[0] for w in words), lines[0]
        assert sorted(tmp_path.iterdir()) == before
    junk = tmp_path / "junk.h5"
    junk.write_text("not hdf5")
    p = cli("analyze", str(junk))
    assert p.returncode == 2 and "unusable input" in p.stderr
    # a legal name whose temporary twin is too long for the file system: after the
    # table, one line and status 2, nothing written
    long_name = "a" * 245 + ".json"
    before = sorted(tmp_path.iterdir())
    p = cli("analyze", str(out), "--discard", "100", "--json", long_name, cwd=tmp_path)
    assert p.returncode == 2 and p.stdout.startswith("result: "), p.stderr
    assert p.stderr.strip().splitlines() == [
        f"meshfield analyze: cannot write --json {long_name!r}: File name too long; nothing was written"]
    assert sorted(tmp_path.iterdir()) == before


def test_standing_wave_splits_its_power():
    """cos(k x) cos(w t) = half a wave each way: half the power in the peak mode
    pair, directionality 0."""
    n, dx, dt, f, m = 32, 0.05, 1.0, 10.0, 3
    t = np.arange(3000) * dt
    k = 2 * np.pi * m / (n * dx)
    field = 15.0 + 4.0 * np.cos(k * np.arange(n) * dx)[None, :] * np.cos(2 * np.pi * f * 1e-3 * t)[:, None]
    summary = summarize(stand_in(field[:, None, :], dt, ("E",), dx=dx), discard=0.0)
    assert summary.value("wave share", "E") == pytest.approx(0.5, abs=1e-9)
    assert summary.value("wave directionality", "E") == pytest.approx(0.0, abs=1e-9)
    assert summary.value("k peak steps", "E") == m


def test_analysis_stages_and_their_progress_lines(monkeypatch):
    """summarize and compare_results announce each stage; the command line shows
    one when 10 s have passed since the start or the last line."""
    import io

    from meshfield import cli as cli_module
    from meshfield.analysis import compare_results

    result = field_result(2, n_time=3000)
    calls = []
    summarize(result, discard=0, bistable=dict(low=-1.0, high=1.0, window_ms=5.0),
              progress=lambda *args: calls.append(args))
    names = ["mean and variance", "power spectral density", "correlations", "spatial spectrum", "waves",
             "dwell times"]
    assert calls == [(name, i, 6) for i, name in enumerate(names)]
    calls.clear()
    compare_results(result, result, discard=0, progress=lambda *args: calls.append(args))
    assert calls == [(name, i, 3) for i, name in enumerate(names[:3])]
    with pytest.raises(AnalysisInputError, match=r"progress = True: must be a callable progress\(stage, done"):
        summarize(result, discard=0, progress=True)

    clock = iter([0.0, 4.0, 12.0, 15.0, 30.0])  # the start, then one stage each
    monkeypatch.setattr(cli_module.time, "perf_counter", lambda: next(clock))
    stream = io.StringIO()
    progress = cli_module._StageProgress("analyze", interval=10.0, stream=stream)
    for i, name in enumerate(names[:4]):
        progress(name, i, 6)
    assert stream.getvalue().splitlines() == [
        "[meshfield analyze] power spectral density (stage 2 / 6)  wall     12.0 s",
        "[meshfield analyze] spatial spectrum (stage 4 / 6)  wall     30.0 s"]
