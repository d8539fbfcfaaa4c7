"""GLIF neurons with escape noise: parameters, state and the update kernel (MODEL.md §2).

Each rank holds the neurons of its own sites (the *interior* of its block) in a
structure of arrays. Local neuron ``n`` is neuron ``i`` of type ``a`` at local site
``s`` (C order over ``local_shape``)::

    n = s * n_per_site + type_offset[a] + i

so the neurons of one site, and within it of one type, are contiguous.

One step ``t`` of a non-refractory neuron of type ``a`` (common.md conventions):

1. input counts ``k_b`` of each source type ``b`` arriving during the step (from
   the ring buffer) give the constant drive ``I_b = J_ab k_b / dt`` (mV/ms);
2. ``u <- u P_mm + mu (1 - P_mm) + sum_b (y_b P_sm + I_b P_im)`` and
   ``y_b <- y_b P_ss + I_b (1 - P_ss)`` (exact, :mod:`meshfield.propagators`);
3. threshold ``theta = u_th + sum_j q_j`` with ``q_j`` the adaptation variables,
   ``q_j(t) = sum_{s < t} (J_theta_j / tau_theta_j) exp(-(t - s) dt / tau_theta_j)``
   over the neuron's own spike steps ``s``;
4. hazard ``lambda = c exp((u - theta) / delta_u)`` and firing probability
   ``P = 1 - exp(-lambda dt)``; the neuron fires if ``U < P`` with
   ``U = uniform(seed, STREAM_ESCAPE, global site, ident, t, 0)``;
5. after a spike ``u = u_reset``, the next ``n_ref`` steps are (``t_ref`` in whole steps,
   :func:`meshfield.config.refractory_steps`)
   refractory (``u`` clamped, ``P = 0``, no random number drawn), ``q_j`` jumps by
   ``J_theta_j / tau_theta_j``.

Synaptic currents and adaptation variables evolve during refractoriness too.

The escape-noise number of a neuron is keyed by its global site, its *ident*
``a * IDENT_TYPE_STRIDE + i`` and the step, so it does not depend on the
decomposition (MODEL.md §7).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from ..config import refractory_steps
from ..numerics import serial_twin
from ..propagators import membrane_propagators
from ..random import STREAM_ESCAPE, uniform

__all__ = [
    "IDENT_TYPE_STRIDE",
    "NeuronParameters",
    "NeuronLayout",
    "NeuronState",
    "neuron_parameters",
    "neuron_ident",
    "advance_neurons",
    "advance_neurons_reference",
]

#: stride of the type in a neuron's ident: ``ident = type * IDENT_TYPE_STRIDE + i``;
#: bounds the neurons per population and site
IDENT_TYPE_STRIDE = 2**24


def neuron_ident(a: int, i: int) -> int:
    """Ident of neuron ``i`` (``0 <= i < N_a``) of type ``a`` within its site, the
    neuron part of the key of its random numbers."""
    return a * IDENT_TYPE_STRIDE + i


@dataclass(frozen=True)
class NeuronParameters:
    """Per-type constants of the update, derived once from the configuration.

    Attributes
    ----------
    dt : float
        Time step (ms).
    N : ndarray of int64, shape (n_types,)
        Neurons per site of each type.
    P_mm : ndarray, shape (n_types,)
        Membrane decay over a step.
    P_ss : ndarray, shape (n_types,)
        Synaptic decay over a step, by source type.
    P_sm, P_im : ndarray, shape (n_types, n_types)
        ``[target, source]`` propagators of the synaptic current (``P_sm``) and of
        the constant drive (``P_im``, ms) into the membrane.
    J_over_dt : ndarray, shape (n_types, n_types)
        ``J_ab / dt`` (mV/ms): drive ``I_b`` per input spike in a step; 0 where
        types are not coupled.
    u_reset, u_th : ndarray, shape (n_types,)
        Reset potential and threshold baseline (mV).
    inv_delta_u : ndarray, shape (n_types,)
        ``1 / delta_u`` (1/mV), the inverse escape-noise softness.
    c_per_ms : ndarray, shape (n_types,)
        Hazard at threshold, ``c / 1000`` (1/ms).
    n_ref : ndarray of int64, shape (n_types,)
        Refractory steps (:func:`meshfield.config.refractory_steps`).
    q_decay : ndarray, shape (n_types, n_adapt)
        ``exp(-dt / tau_theta_j)``; 0 in the padding of types with fewer
        timescales.
    q_jump : ndarray, shape (n_types, n_adapt)
        ``J_theta_j / tau_theta_j`` (mV) added to ``q_j`` at a spike; 0 in the
        padding.
    """

    dt: float
    N: np.ndarray
    P_mm: np.ndarray
    P_ss: np.ndarray
    P_sm: np.ndarray
    P_im: np.ndarray
    J_over_dt: np.ndarray
    u_reset: np.ndarray
    u_th: np.ndarray
    inv_delta_u: np.ndarray
    c_per_ms: np.ndarray
    n_ref: np.ndarray
    q_decay: np.ndarray
    q_jump: np.ndarray

    @property
    def n_types(self) -> int:
        return len(self.N)

    @property
    def n_adapt(self) -> int:
        return self.q_decay.shape[1]


def neuron_parameters(populations, J: np.ndarray, dt: float) -> NeuronParameters:
    """Update constants of the population types.

    Parameters
    ----------
    populations : sequence of PopulationConfig
        One per type, in type order.
    J : array_like, shape (n_types, n_types)
        Synaptic weight ``J[target, source]`` (mV), 0 for uncoupled pairs.
    dt : float
        Time step (ms).
    """
    n_types = len(populations)
    J = np.asarray(J, dtype=np.float64).reshape(n_types, n_types)
    tau_s = np.array([p.tau_s for p in populations])
    n_adapt = max((len(p.tau_theta) for p in populations), default=0)
    P_mm = np.empty(n_types)
    P_sm = np.empty((n_types, n_types))
    P_im = np.empty((n_types, n_types))
    q_decay = np.zeros((n_types, n_adapt))
    q_jump = np.zeros((n_types, n_adapt))
    P_ss = None
    for a, p in enumerate(populations):
        prop = membrane_propagators(p.tau_m, tau_s, dt)
        P_mm[a], P_sm[a], P_im[a], P_ss = prop.P_mm, prop.P_sm, prop.P_im, prop.P_ss
        for j, (tau, jt) in enumerate(zip(p.tau_theta, p.J_theta)):
            q_decay[a, j] = math.exp(-dt / tau)
            q_jump[a, j] = jt / tau
    return NeuronParameters(
        dt=float(dt),
        N=np.array([p.N for p in populations], dtype=np.int64),
        P_mm=P_mm, P_ss=np.asarray(P_ss, dtype=np.float64), P_sm=P_sm, P_im=P_im,
        J_over_dt=J / dt,
        u_reset=np.array([p.u_reset for p in populations], dtype=np.float64),
        u_th=np.array([p.u_th for p in populations], dtype=np.float64),
        inv_delta_u=1.0 / np.array([p.delta_u for p in populations], dtype=np.float64),
        c_per_ms=np.array([p.c for p in populations], dtype=np.float64) * 1e-3,
        n_ref=np.array([refractory_steps(p.t_ref, dt) for p in populations], dtype=np.int64),
        q_decay=q_decay, q_jump=q_jump,
    )


@dataclass(frozen=True)
class NeuronLayout:
    """Where each local neuron lives.

    Attributes
    ----------
    global_site : ndarray of int64, shape (n_sites,)
        Global flat index of each local site (C order over ``local_shape``).
    type_offset : ndarray of int64, shape (n_types + 1,)
        Start of each type's neurons within a site; ``type_offset[-1]`` is the
        number of neurons per site.
    """

    global_site: np.ndarray
    type_offset: np.ndarray

    @classmethod
    def build(cls, global_site, N) -> "NeuronLayout":
        """Layout of ``N[a]`` neurons of type ``a`` at each of the ``global_site`` sites."""
        N = np.asarray(N, dtype=np.int64)
        if N.size and N.max() >= IDENT_TYPE_STRIDE:
            raise ValueError(f"populations of N = {int(N.max())} neurons per site are not supported; "
                             f"N must be below {IDENT_TYPE_STRIDE}")
        return cls(np.ascontiguousarray(global_site, dtype=np.int64).ravel(),
                   np.concatenate([[0], np.cumsum(N)]).astype(np.int64))

    @property
    def n_sites(self) -> int:
        return len(self.global_site)

    @property
    def n_types(self) -> int:
        return len(self.type_offset) - 1

    @property
    def n_per_site(self) -> int:
        return int(self.type_offset[-1])

    @property
    def n_local(self) -> int:
        return self.n_sites * self.n_per_site

    def neuron(self, s, a, i):
        """Local index of neuron ``i`` of type ``a`` at local site ``s`` (arrays broadcast)."""
        return np.asarray(s) * self.n_per_site + self.type_offset[np.asarray(a)] + np.asarray(i)


@dataclass
class NeuronState:
    """Dynamic state of the local neurons.

    Attributes
    ----------
    u : ndarray, shape (n_local,)
        Membrane potential (mV).
    y : ndarray, shape (n_local, n_types)
        Synaptic current by source type (mV/ms).
    q : ndarray, shape (n_local, n_adapt)
        Adaptation contributions to the threshold (mV).
    ref : ndarray of int64, shape (n_local,)
        Refractory steps still to come.
    """

    u: np.ndarray
    y: np.ndarray
    q: np.ndarray
    ref: np.ndarray

    @classmethod
    def initial(cls, params: NeuronParameters, layout: NeuronLayout) -> "NeuronState":
        """All neurons at ``u_reset`` without input or adaptation history (as the
        mesoscopic initial condition: everybody in the free pool at ``u_r``)."""
        type_of = np.repeat(np.arange(layout.n_types), np.diff(layout.type_offset))
        u = np.tile(params.u_reset[type_of], layout.n_sites)
        n = layout.n_local
        return cls(u=u, y=np.zeros((n, layout.n_types)), q=np.zeros((n, params.n_adapt)),
                   ref=np.zeros(n, dtype=np.int64))


@njit(cache=True, parallel=True)
def advance_neurons(step0, nsteps, seed, global_site, type_offset, u, y, q, ref, ring, mu,
                    P_mm, P_ss, P_sm, P_im, J_over_dt, u_reset, u_th, inv_delta_u, c_per_ms,
                    n_ref, q_decay, q_jump, dt, spiked, counts, expected, volt):
    """Advance all local neurons by ``nsteps`` steps (numba kernel).

    The input of every step must already be in ``ring``: all delays are at least
    ``nsteps`` steps, so spikes emitted during these steps act only later.

    Parameters
    ----------
    step0, nsteps : int
        First step and number of steps.
    seed : int
        Run seed.
    global_site, type_offset :
        :class:`NeuronLayout` arrays.
    u, y, q, ref :
        :class:`NeuronState` arrays, updated in place.
    ring : ndarray of int32, shape (n_slots, n_local * n_types)
        Input spike counts; step ``t`` reads (and then zeroes) row ``t % n_slots``,
        column ``n * n_types + b`` for source type ``b`` of neuron ``n``.
    mu : ndarray, shape (nsteps, n_types, n_sites)
        Drive of each step (mV).
    P_mm ... q_jump, dt :
        :class:`NeuronParameters` fields.
    spiked : ndarray of uint8, shape (nsteps, n_local)
        Output: 1 where a neuron fired in a step.
    counts, expected : ndarray, shape (nsteps, n_types, n_sites)
        Output: spike count and expected spike count ``sum_i P_i`` per site and
        type; the sum runs over neurons in index order, whatever the threading.
    volt : ndarray, shape (nsteps, n_types, n_sites, n_volt)
        Output: membrane potential (mV) at the end of each step of neurons
        ``i < n_volt`` of each site and type (after a reset).
    """
    n_types = type_offset.size - 1
    n_sites = global_site.size
    n_per_site = type_offset[n_types]
    n_slots = ring.shape[0]
    n_adapt = q.shape[1]
    n_volt = volt.shape[3]
    for g in prange(n_sites * n_types):
        s = g // n_types
        a = g % n_types
        gsite = global_site[s]
        p_mm = P_mm[a]
        for k in range(nsteps):
            counts[k, a, s] = 0.0
            expected[k, a, s] = 0.0
        for i in range(type_offset[a + 1] - type_offset[a]):
            n = s * n_per_site + type_offset[a] + i
            ident = a * IDENT_TYPE_STRIDE + i
            un = u[n]
            rn = ref[n]
            col = n * n_types
            for k in range(nsteps):
                step = step0 + k
                slot = step % n_slots
                drive = 0.0
                for b in range(n_types):
                    I_b = J_over_dt[a, b] * ring[slot, col + b]
                    ring[slot, col + b] = 0
                    y_b = y[n, b]
                    drive += y_b * P_sm[a, b] + I_b * P_im[a, b]
                    y[n, b] = y_b * P_ss[b] + I_b * (1.0 - P_ss[b])
                q_sum = 0.0
                for j in range(n_adapt):
                    q_j = q[n, j] * q_decay[a, j]
                    q[n, j] = q_j
                    q_sum += q_j
                theta = u_th[a] + q_sum
                P = 0.0
                fired = 0
                if rn > 0:
                    rn -= 1
                else:
                    un = un * p_mm + mu[k, a, s] * (1.0 - p_mm) + drive
                    lam = c_per_ms[a] * math.exp((un - theta) * inv_delta_u[a])
                    P = 1.0 - math.exp(-lam * dt)
                    if P > 0.0 and uniform(seed, STREAM_ESCAPE, gsite, ident, step, 0) < P:
                        fired = 1
                        un = u_reset[a]
                        rn = n_ref[a]
                        for j in range(n_adapt):
                            q[n, j] += q_jump[a, j]
                        counts[k, a, s] += 1.0
                spiked[k, n] = fired
                expected[k, a, s] += P
                if i < n_volt:
                    volt[k, a, s, i] = un
            u[n] = un
            ref[n] = rn


def advance_neurons_reference(step0, nsteps, seed, layout: NeuronLayout, params: NeuronParameters,
                              state: NeuronState, ring, mu):
    """Pure-NumPy reference of :func:`advance_neurons` (small inputs only).

    Steps are taken one after the other, vectorized over neurons; the random
    numbers come from the same counter-based generator. ``state`` and ``ring``
    are updated in place.

    Returns
    -------
    spiked : ndarray of uint8, shape (nsteps, n_local)
    counts, expected : ndarray, shape (nsteps, n_types, n_sites)
    volt : ndarray, shape (nsteps, n_local)
        Membrane potential of every neuron at the end of each step.
    """
    n_types, n_sites = layout.n_types, layout.n_sites
    N = np.diff(layout.type_offset)
    a = np.tile(np.repeat(np.arange(n_types), N), n_sites)
    s = np.repeat(np.arange(n_sites), layout.n_per_site)
    i = np.tile(np.concatenate([np.arange(n) for n in N]), n_sites)
    gsite = layout.global_site[s]
    n_local = layout.n_local
    spiked = np.zeros((nsteps, n_local), dtype=np.uint8)
    counts = np.zeros((nsteps, n_types, n_sites))
    expected = np.zeros((nsteps, n_types, n_sites))
    volt = np.zeros((nsteps, n_local))
    p = params
    n_slots = ring.shape[0]
    for k in range(nsteps):
        step = step0 + k
        slot = step % n_slots
        k_in = ring[slot].reshape(n_local, n_types).astype(np.float64)
        ring[slot] = 0
        I = p.J_over_dt[a] * k_in
        drive = (state.y * p.P_sm[a] + I * p.P_im[a]).sum(axis=1)
        state.y = state.y * p.P_ss + I * (1.0 - p.P_ss)
        state.q = state.q * p.q_decay[a]
        theta = p.u_th[a] + state.q.sum(axis=1)
        free = state.ref == 0
        state.ref = np.where(free, 0, state.ref - 1)
        u_new = state.u * p.P_mm[a] + mu[k, a, s] * (1.0 - p.P_mm[a]) + drive
        state.u = np.where(free, u_new, state.u)
        lam = p.c_per_ms[a] * np.exp((state.u - theta) * p.inv_delta_u[a])
        P = np.where(free, 1.0 - np.exp(-lam * p.dt), 0.0)
        U = np.array([uniform(seed, STREAM_ESCAPE, int(gsite[n]), neuron_ident(int(a[n]), int(i[n])),
                              step, 0) for n in range(n_local)])
        fired = (P > 0.0) & (U < P)
        state.u = np.where(fired, p.u_reset[a], state.u)
        state.ref = np.where(fired, p.n_ref[a], state.ref)
        state.q = state.q + fired[:, None] * p.q_jump[a]
        spiked[k] = fired
        np.add.at(counts[k], (a, s), fired.astype(np.float64))
        for n in range(n_local):
            expected[k, a[n], s[n]] += P[n]
        volt[k] = state.u
    return spiked, counts, expected, volt


advance_neurons_serial = serial_twin(advance_neurons, "advance_neurons_serial")
