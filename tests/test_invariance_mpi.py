"""Decomposition invariance (MODEL.md §7): the same seed gives bitwise identical
records on 1, 2, 3 and 4 ranks and on any process grid.

Run under ``mpiexec -n 2`` and ``-n 4``; with 4 ranks the first three also form a
3-rank communicator. Every rank computes the serial reference itself and asserts.
"""

import os

import numpy as np
import pytest
from mpi4py import MPI

import meshfield
from meshfield.parallel import DecompositionError

pytestmark = pytest.mark.mpi

EI = {
    "E": dict(N=300, mu=23.0, tau_m=20.0, t_ref=4.0, u_th=15.0, c=10.0, delta_u=2.5, tau_s=3.0,
              tau_theta=[50.0], J_theta=[40.0]),
    "I": dict(N=80, mu=21.0, tau_m=10.0, t_ref=2.0, u_th=15.0, c=10.0, delta_u=2.5, tau_s=6.0),
}


def couplings(r_e, r_i):
    out = []
    for tgt in "EI":
        out.append(dict(target=tgt, source="E", J=0.4, C=60,
                        kernel=dict(shape="gaussian", sigma=r_e / 2, r_max=r_e),
                        delay=dict(d0=1.0, velocity=0.2)))
        out.append(dict(target=tgt, source="I", J=-1.5, C=20,
                        kernel=dict(shape="exponential", length=r_i / 2, r_max=r_i),
                        delay=dict(d0=1.5)))
    return out


OPEN_1D = {
    "run": {"t_end": 60.0, "dt": 0.5, "seed": 11},
    "lattice": {"shape": [11], "dx": 0.1, "boundary": "open"},
    "populations": EI,
    "couplings": couplings(0.2, 0.1),
    "stimuli": [{"kind": "ou", "amplitude": 1.0, "tau": 5.0}],
    "record": {"interval": 0.5},
}
PERIODIC_2D = {
    "run": {"t_end": 40.0, "dt": 0.5, "seed": 5},
    "lattice": {"shape": [9, 7], "dx": 0.1, "boundary": "periodic"},
    "populations": EI,
    "couplings": couplings(0.2, 0.1),
    "stimuli": [{"kind": "pulse", "amplitude": 4.0, "center": [0.3, 0.2], "width": 0.15,
                 "t_start": 5.0, "duration": 10.0, "types": ["E"]}],
    "record": {"interval": 1.0},
}

# A kernel that couples along axis 0 only, on a periodic lattice whose axis 1 (3
# sites) is narrower than 2 h + 1 = 7: legal (no stencil wraps along axis 1); on 4
# ranks the default grid (2, 2) does not fit the halo and (4, 1) is chosen.
ALONG_AXIS_0 = dict(shape="custom", weights=[[-3, 0, 0.5], [-1, 0, 1.0], [0, 0, 1.0], [2, 0, 0.7]])
ANISOTROPIC_2D = {
    "run": {"t_end": 40.0, "dt": 0.5, "seed": 8},
    "lattice": {"shape": [13, 3], "dx": 0.1, "boundary": "periodic"},
    "populations": EI,
    "couplings": [dict(c, kernel=ALONG_AXIS_0) for c in couplings(0.2, 0.1)],
    "stimuli": [{"kind": "pulse", "amplitude": 4.0, "center": [0.3, 0.1], "width": 0.15,
                 "t_start": 5.0, "duration": 10.0, "types": ["E"]}],
    "record": {"interval": 1.0},
}
ANISOTROPIC_2D_MICRO = {**ANISOTROPIC_2D, "run": {**ANISOTROPIC_2D["run"], "level": "micro"}}
PERIODIC_2D_FLOAT32 = {**PERIODIC_2D, "run": {**PERIODIC_2D["run"], "cohort_dtype": "float32"}}

world = MPI.COMM_WORLD


def assert_identical(a, b):
    assert a.A.shape == b.A.shape
    assert np.array_equal(a.A, b.A)
    assert np.array_equal(a.Abar, b.Abar)
    assert np.array_equal(a.times, b.times)


def sub_communicator(n):
    """The first ``n`` ranks of the world (COMM_NULL on the others). Collective."""
    return world.Split(0 if world.rank < n else MPI.UNDEFINED, world.rank)


@pytest.mark.parametrize("cfg", [OPEN_1D, PERIODIC_2D, ANISOTROPIC_2D, ANISOTROPIC_2D_MICRO, PERIODIC_2D_FLOAT32],
                         ids=["open-1d", "periodic-2d", "anisotropic-2d", "anisotropic-2d-micro",
                              "periodic-2d-float32"])
def test_records_bitwise_identical_on_any_rank_count(cfg):
    serial = meshfield.run(cfg, comm=MPI.COMM_SELF)
    assert serial.A[5:].mean() > 1.0  # the network is active, so the comparison means something
    assert_identical(serial, meshfield.run(cfg, comm=world))
    for n in (2, 3):
        if n < world.size:
            sub = sub_communicator(n)
            if sub != MPI.COMM_NULL:
                assert_identical(serial, meshfield.run(cfg, comm=sub))
                sub.Free()


def test_explicit_process_grids_give_identical_records():
    serial = meshfield.run(PERIODIC_2D, comm=MPI.COMM_SELF)
    # 7 sites along axis 1 over 4 ranks would give blocks narrower than the halo
    grids = ((world.size, 1), (1, world.size)) if world.size <= 3 else ((world.size, 1), (2, 2))
    for dims in grids:
        assert_identical(serial, meshfield.run(PERIODIC_2D, comm=world, dims=dims))


def test_result_file_written_by_many_ranks_reads_like_serial(shared_tmp):
    serial = meshfield.run(OPEN_1D, comm=MPI.COMM_SELF)
    path = os.path.join(shared_tmp, "run.h5")
    with meshfield.run(OPEN_1D, output=path, comm=world) as res:
        assert_identical(serial, res)
        assert res.meta["ranks"] == world.size


def test_more_ranks_than_sites_fails_on_every_rank():
    cfg = dict(OPEN_1D, lattice={"shape": [world.size - 1], "dx": 0.1, "boundary": "open"},
               couplings=[])
    with pytest.raises(DecompositionError, match="more ranks"):
        meshfield.run(cfg, comm=world)
