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

needs_venv = pytest.mark.skipif(not MPIEXEC.exists() or not (VENV / "bin" / "activate").exists(),
                                reason="needs the project's virtual environment with mpiexec")


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


def _submissions(stdout):
    """The sbatch commands a DRY_RUN of chain.sbatch printed."""
    return [c for c in _commands(stdout) if c.startswith("sbatch ")]


def _fake_bin(tmp_path):
    """Stand-ins for sbatch and srun that only log their arguments (to sbatch.log,
    srun.log); returns the folder for PATH and the two logs."""
    bindir = tmp_path / "fakebin"
    bindir.mkdir(exist_ok=True)
    logs = {}
    for name in ("sbatch", "srun"):
        logs[name] = tmp_path / f"{name}.log"
        fake = bindir / name
        fake.write_text(f'#!/bin/bash\necho "$*" >> {logs[name]}\necho "$((600 + RANDOM % 100))"\n')
        fake.chmod(0o755)
    return bindir, logs


def _env_with_fakes(tmp_path, venv=None, **extra):
    """_env with the logging sbatch and srun first on PATH; returns (env, logs)."""
    env = _env(tmp_path, venv=venv, **extra)
    bindir, logs = _fake_bin(tmp_path)
    env["PATH"] = f"{bindir}:{env['PATH']}"
    return env, logs


def _header_ntasks(script):
    return int(re.search(r"^#SBATCH --ntasks=(\d+)", (SLURM / script).read_text(), re.M).group(1))


def _nothing_written(tmp_path, logs=None):
    """Neither out/ nor any submission or launch."""
    assert not (tmp_path / "out").exists()
    for log in (logs or {}).values():
        assert not log.exists(), log.read_text()


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


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_first_argument_must_be_the_configuration(script, tmp_path):
    """An option in the configuration's place stops the script before anything runs."""
    env, logs = _env_with_fakes(tmp_path, PARAMS=SLURM / "sweep_params.txt")
    proc = _bash(script.name, ["--set", "run.t_end=20"], tmp_path, env)
    assert proc.returncode == 2
    assert ("'--set': the first argument must be the configuration (a packaged name or a TOML file)"
            in proc.stderr)
    assert proc.stdout == ""
    _nothing_written(tmp_path, logs)


# (script, arguments after the configuration, the option they stand for)
MANAGED_OPTIONS = [
    ("run.sbatch", ["-o", "mine.h5"], "--output"),
    ("run.sbatch", ["-omine.h5"], "--output"),
    ("run.sbatch", ["-q", "-qo", "mine.h5"], "--output"),
    ("run.sbatch", ["--out", "mine.h5"], "--output"),
    ("run.sbatch", ["--outp=mine.h5"], "--output"),
    ("run.sbatch", ["--output=mine.h5"], "--output"),
    ("run.sbatch", ["--overw"], "--overwrite"),
    ("sweep.sbatch", ["--ou", "mine.h5"], "--output"),
    ("sweep.sbatch", ["--overwrite"], "--overwrite"),
    ("scaling.sbatch", ["-q", "--out=mine.h5"], "--output"),
    ("scaling.sbatch", ["--overwrite"], "--overwrite"),
    ("chain.sbatch", ["--out", "mine.h5"], "--output"),
    ("chain.sbatch", ["--check", "mine.ckpt.h5"], "--checkpoint"),
    ("chain.sbatch", ["--rest=mine.ckpt.h5"], "--restart"),
    ("chain.sbatch", ["-q", "--c", "mine.ckpt.h5"], "--checkpoint"),
    ("chain.sbatch", ["--overwrite"], "--overwrite"),
]


@pytest.mark.parametrize("script,args,option", MANAGED_OPTIONS,
                         ids=[f"{s}:{' '.join(a)}" for s, a, _ in MANAGED_OPTIONS])
