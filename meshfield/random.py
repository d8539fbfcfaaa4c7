"""Counter-based random numbers keyed by global ids (MODEL.md §7).

Every random number of a meshfield run is a pure function of
``(seed, stream, site, ident, step, j)``: the run seed, the purpose of the draw
(one of the ``STREAM_*`` constants), the global flat site index, an identity
within the site (the type index at the mesoscopic level, a neuron id at the
microscopic level), the time step (or another counter, e.g. a synapse index)
and the index ``j`` of the draw within that tuple. No generator state exists,
so the numbers cannot depend on how the lattice is split over ranks or threads,
on the order in which sites are visited, or on where a run was restarted.

The generator is Philox4x32-10 (Salmon, Moraes, Dror & Shaw 2011, "Parallel
random numbers: as easy as 1, 2, 3", the ``philox4x32`` of Random123): a keyed
bijection of a 128-bit counter under a 64-bit key, producing four 32-bit words
per evaluation.

Key layout (bit ranges inclusive, bit 0 least significant)::

    key     k0 = seed                              (seed   < 2**32)
            k1 = stream                            (stream < 2**8; bits 8-31 zero)
    counter c0 = site                              (site   < 2**32)
            c1 = ident                             (ident  < 2**32)
            c2 = step bits 0-31                    (step   < 2**48)
            c3 = step bits 32-47 in bits 16-31,
                 j >> 1 in bits 0-14               (j      < 2**16; bit 15 zero)

Each counter therefore yields the draws ``j = 2b`` and ``j = 2b + 1`` of block
``b = j >> 1``: words ``(x0, x1)`` make the 64-bit integer of the even draw and
``(x2, x3)`` that of the odd draw. Distinct tuples within the ranges map to
distinct (key, counter) pairs, hence to independent blocks.

A 64-bit word ``w`` becomes the double ``((w >> 12) + 0.5) * 2**-52``: 52 random
bits on the midpoint grid, so every uniform lies strictly inside (0, 1)
(smallest ``2**-53``, largest ``1 - 2**-53``), the grid is symmetric about 1/2
(``1 - u`` is exact and on the grid) and ``log(u)`` is always finite.

All samplers are ``@njit`` functions meant to be called from inside other numba
kernels (including ``prange`` loops); they can also be called from Python.
Out-of-range arguments raise :class:`RandomArgumentError` (a ``ValueError``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

STREAM_MESO = 1
"""Finite-size spike-count draws of the mesoscopic populations."""
STREAM_ESCAPE = 2
"""Escape-noise firing decisions of microscopic neurons."""
STREAM_CONNECT = 3
"""Microscopic connectivity (source site and neuron of each synapse)."""
STREAM_STIMULUS = 4
"""Ornstein-Uhlenbeck stimulus noise."""
STREAM_INIT = 5
"""Initial conditions."""

# Exclusive upper bounds of the key fields (see the layout above), of the trial
# count of binomial and poisson_clipped (exact integers in float64), and of a
# Philox word.
SEED_END = 2**32
STREAM_END = 2**8
SITE_END = 2**32
IDENT_END = 2**32
STEP_END = 2**48
DRAW_END = 2**16
N_END = 2**53
_WORD_END = 2**32

BINOMIAL_INVERSION_MAX_MEAN = 30.0
"""``binomial`` uses inversion when ``n * min(p, 1 - p)`` is below this, BTRD above
(the measured cost crossover; BTRD needs at least 10)."""
POISSON_INVERSION_MAX_MEAN = 10.0
"""``poisson_clipped`` uses inversion when the mean is below this, PTRS above."""

# Philox4x32 round multipliers and Weyl key increments (Salmon et al. 2011, Table 2).
_PHILOX_M0 = np.uint64(0xD2511F53)
_PHILOX_M1 = np.uint64(0xCD9E8D57)
_PHILOX_W0 = np.uint64(0x9E3779B9)
_PHILOX_W1 = np.uint64(0xBB67AE85)
_PHILOX_ROUNDS = 10
_MASK32 = np.uint64(0xFFFFFFFF)
_SHIFT12 = np.uint64(12)
_SHIFT16 = np.uint64(16)
_SHIFT32 = np.uint64(32)
_TWO_POW_M52 = 2.0**-52
_TWO_PI = 2.0 * math.pi
_HALF_LOG_TWO_PI = 0.5 * math.log(2.0 * math.pi)

# Below this argument the Stirling correction is tabulated from lgamma (absolute
# error a few 1e-15, the rounding of its terms); above it the five-term
# asymptotic series is accurate to rounding (the next term is below 1e-16).
_STIRLING_TABLE_END = 16


def _stirling_table() -> np.ndarray:
    return np.array([math.lgamma(k + 1.0) - (k + 0.5) * math.log(k + 1.0) + (k + 1.0)
                     - _HALF_LOG_TWO_PI for k in range(_STIRLING_TABLE_END)])


_STIRLING_SMALL = _stirling_table()


class RandomArgumentError(ValueError):
    """An argument of a random-number function is outside its allowed range."""


# ---------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------

@njit(cache=True)
def _philox_words(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 on uint64 values holding 32-bit words (no range checks)."""
    for _ in range(_PHILOX_ROUNDS):
        p0 = _PHILOX_M0 * c0
        p1 = _PHILOX_M1 * c2
        c0, c1, c2, c3 = ((p1 >> _SHIFT32) ^ c1 ^ k0, p1 & _MASK32,
                          (p0 >> _SHIFT32) ^ c3 ^ k1, p0 & _MASK32)
        k0 = (k0 + _PHILOX_W0) & _MASK32
        k1 = (k1 + _PHILOX_W1) & _MASK32
    return c0, c1, c2, c3


