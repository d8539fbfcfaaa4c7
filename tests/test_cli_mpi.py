"""The serial commands (plot, compare, steady) started under ``mpiexec``: rank 0 does the
work, every rank returns the same exit status, nothing is written twice.
Run under ``mpiexec -n 2`` and ``-n 4``; every rank asserts."""

import os

import pytest
from mpi4py import MPI

import meshfield
from meshfield.cli import main
from test_invariance_mpi import OPEN_1D
from test_restart import with_run

pytestmark = pytest.mark.mpi

world = MPI.COMM_WORLD


def test_plot_and_compare_run_once_under_mpiexec(shared_tmp, capsys):
    result = os.path.join(shared_tmp, "r.h5")
    meshfield.run(with_run(OPEN_1D, level="meso"), output=result, comm=world).close()
    figure = os.path.join(shared_tmp, "r.png")

    assert main(["plot", result, "-o", figure]) == 0
    printed = capsys.readouterr()
    world.Barrier()
    assert os.path.exists(figure)
    assert printed.out.count("wrote") == (1 if world.rank == 0 else 0)
    assert sorted(os.listdir(shared_tmp)) == ["r.h5", "r.h5.blocks", "r.png"]

    # bad input: the same status on every rank, one message (from rank 0)
    assert main(["plot", result, "-o", figure, "--time", "99999"]) == 2
    printed = capsys.readouterr()
    assert printed.err.count("--time") == (1 if world.rank == 0 else 0)

    # a record of 60 ms is too short for VALIDATION.md's PSD bands: unusable input on every rank
    assert main(["compare", result, result, "--discard", "0"]) == 2


def test_steady_reports_once_under_mpiexec(shared_tmp, capsys):
    out = os.path.join(shared_tmp, "steady.json")
    assert main(["steady", "bistable_pair", "--json", out]) == 0
    printed = capsys.readouterr()
    world.Barrier()
    assert printed.out.count("verdict: UNSTABLE") == (1 if world.rank == 0 else 0)
    assert os.path.exists(out)
    # bad input: status 2 on every rank, one message
    assert main(["steady", "bistable_pair", "--set", "lattice.boundary=open"]) == 2
    printed = capsys.readouterr()
    assert printed.err.count("unusable input") == (1 if world.rank == 0 else 0)
