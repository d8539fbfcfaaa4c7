"""The microscopic network on one rank's block: neurons, synapses, delivery, exchange.

A block of ``nsteps <= d_min`` steps runs in three stages:

1. :func:`~meshfield.micro.neurons.advance_neurons` updates every local neuron
   over the whole block; all the block's input is already in the ring buffer,
   because every delay is at least ``d_min`` steps;
2. the block's spikes are delivered to the local targets
   (:func:`~meshfield.micro.delivery.deliver`), including those that see the
   source through a halo cell mirroring an own site (periodic axes held by one
   rank, :meth:`~meshfield.micro.connectivity.BlockGeometry.source_cells`);
   the spikes of sites within ``halo_width`` of the block edge are kept for the
   exchange;
3. :meth:`MicroModel.exchange` (collective) sends the kept spikes to the ranks
   whose halo holds their sites (:func:`meshfield.parallel.exchange_spikes`) and
   delivers the spikes received from the neighbours. On one rank there is
   nothing to exchange.

A spike of step ``s`` over a delay ``d >= d_min`` acts in step ``s + d``, which
lies beyond the block, so both deliveries happen in time.
"""

from __future__ import annotations

import math

import numpy as np

from ..config import Config, refractory_steps
from ..coupling import max_delay, min_delay
from ..lattice import Lattice
from ..parallel import exchange_spikes, halo_cells_sent, neighbour_faces
from ..parallel.spikes import exchange_spikes_bytes
from ..stimulus import Stimulus
from .connectivity import BlockGeometry, build_connectivity, key_dtype
from .delivery import deliver, spike_list
from .neurons import NeuronLayout, NeuronState, advance_neurons, advance_neurons_serial, neuron_parameters

__all__ = ["MicroModel", "mean_field_rate", "rate_bound", "resources"]

#: int64 columns of an exchanged spike record: global site, neuron within the site, step
RECORD_COLUMNS = 3

#: the memory estimate counts a block's spikes at this multiple of the stationary
#: rate (at most :func:`rate_bound`): the first blocks fire faster (17 % above it
#: in the default network with 200 ms delays), and the allocator keeps freed
#: spike arrays of one block, tens of MiB, in its heap rather than returning them
#: (measured with 200 ms delays on 2 and 4 ranks: 33 and 19 MiB above the arrays
#: alive at once; docs/hpc.md)
SPIKE_MARGIN = 2.0


def mean_field_rate(config: Config) -> tuple[float | None, str | None]:
    """Mean stationary rate (Hz, averaged over neurons) of the homogeneous mean-field
    state of the micro level (its step-end hazard rule) and None; or None and the
    theory's message when it finds none. Takes from milliseconds to seconds (long
    adaptation at small dt)."""
    from ..theory import TheoryInputError, stationary_rates_network
    types = config.types
    T = len(types)
    J = np.zeros((T, T))
    C = np.zeros((T, T))
    for c in config.couplings:
        J[types.index(c.target), types.index(c.source)] = c.J
        C[types.index(c.target), types.index(c.source)] = c.C
    try:
        state = stationary_rates_network(list(config.populations), J, C, dt=config.run.dt,
                                         hazard_rule="endpoint")
    except TheoryInputError as error:  # no state
        return None, str(error)
    N = np.array([p.N for p in config.populations], dtype=float)
    return float(np.dot(state.rates, N) / N.sum()), None


def rate_bound(config: Config) -> float:
    """The highest mean rate (Hz) the neurons can fire at: once per step and
    refractory period (``n_ref + 1`` steps), averaged over neurons. Above any
    stationary rate, and cheap."""
    N = np.array([p.N for p in config.populations], dtype=float)
    per_step = np.array([1.0 / (refractory_steps(p.t_ref, config.run.dt) + 1) for p in config.populations])
    return float(np.dot(per_step, N) / N.sum()) * 1000.0 / config.run.dt


