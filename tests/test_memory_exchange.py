"""What exchange_spikes holds at once, against exchange_spikes_bytes: on one rank
(a periodic axis mirrors the block's own layers) and, under mpiexec, on every
rank of 2 or 4 (the layers go to the neighbours)."""

import weakref

import numpy as np
import pytest
from mpi4py import MPI

from meshfield.parallel import spikes
from meshfield.parallel.decomposition import Decomposition
from meshfield.parallel.spikes import exchange_spikes, exchange_spikes_bytes


def _tracked_peak(monkeypatch, call):
    """Largest total of the arrays that the exchange's steps return, alive at once."""
    live, seen = [0, 0], {}

    def track(a):
        new = isinstance(a, np.ndarray) and not isinstance(a.base, np.ndarray) and a.nbytes
        if new and not (id(a) in seen and seen[id(a)]() is a):
            seen[id(a)] = weakref.ref(a)
            live[0] += a.nbytes
            live[1] = max(live[1], live[0])
            n = a.nbytes
            weakref.finalize(a, lambda: live.__setitem__(0, live[0] - n))
        return a

    def wrap(f):
        def g(*args, **kwargs):
            out = f(*args, **kwargs)
            for x in out if isinstance(out, tuple) else (out,):
                track(x)
            return out
        return g

    for name in ("_positions", "_new_rows", "_finish"):
        monkeypatch.setattr(spikes, name, wrap(getattr(spikes, name)))
    monkeypatch.setattr(np, "concatenate", wrap(np.concatenate))
    monkeypatch.setattr(np, "ascontiguousarray", wrap(np.ascontiguousarray))
    out = call()
    monkeypatch.undo()
    return live[1], out


def _edge_records(d, k):
    """``k`` records (3 columns) of every site of the block within the halo width of its edge."""
    shape, h = d.global_shape, d.halo_width
    start, n = np.array(d.local_start), np.array(d.local_shape)
    grid = np.stack(np.meshgrid(*[np.arange(a, a + m) for a, m in zip(start, n)], indexing="ij"),
                    -1).reshape(-1, len(shape))
    edge = np.any((grid - start < h) | (grid - start >= n - h), axis=1)
    site = np.ravel_multi_index(grid[edge].T, shape)
    return np.repeat(np.stack([site, site % 5, site % 7], axis=1), k, axis=0).astype(np.int64)


def _peak_against_estimate(monkeypatch, d):
    """(traced peak, estimate, halo rows returned, estimated rows), for 3 records per edge site."""
    k = 3
    records = _edge_records(d, k)
    exchange_spikes(d, records, sort=False)  # compiled before counting
    peak, (halo_records, _) = _tracked_peak(monkeypatch, lambda: exchange_spikes(d, records, sort=False))
    expected, halo = exchange_spikes_bytes(d.local_shape, d.dims, d.periodic, d.halo_width, 3)
    # (the input is handed back by ascontiguousarray)
    return peak - records.nbytes, k * expected, len(halo_records), k * halo


@pytest.mark.parametrize("shape, periodic, h", [((16, 16), True, 5), ((9, 7), False, 2), ((6, 8, 5), True, 2)])
def test_exchange_spikes_bytes_is_what_the_exchange_holds(monkeypatch, shape, periodic, h):
    d = Decomposition(MPI.COMM_SELF, shape, periodic, h)
    peak, expected, rows, expected_rows = _peak_against_estimate(monkeypatch, d)
    assert rows == expected_rows
    assert peak == expected
    d.free()


@pytest.mark.mpi
@pytest.mark.parametrize("shape, periodic, h", [((16, 16), True, 5), ((16, 12), False, 3), ((6, 8, 5), True, 2)])
def test_exchange_spikes_bytes_is_what_the_exchange_holds_on_every_rank(monkeypatch, shape, periodic, h):
    # 2 ranks: grid (2, 1); 4 ranks: (2, 2), one neighbour per axis on the open
    # lattice, two on the periodic ones: each rank's block has as many as the estimate counts
    comm = MPI.COMM_WORLD
    d = Decomposition(comm, shape, periodic, h)
    peak, expected, rows, expected_rows = _peak_against_estimate(monkeypatch, d)
    found = comm.allgather((d.rank, d.dims, peak, expected, rows, expected_rows))
    d.free()
    assert all(p == e and r == er for _, _, p, e, r, er in found), found
