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

import math

import numpy as np
from numba import njit, prange

from ..random import STREAM_MESO, binomial, poisson_clipped

NOISE_BINOMIAL = 0
NOISE_POISSON = 1
NOISE_NONE = 2  # mean-field mode: n = n_bar


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
    for l in prange(n_local):
        base = site_base[l]
        for s in range(n_st):
            src = st_source[s]
            scale = st_scale[s] / st_norm[s, l]
            for k in range(nsteps):
                t = step0 + k
                acc = 0.0
                for e in range(st_ptr[s], st_ptr[s + 1]):
                    slot = (t - st_delay[e]) % D
                    acc += st_weight[e] * hist[slot, src, base + st_flat_off[e]]
                out[s, k, l] = acc * scale


@njit(cache=True, parallel=True)
def population_block(step0, nsteps, type_index, N, dt, n_ref, u_reset, u_th, c_per_ms, delta_u,
                     P_mm, mu, inputs, in_J, in_P_ss, in_P_sm, in_P_im, y,
                     eps, theta_tilde, adapt_w, adapt_decay, adapt_enter, g,
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
    eps, theta_tilde : float64 (K + 1,)
        ``eps_theta(a dt)`` and ``theta~(a dt)`` for ages ``a = 0..K`` (mV).
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
    has_adaptation = n_adapt > 0
    for l in prange(n_local):
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

            W = 0.0
            X = 0.0
            Y = 0.0
            Z = 0.0
            older = 0.0  # sum over strictly older cohorts of n theta~ (mV * neurons)
            head = t % K
            for a in range(K, 0, -1):
                slot = head - a
                if slot < 0:
                    slot += K
                ma = m[l, slot]
                X += ma
                if a > n_ref:
                    ua = u[l, slot] * P_mm + h_inc
                    u[l, slot] = ua
                    theta = u_th + theta_old
                    if has_adaptation:
                        theta += eps[a] + older * inv_N
                    lam_new = c_per_ms * math.exp((ua - theta) * inv_du)
                    P = 1.0 - math.exp(-(lam[l, slot] + lam_new) * half_dt)
                    lam[l, slot] = lam_new
                    va = v[l, slot]
                    W += P * ma
                    Y += P * va
                    Z += va
                    q = 1.0 - P
                    v[l, slot] = q * q * va + P * ma
                    m[l, slot] = q * ma
                if has_adaptation:
                    older += n[l, slot] * theta_tilde[a]

            # free pool: neurons older than K steps
            hf = h[l] * P_mm + h_inc
            h[l] = hf
            lam_f = c_per_ms * math.exp((hf - u_th - theta_old) * inv_du)
            P_free = 1.0 - math.exp(-(lam_free[l] + lam_f) * half_dt)
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
            z[l] = qf * qf * zf + P_free * xf + v[l, head]
            x[l] = qf * xf + m[l, head]
            for j in range(n_adapt):
                g[l, j] = adapt_decay[j] * g[l, j] + n[l, head] * inv_N * adapt_enter[j]
            n[l, head] = n_new
            m[l, head] = n_new
            v[l, head] = 0.0
            u[l, head] = u_reset
            lam[l, head] = 0.0
            counts_out[k, l] = n_new
            expected_out[k, l] = n_bar
