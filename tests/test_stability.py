"""`meshfield steady` and meshfield.theory.stability: the homogeneous steady state
and its linear stability, checked against mean-field simulations."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys

import numpy as np
import pytest

import meshfield
import meshfield.cli as cli_module
from meshfield.config import load_config, packaged_config
from meshfield.theory import stability
from meshfield.theory.stability import _kind

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "meshfield.cli", *args], capture_output=True, text=True,
                          cwd=cwd)


def test_bistable_pair_symmetric_state_splits_at_the_predicted_rate():
    # V2's mutually inhibitory pair: the symmetric state is a saddle. By symmetry the
    # difference A - B is its own mode; seeded by a 1-ms, 0.01-mV kick to A it grows
    # as exp(sigma t) until it is no longer small. Fitted between 100 ms (the kick's
    # faster modes have decayed by exp(-45/s * 0.1 s)) and |A - B| = 0.05 Hz (3 % of the
    # rate: the linear regime).
    report = stability("bistable_pair")
    assert report.kind == "uniform stationary instability"
    assert report.frequency == 0.0 and report.k == 0.0
    with open(packaged_config("bistable_pair"), "rb") as f:
        raw = tomllib.load(f)
    raw["run"].update(mean_field=True, t_end=1500.0)
    raw["stimuli"] = [{"kind": "step", "amplitude": 0.01, "types": ["A"], "t_start": 0.0, "duration": 1.0}]
    raw["record"] = {"interval": 1.0}
    cfg = load_config(raw)
    res = meshfield.run(cfg)
    A = np.asarray(res.A, dtype=float)[:, :, 0]
    t = np.asarray(res.times)
    diff = np.abs(A[:, 0] - A[:, 1])
    use = (t >= 100.0) & (diff < 0.05) & (diff > 1e-4)
    assert use.sum() >= 200
    measured = np.polyfit(t[use], np.log(diff[use]), 1)[0] * 1e3
    # the uniform mode has settled on the symmetric state by 100 ms (its rates agree
    # with the theory's to 1e-4), so the only error is the fit's: 0.5 % allowed,
    # measured 1e-5 (6.2528 vs 6.2529/s)
    assert measured == pytest.approx(report.sigma, rel=0.005)


def test_report_of_the_v4_pattern():
    calls = []
    report = stability("v4_pattern", progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 33) for i in range(1, 34)]  # once per distinct mode, in order
    assert report.kind == "stationary pattern"
    assert report.wavelength == pytest.approx(3.2 / 6, rel=1e-12)  # 6 periods on a 3.2-mm ring
    assert report.sigma == pytest.approx(3.255, abs=0.002)
    assert report.n_unstable_modes == 2  # +k and -k of the m = 6 shell
    assert report.n_distinct == 33  # a ring of 64: m = 0 .. 32
    assert report.static_leading == pytest.approx(1.0335, abs=1e-4)
    text = report.format_text()
    assert "stationary pattern of wavelength 0.5333 mm grows at 3.25/s" in text
    assert "not computed: non-homogeneous steady states" in text
    d = report.to_dict()
    assert d["kind"] == "stationary pattern" and d["n_unstable_modes"] == 2
    assert d["shells"]["growth_rate_per_s"][6] == pytest.approx(report.sigma)
    json.dumps(d, allow_nan=False)  # JSON-ready: -inf and NaN became None


@pytest.mark.parametrize("unstable, k, f, kind", [
    (False, 3.0, 12.0, "stable"),
    (True, 0.0, 0.0, "uniform stationary instability"),
    (True, 11.8, 0.0, "stationary pattern"),
    (True, 0.0, 20.0, "synchronous oscillation"),
    (True, 5.0, 20.0, "oscillatory pattern"),
])
def test_kinds(unstable, k, f, kind):
    assert _kind(unstable, k, f) == kind


def test_mode_progress_lines(monkeypatch):
    # a fake clock: the homogeneous state takes 5 s, then every mode 3 s; a line
    # whenever 10 s have passed since the last one, the ETA from the modes alone
    clock = iter([0.0, 5.0] + [5.0 + 3.0 * i for i in range(1, 20)])
    monkeypatch.setattr(cli_module.time, "perf_counter", lambda: next(clock))
    stream = io.StringIO()
    progress = cli_module._CountProgress("meshfield steady", "mode", interval=10.0, stream=stream)
    for done in range(1, 21):
        progress(done, 20)
    lines = stream.getvalue().splitlines()
    assert [line.split()[3] for line in lines] == ["3", "7", "11", "15", "19"]  # at 11, 23, 35, 47, 59 s
    # ETA after mode 3: 2 modes in 6 s, 17 to go
    assert lines[0] == "[meshfield steady] mode 3 / 20 ( 15.0 %)  wall     11.0 s  ETA     51.0 s"
    assert lines[-1].endswith("ETA      3.0 s")


def test_cli_steady(tmp_path):
    out = tmp_path / "v4.json"
    r = cli("steady", "v4_pattern", "--json", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # done in less than the progress interval
    assert "verdict: UNSTABLE: a stationary pattern" in r.stdout
    d = json.loads(out.read_text())
    assert d["growth_rate_per_s"] == pytest.approx(3.255, abs=0.002)
    assert d["wavelength_mm"] == pytest.approx(0.5333, abs=1e-4)
    assert d["ignored"] == ["stimuli[0] (ou)"]  # v4_pattern's noise


def test_cli_steady_says_that_it_ignores_stimuli(tmp_path):
    """The homogeneous theory has the constant drive only: a stimulus leaves the
    numbers as they are, and the report says that it was left out."""
    plain = cli("steady", "v4_pattern", "-q", "--set", "stimuli=[]")
    assert plain.returncode == 0 and "ignored" not in plain.stdout
    r = cli("steady", "v4_pattern", "-q", "--json", str(tmp_path / "s.json"), "--set",
            'stimuli=[{kind="step", amplitude=30.0}, {kind="ou", tau=5.0, amplitude=1.0}]')
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "ignored: stimuli[0] (step), stimuli[1] (ou) (the theory has the constant drive mu only)" in lines
    assert [line for line in lines if not line.startswith(("ignored:", "wrote "))] == plain.stdout.splitlines()
    assert json.loads((tmp_path / "s.json").read_text())["ignored"] == ["stimuli[0] (step)", "stimuli[1] (ou)"]


def test_cli_steady_lists_the_solutions_and_analyses_the_one_chosen(tmp_path):
    """bistable_pair: three homogeneous states; the default start reaches the
    symmetric saddle (test above), and --rates0 near a winner analyses that
    state, which is stable."""
    r = cli("steady", "bistable_pair", "-q")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "  the self-consistency has 3 homogeneous solutions (choose one with --rates0, a rate per type):" in lines
    listed = [line for line in lines if line.startswith("    A ")]
    assert len(listed) == 3 and listed[1].endswith("<- analysed here (reached from the default start)")
    out = tmp_path / "s.json"
    r = cli("steady", "bistable_pair", "-q", "--rates0", "30", "0.1", "--json", str(out))
    assert r.returncode == 0, r.stderr
    d = json.loads(out.read_text())
    low, symmetric, high = d["solutions_hz"]
    assert d["rates_hz"] == high and high[0] > symmetric[0] > high[1]
    assert d["rates0_hz"] == [30.0, 0.1]
    assert d["kind"] == "stable" and d["growth_rate_per_s"] < 0
    assert "UNSTABLE" not in r.stdout
    assert r.stdout.splitlines()[7].endswith("<- analysed here (the nearest to --rates0 30 0.1)")
    # the report of the chosen state is that of the library call
    assert d["growth_rate_per_s"] == pytest.approx(stability("bistable_pair", rates0=high).sigma, rel=1e-9)


@pytest.mark.parametrize("args, message", [
    (["bistable_pair", "--rates0", "30"], "--rates0 30 is invalid: expected one finite rate > 0 Hz per type (A, B)"),
    (["bistable_pair", "--rates0", "30", "-1"], "--rates0 30 -1 is invalid"),
    (["bistable_pair", "--rates0", "30", "inf"], "--rates0 30 inf is invalid"),
    (["v4_pattern", "--set", "lattice.boundary=open"], "periodic"),
    (["v4_pattern", "--json", "x.txt"], "must end in .json"),
    (["no_such_config"], "no_such_config"),
    (["v4_pattern", "--set", "populations.E.tau_m=-1"], "tau_m"),
])
def test_cli_steady_bad_input(tmp_path, args, message):
    r = cli("steady", *args, cwd=tmp_path)
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("meshfield steady: unusable input:")
    assert message in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_report_says_when_no_eigenvalue_of_the_static_gain_is_real():
    """V7's E-I loop: G(k) has a complex pair at every k; the report says so
    in words instead of printing the -inf that stands for it."""
    report = stability("v7_oscillation")
    assert report.static_leading == -math.inf and report.kind == "synchronous oscillation"
    text = report.format_text()
    assert "no real eigenvalue of G(k) at any k" in text and "-inf" not in text
    assert "largest real eigenvalue of G(k) 0.3284" in stability("default").format_text()


def test_stable_report_names_the_slowest_mode():
    report = stability("v3_field")
    assert report.kind == "stable" and report.n_unstable_modes == 0
    assert -25.0 < report.sigma < 0.0 and 10.0 < report.frequency < 15.0
    assert report.verdict().startswith("STABLE: every mode decays; the slowest at -18")
    assert math.isfinite(report.sigma_floor) and report.sigma_floor < report.sigma


def test_a_silent_type_does_not_break_the_analysis():
    # E below threshold with a sharp threshold: rate 0, no response at all (its
    # impulse response is zero, which made the floor 0/0 and argmin of nothing)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = stability(load_config("default", ["populations.E.delta_u=0.001", "populations.E.mu=10.0"]))
    assert report.rates[0] == 0.0 and report.gains[0] == 0.0
    assert report.rates[1] == pytest.approx(13.424, abs=1e-3)
    assert report.kind == "stable" and math.isfinite(report.sigma_floor)
