"""compare_results: VALIDATION.md's acceptance rules on synthetic stand-in results."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from scipy.signal import lfilter

from meshfield.analysis import (
    BistableSpec,
    CompareInputError,
    compare_results,
    plot_comparison,
)


def stand_in(A, dt, types, dx=0.1, boundary="periodic"):
    """A minimal result object as meshfield.io.open_result returns it."""
    return SimpleNamespace(
        A=A,
        Abar=A,
        times=np.arange(1, A.shape[0] + 1) * dt,
        types=list(types),
        record_interval=dt,
        shape=A.shape[2:],
        config={"lattice": {"shape": list(A.shape[2:]), "dx": dx, "boundary": boundary}},
    )


def field_result(seed, means=(10.0, 20.0), scale=1.0, n_time=20_000, shape=(4, 4), dt=1.0, tau=10.0, **kw):
    """E and I activity: mean + AR(1) noise (tau ms) summed over each site's
    4 neighbours, so sites are correlated (r = 0.4 at distances 1 and 2 on a
    4x4 periodic lattice)."""
    rng = np.random.default_rng(seed)
    a = np.exp(-dt / tau)
    noise = lfilter([np.sqrt(1 - a * a)], [1, -a], rng.normal(size=(n_time, 2) + shape), axis=0)
    noise = noise + sum(np.roll(noise, s, axis=axis) for axis in (2, 3) for s in (1, -1))
    A = np.asarray(means)[:, None, None] + scale * noise
    return stand_in(A, dt, ("E", "I"), **kw)


def bistable_result(seed, p_leave=0.01, n_time=60_000, dt=1.0):
    """Two types E1, E2 at one site that take turns at 60 Hz over a 50 Hz
    floor, switching as a symmetric telegraph process (mean dwell dt/p_leave)."""
    rng = np.random.default_rng(seed)
    flips = rng.random(n_time) < p_leave
    state = np.where(np.cumsum(flips) % 2 == 0, 1.0, -1.0)
    A = np.empty((n_time, 2, 1))
    A[:, 0, 0] = 50.0 + 10.0 * (state > 0) + rng.normal(0.0, 2.0, n_time)
    A[:, 1, 0] = 50.0 + 10.0 * (state < 0) + rng.normal(0.0, 2.0, n_time)
    return stand_in(A, dt, ("E1", "E2"), boundary="open")


def test_same_process_passes():
    report = compare_results(field_result(1), field_result(2), labels=("micro", "meso"))
    assert report.passed, report.format_text()
    quantities = [row.quantity for row in report.rows]
    assert quantities.count("mean") == 2
    assert sum(q.startswith("psd ") for q in quantities) == 2 * 8
    assert [q for q in quantities if q.startswith("corr")] == ["corr d=0", "corr d=1", "corr d=2"] * 2
    text = report.format_text()
    assert "PASS: all 24 quantities" in text and "micro" in text
    psd_row = next(row for row in report.rows if row.quantity.startswith("psd 1-"))
    assert psd_row.type == "E" and psd_row.unit == "Hz" and "20%" in psd_row.tolerance


def test_shifted_mean_fails_and_is_named():
    # 2 Hz on 10 Hz: 20 %, far beyond 5 % and 3 SE (SE ~ 0.04 Hz).
    report = compare_results(field_result(1), field_result(2, means=(12.0, 20.0)))
    assert not report.passed
    assert [(row.quantity, row.type) for row in report.failures] == [("mean", "E")]
    assert "FAIL: 1 of 24 quantities out of tolerance: mean (E)" in report.format_text()


def test_small_mean_shift_fails_on_standard_errors():
    # 0.3 Hz is within 5 % of 10 Hz but ~5 SE of the difference (SE_diff ~
    # 0.06 Hz): the rule needs both.
    report = compare_results(field_result(1), field_result(2, means=(10.3, 20.0)))
    failed = report.failures
    assert [(row.quantity, row.type) for row in failed] == [("mean", "E")]
    assert abs(failed[0].difference) <= 0.05 * failed[0].value_a


@pytest.mark.parametrize("n_se, passed", [(2.5, True), (3.5, False)])
def test_the_mean_rule_allows_three_standard_errors(n_se, passed):
    """B = A + d with the same fluctuations, so both have the same SE and
    SE_diff = sqrt(2) SE: d = 2.5 SE_diff passes, 3.5 SE_diff fails (both far
    inside 5 % of 10 Hz). Deterministic; pins VALIDATION.md's factor 3."""
    a = field_result(1)
    se = compare_results(a, a).rows[0].se_a
    d = n_se * np.sqrt(2.0) * se
    assert d < 0.05 * 10.0 / 2
    b = stand_in(a.A + np.array([d, 0.0])[None, :, None, None], 1.0, ("E", "I"))
    row = compare_results(a, b).rows[0]
    assert (row.quantity, row.type, row.passed) == ("mean", "E", passed)


