"""Recorder and result reader on several ranks (run under mpiexec -n 2 and -n 4).

Every rank asserts. The helpers come from tests/test_recorder.py.
"""

import os
import shutil

import numpy as np
import pytest
from mpi4py import MPI

from meshfield.io import Recorder, RecorderError, open_result
from meshfield.parallel import Decomposition
from test_recorder import CONFIG, META, TYPES, check_result, leftovers, record_run

pytestmark = pytest.mark.mpi

COMM = MPI.COMM_WORLD


@pytest.fixture
def decompose():
    """Build Decompositions of COMM_WORLD (open boundary, no halo); freed afterwards."""
    made = []

    def make(global_shape):
        made.append(Decomposition(COMM, global_shape, periodic=False, halo_width=0))
        return made[-1]

    yield make
    for decomposition in made:
        decomposition.free()


# Uneven blocks on 2 and 4 ranks: 7 = 4 + 3 = 2 + 2 + 2 + 1, 5 x 6 on a 2 x 2 grid.
@pytest.mark.parametrize("shape", [(7,), (5, 6)])
@pytest.mark.parametrize("flush_every", [None, 4])
def test_round_trip(shared_tmp, decompose, shape, flush_every):
    path = shared_tmp / "out.h5"
    A = record_run(path, decompose(shape), 11, flush_every=flush_every)
    check_result(path, A, ranks=COMM.size)
    assert leftovers(shared_tmp) == ["out.h5", "out.h5.blocks"]
    assert len(os.listdir(shared_tmp / "out.h5.blocks")) == COMM.size


def test_moved_pair_reads_from_other_working_directory(shared_tmp, decompose, monkeypatch):
    A = record_run(shared_tmp / "out.h5", decompose((5, 6)), 3)
    COMM.Barrier()
    if COMM.rank == 0:
        os.mkdir(shared_tmp / "moved")
        os.mkdir(shared_tmp / "elsewhere")
        for name in ("out.h5", "out.h5.blocks"):
            shutil.move(shared_tmp / name, shared_tmp / "moved" / name)
    COMM.Barrier()
    monkeypatch.chdir(shared_tmp / "elsewhere")
    check_result(os.path.join("..", "moved", "out.h5"), A, ranks=COMM.size)


def test_refusals_are_raised_on_every_rank(shared_tmp, decompose):
    path = shared_tmp / "out.h5"
    if COMM.rank == 0:
        path.write_text("precious")
    COMM.Barrier()
    with pytest.raises(RecorderError, match=f"{path} exists"):
        Recorder(path, decompose((7,)), TYPES, 3, 0.5, 0.5, CONFIG, META)
    missing = shared_tmp / "missing"
    with pytest.raises(RecorderError, match=f"folder {missing} does not exist"):
        Recorder(missing / "out.h5", decompose((7,)), TYPES, 3, 0.5, 0.5, CONFIG, META)
    # --overwrite replaces a result only, so not this file either
    with pytest.raises(RecorderError, match=f"{path}: the file exists and is not a meshfield result"):
        Recorder(path, decompose((7,)), TYPES, 3, 0.5, 0.5, CONFIG, META, overwrite=True)
    assert path.read_text() == "precious"
    COMM.Barrier()
    if COMM.rank == 0:
        path.unlink()
    COMM.Barrier()
    record_run(path, decompose((7,)), 3)
    A = record_run(path, decompose((7,)), 3, offset=5.0, overwrite=True)
    check_result(path, A, ranks=COMM.size)
    assert leftovers(shared_tmp) == ["out.h5", "out.h5.blocks"]


def test_abort_on_every_rank_leaves_nothing(shared_tmp, decompose):
    decomposition = decompose((5, 6))
    recorder = Recorder(shared_tmp / "out.h5", decomposition, TYPES, 4, 0.5, 0.5, CONFIG,
                        META, flush_every=1)
    ones = np.ones((2, len(TYPES), *decomposition.local_shape))
    recorder.write(0, ones, ones)
    recorder.abort()
    COMM.Barrier()
    assert leftovers(shared_tmp) == []


def test_failure_on_one_rank_fails_close_everywhere(shared_tmp, decompose):
    decomposition = decompose((7,))
    recorder = Recorder(shared_tmp / "out.h5", decomposition, TYPES, 3, 0.5, 0.5, CONFIG, META)
    n_written = 2 if COMM.rank == COMM.size - 1 else 3
    ones = np.ones((n_written, len(TYPES), *decomposition.local_shape))
    recorder.write(0, ones, ones)
    last = COMM.size - 1
    # Only rank 0 prints errors: the others' messages carry the failing rank's.
    expected = (f"rank {last} wrote 2 of n_records = 3" if COMM.rank == last
                else f"finishing the block file failed on rank {last}: rank {last} wrote 2 of")
    with pytest.raises(RecorderError, match=expected):
        recorder.close(wall_time=1.0)
    COMM.Barrier()
    assert leftovers(shared_tmp) == []