def test_scripts_refuse_options_that_move_the_output(script, args, option, tmp_path):
    """-o, --output and --overwrite (and the chain's --checkpoint, --restart), also
    abbreviated as argparse accepts them, are refused with one message."""
    env, logs = _env_with_fakes(tmp_path, PARAMS=SLURM / "sweep_params.txt")
    proc = _bash(script, ["default", "--set", "run.seed=2", *args], tmp_path, env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    refused = next(a for a in args if a != "-q")
    assert f"'{refused}' ({option})" in proc.stderr
    assert "chooses the output itself" in proc.stderr or "chooses its output itself" in proc.stderr
    assert ("OVERWRITE=1" if option == "--overwrite" else "OUTDIR") in proc.stderr
    assert "meshfield" not in proc.stdout
    _nothing_written(tmp_path, logs)
    assert not list(tmp_path.glob("mine*"))


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
    # it said "done: out/run-123/result.h5" after running nothing
    assert proc.stdout.rstrip().endswith("dry run: nothing was run or written") and "done:" not in proc.stdout


@needs_venv
def test_run_local_creates_the_folder_of_an_out_elsewhere(tmp_path):
    """OUT outside OUTDIR: info.txt went to OUTDIR and the run then failed for the
    missing folder of OUT (HPC audit)."""
    env = _env(tmp_path, venv=VENV, LAUNCH=MPIEXEC, NTASKS=1, OUT="results/a/r.h5")
    proc = _bash("run.sbatch", ["default", "--set", "run.t_end=10", "-q"], tmp_path, env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "results" / "a" / "r.h5").is_file() and proc.stdout.rstrip().endswith("done: results/a/r.h5")
    assert (tmp_path / "out" / "run-local" / "info.txt").is_file()


def test_run_dry_info_gets_config_options_only(tmp_path):
    env = _env(tmp_path, DRY_RUN=1, SLURM_NTASKS=4)
    args = ["cfg.toml", "--level", "micro", "--dims", "4,1", "--set=run.seed=3", "-q", "--set", "run.t_end=5"]
    proc = _bash("run.sbatch", args, tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    cmds = _commands(proc.stdout)
    # the overrides in order, then --level (applied last by `meshfield run` too)
    # --dims too: info checks and describes the grid the run will use
    assert ("srun -n 1 meshfield info cfg.toml -n 4 --dims 4,1 --set run.seed=3 --set run.t_end=5 "
            "--set run.level=micro") in cmds
    assert f"srun -n 4 meshfield run cfg.toml -o out/run-local/result.h5 {' '.join(args[1:])}" in cmds


def test_run_dry_defaults_and_overwrite(tmp_path):
    env = _env(tmp_path, DRY_RUN=1, OVERWRITE=1, LAUNCH="mpiexec -bind-to core")
    proc = _bash("run.sbatch", [], tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    assert ("mpiexec -bind-to core -n 2 meshfield run default -o out/run-local/result.h5 --overwrite"
            in _commands(proc.stdout))


@needs_venv
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
    assert 0 < int(row["first_block_steps"]) <= 40

    # a second submission into the same folder must fail, not overwrite
    again = _bash("run.sbatch", ["default", "--set", "run.t_end=20", "-q"], tmp_path, env, timeout=300)
    assert again.returncode != 0
    assert "exists" in again.stderr and "stopped" in again.stderr


def test_run_dry_abbreviated_set_and_level_reach_info(tmp_path):
    env = _env(tmp_path, DRY_RUN=1, SLURM_NTASKS=2)
    proc = _bash("run.sbatch", ["cfg.toml", "--lev", "micro", "--se", "run.seed=3", "--s=run.t_end=5", "--di=1,2"],
                 tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    assert ("srun -n 1 meshfield info cfg.toml -n 2 --set run.seed=3 --set run.t_end=5 --dims 1,2 "
            "--set run.level=micro" in _commands(proc.stdout))


def test_run_refuses_an_existing_result_before_info(tmp_path):
    (tmp_path / "out" / "run-5").mkdir(parents=True)
    (tmp_path / "out" / "run-5" / "result.h5").write_text("")
    env = _env(tmp_path, DRY_RUN=1, SLURM_JOB_ID=5)
    proc = _bash("run.sbatch", ["cfg.toml"], tmp_path, env)
    assert proc.returncode == 2
    assert "stopped: out/run-5/result.h5 exists" in proc.stderr and "OVERWRITE=1" in proc.stderr
    assert _commands(proc.stdout) == []
    assert sorted(p.name for p in (tmp_path / "out" / "run-5").iterdir()) == ["result.h5"]


@pytest.mark.parametrize("script", ["run.sbatch", "sweep.sbatch", "chain.sbatch"])
@needs_venv
def test_header_task_count_fits_the_packaged_default(script):
    """The scripts run the packaged default when given no configuration, so their
    header's --ntasks must be a rank count the default lattice accepts."""
    n = _header_ntasks(script)
    proc = subprocess.run([str(VENV / "bin" / "meshfield"), "info", "default", "-n", str(n)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"process grid for {n} rank(s)" in proc.stdout
    # and the scripts say how to choose it
    assert "meshfield info CONFIG -n N" in (SLURM / script).read_text() or script == "sweep.sbatch"


@needs_venv
def test_run_local_compile_once_job_on_one_rank(tmp_path):
    """The documented compile-once job, `sbatch --ntasks=1 slurm/run.sbatch default
    --set run.t_end=10` (on the header's ranks every rank compiled at once, what
    the job is meant to spare the production runs)."""
    n = 1
    env = _env(tmp_path, venv=VENV, LAUNCH=MPIEXEC, SLURM_NTASKS=n, SLURM_JOB_ID=4242)
    proc = _bash("run.sbatch", ["default", "--set", "run.t_end=10", "-q"], tmp_path, env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    folder = tmp_path / "out" / "run-4242"
    assert (folder / "result.h5").is_file()
    assert f"process grid for {n} rank(s)" in (folder / "info.txt").read_text()


@needs_venv
def test_run_local_too_many_ranks_writes_nothing(tmp_path):
    """16 ranks do not fit the default lattice: `meshfield info` stops the job, and no
    (empty) info.txt or output folder is left behind."""
    env = _env(tmp_path, venv=VENV, LAUNCH=MPIEXEC, SLURM_NTASKS=16, SLURM_JOB_ID=4242)
    proc = _bash("run.sbatch", ["default", "--set", "run.t_end=10"], tmp_path, env, timeout=300)
    assert proc.returncode == 2
    assert "halo width 5 exceeds the smallest block" in proc.stderr
    assert "meshfield info failed with exit status 2 (see above); nothing was written" in proc.stderr
    assert not (tmp_path / "out").exists()


@needs_venv
def test_run_local_bad_config_stops_at_info(tmp_path):
    env = _env(tmp_path, venv=VENV, LAUNCH=MPIEXEC, NTASKS=1)
    proc = _bash("run.sbatch", ["default", "--set", "run.no_such_key=1"], tmp_path, env, timeout=300)
    assert proc.returncode == 2
    assert "run.no_such_key" in proc.stderr
    assert "[meshfield]" not in proc.stdout                          # the run never started
    assert "meshfield info failed with exit status 2" in proc.stderr
    assert not (tmp_path / "out").exists()                           # no empty info.txt either


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
    assert proc.stdout.rstrip().endswith("dry run: nothing was run or written") and "done:" not in proc.stdout


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


def test_sweep_refuses_output_options_in_the_parameter_file(tmp_path):
    """A parameter line that names the output stops every task (here task 0, for line 1)."""
    params = tmp_path / "params.txt"
    params.write_text("# sweep\n--set run.seed=1\n\n--set run.seed=2 --out=mine.h5\n")
    env, logs = _env_with_fakes(tmp_path, PARAMS=params, SLURM_ARRAY_TASK_ID=0)
    proc = _bash("sweep.sbatch", ["default"], tmp_path, env)
    assert proc.returncode == 2
    assert f"'--out=mine.h5' (--output) in {params} (the line of array index 1)" in proc.stderr
    assert "OUTDIR" in proc.stderr
    _nothing_written(tmp_path, logs)


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
    # the table script is the one beside scaling.sbatch, found from any folder
    table = SLURM / "scaling_table.py"
    assert f"python {table} --record weak {d}/scaling.csv {d}/weak-R4.h5" in _commands(proc.stdout)
    assert _commands(proc.stdout)[-1] == f"python {table} {d}/scaling.csv"


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


@pytest.mark.parametrize("args,refused", [
    (["--dims", "2,2"], "'--dims' (--dims): the scaling study sets the process grid"),
    (["--set", "lattice.shape=[8,8]"], "'lattice.shape=[8,8]' (--set): the scaling study sets lattice.shape"),
    (["--se=run.t_end=5"], "'run.t_end=5' (--se): the scaling study sets run.t_end"),
])
def test_scaling_refuses_what_it_sets_itself(args, refused, tmp_path):
    env, logs = _env_with_fakes(tmp_path)
    proc = _bash("scaling.sbatch", ["default", *args], tmp_path, env)
    assert proc.returncode == 2
    assert refused in proc.stderr
    _nothing_written(tmp_path, logs)


def test_scaling_missing_table_stops_before_any_run(tmp_path):
    env, logs = _env_with_fakes(tmp_path, TABLE="nope.py", RANKS="1", T_END=10)
    proc = _bash("scaling.sbatch", [], tmp_path, env)
    assert proc.returncode == 2
    assert "the table script was not found (looked for nope.py from" in proc.stderr
    assert "TABLE=" in proc.stderr
    _nothing_written(tmp_path, logs)


def test_scaling_table_beside_the_script_or_in_the_submission_folder(tmp_path):
    """A copy of scaling.sbatch without scaling_table.py beside it (as under sbatch,
    which runs a copy) finds slurm/scaling_table.py in the current folder, or stops."""
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    shutil.copy(SLURM / "scaling.sbatch", jobs / "scaling.sbatch")
    env = _env(tmp_path, DRY_RUN=1, RANKS="1", MODES="weak", SLURM_JOB_ID=3)
    run = lambda: subprocess.run([BASH, str(jobs / "scaling.sbatch")], cwd=tmp_path, env=env,
                                 capture_output=True, text=True, timeout=60)
    proc = run()
    assert proc.returncode == 2
    assert "looked for jobs/scaling_table.py slurm/scaling_table.py" in proc.stderr.replace(str(tmp_path) + "/", "")
    (tmp_path / "slurm").mkdir()
    shutil.copy(SLURM / "scaling_table.py", tmp_path / "slurm" / "scaling_table.py")
    proc = run()
    assert proc.returncode == 0, proc.stderr
    table = tmp_path / "slurm" / "scaling_table.py"
    assert _commands(proc.stdout)[-1] == f"python {table} out/scaling-3/scaling.csv"


def test_scaling_refuses_an_existing_table(tmp_path):
    """Re-using an OUTDIR would add this job's rows to another job's scaling.csv."""
    folder = tmp_path / "out" / "scaling-7"
    folder.mkdir(parents=True)
    (folder / "scaling.csv").write_text("old rows\n")
    env = _env(tmp_path, DRY_RUN=1, SLURM_JOB_ID=7, RANKS="1 2")
    proc = _bash("scaling.sbatch", [], tmp_path, env)
    assert proc.returncode == 2
    assert "out/scaling-7/scaling.csv exists" in proc.stderr and "OVERWRITE=1" in proc.stderr
    assert _commands(proc.stdout) == []
    assert (folder / "scaling.csv").read_text() == "old rows\n"
    # OVERWRITE=1 starts a new table before the first run
    env["OVERWRITE"] = "1"
    proc = _bash("scaling.sbatch", [], tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    cmds = _commands(proc.stdout)
    assert cmds.index("rm -f out/scaling-7/scaling.csv") < next(i for i, c in enumerate(cmds) if "meshfield run" in c)


def test_scaling_dry_info_gets_the_common_options(tmp_path):
    env = _env(tmp_path, DRY_RUN=1, RANKS="4", MODES="strong")
    args = ["default", "--set", "couplings.0.kernel.r_max=0.9", "-q", "--lev=meso"]
    proc = _bash("scaling.sbatch", args, tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    # the check sees the grid the run gets (meshfield's own default grid could differ)
    assert ("srun -n 1 meshfield info default -n 4 --dims 2,2 --set couplings.0.kernel.r_max=0.9 "
            "--set run.level=meso --set lattice.shape=[64,64] --set run.t_end=1000") in proc.stdout


@needs_venv
def test_scaling_local_skip_check_sees_the_common_options(tmp_path):
    """With r_max = 0.9 mm (halo 9 sites) a 20 x 20 lattice fits 1 rank but not 9
    (blocks of 6-7 sites): the 9-rank run is skipped, judged on the same model as the
    runs. A stand-in launcher logs every launch and runs it as one process (10 ms)."""
    log = tmp_path / "launch.log"
    launcher = tmp_path / "launch"
    launcher.write_text(f'#!/bin/bash\necho "$*" >> {log}\nshift 2\nexec "$@"\n')
    launcher.chmod(0o755)
    env = _env(tmp_path, venv=VENV, LAUNCH=launcher, RANKS="1 9", MODES="strong",
               STRONG_SHAPE="20,20", WEAK_BLOCK="20,20", T_END=10, SLURM_JOB_ID=11)
    proc = _bash("scaling.sbatch", ["default", "--set", "couplings.0.kernel.r_max=0.9"], tmp_path, env,
                 timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "strong, 9 rank(s): lattice [20,20], process grid 3,3" in proc.stdout
    assert "skipped: meshfield: error: halo width 9 exceeds the smallest block" in proc.stdout
    launches = log.read_text().splitlines()
    assert not any(line.startswith("-n 9 meshfield run") for line in launches)
    rows = list(csv.DictReader((tmp_path / "out" / "scaling-11" / "scaling.csv").open()))
    assert [(r["mode"], r["ranks"]) for r in rows] == [("strong", "1")]


# ----------------------------------------------------------------------------- chain.sbatch


def test_chain_dry_submission(tmp_path):
    env = _env(tmp_path, DRY_RUN=1, N_SEGMENTS=3)
    proc = _bash("chain.sbatch", ["cfg.toml", "--set", "run.seed=3"], tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    cmds = _commands(proc.stdout)
    # the model is checked (on the header's rank count, to the chain's end) before any sbatch
    assert cmds[0] == f"meshfield info cfg.toml -n {_header_ntasks('chain.sbatch')} --set run.seed=3 --set run.t_end=30000"
    subs = _submissions(proc.stdout)
    assert len(subs) == 3 and subs == cmds[1:] and all(s.startswith("sbatch --parsable") for s in subs)
    assert "--ntasks" not in subs[0]
    assert "--dependency" not in subs[0]
    assert "--dependency=afterok:JOB0 --kill-on-invalid-dep=yes" in subs[1]
    assert "--dependency=afterok:JOB1" in subs[2] and "SEGMENT=2" in subs[2]
    assert subs[2].endswith("chain.sbatch cfg.toml --set run.seed=3")


def test_chain_dry_submission_checks_the_given_process_grid(tmp_path):
    env = _env(tmp_path, DRY_RUN=1, N_SEGMENTS=2)
    proc = _bash("chain.sbatch", ["cfg.toml", "--dims=1,4", "--set", "run.seed=3"], tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    assert _commands(proc.stdout)[0] == (f"meshfield info cfg.toml -n {_header_ntasks('chain.sbatch')} "
                                         "--dims 1,4 --set run.seed=3 --set run.t_end=20000")


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
    subs = _submissions(proc.stdout)
    assert len(subs) == 2 and "SEGMENT=2" in subs[0] and "SEGMENT=3" in subs[1]


@needs_venv
def test_chain_submission_parses_job_ids(tmp_path):
    """With a stand-in sbatch that prints 'id;cluster', each job depends on the previous id
    (after the real `meshfield info` check of the packaged default)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "sbatch.log"
    fake = bindir / "sbatch"
    fake.write_text(f'#!/bin/bash\necho "$*" >> {log}\nn=$(wc -l < {log})\necho "$((500 + n));cluster"\n')
    fake.chmod(0o755)
    env = _env(tmp_path, venv=VENV, N_SEGMENTS=3)
    env["PATH"] = f"{bindir}:{env['PATH']}"
    proc = _bash("chain.sbatch", [], tmp_path, env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"process grid for {_header_ntasks('chain.sbatch')} rank(s)" in proc.stdout
    calls = log.read_text().splitlines()
    assert len(calls) == 3
    assert "--dependency=afterok:501 " in calls[1] and "--dependency=afterok:502 " in calls[2]
    assert "segment 2: job 503" in proc.stdout


@needs_venv
@pytest.mark.parametrize("args,extra,message", [
    (["nosuch.toml"], {}, "configuration file 'nosuch.toml' does not exist"),
    (["default"], {"NTASKS": 16}, "halo width 5 exceeds the smallest block"),
    (["default", "--set", "run.no_such_key=1"], {}, "run.no_such_key"),
])
def test_chain_checks_the_model_before_submitting(args, extra, message, tmp_path):
    env, logs = _env_with_fakes(tmp_path, venv=VENV, **extra)
    proc = _bash("chain.sbatch", args, tmp_path, env, timeout=120)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "stopped before submitting anything: meshfield info" in proc.stderr
    _nothing_written(tmp_path, logs)


@needs_venv
def test_chain_segment_ms_must_be_a_multiple_of_the_record_interval(tmp_path):
    env, logs = _env_with_fakes(tmp_path, venv=VENV, SEGMENT_MS=7)
    proc = _bash("chain.sbatch", ["default", "--set", "record.interval=5"], tmp_path, env, timeout=120)
    assert proc.returncode == 2
    assert "SEGMENT_MS = 7 is not a multiple of record.interval = 5 ms" in proc.stderr
    assert "nothing was submitted" in proc.stderr
    _nothing_written(tmp_path, logs)
    # a multiple is submitted, with NTASKS passed on to sbatch
    env, logs = _env_with_fakes(tmp_path, venv=VENV, SEGMENT_MS=10, N_SEGMENTS=2, NTASKS=2)
    proc = _bash("chain.sbatch", ["default", "--se=record.interval=5"], tmp_path, env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "process grid for 2 rank(s)" in proc.stdout
    calls = logs["sbatch"].read_text().splitlines()
    assert len(calls) == 2 and all(c.startswith("--parsable --ntasks=2 ") for c in calls)


def test_chain_dry_segment(tmp_path):
    env = _env(tmp_path, DRY_RUN=1, SEGMENT=2, SEGMENT_MS=100, SLURM_JOB_ID=9, SLURM_NTASKS=8)
    proc = _bash("chain.sbatch", ["cfg.toml"], tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    assert ("srun -n 8 meshfield run cfg.toml -o out/chain/segment-2.h5 --checkpoint "
            "out/chain/segment-2.ckpt.h5 --restart out/chain/segment-1.ckpt.h5 --set run.t_end=300"
            in _commands(proc.stdout))
    assert proc.stdout.rstrip().endswith("dry run: nothing was run or written") and "done:" not in proc.stdout


def test_chain_refuses_sbatch_without_segment(tmp_path):
    proc = _bash("chain.sbatch", [], tmp_path, _env(tmp_path, DRY_RUN=1, SLURM_JOB_ID=9))
    assert proc.returncode == 2 and "not with sbatch" in proc.stderr


def test_chain_is_a_restart_chain():
    text = (SLURM / "chain.sbatch").read_text()
    assert "PLACEHOLDER" not in text and "TODO" not in text
    assert "--checkpoint" in text and "--restart" in text


# ----------------------------------------------------------------------------- scaling_table.py


def _fake_csv(path, columns=scaling_table.COLUMNS):
    rows = [
        # strong: 64 x 64 sites, 2000 steps, of which 64 in the first block
        ("strong", 1, "1x1", 4096, 2000, 100.0, 2.0, 64),
        ("strong", 4, "2x2", 4096, 2000, 31.25, 1.25, 64),
        ("strong", 2, "2x1", 4096, 2000, 55.0, 1.0, 64),
        # weak: 256 sites per rank
        ("weak", 1, "1x1", 256, 2000, 10.0, 1.0, 64),
        ("weak", 4, "2x2", 1024, 2000, 12.5, 1.5, 64),
    ]
    names = ("mode", "ranks", "dims", "sites", "steps", "wall_time", "first_block_seconds", "first_block_steps")
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow(dict(zip(names, r), result=f"out/{r[0]}-R{r[1]}.h5"))


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
    # strong R=4 from loop times: 98 * 1 / (30 * 4) (as many steps after the first block)
    assert rows["strong", 4][-1] == f"{98 / 120:.2f}"
    assert rows["weak", 4][-1] == f"{9 / 11:.2f}"


def test_scaling_table_csv_without_first_block_steps(tmp_path, capsys):
    """A CSV written before the column first_block_steps was added: its rows count
    all their steps with --time loop, and rows appended to it keep its header."""
    old_columns = tuple(c for c in scaling_table.COLUMNS if c != "first_block_steps")
    path = tmp_path / "scaling.csv"
    _fake_csv(path, old_columns)
    assert scaling_table.main([str(path), "--time", "loop"]) == 0
    rows = _table_rows(capsys.readouterr().out)
    assert rows["strong", 4][-1] == f"{98 / 120:.2f}"
    scaling_table.append_rows(str(path), [dict(mode="weak", ranks=2, dims="2x1", sites=512, steps=2000,
                                               wall_time=11.0, first_block_seconds=1.0, first_block_steps=64,
                                               result="out/weak-R2.h5")])
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(old_columns)
    assert lines[-1] == "weak,2,2x1,512,2000,11.0,1.0,out/weak-R2.h5"


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


@pytest.mark.parametrize("script", ["run.sbatch", "sweep.sbatch", "chain.sbatch", "scaling.sbatch"])
def test_scripts_stop_with_a_message_without_a_venv(script, tmp_path):
    # `source` of a missing activate script failed silently (status 1, no ERR trap)
    env = _env(tmp_path, venv=tmp_path / "no_venv", DRY_RUN=1, OUTDIR=tmp_path / "out")
    r = _bash(script, ["default"], tmp_path, env)
    assert r.returncode == 2
    assert f"{script}: stopped: MESHFIELD_VENV = {tmp_path / 'no_venv'} is no virtual environment" in r.stderr
    assert not (tmp_path / "out").exists()


def test_scaling_table_into_a_closed_pipe(tmp_path):
    # `scaling_table.py table.csv | head -1` ended in a BrokenPipeError traceback;
    # here the reader is gone before the table is written
    table = tmp_path / "scaling.csv"
    rows = [dict(mode="strong", ranks=r, dims=f"{r}x1", sites=4096, steps=1000, wall_time=10.0 / r,
                 first_block_seconds=0.5, result="") for r in (1, 2, 4, 8)]
    scaling_table.append_rows(str(table), rows)
    p = subprocess.Popen([sys.executable, str(SLURM / "scaling_table.py"), str(table)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p.stdout.close()
    err = p.stderr.read()
    assert p.wait(timeout=60) == 0
    assert "Traceback" not in err and "BrokenPipe" not in err, err


# A tiny run: 3 sites, one type, no couplings (no halo), so the meso model takes
# blocks of 64 steps; dt = 0.5 ms and records every 1 ms (2 steps per record).
_TINY = ('[run]\nt_end = 8.0\ndt = 0.5\nseed = 3\n[lattice]\nshape = [3]\n'
         '[populations.E]\nN = 200\nmu = 20.0\n')


def _cli_run(tmp_path, name, *args):
    from meshfield.cli import main
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(_TINY)
    out = tmp_path / f"{name}.h5"
    assert main(["run", str(cfg), "-q", "-o", str(out), *args]) == 0
    return out


def _efficiency_against(row, steps, which="wall"):
    """The table's efficiency, relative to ``row`` (a CSV row of 1 rank), of a row of 2
    ranks on as many sites that ran ``steps`` steps in half the time ``which`` measures
    of ``row`` (and no first block): 1.00 exactly when the table takes ``row`` to have
    run ``steps`` steps in that time; site updates per second and rank are
    ``sites * steps / (seconds * ranks)``."""
    seconds = float(row["wall_time"]) - (float(row["first_block_seconds"]) if which == "loop" else 0.0)
    other = dict(row, ranks=2, steps=steps, wall_time=seconds / 2, first_block_seconds=0.0,
                 first_block_steps=0)
    base, line = (line.split() for line in scaling_table.format_table([row, other], which).splitlines()[1:])
    assert base[1] == "1" and base[-1] == "1.00" and line[1] == "2"
    return line[-1]


def test_scaling_table_steps_of_a_restarted_run(tmp_path):
    """A run continued from a checkpoint simulates from the checkpoint's time to t_end,
    not from 0: 8 ms -> 100 ms is 184 steps, not round(100 / 0.5) = 200."""
    ckpt = tmp_path / "first.ckpt.h5"
    _cli_run(tmp_path, "first", "--checkpoint", str(ckpt))
    result = _cli_run(tmp_path, "second", "--restart", str(ckpt), "--set", "run.t_end=100")
    csv_path = tmp_path / "scaling.csv"
    assert scaling_table.main(["--record", "strong", str(csv_path), str(result)]) == 0
    (row,) = list(csv.DictReader(csv_path.open()))
    assert row["sites"] == "3" and row["steps"] == "184"
    # the first block ends at the next multiple of the block length, 64 steps:
    # steps 16..63 (48), then 64..127 and 128..191 and 192..199
    assert row["first_block_steps"] == "48"
    # site updates per second and rank: 3 * 184 / wall_time
    assert _efficiency_against(row, 184) == "1.00"
    assert _efficiency_against(row, 184 - 48, "loop") == "1.00"


def test_scaling_table_steps_of_a_cut_down_t_end(tmp_path):
    """t_end = 50.3 ms with dt = 0.5 ms and records every 1 ms simulates 100 steps
    (50 whole records; docs/configuration.md), not round(50.3 / 0.5) = 101."""
    result = _cli_run(tmp_path, "cut", "--set", "run.t_end=50.3")
    row = scaling_table.result_row("weak", str(result))
    assert row["steps"] == 100 and row["first_block_steps"] == 64
    row = {k: str(v) for k, v in row.items()}
    assert _efficiency_against(row, 100) == "1.00"
    assert _efficiency_against(row, 100 - 64, "loop") == "1.00"


@needs_venv
def test_chain_segments_take_their_threads_from_their_own_job(tmp_path):
    """The chain submits its jobs with --export=ALL from the login node, where
    SLURM_CPUS_PER_TASK is unset: the thread settings must not be fixed there (at 1),
    or a header with --cpus-per-task=4 would run every segment with one thread and
    srun would give each rank one core."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "sbatch_env.log"
    fake = bindir / "sbatch"
    fake.write_text(f'#!/bin/bash\nenv | grep -E "^(NUMBA_NUM_THREADS|SRUN_CPUS_PER_TASK)=" >> {log}\n'
                    'echo "$((500 + RANDOM % 100))"\n')
    fake.chmod(0o755)
    env = _env(tmp_path, venv=VENV, N_SEGMENTS=2)
    env.pop("NUMBA_NUM_THREADS", None)
    env["PATH"] = f"{bindir}:{env['PATH']}"
    proc = _bash("chain.sbatch", [], tmp_path, env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert not log.exists() or log.read_text() == "", log.read_text()
    # inside a segment's job with --cpus-per-task=4: 4 threads, and srun is told 4 cores per task
    launcher = bindir / "launch"
    launcher.write_text('#!/bin/bash\necho "LAUNCH NUMBA_NUM_THREADS=$NUMBA_NUM_THREADS '
                        'SRUN_CPUS_PER_TASK=$SRUN_CPUS_PER_TASK"\n')
    launcher.chmod(0o755)
    env = _env(tmp_path, SEGMENT=0, SLURM_JOB_ID=501, SLURM_NTASKS=4, SLURM_CPUS_PER_TASK=4,
               LAUNCH=str(launcher))
    env.pop("NUMBA_NUM_THREADS", None)
    proc = _bash("chain.sbatch", ["cfg.toml"], tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    assert "LAUNCH NUMBA_NUM_THREADS=4 SRUN_CPUS_PER_TASK=4" in proc.stdout
    assert "4 rank(s) x 4 thread(s)" in proc.stdout