def test_every_row_states_the_rule_of_validation_md_with_its_numbers():
    """The limits printed in each row are VALIDATION.md's: 3 SE_diff, 5 % or
    20 % of the reference, 0.05 absolute, 25 % of the reference dwell, and the
    verdict follows from them; checked on a comparison with passing and failing
    rows of every kind (the limits are printed to 3 digits: rel 6e-3)."""
    import re
    report = compare_results(field_result(1), field_result(2, means=(10.3, 20.0), scale=1.3))
    dwell = compare_results(bistable_result(1), bistable_result(2, p_leave=0.005),
                            bistable=BistableSpec(-5.0, 5.0, window_ms=10.0))
    rows = report.rows + dwell.rows
    assert {row.passed for row in rows} == {True, False}
    for row in rows:
        limits = dict(re.findall(r"(3SE|5%|20%|25%)=([-+.e\d]+)", row.tolerance))
        d = abs(row.value_b - row.value_a)
        if "3SE" in limits:
            assert float(limits["3SE"]) == pytest.approx(3 * np.hypot(row.se_a, row.se_b), rel=6e-3), row
        rel = {"mean": ("5%", 0.05), "psd": ("20%", 0.2), "dwell": ("25%", 0.25)}.get(row.quantity.split()[0])
        if rel:
            assert float(limits[rel[0]]) == pytest.approx(rel[1] * abs(row.value_a), rel=6e-3), row
        if row.quantity == "mean":
            assert row.passed == (d <= 3 * np.hypot(row.se_a, row.se_b) and d <= 0.05 * abs(row.value_a))
        elif row.quantity.startswith("psd"):
            assert row.passed == (d <= 3 * np.hypot(row.se_a, row.se_b) or d <= 0.2 * abs(row.value_a))
        elif row.quantity.startswith("corr"):
            assert "|d|<=0.05" in row.tolerance
            assert row.passed == (d <= 3 * np.hypot(row.se_a, row.se_b) or d <= 0.05)
        elif row.quantity.startswith("dwell"):
            assert row.passed == (d <= 0.25 * abs(row.value_a))
        else:
            assert row.quantity == "switches" and row.passed == (min(row.value_a, row.value_b) >= 30)


def test_mean_beyond_five_percent_fails_even_within_standard_errors():
    # Noisy short records (SE ~ 0.7 Hz) and B = A + 1 Hz exactly (same seed):
    # the 10 % shift is inside 3 SE_diff but outside 5 % of the reference,
    # and the rule needs both.
    noisy = dict(scale=10.0, n_time=5000)
    report = compare_results(field_result(1, **noisy), field_result(1, means=(11.0, 20.0), **noisy))
    row = next(row for row in report.rows if row.quantity == "mean" and row.type == "E")
    assert abs(row.difference) <= 3 * np.hypot(row.se_a, row.se_b)
    assert not row.passed


def test_psd_within_20_percent_passes_beyond_standard_errors():
    # Same noise 5 % larger: every band is 10.25 % higher, which exceeds
    # 3 SE_diff in the well-resolved high bands but is within 20 %.
    report = compare_results(field_result(1), field_result(1, scale=1.05))
    rows = [row for row in report.rows if row.quantity.startswith("psd")]
    assert all(row.passed for row in rows)
    assert any(abs(row.difference) > 3 * np.hypot(row.se_a, row.se_b) for row in rows)


def test_correlation_within_absolute_tolerance_passes():
    # Adding independent noise of 12.7 % of the variance lowers r(1) = 0.4 by
    # 0.4 * 0.127/1.127 = 0.045: beyond 3 SE_diff (~0.03) but within 0.05.
    base = field_result(1)
    diluted = field_result(1)
    site_var = 5.0  # 5 unit-variance AR(1) terms summed per site
    extra = np.random.default_rng(99).normal(0.0, np.sqrt(0.127 * site_var), base.A.shape)
    diluted.A = base.A + extra
    report = compare_results(base, diluted)
    rows = [row for row in report.rows if row.quantity == "corr d=1"]
    assert all(row.passed for row in rows)
    assert all(abs(row.difference) > 3 * np.hypot(row.se_a, row.se_b) for row in rows)
    assert all(abs(row.difference) == pytest.approx(0.045, abs=0.004) for row in rows)


