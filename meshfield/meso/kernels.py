"""Numba kernels of the mesoscopic population equation (MODEL.md §4).

The kernels take plain arrays of one rank's block and never see a communicator.
Lattice sites are flattened: ``local`` arrays have one entry per interior site, the
history of spike counts is indexed with the flat index of the block *with halo*.

Cohort ring buffer: the cohort created by step ``s`` lives in slot ``s % K`` of the
per-site arrays ``m, v, u, lam, n`` (shape ``(n_local, K)``). During step ``t`` the
cohort in slot ``(t - a) % K`` has age ``a = 1..K`` (ages measured at the end of the
step); after the step the cohort of age ``K`` moves into the free pool and slot
``t % K`` receives the new cohort.
"""

from __future__ import annotations

import types

import numpy as np
from numba import njit, prange

from ..numerics import serial_twin, vexp
from ..random import STREAM_MESO, binomial, poisson_clipped

NOISE_BINOMIAL = 0
NOISE_POISSON = 1
NOISE_NONE = 2  # mean-field mode: n = n_bar

#: The hazard a cohort keeps for the next step is stored at most this large (per
#: ms). Any hazard with lambda dt / 2 >= 40 gives a firing probability of exactly
#: 1.0 in double precision, so the cap changes no result for dt >= 1e-28 ms; it
#: keeps the stored value within float32's range (run.cohort_dtype), where a
#: runaway hazard of up to c e**700 would become infinite.
HAZARD_STORED_MAX = 1e30


@njit(cache=True, parallel=True)
def synaptic_input(step0, nsteps, hist, D, site_base, st_source, st_ptr, st_flat_off, st_weight,
                   st_delay, st_scale, st_norm, out):
    """Expected number of input spikes per target neuron, per stencil, local site and step.

    ``out[s, k, l] = C/N_src * sum_o kappa(o) n_src(x_l + o, t - d(o)) / norm_s(x_l)``
    for ``t = step0 + k``. Every delay is at least ``nsteps`` (= d_min or less), so
    only steps before ``step0`` are read.

    Parameters
    ----------
    hist : float64 (D, n_types, n_with_halo)
        Spike counts per step slot ``t % D``, type and site of the block with halo.
    site_base : int64 (n_local,)
        Flat with-halo index of each interior site.
    st_* : per stencil ``s`` (``st_source``, ``st_scale`` = C/N_src, ``st_norm``
        (n_stencils, n_local) edge renormalization) and per stencil entry
        (``st_flat_off``, ``st_weight``, ``st_delay``; entries of stencil ``s`` are
        ``st_ptr[s]:st_ptr[s+1]``).
    out : float64 (n_stencils, nsteps, n_local)
    """
    n_st = st_source.shape[0]
    n_local = site_base.shape[0]
    n_entries = st_delay.shape[0]
    # history slot read by each entry in each step (hoisted: integer modulo is slow)
    slot_of = np.empty((nsteps, n_entries), dtype=np.int64)
    for k in range(nsteps):
        for e in range(n_entries):
            slot_of[k, e] = (step0 + k - st_delay[e]) % D
    for l in prange(n_local):
        base = site_base[l]
        for s in range(n_st):
            src = st_source[s]
            scale = st_scale[s] / st_norm[s, l]
            for k in range(nsteps):
                acc = 0.0
                for e in range(st_ptr[s], st_ptr[s + 1]):
                    acc += st_weight[e] * hist[slot_of[k, e], src, base + st_flat_off[e]]
                out[s, k, l] = acc * scale


@njit(cache=True, fastmath=True)
def _cohort_range(u_row, m_row, v_row, lam_row, thr, P_mm, h_inc, c_per_ms, inv_du, half_dt):
    """Update non-refractory cohorts (MODEL.md §4 steps 1-4); the arguments are the
    slot ranges' views of the per-site rows.

    Branch-free and indexed from 0 (no negative-index wraparound check) so that LLVM
    vectorizes it; ``fastmath`` lets it reorder the three sums, in the same order on
    every rank, so results stay decomposition invariant. Returns ``(W, Y, Z)``.
    """
    W = 0.0
    Y = 0.0
    Z = 0.0
    for i in range(u_row.shape[0]):
        ua = u_row[i] * P_mm + h_inc
        u_row[i] = ua
        lam_new = c_per_ms * vexp((ua - thr[i]) * inv_du)
        P = 1.0 - vexp(-(lam_row[i] + lam_new) * half_dt)
        lam_row[i] = min(lam_new, HAZARD_STORED_MAX)
        ma = m_row[i]
        va = v_row[i]
        W += P * ma
        Y += P * va
        Z += va
        q = 1.0 - P
        v_row[i] = q * q * va + P * ma
        m_row[i] = q * ma
    return W, Y, Z


