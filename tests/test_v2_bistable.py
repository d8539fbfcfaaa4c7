"""Short version of validation study V2 (drivers/v2_bistable.py): the bistable pair.

The packaged ``bistable_pair`` configuration (two populations of N = 500 with
mutual inhibition at one site), 20 s per level at a fixed seed: the theory's
three stationary states, the mean-field limit of the mesoscopic level, and the
finite-size switching at both levels. A regression in the coupling, the
finite-size noise of either level or the analysis moves the switching or the
rates out of the tolerances below.

Reference numbers from the full study (4800 s per level, docs/validation_v2.md):
mean dwell time 1.37 s (micro) and 1.61 s (meso); in the switching run the
dominant population averages 3.31 Hz (micro) and 3.38 Hz (meso), the suppressed
one 0.66 and 0.61 Hz, against the mean-field states 3.77 and 0.37 Hz.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "drivers"))

import v2_bistable as v2  # noqa: E402
from meshfield.analysis import mean_var  # noqa: E402

T_END = 20000.0    # ms per level
DISCARD = 1000.0   # ms
SEED = 5


@pytest.fixture(scope="module")
def data():
    return v2.study(None, t_end=T_END, seed=SEED, discard=DISCARD, continuous_theory=False)


def _runs(data):
    return data["levels"]["micro"], data["levels"]["meso"]


def test_theory_has_two_stable_asymmetric_states_and_an_unstable_symmetric_one(data):
    th = data["theory"]
    for rule in ("trapezoid", "endpoint"):
        up, down, sym = (np.asarray(th[rule][k]) for k in ("up", "down", "symmetric"))
        # identical populations: the two asymmetric states are mirror images
        np.testing.assert_allclose(up, down[::-1], rtol=1e-8)
        assert up[0] > 2.0 * sym[0] and sym[0] > 4.0 * up[1]
    st = th["stability"]
    assert st["up"]["stable"] and st["down"]["stable"] and not st["symmetric"]["stable"]
    # just past the pitchfork, as the configuration file documents
    assert 1.0 < th["G"] < 1.15


def test_mean_field_limit_settles_in_the_asymmetric_fixed_point(data):
    """Without finite-size noise a 0.05 mV pulse on A sends the pair to A-up for good,
    at the discrete theory's rates (same hazard rule and window K) to 1e-5."""
    mf = data["mean_field"]
    assert mf["passed"], mf
    assert mf["reversals"] == 0
    assert np.all(np.abs(mf["relative"]) <= v2.MF_RELATIVE)


def test_both_levels_switch(data):
    """Switches in the 19 s analysed: with the full study's mean dwell times
    (1.37 s micro, 1.61 s meso) about 14 and 12 are expected; for a Poisson count
    of mean 12, P(N <= 5) = 0.02, so fewer than 6 means the switching slowed down
    by a factor of ~2-3 (a change of the barrier, i.e. of the coupling or of the
    finite-size noise). Each level must also have visited both states."""
    for level in _runs(data):
        assert level["n_switches"] >= 6, level["n_switches"]
        assert level["dwell"]["n_up"] >= 1 and level["dwell"]["n_down"] >= 1
        # dwell times beyond ~5 s would show the same slowdown
        assert level["dwell"]["mean_all"] < 5000.0


def test_meso_and_micro_mean_dwell_times_agree(data):
    """VALIDATION.md's dwell rule (mean within 25 %) widened by what ~13 dwells per
    level can resolve: |ln(meso / micro)| <= ln 1.25 + 3 SE, where the SE of
    ln(mean dwell) is CV / sqrt(n) per level (dwell times are close to
    exponential, CV ~ 1, so SE ~ 0.28 per level and the bound a factor ~4).
    The full study's ratio is 1.18 (1.61 s / 1.37 s)."""
    micro, meso = (level["dwell"] for level in _runs(data))
    n = [d["n_up"] + d["n_down"] for d in (micro, meso)]
    se = np.hypot(micro["cv_all"] / np.sqrt(n[0]), meso["cv_all"] / np.sqrt(n[1]))
    log_ratio = np.log(meso["mean_all"] / micro["mean_all"])
    assert abs(log_ratio) <= np.log(1.25) + 3 * se, (micro["mean_all"], meso["mean_all"], n, se)


