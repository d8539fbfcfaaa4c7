"""Tests of the static linear stability theory (meshfield.theory.linear)."""

import tracemalloc
from types import SimpleNamespace

import numpy as np
import pytest

from meshfield.config import Config
from meshfield.coupling import build_stencils
from meshfield.theory import (
    TheoryInputError,
    dispersion,
    lattice_wave_vectors,
    renewal_rate_discrete,
    stationary_rate_discrete,
    static_gain,
    stencil_fourier,
)

NEURON = dict(tau_m=20.0, t_ref=4.0, u_reset=0.0, u_th=15.0, c=10.0, delta_u=2.5, tau_s=3.0)


def config(shape, dx, couplings, populations=None, dt=0.5, boundary="periodic"):
    """A validated configuration with the given lattice and couplings."""
    if populations is None:
        populations = {"E": dict(N=100, mu=20.0, **NEURON)}
    return Config.from_dict(dict(
        run=dict(t_end=10.0, dt=dt),
        lattice=dict(shape=list(shape), dx=dx, boundary=boundary),
        populations=populations,
        couplings=couplings,
    ))


def coupling(target="E", source="E", J=0.2, C=50, kernel=None):
    return dict(target=target, source=source, J=J, C=C,
                kernel=kernel or {"shape": "delta"}, delay={"d0": 1.0})


def only_stencil(cfg):
    (stencil,) = build_stencils(cfg)
    return stencil


# ---------------------------------------------------------------------------
# stencil_fourier
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(16,), (8, 12)])
def test_delta_kernel_transform_is_one(shape):
    cfg = config(shape, 0.1, [coupling()])
    kappa_hat = stencil_fourier(only_stencil(cfg), shape, 0.1)
    assert kappa_hat.shape == shape
    np.testing.assert_allclose(kappa_hat, 1.0, rtol=0, atol=1e-15)


@pytest.mark.parametrize("shape, kernel", [
    ((32,), {"shape": "gaussian", "sigma": 0.2, "r_max": 0.6}),
    ((20, 24), {"shape": "exponential", "length": 0.15, "r_max": 0.5}),
    ((20, 20), {"shape": "dog", "sigma_center": 0.1, "sigma_surround": 0.3, "surround_weight": 0.5,
                "r_max": 0.9}),
])
def test_symmetric_kernel_transform_is_real_and_one_at_zero(shape, kernel):
    cfg = config(shape, 0.1, [coupling(kernel=kernel)])
    kappa_hat = stencil_fourier(only_stencil(cfg), shape, 0.1)
    # Each imaginary part is a sum of +-kappa(o) sin(k.o dx) pairs that cancel
    # up to round-off of terms <= 1.
    assert np.max(np.abs(kappa_hat.imag)) < 1e-14
    assert kappa_hat.flat[0] == pytest.approx(1.0, abs=1e-14)
    # A probability distribution has |kappa_hat| <= 1, and a non-delta one < 1 at k != 0.
    assert np.max(np.abs(kappa_hat.flat[1:])) < 1.0


def test_shifted_kernel_carries_its_phase():
    """One offset o = +2 sites: kappa_hat(k) = exp(-2 i k dx) (the sign convention)."""
    cfg = config((10,), 0.1, [coupling(kernel={"shape": "custom", "weights": [[2, 1.0]]})])
    k = lattice_wave_vectors((10,), 0.1)[..., 0]
    np.testing.assert_allclose(stencil_fourier(only_stencil(cfg), (10,), 0.1), np.exp(-2j * k * 0.1),
                               rtol=0, atol=1e-14)


def test_wave_vectors_are_the_fft_grid():
    k = lattice_wave_vectors((4, 6), 0.5)
    assert k.shape == (4, 6, 2)
    np.testing.assert_allclose(k[:, 0, 0], 2 * np.pi * np.array([0, 1, -2, -1]) / (4 * 0.5))
    np.testing.assert_allclose(k[0, :, 1], 2 * np.pi * np.array([0, 1, 2, -3, -2, -1]) / (6 * 0.5))


