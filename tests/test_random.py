"""Tests of meshfield.random: Philox4x32-10, the key layout and the exact samplers.

Statistical tests use fixed seeds, so they are deterministic; their tolerances
are derived from the sample size (standard errors) and stated where used.
"""

import math

import numpy as np
import pytest
from numba import njit, prange
from scipy import stats

from meshfield import random as mr
from meshfield.random import (RandomArgumentError, binomial, normal, philox4x32,
                              poisson_clipped, uniform, uniform_pair)

SEED = 20240917
MASK32 = 0xFFFFFFFF

# Random123 known-answer vectors (random123 tests/kat_vectors, "philox4x32 10" lines):
# counter words 0-3, key words 0-1, expected output words 0-3.
PHILOX_KAT = [
    ((0x00000000, 0x00000000, 0x00000000, 0x00000000), (0x00000000, 0x00000000),
     (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF),
     (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


# ---------------------------------------------------------------------------
# Pure-Python references
# ---------------------------------------------------------------------------

def philox_reference(counter, key):
    """Philox4x32-10 on Python integers, written from Salmon et al. (2011)."""
    x = list(counter)
    k0, k1 = key
    for _ in range(10):
        prod0 = 0xD2511F53 * x[0]
        prod1 = 0xCD9E8D57 * x[2]
        x = [(prod1 >> 32) ^ x[1] ^ k0, prod1 & MASK32,
             (prod0 >> 32) ^ x[3] ^ k1, prod0 & MASK32]
        k0 = (k0 + 0x9E3779B9) & MASK32
        k1 = (k1 + 0xBB67AE85) & MASK32
    return tuple(x)


def uniform_reference(seed, stream, site, ident, step, j):
    """The key layout and double conversion as documented in meshfield.random."""
    counter = (site, ident, step & MASK32, ((step >> 32) << 16) | (j >> 1))
    x = philox_reference(counter, (seed, stream))
    hi, lo = (x[0], x[1]) if j % 2 == 0 else (x[2], x[3])
    word = (hi << 32) | lo
    return ((word >> 12) + 0.5) * 2.0**-52


# ---------------------------------------------------------------------------
# Vectorised draws (numba loops so that 10^6 draws take milliseconds)
# ---------------------------------------------------------------------------

@njit(cache=True)
def uniforms_over_sites(seed, stream, site0, ident, step, j, count):
    out = np.empty(count)
    for i in range(count):
        out[i] = uniform(seed, stream, site0 + i, ident, step, j)
    return out


@njit(cache=True)
def uniforms_varying(key, field, count):
    """``count`` uniforms at ``key`` (seed, stream, site, ident, step, j) with the
    key field number ``field`` increased by 0, 1, ..., count - 1."""
    inc = np.zeros(6, dtype=np.int64)
    inc[field] = 1
    out = np.empty(count)
    for i in range(count):
        out[i] = uniform(key[0] + i * inc[0], key[1] + i * inc[1], key[2] + i * inc[2],
                         key[3] + i * inc[3], key[4] + i * inc[4], key[5] + i * inc[5])
    return out


@njit(cache=True)
def normals_over_sites(seed, count):
    out = np.empty(count)
    for i in range(count):
        out[i] = normal(seed, mr.STREAM_STIMULUS, i, 0, 0, 0)
    return out


@njit(cache=True)
def binomials_over_sites(n, p, seed, count):
    out = np.empty(count, dtype=np.int64)
    for i in range(count):
        out[i] = binomial(n, p, seed, mr.STREAM_MESO, i, 0, 7)
    return out


@njit(cache=True)
def poissons_over_sites(mean, n, seed, count):
    out = np.empty(count, dtype=np.int64)
    for i in range(count):
        out[i] = poisson_clipped(mean, n, seed, mr.STREAM_MESO, i, 1, 7)
    return out


@njit(cache=True, parallel=True)
def binomials_parallel(n, p, seed, count):
    out = np.empty(count, dtype=np.int64)
    for i in prange(count):
        out[i] = binomial(n, p, seed, mr.STREAM_MESO, i, 0, 7)
    return out


@njit(cache=True)
def binomials_reversed(n, p, seed, count):
    out = np.empty(count, dtype=np.int64)
    for i in range(count - 1, -1, -1):
        out[i] = binomial(n, p, seed, mr.STREAM_MESO, i, 0, 7)
    return out


# ---------------------------------------------------------------------------
# Statistical helpers
# ---------------------------------------------------------------------------

def assert_moments(x, mean, var, mu4, label):
    """Sample mean and variance within 5 standard errors.

    SE(mean) = sqrt(var/N); SE(sample variance) = sqrt((mu4 - var**2)/N), the
    large-N standard deviation of the sample variance from the fourth central
    moment mu4. A deviation of 5 SE has probability ~6e-7 under a correct sampler.
    """
    n = len(x)
    se_mean = math.sqrt(var / n)
    se_var = math.sqrt(max(mu4 - var * var, 0.0) / n)
    assert abs(x.mean() - mean) <= 5 * se_mean, (label, x.mean(), mean, se_mean)
    assert abs(x.var() - var) <= 5 * se_var, (label, x.var(), var, se_var)


def assert_tail(x, k, sf_k_minus_1, label):
    """Empirical P(X >= k) within 5 binomial standard errors sqrt(P(1-P)/N) of the exact value."""
    prob = sf_k_minus_1
    se = math.sqrt(prob * (1 - prob) / len(x))
    assert abs(np.mean(x >= k) - prob) <= 5 * se, (label, k, np.mean(x >= k), prob, se)


def chi_square_pvalue(x, dist, lo, hi):
    """Chi-square goodness-of-fit p-value of integer samples ``x`` against ``dist``
    (a frozen scipy discrete distribution) on the cells ``lo .. hi``, where the
    first cell holds all mass <= lo and the last all mass >= hi (this is also the
    exact law of a draw clipped to ``hi``). Adjacent cells are pooled until every
    expected count is at least 5, the usual validity condition of the test."""
    ks = np.arange(lo, hi + 1)
    probs = dist.pmf(ks)
    probs[0] = dist.cdf(lo)
    probs[-1] = dist.sf(hi - 1) if hi > lo else 1.0
    observed = np.bincount(np.clip(x, lo, hi) - lo, minlength=len(ks)).astype(float)
    expected = probs * len(x)
    pooled_obs, pooled_exp = [], []
    acc_o = acc_e = 0.0
    for o, e in zip(observed, expected):
        acc_o += o
        acc_e += e
        if acc_e >= 5.0:
            pooled_obs.append(acc_o)
            pooled_exp.append(acc_e)
            acc_o = acc_e = 0.0
    pooled_obs[-1] += acc_o
    pooled_exp[-1] += acc_e
    pooled_obs, pooled_exp = np.array(pooled_obs), np.array(pooled_exp)
    assert len(pooled_obs) >= 2
    pooled_exp *= pooled_obs.sum() / pooled_exp.sum()  # remove ~1e-15 normalisation residue
    return stats.chisquare(pooled_obs, pooled_exp).pvalue


# ---------------------------------------------------------------------------
# Philox
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("counter, key, expected", PHILOX_KAT)
def test_philox_known_answers(counter, key, expected):
    assert tuple(int(w) for w in philox4x32(*counter, *key)) == expected
    assert philox_reference(counter, key) == expected


def test_philox_matches_python_reference():
    rng = np.random.default_rng(SEED)
    words = rng.integers(0, 2**32, size=(300, 6), dtype=np.uint64)
    words[:10] = MASK32  # include the carry edge of every word
    for row in words:
        c = tuple(int(w) for w in row)
        got = tuple(int(w) for w in philox4x32(*c))
        assert got == philox_reference(c[:4], c[4:]), c


def test_philox_rejects_words_outside_32_bits():
    with pytest.raises(RandomArgumentError):
        philox4x32(2**32, 0, 0, 0, 0, 0)
    with pytest.raises(RandomArgumentError):
        philox4x32(0, 0, 0, 0, 0, -1)


# ---------------------------------------------------------------------------
# uniform and normal
# ---------------------------------------------------------------------------

def test_uniform_matches_documented_layout():
    rng = np.random.default_rng(SEED + 1)
    for _ in range(300):
        key = (int(rng.integers(0, 2**32)), int(rng.integers(0, 256)),
               int(rng.integers(0, 2**32)), int(rng.integers(0, 2**32)),
               int(rng.integers(0, 2**48)), int(rng.integers(0, 2**16)))
        assert uniform(*key) == uniform_reference(*key), key
    edge = (2**32 - 1, 255, 2**32 - 1, 2**32 - 1, 2**48 - 1, 2**16 - 1)
    assert uniform(*edge) == uniform_reference(*edge)


def test_uniform_is_deterministic_and_distinct_in_every_field():
    key = [3, mr.STREAM_MESO, 17, 2, 2**40 + 5, 4]
    base = uniform(*key)
    assert uniform(*key) == base
    for field in range(6):
        other = list(key)
        other[field] += 1
        assert uniform(*other) != base, field
    # The high step bits reach the counter, so steps 2**32 apart differ.
    assert uniform(3, 1, 17, 2, 5, 4) != uniform(3, 1, 17, 2, 2**32 + 5, 4)


def test_uniform_conversion_stays_strictly_inside_unit_interval():
    zero, ones = np.uint64(0), np.uint64(MASK32)
    assert mr._unit(zero, zero) == 2.0**-53
    assert mr._unit(ones, ones) == 1.0 - 2.0**-53
    x = uniforms_over_sites(SEED, mr.STREAM_ESCAPE, 0, 0, 0, 0, 10**6)
    assert x.min() > 0.0 and x.max() < 1.0


def test_uniform_moments():
    x = uniforms_over_sites(SEED, mr.STREAM_ESCAPE, 0, 0, 0, 0, 10**6)
    # Uniform(0,1): variance 1/12, fourth central moment 1/80.
    assert_moments(x, 0.5, 1 / 12, 1 / 80, "uniform")


def test_uniform_chi_square():
    x = uniforms_over_sites(SEED + 2, mr.STREAM_ESCAPE, 0, 3, 11, 1, 10**6)
    counts = np.bincount((x * 100).astype(np.int64), minlength=100)
    pvalue = stats.chisquare(counts).pvalue
    # Two-sided at 1e-3: too good a fit would expose a non-random sequence.
    assert 1e-3 < pvalue < 1 - 1e-3, pvalue


@pytest.mark.parametrize("field, name", [(0, "seed"), (2, "site"), (3, "ident"),
                                         (4, "step")])
def test_uniform_neighbouring_tuples_are_uncorrelated(field, name):
    # Under independence the correlation coefficient of n pairs has standard
    # deviation 1/sqrt(n); 5/sqrt(n) is the 5-sigma bound.
    count = 200_000
    key = np.array([SEED, mr.STREAM_CONNECT, 1000, 7, 123456, 0])
    a = uniforms_varying(key, field, count + 1)
    r = np.corrcoef(a[:-1], a[1:])[0, 1]
    assert abs(r) < 5 / math.sqrt(count), (name, r)


@pytest.mark.parametrize("stream_a, j_a, stream_b, j_b", [
    (1, 0, 2, 0), (4, 0, 5, 0), (1, 0, 1, 1), (1, 1, 1, 2), (1, 2**16 - 2, 1, 2**16 - 1),
])
def test_uniform_neighbouring_streams_and_draws_are_uncorrelated(stream_a, j_a, stream_b, j_b):
    # Streams (256) and draw indices (2**16) have too few values for a long
    # sequence, so neighbours are paired over many sites; j = 0, 1 share one
    # Philox block, j = 1, 2 straddle two. Bound as above.
    count = 200_000
    x = uniforms_over_sites(SEED, stream_a, 0, 7, 123456, j_a, count)
    y = uniforms_over_sites(SEED, stream_b, 0, 7, 123456, j_b, count)
    r = np.corrcoef(x, y)[0, 1]
    assert abs(r) < 5 / math.sqrt(count), r


def test_uniform_pair_is_draws_2j_and_2j_plus_1():
    for j in (0, 1, 5, 2**15 - 1):
        key = (9, 3, 3, 2, 2**40 + 1)
        assert uniform_pair(*key, j) == (uniform(*key, 2 * j), uniform(*key, 2 * j + 1))


def test_normal_is_box_muller_on_draws_2j_and_2j_plus_1():
    for j in (0, 1, 5, 2**15 - 1):
        u1 = uniform(9, 4, 3, 2, 1, 2 * j)
        u2 = uniform(9, 4, 3, 2, 1, 2 * j + 1)
        expected = math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)
        # Not bitwise: numba's and CPython's libm calls may differ by an ulp.
        assert math.isclose(normal(9, 4, 3, 2, 1, j), expected, rel_tol=1e-13, abs_tol=1e-15)


def test_normal_distribution():
    z = normals_over_sites(SEED, 10**6)
    assert_moments(z, 0.0, 1.0, 3.0, "normal")
    assert stats.kstest(z, "norm").pvalue > 1e-3


@pytest.mark.parametrize("key, name", [
    ((-1, 1, 0, 0, 0, 0), "seed"), ((2**32, 1, 0, 0, 0, 0), "seed"),
    ((0, 256, 0, 0, 0, 0), "stream"), ((0, 1, -1, 0, 0, 0), "site"),
    ((0, 1, 2**32, 0, 0, 0), "site"), ((0, 1, 0, 2**32, 0, 0), "ident"),
    ((0, 1, 0, 0, 2**48, 0), "step"), ((0, 1, 0, 0, -1, 0), "step"),
    ((0, 1, 0, 0, 0, 2**16), "draw index j"),
])
def test_uniform_rejects_out_of_range_keys(key, name):
    with pytest.raises(RandomArgumentError, match=name):
        uniform(*key)


@pytest.mark.parametrize("function", [normal, uniform_pair])
def test_pair_functions_reject_j_beyond_half_range(function):
    with pytest.raises(RandomArgumentError, match="draw index j"):
        function(0, 1, 0, 0, 0, 2**15)


# ---------------------------------------------------------------------------
# Exact samplers
# ---------------------------------------------------------------------------

def test_stirling_correction_is_consistent_across_table_and_series():
    # fc(k) - fc(k-1) = 1 + (k + 1/2) log(1 - 1/(k+1)) exactly. Evaluated with
    # log1p the right side is good to ~2e-16. The table (k < 16, from lgamma)
    # carries rounding of its ~40-sized terms, a few 1e-15; beyond it the series
    # must match to rounding, which its smallest term (1/(1188 (k+1)^9) = 4e-15
    # at k = 17) would violate if any coefficient were wrong.
    fc = [mr._stirling_correction(k) for k in range(400)]
    for k in range(1, 400):
        expected = 1.0 + (k + 0.5) * math.log1p(-1.0 / (k + 1))
        tol = 1e-14 if k <= mr._STIRLING_TABLE_END else 5e-16
        assert abs((fc[k] - fc[k - 1]) - expected) < tol, k
    assert abs(fc[0] - (1.0 - 0.5 * math.log(2 * math.pi))) < 1e-16
    assert abs(mr._stirling_correction(10**9) - 1 / (12 * (10**9 + 1))) < 1e-25


# (n, p) grid: n = 1; the inversion regime and BTRD on both sides of the switch
# at n min(p, 1-p) = BINOMIAL_INVERSION_MAX_MEAN; n p in the tens, hundreds,
# thousands and millions; p > 1/2 through the symmetry in both regimes.
_EDGE = int(2 * mr.BINOMIAL_INVERSION_MAX_MEAN)
BINOMIAL_GRID = [
    (1, 0.3), (500, 0.01), (200, 0.05), (800, 0.02), (_EDGE - 1, 0.5), (_EDGE, 0.5),
    (1000, 0.05), (10000, 0.3), (10**6, 1e-4), (50, 0.9), (2000, 0.9), (10**7, 0.5),
]


@pytest.mark.parametrize("n, p", BINOMIAL_GRID)
def test_binomial_distribution(n, p):
    # The rejection sampler (BTRD) gets 10x more draws: its exactness rests on
    # its hat and squeeze constants, which only statistics can check (inversion
    # is also checked exactly, against the quantile function, below). 2e6 draws
    # resolve a misplaced 1% of the acceptance near the mode.
    rejection = n * min(p, 1 - p) >= mr.BINOMIAL_INVERSION_MAX_MEAN
    count = 2_000_000 if rejection else 200_000
    x = binomials_over_sites(n, p, SEED, count)
    assert x.min() >= 0 and x.max() <= n
    dist = stats.binom(n, p)
    mean, var = n * p, n * p * (1 - p)
    # Fourth central moment of the binomial: n p q (1 + 3 (n - 2) p q).
    mu4 = var * (1 + 3 * (n - 2) * p * (1 - p))
    assert_moments(x.astype(float), mean, var, mu4, (n, p))
    k_tail = int(math.ceil(mean + 3 * math.sqrt(var)))
    if k_tail <= n:
        assert_tail(x, k_tail, dist.sf(k_tail - 1), (n, p))
    k_low = int(math.floor(mean - 3 * math.sqrt(var)))
    if k_low >= 0:
        assert_tail(-x, -k_low, dist.cdf(k_low), (n, p))
    lo, hi = int(dist.ppf(1e-12)), int(dist.isf(1e-12))
    assert chi_square_pvalue(x, dist, lo, max(hi, lo + 1)) > 1e-3


def test_samplers_with_huge_arguments():
    # Far beyond any population size the candidates of the rejection samplers
    # reach ~1e12 and the far tails ~1e23 (float before int64 conversion);
    # moments must still hold (5 SE as in assert_moments).
    n, p = 10**12, 0.3
    var = n * p * (1 - p)
    x = binomials_over_sites(n, p, SEED, 20_000).astype(float)
    assert_moments(x, n * p, var, var * (1 + 3 * (n - 2) * p * (1 - p)), "binomial 1e12")
    mean = 1e12
    y = poissons_over_sites(mean, 2**52, SEED, 20_000).astype(float)
    assert_moments(y, mean, mean, mean * (1 + 3 * mean), "poisson 1e12")


@pytest.mark.parametrize("p, expected", [(0.0, 0), (1.0, 1234)])
def test_binomial_degenerate_p(p, expected):
    assert np.all(binomials_over_sites(1234, p, SEED, 1000) == expected)


def test_binomial_zero_trials():
    assert binomial(0, 0.3, 1, 1, 0, 0, 0) == 0


def test_binomial_inversion_is_the_quantile_of_draw_zero():
    # For n min(p, 1-p) < BINOMIAL_INVERSION_MAX_MEAN the draw is F^{-1}(u)
    # with u = uniform(..., j=0) (n - F^{-1}(u) of the complement for p > 1/2).
    # Uniforms within 1e-12 of a CDF step are skipped: there the summed pmf
    # may round the other way.
    for n, p in [(500, 0.01), (20, 0.5), (1000, 0.995)]:
        q_small = min(p, 1 - p)
        dist = stats.binom(n, q_small)
        cdf = dist.cdf(np.arange(n + 1))
        checked = 0
        for site in range(2000):
            u = uniform(5, mr.STREAM_MESO, site, 0, 9, 0)
            if np.min(np.abs(cdf - u)) < 1e-12:
                continue
            k = int(np.searchsorted(cdf, u))
            expected = k if p <= 0.5 else n - k
            assert binomial(n, p, 5, mr.STREAM_MESO, site, 0, 9) == expected, (n, p, site)
            checked += 1
        assert checked > 1900


def test_binomial_same_in_parallel_and_in_any_order():
    par = binomials_parallel(10000, 0.3, SEED, 5000)
    assert np.array_equal(par, binomials_reversed(10000, 0.3, SEED, 5000))
    assert np.array_equal(par, binomials_over_sites(10000, 0.3, SEED, 5000))


@pytest.mark.parametrize("n, p, match", [
    (-1, 0.5, "n must"), (10, -0.1, "p must"), (10, 1.5, "p must"), (10, math.nan, "p must"),
])
def test_binomial_rejects_bad_arguments(n, p, match):
    with pytest.raises(RandomArgumentError, match=match):
        binomial(n, p, 1, 1, 0, 0, 0)


# (mean, n): inversion and PTRS, unclipped in practice (n far above the mean)
# and clipped (n inside the bulk of the distribution).
POISSON_GRID = [
    (0.05, 1000), (3.0, 1000), (9.9, 1000), (10.0, 1000), (30.0, 1000),
    (1e4, 2 * 10**4), (1e6, 10**7), (5.0, 3), (40.0, 38),
]


@pytest.mark.parametrize("mean, n", POISSON_GRID)
def test_poisson_clipped_distribution(mean, n):
    # More draws for the rejection sampler (PTRS), as for the binomial.
    count = 2_000_000 if mean >= mr.POISSON_INVERSION_MAX_MEAN else 200_000
    x = poissons_over_sites(mean, n, SEED, count)
    assert x.min() >= 0 and x.max() <= n
    dist = stats.poisson(mean)
    # Exact law of min(X, n) on n_low..n_top, the last cell holding P(X >= n_top);
    # the mass omitted below ppf(1e-15) cannot affect the moments at this N.
    n_low = max(0, int(dist.ppf(1e-15)) - 1)
    n_top = min(n, int(dist.isf(1e-15)) + 1)
    ks = np.arange(n_low, n_top + 1, dtype=float)
    probs = dist.pmf(ks)
    probs[-1] = dist.sf(n_top - 1)
    m1 = probs @ ks
    var = probs @ (ks - m1) ** 2
    mu4 = probs @ (ks - m1) ** 4
    assert_moments(x.astype(float), m1, var, mu4, (mean, n))
    k_tail = int(math.ceil(mean + 3 * math.sqrt(mean)))
    if k_tail <= n:
        assert_tail(x, k_tail, dist.sf(k_tail - 1), (mean, n))
    lo = int(dist.ppf(1e-12))
    hi = min(n, int(dist.isf(1e-12)))
    assert chi_square_pvalue(x, dist, lo, max(hi, lo + 1)) > 1e-3


def test_poisson_inversion_is_the_clipped_quantile_of_draw_zero():
    for mean, n in [(3.0, 1000), (6.0, 4)]:
        cdf = stats.poisson(mean).cdf(np.arange(200))
        for site in range(2000):
            u = uniform(5, mr.STREAM_MESO, site, 0, 9, 0)
            if np.min(np.abs(cdf - u)) < 1e-12:
                continue
            expected = min(int(np.searchsorted(cdf, u)), n)
            assert poisson_clipped(mean, n, 5, mr.STREAM_MESO, site, 0, 9) == expected


def test_poisson_degenerate_cases():
    assert poisson_clipped(0.0, 10, 1, 1, 0, 0, 0) == 0
    assert poisson_clipped(5.0, 0, 1, 1, 0, 0, 0) == 0


@pytest.mark.parametrize("mean, n, match", [
    (-1.0, 10, "mean must"), (math.nan, 10, "mean must"), (1.0, -1, "n must"),
])
def test_poisson_rejects_bad_arguments(mean, n, match):
    with pytest.raises(RandomArgumentError, match=match):
        poisson_clipped(mean, n, 1, 1, 0, 0, 0)
