"""Sparse halo exchange of spike records for the microscopic level (MODEL.md §7).

Each rank knows the spikes of the neurons at its own sites. A neuron's targets lie
within ``halo_width`` sites, so each rank needs the spikes of every site in its
halo. :func:`exchange_spikes` forwards records axis by axis, exactly like the dense
:meth:`~meshfield.parallel.decomposition.Decomposition.exchange`: along axis
``k`` a rank sends the records of its ``halo_width`` outermost layers (including
what it has received along the axes before ``k``) to each neighbour, so records
of diagonal neighbours arrive in two hops. Messages have variable length: a count
is exchanged first, then the records.

Each record travels with its *unwrapped* coordinates (shifted by the lattice size
when it crosses a periodic edge), so the receiver knows in which halo cell it
lies, even when the same site is mirrored by two halo cells (small periodic
lattices).
"""

from __future__ import annotations

import numpy as np
from mpi4py import MPI

from .decomposition import Decomposition

__all__ = ["exchange_spikes"]

_COUNT_TAG = 100
_DATA_TAG = 101


def _shift(decomposition: Decomposition, packed: np.ndarray, dest: int,
           source: int) -> np.ndarray:
    """Send ``packed`` (int64, shape (k, width)) to ``dest`` and return the array
    received from ``source`` (empty across an open edge)."""
    width = packed.shape[1]
    if dest == decomposition.rank:
        return packed
    comm = decomposition.comm
    count_out = np.array([packed.shape[0]], dtype=np.int64)
    count_in = np.zeros(1, dtype=np.int64)
    comm.Sendrecv(count_out, dest, _COUNT_TAG, count_in, source, _COUNT_TAG)
    received = np.empty((int(count_in[0]), width), dtype=np.int64)
    comm.Sendrecv(packed, dest, _DATA_TAG, received, source, _DATA_TAG)
    if dest != MPI.PROC_NULL:
        decomposition.bytes_sent += count_out.nbytes + packed.nbytes
    return received


def exchange_spikes(
    decomposition: Decomposition, records: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Deliver to every rank the spike records of the sites in its halo.

    Collective.

    Parameters
    ----------
    decomposition : Decomposition
    records : ndarray of int64, shape (n_records, n_columns)
        This rank's spike records; column 0 is the global flat site index of an
        interior site of this rank; the other columns (e.g. type, neuron, step)
        are carried along unchanged. ``n_columns`` must be the same on all
        ranks.

    Returns
    -------
    halo_records : ndarray of int64, shape (n_halo, n_columns)
        The records of other sites' neurons (and, on periodic axes with one
        rank, of this rank's own sites mirrored into its halo), one row per halo
        cell that mirrors the record's site, sorted by the columns in order
        (site first) and then by cell, an order independent of the process
        grid.
    halo_cells : ndarray of int64, shape (n_halo,)
        Flat C-order index, into an array of ``with_halo_shape``, of the halo
        cell each row of ``halo_records`` lies in.

    Raises
    ------
    ValueError
        If ``records`` is not 2-D or names a site outside this rank's block.
    """
    d = decomposition
    records = np.ascontiguousarray(records, dtype=np.int64)
    if records.ndim != 2 or records.shape[1] < 1:
        raise ValueError(
            f"spike records must be a 2-D array (n_records, n_columns) whose "
            f"column 0 is the global site index, got shape {records.shape}"
        )
    n_columns = records.shape[1]
    n_sites = int(np.prod(d.global_shape))
    site = records[:, 0]
    if site.size and (site.min() < 0 or site.max() >= n_sites):
        raise ValueError(
            f"spike record site index out of range [0, {n_sites}) for a lattice of "
            f"shape {d.global_shape}"
        )
    position = np.stack(np.unravel_index(site, d.global_shape), axis=1).astype(np.int64)
    start = np.array(d.local_start, dtype=np.int64)
    stop = start + np.array(d.local_shape, dtype=np.int64)
    if np.any((position < start) | (position >= stop)):
        raise ValueError(
            f"spike records name sites outside rank {d.rank}'s block "
            f"{d.local_slices} of the lattice of shape {d.global_shape}"
        )

    h = d.halo_width
    n_own = records.shape[0]
    # Columns: the record, then its unwrapped lattice coordinates.
    held = np.concatenate([records, position], axis=1)
    for axis in range(d.ndim if h > 0 else 0):
        n = d.global_shape[axis]
        lower, upper = d.neighbours[axis]
        along = held[:, n_columns + axis]
        top = held[along >= stop[axis] - h]
        bottom = held[along < start[axis] + h]
        if d.periodic and d.coords[axis] == d.dims[axis] - 1:
            top[:, n_columns + axis] -= n
        if d.periodic and d.coords[axis] == 0:
            bottom[:, n_columns + axis] += n
        from_lower = _shift(d, top, upper, lower)
        from_upper = _shift(d, bottom, lower, upper)
        held = np.concatenate([held, from_lower, from_upper], axis=0)

    halo = held[n_own:]
    halo_records = halo[:, :n_columns]
    halo_cells = np.ravel_multi_index(
        tuple((halo[:, n_columns:] - start + h).T), d.with_halo_shape
    ).astype(np.int64)
    order = np.lexsort((halo_cells, *halo_records.T[::-1]))
    return np.ascontiguousarray(halo_records[order]), halo_cells[order]
