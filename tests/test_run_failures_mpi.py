"""meshfield.run on several ranks, ended by failures that every rank raises alike:
the run frees its MPI communicators, so a sweep that catches them goes on.

Run with ``mpiexec -n 2`` and ``-n 4``. Every such run used to keep its Cartesian
communicator (and, in the time loop, the signal vote's duplicate): MPICH 4 has
1024 to about 2000 communicator ids, and the 1023rd refused run on 2 ranks
failed with "Other MPI error ... Too many communicators".
"""

import signal

import h5py
import pytest
from mpi4py import MPI

import meshfield
import meshfield.simulation as simulation
from meshfield.config import ConfigError
from meshfield.io import CheckpointError, RecorderError
from meshfield.io import recorder as recorder_module

pytestmark = pytest.mark.mpi

COMM = MPI.COMM_WORLD

# uncoupled sites, one per rank at least; a block of 64 steps (no delay bounds it)
TINY = {
    "run": {"t_end": 2.0, "dt": 0.5},
    "lattice": {"shape": [4], "boundary": "open"},
    "populations": {"E": {"N": 50, "mu": 20.0}},
}
# three blocks of 64 steps: the time loop votes on signals after each
LONGER = dict(TINY, run={"t_end": 96.0, "dt": 0.5})

#: more refused runs than any MPICH has communicator ids
RUNS = 2100


def test_a_sweep_goes_on_after_thousands_of_runs_refused_by_the_memory_check(monkeypatch):
    config = meshfield.load_config(TINY)
    monkeypatch.setattr(simulation, "node_memory_bytes", lambda: 1)
    for _ in range(RUNS):
        with pytest.raises(ConfigError, match="of memory per rank on this node"):
            meshfield.run(config, comm=COMM)
    monkeypatch.undo()
    assert meshfield.run(config, comm=COMM).A.shape == (2, 1, 4)  # [time, type, site]


@pytest.fixture
def made(monkeypatch):
    """The decompositions and signal votes of the runs in a test."""
    made = {"decompositions": [], "votes": []}
    make = simulation.make_decomposition

    def making(*args, **kwargs):
        made["decompositions"].append(make(*args, **kwargs))
        return made["decompositions"][-1]

    class Vote(simulation.StopOnSignal):
        def __enter__(self):
            made["votes"].append(self)
            return super().__enter__()

    monkeypatch.setattr(simulation, "make_decomposition", making)
    monkeypatch.setattr(simulation, "StopOnSignal", Vote)
    return made


def _all_freed(made):
    return (all(d.comm == MPI.COMM_NULL for d in made["decompositions"])
            and all(v._comm in (None, MPI.COMM_NULL) for v in made["votes"]))


def test_a_checkpoint_target_that_exists(shared_tmp, made):
    target = shared_tmp / "exists.h5"
    if COMM.rank == 0:
        target.write_bytes(b"")
    COMM.Barrier()
    with pytest.raises(CheckpointError, match="exists; refusing to overwrite it"):
        meshfield.run(TINY, comm=COMM, checkpoint=str(target))
    assert len(made["decompositions"]) == 1 and _all_freed(made)


def test_a_restart_that_does_not_match_its_checkpoint(shared_tmp, made):
    checkpoint = str(shared_tmp / "c.h5")
    meshfield.run(TINY, comm=COMM, checkpoint=checkpoint)
    with pytest.raises(CheckpointError, match="differs from the checkpoint's at run.seed"):
        meshfield.run(TINY, comm=COMM, overrides=["run.t_end=4", "run.seed=2"], restart=checkpoint)
    assert len(made["decompositions"]) == 2 and _all_freed(made)


def test_an_on_start_callback_that_raises_on_rank_0(shared_tmp, made):
    def refuse():
        raise ValueError("not today")

    with pytest.raises(ValueError if COMM.rank == 0 else RuntimeError, match="not today"):
        meshfield.run(TINY, comm=COMM, output=str(shared_tmp / "r.h5"), on_start=refuse)
    assert _all_freed(made)
    COMM.Barrier()
    assert sorted(p.name for p in shared_tmp.iterdir()) == []


def test_a_full_disk_on_one_rank_in_the_time_loop(shared_tmp, made, monkeypatch):
    """The block file of the last rank cannot be written: every rank raises at the
    sync after the first block, while a signal vote is under way."""
    monkeypatch.setattr(recorder_module, "HDF5_WRITE_FAILED", False)  # see test_recorder_mpi.py
    monkeypatch.setattr(simulation, "RECORD_BUFFER", 1)  # a sync at every block
    if COMM.rank == COMM.size - 1:
        def full(self):
            raise RuntimeError("Can't flush (No space left on device)")
        monkeypatch.setattr(h5py.File, "flush", full)
    with pytest.raises(RecorderError, match="cannot write the block file"):
        meshfield.run(LONGER, comm=COMM, output=str(shared_tmp / "r.h5"))
    assert len(made["votes"]) == 1 and _all_freed(made)
    monkeypatch.undo()  # the set-aside handles of the failed file stay alive


class Stopped(Exception):
    pass


def test_a_signal_voted_on_in_the_time_loop(made, monkeypatch):
    """SIGTERM on the last rank after the first block; its handler raises on every
    rank after the vote."""
    def stop(signum, frame):
        raise Stopped()

    mark = simulation._Progress.mark

    def marking(self, t_sim):
        mark(self, t_sim)
        if COMM.rank == COMM.size - 1:
            signal.raise_signal(signal.SIGTERM)

    monkeypatch.setattr(simulation._Progress, "mark", marking)
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        with pytest.raises(Stopped):
            meshfield.run(LONGER, comm=COMM)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert len(made["votes"]) == 1 and _all_freed(made)
