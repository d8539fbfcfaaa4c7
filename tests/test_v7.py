"""Short version of validation study V7 (drivers/v7_oscillations.py): limit cycles.

The one-site E/I pair of ``v7_oscillation`` for 10 s per level (with the micro
level also at in-degrees x0.25), and its lattice version on the smallest
lattice its kernels allow (5 x 5, 15 625 neurons) for 3 s per level, at a
fixed seed. Micro is the reference. Standard errors: batch means and PSD
segments (acceptance rules), jackknife over segments (frequency, amplitude) and
time blocks (phase locking).
"""

import numpy as np
import pytest

STUDY = """
import v7_oscillations as v7
data = v7.study(None, t_sim=10000.0, t_sim_field=3000.0, shape=(5, 5), scan_factors=(0.25,))
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


def test_one_site_micro_and_meso_pass_the_acceptance_rules(data):
    """Means (3 SE and 5 %) and every PSD band (3 SE or 20 %), VALIDATION.md's rules."""
    compare = data["one_site"]["compare"]
    failed = [r for r in compare["rows"] if not r["passed"]]
    assert compare["passed"] and len(compare["rows"]) == 18, failed


@pytest.mark.parametrize("part", ["one_site", "field"])
def test_amplitude_agrees_within_three_standard_errors(data, part):
    """The amplitude of the rhythm (jackknife SEs over the 1-s segments)."""
    in_se = np.asarray(data[part]["rhythm_difference"]["amplitude"]["in_se"])
    assert np.all(np.abs(in_se) <= 3.0), in_se


def test_one_site_frequency_agrees_within_three_standard_errors(data):
    in_se = np.asarray(data["one_site"]["rhythm_difference"]["frequency"]["in_se"])
    assert np.all(np.abs(in_se) <= 3.0), in_se


def test_field_frequency_is_at_most_one_percent_low(data):
    """On the lattice the standard error of the frequency (25 sites) is small enough to
    resolve the meso level's slightly slower cycle: -0.8 % in this run and in the
    default run (docs/validation_v7.md). Bound it, so that a regression of either
    level shows."""
    relative = np.asarray(data["field"]["rhythm_difference"]["frequency"]["relative"])
    assert np.all((relative > -0.01) & (relative < 0.003)), relative


def test_small_in_degree_control_shows_the_identical_input_error(data):
    """With in-degrees x0.25 (weights x4) the microscopic neurons' own shot noise
    (membrane SD about 2.6 mV for E) spreads the volleys, and the high-frequency PSD
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


def test_field_micro_and_meso_pass_the_acceptance_rules(data):
    """Means, PSD bands and correlations at distances 0, 1, 2 of the 5 x 5 field."""
    compare = data["field"]["compare"]
    failed = [r for r in compare["rows"] if not r["passed"]]
    assert compare["passed"] and len(compare["rows"]) == 24, failed


def test_neighbouring_sites_are_phase_locked_alike_at_both_levels(data):
    """Phase-locking value of neighbouring sites: above 0.99 at both levels (a
    synchronized field) and equal within 3 jackknife SEs."""
    coherence = data["field"]["coherence"]
    for level in ("micro", "meso"):
        assert np.all(np.asarray(coherence[level]["plv"]) > 0.99), coherence[level]
    in_se = np.asarray(data["field"]["coherence_difference"]["in_se"])
    assert np.all(np.abs(in_se) <= 3.0), in_se