def test_larger_fluctuations_fail_the_psd():
    # Fluctuations 1.5 times larger: the PSD is 2.25 times higher in every band.
    report = compare_results(field_result(1), field_result(2, scale=1.5))
    failed = {row.quantity for row in report.failures}
    assert {q for q in failed if q.startswith("psd")} == {row.quantity for row in report.rows if row.quantity.startswith("psd")}
    assert all(not q.startswith("corr") and q != "mean" for q in failed)
    assert not report.band_passed.any()


def test_bistable_dwell_times():
    spec = BistableSpec(low=-5.0, high=5.0, window_ms=5.0)
    report = compare_results(bistable_result(1), bistable_result(2), bistable=spec, discard=0.0)
    dwell_rows = {row.quantity: row for row in report.rows if row.quantity in ("switches", "dwell up", "dwell down")}
    assert set(dwell_rows) == {"switches", "dwell up", "dwell down"}
    assert all(row.passed for row in dwell_rows.values()), report.format_text()
    assert dwell_rows["switches"].value_a > 300 and dwell_rows["dwell up"].type == "E1-E2"
    # Mean dwell 100 ms: ~300 dwells per state, SE 6 %, so the two agree well
    # within 25 %; the reference mean is the telegraph's 1/p = 100 ms.
    assert dwell_rows["dwell up"].value_a == pytest.approx(100.0, abs=3 * dwell_rows["dwell up"].se_a)
    assert not any(row.quantity.startswith("corr") for row in report.rows)  # one site
    slower = compare_results(
        bistable_result(1), bistable_result(2, p_leave=0.005), bistable={"low": -5.0, "high": 5.0, "window_ms": 5.0}
    )
    failed = {row.quantity for row in slower.failures}
    assert {"dwell up", "dwell down"} <= failed and "switches" not in failed


def test_too_few_switches_fail():
    report = compare_results(
        bistable_result(1, p_leave=0.0004, n_time=30_000),
        bistable_result(2, p_leave=0.0004, n_time=30_000),
        bistable={"low": -5.0, "high": 5.0},
    )
    switches = next(row for row in report.rows if row.quantity == "switches")
    assert not switches.passed and switches.value_a < 30


def test_the_report_notes_how_often_few_segments_or_switches_fail_by_chance():
    """With 2 PSD segments a band of two samples of the same process fails its
    3-SE test 9.5 % of the time (Student's t, 2 degrees of freedom), and with
    about 60 switches the 25 % dwell rule about a third of the time
    (docs/analysis.md); the report says so under its verdict, and says nothing
    with 19 segments and some 600 switches."""
    from scipy import stats

    long = compare_results(field_result(1), field_result(2))
    assert long.settings["segments"] == (19, 19) and long.notes == []
    assert "note:" not in long.format_text()
    short = compare_results(field_result(1, n_time=2600), field_result(2, n_time=2600))
    assert short.settings["segments"] == (2, 2)
    assert short.notes == [
        "2 and 2 PSD segments: a band whose two results sample the same process fails its 3-SE test by chance "
        "in up to 9.5 % of comparisons (Student's t with 2 degrees of freedom; the 20 % alternative rescues "
        "some); with fewer than 10 segments a single band FAIL is weak evidence of a difference"]
    assert short.format_text().endswith("\nnote: " + short.notes[0])
    assert 2 * stats.t.sf(3.0, 2) == pytest.approx(0.0955, abs=5e-5)

    spec = {"low": -5.0, "high": 5.0, "window_ms": 5.0}
    many = compare_results(bistable_result(1), bistable_result(2), bistable=spec, discard=0.0)
    assert many.dwells[0].n_switches > 500 and not any("switches" in note for note in many.notes)
    few = compare_results(bistable_result(1, n_time=6000), bistable_result(2, n_time=6000), bistable=spec,
                          discard=0.0)
    (a, b), (note,) = (d.n_switches for d in few.dwells), [n for n in few.notes if "switches" in n]
    k = min(min(d.up.size, d.down.size) for d in few.dwells)
    assert 40 <= a <= 90 and 40 <= b <= 90 and 20 <= k
    chance = float(note.split("in about ")[1].split(" %")[0])
    # per state: erfc(0.25 / sqrt(1/k_a + 1/k_b) / sqrt 2), about 33 % at 30 dwells each
    assert 20 <= chance <= 50
    assert note.startswith(f"{a} and {b} switches: the dwell rule (means within 25 %) fails two samples of the "
                           "same Markovian switching process by chance in about ")
    assert note.endswith("some 250 switches in each result bring that below 5 %")


