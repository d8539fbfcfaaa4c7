"""Spike delivery into per-delay ring buffers of input counts.

The ring buffer holds, for every local neuron ``n`` and source type ``b``, the
number of type-``b`` spikes that arrive during each of the next ``n_slots``
steps (row ``t % n_slots`` for step ``t``). A spike emitted in step ``s`` over a
synapse of delay ``d`` adds 1 to row ``(s + d) % n_slots``.

The buffer counts spikes as integers and the neuron update multiplies by
``J_ab`` when it reads them: integer sums do not depend on the order in which
spikes arrive (own spikes first or the neighbours', one block or another), so the
input, and with it every record, is bitwise the same on any decomposition.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["spike_list", "deliver", "deliver_reference"]


@njit(cache=True)
def spike_list(step0, spiked, counts, type_offset):
    """The spikes flagged in ``spiked``, in step order, then neuron order (numba kernel).

    Parameters
    ----------
    step0 : int
        Step of row 0 of ``spiked``.
    spiked : ndarray of uint8, shape (nsteps, n_local)
        Spike flags (:func:`~meshfield.micro.neurons.advance_neurons`).
    counts : ndarray, shape (nsteps, n_types, n_sites)
        Spike counts per site and type of the same block: groups without spikes
        are not scanned.
    type_offset : ndarray of int64, shape (n_types + 1,)

    Returns
    -------
    steps, neurons : ndarray of int64, shape (n_spikes,)
        Step and local neuron index of each spike.
    """
    nsteps, n_types, n_sites = counts.shape
    n_per_site = type_offset[n_types]
    total = 0
    for k in range(nsteps):
        for a in range(n_types):
            for s in range(n_sites):
                total += np.int64(counts[k, a, s])
    steps = np.empty(total, dtype=np.int64)
    neurons = np.empty(total, dtype=np.int64)
    e = 0
    for k in range(nsteps):
        for s in range(n_sites):
            for a in range(n_types):
                if counts[k, a, s] == 0.0:
                    continue
                first = s * n_per_site + type_offset[a]
                for n in range(first, first + type_offset[a + 1] - type_offset[a]):
                    if spiked[k, n]:
                        steps[e] = step0 + k
                        neurons[e] = n
                        e += 1
    return steps, neurons


@njit(cache=True)
def deliver(keys, steps, out_ptr, out_col, out_delay, ring):
    """Add the spikes of source keys ``keys`` emitted in ``steps`` to ``ring``
    (numba kernel).

    Parameters
    ----------
    keys : ndarray of int64, shape (n_spikes,)
        Source keys (:mod:`meshfield.micro.connectivity`).
    steps : ndarray of int64, shape (n_spikes,)
        Step in which each spike was emitted.
    out_ptr, out_col, out_delay :
        The outgoing table (:class:`~meshfield.micro.connectivity.Connectivity`).
    ring : ndarray of int32, shape (n_slots, n_columns)
        Input counts, updated in place; ``n_slots`` must exceed every delay.
    """
    n_slots = ring.shape[0]
    for e in range(keys.size):
        key = keys[e]
        base = steps[e] % n_slots
        for p in range(out_ptr[key], out_ptr[key + 1]):
            slot = base + np.int64(out_delay[p])
            if slot >= n_slots:
                slot -= n_slots
            ring[slot, out_col[p]] += 1


def deliver_reference(keys, steps, out_ptr, out_col, out_delay, ring):
    """Pure-NumPy reference of :func:`deliver`."""
    counts = np.diff(out_ptr)[keys]
    first = np.repeat(out_ptr[keys], counts)
    within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    p = first + within
    slot = (np.repeat(steps, counts) + out_delay[p].astype(np.int64)) % ring.shape[0]
    np.add.at(ring, (slot, out_col[p]), 1)
