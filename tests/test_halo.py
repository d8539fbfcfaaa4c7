"""Halo exchange on many ranks: the halo test of STYLE.md, and the spike exchange.

Run with ``mpiexec -n 2`` and ``-n 4`` (also ``-n 3`` by hand); every case is
valid for 1 to 4 ranks. The checking helpers are shared with the serial tests of
tests/test_decomposition.py, which run them on ``MPI.COMM_SELF``.
"""

import numpy as np
import pytest
from mpi4py import MPI

from meshfield.parallel import Decomposition, DecompositionError, exchange_spikes, halo_cells_sent

pytestmark = pytest.mark.mpi

LEADING = (2, 3)  # e.g. (slots, types)


def assert_on_all_ranks(comm, ok, message):
    """Fail on every rank when ``ok`` is false on any, so no rank is left waiting
    in the next collective."""
    everywhere = comm.allreduce(bool(ok), op=MPI.LAND)
    assert ok, message
    assert everywhere, "the check failed on another rank"


def assert_halo_exchange(comm, shape, periodic, h, dims=None, dtype=np.int64):
    """STYLE.md's halo test: every interior cell holds 1 + its global site index
    (plus an offset per leading index), the halo holds 0; after the exchange
    every cell of the array with halo, halo and interior alike, must hold the
    value of the site it mirrors. Cells beyond an open edge start with a
    sentinel of this rank, -(1 + rank), and must keep it (untouched, not even
    overwritten by a neighbour's equal-looking cell)."""
    d = Decomposition(comm, shape, periodic, h, dims)
    n_sites = int(np.prod(shape))
    offset = n_sites * np.arange(np.prod(LEADING)).reshape(LEADING + (1,) * len(shape))
    mirror = d.global_site_index_with_halo()
    untouched = -(1 + d.rank)
    # A non-contiguous view: every other slot of a larger buffer.
    buffer = np.zeros((LEADING[0], 2 * LEADING[1]) + d.with_halo_shape, dtype=dtype)
    arr = buffer[:, ::2]
    arr[...] = np.where(mirror < 0, untouched, 0)
    arr[(..., *d.interior)] = d.global_site_index() + 1 + offset
    d.exchange(arr)

    expected = np.where(mirror >= 0, mirror + 1 + offset, untouched).astype(dtype)
    bad = np.argwhere(arr != expected)
    assert_on_all_ranks(
        comm, bad.size == 0,
        f"rank {d.rank} {d}: {len(bad)} wrong cells, first {bad[:3].tolist()}",
    )
    assert_on_all_ranks(comm, np.all(buffer[:, 1::2] == 0),
                        f"rank {d.rank}: exchange wrote outside the view")
    d.free()


def spike_records(sites):
    """Deterministic spike records of the given global sites: site ``g`` has
    ``g % 3`` spikes, columns (site, type, neuron, step)."""
    rows = [(g, k % 2, 10 * g + k, 7 * g + k) for g in sites.ravel() for k in range(g % 3)]
    return np.array(rows, dtype=np.int64).reshape(-1, 4)


def assert_spike_exchange(comm, shape, periodic, h, dims=None):
    """Every halo cell must receive exactly the records of the site it mirrors
    (diagonal neighbours included), and nothing else."""
    d = Decomposition(comm, shape, periodic, h, dims)
    records, cells = exchange_spikes(d, spike_records(d.global_site_index()))

    mirror = d.global_site_index_with_halo()
    is_halo = np.ones(d.with_halo_shape, dtype=bool)
    is_halo[d.interior] = False
    halo_cells = np.flatnonzero(is_halo & (mirror >= 0))
    expected_rows, expected_cells = [], []
    for cell in halo_cells:
        rows = spike_records(mirror.ravel()[cell : cell + 1])
        expected_rows.append(rows)
        expected_cells.append(np.full(len(rows), cell, dtype=np.int64))
    expected_rows = np.concatenate(expected_rows) if expected_rows else np.empty((0, 4), np.int64)
    expected_cells = np.concatenate(expected_cells) if expected_cells else np.empty(0, np.int64)
    order = np.lexsort((expected_cells, *expected_rows.T[::-1]))

    ok = (
        records.shape == expected_rows.shape
        and np.array_equal(records, expected_rows[order])
        and np.array_equal(cells, expected_cells[order])
    )
    assert_on_all_ranks(
        comm, ok,
        f"rank {d.rank} {d}: got {len(records)} halo records, expected {len(expected_rows)}",
    )
    # Unsorted (the micro level's call): the same rows with the same cells, in arrival order.
    unsorted, unsorted_cells = exchange_spikes(d, spike_records(d.global_site_index()), sort=False)
    again = np.lexsort((unsorted_cells, *unsorted.T[::-1]))
    ok = np.array_equal(unsorted[again], records) and np.array_equal(unsorted_cells[again], cells)
    assert_on_all_ranks(comm, ok, f"rank {d.rank} {d}: sort=False returned other rows or cells")
    d.free()


HALO_CASES = [
    # (shape, periodic, halo_width); uneven blocks for 2, 3 and 4 ranks
    ((7,), True, 1),
    ((7,), False, 1),
    ((11,), True, 2),
    ((11,), False, 2),
    ((13,), True, 3),
    ((13,), False, 3),
    ((10, 7), True, 1),
    ((10, 7), False, 1),
    ((10, 7), True, 2),
    ((10, 7), False, 3),
    ((10, 7), True, 3),
    ((9, 5), True, 2),
    ((9, 5), False, 2),
    ((5, 4, 6), True, 1),
    ((6, 5, 4), False, 2),
    # a halo wider than half a periodic axis that no stencil reaches along (an
    # anisotropic kernel); on 4 ranks the default grid (2, 2) does not fit and
    # (4, 1) is chosen
    ((13, 3), True, 3),
]