def resources(config: Config, stencils, local_shape, halo_width: int, dims=None, periodic: bool = True,
              rate: float = 0.0) -> dict:
    """Size of the microscopic model on a block, without building it (``meshfield info``).

    Pure function of the configuration, the block shape and ``rate``.

    Parameters
    ----------
    config : Config
    stencils : sequence of Stencil
    local_shape : tuple of int
        Sites of the block per axis.
    halo_width : int
    dims : tuple of int, optional
        The process grid: spikes cross only the faces of the block that have a
        neighbour rank (none on one rank). Default: a neighbour on every face.
    periodic : bool
        With ``dims``: whether the lattice is periodic (an open axis split over
        2 ranks gives each block one neighbour along it).
    rate : float
        Mean stationary rate (Hz) of the neurons (:func:`mean_field_rate`): the
        spike arrays of a block are counted at :data:`SPIKE_MARGIN` times it, at
        most at :func:`rate_bound` (0 leaves them out).

    Returns
    -------
    dict
        ``neurons``, ``synapses``, ``memory_bytes`` (synapse table, neuron state and
        ring buffer), ``peak_bytes`` (``memory_bytes`` plus the incoming synapses,
        a source key (4 bytes; 8 beyond 2**31 keys) and a delay each, held while
        the connectivity is built and inverted), ``bytes_per_synapse`` (synapse table only),
        ``block_steps`` (steps the time loop advances at once), ``block_bytes``
        (the arrays of such a block at their peak, beside ``memory_bytes``:
        ``block_arrays_bytes``, the spike flags of every neuron and step and the
        float64 counts, expectations and drives per site, type and step, plus
        ``spike_bytes``, the block's spikes as lists and, on more than one rank,
        the records exchanged, at ``spike_rate``, the rate counted), and the spike traffic per exchange
        (every ``d_min`` steps) *per Hz of mean rate*:
        ``edge_neurons`` (neurons whose spikes neighbours may need),
        ``spikes_per_exchange_per_hz`` and ``bytes_per_exchange_per_hz`` (an upper
        bound: what :func:`meshfield.parallel.exchange_spikes` forwards from the
        block with the most neighbours on the grid ``dims``).
    """
    local_shape = tuple(int(m) for m in local_shape)
    h = int(halo_width)
    n_sites = math.prod(local_shape)
    N = [p.N for p in config.populations]
    n_types = len(N)
    n_per_site = sum(N)
    neurons = n_sites * n_per_site
    synapses = n_sites * sum(N[s.target] * s.C for s in stencils)
    d_min, d_max = min_delay(stencils), max_delay(stencils)
    delay_bytes = 1 if d_max < 2**8 else 2 if d_max < 2**16 else 4
    n_keys = math.prod(m + 2 * h for m in local_shape) * n_per_site
    n_adapt = max((len(p.tau_theta) for p in config.populations), default=0)
    table = 8 * (n_keys + 1) + (4 + delay_bytes) * synapses
    state = neurons * 8 * (2 + n_types + n_adapt) + (d_max + 1) * neurons * n_types * 4
    ndim = len(local_shape)
    if dims is None:
        dims, periodic = (3,) * ndim, True  # neighbours on every face
    inner = math.prod(max(m - neighbour_faces(p, periodic) * h, 0) for m, p in zip(local_shape, dims))
    edge_neurons = (n_sites - inner) * n_per_site if h else 0
    block_s = d_min * config.run.dt * 1e-3
    forwarded_sites = halo_cells_sent(local_shape, dims, periodic, h)
    spike_rate = min(SPIKE_MARGIN * float(rate), rate_bound(config))
    block, arrays, spikes = _block_bytes(config, local_shape, h, dims, periodic, d_min, d_max, spike_rate)
    return dict(
        neurons=neurons, synapses=synapses, memory_bytes=table + state,
        peak_bytes=table + state + (np.dtype(key_dtype(n_keys)).itemsize + delay_bytes) * synapses,
        bytes_per_synapse=table / synapses if synapses else 0.0, edge_neurons=edge_neurons,
        spikes_per_exchange_per_hz=edge_neurons * block_s,
        bytes_per_exchange_per_hz=forwarded_sites * n_per_site * block_s * 8 * RECORD_COLUMNS,
        block_steps=block, block_arrays_bytes=arrays, spike_bytes=spikes, block_bytes=arrays + spikes,
        spike_rate=spike_rate,
    )


