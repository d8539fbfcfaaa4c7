"""The SLURM batch scripts in slurm/: syntax, headers, the commands they run
(DRY_RUN=1), one real run through run.sbatch with mpiexec, and scaling_table.py."""

from __future__ import annotations

import csv
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SLURM = ROOT / "slurm"
SCRIPTS = sorted(SLURM.glob("*.sbatch"))
BASH = shutil.which("bash")
MPIEXEC = Path(sys.executable).parent / "mpiexec"
VENV = Path(sys.prefix)

pytestmark = pytest.mark.skipif(BASH is None, reason="needs bash")


def _load_table_module():
    spec = importlib.util.spec_from_file_location("scaling_table", SLURM / "scaling_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


scaling_table = _load_table_module()


def _env(tmp_path, venv=None, **extra):
    """Environment without any SLURM_* variables of a surrounding job, with a venv to activate."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SRUN_"))}
    env.pop("NTASKS", None)
    if venv is None:
        venv = tmp_path / "venv"
        (venv / "bin").mkdir(parents=True, exist_ok=True)
        (venv / "bin" / "activate").write_text("")
    env["MESHFIELD_VENV"] = str(venv)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _bash(script, args, cwd, env, timeout=60):
    return subprocess.run([BASH, str(SLURM / script), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _commands(stdout):
    """The commands a DRY_RUN printed, without the leading '+ '."""
    return [line[2:] for line in stdout.splitlines() if line.startswith("+ ")]


# ----------------------------------------------------------------------------- every script


def test_all_scripts_present():
    names = {p.name for p in SCRIPTS}
    assert names == {"run.sbatch", "sweep.sbatch", "scaling.sbatch", "chain.sbatch"}
    assert (SLURM / "sweep_params.txt").is_file()
    assert (SLURM / "README.md").is_file()


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_syntax(script):
    proc = subprocess.run([BASH, "-n", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_sbatch_header(script):
    lines = script.read_text().splitlines()
    assert lines[0] == "#!/bin/bash"
    # sbatch reads #SBATCH lines only up to the first command
    first_command = next(i for i, line in enumerate(lines)
                         if line.strip() and not line.lstrip().startswith("#"))
    header = [line for line in lines[:first_command] if line.startswith("#SBATCH")]
    options = {line.split()[1].split("=")[0] for line in header}
    assert {"--account", "--partition", "--nodes", "--ntasks", "--time"} <= options
    assert not any(line.startswith("#SBATCH") for line in lines[first_command:])


# ----------------------------------------------------------------------------- run.sbatch


def test_run_dry(tmp_path):
    env = _env(tmp_path, DRY_RUN=1, SLURM_JOB_ID=123, SLURM_NTASKS=16)
    proc = _bash("run.sbatch", ["cfg.toml", "--set", "run.t_end=20", "-q"], tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    cmds = _commands(proc.stdout)
    info = "srun -n 1 meshfield info cfg.toml -n 16 --set run.t_end=20"
    run = "srun -n 16 meshfield run cfg.toml -o out/run-123/result.h5 --set run.t_end=20 -q"
    assert info in cmds and run in cmds
    assert cmds.index(info) < cmds.index(run)
    assert not (tmp_path / "out").exists()


def test_run_dry_info_gets_config_options_only(tmp_path):
    env = _env(tmp_path, DRY_RUN=1, SLURM_NTASKS=4)
    args = ["cfg.toml", "--level", "micro", "--dims", "4,1", "--set=run.seed=3", "-q", "--set", "run.t_end=5"]
    proc = _bash("run.sbatch", args, tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    cmds = _commands(proc.stdout)
    assert "srun -n 1 meshfield info cfg.toml -n 4 --set run.level=micro --set=run.seed=3 --set run.t_end=5" in cmds
    assert f"srun -n 4 meshfield run cfg.toml -o out/run-local/result.h5 {' '.join(args[1:])}" in cmds


def test_run_dry_defaults_and_overwrite(tmp_path):
    env = _env(tmp_path, DRY_RUN=1, OVERWRITE=1, LAUNCH="mpiexec -bind-to core")
    proc = _bash("run.sbatch", [], tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    assert ("mpiexec -bind-to core -n 2 meshfield run default -o out/run-local/result.h5 --overwrite"
            in _commands(proc.stdout))


@pytest.mark.skipif(not MPIEXEC.exists() or not (VENV / "bin" / "activate").exists(),
                    reason="needs the project's virtual environment with mpiexec")
def test_run_local_and_record(tmp_path):
    """A real 20 ms run through run.sbatch on one rank, then its CSV row."""
    env = _env(tmp_path, venv=VENV, LAUNCH=MPIEXEC, NTASKS=1)
    proc = _bash("run.sbatch", ["default", "--set", "run.t_end=20", "-q"], tmp_path, env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = tmp_path / "out" / "run-local" / "result.h5"
    assert result.is_file() and (tmp_path / "out" / "run-local" / "result.h5.blocks").is_dir()
    assert "process grid for 1 rank(s)" in (tmp_path / "out" / "run-local" / "info.txt").read_text()

    csv_path = tmp_path / "scaling.csv"
    assert scaling_table.main(["--record", "strong", str(csv_path), str(result)]) == 0
    (row,) = list(csv.DictReader(csv_path.open()))
    assert row["mode"] == "strong" and row["ranks"] == "1" and row["dims"] == "1x1"
    assert row["sites"] == "256" and row["steps"] == "40"           # 16 x 16, 20 ms / 0.5 ms
    assert float(row["wall_time"]) > 0.0
    assert float(row["first_block_seconds"]) <= float(row["wall_time"])

    # a second submission into the same folder must fail, not overwrite
    again = _bash("run.sbatch", ["default", "--set", "run.t_end=20", "-q"], tmp_path, env, timeout=300)
    assert again.returncode != 0
    assert "exists" in again.stderr and "stopped" in again.stderr


@pytest.mark.skipif(not MPIEXEC.exists() or not (VENV / "bin" / "activate").exists(),
                    reason="needs the project's virtual environment with mpiexec")
def test_run_local_bad_config_stops_at_info(tmp_path):
    env = _env(tmp_path, venv=VENV, LAUNCH=MPIEXEC, NTASKS=1)
    proc = _bash("run.sbatch", ["default", "--set", "run.no_such_key=1"], tmp_path, env, timeout=300)
    assert proc.returncode == 2
    assert "run.no_such_key" in proc.stderr
    assert "[meshfield]" not in proc.stdout                          # the run never started
    assert not (tmp_path / "out" / "run-local" / "result.h5").exists()


# ----------------------------------------------------------------------------- sweep.sbatch


def _param_lines():
    return [line for line in (SLURM / "sweep_params.txt").read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_sweep_params_match_array_range():
    lines = _param_lines()
    assert all(line.startswith("--set ") for line in lines)
    header = (SLURM / "sweep.sbatch").read_text()
    first, last = map(int, re.search(r"^#SBATCH --array=(\d+)-(\d+)", header, re.M).groups())
    assert (first, last) == (0, len(lines) - 1)


def test_sweep_dry(tmp_path):
    env = _env(tmp_path, DRY_RUN=1, SLURM_ARRAY_TASK_ID=3, SLURM_NTASKS=4,
               PARAMS=SLURM / "sweep_params.txt")
    proc = _bash("sweep.sbatch", ["cfg.toml", "--set", "run.t_end=100"], tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    expected = f"srun -n 4 meshfield run cfg.toml -o out/sweep/3.h5 --set run.t_end=100 {_param_lines()[3]}"
    assert expected in _commands(proc.stdout)


def test_sweep_index_out_of_range(tmp_path):
    n = len(_param_lines())
    env = _env(tmp_path, DRY_RUN=1, SLURM_ARRAY_TASK_ID=n, PARAMS=SLURM / "sweep_params.txt")
    proc = _bash("sweep.sbatch", [], tmp_path, env)
    assert proc.returncode == 2
    assert f"array index {n}" in proc.stderr
    assert "meshfield run" not in proc.stdout


def test_sweep_missing_params(tmp_path):
    proc = _bash("sweep.sbatch", [], tmp_path, _env(tmp_path, DRY_RUN=1))
    assert proc.returncode == 2
    assert "parameter file slurm/sweep_params.txt not found" in proc.stderr


# ----------------------------------------------------------------------------- scaling.sbatch


def test_scaling_dry(tmp_path):
    env = _env(tmp_path, DRY_RUN=1, SLURM_NTASKS=4, SLURM_JOB_ID=7, T_END=200)
    proc = _bash("scaling.sbatch", [], tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    runs = [c for c in _commands(proc.stdout) if " meshfield run " in c]
    # warm-up plus ranks 1, 2, 4 for each mode
    assert len(runs) == 7 and "warmup.h5" in runs[0]
    d = "out/scaling-7"
    assert (f"srun -n 4 meshfield run default -o {d}/strong-R4.h5 --overwrite -q --dims 2,2 "
            "--set lattice.shape=[64,64] --set run.t_end=200") in runs
    assert (f"srun -n 2 meshfield run default -o {d}/weak-R2.h5 --overwrite -q --dims 2,1 "
            "--set lattice.shape=[32,16] --set run.t_end=200") in runs
    assert f"python slurm/scaling_table.py --record weak {d}/scaling.csv {d}/weak-R4.h5" in _commands(proc.stdout)
    assert _commands(proc.stdout)[-1] == f"python slurm/scaling_table.py {d}/scaling.csv"


def test_scaling_dry_grid_and_1d(tmp_path):
    env = _env(tmp_path, DRY_RUN=1, RANKS="6 12", MODES="weak", WEAK_BLOCK="8,10")
    runs = [c for c in _commands(_bash("scaling.sbatch", [], tmp_path, env).stdout) if "-R" in c]
    assert any("--dims 3,2 --set lattice.shape=[24,20]" in c for c in runs)     # 6 = 3 x 2
    assert any("--dims 4,3 --set lattice.shape=[32,30]" in c for c in runs)     # 12 = 4 x 3
    env = _env(tmp_path, DRY_RUN=1, RANKS="4", STRONG_SHAPE="4096", WEAK_BLOCK="256")
    runs = [c for c in _commands(_bash("scaling.sbatch", [], tmp_path, env).stdout) if "-R4" in c]
    assert any("--dims 4 --set lattice.shape=[4096]" in c for c in runs)
    assert any("--dims 4 --set lattice.shape=[1024]" in c for c in runs)


def test_scaling_rejects_3d(tmp_path):
    proc = _bash("scaling.sbatch", [], tmp_path, _env(tmp_path, DRY_RUN=1, WEAK_BLOCK="4,4,4"))
    assert proc.returncode == 2 and "1-D or 2-D" in proc.stderr


# ----------------------------------------------------------------------------- chain.sbatch


def test_chain_dry_submission(tmp_path):
    env = _env(tmp_path, DRY_RUN=1, N_SEGMENTS=3)
    proc = _bash("chain.sbatch", ["cfg.toml", "--set", "run.seed=3"], tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    subs = _commands(proc.stdout)
    assert len(subs) == 3 and all(s.startswith("sbatch --parsable") for s in subs)
    assert "--dependency" not in subs[0]
    assert "--dependency=afterok:JOB0 --kill-on-invalid-dep=yes" in subs[1]
    assert "--dependency=afterok:JOB1" in subs[2] and "SEGMENT=2" in subs[2]
    assert subs[2].endswith("chain.sbatch cfg.toml --set run.seed=3")


def test_chain_refuses_arguments_it_sets_itself(tmp_path):
    for args in (["cfg.toml", "--set", "run.t_end=100"], ["cfg.toml", "-o", "x.h5"],
                 ["cfg.toml", "--restart", "x.ckpt.h5"]):
        proc = _bash("chain.sbatch", args, tmp_path, _env(tmp_path, DRY_RUN=1))
        assert proc.returncode == 2, args
        assert args[-2].lstrip("-").split("=")[0] in proc.stderr or "run.t_end" in proc.stderr


def test_chain_resume_needs_the_previous_checkpoint(tmp_path):
    env = _env(tmp_path, DRY_RUN=1, START_SEGMENT=2, N_SEGMENTS=4)
    proc = _bash("chain.sbatch", ["cfg.toml"], tmp_path, env)
    assert proc.returncode == 2 and "segment-1.ckpt.h5" in proc.stderr
    (tmp_path / "out" / "chain").mkdir(parents=True)
    (tmp_path / "out" / "chain" / "segment-1.ckpt.h5").write_text("")
    proc = _bash("chain.sbatch", ["cfg.toml"], tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    subs = _commands(proc.stdout)
    assert len(subs) == 2 and "SEGMENT=2" in subs[0] and "SEGMENT=3" in subs[1]


def test_chain_submission_parses_job_ids(tmp_path):
    """With a stand-in sbatch that prints 'id;cluster', each job depends on the previous id."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "sbatch.log"
    fake = bindir / "sbatch"
    fake.write_text(f'#!/bin/bash\necho "$*" >> {log}\nn=$(wc -l < {log})\necho "$((500 + n));cluster"\n')
    fake.chmod(0o755)
    env = _env(tmp_path, N_SEGMENTS=3)
    env["PATH"] = f"{bindir}:{env['PATH']}"
    proc = _bash("chain.sbatch", [], tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    calls = log.read_text().splitlines()
    assert len(calls) == 3
    assert "--dependency=afterok:501 " in calls[1] and "--dependency=afterok:502 " in calls[2]
    assert "segment 2: job 503" in proc.stdout


def test_chain_dry_segment(tmp_path):
    env = _env(tmp_path, DRY_RUN=1, SEGMENT=2, SEGMENT_MS=100, SLURM_JOB_ID=9, SLURM_NTASKS=8)
    proc = _bash("chain.sbatch", ["cfg.toml"], tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    assert ("srun -n 8 meshfield run cfg.toml -o out/chain/segment-2.h5 --checkpoint "
            "out/chain/segment-2.ckpt.h5 --restart out/chain/segment-1.ckpt.h5 --set run.t_end=300"
            in _commands(proc.stdout))


def test_chain_refuses_sbatch_without_segment(tmp_path):
    proc = _bash("chain.sbatch", [], tmp_path, _env(tmp_path, DRY_RUN=1, SLURM_JOB_ID=9))
    assert proc.returncode == 2 and "not with sbatch" in proc.stderr


def test_chain_is_a_restart_chain():
    text = (SLURM / "chain.sbatch").read_text()
    assert "PLACEHOLDER" not in text and "TODO" not in text
    assert "--checkpoint" in text and "--restart" in text


# ----------------------------------------------------------------------------- scaling_table.py


def _fake_csv(path):
    rows = [
        # strong: 64 x 64 sites, 2000 steps
        ("strong", 1, "1x1", 4096, 2000, 100.0, 2.0),
        ("strong", 4, "2x2", 4096, 2000, 31.25, 1.25),
        ("strong", 2, "2x1", 4096, 2000, 55.0, 1.0),
        # weak: 256 sites per rank
        ("weak", 1, "1x1", 256, 2000, 10.0, 1.0),
        ("weak", 4, "2x2", 1024, 2000, 12.5, 1.5),
    ]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(scaling_table.COLUMNS)
        for r in rows:
            w.writerow([*r, f"out/{r[0]}-R{r[1]}.h5"])


def _table_rows(text):
    return {(p[0], int(p[1])): p for p in (line.split() for line in text.splitlines()[1:])}


def test_scaling_table_efficiency(tmp_path, capsys):
    path = tmp_path / "scaling.csv"
    _fake_csv(path)
    assert scaling_table.main([str(path)]) == 0
    rows = _table_rows(capsys.readouterr().out)
    assert len(rows) == 5
    # strong: E = T1 * 1 / (T_R * R): 100 / (2 * 55) and 100 / (4 * 31.25)
    assert rows["strong", 1][-1] == "1.00"
    assert rows["strong", 2][-1] == "0.91"
    assert rows["strong", 4][-1] == "0.80"
    assert rows["strong", 4][4] == "1024.0"                           # sites per rank
    # weak: E = T1 / T_R = 10 / 12.5
    assert rows["weak", 4][-1] == "0.80"
    assert rows["weak", 4][5] == "12.50" and rows["weak", 4][6] == "11.00"   # wall, loop (s)


def test_scaling_table_loop_time(tmp_path, capsys):
    path = tmp_path / "scaling.csv"
    _fake_csv(path)
    assert scaling_table.main([str(path), "--time", "loop"]) == 0
    rows = _table_rows(capsys.readouterr().out)
    # strong R=4 from loop times: 98 * 1 / (30 * 4)
    assert rows["strong", 4][-1] == f"{98 / 120:.2f}"
    assert rows["weak", 4][-1] == f"{9 / 11:.2f}"


def test_scaling_table_bad_input(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("ranks,wall_time\n1,2.0\n")
    assert scaling_table.main([str(bad)]) == 2
    assert "missing column(s) mode, sites, steps" in capsys.readouterr().err
    empty = tmp_path / "empty.csv"
    empty.write_text(",".join(scaling_table.COLUMNS) + "\n")
    assert scaling_table.main([str(empty)]) == 2
    assert scaling_table.main(["--record", "weak", str(tmp_path / "x.csv"), str(tmp_path / "nope.h5")]) == 2
    assert not (tmp_path / "x.csv").exists()