@njit(cache=True)
def _threshold_scan(thr, n_row, eps_rev, theta_tilde_rev, base, inv_N, older):
    """Thresholds of a run of cohorts in order of decreasing age: ``thr = base +
    eps_theta(a) + older / N``, where ``older`` sums ``n theta~(a')`` over all older
    cohorts (an exclusive prefix sum, carried in and returned). Not ``fastmath``:
    the sum must be accumulated in this order on every rank."""
    for i in range(thr.shape[0]):
        thr[i] = base + eps_rev[i] + older * inv_N
        older += n_row[i] * theta_tilde_rev[i]
    return older


@njit(cache=True, fastmath=True)
def _sum(row):
    acc = 0.0
    for i in range(row.shape[0]):
        acc += row[i]
    return acc


@njit(cache=True, parallel=True)
def population_block(step0, nsteps, type_index, N, dt, n_ref, u_reset, u_th, c_per_ms, delta_u,
                     P_mm, mu, inputs, in_J, in_P_ss, in_P_sm, in_P_im, y,
                     eps_rev, theta_tilde_rev, adapt_w, adapt_decay, adapt_enter, g,
                     m, v, u, lam, n, x, z, h, lam_free,
                     noise, seed, global_site, counts_out, expected_out):
    """Advance every population of one type at the local sites by ``nsteps`` steps.

    Parameters
    ----------
    mu : float64 (nsteps, n_local)
        Total external drive (mV) per step: ``mu`` plus stimuli.
    inputs : float64 (n_in, nsteps, n_local)
        Expected input spikes per neuron for each incoming stencil (``synaptic_input``).
    in_J, in_P_ss, in_P_sm, in_P_im : float64 (n_in,)
        Weight (mV) and propagators (see :mod:`meshfield.propagators`) per incoming stencil.
    y : float64 (n_in, n_local)
        Synaptic currents (mV/ms), updated in place.
    eps_rev, theta_tilde_rev : float64 (K,)
        ``eps_theta(a dt)`` and ``theta~(a dt)`` for ages ``a = K, K-1, .., 1`` (mV).
    adapt_w : float64 (n_adapt,)
        ``J_theta / tau_theta`` (mV) per adaptation timescale.
    adapt_decay, adapt_enter : float64 (n_adapt,)
        ``exp(-dt/tau_theta)`` and ``exp(-(K+1) dt/tau_theta)``.
    g : float64 (n_local, n_adapt)
        Filtered activity older than K steps, ``sum_b n_b/N exp(-b dt/tau)`` at the
        ages the next step will have (updated in place).
    m, v, u, lam, n : float64 (n_local, K)
        Cohort ring buffers (updated in place).
    x, z, h, lam_free : float64 (n_local,)
        Free pool: expected size, variance-like quantity, membrane potential, hazard.
    noise : int
        NOISE_BINOMIAL, NOISE_POISSON or NOISE_NONE (mean field).
    global_site : int64 (n_local,)
        Global flat site index (the random-number key).
    counts_out, expected_out : float64 (nsteps, n_local)
        Spike count ``n`` and its expectation ``n_bar`` per step.
    """
    n_local = global_site.shape[0]
    K = m.shape[1]
    n_in = in_J.shape[0]
    n_adapt = adapt_w.shape[0]
    half_dt = 0.5 * dt
    inv_N = 1.0 / N
    inv_du = 1.0 / delta_u
    for l in prange(n_local):
        thr = np.full(K, u_th)  # threshold of the cohort in each slot (constant without adaptation)
        u_row = u[l]
        m_row = m[l]
        v_row = v[l]
        lam_row = lam[l]
        n_row = n[l]
        for k in range(nsteps):
            t = step0 + k
            # common membrane increment of this step (exact integration, MODEL.md §4)
            h_inc = mu[k, l] * (1.0 - P_mm)
            for i in range(n_in):
                drive = in_J[i] * inputs[i, k, l] / dt
                h_inc += y[i, l] * in_P_sm[i] + drive * in_P_im[i]
                y[i, l] = y[i, l] * in_P_ss[i] + drive * (1.0 - in_P_ss[i])
            theta_old = 0.0
            for j in range(n_adapt):
                theta_old += adapt_w[j] * g[l, j]

            # thresholds: u_th + eps(a) + sum over strictly older cohorts + theta_old;
            # the slot of age a is (t - a) mod K
            head = t % K
            if n_adapt > 0:
                # slots head..K-1 hold ages K..head+1, slots 0..head-1 ages head..1: in
                # slot order the ages fall by one, so eps_rev/theta_tilde_rev (tables in
                # age order K..1) are read contiguously from index 0
                base = u_th + theta_old
                older = _threshold_scan(thr[head:], n_row[head:], eps_rev[:K - head],
                                        theta_tilde_rev[:K - head], base, inv_N, 0.0)
                _threshold_scan(thr[:head], n_row[:head], eps_rev[K - head:],
                                theta_tilde_rev[K - head:], base, inv_N, older)

            # non-refractory cohorts (ages n_ref+1 .. K) fill two contiguous slot ranges:
            # [0, head - n_ref) and [head, head + K - n_ref)
            lo_a = 0
            hi_a = max(head - n_ref, 0)
            lo_b = head
            hi_b = min(head + K - n_ref, K)
            # X: survivors of every cohort, refractory ones included, before this step
            X = _sum(m_row)
            W1, Y1, Z1 = _cohort_range(u_row[lo_a:hi_a], m_row[lo_a:hi_a], v_row[lo_a:hi_a],
                                       lam_row[lo_a:hi_a], thr[lo_a:hi_a], P_mm, h_inc,
                                       c_per_ms, inv_du, half_dt)
            W2, Y2, Z2 = _cohort_range(u_row[lo_b:hi_b], m_row[lo_b:hi_b], v_row[lo_b:hi_b],
                                       lam_row[lo_b:hi_b], thr[lo_b:hi_b], P_mm, h_inc,
                                       c_per_ms, inv_du, half_dt)
            W = W1 + W2
            Y = Y1 + Y2
            Z = Z1 + Z2

            # free pool: neurons older than K steps
            hf = h[l] * P_mm + h_inc
            h[l] = hf
            lam_f = c_per_ms * vexp((hf - u_th - theta_old) * inv_du)
            P_free = 1.0 - vexp(-(lam_free[l] + lam_f) * half_dt)
            lam_free[l] = lam_f
            xf = x[l]
            zf = z[l]
            denom = Z + zf
            P_lambda = (Y + P_free * zf) / denom if denom > 0.0 else 0.0
            n_bar = W + P_free * xf + P_lambda * (N - X - xf)

            if noise == NOISE_NONE:
                n_new = min(max(n_bar, 0.0), float(N))
            else:
                p = min(max(n_bar * inv_N, 0.0), 1.0)
                if noise == NOISE_BINOMIAL:
                    n_new = float(binomial(N, p, seed, STREAM_MESO, global_site[l], type_index, t))
                else:
                    n_new = float(poisson_clipped(p * N, N, seed, STREAM_MESO, global_site[l],
                                                  type_index, t))

            # the oldest cohort (age K) joins the free pool; slot `head` is reused
            qf = 1.0 - P_free
            z[l] = qf * qf * zf + P_free * xf + v_row[head]
            x[l] = qf * xf + m_row[head]
            for j in range(n_adapt):
                g[l, j] = adapt_decay[j] * g[l, j] + n_row[head] * inv_N * adapt_enter[j]
            n_row[head] = n_new
            m_row[head] = n_new
            v_row[head] = 0.0
            u_row[head] = u_reset
            lam_row[head] = 0.0
            counts_out[k, l] = n_new
            expected_out[k, l] = n_bar


