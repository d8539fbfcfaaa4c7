"""A checkpoint written on R ranks restarts on another process grid or rank
count and continues bitwise (MODEL.md §7). Run under ``mpiexec -n 2`` and ``-n 4``;
every rank asserts.
"""

import os

import numpy as np
import pytest
from mpi4py import MPI

import meshfield
from test_invariance_mpi import OPEN_1D, PERIODIC_2D
from test_restart import with_run

pytestmark = pytest.mark.mpi

world = MPI.COMM_WORLD


@pytest.mark.parametrize("level", ["meso", "micro"])
def test_restart_on_a_transposed_grid(shared_tmp, level):
    """2-D periodic lattice: the first segment on a (R, 1) grid, the rest on (1, 2)
    for R = 2 and (2, 2) for R = 4 (blocks of 7 / 4 sites would be narrower than the halo)."""
    cfg = with_run(PERIODIC_2D, level=level)
    ckpt = os.path.join(shared_tmp, f"{level}.ckpt.h5")
    whole = meshfield.run(cfg, comm=world)
    assert whole.A[5:].mean() > 1.0
    first = meshfield.run(with_run(cfg, t_end=17.0), comm=world, dims=(world.size, 1), checkpoint=ckpt)
    other = (1, 2) if world.size == 2 else (2, world.size // 2)
    second = meshfield.run(cfg, comm=world, dims=other, restart=ckpt)
    n1 = len(first.times)
    assert np.array_equal(first.A, whole.A[:n1])
    assert np.array_equal(second.times, whole.times[n1:])
    assert np.array_equal(second.A, whole.A[n1:])
    assert np.array_equal(second.Abar, whole.Abar[n1:])


@pytest.mark.parametrize("level", ["meso", "micro"])
def test_restart_on_one_rank(shared_tmp, level):
    """1-D open lattice written by every rank, continued on each rank alone."""
    cfg = with_run(OPEN_1D, level=level)
    ckpt = os.path.join(shared_tmp, f"{level}-1d.ckpt.h5")
    whole = meshfield.run(cfg, comm=MPI.COMM_SELF)
    meshfield.run(with_run(cfg, t_end=30.5), comm=world, checkpoint=ckpt)
    second = meshfield.run(cfg, comm=MPI.COMM_SELF, restart=ckpt)
    n1 = round(30.5 / OPEN_1D["record"]["interval"])
    assert np.array_equal(second.A, whole.A[n1:])
    assert np.array_equal(second.Abar, whole.Abar[n1:])