@pytest.mark.parametrize("shape, dx, sigma, tol", [
    # sigma = 10 sites, r_max = 6 sigma: the truncated mass is erfc(6/sqrt 2) = 2e-9
    # and the aliasing terms of the Poisson sum exp(-2 pi^2 sigma^2/dx^2) vanish, so
    # the discrete transform equals the continuous exp(-sigma^2 k^2/2) to ~1e-8.
    ((256,), 0.01, 0.1, 1e-7),
    # 2-D, sigma = 5 sites, r_max = 6 sigma: truncated mass exp(-18) = 1.5e-8.
    ((64, 64), 0.02, 0.1, 1e-6),
])
def test_gaussian_transform_approaches_the_continuous_limit(shape, dx, sigma, tol):
    cfg = config(shape, dx, [coupling(kernel={"shape": "gaussian", "sigma": sigma, "r_max": 6 * sigma})])
    kappa_hat = stencil_fourier(only_stencil(cfg), shape, dx)
    k2 = np.sum(lattice_wave_vectors(shape, dx) ** 2, axis=-1)
    np.testing.assert_allclose(kappa_hat.real, np.exp(-0.5 * sigma**2 * k2), rtol=0, atol=tol)


def test_stencil_dimension_mismatch_is_an_error():
    bad = SimpleNamespace(offsets=np.zeros((1, 2), dtype=int), weights=np.ones(1))
    with pytest.raises(TheoryInputError, match="do not fit"):
        stencil_fourier(bad, (8,), 0.1)


def dense_fourier(offsets, weights, shape, dx):
    """The defining sum kappa_hat(k) = sum_o kappa(o) exp(-i k.o dx), one phase per (k, o)."""
    k = lattice_wave_vectors(shape, dx)
    phase = k.reshape(-1, len(shape)) @ (np.asarray(offsets, dtype=float).T * dx)
    return (np.exp(-1j * phase) @ np.asarray(weights, dtype=float)).reshape(shape)


@pytest.mark.parametrize("shape", [(6, 10), (7, 4), (9,)])
def test_fft_equals_the_defining_sum_with_aliasing(shape):
    """A non-symmetric stencil with offsets up to 3 lattice lengths, several of which
    alias onto one site (o and o + n per axis), and weights that do not sum to 1."""
    rng = np.random.default_rng(7)
    n = np.asarray(shape)
    offsets = rng.integers(-3 * n, 3 * n + 1, size=(40, len(shape)))
    offsets = np.concatenate([offsets, offsets[:5] + n, offsets[5:8] - 2 * n, [np.zeros(len(shape), int)]])
    weights = rng.uniform(-0.3, 1.0, size=len(offsets))
    folded = {tuple(o) for o in np.mod(offsets, n)}
    assert len(folded) < len(offsets)  # the case really aliases
    stencil = SimpleNamespace(offsets=offsets, weights=weights)
    kappa_hat = stencil_fourier(stencil, shape, 0.07)
    assert kappa_hat.shape == shape and kappa_hat.dtype == np.complex128
    np.testing.assert_allclose(kappa_hat, dense_fourier(offsets, weights, shape, 0.07), rtol=0, atol=1e-13)
    assert np.max(np.abs(kappa_hat.imag)) > 0.1  # non-symmetric: a genuinely complex transform
    assert kappa_hat.flat[0] == pytest.approx(weights.sum(), abs=1e-13)  # not 1: a caller's own stencil


def test_fft_equals_the_defining_sum_for_a_meshfield_stencil():
    kernel = {"shape": "dog", "sigma_center": 0.1, "sigma_surround": 0.3, "surround_weight": 0.5, "r_max": 0.9}
    cfg = config((20, 14), 0.1, [coupling(kernel=kernel)])
    s = only_stencil(cfg)
    np.testing.assert_allclose(stencil_fourier(s, (20, 14), 0.1), dense_fourier(s.offsets, s.weights, (20, 14), 0.1),
                               rtol=0, atol=1e-13)