@njit(cache=True)
def philox4x32(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 block function (Random123 ``philox4x32``, 10 rounds).

    Parameters
    ----------
    c0, c1, c2, c3 : int
        Counter words, each ``0 <= c < 2**32``.
    k0, k1 : int
        Key words, each ``0 <= k < 2**32``.

    Returns
    -------
    tuple of 4 numpy.uint32
        The output words ``(x0, x1, x2, x3)``.
    """
    if not (0 <= c0 < _WORD_END and 0 <= c1 < _WORD_END and 0 <= c2 < _WORD_END
            and 0 <= c3 < _WORD_END and 0 <= k0 < _WORD_END and 0 <= k1 < _WORD_END):
        raise RandomArgumentError("philox4x32: counter and key words must satisfy "
                                  "0 <= word < 2**32")
    x0, x1, x2, x3 = _philox_words(np.uint64(c0), np.uint64(c1), np.uint64(c2),
                                   np.uint64(c3), np.uint64(k0), np.uint64(k1))
    return np.uint32(x0), np.uint32(x1), np.uint32(x2), np.uint32(x3)


@njit(cache=True)
def _check_key(seed, stream, site, ident, step, j, j_end):
    if seed < 0 or seed >= SEED_END:
        raise RandomArgumentError("random: seed must satisfy 0 <= seed < 2**32")
    if stream < 0 or stream >= STREAM_END:
        raise RandomArgumentError("random: stream must satisfy 0 <= stream < 256")
    if site < 0 or site >= SITE_END:
        raise RandomArgumentError("random: site (global flat index) must satisfy "
                                  "0 <= site < 2**32")
    if ident < 0 or ident >= IDENT_END:
        raise RandomArgumentError("random: ident must satisfy 0 <= ident < 2**32")
    if step < 0 or step >= STEP_END:
        raise RandomArgumentError("random: step must satisfy 0 <= step < 2**48")
    if j < 0 or j >= j_end:
        raise RandomArgumentError("random: draw index j out of range (uniform: "
                                  "0 <= j < 2**16; normal, uniform_pair: 0 <= j < 2**15)")


@njit(cache=True)
def _unit(hi, lo):
    """Two 32-bit words (uint64) -> double on the 52-bit midpoint grid in (0, 1)."""
    w = (hi << _SHIFT32) | lo
    return (np.float64(w >> _SHIFT12) + 0.5) * _TWO_POW_M52


@njit(cache=True)
def _uniform_pair(seed, stream, site, ident, step, block):
    """The draws ``j = 2*block`` and ``j = 2*block + 1`` of a tuple (no range checks)."""
    s = np.uint64(step)
    x0, x1, x2, x3 = _philox_words(
        np.uint64(site), np.uint64(ident), s & _MASK32,
        ((s >> _SHIFT32) << _SHIFT16) | np.uint64(block),
        np.uint64(seed), np.uint64(stream))
    return _unit(x0, x1), _unit(x2, x3)


@njit(cache=True)
def _next_uniform(seed, stream, site, ident, step, j, spare):
    """Draw ``j`` of a tuple for samplers consuming ``j = 0, 1, 2, ...`` in order.

    Returns ``(u, spare)``; pass ``spare`` back with ``j + 1`` so that each
    Philox evaluation serves two consecutive draws.
    """
    if j >= DRAW_END:
        raise RandomArgumentError("random: a sampler exhausted its 2**16 draws for one "
                                  "tuple (a rejection loop that should never be this long)")
    if j & 1:
        return spare, spare
    return _uniform_pair(seed, stream, site, ident, step, j >> 1)


@njit(cache=True)
def uniform(seed, stream, site, ident, step, j):
    """Uniform double strictly inside (0, 1), a pure function of its arguments.

    Parameters
    ----------
    seed : int
        Run seed, ``0 <= seed < 2**32``.
    stream : int
        Purpose of the draw, one of the ``STREAM_*`` constants (``< 256``).
    site : int
        Global flat site index, ``< 2**32``.
    ident : int
        Identity within the site (type index, or neuron id combined with the
        type), ``< 2**32``.
    step : int
        Time step or another counter, ``< 2**48``.
    j : int
        Index of the draw within the tuple, ``< 2**16``.

    Returns
    -------
    float
        ``(k + 0.5) * 2**-52`` with ``k`` uniform on ``0 .. 2**52 - 1``
        (52 random bits).
    """
    _check_key(seed, stream, site, ident, step, j, DRAW_END)
    a, b = _uniform_pair(seed, stream, site, ident, step, j >> 1)
    return b if j & 1 else a


@njit(cache=True)
def uniform_pair(seed, stream, site, ident, step, j):
    """The uniform draws ``2*j`` and ``2*j + 1`` of a tuple, from one Philox evaluation.

    Equal to ``(uniform(..., 2*j), uniform(..., 2*j + 1))`` at half the cost;
    ``0 <= j < 2**15``, the other arguments as in :func:`uniform`.

    Returns
    -------
    tuple of 2 float
    """
    _check_key(seed, stream, site, ident, step, j, DRAW_END // 2)
    return _uniform_pair(seed, stream, site, ident, step, j)


@njit(cache=True)
def normal(seed, stream, site, ident, step, j):
    """Standard normal variate by the Box-Muller transform.

    Consumes the uniform draws ``2*j`` (radius) and ``2*j + 1`` (angle) of the
    tuple, i.e. exactly one Philox block; ``0 <= j < 2**15``. The other
    arguments are as in :func:`uniform`.

    Returns
    -------
    float
        ``sqrt(-2 log u1) cos(2 pi u2)``; bounded by ``sqrt(-2 log 2**-53)``
        ~ 8.57 because ``u1 >= 2**-53``.
    """
    _check_key(seed, stream, site, ident, step, j, DRAW_END // 2)
    u1, u2 = _uniform_pair(seed, stream, site, ident, step, j)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(_TWO_PI * u2)


# ---------------------------------------------------------------------------
# Exact discrete samplers
# ---------------------------------------------------------------------------

@njit(cache=True)
def _stirling_correction(k):
    """``log(k!) - [(k + 1/2) log(k + 1) - (k + 1) + log(2 pi)/2]`` for whole ``k >= 0``
    (an integer or a float holding one)."""
    if k < _STIRLING_TABLE_END:
        return _STIRLING_SMALL[np.int64(k)]
    z = 1.0 / (k + 1.0)
    z2 = z * z
    return z * (1.0 / 12.0 - z2 * (1.0 / 360.0 - z2 * (1.0 / 1260.0
                - z2 * (1.0 / 1680.0 - z2 / 1188.0))))


@njit(cache=True)
def _inversion(f0, nr, r, k_end, clip, seed, stream, site, ident, step):
    """Inversion by sequential search from 0, one uniform per attempt.

    The pmf has ``f(0) = f0`` and ``f(k) / f(k-1) = nr / k - r`` for
    ``0 < k < k_end`` (binomial: ``nr = (n+1) p/q``, ``r = p/q``; Poisson:
    ``nr = mean``, ``r = 0``). With ``clip`` all mass at ``k >= k_end`` is
    returned as ``k_end``; otherwise the support ends below ``k_end``.
    The computed pmf sums to 1 only up to rounding: a uniform falling in the
    leftover sliver (probability ~1e-16) is redrawn, which keeps the map exact
    conditional on acceptance.
    """
    j = 0
    spare = 0.0
    while True:
        u, spare = _next_uniform(seed, stream, site, ident, step, j, spare)
        j += 1
        f = f0
        k = 0
        while True:
            if u <= f:
                return np.int64(k)
            u -= f
            k += 1
            if k == k_end:
                if clip:
                    return np.int64(k)
                break
            f *= nr / k - r
            if f == 0.0:
                break


@njit(cache=True)
def _binomial_btrd(n, p, seed, stream, site, ident, step):
    """BTRD (Hoermann 1993) for ``p <= 1/2`` and ``n p >= 10``."""
    q = 1.0 - p
    m = np.int64(np.floor((n + 1) * p))
    r = p / q
    nr = (n + 1) * r
    npq = n * p * q
    sqrt_npq = math.sqrt(npq)
    b = 1.15 + 2.53 * sqrt_npq
    a = -0.0873 + 0.0248 * b + 0.01 * p
    c = n * p + 0.5
    alpha = (2.83 + 5.1 / b) * sqrt_npq
    v_r = 0.92 - 4.2 / b
    u_rv_r = 0.86 * v_r
    nm = n - m + 1.0
    h = np.nan  # log-pmf constant of the final test, computed on first need
    j = 0
    spare = 0.0
    while True:
        v, spare = _next_uniform(seed, stream, site, ident, step, j, spare)
        j += 1
        if v <= u_rv_r:
            # Inside the centre box the hat lies below the pmf: accept at once.
            u = v / v_r - 0.43
            return np.int64(np.floor((2.0 * a / (0.5 - abs(u)) + b) * u + c))
        w, spare = _next_uniform(seed, stream, site, ident, step, j, spare)
        j += 1
        if v >= v_r:
            u = w - 0.5
        else:
            u = v / v_r - 0.93
            u = math.copysign(0.5, u) - u
            v = w * v_r
        us = 0.5 - abs(u)
        kf = np.floor((2.0 * a / us + b) * u + c)
        if kf < 0.0 or kf > n:
            continue
        k = np.int64(kf)
        v = v * alpha / (a / (us * us) + b)
        km = abs(k - m)
        if km <= 15:
            # f(k)/f(m) by the pmf recursion, cheap for k near the mode.
            f = 1.0
            if m < k:
                for i in range(m + 1, k + 1):
                    f *= nr / i - r
            elif m > k:
                for i in range(k + 1, m + 1):
                    v *= nr / i - r
            if v <= f:
                return k
            continue
        v = math.log(v)
        rho = (km / npq) * (((km / 3.0 + 0.625) * km + 1.0 / 6.0) / npq + 0.5)
        t = -km / (2.0 * npq) * km
        if v < t - rho:
            return k
        if v > t + rho:
            continue
        if np.isnan(h):
            h = ((m + 0.5) * math.log((m + 1.0) / (r * nm))
                 + _stirling_correction(m) + _stirling_correction(n - m))
        nk = n - k + 1.0
        if v <= (h + (n + 1.0) * math.log(nm / nk) + (k + 0.5) * math.log(nk * r / (k + 1.0))
                 - _stirling_correction(k) - _stirling_correction(n - k)):
            return k


@njit(cache=True)
def _binomial_small_p(n, p, seed, stream, site, ident, step):
    """Binomial(n, p) for ``p <= 1/2`` (no argument checks)."""
    if n == 0 or p == 0.0:
        return np.int64(0)
    if n * p < BINOMIAL_INVERSION_MAX_MEAN:
        r = p / (1.0 - p)
        return _inversion(math.exp(n * math.log1p(-p)), (n + 1) * r, r, n + 1, False,
                          seed, stream, site, ident, step)
    return _binomial_btrd(n, p, seed, stream, site, ident, step)


@njit(cache=True)
def binomial(n, p, seed, stream, site, ident, step):
    """Exact Binomial(n, p) variate.

    Method: for ``p > 1/2`` the draw is ``n - Binomial(n, 1 - p)`` (``1 - p``
    is exact there). With ``mu = n * min(p, 1 - p)``:

    - ``mu < BINOMIAL_INVERSION_MAX_MEAN`` (30): inversion of the CDF by
      sequential search from 0 with the pmf recursion; one uniform (``j = 0``)
      and about ``mu + 1`` multiply-divides per draw. Exact up to the rounding
      of the summed pmf (relative error ~``mu`` ulp).
    - otherwise: BTRD, transformed rejection with decomposition (W. Hoermann,
      "The generation of binomial random variates", J. Stat. Comput. Simul. 46,
      1993); ``O(1)`` expected cost (about 1.1-1.2 iterations of 1-2 uniforms;
      logarithms only in the tail checks). Exact up to the rounding of the
      log-pmf, evaluated with Stirling-corrected log-factorials (absolute
      error below 1e-14) so that no large terms cancel.

    Parameters
    ----------
    n : int
        Number of trials, ``0 <= n < 2**53``.
    p : float
        Success probability, ``0 <= p <= 1``.
    seed, stream, site, ident, step : int
        Key fields as in :func:`uniform`.

    Returns
    -------
    numpy.int64
        The variate in ``0 .. n``. Uses the uniform draws ``j = 0, 1, 2, ...``
        of the tuple, none when ``n == 0`` or ``p`` is 0 or 1.
    """
    _check_key(seed, stream, site, ident, step, 0, DRAW_END)
    if n < 0 or n >= N_END:
        raise RandomArgumentError("binomial: n must satisfy 0 <= n < 2**53")
    if not (0.0 <= p <= 1.0):
        raise RandomArgumentError("binomial: p must satisfy 0 <= p <= 1 (got NaN or out of range)")
    trials = np.int64(n)
    if p > 0.5:
        return trials - _binomial_small_p(trials, 1.0 - p, seed, stream, site, ident, step)
    return _binomial_small_p(trials, p, seed, stream, site, ident, step)


@njit(cache=True)
def _poisson_ptrs(lam, seed, stream, site, ident, step):
    """PTRS (Hoermann 1993) for ``lam >= 10``."""
    b = 0.931 + 2.53 * math.sqrt(lam)
    a = -0.059 + 0.02483 * b
    log_inv_alpha = math.log(1.1239 + 1.1328 / (b - 3.4))
    v_r = 0.9277 - 3.6224 / (b - 2.0)
    j = 0
    spare = 0.0
    while True:
        w, spare = _next_uniform(seed, stream, site, ident, step, j, spare)
        v, spare = _next_uniform(seed, stream, site, ident, step, j + 1, spare)
        j += 2
        u = w - 0.5
        us = 0.5 - abs(u)
        kf = np.floor((2.0 * a / us + b) * u + lam + 0.43)
        if us >= 0.07 and v <= v_r:
            return np.int64(kf)
        if kf < 0.0 or (us < 0.013 and v > us):
            continue
        # log pmf(k) with log k! written through the Stirling correction so that
        # no two large terms cancel (k log lam and log k! are both ~ lam log lam).
        # Kept in float: for us -> 0 the candidate k may exceed the int64 range,
        # and is then rejected here.
        log_pmf = (kf * math.log(lam / (kf + 1.0)) - 0.5 * math.log(kf + 1.0)
                   + (kf + 1.0 - lam) - _HALF_LOG_TWO_PI - _stirling_correction(kf))
        if math.log(v) + log_inv_alpha - math.log(a / (us * us) + b) <= log_pmf:
            return np.int64(kf)


@njit(cache=True)
def poisson_clipped(mean, n, seed, stream, site, ident, step):
    """Exact Poisson(mean) variate clipped to at most ``n`` (MODEL.md §4 alternative).

    Method: ``mean < POISSON_INVERSION_MAX_MEAN`` (10): inversion by sequential
    search from 0 (one uniform, about ``mean + 1`` multiply-divides, stopping
    early at ``n``); otherwise PTRS, transformed rejection with squeeze
    (W. Hoermann, "The transformed rejection method for generating Poisson
    random variables", Insurance: Math. Econ. 12, 1993), ``O(1)`` expected cost
    with about 1.1 iterations of two uniforms. Both are exact up to
    floating-point rounding.

    Parameters
    ----------
    mean : float
        Poisson mean, ``0 <= mean < 2**53``.
    n : int
        Upper clip, ``0 <= n < 2**53``.
    seed, stream, site, ident, step : int
        Key fields as in :func:`uniform`.

    Returns
    -------
    numpy.int64
        ``min(X, n)`` with ``X ~ Poisson(mean)``; uses the uniform draws
        ``j = 0, 1, 2, ...`` of the tuple (none when ``mean == 0`` or ``n == 0``).
    """
    _check_key(seed, stream, site, ident, step, 0, DRAW_END)
    if n < 0 or n >= N_END:
        raise RandomArgumentError("poisson_clipped: n must satisfy 0 <= n < 2**53")
    if not (0.0 <= mean < N_END):
        raise RandomArgumentError("poisson_clipped: mean must satisfy 0 <= mean < 2**53 "
                                  "(got NaN or out of range)")
    clip = np.int64(n)
    if mean == 0.0 or clip == 0:
        return np.int64(0)
    if mean >= POISSON_INVERSION_MAX_MEAN:
        return min(_poisson_ptrs(mean, seed, stream, site, ident, step), clip)
    return _inversion(math.exp(-mean), mean, 0.0, clip, True, seed, stream, site, ident, step)
