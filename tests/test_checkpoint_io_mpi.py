"""Checkpoint files on several ranks (run under mpiexec -n 2 and -n 4).

Every rank asserts. ``site_values`` comes from tests/test_checkpoint_io.py.
"""

import os

import h5py
import numpy as np
import pytest
from mpi4py import MPI

import meshfield.io.checkpoint as checkpoint
from meshfield.io.checkpoint import CheckpointError, read_checkpoint, write_checkpoint
from meshfield.parallel import Decomposition, block_range
from test_checkpoint_io import ATTRS, assert_arrays_equal, block_of, damage, site_values

pytestmark = pytest.mark.mpi

COMM = MPI.COMM_WORLD
# Uneven blocks: 7 rows = 4 + 3 = 2 + 2 + 2 + 1, 5 columns = 3 + 2 = 2 + 1 + 1 + 1.
SHAPE = (7, 5)


@pytest.fixture
def decompose():
    """Build Decompositions of COMM_WORLD with a given grid; freed afterwards."""
    made = []

    def make(dims):
        made.append(Decomposition(COMM, SHAPE, periodic=True, halo_width=1, dims=dims))
        return made[-1]

    yield make
    for decomposition in made:
        decomposition.free()


def changed(arrays):
    """Every value of ``arrays`` changed, dtypes kept."""
    return {name: ~value if value.dtype == bool else value + 1
            for name, value in arrays.items()}


def leftovers(folder):
    COMM.Barrier()
    return sorted(os.listdir(folder))


# 40 bytes splits every block into several messages, the last one shorter.
@pytest.mark.parametrize("message_bytes", [checkpoint._MESSAGE_BYTES, 40])
def test_written_on_rows_read_on_columns(shared_tmp, decompose, monkeypatch, message_bytes):
    monkeypatch.setattr(checkpoint, "_MESSAGE_BYTES", message_bytes)
    rows = decompose((COMM.size, 1))
    arrays = site_values(SHAPE)
    blocks = block_of(arrays, rows)
    if COMM.rank % 2 == 1:
        # The order of the dict may differ between ranks; the root's counts.
        blocks = dict(reversed(blocks.items()))
    path = write_checkpoint(shared_tmp / "ck.h5", rows, blocks, ATTRS)
    assert path == str(shared_tmp / "ck.h5")
    assert leftovers(shared_tmp) == ["ck.h5"]
    columns = decompose((1, COMM.size))
    found, attrs = read_checkpoint(path, columns)
    assert found["y"].shape == (*columns.local_shape, 3)
    assert_arrays_equal(found, block_of(arrays, columns))
    whole, _ = read_checkpoint(path)
    assert_arrays_equal(whole, arrays)
    assert attrs["ranks"] == COMM.size
    assert attrs["dims"] == [COMM.size, 1]
    assert attrs["config"] == ATTRS["config"]


def test_chunks_within_the_smallest_block_and_a_checksum_per_block(shared_tmp, decompose):
    """A chunk is at most the writer's smallest block: on 2 ranks (rows 4 + 3)
    chunks of 3 rows, one of which (rows 3 to 5) the root writes in two parts,
    for rank 0 and rank 1; on 4 ranks (2 + 2 + 2 + 1) chunks of one row. The
    file holds every value, read on any grid. A damaged chunk in the last
    rank's block fails that rank's read only (a rank reads, and checks, the
    chunks of its block)."""
    rows = decompose((COMM.size, 1))
    arrays = site_values(SHAPE)
    path = write_checkpoint(shared_tmp / "ck.h5", rows, block_of(arrays, rows), ATTRS)
    smallest = SHAPE[0] // COMM.size
    with h5py.File(path, "r") as f:
        assert (f["y"].chunks, f["count"].chunks) == ((smallest, 5, 3), (smallest, 5))
        assert all(f[name].fletcher32 for name in arrays)
    assert_arrays_equal(read_checkpoint(path)[0], arrays)
    columns = decompose((1, COMM.size))
    assert_arrays_equal(read_checkpoint(path, columns)[0], block_of(arrays, columns))
    COMM.Barrier()
    if COMM.rank == 0:
        damage(path, "y", site=(6, 4))  # the last row: a chunk of the last rank's block alone
    COMM.Barrier()
    if COMM.rank == COMM.size - 1:
        with pytest.raises(CheckpointError, match=rf"^{path}: damaged checkpoint, the dataset 'y' "
                                                  rf"fails its checksum"):
            read_checkpoint(path, rows)
    else:
        assert_arrays_equal(read_checkpoint(path, rows)[0], block_of(arrays, rows))