def test_large_lattice_transform_needs_little_memory():
    """512 x 512 sites and a 29 x 29 box stencil of 841 offsets: the dense phase matrix
    would take 262144 x 841 x 16 bytes = 3.3 GiB; the FFT needs a few lattice-sized
    arrays (4 MiB each). The box's transform is a product of Dirichlet kernels."""
    shape, dx, half = (512, 512), 0.025, 14
    side = np.arange(-half, half + 1)
    offsets = np.stack(np.meshgrid(side, side, indexing="ij"), axis=-1).reshape(-1, 2)
    weights = np.full(len(offsets), 1.0 / len(offsets))
    tracemalloc.start()
    try:
        kappa_hat = stencil_fourier(SimpleNamespace(offsets=offsets, weights=weights), shape, dx)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20, peak
    assert kappa_hat.shape == shape
    assert kappa_hat[0, 0] == pytest.approx(weights.sum(), abs=1e-13)
    k = 2 * np.pi * np.fft.fftfreq(512, d=dx)
    box = np.exp(-1j * np.outer(k, side) * dx).sum(axis=1) / side.size  # one axis, real
    np.testing.assert_allclose(kappa_hat, np.outer(box, box), rtol=0, atol=1e-13)


@pytest.mark.parametrize("offsets, weights, match", [
    ([[0], [1]], [np.nan, 0.5], r"weights must be finite.*weights\[0\] = nan"),
    ([[0], [1]], [0.5, np.inf], r"weights must be finite.*weights\[1\] = inf"),
    ([[0], [1.5]], [0.5, 0.5], r"offsets must be whole numbers.*offsets\[1\] = \[1.5\]"),
    ([[0], [np.nan]], [0.5, 0.5], r"offsets must be whole numbers"),
    ([["a"]], [1.0], "numeric arrays"),
])
def test_bad_stencil_values_are_errors(offsets, weights, match):
    with pytest.raises(TheoryInputError, match=match):
        stencil_fourier(SimpleNamespace(offsets=np.array(offsets), weights=np.array(weights)), (4,), 0.1)


def test_stencil_without_weights_is_an_error():
    with pytest.raises(TheoryInputError, match="no 'weights'"):
        stencil_fourier(SimpleNamespace(offsets=np.zeros((1, 1), dtype=int)), (4,), 0.1)


@pytest.mark.parametrize("shape, match", [
    (4, "lattice_shape = 4 must be a sequence"),
    ("44", "lattice_shape = '44' must be a sequence"),
    ((4.7,), r"lattice_shape = \[4.7\] holds 4.7; it must be a sequence of whole positive"),
    ((4, 0), "holds 0"),
    ((-2,), "holds -2"),
    ((True,), "holds True"),
    (("4",), "holds '4'"),
    ((), "is empty"),
])
def test_bad_lattice_shape_is_an_error(shape, match):
    with pytest.raises(TheoryInputError, match=match):
        lattice_wave_vectors(shape, 0.1)
    one = SimpleNamespace(offsets=np.zeros((1, 1), dtype=int), weights=np.ones(1))
    with pytest.raises(TheoryInputError, match=match):
        stencil_fourier(one, shape, 0.1)


@pytest.mark.parametrize("dx", ["a", None, 0.0, -0.1, np.nan, np.inf, True])
def test_bad_spacing_is_an_error(dx):
    with pytest.raises(TheoryInputError, match=r"dx = .* must be a positive \(finite\) number of mm"):
        lattice_wave_vectors((4,), dx)
    one = SimpleNamespace(offsets=np.zeros((1, 1), dtype=int), weights=np.ones(1))
    with pytest.raises(TheoryInputError, match="dx = "):
        stencil_fourier(one, (4,), dx)


def test_whole_float_and_numpy_site_counts_are_accepted():
    expected = lattice_wave_vectors((4, 6), 0.5)
    np.testing.assert_array_equal(lattice_wave_vectors((4.0, np.int64(6)), np.float32(0.5)), expected)
    np.testing.assert_array_equal(lattice_wave_vectors(np.array([4, 6]), 0.5), expected)


# ---------------------------------------------------------------------------
# static_gain
# ---------------------------------------------------------------------------