@pytest.mark.parametrize(
    ("other", "message"),
    [
        (lambda: stand_in(np.zeros((5000, 1, 4, 4)) + 1.0, 1.0, ("E",)), "types differ"),
        (lambda: field_result(2, shape=(4, 2)), "lattice shapes differ"),
        (lambda: field_result(2, dt=0.5, n_time=40_000), "record intervals differ"),
        (lambda: field_result(2, dx=0.2), "lattice.dx differs"),
        (lambda: field_result(2, boundary="open"), "lattice.boundary differs"),
        (lambda: field_result(2, n_time=2000), "segments"),
        (lambda: np.zeros((100, 2, 4, 4)), "not a result"),
    ],
)
def test_unusable_input(other, message):
    with pytest.raises(CompareInputError, match=message):
        compare_results(field_result(1, n_time=5000), other())


def test_a_record_too_short_for_the_discarded_transient_is_named():
    """Of two results, the one whose record the transient leaves too short is
    named by its label (the other may be long enough); an invalid transient is
    the setting's fault and names no result."""
    long, short = field_result(1, n_time=3000), field_result(2, n_time=300)
    with pytest.raises(CompareInputError, match=r"^micro: only 0 samples remain after discarding 500.0 ms "
                                                r"of a record of 300 samples"):
        compare_results(short, long, labels=("micro", "meso"))
    with pytest.raises(CompareInputError, match=r"^meso: only 0 samples remain"):
        compare_results(long, short, labels=("micro", "meso"))
    with pytest.raises(CompareInputError, match=r"^discard = -1: must be a non-negative time in ms"):
        compare_results(long, short, discard=-1, labels=("micro", "meso"))


def test_non_finite_and_bad_bistable_option():
    broken = field_result(2, n_time=5000)
    broken.A[1000, 0, 0, 0] = np.nan
    with pytest.raises(CompareInputError, match="non-finite"):
        compare_results(field_result(1, n_time=5000), broken)
    with pytest.raises(CompareInputError, match="bistable"):
        compare_results(field_result(1, n_time=5000), field_result(2, n_time=5000), bistable={"low": 1.0})
    with pytest.raises(CompareInputError, match="bistable"):
        compare_results(field_result(1, n_time=5000), field_result(2, n_time=5000), bistable={"low": 2.0, "high": 1.0})