def test_wrong_trailing_shape_on_one_rank_fails_everywhere(shared_tmp, decompose):
    rows = decompose((COMM.size, 1))
    blocks = block_of(site_values(SHAPE), rows)
    if COMM.rank == 1:
        blocks["meso/m"] = np.zeros((*rows.local_shape, 2, 5), dtype=np.int64)
    others = "ranks 0" + "".join(f", {r}" for r in range(2, COMM.size))
    with pytest.raises(CheckpointError, match=rf"array 'meso/m' must have the same trailing "
                       rf"shape and dtype on every rank, got trailing shape \(2, 4\) dtype "
                       rf"int64 on {others if COMM.size > 2 else 'rank 0'} and trailing "
                       rf"shape \(2, 5\) dtype int64 on rank 1"):
        write_checkpoint(shared_tmp / "ck.h5", rows, blocks, ATTRS)
    assert leftovers(shared_tmp) == []


def test_bad_block_on_last_rank_fails_everywhere(shared_tmp, decompose):
    rows = decompose((COMM.size, 1))
    blocks = block_of(site_values(SHAPE), rows)
    last = COMM.size - 1
    if COMM.rank == last:
        blocks["y"] = blocks["y"][:, :4]
    start, stop = block_range(SHAPE[0], COMM.size, last)
    with pytest.raises(CheckpointError, match=rf"rank {last}: array 'y' has shape "
                                              rf"\({stop - start}, 4, 3\); its leading axes "
                                              rf"must equal this rank's local_shape "
                                              rf"\({stop - start}, 5\)"):
        write_checkpoint(shared_tmp / "ck.h5", rows, blocks, ATTRS)
    assert leftovers(shared_tmp) == []


# The root fails at its own first write, or at its second write of rank 1's block;
# blocks of "big" (80 to 320 kB) exceed the eager limit of MPI, so its senders
# wait until the root receives.
@pytest.mark.parametrize("message_bytes, failing_write",
                         [(checkpoint._MESSAGE_BYTES, 1), (40, 7)])
def test_root_write_failure_while_others_send(shared_tmp, decompose, monkeypatch,
                                              message_bytes, failing_write):
    rows = decompose((COMM.size, 1))
    arrays = site_values(SHAPE)
    arrays["big"] = np.arange(np.prod(SHAPE) * 2000, dtype=np.float64).reshape(*SHAPE, 2000)
    path = shared_tmp / "ck.h5"
    write_checkpoint(path, rows, block_of(arrays, rows), ATTRS)
    # The root must still receive every message, or the sending ranks would hang.
    monkeypatch.setattr(checkpoint, "_MESSAGE_BYTES", message_bytes)
    if COMM.rank == 0:
        original = h5py.Dataset.__setitem__
        calls = []

        def fail(self, key, value):
            calls.append(self.name)
            if len(calls) == failing_write:
                raise OSError("No space left on device")
            original(self, key, value)

        monkeypatch.setattr(h5py.Dataset, "__setitem__", fail)
    newer = changed(block_of(arrays, rows))
    with pytest.raises(CheckpointError, match=f"writing the checkpoint {path} failed: "
                                              f"OSError: No space left on device"):
        write_checkpoint(path, rows, newer, ATTRS, overwrite=True)
    monkeypatch.undo()
    assert leftovers(shared_tmp) == ["ck.h5"]
    assert_arrays_equal(read_checkpoint(path)[0], arrays)
    write_checkpoint(path, rows, newer, ATTRS, overwrite=True)
    assert_arrays_equal(read_checkpoint(path)[0], changed(arrays))


def test_refusal_is_raised_on_every_rank(shared_tmp, decompose):
    rows = decompose((COMM.size, 1))
    path = shared_tmp / "ck.h5"
    if COMM.rank == 0:
        path.write_text("precious")
    COMM.Barrier()
    with pytest.raises(CheckpointError, match=f"{path} exists.*--overwrite"):
        write_checkpoint(path, rows, block_of(site_values(SHAPE), rows), ATTRS)
    assert path.read_text() == "precious"
    assert leftovers(shared_tmp) == ["ck.h5"]
