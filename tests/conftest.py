"""Shared pytest configuration.

NEST's PyPI build is not compiled with MPI: imported under an MPI launcher it
prints a FATAL line and ends the process with exit status 0, which would end an
MPI test run early while reporting success. Under ``mpiexec -n R`` with R > 1 the
peer test files (named ``test_*peer*.py``, the convention for every file that
imports NEST) are therefore not collected; ``make test`` runs them serially.
"""

from mpi4py import MPI

collect_ignore_glob = ["test_*peer*.py"] if MPI.COMM_WORLD.Get_size() > 1 else []