def test_plot_comparison_writes_figure(tmp_path):
    report = compare_results(field_result(1, n_time=5000), field_result(2, n_time=5000, means=(12.0, 20.0)))
    path = tmp_path / "compare.png"
    plot_comparison(report, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bistable = compare_results(bistable_result(1), bistable_result(2), bistable={"low": -5.0, "high": 5.0})
    plot_comparison(bistable, tmp_path / "bistable.png")
    assert (tmp_path / "bistable.png").stat().st_size > 0


def test_plot_comparison_of_a_type_without_fluctuations_is_quiet(tmp_path):
    """A silent type (A = 0 throughout) has a PSD of 0, which a log axis cannot
    show: its panel says so instead of warning on stderr."""
    import warnings

    a, b = field_result(1, n_time=3000), field_result(2, n_time=3000)
    for res in (a, b):
        res.A[:, 0] = 0.0  # the first type: drawn first, on axes without any positive value yet
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plot_comparison(compare_results(a, b), tmp_path / "silent.png")
    assert (tmp_path / "silent.png").read_bytes()[:4] == b"\x89PNG"
    from meshfield.plot import plot_psd
    a.config["populations"] = {"E": {"N": 400}, "I": {"N": 100}}  # for the r/N lines
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plot_psd(a, tmp_path / "psd.png")
    assert (tmp_path / "psd.png").read_bytes()[:4] == b"\x89PNG"


def test_plot_psd_draws_the_finite_size_level_only_where_there_is_finite_size_noise(tmp_path, monkeypatch):
    """The dashed r/N line is the PSD of N independent spike trains; a mean-field
    run has no such noise (its fluctuations come from stimuli or the dynamics),
    so no line is drawn there, and the title says why."""
    import meshfield.plot as plot

    figures = []
    monkeypatch.setattr(plot, "_save", lambda fig, path: figures.append(fig) or str(path))
    res = field_result(1, n_time=3000)
    res.config["populations"] = {"E": {"N": 400}, "I": {"N": 100}}
    r = res.A[int(plot.PSD_DISCARD_MS):].mean(axis=(0, 2, 3))  # records of 1 ms
    for mean_field, dashed in ((False, r / [400, 100]), (True, [])):
        res.config["run"] = {"mean_field": mean_field}
        plot.plot_psd(res, tmp_path / "psd.png")
        ax = figures[-1].axes[0]
        levels = [line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() == "--"]
        np.testing.assert_allclose(levels, dashed, rtol=5e-3)  # the PSD uses whole segments only
        assert ax.get_title().endswith("mean field)" if mean_field else "dashed: r/N)")


@pytest.mark.parametrize("p_leave_b, dwells_b", [(0.0, (0, 0)), (1e-4, (0, 1))])
def test_plot_comparison_without_dwells_is_quiet(tmp_path, p_leave_b, dwells_b):
    """A result that never switches (no dwell at all) or switches twice (one
    down dwell, no up dwell) leaves histograms without samples, whose density only
    warns: the panel draws what there is, or says there is nothing."""
    import warnings

    a = bistable_result(1, p_leave=0.0, n_time=20_000)
    b = bistable_result(2, p_leave=p_leave_b, n_time=20_000)
    report = compare_results(a, b, bistable={"low": -5.0, "high": 5.0})
    assert report.dwells[0].n_switches == 0
    assert (report.dwells[1].up.size, report.dwells[1].down.size) == dwells_b
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plot_comparison(report, tmp_path / "no_dwells.png")
    assert (tmp_path / "no_dwells.png").read_bytes()[:4] == b"\x89PNG"


def test_short_segments_move_the_lowest_band_and_are_reported():
    """2 s of record after the transient: the VALIDATION.md default (1 s
    segments, bands from 1 Hz) needs 2 s and works; 1.5 s does not, and the
    message says how much remains and what is needed; 250 ms segments start the
    bands at 4 Hz, and the report says so."""
    a, b = field_result(1, n_time=2500), field_result(2, n_time=2500)
    assert compare_results(a, b, discard=500).settings["f_min_hz"] == 1.0
    with pytest.raises(CompareInputError, match=r"1500 ms remain after discarding the first 1000 ms.*2000 ms"):
        compare_results(a, b, discard=1000)
    report = compare_results(a, b, discard=1000, segment_ms=250)
    assert report.settings["f_min_hz"] == 4.0 and report.settings["segments"] == (6, 6)
    assert report.bands[0].f_lo[0] == pytest.approx(4.0)
    assert "f_min_hz=4, segments=6/6, n_bands=8, blocks=20, block_ms=75/75" in report.format_text()
    # 333 ms segments are cut to an even 332 records: the bands start at their lowest bin
    odd = compare_results(a, b, discard=500, segment_ms=333)
    assert odd.settings["segment_ms"] == 332.0 and odd.settings["f_min_hz"] == pytest.approx(1000 / 332)
    # two segments as cut fit in 665 ms (2 x 332), not in 663; the message gives the cut
    assert compare_results(a, b, discard=1835, segment_ms=333).settings["segments"] == (2, 2)
    with pytest.raises(CompareInputError, match=r"663 ms remain .* segment_ms = 333 ms, cut to 332 ms "
                                                 r"\(an even number of samples\) \(664 ms\)\. Run longer"):
        compare_results(a, b, discard=1837, segment_ms=333)
    with pytest.raises(CompareInputError, match="segment_ms = 0: must be a positive"):
        compare_results(a, b, segment_ms=0)


def test_comparison_figure_is_published_whole(tmp_path, monkeypatch):
    """A failure while drawing leaves neither the target nor a partial file."""
    from matplotlib.figure import Figure

    report = compare_results(field_result(1, n_time=5000), field_result(2, n_time=5000))
    path = tmp_path / "compare.png"
    path.write_bytes(b"old figure")

    def broken(self, fname, **kw):
        with open(fname, "wb") as f:
            f.write(b"half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        plot_comparison(report, path)
    assert path.read_bytes() == b"old figure"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compare.png"]