def test_meso_state_levels_against_the_fixed_points(data):
    """The dominant/suppressed population's mean activity in the detected states
    against the mean-field up/down rates (3.77/0.37 Hz). At N = 500 the levels
    are shifted systematically by the fluctuations (excursions towards the
    saddle and the noise-averaged escape rate): the full study measures -10 %
    (up, 3.384 Hz) and +0.24 Hz (down, 0.606 Hz). Tolerances: that shift plus 3 SE of a 19-s run,
    whose level means rest on ~13 dwells (SE of the up level ~0.05 Hz, of the
    down level ~0.03 Hz, from the per-dwell scatter): up within -20 %..0 %, down
    within 0..+0.45 Hz of the fixed points."""
    up, down = (float(data["theory"]["trapezoid"]["up"][k]) for k in (0, 1))
    levels = data["levels"]["meso"]["levels"]
    assert -0.20 * up <= levels["high"] - up <= 0.0
    assert 0.0 <= levels["low"] - down <= 0.45
    assert levels["fraction_classified"] > 0.9


def _activity(data, level):
    """Activity after the transient, shape (time, type), Hz."""
    result = data["results"][level]
    start = int(round(DISCARD / result.record_interval))
    return np.asarray(result.A[start:, :, 0], dtype=np.float64)


def test_micro_and_meso_mean_rates_agree(data):
    """Per type: |meso - micro| <= 3 SE_diff + 5 % (VALIDATION.md's relative
    tolerance as the stated margin); SEs from 5 batch-means blocks of 3.8 s
    (~3 dwells each, so the random occupancy of the two states enters the SE).
    The pair mean (A_A + A_B)/2 hardly depends on which state is occupied, so
    its SE is small (10 blocks of 1.9 s, far above its correlation time of
    tens of ms): also within 3 SE_diff + 5 %."""
    micro, meso = (_activity(data, level) for level in ("micro", "meso"))
    per_type = [mean_var(a, record_interval=1.0, n_blocks=5) for a in (micro, meso)]
    for t in range(2):
        a, b = per_type[0].mean[t], per_type[1].mean[t]
        se = np.hypot(per_type[0].mean_se[t], per_type[1].mean_se[t])
        assert abs(b - a) <= 3 * se + 0.05 * a, (t, a, b, se)
    pair = [mean_var(a.mean(axis=1), record_interval=1.0, n_blocks=10) for a in (micro, meso)]
    a, b = pair[0].mean[0], pair[1].mean[0]
    se = np.hypot(pair[0].mean_se[0], pair[1].mean_se[0])
    assert abs(b - a) <= 3 * se + 0.05 * a, (a, b, se)


def test_high_frequency_psd_agrees(data):
    """PSD bands above 10 Hz (the finite-size noise of the switching-free
    fluctuations, ~r/N) pass VALIDATION.md's band rule (3 SE or 20 %) at 19
    one-second segments."""
    rows = [r for r in data["compare"]["rows"] if r["quantity"].startswith("psd")]
    high = [r for r in rows if float(r["quantity"].split()[1].split("-")[0]) >= 10.0]
    assert len(high) == 10
    assert all(r["passed"] for r in high), [r for r in high if not r["passed"]]


def test_state_levels_of_a_record_that_never_switches_are_nan():
    """A pair that never reaches a threshold (state 0 throughout) has no levels:
    NaN in the numbers, not an IndexError that ends the study before its report."""
    from types import SimpleNamespace
    result = SimpleNamespace(A=np.full((100, 2, 1), 5.0), record_interval=1.0)
    levels = v2.state_levels(result, np.zeros(100, dtype=int), 0.0, 10.0)
    assert all(np.isnan(levels[k]) for k in ("high", "low", "high_mode", "low_mode"))
    assert levels["fraction_classified"] == 0.0


def test_summary_states_the_verdict_and_its_parts(data):
    acc = data["acceptance"]
    text = v2.summary(data)
    verdict = "PASS" if v2.passed(data) else "FAIL"
    assert f"V2 {verdict}: micro vs meso {'PASS' if acc['micro_vs_meso'] else 'FAIL'}" in text
    assert f"mean-field check {'pass' if acc['mean_field'] else 'FAIL'}" in text


@pytest.mark.parametrize("p_leave_meso", [0.0, 1e-4])
def test_dwell_figure_of_a_pair_that_hardly_switches_is_quiet(tmp_path, p_leave_meso):
    """A V2 run that never switches, or has a single dwell at one level, is a
    FAIL with all its numbers (status 1); its dwell figure must not warn on
    stderr (an empty legend, a density of no samples, the SE of one dwell)."""
    import warnings

    from test_analysis_compare import bistable_result

    from meshfield.analysis import compare_results

    report = compare_results(bistable_result(1, p_leave=0.0, n_time=20_000),
                             bistable_result(2, p_leave=p_leave_meso, n_time=20_000),
                             bistable={"low": -5.0, "high": 5.0}, labels=("micro", "meso"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v2.plot_dwell(tmp_path / "dwell.png", report, "E1-E2")
    assert (tmp_path / "dwell.png").read_bytes()[:4] == b"\x89PNG"