population_block_serial = serial_twin(population_block, "population_block_serial")
synaptic_input_serial = serial_twin(synaptic_input, "synaptic_input_serial")


#: the kernels that _advance calls; _bind compiles it with each pair
population_kernel = population_block
input_kernel = synaptic_input


def _advance(step0, nsteps, d_min, D, hist, site_base, st_source, st_ptr, st_flat_off, st_weight,
             st_delay, st_scale, st_norm, mu, N, dt, n_ref, u_reset, u_th, c_per_ms, delta_u, P_mm,
             incoming, in_J, in_P_ss, in_P_sm, in_P_im, y, eps_rev, theta_tilde_rev, adapt_w,
             adapt_decay, adapt_enter, g, m, v, u, lam, n, x, z, h, lam_free, noise, seed,
             global_site, counts_out, expected_out):
    """Advance all types over ``nsteps`` steps, ``d_min`` steps at a time: the
    synaptic input, one ``population_kernel`` call per type, the new counts into
    the history.

    The time loop calls it for one block of at most ``d_min`` steps between halo
    exchanges, or, on a small lattice without a halo, for ~64 steps at once,
    because there the Python calls per block cost ten times the work
    (docs/performance.md). Each step computes the same either way.

    Compiled twice (:func:`_bind`): ``advance_fused`` with the threaded kernels,
    ``advance_fused_serial`` with their serial twins.

    Parameters
    ----------
    hist : float64 (D, n_types, n_with_halo)
        Spike-count history (updated in place).
    mu : float64 (nsteps, n_types, n_local)
        Total drive (mV) of every step.
    N, n_ref : int64 (n_types,); u_reset, u_th, c_per_ms, delta_u, P_mm : float64 (n_types,)
        Per-type parameters of :func:`population_block`.
    incoming, in_J, in_P_ss, in_P_sm, in_P_im, y, eps_rev, theta_tilde_rev, adapt_w, \
adapt_decay, adapt_enter, g, m, v, u, lam, n, x, z, h, lam_free : tuples over types
        The per-type arrays of :func:`population_block`; ``incoming`` (int64) holds
        the indices of the stencils that end on each type.
    counts_out, expected_out : float64 (nsteps, n_types, n_local)
    """
    n_types = N.shape[0]
    n_local = global_site.shape[0]
    n_st = st_source.shape[0]
    k0 = 0
    while k0 < nsteps:
        t0 = step0 + k0
        nb = min(d_min - t0 % d_min, nsteps - k0) if d_min > 0 else nsteps - k0
        inputs = np.zeros((n_st, nb, n_local))
        if n_st > 0:
            input_kernel(t0, nb, hist, D, site_base, st_source, st_ptr, st_flat_off, st_weight,
                         st_delay, st_scale, st_norm, inputs)
        counts = np.empty((nb, n_local))
        expected = np.empty((nb, n_local))
        for ti in range(n_types):
            inc = incoming[ti]
            own = np.empty((inc.shape[0], nb, n_local))
            for j in range(inc.shape[0]):
                own[j] = inputs[inc[j]]
            drive = np.ascontiguousarray(mu[k0:k0 + nb, ti, :])
            population_kernel(t0, nb, ti, N[ti], dt, n_ref[ti], u_reset[ti], u_th[ti], c_per_ms[ti],
                              delta_u[ti], P_mm[ti], drive, own, in_J[ti], in_P_ss[ti], in_P_sm[ti],
                              in_P_im[ti], y[ti], eps_rev[ti], theta_tilde_rev[ti], adapt_w[ti],
                              adapt_decay[ti], adapt_enter[ti], g[ti], m[ti], v[ti], u[ti], lam[ti],
                              n[ti], x[ti], z[ti], h[ti], lam_free[ti], noise, seed, global_site,
                              counts, expected)
            counts_out[k0:k0 + nb, ti, :] = counts
            expected_out[k0:k0 + nb, ti, :] = expected
        if n_st > 0:
            for k in range(nb):
                slot = (t0 + k) % D
                for ti in range(n_types):
                    for l in range(n_local):
                        hist[slot, ti, site_base[l]] = counts_out[k0 + k, ti, l]
        k0 += nb


def _bind(name: str, population_kernel, input_kernel):
    """:func:`_advance` compiled with the given kernels, under its own name.

    The kernels are bound as globals, not passed as arguments: numba cannot cache
    a function that takes functions as arguments across processes (every run would
    compile it again, ~13 s).
    """
    f = _advance
    scope = dict(f.__globals__, population_kernel=population_kernel, input_kernel=input_kernel)
    twin = types.FunctionType(f.__code__, scope, name, f.__defaults__, f.__closure__)
    twin.__qualname__ = name
    twin.__doc__ = f.__doc__
    return njit(cache=True)(twin)


advance_fused = _bind("advance_fused", population_block, synaptic_input)
advance_fused_serial = _bind("advance_fused_serial", population_block_serial, synaptic_input_serial)
