"""Distributed random connectivity of the microscopic network (MODEL.md §3).

Each rank draws only the incoming synapses of its own neurons. For target neuron
``i`` of type ``a`` at global site ``x`` and each coupling ``(a, b)`` of the
configuration, the ``C_ab`` inputs are drawn one after the other; input ``m``
(a counter running over all couplings onto type ``a``, in configuration order)
uses the two uniforms ``j = 0, 1`` of the counter-based tuple
``(seed, STREAM_CONNECT, x, ident(a, i), m)``:

* ``j = 0`` picks the source offset ``o`` with probability ``kappa_ab(o)`` from
  Walker's alias table of the stencil weights (O(1) per draw; on an open lattice
  the table of site ``x`` holds only the offsets with ``x + o`` inside the
  lattice, renormalized);
* ``j = 1`` picks a type-``b`` neuron at ``x + o`` uniformly; when ``b == a``
  and ``o == 0`` it picks among the other ``N_a - 1`` neurons (no autapses).
  Multapses are allowed.

The network is therefore a pure function of the seed and the configuration: the
same on any number of ranks and threads.

Spikes arrive from source neurons, so the synapses are stored *outgoing*, keyed
by the source's position in this rank's array with halo. The key of neuron
``i`` of type ``b`` in halo-array cell ``cell`` (C order over
``with_halo_shape``) is ``cell * n_per_site + type_offset[b] + i``. Every
synapse appears under exactly one key: the cell where its target sees the
source (``target cell + o``), or, when that cell mirrors a site of the rank's
own block (periodic axes held by one rank), the site's interior cell. So a site
mirrored by two halo cells is never double counted, and a rank's own spikes
reach all their local targets without an exchange. For each key the table lists the
ring-buffer column of each target (``n * n_types + b``, see
:mod:`meshfield.micro.neurons`) and the delay in steps, in target order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from ..config import ConfigError
from ..random import STREAM_CONNECT, _uniform_pair, uniform
from .neurons import IDENT_TYPE_STRIDE, NeuronLayout

__all__ = ["BlockGeometry", "Connectivity", "build_connectivity", "draw_incoming",
           "invert_incoming", "draw_incoming_reference"]


@dataclass(frozen=True)
class BlockGeometry:
    """A rank's block of the lattice, without communicator.

    Attributes
    ----------
    global_shape : tuple of int
    periodic : bool
    local_start, local_shape : tuple of int
        First global site and sites per axis of the block.
    halo_width : int
    """

    global_shape: tuple
    periodic: bool
    local_start: tuple
    local_shape: tuple
    halo_width: int

    @classmethod
    def of(cls, decomposition) -> "BlockGeometry":
        """The geometry of a :class:`~meshfield.parallel.Decomposition`."""
        d = decomposition
        return cls(tuple(d.global_shape), bool(d.periodic), tuple(d.local_start),
                   tuple(d.local_shape), int(d.halo_width))

    @property
    def with_halo_shape(self) -> tuple:
        return tuple(m + 2 * self.halo_width for m in self.local_shape)

    def site_coords(self) -> np.ndarray:
        """Global coordinates of the local sites (C order), shape ``(n_sites, ndim)``."""
        grids = np.meshgrid(*[np.arange(s, s + m) for s, m in zip(self.local_start, self.local_shape)],
                            indexing="ij")
        return np.stack([g.ravel() for g in grids], axis=1).astype(np.int64)

    def global_site(self) -> np.ndarray:
        """Global flat index of the local sites (C order), shape ``(n_sites,)``."""
        return np.ravel_multi_index(tuple(self.site_coords().T), self.global_shape).astype(np.int64)

    def halo_strides(self) -> np.ndarray:
        """Flat-index stride of each axis in an array of ``with_halo_shape``."""
        shape = self.with_halo_shape
        return np.array([int(np.prod(shape[k + 1:])) for k in range(len(shape))], dtype=np.int64)

    def interior_cells(self) -> np.ndarray:
        """Flat index, in an array of ``with_halo_shape``, of each local site."""
        local = self.site_coords() - np.array(self.local_start, dtype=np.int64)
        return (local + self.halo_width) @ self.halo_strides()

    def source_cells(self) -> np.ndarray:
        """For every cell of the array with halo, the cell whose key stores the
        synapses from the neurons seen there: the interior cell of the same site
        when this rank owns the site (a halo cell mirroring an own site on a
        periodic axis held by one rank), else the cell itself. Own spikes are
        thus delivered without any exchange, and every synapse stays under one
        key. Shape ``(prod(with_halo_shape),)``. Memory of the order of the
        block with halo (a lookup in the sorted own sites, not a table over
        the whole lattice)."""
        site = self.cell_global_site()
        own = self.global_site()
        order = np.argsort(own, kind="stable")
        own_sorted = own[order]
        at = np.minimum(np.searchsorted(own_sorted, site), own.size - 1)
        mirrored = (site >= 0) & (own_sorted[at] == site)
        cells = np.arange(site.size, dtype=np.int64)
        cells[mirrored] = self.interior_cells()[order[at[mirrored]]]
        return cells

    def cell_global_site(self) -> np.ndarray:
        """Global flat site index of every cell of the array with halo (-1 beyond an
        open edge), shape ``(prod(with_halo_shape),)``."""
        h = self.halo_width
        grids = np.meshgrid(*[np.arange(s - h, s + m + h) for s, m in zip(self.local_start, self.local_shape)],
                            indexing="ij")
        outside = np.zeros(grids[0].shape, dtype=bool)
        coords = []
        for g, n in zip(grids, self.global_shape):
            if self.periodic:
                g = g % n
            else:
                outside |= (g < 0) | (g >= n)
                g = np.clip(g, 0, n - 1)
            coords.append(g)
        index = np.ravel_multi_index(tuple(coords), self.global_shape).astype(np.int64)
        index[outside] = -1
        return index.ravel()


@dataclass(frozen=True)
class Connectivity:
    """The outgoing synapse table of a rank.

    Attributes
    ----------
    out_ptr : ndarray of int64, shape (n_keys + 1,)
        Synapses of source key ``k`` are ``out_ptr[k] .. out_ptr[k + 1] - 1``.
    out_col : ndarray of int32, shape (n_synapses,)
        Ring-buffer column of the target, ``n * n_types + b``.
    out_delay : ndarray of uint8, uint16 or int32, shape (n_synapses,)
        Delay in steps (the smallest type that holds the largest delay).
    n_per_site : int
        Neurons per site (all types); keys are ``cell * n_per_site + ...``.
    build_seconds, build_cpu_seconds : float
        Wall and process CPU time of drawing and inverting (s).
    """

    out_ptr: np.ndarray
    out_col: np.ndarray
    out_delay: np.ndarray
    n_per_site: int
    build_seconds: float
    build_cpu_seconds: float

    @property
    def n_synapses(self) -> int:
        return int(self.out_col.size)

    @property
    def nbytes(self) -> int:
        """Memory of the table (bytes)."""
        return self.out_ptr.nbytes + self.out_col.nbytes + self.out_delay.nbytes

    def incoming(self, n_types: int):
        """Every synapse as ``(source_key, target_neuron, source_type, delay)``,
        four int64 arrays of length ``n_synapses`` ordered by source key (for
        tests and diagnostics)."""
        key = np.repeat(np.arange(self.out_ptr.size - 1, dtype=np.int64), np.diff(self.out_ptr))
        col = self.out_col.astype(np.int64)
        return key, col // n_types, col % n_types, self.out_delay.astype(np.int64)


def key_dtype(n_keys: int):
    """Smallest signed integer type that holds the source keys ``0 .. n_keys - 1``."""
    return np.int32 if n_keys <= 2**31 else np.int64


def _delay_dtype(max_delay: int):
    for dtype in (np.uint8, np.uint16):
        if max_delay <= np.iinfo(dtype).max:
            return dtype
    return np.int32


@njit(cache=True)
def build_alias(w, n, prob, alias):
    """Walker's alias table of the weights ``w[:n]`` (Vose's construction).

    Drawing ``x = u * n`` with ``u`` uniform in (0, 1), ``k = int(x)``, picks
    ``k`` if ``x - k < prob[k]`` and ``alias[k]`` otherwise; index ``i`` then
    has probability ``w[i] / sum(w[:n])`` (exactly, up to rounding). The table
    depends only on ``w[:n]`` in order, so every rank builds the same one.

    Parameters
    ----------
    w : ndarray of float64, shape (>= n,)
        Non-negative weights, not all zero.
    n : int
    prob : ndarray of float64, shape (>= n,)
        Output: acceptance threshold of each column.
    alias : ndarray of int64, shape (>= n,)
        Output: alternative index of each column.
    """
    total = 0.0
    for i in range(n):
        total += w[i]
    scaled = np.empty(n)
    small = np.empty(n, dtype=np.int64)
    large = np.empty(n, dtype=np.int64)
    n_small = 0
    n_large = 0
    for i in range(n):
        scaled[i] = w[i] * n / total
        if scaled[i] < 1.0:
            small[n_small] = i
            n_small += 1
        else:
            large[n_large] = i
            n_large += 1
    while n_small > 0 and n_large > 0:
        n_small -= 1
        n_large -= 1
        s = small[n_small]
        g = large[n_large]
        prob[s] = scaled[s]
        alias[s] = g
        scaled[g] = (scaled[g] + scaled[s]) - 1.0
        if scaled[g] < 1.0:
            small[n_small] = g
            n_small += 1
        else:
            large[n_large] = g
            n_large += 1
    # What is left has scaled weight 1 up to rounding.
    for r in range(n_large):
        prob[large[r]] = 1.0
        alias[large[r]] = large[r]
    for r in range(n_small):
        prob[small[r]] = 1.0
        alias[small[r]] = small[r]


@njit(cache=True)
def sample_alias(prob, alias, n, u):
    """Index drawn from an alias table (:func:`build_alias`) with one uniform ``u``."""
    x = u * n
    k = np.int64(x)  # below n: u < 1 - 2**-53
    other = alias[k]  # loaded unconditionally so that the choice compiles to a select
    return k if x - k < prob[k] else other


@njit(cache=True, parallel=True)
def draw_incoming(seed, global_site, site_coords, site_cell, source_cell, type_offset, global_shape,
                  periodic, halo_strides, c_target, c_source, c_C, c_m0, c_off_ptr, offsets, weights, delays,
                  group_ptr, in_key, in_delay):
    """Draw the incoming synapses of all local neurons (numba kernel).

    Synapses are written per group ``g = s * n_types + a`` (local site ``s``,
    target type ``a``) from ``group_ptr[g]`` on, coupling by coupling in
    configuration order, then neuron by neuron, then input by input.

    Parameters
    ----------
    seed : int
    global_site : ndarray of int64, shape (n_sites,)
    site_coords : ndarray of int64, shape (n_sites, ndim)
        Global coordinates of the local sites.
    site_cell : ndarray of int64, shape (n_sites,)
        Flat index of each local site in the array with halo.
    source_cell : ndarray of int64, shape (n_cells,)
        The cell under whose key a source seen in each cell of the array with
        halo is stored (:meth:`BlockGeometry.source_cells`).
    type_offset : ndarray of int64, shape (n_types + 1,)
    global_shape : ndarray of int64, shape (ndim,)
    periodic : bool
    halo_strides : ndarray of int64, shape (ndim,)
        Strides of the array with halo (cells).
    c_target, c_source, c_C, c_m0 : ndarray of int64, shape (n_couplings,)
        Per coupling: target and source type, in-degree, and the first value of
        the synapse counter ``m`` (sum of the in-degrees of the earlier couplings
        onto the same target type).
    c_off_ptr : ndarray of int64, shape (n_couplings + 1,)
        The offsets of coupling ``c`` are rows ``c_off_ptr[c] .. c_off_ptr[c+1]-1``
        of ``offsets``, ``weights``, ``delays``.
    offsets : ndarray of int64, shape (n_off_total, ndim)
    weights : ndarray of float64, shape (n_off_total,)
    delays : ndarray of int64, shape (n_off_total,)
    group_ptr : ndarray of int64, shape (n_sites * n_types + 1,)
    in_key : ndarray of int32 or int64 (:func:`key_dtype`), shape (n_synapses,)
        Output: source key (module docstring).
    in_delay : ndarray, shape (n_synapses,)
        Output: delay (steps).
    """
    n_types = type_offset.size - 1
    n_per_site = type_offset[n_types]
    n_sites = global_site.size
    ndim = global_shape.size
    n_couplings = c_target.size
    max_off = 0
    max_C = 0
    for c in range(n_couplings):
        max_off = max(max_off, c_off_ptr[c + 1] - c_off_ptr[c])
        max_C = max(max_C, c_C[c])
    for g in prange(n_sites * n_types):
        s = g // n_types
        a = g % n_types
        gsite = global_site[s]
        N_a = type_offset[a + 1] - type_offset[a]
        w = np.empty(max_off)
        prob = np.empty(max_off)
        alias = np.empty(max_off, dtype=np.int64)
        v_key = np.empty(max_off, dtype=np.int64)
        v_delay = np.empty(max_off, dtype=np.int64)
        v_same = np.empty(max_off, dtype=np.bool_)
        u_off = np.empty(max_C)
        u_nrn = np.empty(max_C)
        p = group_ptr[g]
        for c in range(n_couplings):
            if c_target[c] != a:
                continue
            b = c_source[c]
            N_b = type_offset[b + 1] - type_offset[b]
            # The offsets that exist from this site, in stencil order so that every
            # rank builds the same alias table, with the key of their first
            # type-b neuron.
            n_valid = 0
            for o in range(c_off_ptr[c], c_off_ptr[c + 1]):
                inside = True
                shift = 0
                same = True
                for d in range(ndim):
                    od = offsets[o, d]
                    x = site_coords[s, d] + od
                    if not periodic and (x < 0 or x >= global_shape[d]):
                        inside = False
                    shift += od * halo_strides[d]
                    if od != 0:
                        same = False
                if inside:
                    w[n_valid] = weights[o]
                    v_key[n_valid] = source_cell[site_cell[s] + shift] * n_per_site + type_offset[b]
                    v_delay[n_valid] = delays[o]
                    v_same[n_valid] = same and b == a
                    n_valid += 1
            build_alias(w, n_valid, prob, alias)
            C = c_C[c]
            for i in range(N_a):
                ident = a * IDENT_TYPE_STRIDE + i
                # The generator first, then the table look-ups: two short loops
                # overlap better in the CPU than one long dependency chain.
                for m in range(C):
                    u_off[m], u_nrn[m] = _uniform_pair(seed, STREAM_CONNECT, gsite, ident, c_m0[c] + m, 0)
                for m in range(C):
                    v = sample_alias(prob, alias, n_valid, u_off[m])
                    # Same site and type: one of the other N_b - 1 neurons, skipping i.
                    # (u < 1 - 2**-53 keeps int(u * n) below n for any n < 2**52.)
                    same = v_same[v]
                    j = np.int64(u_nrn[m] * (N_b - same))
                    in_key[p] = v_key[v] + j + (same & (j >= i))
                    in_delay[p] = v_delay[v]
                    p += 1


@njit(cache=True)
def invert_incoming(in_key, in_delay, n_keys, n_sites, type_offset, c_target, c_source, c_C,
                    out_ptr, out_col, out_delay):
    """Counting sort of the incoming synapses by source key (numba kernel).

    Walks the synapses in the order :func:`draw_incoming` wrote them, so that
    each target's ring-buffer column is known, and scatters them stably: the
    synapses of one key come out in target order.

    Parameters
    ----------
    in_key, in_delay : ndarray, shape (n_synapses,)
        Output of :func:`draw_incoming`.
    n_keys, n_sites : int
    type_offset, c_target, c_source, c_C :
        As in :func:`draw_incoming`.
    out_ptr : ndarray of int64, shape (n_keys + 1,)
    out_col : ndarray of int32, shape (n_synapses,)
    out_delay : ndarray, shape (n_synapses,)
        Outputs (:class:`Connectivity`).
    """
    n_types = type_offset.size - 1
    n_per_site = type_offset[n_types]
    out_ptr[:] = 0
    for p in range(in_key.size):
        out_ptr[in_key[p] + 1] += 1
    for k in range(n_keys):
        out_ptr[k + 1] += out_ptr[k]
    fill = out_ptr[:n_keys].copy()
    p = 0
    for s in range(n_sites):
        for a in range(n_types):
            N_a = type_offset[a + 1] - type_offset[a]
            for c in range(c_target.size):
                if c_target[c] != a:
                    continue
                b = c_source[c]
                for i in range(N_a):
                    col = (s * n_per_site + type_offset[a] + i) * n_types + b
                    for m in range(c_C[c]):
                        key = in_key[p]
                        q = fill[key]
                        fill[key] = q + 1
                        out_col[q] = col
                        out_delay[q] = in_delay[p]
                        p += 1


class _CouplingTables:
    """The stencils flattened into the arrays the kernels take."""

    def __init__(self, stencils, n_types):
        self.target = np.array([s.target for s in stencils], dtype=np.int64)
        self.source = np.array([s.source for s in stencils], dtype=np.int64)
        self.C = np.array([s.C for s in stencils], dtype=np.int64)
        m0 = np.zeros(len(stencils), dtype=np.int64)
        running = np.zeros(n_types, dtype=np.int64)
        for c, s in enumerate(stencils):
            m0[c] = running[s.target]
            running[s.target] += s.C
        self.m0 = m0
        self.in_degree = running
        self.off_ptr = np.concatenate([[0], np.cumsum([len(s.weights) for s in stencils])]).astype(np.int64)
        ndim = stencils[0].offsets.shape[1] if stencils else 1
        self.offsets = (np.concatenate([s.offsets for s in stencils]).astype(np.int64)
                        if stencils else np.zeros((0, ndim), dtype=np.int64))
        self.weights = (np.concatenate([s.weights for s in stencils]).astype(np.float64)
                        if stencils else np.zeros(0))
        self.delays = (np.concatenate([s.delays for s in stencils]).astype(np.int64)
                       if stencils else np.zeros(0, dtype=np.int64))


def _check_autapse_free(stencils, N):
    """Refuse (ConfigError, before any synapse is drawn) a coupling of a type onto
    itself with the same-site offset when the type has fewer than 2 neurons per site."""
    for s in stencils:
        same_site = np.all(s.offsets == 0, axis=1)
        if s.target == s.source and N[s.target] < 2 and np.any(same_site):
            n = int(N[s.target])
            if s.key and s.target < len(s.type_names):
                name = s.type_names[s.target]
                raise ConfigError(
                    f"{s.key} (target = source = {name!r}, C = {s.C}) needs populations.{name}.N >= 2 "
                    f"at the micro level, but populations.{name}.N = {n}: its kernel includes the "
                    f"same-site offset 0 and, without autapses, a neuron has no other neuron of type "
                    f"{name!r} at its site to connect to (use N >= 2, a kernel without offset 0, or C = 0)")
            raise ConfigError(
                f"coupling of type {s.target} onto itself with a same-site offset needs N >= 2 "
                f"neurons per site (N = {n}): without autapses a neuron has no "
                "other same-type neuron at its site to connect to")


def build_connectivity(seed: int, stencils, layout: NeuronLayout, geometry: BlockGeometry) -> Connectivity:
    """Draw the incoming synapses of this rank's neurons and invert them into the
    outgoing table.

    Not collective: every rank draws its own neurons' inputs independently.

    Parameters
    ----------
    seed : int
        Run seed.
    stencils : sequence of :class:`~meshfield.coupling.Stencil`
    layout : NeuronLayout
        The local neurons (sites in C order over ``geometry.local_shape``).
    geometry : BlockGeometry
        The block; its halo must cover every stencil.
    """
    start, start_cpu = time.perf_counter(), time.process_time()
    n_types = layout.n_types
    N = np.diff(layout.type_offset)
    reach = max((int(np.abs(s.offsets).max()) for s in stencils if len(s.offsets)), default=0)
    if reach > geometry.halo_width:
        raise ValueError(f"halo width {geometry.halo_width} is narrower than the stencil reach {reach} sites")
    _check_autapse_free(stencils, N)
    if layout.n_local * n_types >= 2**31:
        raise ValueError(f"{layout.n_local} neurons on one rank exceed the int32 ring-buffer index; "
                         "use more ranks")
    tables = _CouplingTables(stencils, n_types)
    n_sites = layout.n_sites
    group_size = np.tile(N * tables.in_degree, n_sites)
    group_ptr = np.concatenate([[0], np.cumsum(group_size)]).astype(np.int64)
    n_synapses = int(group_ptr[-1])
    max_delay = int(tables.delays.max()) if tables.delays.size else 0
    delay_dtype = _delay_dtype(max_delay)
    n_keys = int(np.prod(geometry.with_halo_shape)) * layout.n_per_site
    # The incoming draw is the peak of the build (it coexists with the table);
    # 4-byte keys halve it whenever the rank's keys fit.
    in_key = np.empty(n_synapses, dtype=key_dtype(n_keys))
    in_delay = np.empty(n_synapses, dtype=delay_dtype)
    draw_incoming(np.int64(seed), layout.global_site, geometry.site_coords(), geometry.interior_cells(),
                  geometry.source_cells(), layout.type_offset, np.array(geometry.global_shape, dtype=np.int64), geometry.periodic,
                  geometry.halo_strides(), tables.target, tables.source, tables.C, tables.m0,
                  tables.off_ptr, tables.offsets, tables.weights, tables.delays, group_ptr,
                  in_key, in_delay)
    out_ptr = np.empty(n_keys + 1, dtype=np.int64)
    out_col = np.empty(n_synapses, dtype=np.int32)
    out_delay = np.empty(n_synapses, dtype=delay_dtype)
    invert_incoming(in_key, in_delay, n_keys, n_sites, layout.type_offset, tables.target, tables.source,
                    tables.C, out_ptr, out_col, out_delay)
    return Connectivity(out_ptr=out_ptr, out_col=out_col, out_delay=out_delay,
                        n_per_site=layout.n_per_site, build_seconds=time.perf_counter() - start,
                        build_cpu_seconds=time.process_time() - start_cpu)


def draw_incoming_reference(seed, stencils, layout: NeuronLayout, geometry: BlockGeometry):
    """Pure-Python reference of the draw (small networks only).

    Returns
    -------
    list of tuple
        One ``(target_neuron, source_type, source_global_site, source_index,
        delay)`` per synapse, in the order of :func:`draw_incoming`.
    """
    N = np.diff(layout.type_offset)
    tables = _CouplingTables(stencils, layout.n_types)
    coords = geometry.site_coords()
    out = []
    for s in range(layout.n_sites):
        for a in range(layout.n_types):
            for c, st in enumerate(stencils):
                if st.target != a:
                    continue
                b = st.source
                x = coords[s][None, :] + st.offsets
                if geometry.periodic:
                    valid = np.ones(len(st.offsets), dtype=bool)
                else:
                    valid = np.all((x >= 0) & (x < np.array(geometry.global_shape)), axis=1)
                idx = np.flatnonzero(valid)
                prob = np.empty(len(idx))
                alias = np.empty(len(idx), dtype=np.int64)
                build_alias(np.ascontiguousarray(st.weights[idx]), len(idx), prob, alias)
                for i in range(N[a]):
                    n = int(layout.neuron(s, a, i))
                    for m in range(st.C):
                        counter = int(tables.m0[c]) + m
                        ident = a * IDENT_TYPE_STRIDE + i
                        u_off = uniform(seed, STREAM_CONNECT, int(layout.global_site[s]), ident, counter, 0)
                        u_nrn = uniform(seed, STREAM_CONNECT, int(layout.global_site[s]), ident, counter, 1)
                        column = int(u_off * len(idx))
                        v = column if u_off * len(idx) - column < prob[column] else int(alias[column])
                        o = idx[v]
                        if b == a and not np.any(st.offsets[o]):
                            j = min(int(u_nrn * (N[b] - 1)), N[b] - 2)
                            j += j >= i
                        else:
                            j = min(int(u_nrn * N[b]), N[b] - 1)
                        src = tuple(int(v) % n for v, n in zip(x[o], geometry.global_shape))
                        out.append((n, b, int(np.ravel_multi_index(src, geometry.global_shape)), j,
                                    int(st.delays[o])))
    return out
