"""A reader that goes away (``meshfield run ... | head -1``, a killed ``tee``) must
not cost the user the run: the log falls silent and the run completes."""

import os
import subprocess
import sys

# stdout buffered as in a user's shell (the test environment may set PYTHONUNBUFFERED)
BUFFERED = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


def _closed_stdout(args, cwd):
    """Run ``meshfield ARGS`` with a stdout pipe that is closed before it writes."""
    p = subprocess.Popen([sys.executable, "-m", "meshfield.cli", *args], cwd=cwd, env=BUFFERED,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p.stdout.close()
    _, err = p.communicate(timeout=300)
    return p.returncode, err


def test_run_completes_and_writes_its_result_when_stdout_is_closed(tmp_path):
    """It used to end in a BrokenPipeError traceback from the progress line, exit
    status 1 and no result."""
    code, err = _closed_stdout(["run", "nest_example", "--set", "run.t_end=100", "-o", "ne.h5"], tmp_path)
    assert (code, err) == (0, "")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ne.h5", "ne.h5.blocks"]


def test_info_and_compare_keep_their_exit_status_when_stdout_is_closed(tmp_path):
    """'meshfield info | head -1' used to end in a BrokenPipeError traceback."""
    assert _closed_stdout(["info", "bench_meso", "-n", "4"], tmp_path) == (0, "")
    code, err = _closed_stdout(["info", "bench_meso", "-n", "3", "--dims", "1,2"], tmp_path)
    assert code == 2 and err.startswith("meshfield: error: process grid dims=(1, 2) does not fit 3 ranks")


def test_run_and_info_work_when_started_without_a_stdout(tmp_path):
    """With file descriptor 1 closed (``>&-``) Python's sys.stdout is None."""
    for args in (["info", "bench_meso"], ["run", "nest_example", "--set", "run.t_end=20", "-o", "ne.h5"]):
        p = subprocess.run([sys.executable, "-m", "meshfield.cli", *args], cwd=tmp_path, env=BUFFERED,
                           stderr=subprocess.PIPE, text=True, timeout=300, preexec_fn=lambda: os.close(1))
        assert (p.returncode, p.stderr) == (0, ""), args
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ne.h5", "ne.h5.blocks"]
