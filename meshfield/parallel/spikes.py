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

import math

import numpy as np
from mpi4py import MPI
from numba import njit

from .decomposition import Decomposition, neighbour_faces

__all__ = ["exchange_spikes", "exchange_spikes_bytes"]

_COUNT_TAG = 100
_DATA_TAG = 101

# Error codes of _unwrapped_records.
_SITE_OUT_OF_RANGE = 1
_SITE_OUTSIDE_BLOCK = 2


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


# The per-record work below runs once per exchange, i.e. every d_min steps, on a
# few hundred records: compiled, it costs microseconds where the equivalent
# chain of small NumPy calls cost most of a millisecond.


@njit(cache=True)
def _unwrapped_records(records, global_shape, start, stop):
    """The records with their lattice coordinates appended as extra columns,
    and an error code (0, or a site out of range / outside the block)."""
    n, n_columns = records.shape
    ndim = global_shape.size
    held = np.empty((n, n_columns + ndim), dtype=np.int64)
    n_sites = 1
    for k in range(ndim):
        n_sites *= global_shape[k]
    for i in range(n):
        site = records[i, 0]
        if site < 0 or site >= n_sites:
            return held, _SITE_OUT_OF_RANGE
        for c in range(n_columns):
            held[i, c] = records[i, c]
        rest = site
        for k in range(ndim - 1, -1, -1):
            x = rest % global_shape[k]
            rest //= global_shape[k]
            if x < start[k] or x >= stop[k]:
                return held, _SITE_OUTSIDE_BLOCK
            held[i, n_columns + k] = x
    return held, 0


@njit(cache=True)
def _edge_layers(held, column, below, above, shift_top, shift_bottom):
    """Rows of ``held`` whose coordinate ``column`` is ``>= above`` (``top``) and
    ``< below`` (``bottom``), with that coordinate shifted by ``shift_top`` and
    ``shift_bottom`` (periodic wrap). A row can be in both (thin blocks)."""
    n, width = held.shape
    n_top = 0
    n_bottom = 0
    for i in range(n):
        if held[i, column] >= above:
            n_top += 1
        if held[i, column] < below:
            n_bottom += 1
    top = np.empty((n_top, width), dtype=np.int64)
    bottom = np.empty((n_bottom, width), dtype=np.int64)
    t = 0
    b = 0
    for i in range(n):
        if held[i, column] >= above:
            top[t, :] = held[i, :]
            top[t, column] += shift_top
            t += 1
        if held[i, column] < below:
            bottom[b, :] = held[i, :]
            bottom[b, column] += shift_bottom
            b += 1
    return top, bottom


@njit(cache=True)
def _halo_cells(halo, n_columns, start, halo_width, with_halo_shape):
    """Flat C-order index into ``with_halo_shape`` of each row's (unwrapped) coordinates."""
    n = halo.shape[0]
    ndim = with_halo_shape.size
    cells = np.empty(n, dtype=np.int64)
    for i in range(n):
        flat = 0
        for k in range(ndim):
            flat = flat * with_halo_shape[k] + (halo[i, n_columns + k] - start[k] + halo_width)
        cells[i] = flat
    return cells


def exchange_spikes_bytes(local_shape, dims, periodic: bool, halo_width: int,
                          n_columns: int) -> tuple[int, int]:
    """The arrays :func:`exchange_spikes` holds at once on a block of ``local_shape``
    on the grid ``dims`` when every site of the block has one record (pure; linear
    in the records per site, so scale the result by them).

    Follows the function step by step: along each axis the edge layers (``top``,
    ``bottom``) are copied out of the held records, the neighbours' layers come
    in, and the held records are concatenated with them, while the previous
    axis's layers are still bound; an axis held by one rank on a periodic lattice
    mirrors the block's own layers (no message, the same arrays); every
    neighbour's layer has as many sites as the block's own (neighbours along an
    axis share the block's extent along the others). The records per site are
    taken to be the same everywhere, as at a homogeneous rate. Counted from the
    sites within ``halo_width`` of the block edge, whose records the model hands
    in (that input itself is not counted).

    Returns
    -------
    peak_bytes : int
        Largest total of the arrays alive at once (rows of ``n_columns`` plus the
        lattice coordinates, int64), including the records and cells returned.
    halo_rows : int
        Rows returned (records of the halo), per record per site.
    """
    local_shape = [int(m) for m in local_shape]
    h = int(halo_width)
    if h == 0:
        return 0, 0
    row = 8 * (n_columns + len(local_shape))
    held = math.prod(local_shape) - math.prod(max(m - 2 * h, 0) for m in local_shape)
    own = held
    extent = list(local_shape)
    previous = 0  # rows of the previous axis's layers, still bound
    peak = 0
    for k, p in enumerate(dims):
        layer = h * math.prod(extent[:k] + extent[k + 1:])
        if p == 1:  # periodic: the own layers mirrored, no copy; open: nothing arrives
            faces, arrived = (2, 0) if periodic else (0, 0)
            grown = 2 * layer if periodic else 0
        else:
            faces = neighbour_faces(p, periodic)
            arrived = grown = faces * layer
        peak = max(peak, held + previous + 2 * layer,               # the new layers copied out
                   held + 2 * layer + arrived + held + grown)       # the concatenation
        previous = 2 * layer + arrived
        held += grown
        extent[k] += faces * h
    halo = held - own
    end = row * (held + previous) + 8 * (n_columns + 1) * halo  # the records and cells returned
    return max(row * peak, end), halo


def exchange_spikes(
    decomposition: Decomposition, records: np.ndarray, *, sort: bool = True
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
    sort : bool
        Sort the output as described below (default). A caller whose use of the
        records does not depend on their order (the microscopic delivery adds
        integer counts) passes False and gets them in arrival order, which
        depends on the process grid.

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
    start = np.array(d.local_start, dtype=np.int64)
    stop = start + np.array(d.local_shape, dtype=np.int64)
    held, error = _unwrapped_records(records, np.array(d.global_shape, dtype=np.int64), start, stop)
    if error == _SITE_OUT_OF_RANGE:
        raise ValueError(
            f"spike record site index out of range [0, {int(np.prod(d.global_shape))}) for a "
            f"lattice of shape {d.global_shape}"
        )
    if error == _SITE_OUTSIDE_BLOCK:
        raise ValueError(
            f"spike records name sites outside rank {d.rank}'s block "
            f"{d.local_slices} of the lattice of shape {d.global_shape}"
        )

    # Columns: the record, then its unwrapped lattice coordinates.
    h = d.halo_width
    n_own = records.shape[0]
    for axis in range(d.ndim if h > 0 else 0):
        n = d.global_shape[axis]
        lower, upper = d.neighbours[axis]
        wraps_top = d.periodic and d.coords[axis] == d.dims[axis] - 1
        wraps_bottom = d.periodic and d.coords[axis] == 0
        top, bottom = _edge_layers(
            held, n_columns + axis, start[axis] + h, stop[axis] - h,
            -n if wraps_top else 0, n if wraps_bottom else 0,
        )
        from_lower = _shift(d, top, upper, lower)
        from_upper = _shift(d, bottom, lower, upper)
        held = np.concatenate([held, from_lower, from_upper])

    halo = held[n_own:]
    halo_records = np.ascontiguousarray(halo[:, :n_columns])
    halo_cells = _halo_cells(halo, n_columns, start, h, np.array(d.with_halo_shape, dtype=np.int64))
    if not sort:
        return halo_records, halo_cells
    order = np.lexsort((halo_cells, *halo_records.T[::-1]))
    return halo_records[order], halo_cells[order]