def _case_id(case):
    shape, periodic, h = case
    return f"{'x'.join(map(str, shape))}-{'periodic' if periodic else 'open'}-h{h}"


@pytest.mark.parametrize("case", HALO_CASES, ids=_case_id)
def test_halo_exchange(case):
    assert_halo_exchange(MPI.COMM_WORLD, *case)


@pytest.mark.parametrize("periodic", [True, False])
@pytest.mark.parametrize("grid", ["columns", "rows"])
def test_halo_exchange_explicit_grid(periodic, grid):
    size = MPI.COMM_WORLD.Get_size()
    dims = (1, size) if grid == "columns" else (size, 1)
    assert_halo_exchange(MPI.COMM_WORLD, (13, 9), periodic, 2, dims)


@pytest.mark.parametrize("dtype", [np.float32, np.complex128, np.int16])
@pytest.mark.parametrize("periodic", [True, False])
def test_halo_exchange_any_dtype(dtype, periodic):
    # Values stay below 10 * 7 * 6 + 1, exact in every dtype tested.
    assert_halo_exchange(MPI.COMM_WORLD, (10, 7), periodic, 2, dtype=dtype)


@pytest.mark.parametrize("case", HALO_CASES, ids=_case_id)
def test_halo_cells_sent_is_the_most_that_any_rank_sends(case):
    """meshfield info's communication estimate (halo_cells_sent of the largest
    block) equals the bytes the busiest rank really sends per exchange."""
    shape, periodic, h = case
    comm = MPI.COMM_WORLD
    d = Decomposition(comm, shape, periodic, h)
    arr = np.zeros((3,) + d.with_halo_shape)
    d.exchange(arr)
    largest = tuple(-(-n // p) for n, p in zip(shape, d.dims))
    expected = halo_cells_sent(largest, d.dims, periodic, h) * 3 * 8
    busiest = comm.allreduce(d.bytes_sent, op=MPI.MAX)
    assert_on_all_ranks(comm, busiest == expected, f"{d}: busiest rank sent {busiest} bytes, "
                        f"halo_cells_sent gives {expected}")
    d.free()


def test_bytes_sent_counts_messages_only():
    comm = MPI.COMM_WORLD
    size = comm.Get_size()
    h = 2
    d = Decomposition(comm, (4 * size + 1,), True, h)
    arr = np.zeros((4, 2) + d.with_halo_shape)
    d.exchange(arr)
    d.exchange(arr)
    # Two exchanges, two messages each of h sites x 8 leading entries x 8 bytes;
    # a single rank copies within itself and sends nothing.
    expected = 0 if size == 1 else 2 * 2 * h * 8 * 8
    assert_on_all_ranks(comm, d.bytes_sent == expected,
                        f"rank {d.rank}: bytes_sent {d.bytes_sent} != {expected}")
    d.free()


def test_spike_exchange_sends_the_records_alone():
    # A ring with h = 1: each rank sends its first site's records down and its
    # last site's up, each message its count (8 bytes) and the records' own 4
    # int64 columns, nothing else; a single rank mirrors them and sends nothing.
    comm = MPI.COMM_WORLD
    d = Decomposition(comm, (4 * comm.Get_size() + 1,), True, 1)
    records = spike_records(d.global_site_index())
    first, last = d.local_start[0], d.local_start[0] + d.local_shape[0] - 1
    edge_rows = np.count_nonzero(records[:, 0] == first) + np.count_nonzero(records[:, 0] == last)
    exchange_spikes(d, records, sort=False)
    expected = 0 if d.size == 1 else 2 * 8 + 4 * 8 * edge_rows
    assert_on_all_ranks(comm, d.bytes_sent == expected,
                        f"rank {d.rank}: bytes_sent {d.bytes_sent} != {expected}")
    d.free()


def test_too_many_ranks_raises_on_every_rank():
    size = MPI.COMM_WORLD.Get_size()
    if size == 1:
        pytest.skip("needs more than one rank")
    with pytest.raises(DecompositionError, match=rf"more ranks \({size}\) than sites \({size - 1}\)"):
        Decomposition(MPI.COMM_WORLD, (size - 1,), True, 0)
    with pytest.raises(DecompositionError, match=r"lattice of shape \(1, 1\)"):
        Decomposition(MPI.COMM_WORLD, (1, 1), False, 0)


def test_halo_wider_than_block_raises_on_every_rank():
    size = MPI.COMM_WORLD.Get_size()
    if size == 1:
        pytest.skip("needs more than one rank")
    with pytest.raises(DecompositionError, match=r"halo width 3 exceeds the smallest block"):
        Decomposition(MPI.COMM_WORLD, (2 * size,), False, 3)


@pytest.mark.parametrize(
    "shape, periodic, h, dims",
    [
        ((13,), True, 3, None),
        ((13,), False, 2, None),
        ((10, 7), True, 2, None),
        ((10, 7), False, 3, None),
        ((13, 9), True, 2, "columns"),
        ((9, 5), True, 2, "rows"),
    ],
)
def test_spike_exchange(shape, periodic, h, dims):
    size = MPI.COMM_WORLD.Get_size()
    dims = {None: None, "columns": (1, size), "rows": (size, 1)}[dims]
    assert_spike_exchange(MPI.COMM_WORLD, shape, periodic, h, dims)


def test_spike_records_outside_block_raise_on_every_rank():
    comm = MPI.COMM_WORLD
    d = Decomposition(comm, (12,), True, 1)
    foreign = (d.local_start[0] + d.local_shape[0]) % 12 if d.size > 1 else 12
    with pytest.raises(ValueError, match="site"):
        exchange_spikes(d, np.array([[foreign, 0, 0, 0]]))
    d.free()
