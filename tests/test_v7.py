"""Short version of validation study V7 (drivers/v7_oscillations.py): limit cycles.

The one-site E/I pair of ``v7_oscillation`` for 10 s per level (with the micro
level also at in-degrees x0.25), and its lattice version on the smallest
lattice its kernels allow (5 x 5, 15 625 neurons) for 8 s per level, at a
fixed seed. Micro is the reference. Standard errors: batch means and PSD
segments (acceptance rules), jackknife over segments (frequency, amplitude) and
time blocks (phase locking). A jackknife over n segments has n - 1 degrees of
freedom, so its bounds use Student's t at the coverage of 3 SE (99.73 %).
"""

import numpy as np
import pytest
from scipy.stats import t as student

#: two-sided coverage of a 3-SE bound for a normal variable
COVERAGE = 0.9973


def t_bound(n_samples: int) -> float:
    """The factor of a jackknife SE from ``n_samples`` that covers as 3 SE would."""
    return float(student.ppf(0.5 + COVERAGE / 2, n_samples - 1))

STUDY = """
import v7_oscillations as v7
data = v7.study(None, t_sim=10000.0, t_sim_field=8000.0, shape=(5, 5), scan_factors=(0.25,))
"""


@pytest.fixture(scope="module")
def data(driver_study):
    return driver_study(STUDY)


def test_the_linear_theory_finds_the_oscillatory_instability(data):
    """The homogeneous state is unstable through an E-I oscillation (the configuration's
    design: +30.5/s at 19.3 Hz); the limit cycle of the mean-field run is slower."""
    for part in (data["one_site"], data["field"]):
        th = part["theory"]
        assert th["kind"] == "synchronous oscillation"
        assert th["growth_rate_per_s"] == pytest.approx(30.53, abs=0.01)
        assert th["frequency_hz"] == pytest.approx(19.31, abs=0.01)
    mf = data["one_site"]["mean_field"]
    # 10 segments of 1 s of a deterministic cycle: the jackknife SE is the scatter of
    # the parabola between bins, far below the 4 Hz to the linear frequency
    assert np.all(np.asarray(mf["frequency"]) < 19.31 - 2.0)


#: meso / micro - 1 in the default run (python drivers/v7_oscillations.py, 100 s on one
#: site, 20 s on 8 x 8; docs/validation_v7.md), per type (E, I): the short run must
#: agree with these within its own 3 SE. The default run resolves them; the short
#: one does not, so "no difference within 3 SE" would pass for the wrong reason.
DEFAULT_GAPS = {
    "one_site": {"mean": (-0.0098, -0.0065), "frequency": (-0.0092, -0.0091), "amplitude": (-0.0072, -0.0012)},
    "field": {"mean": (-0.0055, -0.0067), "frequency": (-0.0076, -0.0076), "amplitude": (-0.0075, -0.0068)},
}


def rule_rows(part):
    """The PSD band and correlation rows of a comparison (VALIDATION.md's fixed rules)."""
    return [r for r in part["compare"]["rows"] if r["quantity"] != "mean"]


@pytest.mark.parametrize("part, n_rows", [("one_site", 16), ("field", 22)])
def test_spectra_and_correlations_pass_the_acceptance_rules(data, part, n_rows):
    """Every PSD band (3 SE or 20 %) and, on the lattice, the correlations at
    distances 0, 1, 2 (3 SE or 0.05)."""
    rows = rule_rows(data[part])
    assert len(rows) == n_rows and all(r["passed"] for r in rows), [r for r in rows if not r["passed"]]


@pytest.mark.parametrize("part", ["one_site", "field"])
def test_mean_rates_agree_with_the_default_runs_gap(data, part):
    """The default run's means differ by -0.5 to -1.0 % (beyond its 3 SE except the
    lattice's E: the documented FAIL); the short run's difference is that gap
    within its own 3 SE (batch means, 20 blocks; at this length 6 % and 4 % on one
    site, a weak check, and 0.7 % and 0.5 % on the lattice) and within
    VALIDATION.md's 5 %."""
    means = [r for r in data[part]["compare"]["rows"] if r["quantity"] == "mean"]
    for r, gap in zip(means, DEFAULT_GAPS[part]["mean"]):
        relative = r["value_b"] / r["value_a"] - 1.0
        se = np.hypot(r["se_a"], r["se_b"]) / r["value_a"]
        assert abs(relative - gap) <= 3 * se and abs(relative) <= 0.05, (r, gap)


@pytest.mark.parametrize("part", ["one_site", "field"])
@pytest.mark.parametrize("quantity", ["frequency", "amplitude"])
def test_rhythm_agrees_with_the_default_runs_gap(data, part, quantity):
    """Frequency and amplitude of the rhythm (jackknife SEs over the 1-s segments:
    10 on one site, 8 on the lattice): meso - micro is the default run's gap
    within the short run's t-bound."""
    d = data[part]["rhythm_difference"][quantity]
    relative = np.asarray(d["relative"])
    se = np.abs(np.asarray(d["difference"]) / np.asarray(d["in_se"])) / np.asarray(
        data[part]["rhythm"]["micro"][quantity])
    gap = np.asarray(DEFAULT_GAPS[part][quantity])
    bound = t_bound(data[part]["rhythm"]["micro"]["n_segments"])
    assert np.all(np.abs(relative - gap) <= bound * se), (relative, gap, se, bound)


def test_small_in_degree_control_shows_the_identical_input_error(data):
    """With in-degrees x0.25 (weights x4) the microscopic neurons' own shot noise
    (membrane SD about 2.5 mV for E) spreads the volleys, and the high-frequency PSD
    band of E falls far below the meso level's (+67 % here), beyond 3 SE and 20 %;
    at the configuration's in-degrees the same band passes."""
    row = data["one_site"]["indegree_scan"][0]
    assert row["factor"] == 0.25
    band = next(b for b in row["bands"] if b["quantity"] == "psd 230-500 Hz" and b["type"] == "E")
    assert band["relative"] > 0.3, band
    assert any(f["quantity"] == "psd 230-500 Hz" and f["type"] == "E" for f in row["failed"])
    main = next(r for r in data["one_site"]["compare"]["rows"]
                if r["quantity"] == "psd 230-500 Hz" and r["type"] == "E")
    assert main["passed"], main


def test_neighbouring_sites_are_phase_locked_alike_at_both_levels(data):
    """Phase-locking value of neighbouring sites: above 0.99 at both levels (a
    synchronized field) and equal within the t-bound of the jackknife over 20
    blocks, as in the default run (+1.2 and +1.3 SE)."""
    coherence = data["field"]["coherence"]
    for level in ("micro", "meso"):
        assert np.all(np.asarray(coherence[level]["plv"]) > 0.99), coherence[level]
    in_se = np.asarray(data["field"]["coherence_difference"]["in_se"])
    assert np.all(np.abs(in_se) <= t_bound(coherence["micro"]["n_blocks"])), in_se
