"""Command lines of the validation and benchmark drivers (drivers/*.py), without simulating.

Bad input must be refused before any run with one ``DRIVER: error: ...`` line and
exit status 2, leaving the output folder uncreated; the help must document every
option's default, the outputs, the cost and the exit status; outputs are written
through temporary files. None of these tests starts a simulation (each driver
call ends at the argument checks), so the file takes seconds.
"""

import importlib
import json
import math
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

DRIVERS = Path(__file__).resolve().parents[1] / "drivers"
sys.path.insert(0, str(DRIVERS))

import _validation as val  # noqa: E402

STUDIES = ["v1_single_population", "v2_bistable", "v3_field_async", "v3_control", "v4_patterns",
           "v5_peer_nest", "v6_numerics", "v7_oscillations", "finite_size_fano"]
BENCHES = ["bench_meso", "bench_micro", "bench_exchange", "bench_speedup", "bench_analysis"]


def driver(name):
    return importlib.import_module(name)


def run_script(name, *args, timeout=120):
    """Run ``drivers/NAME.py ARGS`` as a user would; the argument checks end it in seconds."""
    env = dict(os.environ, NUMBA_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, str(DRIVERS / f"{name}.py"), *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=timeout, check=False)


# ----------------------------------------------------------------------------- bad input, as a script

SCRIPT_CASES = [
    ("v1_single_population", ["--config", "nosuch"], "packaged configuration 'nosuch' does not exist"),
    ("v1_single_population", ["--t-sim", "1000"], "at least 2000 ms"),
    ("v2_bistable", ["--t-end", "-5"], "argument --t-end: must be > 0"),
    ("v3_field_async", ["--shape", "6", "6"], "a periodic axis of 6 sites allows at most 2"),
    ("v3_field_async", ["--t-sim", "1000"], "at least 2000 ms"),
    ("v3_control", ["--factor", "0"], "argument --factor: must be > 0"),
    ("v4_patterns", ["--t-end", "0"], "argument --t-end: must be > 0"),
    ("v5_peer_nest", ["--seeds", "1", "--t-end", "6000"], "at least 11000 ms"),
    ("v6_numerics", ["--dt", "0.5", "0.5"], "argument --dt: repeated value(s) 0.5"),
    ("v7_oscillations", ["--t-sim-field", "1500"], "argument --t-sim-field: 1500 ms is too short"),
    ("finite_size_fano", ["--t-sim", "1000"], "the 10 blocks need two 100-ms windows each, at least 2000 ms"),
]


@pytest.mark.parametrize("name, args, message", SCRIPT_CASES, ids=[f"{c[0]} {' '.join(c[1])}" for c in SCRIPT_CASES])
def test_bad_input_as_a_script(name, args, message, tmp_path):
    out = tmp_path / "o" / "study"
    proc = run_script(name, *args, "--out", out)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"{name}.py: error: " in proc.stderr and message in proc.stderr, proc.stderr
    assert not (tmp_path / "o").exists()
    assert proc.stdout == ""


BENCH_SCRIPT_CASES = [
    ("bench_meso", ["--ranks", "0"], "argument --ranks: must be >= 1 (got 0)"),
    ("bench_micro", ["--config", "nosuch"], "packaged configuration 'nosuch' does not exist"),
    ("bench_speedup", ["--rows", "V9"], "unknown study V9"),
    ("bench_analysis", ["--records", "100"], "argument --records: must be >= 2500 (got 100)"),
    ("bench_analysis", ["--ranks", "1", "1"], "argument --ranks: repeated value(s) 1"),
    ("bench_analysis", ["--ranks", "0"], "argument --ranks: must be >= 1 (got 0)"),
    ("bench_analysis", ["--shape", "64", "1"], "argument --shape: must be >= 2 (got 1)"),
    ("bench_analysis", ["--scratch", "/nonexistent/scratch"], "--scratch /nonexistent/scratch: not an existing folder"),
]


