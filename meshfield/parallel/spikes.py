"""Sparse halo exchange of spike records for the microscopic level (MODEL.md §7).

Each rank knows the spikes of the neurons at its own sites. A neuron's targets lie
within ``halo_width`` sites, so each rank needs the spikes of every site in its
halo. :func:`exchange_spikes` forwards records axis by axis, exactly like the dense
:meth:`~meshfield.parallel.decomposition.Decomposition.exchange`: along axis
``k`` a rank sends the records of its ``halo_width`` outermost layers (including
what it has received along the axes before ``k``) to each neighbour, so records
of diagonal neighbours arrive in two hops. Messages have variable length: a count
is exchanged first, then the records.

While it travels, a record's site (column 0) is replaced by its *unwrapped*
position: its lattice coordinates (shifted by the lattice size when it crosses a
periodic edge) packed into one int64, a frame common to all ranks. From it the
receiver knows in which halo cell the record lies, even when the same site is
mirrored by two halo cells (small periodic lattices), and the site is restored at
the end. So a record travels and is held in its own ``n_columns`` words, with no
coordinate columns.
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

# Error codes of _positions.
_SITE_OUT_OF_RANGE = 1
_SITE_OUTSIDE_BLOCK = 2

# Selects no row as an edge layer (no neighbour on that side).
_NONE_BELOW = np.iinfo(np.int64).min
_NONE_ABOVE = np.iinfo(np.int64).max


def _new_rows(n: int, width: int) -> np.ndarray:
    """An uninitialised int64 array of ``n`` records (every row buffer of the
    exchange is made here; tests/test_memory_exchange.py traces them)."""
    return np.empty((n, width), dtype=np.int64)


def _exchange_count(decomposition: Decomposition, n_out: int, dest: int, source: int) -> int:
    """Send ``n_out`` to ``dest``; the count received from ``source`` (0 across an open edge)."""
    count_out = np.array([n_out], dtype=np.int64)
    count_in = np.zeros(1, dtype=np.int64)
    decomposition.comm.Sendrecv(count_out, dest, _COUNT_TAG, count_in, source, _COUNT_TAG)
    if dest != MPI.PROC_NULL:
        decomposition.bytes_sent += count_out.nbytes
    return int(count_in[0])


def _send_rows(decomposition: Decomposition, rows: np.ndarray, dest: int, into: np.ndarray,
               source: int) -> None:
    """Send ``rows`` to ``dest`` and receive ``into`` (as many rows as the count
    said) from ``source``."""
    decomposition.comm.Sendrecv(rows, dest, _DATA_TAG, into, source, _DATA_TAG)
    if dest != MPI.PROC_NULL:
        decomposition.bytes_sent += rows.nbytes


# The per-record work below runs once per exchange, i.e. every d_min steps, on a
# few hundred records: compiled, it costs microseconds where the equivalent
# chain of small NumPy calls cost most of a millisecond. A record's unwrapped
# position packs ``x + halo_width`` of each axis into a bit field (the last axis
# in the lowest bits), so a coordinate costs a shift and a mask, and crossing a
# periodic edge adds ``±n`` to one field (it stays within it: ``0 <= x +
# halo_width < n + 2 halo_width``).


@njit(cache=True)
def _positions(records, global_shape, start, stop, h, offsets):
    """The unwrapped position of each record's site, and 0 or an error code (a
    site out of range / outside the block)."""
    n_sites = 1
    for k in range(global_shape.size):
        n_sites *= global_shape[k]
    g = np.empty(records.shape[0], dtype=np.int64)
    for i in range(records.shape[0]):
        site = records[i, 0]
        if site < 0 or site >= n_sites:
            return g, _SITE_OUT_OF_RANGE
        position = 0
        for k in range(global_shape.size - 1, -1, -1):
            x = site % global_shape[k]
            site //= global_shape[k]
            if x < start[k] or x >= stop[k]:
                return g, _SITE_OUTSIDE_BLOCK
            position |= (x + h) << offsets[k]
        g[i] = position
    return g, 0


@njit(cache=True)
def _count_layers(own, halo, offset, mask, h, below, above):
    """Rows (positions ``own``, then the rows of ``halo``) whose coordinate (the
    bit field at ``offset``) is ``>= above`` (the top layers) and ``< below``
    (the bottom layers)."""
    n_top = 0
    n_bottom = 0
    for i in range(own.size + halo.shape[0]):
        g = own[i] if i < own.size else halo[i - own.size, 0]
        x = ((g >> offset) & mask) - h
        if x >= above:
            n_top += 1
        if x < below:
            n_bottom += 1
    return n_top, n_bottom


@njit(cache=True)
def _copy_layers(records, own, halo, offset, mask, h, below, above, shift_top, shift_bottom, top, bottom):
    """Fill ``top`` and ``bottom`` (sized by :func:`_count_layers`) with those rows
    of ``records`` (at positions ``own``) and ``halo``, column 0 the position,
    the coordinate shifted by ``shift_top`` and ``shift_bottom`` (periodic
    wrap). A row can be in both (thin blocks)."""
    t = 0
    b = 0
    for i in range(own.size + halo.shape[0]):
        if i < own.size:
            row = records[i]
            g = own[i]
        else:
            row = halo[i - own.size]
            g = row[0]
        x = ((g >> offset) & mask) - h
        if x >= above:
            top[t, :] = row
            top[t, 0] = g + (shift_top << offset)
            t += 1
        if x < below:
            bottom[b, :] = row
            bottom[b, 0] = g + (shift_bottom << offset)
            b += 1


@njit(cache=True)
def _finish(halo, start, h, global_shape, with_halo_shape, offsets, masks):
    """Restore the sites of the halo rows (column 0, in place) and return the flat
    C-order index into ``with_halo_shape`` of the halo cell each row lies in."""
    cells = np.empty(halo.shape[0], dtype=np.int64)
    for i in range(halo.shape[0]):
        g = halo[i, 0]
        site = 0
        cell = 0
        for k in range(global_shape.size):
            x = ((g >> offsets[k]) & masks[k]) - h
            cell = cell * with_halo_shape[k] + (x - start[k] + h)
            n = global_shape[k]
            site = site * n + (x % n if x < 0 or x >= n else x)
        halo[i, 0] = site
        cells[i] = cell
    return cells


def exchange_spikes_bytes(local_shape, dims, periodic: bool, halo_width: int,
                          n_columns: int) -> tuple[int, int]:
    """The arrays :func:`exchange_spikes` holds at once on a block of ``local_shape``
    on the grid ``dims`` when every site of the block has one record (pure; linear
    in the records per site, so scale the result by them).

    Follows the function step by step: the unwrapped position of each record of
    the block (one int64) is held until the last axis is done; along each axis
    the halo rows received so far are copied into a new array with room for what
    arrives (both alive at once), then the edge layers sent are copied out of the
    block's records and those halo rows (a layer per neighbour face; an axis held
    by one rank on a periodic lattice copies its own layers straight into the new
    array and sends nothing); at the end the cells are computed beside the halo
    rows. Every
    neighbour's layer has as many sites as the block's own (neighbours along an
    axis share the block's extent along the others). The records per site are
    taken to be the same everywhere, as at a homogeneous rate. The records handed
    in are not counted.

    Returns
    -------
    peak_bytes : int
        Largest total of the arrays alive at once (rows of ``n_columns`` int64
        and the positions), including the records and cells returned.
    halo_rows : int
        Rows returned (records of the halo), per record per site.
    """
    h = int(halo_width)
    if h == 0:
        return 0, 0
    local_shape = [int(m) for m in local_shape]
    own = math.prod(local_shape) - math.prod(max(m - 2 * h, 0) for m in local_shape)
    held = 0  # halo rows so far
    extent = list(local_shape)
    peak = 0
    for k, p in enumerate(dims):
        layer = h * math.prod(extent[:k] + extent[k + 1:])
        if p == 1:  # periodic: the own layers mirrored, copied straight in; open: nothing
            faces, sent = (2, 0) if periodic else (0, 0)
        else:
            faces = neighbour_faces(p, periodic)
            sent = faces * layer
        arrived = faces * layer
        if arrived:
            peak = max(peak, held + held + arrived)  # the old rows and the new array
        held += arrived
        peak = max(peak, held + sent)  # the layers copied out
        extent[k] += faces * h
    return max(8 * n_columns * peak + 8 * own, 8 * (n_columns + 1) * held), held


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
    h = d.halo_width
    global_shape = np.array(d.global_shape, dtype=np.int64)
    start = np.array(d.local_start, dtype=np.int64)
    stop = start + np.array(d.local_shape, dtype=np.int64)
    bits = [int(m + 2 * h - 1).bit_length() for m in d.global_shape]
    offsets = np.array([sum(bits[k + 1:]) for k in range(d.ndim)], dtype=np.int64)
    masks = np.array([(1 << b) - 1 for b in bits], dtype=np.int64)
    if sum(bits) > 63:
        raise ValueError(f"a lattice of shape {d.global_shape} with a halo of {h} has too many "
                         f"unwrapped positions for 63 bits")
    own, error = _positions(records, global_shape, start, stop, h, offsets)
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

    # The halo rows received so far (column 0 their unwrapped position), made
    # anew along each axis with room for what arrives: the old rows are copied
    # over and dropped before the edge layers are copied out.
    halo = _new_rows(0, n_columns)
    for axis in range(d.ndim if h > 0 else 0):
        n = d.global_shape[axis]
        lower, upper = d.neighbours[axis]
        wraps_top = d.periodic and d.coords[axis] == d.dims[axis] - 1
        wraps_bottom = d.periodic and d.coords[axis] == 0
        # the top layers go to the upper neighbour, the bottom ones to the lower
        above = stop[axis] - h if upper != MPI.PROC_NULL else _NONE_ABOVE
        below = start[axis] + h if lower != MPI.PROC_NULL else _NONE_BELOW
        select = (offsets[axis], masks[axis], h, below, above)
        shifts = (-n if wraps_top else 0, n if wraps_bottom else 0)
        n_top, n_bottom = _count_layers(own, halo, *select)
        mirrored = upper == d.rank  # one rank along a periodic axis: its own layers arrive
        if mirrored:
            n_from_lower, n_from_upper = n_top, n_bottom
        else:
            n_from_lower = _exchange_count(d, n_top, upper, lower)
            n_from_upper = _exchange_count(d, n_bottom, lower, upper)
        n_old = len(halo)
        if n_from_lower + n_from_upper:
            grown = _new_rows(n_old + n_from_lower + n_from_upper, n_columns)
            grown[:n_old] = halo
            halo = grown
            del grown
        from_lower = halo[n_old:n_old + n_from_lower]
        from_upper = halo[n_old + n_from_lower:]
        if mirrored:  # copied straight into place
            _copy_layers(records, own, halo[:n_old], *select, *shifts, from_lower, from_upper)
        else:
            top, bottom = _new_rows(n_top, n_columns), _new_rows(n_bottom, n_columns)
            _copy_layers(records, own, halo[:n_old], *select, *shifts, top, bottom)
            _send_rows(d, top, upper, from_lower, lower)
            _send_rows(d, bottom, lower, from_upper, upper)
            del top, bottom
        del from_lower, from_upper

    del own
    halo_cells = _finish(halo, start, h, global_shape, np.array(d.with_halo_shape, dtype=np.int64),
                         offsets, masks)
    if not sort:
        return halo, halo_cells
    order = np.lexsort((halo_cells, *halo.T[::-1]))
    return halo[order], halo_cells[order]
