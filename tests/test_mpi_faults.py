"""A rank that fails alone, Ctrl-C and SIGTERM: ``meshfield run`` under
``mpiexec`` ends with a message and a non-zero status, leaves no temporary
output, and never leaves the other ranks waiting for ever.

These are serial tests that start ``mpiexec -n 2`` themselves: a job that is
aborted (MPI_Abort) would take a pytest session under mpiexec down with it.
"""

import glob
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from meshfield.cli import AGREE_S

MPIEXEC = Path(sys.executable).parent / "mpiexec"
needs_mpiexec = pytest.mark.skipif(not MPIEXEC.exists(), reason="no mpiexec beside the interpreter")

SMALL = ["--set", "lattice.shape=[6,6]", "--set", "stimuli=[]",
         *[arg for i in range(4) for arg in
           ("--set", f"couplings.{i}.kernel={{shape='gaussian', sigma=0.1, r_max=0.2}}")]]

#: Runs meshfield's command line with Recorder.write failing on rank 1 only.
ONE_RANK_FAILS = """
import sys
from mpi4py import MPI
import meshfield.io.recorder as recorder
from meshfield.config import ConfigError

kind = sys.argv[1]
original = recorder.Recorder.write

def write(self, *args, **kwargs):
    if MPI.COMM_WORLD.rank == 1:
        raise RuntimeError("injected bug") if kind == "bug" else ConfigError("injected = 1: bad value")
    return original(self, *args, **kwargs)

recorder.Recorder.write = write
from meshfield.cli import main
sys.exit(main(sys.argv[2:]))
"""


#: Runs meshfield's command line with rank 1 alone sending itself a signal (once
#: or twice) at block 40 of the time loop. Every rank prints the block it
#: stopped at.
SIGNAL_ON_ONE_RANK = """
import os, signal, sys
from mpi4py import MPI
from meshfield.parallel.stop import StopOnSignal

signum, times = getattr(signal, sys.argv[1]), int(sys.argv[2])
original, polls = StopOnSignal.poll, [0]

def poll(self):
    polls[0] += 1
    try:
        if MPI.COMM_WORLD.rank == 1 and polls[0] == 40:
            for _ in range(times):
                os.kill(os.getpid(), signum)
        original(self)
    except BaseException:
        print(f"rank {MPI.COMM_WORLD.rank} stopped at block {polls[0]}", flush=True)
        raise

StopOnSignal.poll = poll
from meshfield.cli import main
sys.exit(main(sys.argv[3:]))
"""


def _start(cmd, cwd):
    """``cmd`` with its output captured, in a session of its own, so that
    :func:`_finish` can kill all of it."""
    return subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=cwd, start_new_session=True)


def _finish(p, timeout):
    """``p.communicate()``; on a timeout (the hang these tests look for) kill
    the whole process group, mpiexec's ranks included, so none is left running."""
    try:
        return p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        raise


def _leftovers(folder):
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(folder, "*")))


@needs_mpiexec
@pytest.mark.parametrize("kind, status, said", [
    ("bug", 1, "meshfield: error: the traceback above [rank 1; the other ranks did not stop"),
    ("input", 2, "meshfield: error: injected = 1: bad value [rank 1; the other ranks did not stop"),
])
def test_a_rank_that_fails_alone_aborts_the_job_instead_of_hanging(tmp_path, kind, status, said):
    """Before, rank 0 waited for ever in the next exchange (and the job's
    temporary block folder stayed on disk)."""
    script = tmp_path / "one_rank_fails.py"
    script.write_text(ONE_RANK_FAILS)
    out = tmp_path / "r.h5"
    start = time.monotonic()
    p = _start([MPIEXEC, "-n", "2", sys.executable, script, kind, "run", *SMALL,
                "--set", "run.t_end=2000", "-q", "-o", out], tmp_path)
    _, err = _finish(p, 120)
    assert time.monotonic() - start < 60
    assert p.returncode == status, err
    assert said in err and f"within {AGREE_S:g} s, so the MPI job is aborted" in err
    if kind == "bug":
        assert "RuntimeError: injected bug" in err   # the bug's traceback comes first
    assert _leftovers(tmp_path) == ["one_rank_fails.py"]   # no result, no *.tmp-* folder


