"""Shared pytest configuration.

NEST's PyPI build is not compiled with MPI: imported under an MPI launcher it
prints a FATAL line and ends the process with exit status 0, which would end an
MPI test run early while reporting success. Under ``mpiexec -n R`` with R > 1 the
peer test files (named ``test_*peer*.py``, the convention for every file that
imports NEST) are therefore not collected; ``make test`` runs them serially.
"""

import shutil
import tempfile
from pathlib import Path

import pytest
from mpi4py import MPI

collect_ignore_glob = ["test_*peer*.py"] if MPI.COMM_WORLD.Get_size() > 1 else []


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
