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


def test_a_block_damaged_in_one_rank_stops_every_rank(shared_tmp):
    """The values of a checkpoint are checked per block: a NaN in the last
    rank's block alone stopped that rank while the others went on into the
    first exchange and waited for ever. Every rank now raises."""
    import h5py

    from meshfield.io.checkpoint import CheckpointError

    cfg = with_run(OPEN_1D, level="meso")
    ckpt = os.path.join(shared_tmp, "damaged-one-block.ckpt.h5")
    meshfield.run(with_run(cfg, t_end=20.5), comm=world, checkpoint=ckpt)
    if world.rank == 0:
        with h5py.File(ckpt, "r+") as f:
            data = f["E/u"][()]
            data[-1, 0] = np.nan  # the last site: the block of the last rank
            f["E/u"][...] = data
    world.Barrier()
    last = world.size - 1
    said = rf"--restart {ckpt}: damaged or foreign checkpoint: the array 'E/u' holds 1 NaN"
    with pytest.raises(CheckpointError, match=said if world.rank == last else rf"^rank {last}: {said}"):
        meshfield.run(cfg, comm=world, restart=ckpt)


def test_a_checksum_failure_in_one_rank_s_block_stops_every_rank(shared_tmp):
    """Only the last rank reads the damaged chunk (a chunk is at most the
    smallest block: 5 of the 6 + 5 sites on 2 ranks, 2 of 3 + 3 + 3 + 2 on 4,
    so the last site's chunk lies in the last block); the others would go on
    into the first exchange without it."""
    from meshfield.io.checkpoint import CheckpointError
    from test_checkpoint_io import damage

    cfg = with_run(OPEN_1D, level="meso")
    ckpt = os.path.join(shared_tmp, "damaged-chunk.ckpt.h5")
    meshfield.run(with_run(cfg, t_end=20.5), comm=world, checkpoint=ckpt)
    if world.rank == 0:
        damage(ckpt, "E/u", site=(OPEN_1D["lattice"]["shape"][0] - 1,))  # the last site
    world.Barrier()
    last = world.size - 1
    said = rf"--restart {ckpt}: damaged checkpoint, the dataset 'E/u' fails its checksum"
    with pytest.raises(CheckpointError, match=rf"^{said}" if world.rank == last else rf"^rank {last}: {said}"):
        meshfield.run(cfg, comm=world, restart=ckpt)