FULL_DISK = ("Can't write data (file write failed: errno = 28, "
             "error message = 'No space left on device', buf = 0x0, total write size = 9)")


@pytest.mark.parametrize("where", ["flush", "write"])
def test_a_full_disk_on_one_rank_stops_every_rank_at_the_next_sync(shared_tmp, decompose,
                                                                   monkeypatch, where):
    """HDF5's flush (or a chunk write) fails on the last rank only: sync() raises on
    every rank, with that rank's reason, and the output is discarded."""
    import h5py

    from meshfield.io import recorder as recorder_module

    # The flag makes the command line leave with os._exit; later tests in this
    # process must not see it.
    monkeypatch.setattr(recorder_module, "HDF5_WRITE_FAILED", False)
    decomposition = decompose((7,))
    recorder = Recorder(shared_tmp / "out.h5", decomposition, TYPES, 6, 0.5, 0.5, CONFIG,
                        META, flush_every=2)
    last = COMM.size - 1
    if COMM.rank == last:
        if where == "flush":
            monkeypatch.setattr(h5py.File, "flush", lambda self: (_ for _ in ()).throw(RuntimeError(FULL_DISK)))
        else:
            def setitem(self, key, value):
                raise OSError(FULL_DISK)
            monkeypatch.setattr(h5py.Dataset, "__setitem__", setitem)
    ones = np.ones((2, len(TYPES), *decomposition.local_shape))
    recorder.write(0, ones, ones)  # a full buffer: written to HDF5 (and failing there)
    reason = f"rank{last:05d}.h5 at t = 1 ms: No space left on device; the output is discarded"
    expected = "cannot write the block file" if COMM.rank == last else \
        f"writing the block file failed on rank {last}: cannot write the block file"
    with pytest.raises(RecorderError, match=expected) as raised:
        recorder.sync(1.0)
    assert str(raised.value).endswith(reason)
    assert recorder_module.HDF5_WRITE_FAILED == (COMM.rank == last)
    monkeypatch.undo()  # the set-aside handles of the failed file stay alive
    COMM.Barrier()
    assert leftovers(shared_tmp) == []


def test_extra_from_some_ranks(shared_tmp, decompose):
    decomposition = decompose((7,))
    path = shared_tmp / "out.h5"
    recorder = Recorder(path, decomposition, TYPES, 1, 0.5, 0.5, CONFIG, META)
    ones = np.ones((1, len(TYPES), *decomposition.local_shape))
    recorder.write(0, ones, ones)
    if COMM.rank % 2 == 1:
        recorder.write_extra("spikes", np.arange(COMM.rank))
    recorder.close(wall_time=1.0)
    with open_result(path) as result:
        extra = result.extra("spikes")
    assert sorted(extra) == list(range(1, COMM.size, 2))
    for rank, spikes in extra.items():
        np.testing.assert_array_equal(spikes, np.arange(rank))


def test_run_checks_the_blocks_on_the_root_only(shared_tmp, monkeypatch):
    """meshfield.run hands every rank the opened result; only the root opens the
    block files (R ranks each opening R files would load a parallel file system
    at the end of every job); the others check at their first read."""
    import meshfield
    from meshfield.io import result as result_module
    calls = []
    original = result_module._check_blocks
    monkeypatch.setattr(result_module, "_check_blocks", lambda *a, **k: (calls.append(1), original(*a, **k)))
    res = meshfield.run("v1_single", output=str(shared_tmp / "run.h5"), overwrite=True,
                        overrides=["run.t_end=20", "lattice.shape=[4]"])
    assert len(calls) == (1 if COMM.rank == 0 else 0)
    assert res.A.shape == (len(res.times), 2, 4)
    assert len(calls) == (2 if COMM.rank == 0 else 1)
    res.close()


def test_a_failing_on_start_stops_every_rank_and_leaves_nothing(shared_tmp):
    """run(on_start=) is called on the root just before the time loop: when it
    raises, every rank raises (the others would otherwise wait in the first
    exchange for ever) and the run's temporary files are removed."""
    import meshfield

    calls = []

    def on_start():
        calls.append(COMM.rank)
        raise ValueError("the callback failed")

    expected = "the callback failed"
    with pytest.raises(ValueError if COMM.rank == 0 else RuntimeError, match=expected):
        meshfield.run("v1_single", output=str(shared_tmp / "run.h5"), on_start=on_start,
                      overrides=["run.t_end=20", "lattice.shape=[4]"])
    assert calls == ([0] if COMM.rank == 0 else [])
    COMM.Barrier()
    assert leftovers(shared_tmp) == []