@pytest.mark.parametrize("name, args, message", BENCH_SCRIPT_CASES,
                         ids=[f"{c[0]} {' '.join(c[1])}" for c in BENCH_SCRIPT_CASES])
def test_bench_bad_input_as_a_script(name, args, message, tmp_path):
    target = tmp_path / "o" / "bench.json"
    proc = run_script(name, *args, "--json", target)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and message in proc.stderr, proc.stderr
    assert not (tmp_path / "o").exists()


def test_bench_exchange_refuses_zero_calls():
    proc = run_script("bench_exchange", "--calls", "0")
    assert proc.returncode == 2
    assert "bench_exchange.py: error: argument --calls: must be >= 1 (got 0)" in proc.stderr


def test_unwritable_output_is_refused_at_startup(tmp_path):
    """A file where the folder should be: refused before the study, not after it."""
    blocker = tmp_path / "afile"
    blocker.write_text("")
    proc = run_script("v1_single_population", "--out", blocker / "sub")
    assert proc.returncode == 2
    assert "argument --out: cannot create the folder" in proc.stderr
    proc = run_script("v6_numerics", "--out", blocker)
    assert proc.returncode == 2 and "exists and is not a folder" in proc.stderr


# ----------------------------------------------------------------------------- bad input, in process

IN_PROCESS_CASES = [
    ("v1_single_population", ["--seed", "-1"], "argument --seed"),
    ("v1_single_population", ["--t-sim", "-500"], "argument --t-sim: must be > 0 (got -500)"),
    ("v1_single_population", ["--discard", "-500"], "argument --discard: must be >= 0 (got -500)"),
    ("v1_single_population", ["--low-frequency-t-sim", "100"], "at least 8000 ms (or 0 to skip it)"),
    ("v1_single_population", ["--n", "0"], "argument --n: must be >= 1"),
    ("v1_single_population", ["--scan-j", "0"], "argument --scan-j: must be > 0"),
    ("v1_single_population", ["--scan-j", "100", "100"], "argument --scan-j: repeated value(s) 100"),
    ("v1_single_population", ["--config", "default"], "V1 studies populations at one site (this "
                                                       "configuration has a lattice of shape [16, 16])"),
    ("v2_bistable", ["--t-end", "1500"], "--t-end of at least 3000 ms"),
    ("v2_bistable", ["--set", "run.dt=-1"], "run.dt = -1 is invalid"),
    ("v2_bistable", ["--config", "nosuch"], "packaged configuration 'nosuch' does not exist"),
    ("v3_field_async", ["--shape", "0", "4"], "argument --shape: must be >= 1 (got 0)"),
    ("v3_field_async", ["--scan", "0"], "argument --scan: must be > 0"),
    ("v3_field_async", ["--lattice-scan", "-1"], "argument --lattice-scan: must be > 0"),
    ("v3_field_async", ["--scan", "1", "1"], "argument --scan: repeated value(s) 1"),
    ("v3_field_async", ["--config", "v4_pattern"], "V3 studies a 2-D field (this configuration has a "
                                                   "lattice of shape [64])"),
    ("v3_field_async", ["--config", "v1_single"], "lattice of shape [1]"),
    ("v3_field_async", ["--lattice-scan", "1", "4"], "argument --lattice-scan: factor 1 is the main run"),
    ("v3_control", ["--t-sim", "-1"], "argument --t-sim: must be > 0"),
    ("v3_control", ["--factor", "-64"], "argument --factor: must be > 0"),
    ("v3_control", ["--t-sim", "1500"], "at least 2000 ms"),
    ("v3_control", ["--dt", "0.3"], "multiple of run.dt = 0.3"),
    ("v4_patterns", ["--t-end", "-300"], "argument --t-end: must be > 0"),
    ("v4_patterns", ["--t-micro", "0"], "argument --t-micro: must be > 0"),
    ("v4_patterns", ["--config", "nosuch"], "packaged configuration 'nosuch' does not exist"),
    ("v4_patterns", ["--config", "v3_field"], "analyses 1-D lattices"),
    ("v4_patterns", ["--config", "v1_single", "--sweep"], "needs a lattice of at least two sites"),
    ("v4_patterns", ["--sweep", "0.9", "0.9"], "argument --sweep: repeated value(s) 0.9"),
    ("v4_patterns", ["--t-sweep", "1000"], "at least 1400 ms"),
    ("v4_patterns", ["--figures", "/proc/no/figures"], "argument --figures: cannot create the folder"),
    ("v5_peer_nest", ["--t-end", "-1"], "argument --t-end: must be > 0"),
    ("v5_peer_nest", ["--seeds", "1", "1"], "argument --seeds: repeated value(s) 1"),
    ("v5_peer_nest", ["--t-end", "11500"], "(--t-end 11000 or 16000)"),
    ("v5_peer_nest", ["--block", "1500", "--t-end", "5500"],
     "and of PSD segments of 1000 ms (so that no segment joins two runs), i.e. of 3000 ms (--t-end 4000 or 7000)"),
    ("v5_peer_nest", ["--block", "333.3"], "argument --block: 333.3 ms has no multiple of at most 1000 blocks"),
    ("v5_peer_nest", ["--config", "v3_field"], "NEST cannot represent this configuration"),
    ("v6_numerics", ["--dt", "-0.5"], "argument --dt: must be > 0"),
    ("v6_numerics", ["--dt", "0.5", "0.3"], "multiple of run.dt = 0.3"),
    ("v6_numerics", ["--t-sim", "1"], "at least 10 ms"),
    ("v7_oscillations", ["--t-sim", "1000"], "argument --t-sim: 1000 ms is too short"),
    ("v7_oscillations", ["--t-sim-field", "-1"], "argument --t-sim-field: must be >= 0"),
    ("v7_oscillations", ["--scan", "0"], "argument --scan: must be > 0"),
    ("v7_oscillations", ["--scan", "0.5", "0.5"], "argument --scan: repeated value(s) 0.5"),
    ("v7_oscillations", ["--config", "v7_oscillating_field"], "V7's first part studies one site (this "
                                                               "configuration has a lattice of shape [8, 8])"),
    ("v7_oscillations", ["--field-config", "v7_oscillation"], "V7's lattice part needs at least two sites"),
    ("v7_oscillations", ["--shape", "4", "4"], "a periodic axis of 4 sites allows at most"),
    ("v7_oscillations", ["--t-sim-field", "0", "--shape", "5", "5"], "argument --shape: has no effect with "
                                                                      "--t-sim-field 0"),
    ("v7_oscillations", ["--set", "populations.E.tau_m=-1"], "populations.E.tau_m = -1 is invalid"),
    ("v7_oscillations", ["--field-config", "/no/such.toml"], "configuration file '/no/such.toml' does not exist"),
    ("v3_field_async", ["--config", "nosuch.toml"], "configuration file 'nosuch.toml' does not exist"),
    ("v7_oscillations", ["--set", "record.interval=400", "--t-sim", "10000"],
     "--config/--set: record.interval = 400 ms over 10000 ms: the comparison cannot use such records "
     "(segments of 800 ms resolve nothing"),
    ("v7_oscillations", ["--set", "run.mean_field=true"],
     "run.mean_field = true is invalid: the mean-field limit exists only for level = 'meso'"),
    ("finite_size_fano", ["--sites", "0"], "argument --sites: must be >= 1"),
    ("finite_size_fano", ["--sites", "5000000000"], "--sites/--t-sim/--seed: "),
]