def _start_long_run(tmp_path, n_ranks):
    launcher = [str(MPIEXEC), "-n", str(n_ranks)] if n_ranks > 1 else []
    p = _start([*launcher, sys.executable, "-m", "meshfield.cli", "run", *SMALL,
                "--set", "run.t_end=1000000", "-q", "-o", tmp_path / "r.h5"], tmp_path)
    deadline = time.monotonic() + 120
    while not glob.glob(str(tmp_path / "r.h5.blocks.tmp-*" / "rank*.h5")):   # the run is writing
        if p.poll() is not None or time.monotonic() > deadline:
            _finish(p, 1)
            pytest.fail(f"the run did not start writing: {p.returncode}")
        time.sleep(0.1)
    time.sleep(1.0)   # well into the time loop
    return p


@pytest.mark.parametrize("n_ranks", [1, pytest.param(2, marks=needs_mpiexec)])
def test_sigterm_discards_the_unfinished_output(tmp_path, n_ranks):
    """SIGTERM (kill, timeout, a batch system's limit) ends the run as Ctrl-C
    does: a message, status 143, and no temporary output. It used to leave the
    block files (4 MB here) and say nothing."""
    p = _start_long_run(tmp_path, n_ranks)
    p.send_signal(signal.SIGTERM)
    _, err = _finish(p, 60)
    assert p.returncode == 143, err
    # once (rank 0), and no rank left waiting in an exchange: every rank stops after the same block
    assert err.count("meshfield: terminated (SIGTERM)") == 1 and "aborted" not in err, err
    assert _leftovers(tmp_path) == []


@needs_mpiexec
def test_ctrl_c_under_mpiexec_ends_the_job(tmp_path):
    """mpiexec passes SIGINT on to the ranks; the job must end (it used to hang
    in MPI_Finalize, and a second Ctrl-C gave status 0) and leave nothing."""
    p = _start_long_run(tmp_path, 2)
    p.send_signal(signal.SIGINT)
    _, err = _finish(p, 60)
    assert p.returncode == 130, err
    assert err.count("meshfield: interrupted") == 1 and "aborted" not in err, err
    assert _leftovers(tmp_path) == []


@needs_mpiexec
@pytest.mark.parametrize("signame, times, status, said", [
    ("SIGTERM", 1, 143, "meshfield: terminated (SIGTERM)"),
    ("SIGINT", 1, 130, "meshfield: interrupted"),
    # inside a batch job a rank gets the batch system's SIGTERM directly and again from mpiexec
    ("SIGTERM", 2, 143, "meshfield: terminated (SIGTERM)"),
])
def test_a_signal_to_one_rank_stops_every_rank_after_the_same_block(tmp_path, signame, times, status, said):
    """The ranks vote on the signals they got (parallel/stop.py). Before, the
    rank that got the signal left the time loop at once and its neighbour waited
    for its halo until the job was aborted."""
    script = tmp_path / "signal_on_one_rank.py"
    script.write_text(SIGNAL_ON_ONE_RANK)
    p = _start([MPIEXEC, "-n", "2", sys.executable, script, signame, times, "run", *SMALL,
                "--set", "run.t_end=1000000", "-q", "-o", tmp_path / "r.h5"], tmp_path)
    out, err = _finish(p, 120)
    assert p.returncode == status, err
    stopped = dict(re.findall(r"rank (\d) stopped at block (\d+)", out))
    assert set(stopped) == {"0", "1"} and stopped["0"] == stopped["1"] and int(stopped["0"]) > 40, out
    assert err.count(said) == 1 and "aborted" not in err, err
    assert _leftovers(tmp_path) == ["signal_on_one_rank.py"]