def _block_bytes(config: Config, local_shape, h: int, dims, periodic: bool, d_min: int, d_max: int,
                 rate: float) -> tuple[int, int, int]:
    """The time loop's block (steps) and the bytes of its arrays at their peak
    beside the model's state: those known before the run, and those of the
    block's spikes at ``rate`` Hz (the rest of the peak).

    Per block :meth:`MicroModel.advance` holds a spike flag per neuron and step,
    the drive, counts and expectations per site, type and step (float64), and
    the time loop its own counts and expectations; the recorded voltages (float64
    per step, site, type and recorded neuron) of this block and the last. Then
    the spikes, counted per spike in int64 words as the code makes them: step and
    neuron (2), site and neuron within it (2), two temporaries of the delivery's
    source keys (2), and with the exchange an edge flag (1 byte) and the outbox of
    the edge sites' spikes (3 columns) built from three temporary columns, with
    spike recording the type, index, flag and the 4 columns of the recorded ones
    (this block's, its temporaries and the last block's). :meth:`MicroModel.exchange`
    holds the outbox and what :func:`~meshfield.parallel.spikes.exchange_spikes_bytes`
    counts, which ends with the records and cells received, all the delivery
    holds (it makes the source keys in the cells' array); the advance's arrays
    are gone by then. The spikes per site are those of a
    homogeneous rate; the recorded ones fire at the mean rate.
    """
    from ..simulation import loop_block_steps  # (simulation imports this module lazily)
    n_sites = math.prod(local_shape)
    n_types = len(config.populations)
    n_per_site = sum(p.N for p in config.populations)
    block = min(loop_block_steps(None, d_min), config.n_records * config.record_every)
    per_site_type = 8 * block * n_types * n_sites
    V = config.record.voltage_neurons
    loop = 2 * per_site_type  # the time loop's counts and expectations
    model = block * n_sites * n_per_site + 3 * per_site_type + 2 * V * per_site_type
    # spikes of one block, per site (homogeneous), of the edge sites and of the recorded neurons
    per_site = rate * n_per_site * block * config.run.dt * 1e-3
    exchanges = h > 0 and d_max > 0 and math.prod(dims) > 1
    edge_sites = n_sites - math.prod(max(m - 2 * h, 0) for m in local_shape) if exchanges else 0
    n_spikes, n_edge = per_site * n_sites, per_site * edge_sites
    k = config.record.spikes_per_site
    n_recorded = (rate * sum(min(k, p.N) for p in config.populations) * n_sites * block * config.run.dt * 1e-3)
    advance = max(48 * n_spikes, 33 * n_spikes + 48 * n_edge,
                  50 * n_spikes + 24 * n_edge + 96 * n_recorded if k else 0)
    exchange = 0.0
    if exchanges:
        peak, _ = exchange_spikes_bytes(local_shape, dims, periodic, h, RECORD_COLUMNS)
        exchange = 24 * n_edge + per_site * peak
    arrays = loop + model
    total = loop + max(model + advance, exchange)
    return block, arrays, int(math.ceil(total - arrays))