def population(**changes):
    values = dict(N=100, mu=20.0, tau_theta=[], J_theta=[], **NEURON)
    values.update(changes)
    return SimpleNamespace(**values)


@pytest.mark.parametrize("pop", [
    population(),
    population(mu=17.0, tau_theta=[50.0], J_theta=[200.0]),
])
def test_static_gain_matches_a_coarse_finite_difference(pop):
    h = 0.01  # mV: truncation error (h/delta_u)^2/6 ~ 3e-6 relative
    coarse = (stationary_rate_discrete(pop, 0.5, mu_eff=pop.mu + h, K=300)
              - stationary_rate_discrete(pop, 0.5, mu_eff=pop.mu - h, K=300)) / (2 * h)
    assert static_gain(pop, 0.5, K=300) == pytest.approx(coarse, rel=1e-4)


@pytest.mark.parametrize("pop, match", [
    (SimpleNamespace(delta_u=2.5), "population parameter 'mu' is missing"),
    (population(tau_m="x"), "population parameter 'tau_m' = 'x' is not a number"),
    (population(delta_u=0.0), "population parameter 'delta_u' = 0.0 must be > 0"),
    (population(c=np.nan), "population parameter 'c' = nan must be finite"),
])
def test_static_gain_validates_its_population(pop, match):
    with pytest.raises(TheoryInputError, match=match):
        static_gain(pop, 0.5)


@pytest.mark.parametrize("mu_eff", [np.nan, "20", None])
def test_static_gain_validates_mu_eff(mu_eff):
    if mu_eff is None:  # the default: pop.mu
        assert static_gain(population(), 0.5, K=300) == static_gain(population(), 0.5, mu_eff=20.0, K=300)
        return
    with pytest.raises(TheoryInputError, match="mu_eff = .* must be a finite potential in mV"):
        static_gain(population(), 0.5, mu_eff=mu_eff)


def test_static_gain_with_adaptation_is_the_self_consistent_slope():
    """Implicit-function theorem: dA/dmu = F_mu / (1 - F_A) for A = F(mu, A)."""
    pop = population(mu=18.0, tau_theta=[100.0], J_theta=[300.0])
    dt, K = 0.5, 600
    A = stationary_rate_discrete(pop, dt, K=K)
    h_mu, h_A = 1e-3, 1e-3 * A
    F = lambda mu, a: renewal_rate_discrete(pop, dt, rate_hz=a, mu_eff=mu, K=K)  # noqa: E731
    F_mu = (F(pop.mu + h_mu, A) - F(pop.mu - h_mu, A)) / (2 * h_mu)
    F_A = (F(pop.mu, A + h_A) - F(pop.mu, A - h_A)) / (2 * h_A)
    # Adaptation lowers the slope (F_A < 0), here by more than 10 %, far beyond the
    # tolerance: the comparison could not pass with the non-self-consistent slope F_mu.
    assert F_A < -0.1
    assert static_gain(pop, dt, K=K) == pytest.approx(F_mu / (1.0 - F_A), rel=1e-5)


# ---------------------------------------------------------------------------
# dispersion
# ---------------------------------------------------------------------------

EI = {"E": dict(N=100, mu=20.0, **NEURON), "I": dict(N=50, mu=18.0, **dict(NEURON, tau_m=10.0, t_ref=2.0))}


def test_delta_couplings_give_a_flat_dispersion():
    cfg = config((12, 10), 0.1, [coupling("E", "E", 0.3, 80), coupling("I", "E", 0.3, 80),
                                 coupling("E", "I", -0.8, 40), coupling("I", "I", -0.8, 40)], EI)
    d = dispersion(cfg)
    assert d.leading.shape == (12, 10)
    assert np.all(np.isfinite(d.leading))
    assert np.ptp(d.leading) < 1e-12
    np.testing.assert_allclose(d.gain_matrix, np.broadcast_to(d.gain_matrix[0, 0], d.gain_matrix.shape),
                               rtol=0, atol=1e-15)


