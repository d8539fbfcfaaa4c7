"""Shared pytest configuration.

NEST's PyPI build is not compiled with MPI: imported under an MPI launcher it
prints a FATAL line and ends the process with exit status 0, which would end an
MPI test run early while reporting success. Under ``mpiexec -n R`` with R > 1 the
peer test files (named ``test_*peer*.py``, the convention for every file that
imports NEST) are therefore not collected; ``make test`` runs them serially.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from mpi4py import MPI

collect_ignore_glob = ["test_*peer*.py"] if MPI.COMM_WORLD.Get_size() > 1 else []

DRIVERS = Path(__file__).resolve().parents[1] / "drivers"


@pytest.fixture
def shared_tmp():
    """A fresh folder seen by every rank of COMM_WORLD, removed after the test.

    Collective: rank 0 creates it and tells the others (pytest's ``tmp_path``
    differs per process)."""
    comm = MPI.COMM_WORLD
    folder = comm.bcast(tempfile.mkdtemp(prefix="meshfield-test-") if comm.rank == 0 else None)
    yield Path(folder)
    comm.Barrier()
    if comm.rank == 0:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def driver_study(tmp_path_factory):
    """Run a short version of a validation study and return its numbers (the JSON's content).

    ``driver_study(code)`` runs ``code``, which imports the drivers' modules and
    sets ``data`` (e.g. ``import v3_field_async as v3`` and ``data = v3.study(None,
    ...)``), in a subprocess with one numba thread, as the drivers run: on a busy
    2-core machine the mesoscopic kernels with 2 threads took 7x longer.
    """
    def run(code: str) -> dict:
        target = tmp_path_factory.mktemp("study") / "study.json"
        script = "\n".join(["import sys", "from pathlib import Path", "sys.path.insert(0, sys.argv[1])",
                            "import _validation as val", code, "val.write_json(Path(sys.argv[2]), data)"])
        env = dict(os.environ, NUMBA_NUM_THREADS="1")
        proc = subprocess.run([sys.executable, "-c", script, str(DRIVERS), str(target)], capture_output=True,
                              text=True, env=env, check=False)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(target.read_text())

    return run