class MicroModel:
    """The GLIF neurons of all types at the sites of one block and their inputs.

    Construction draws the incoming synapses of the local neurons (not
    collective).

    Parameters
    ----------
    config : Config
    decomposition : meshfield.parallel.Decomposition
        This rank's block; its halo must cover every stencil. :meth:`exchange`
        is collective over its communicator.
    stencils : sequence of :class:`~meshfield.coupling.Stencil`

    Attributes
    ----------
    d_min : int
        Smallest delay (steps): the longest block :meth:`advance` accepts; 0
        without couplings (any block length).
    n_neurons, n_synapses : int
        Local neurons and their incoming synapses.
    build_seconds : float
        Wall time of the connectivity build (s).
    """

    #: state arrays of :meth:`state_dict` that count steps or spikes, never
    #: negative: a restart refuses a checkpoint with negative values in them
    NONNEGATIVE_STATE = frozenset({"ref", "ring"})

    def __init__(self, config: Config, decomposition, stencils):
        self.config = config
        self.decomposition = decomposition
        self.stencils = tuple(stencils)
        self.dt = config.run.dt
        self.seed = config.run.seed
        self.types = config.types
        self.n_types = len(self.types)
        self.local_shape = tuple(decomposition.local_shape)
        self.geometry = BlockGeometry.of(decomposition)
        J = np.zeros((self.n_types, self.n_types))
        for s in self.stencils:
            J[s.target, s.source] = s.J
        self.params = neuron_parameters(config.populations, J, self.dt)
        self.layout = NeuronLayout.build(self.geometry.global_site(), self.params.N)
        self.state = NeuronState.initial(self.params, self.layout)
        self.d_min = min_delay(self.stencils)
        self.d_max = max_delay(self.stencils)
        self.connectivity = build_connectivity(self.seed, self.stencils, self.layout, self.geometry)
        self.ring = np.zeros((self.d_max + 1, self.layout.n_local * self.n_types), dtype=np.int32)
        # the thread pool pays only when every thread gets sites (numerics.serial_twin)
        import numba
        serial = self.layout.n_sites < max(2, numba.get_num_threads())
        self._advance_neurons = advance_neurons_serial if serial else advance_neurons
        self.stimulus = Stimulus(config, Lattice.from_config(config.lattice),
                                 decomposition.local_start, self.local_shape)
        self.spikes_per_site = config.record.spikes_per_site
        self.voltage_neurons = config.record.voltage_neurons
        self._site_cell = self.geometry.interior_cells()
        self._edge_site = self._edge_sites()
        # spikes cross to other ranks: with a halo, couplings and more than one rank
        self._exchanges = bool(self.geometry.halo_width and self.d_max and decomposition.size > 1)
        self._outbox = np.zeros((0, RECORD_COLUMNS), dtype=np.int64)
        self._recorded_spikes = np.zeros((0, 4), dtype=np.int64)
        self._voltage = (0, np.zeros((0, self.n_types, self.layout.n_sites, self.voltage_neurons)))
        self.spikes_sent = 0
        self.spikes_received = 0

    # ------------------------------------------------------------------ sizes
    @property
    def n_neurons(self) -> int:
        return self.layout.n_local

    @property
    def n_synapses(self) -> int:
        return self.connectivity.n_synapses

    @property
    def build_seconds(self) -> float:
        return self.connectivity.build_seconds

    def memory_bytes(self) -> int:
        """Bytes held by neuron state, ring buffer and synapse table of this block."""
        s = self.state
        return (s.u.nbytes + s.y.nbytes + s.q.nbytes + s.ref.nbytes + self.ring.nbytes
                + self.connectivity.nbytes)

    def _edge_sites(self) -> np.ndarray:
        """Local sites whose spikes some halo may need: those within ``halo_width``
        of the block edge along some axis. Shape ``(n_sites,)``, bool."""
        h = self.geometry.halo_width
        local = self.geometry.site_coords() - np.array(self.geometry.local_start)
        shape = np.array(self.local_shape)
        return np.any((local < h) | (local >= shape - h), axis=1)

    # ------------------------------------------------------------------ time loop
    def advance(self, step0: int, nsteps: int, counts_out: np.ndarray, expected_out: np.ndarray) -> None:
        """Simulate steps ``step0 .. step0 + nsteps - 1`` and deliver their spikes to
        the local targets.

        Parameters
        ----------
        step0, nsteps : int
            ``nsteps <= d_min`` (any when there are no couplings).
        counts_out, expected_out : ndarray of float64, shape (nsteps, n_types, *local_shape)
            Receive the spike count of every local site and type per step, and
            its expectation ``sum_i P_i`` (the probabilities of firing of the
            non-refractory neurons).
        """
        if self.d_min and nsteps > self.d_min:
            raise ValueError(f"advance: nsteps = {nsteps} exceeds the minimal delay d_min = {self.d_min}")
        p, lay, st = self.params, self.layout, self.state
        n_sites = lay.n_sites
        mu = np.ascontiguousarray(self.stimulus.mu_block(step0, nsteps))
        spiked = np.empty((nsteps, lay.n_local), dtype=np.uint8)
        counts = np.empty((nsteps, self.n_types, n_sites))
        expected = np.empty((nsteps, self.n_types, n_sites))
        volt = np.full((nsteps, self.n_types, n_sites, self.voltage_neurons), np.nan)
        self._advance_neurons(step0, nsteps, self.seed, lay.global_site, lay.type_offset, st.u, st.y, st.q,
                        st.ref, self.ring, mu, p.P_mm, p.P_ss, p.P_sm, p.P_im, p.J_over_dt, p.u_reset,
                        p.u_th, p.inv_delta_u, p.c_per_ms, p.n_ref, p.q_decay, p.q_jump, p.dt, spiked,
                        counts, expected, volt)
        counts_out[...] = counts.reshape(counts_out.shape)
        expected_out[...] = expected.reshape(expected_out.shape)
        self._voltage = (step0, volt)

        step, n = spike_list(step0, spiked, counts, lay.type_offset)
        site = n // lay.n_per_site
        within = n - site * lay.n_per_site
        if self.d_max:
            deliver(self._site_cell[site] * lay.n_per_site + within, step, self.connectivity.out_ptr,
                    self.connectivity.out_col, self.connectivity.out_delay, self.ring)
        if self._exchanges:  # (one rank has nothing to send: no outbox to build and hold)
            edge = self._edge_site[site]
            self._outbox = np.stack([lay.global_site[site[edge]], within[edge], step[edge]], axis=1)
        if self.spikes_per_site:
            a = np.searchsorted(lay.type_offset, within, side="right") - 1
            i = within - lay.type_offset[a]
            keep = i < self.spikes_per_site
            self._recorded_spikes = np.stack([step[keep], lay.global_site[site[keep]], a[keep], i[keep]],
                                             axis=1)

    def exchange(self) -> None:
        """Send the edge sites' spikes of the last block to the ranks whose halo
        holds them and deliver the spikes received. Collective."""
        if not self._exchanges:
            return  # the same on every rank: no rank enters the collective
        # Delivery adds integer counts, so the order of the records does not matter.
        records, cells = exchange_spikes(self.decomposition, self._outbox, sort=False)
        self.spikes_sent += len(self._outbox)
        self.spikes_received += len(records)
        keys = cells  # (the exchange's own array: the source keys are made in place)
        keys *= self.layout.n_per_site
        keys += records[:, 1]
        deliver(keys, records[:, 2], self.connectivity.out_ptr, self.connectivity.out_col,
                self.connectivity.out_delay, self.ring)
        # a new empty array: a view ([:0]) kept the block's records alive through the next block
        self._outbox = np.zeros((0, RECORD_COLUMNS), dtype=np.int64)

    # ------------------------------------------------------------------ recording
    def recorded_spikes(self) -> np.ndarray:
        """Spikes of the last block of the recorded neurons (``i < record.spikes_per_site``
        of every type at every local site).

        Returns
        -------
        ndarray of int64, shape (n_spikes, 4)
            Columns: step, global site index, type, neuron index within its
            site and type; sorted by step, then site, type and neuron.
        """
        return self._recorded_spikes

    def recorded_voltage(self) -> tuple[int, np.ndarray]:
        """Membrane potentials of the last block of neurons ``i < record.voltage_neurons``
        of every type at every local site.

        Returns
        -------
        step0 : int
            First step of the block.
        u : ndarray, shape (nsteps, n_types, *local_shape, voltage_neurons)
            ``u`` (mV) at the end of each step, after a reset; NaN where a type
            has fewer neurons per site.
        """
        step0, volt = self._voltage
        return step0, volt.reshape((volt.shape[0], self.n_types) + self.local_shape + (volt.shape[3],))

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self, copy: bool = True) -> dict:
        """The dynamic state, with the local sites as leading axes ``local_shape``
        so that a checkpoint can be re-read on another decomposition.

        Valid between :meth:`exchange` and the next :meth:`advance` (then the
        ring buffer holds every pending input). The synapses are not part of it:
        they are a pure function of the seed and the configuration. With
        ``copy=False`` the arrays are views of the model's own where they can be
        (all but the ring buffer), which the next :meth:`advance` changes.

        Returns
        -------
        dict of ndarray
            ``u`` (*local_shape, n_per_site), ``y`` (..., n_types), ``q``
            (..., n_adapt), ``ref`` (*local_shape, n_per_site) and ``ring``
            (*local_shape, n_per_site, n_slots, n_types) with slot ``t % n_slots``
            holding the input of step ``t``; ``stimulus/ou_<i>`` (*local_shape) the
            states of Ornstein-Uhlenbeck stimuli.
        """
        s, lay = self.state, self.layout
        site_shape = self.local_shape + (lay.n_per_site,)
        ring = self.ring.reshape(self.ring.shape[0], lay.n_local, self.n_types).transpose(1, 0, 2)
        out = dict(u=s.u.reshape(site_shape), y=s.y.reshape(site_shape + (-1,)),
                   q=s.q.reshape(site_shape + (s.q.shape[1],)), ref=s.ref.reshape(site_shape),
                   ring=ring.reshape(site_shape + ring.shape[1:]))
        if copy:
            out = {name: a.copy() for name, a in out.items()}
        out.update(self.stimulus.state_dict(copy))
        return out

    def load_state_dict(self, d: dict) -> None:
        """Restore the state of :meth:`state_dict` (arrays of this block)."""
        s, lay = self.state, self.layout
        n = lay.n_local
        s.u[:] = np.asarray(d["u"]).reshape(n)
        s.y[:] = np.asarray(d["y"]).reshape(s.y.shape)
        s.q[:] = np.asarray(d["q"]).reshape(s.q.shape)
        s.ref[:] = np.asarray(d["ref"]).reshape(n)
        ring = np.asarray(d["ring"]).reshape(n, self.ring.shape[0], self.n_types)
        self.ring[:] = ring.transpose(1, 0, 2).reshape(self.ring.shape)
        self.stimulus.load_state_dict(d)