def test_single_type_gain_is_the_slope_of_the_self_consistent_map():
    """Units check: G(0) = d/dA F(mu + tau_m J C A/1000) at the fixed point."""
    J, C = 0.2, 50
    cfg = config((8,), 0.1, [coupling(J=J, C=C)])
    d = dispersion(cfg)
    pop = cfg.populations[0]
    A = d.rates[0]
    assert d.mu_eff[0] == pytest.approx(pop.mu + pop.tau_m * J * C * A / 1000, rel=1e-12)
    from meshfield.meso import history_length
    K = history_length(pop, cfg.run.dt)
    h = 1e-3 * A
    slope = (stationary_rate_discrete(pop, 0.5, mu_eff=pop.mu + pop.tau_m * J * C * (A + h) / 1000, K=K)
             - stationary_rate_discrete(pop, 0.5, mu_eff=pop.mu + pop.tau_m * J * C * (A - h) / 1000, K=K)) / (2 * h)
    np.testing.assert_allclose(d.leading, slope, rtol=1e-6)
    assert d.slopes[0] * pop.tau_m * J * C / 1000 == pytest.approx(slope, rel=1e-6)


def test_pure_e_i_loop_has_no_static_instability():
    """G = [[0, -a], [b, 0]]: eigenvalues +-i sqrt(ab), no real eigenvalue."""
    cfg = config((8,), 0.1, [coupling("I", "E", 0.5, 100), coupling("E", "I", -2.0, 50)], EI)
    d = dispersion(cfg)
    assert np.all(d.leading == -np.inf)
    assert not d.unstable
    np.testing.assert_allclose(d.eigenvalues.real, 0.0, atol=1e-12)


def test_mexican_hat_predicts_its_pattern():
    """Narrow excitation, broad inhibition: the leading eigenvalue peaks at k != 0,
    at the shell whose continuous analogue alpha exp(-s_E^2 k^2/2) - beta exp(-s_I^2 k^2/2)
    is largest."""
    gauss = lambda s: {"shape": "gaussian", "sigma": s, "r_max": 4 * s}  # noqa: E731
    cfg = config((64,), 0.05, [
        coupling("E", "E", 0.38, 100, gauss(0.065)), coupling("I", "E", 0.38, 100, gauss(0.065)),
        coupling("E", "I", -0.95, 50, gauss(0.19)), coupling("I", "I", -0.95, 50, gauss(0.19))], EI)
    d = dispersion(cfg)
    k, lead = d.shells()
    assert k[1] == pytest.approx(d.k_step) and d.k_step == pytest.approx(2 * np.pi / 3.2)
    assert d.k_peak_steps == int(np.argmax(lead)) > 0
    assert d.k_peak == pytest.approx(d.k_peak_steps * d.k_step)
    assert lead[0] < lead[d.k_peak_steps]
    # E and I see the same stencils scaled (J_EE/J_IE = J_EI/J_II): G(k) has rank 1
    # and its leading eigenvalue is its trace.
    trace = np.trace(d.gain_matrix, axis1=-2, axis2=-1).real
    np.testing.assert_allclose(d.leading, trace, rtol=1e-10, atol=1e-12)


def test_invalid_level_is_an_error():
    cfg = config((8,), 0.1, [coupling()])
    with pytest.raises(TheoryInputError, match="level"):
        dispersion(cfg, level="nano")


def test_open_lattice_is_refused():
    """MODEL.md §6's linear theory is that of a homogeneous (periodic) field."""
    cfg = config((8,), 0.1, [coupling(kernel={"shape": "gaussian", "sigma": 0.2, "r_max": 0.4})], boundary="open")
    with pytest.raises(TheoryInputError, match="lattice.boundary = 'open'.*allowed: 'periodic'"):
        dispersion(cfg)


def test_single_site_has_only_k_zero():
    cfg = config((1,), 0.1, [coupling("E", "E", 0.3, 80), coupling("I", "E", 0.3, 80),
                             coupling("E", "I", -0.8, 40), coupling("I", "I", -0.8, 40)], EI)
    d = dispersion(cfg)
    k, lead = d.shells()
    assert k.tolist() == [0.0] and lead.shape == (1,)
    assert d.k_peak == 0.0 and d.k_peak_steps == 0 and d.wavelength == np.inf
