"""What exchange_spikes holds at once, against exchange_spikes_bytes (one rank:
the periodic halo mirrors the block's own sites, the same code path)."""

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

    for name in ("_unwrapped_records", "_edge_layers", "_shift", "_halo_cells"):
        monkeypatch.setattr(spikes, name, wrap(getattr(spikes, name)))
    monkeypatch.setattr(np, "concatenate", wrap(np.concatenate))
    monkeypatch.setattr(np, "ascontiguousarray", wrap(np.ascontiguousarray))
    out = call()
    monkeypatch.undo()
    return live[1], out


@pytest.mark.parametrize("shape, periodic, h", [((16, 16), True, 5), ((9, 7), False, 2), ((6, 8, 5), True, 2)])
def test_exchange_spikes_bytes_is_what_the_exchange_holds(monkeypatch, shape, periodic, h):
    d = Decomposition(MPI.COMM_SELF, shape, periodic, h)
    start, n = np.array(d.local_start), np.array(d.local_shape)
    grid = np.stack(np.meshgrid(*[np.arange(m) for m in shape], indexing="ij"), -1).reshape(-1, len(shape))
    edge = np.any((grid - start < h) | (grid - start >= n - h), axis=1)
    site = np.ravel_multi_index(grid[edge].T, shape)
    k = 3  # records per site
    records = np.repeat(np.stack([site, site % 5, site % 7], axis=1), k, axis=0).astype(np.int64)
    exchange_spikes(d, records, sort=False)  # compiled before counting
    peak, (halo_records, _) = _tracked_peak(monkeypatch, lambda: exchange_spikes(d, records, sort=False))
    expected, halo = exchange_spikes_bytes(d.local_shape, d.dims, periodic, h, 3)
    assert len(halo_records) == k * halo
    assert peak - records.nbytes == k * expected  # (the input is handed back by ascontiguousarray)