@pytest.mark.parametrize("name, args, message", IN_PROCESS_CASES,
                         ids=[f"{c[0]} {' '.join(c[1])}" for c in IN_PROCESS_CASES])
def test_bad_input_is_refused_before_any_run(name, args, message, tmp_path, capsys):
    out = tmp_path / "o" / "study"
    with pytest.raises(SystemExit) as exc:
        driver(name).main([*args, "--out", str(out)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"{name}.py: error: " in err and message in err, err
    assert not (tmp_path / "o").exists()


def test_v7_refuses_a_lattice_of_other_types(tmp_path, capsys):
    """Both parts must hold the same populations (the summary labels them alike)."""
    from meshfield.config import packaged_config

    text = packaged_config("v7_oscillating_field").read_text()
    other = tmp_path / "xy.toml"
    other.write_text(text.replace("[populations.E]", "[populations.X]").replace('"E"', '"X"'))
    out = tmp_path / "o"
    with pytest.raises(SystemExit) as exc:
        driver("v7_oscillations").main(["--field-config", str(other), "--out", str(out)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "the lattice configuration's types ['X', 'I'] differ from the one-site configuration's ['E', 'I']" in err
    assert not out.exists()


def test_v4_refused_figures_folder_gets_its_error_line_alone(tmp_path, capsys):
    """V4 with separate --out and --figures checks both before it announces the
    earlier outputs it will replace, and leaves no new --out folder behind."""
    old = tmp_path / "old"
    old.mkdir()
    (old / "v4.json").write_text("{}")
    for out in (old, tmp_path / "new" / "sub"):
        with pytest.raises(SystemExit) as exc:
            driver("v4_patterns").main(["--out", str(out), "--figures", "/proc/no/figures"])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert "warning" not in err and "argument --figures: cannot create the folder" in err, err
    assert (old / "v4.json").read_text() == "{}" and not (tmp_path / "new").exists()


def test_v2_refuses_a_pair_that_is_not_bistable(tmp_path):
    """Stronger mutual inhibition leaves the theory one symmetric state: bad
    input for V2 (one line, status 2, no folder), found before any simulation."""
    out = tmp_path / "o" / "study"
    proc = run_script("v2_bistable", "--set", "couplings.2.J=-0.6", "--set", "couplings.3.J=-0.6",
                      "--out", out)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0] == ("v2_bistable.py: error: the trapezoid theory finds no ['down', 'up'] state for this "
                        "configuration (found: symmetric 1.12/1.12 Hz); the pair is not bistable, so V2 cannot "
                        "study its switching")
    assert not (tmp_path / "o").exists() and proc.stdout == ""


BENCH_IN_PROCESS_CASES = [
    ("bench_meso", ["--ranks", "1", "1"], "argument --ranks: repeated value(s) 1"),
    ("bench_meso", ["--t-sim", "-50"], "argument --t-sim: must be > 0"),
    ("bench_micro", ["--nest-t-sim", "0"], "argument --nest-t-sim: must be > 0"),
    ("bench_micro", ["--set", "run.dt=-1"], "run.dt = -1 is invalid"),
]


@pytest.mark.parametrize("name, args, message", BENCH_IN_PROCESS_CASES,
                         ids=[f"{c[0]} {' '.join(c[1])}" for c in BENCH_IN_PROCESS_CASES])
def test_bench_bad_input_is_refused_before_any_run(name, args, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        driver(name).main([*args, "--json", str(tmp_path / "o" / "x.json")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"{name}.py: error: " in err and message in err, err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("name", ["bench_meso", "bench_speedup"])
def test_bench_json_must_be_a_file(name, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        driver(name).main(["--json", str(tmp_path)])
    assert exc.value.code == 2
    assert "is a folder" in capsys.readouterr().err


def test_v5_minimum_duration():
    v5 = driver("v5_peer_nest")
    assert v5.minimum_t_end(1, 1000.0, 5000.0) == 11000.0  # two blocks from one seed
    assert v5.minimum_t_end(8, 1000.0, 5000.0) == 6000.0   # one block per run
    assert v5.minimum_t_end(2, 1000.0, 500.0) == 2000.0    # two PSD segments of 1 s in all
    # runs of whole PSD segments, so that no segment joins two runs: 2 blocks of 1.5 s are 3 segments
    assert v5.minimum_t_end(8, 1000.0, 1500.0) == 4000.0
    assert v5.minimum_t_end(1, 0.0, 1500.0, v5.psd_segment(1.0)) == 3000.0
    assert v5.psd_segment(3.0) == 996.0                    # 332 records of 3 ms: psd's even cut
    assert v5.aligned_blocks(750.0, 1000.0) == 4
    assert v5.aligned_blocks(333.3, 1000.0) is None


# ----------------------------------------------------------------------------- help

@pytest.mark.parametrize("name", STUDIES + BENCHES)
def test_help_documents_options_outputs_cost_and_exit_status(name):
    p = driver(name).build_parser()
    for action in p._actions:
        if action.dest == "help":
            continue
        assert action.help and "default" in action.help, (name, action.option_strings, action.help)
    text = " ".join(p.format_help().split())
    for part in ("Writes:", "Default run:", "Exit status: 0", "2 for bad input"):
        assert part in text, (name, part)
    assert "VALIDATION.md" not in text and "MODEL.md" not in text


@pytest.mark.parametrize("name", STUDIES + BENCHES)
def test_usage_examples_in_the_help_are_valid(name, tmp_path):
    """Every ``python drivers/NAME.py ...`` line of the docstring parses, and for the
    studies passes the checks that precede any run."""
    module = driver(name)
    text = re.sub(r"\\\n\s*", " ", module.__doc__)
    examples = [line.split("#")[0].strip() for line in text.splitlines()
                if line.strip().startswith(f"python drivers/{name}.py")]
    assert examples, name
    for example in examples:
        args = shlex.split(example)[2:]
        p = module.build_parser()
        parsed = p.parse_args(args)
        if name == "v4_patterns":
            module.check_args(p, parsed, list(parsed.overrides))
        elif hasattr(module, "check_args"):
            module.check_args(p, parsed)


def test_v3_usage_example_uses_a_lattice_the_kernels_allow():
    doc = driver("v3_field_async").__doc__
    assert "--shape 6 6" not in doc and "--shape 7 7" in doc


def test_help_states_the_default_run_time_of_the_docs_table():
    """docs/validation.md's table of the drivers and each --help give the same cost
    of the default run (``~X min`` there, ``about X minutes`` here)."""
    docs = (DRIVERS.parent / "docs" / "validation.md").read_text()
    rows = re.findall(r"^\| `(\w+)\.py` \| ~([0-9.]+) min \|", docs, flags=re.M)
    assert len(rows) >= 10, rows
    for name, minutes in rows:
        text = " ".join(driver(name).build_parser().format_help().split())
        assert f"Default run: about {minutes} minutes" in text, (name, minutes)


def test_v6_skip_ranks_help_names_the_restart_test():
    p = driver("v6_numerics").build_parser()
    (action,) = [a for a in p._actions if a.dest == "skip_ranks"]
    assert "rank-invariance" in action.help and "restart" in action.help


# ----------------------------------------------------------------------------- shared helpers

def test_write_json_is_strict_and_replaces_in_one_step(tmp_path):
    import numpy as np

    target = tmp_path / "x.json"
    target.write_text("old")
    val.write_json(target, dict(a=float("nan"), b=np.float32(1.5), c=[np.inf, 2], d=np.arange(2), e=np.bool_(True)))
    text = target.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == dict(a=None, b=1.5, c=[None, 2], d=[0, 1], e=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]


def test_replacing_leaves_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "fig.png"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with val.replacing(target) as partial:
            partial.write_text("half")
            raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.png"]


def test_outputs_are_replaced_together_and_stale_ones_removed(tmp_path):
    for name in ("v1.json", "v1_compare_N20.png", "notes.txt"):
        (tmp_path / name).write_text("old")
    names = val.write_outputs(tmp_path, "v1.json", dict(x=1),
                              [("v1_rates.png", lambda path: Path(path).write_text("new"))],
                              owned=("v1.json", "v1_*.png"))
    assert names == ["v1_rates.png", "v1.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "v1.json", "v1_rates.png"]
    assert json.loads((tmp_path / "v1.json").read_text()) == dict(x=1)


def test_a_failed_figure_leaves_the_earlier_outputs_untouched(tmp_path):
    for name in ("v1.json", "v1_rates.png", "v1_compare_N20.png"):
        (tmp_path / name).write_text("old")

    def broken(path):
        Path(path).write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        val.write_outputs(tmp_path, "v1.json", dict(x=1),
                          [("v1_rates.png", lambda path: Path(path).write_text("new")), ("v1_psd.png", broken)],
                          owned=("v1.json", "v1_*.png"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v1.json", "v1_compare_N20.png", "v1_rates.png"]
    assert all(p.read_text() == "old" for p in tmp_path.iterdir())


@pytest.mark.parametrize("shape", [(6,), (6, 5)])
def test_activity_figure_of_a_1d_and_a_2d_lattice(shape, tmp_path):
    """V7's lattice part accepts any lattice of two or more sites (a 1-D ring too):
    its activity figure, drawn after the runs, must handle both."""
    import numpy as np

    rng = np.random.default_rng(1)
    records = {level: val.ActivityRecord(rng.uniform(0, 20, (400,) + (2,) + shape), ("E", "I"), 1.0, {})
               for level in ("micro", "meso")}
    val.plot_activity(tmp_path / "activity.png", records, ("E", "I"))
    assert (tmp_path / "activity.png").stat().st_size > 1000


def test_prepare_out_creates_the_folder_and_announces_earlier_outputs(tmp_path, capsys):
    p = val.parser("v9", "test", prog="v9.py", writes="w", default_run="d")
    folder = val.prepare_out(p, tmp_path / "a" / "b", ["v9.json"], ["v9.json", "v9_*.png"])
    assert folder.is_dir() and list(folder.iterdir()) == []
    assert capsys.readouterr().err == ""
    (folder / "v9.json").write_text("{}")
    (folder / "v9_extra.png").write_text("")
    val.prepare_out(p, folder, ["v9.json"], ["v9.json", "v9_*.png"])
    err = capsys.readouterr().err
    assert "v9.py: warning:" in err and "v9.json will be replaced" in err
    assert "v9_extra.png (not produced with these options) will be removed" in err
    with pytest.raises(SystemExit):
        val.prepare_out(p, folder / "v9.json", ["v9.json"])


def test_run_main_turns_input_errors_into_one_line_and_status_2(tmp_path, capsys):
    from meshfield.config import ConfigError

    p = val.parser("v9", "test", prog="v9.py", writes="w", default_run="d")
    created = tmp_path / "new"

    def failing(argv):
        val.prepare_out(p, created, ["v9.json"])
        raise ConfigError("run.dt = -1 is invalid: must be > 0")

    assert val.run_main(failing, "v9.py") == 2
    assert capsys.readouterr().err == "v9.py: error: run.dt = -1 is invalid: must be > 0\n"
    assert not created.exists()  # the empty folder created at startup is removed again
    assert val.run_main(lambda argv: None, "v9.py") == 0
    assert val.run_main(lambda argv: 1, "v9.py") == 1


def test_exit_status_counts_checks_that_ran():
    assert val.exit_status([True, None]) == 0
    assert val.exit_status([True, False]) == 1
    assert val.exit_status([]) == 0


def test_command_line_records_the_arguments():
    assert val.command_line("v1_single_population.py", ["--t-sim", "2000", "--out", "a b"]) == \
        "python drivers/v1_single_population.py --t-sim 2000 --out 'a b'"


def test_argument_types():
    import argparse

    assert val.positive("2.5") == 2.5
    for bad in ("0", "-1", "nan", "inf", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            val.positive(bad)
    assert val.nonnegative("0") == 0.0
    assert val.seed("0") == 0 and val.seed(str(2**32 - 1)) == 2**32 - 1
    for bad in ("-1", str(2**32), "1.5"):
        with pytest.raises(argparse.ArgumentTypeError):
            val.seed(bad)
    assert math.isclose(val.positive("1e-3"), 1e-3)


# ----------------------------------------------------------------------------- V6: failed MPI workers

FAKE_MPIEXEC = """#!{python}
# Stands in for mpiexec: fails the 1-rank, 1-thread run (the reference), and
# writes a small record for every other run.
import os, sys
import numpy as np
n, target = int(sys.argv[2]), sys.argv[7]
if n == 1 and os.environ.get("NUMBA_NUM_THREADS") == "1":
    sys.stderr.write("Traceback ...\\nRuntimeError: worker crashed\\n")
    sys.exit(1)
np.savez(target, A=np.zeros((3, 2, 9, 7)), Abar=np.zeros((3, 2, 9, 7)), dims=np.array([n, 1]))
"""


def test_v6_reports_a_failed_reference_worker_as_an_error(tmp_path, monkeypatch):
    """The 1-rank reference fails: no KeyError, no 'DIFFERENT', the verdict is ERROR."""
    v6 = driver("v6_numerics")
    fake = tmp_path / "mpiexec"
    fake.write_text(FAKE_MPIEXEC.format(python=sys.executable))
    fake.chmod(0o755)
    monkeypatch.setattr(v6, "mpiexec", lambda: str(fake))
    inv = v6.rank_invariance()
    assert inv["worker_errors"] == 2 and inv["passed"] is None
    entries = inv["levels"]["meso"]
    assert v6._outcome(entries[0]) == "ERROR (worker failed: RuntimeError: worker crashed)"
    assert all(v6._outcome(e).startswith("not compared") for e in entries[1:])
    data = dict(rank_invariance=inv, restarts=None,
                acceptance=dict(mean_field_matches_discrete_theory=True, bitwise_across_ranks=inv["passed"],
                                bitwise_across_restarts=None))
    assert v6.worker_errors(data) == 2
    assert v6.verdict(data).startswith("ERROR")


def test_v6_verdict_separates_differences_from_errors():
    v6 = driver("v6_numerics")
    assert v6._verdict([True, True]) is True
    assert v6._verdict([True, None]) is None
    assert v6._verdict([None, False]) is False
    assert v6._outcome(dict(identical=False)) == "DIFFERENT"
    assert v6._outcome(dict(identical=True)) == "identical"


def test_v5_without_nest_is_refused_before_any_run(tmp_path, capsys, monkeypatch):
    v5 = driver("v5_peer_nest")
    real = v5.importlib.util.find_spec
    monkeypatch.setattr(v5.importlib.util, "find_spec", lambda name, *a: None if name == "nest" else real(name, *a))
    with pytest.raises(SystemExit) as exc:
        v5.main(["--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    assert "NEST, which is not installed here: pip install nest-simulator" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_acceptance_line_names_every_check_and_the_verdict():
    assert (val.acceptance_line("V3 acceptance", {"mean_rate": False, "psd": True})
            == "  V3 acceptance: mean_rate FAIL, psd PASS; overall FAIL")
    assert val.acceptance_line("V5", {"psd": True}) == "  V5: psd PASS; overall PASS"


def test_timed_runs_exclude_the_first_run_of_a_configuration(monkeypatch):
    """The first run of a configuration in a process compiles (or loads) its numba
    kernels; ``timed_run`` runs a short untimed copy first, once per configuration
    up to its duration and seed, so a driver's speedup does not measure the cache."""
    calls = []

    def fake_run(config, comm=None):
        calls.append((config.run.t_end, config.run.seed, config.populations[0].N))
        return SimpleNamespace(meta={"wall_time": 0.0})

    monkeypatch.setattr(val.meshfield, "run", fake_run)
    monkeypatch.setattr(val, "_warmed", set())
    base = val.load("v1_single")
    val.timed_run(base, ["run.t_end=500", "run.seed=2"])
    val.timed_run(base, ["run.t_end=800", "run.seed=3"])
    val.timed_run(base, ["run.t_end=800", "populations.plain.N=50"])
    first = max(val.WARM_UP_MS, base.record.interval)
    assert calls == [(first, 2, 500), (500.0, 2, 500), (800.0, 3, 500),
                     (first, 1, 50), (800.0, 1, 50)]
