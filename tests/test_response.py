"""Linear response and growth rates of the mesoscopic field (meshfield.theory.response).

The checks are independent of the code under test: the static theory (a
different computation of the same zero-frequency limit), closed-form roots of
small loops, and mean-field simulations whose relaxation or growth is fitted.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

import meshfield
from meshfield.config import load_config, packaged_config
from meshfield.meso import history_length
from meshfield.theory import (
    TheoryInputError,
    dispersion,
    static_gain,
    stationary_rate_discrete,
)
from meshfield.theory.response import _Loop, _leading_root, _OnRoot, growth_rates, impulse_response

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


def _raw(name: str) -> dict:
    with open(packaged_config(name), "rb") as f:
        return tomllib.load(f)


def _one_site_ei(delay_ie: float = 6.0) -> dict:
    """V4's E and I populations at one site, I -> E delayed: a damped E-I oscillation."""
    raw = _raw("v4_pattern")
    raw["lattice"] = {"shape": [1], "dx": 0.05, "boundary": "periodic"}
    for c in raw["couplings"]:
        c.pop("kernel", None)
    raw["couplings"][2]["delay"] = {"d0": delay_ie}
    raw["stimuli"] = []
    return raw


# ---------------------------------------------------------------------------
# impulse response against the stationary theory
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name, type_index", [("v1_single", 1), ("v4_pattern", 0), ("bistable_pair", 0)])
def test_response_sums_to_the_static_gain(name, type_index):
    # H(1) (1 - P_mm) is dA/dmu; static_gain differentiates the discrete stationary
    # rate (a renewal computation, not the engine) with relative accuracy ~1e-8, and
    # the central difference of the response carries ~1e-6 (eps = 1e-3 delta_u,
    # error ~eps^2). Measured agreement: 1e-8.
    cfg = load_config(packaged_config(name))
    pop = cfg.populations[type_index]
    dt = cfg.run.dt
    K = history_length(pop, dt)
    r = impulse_response(pop, dt)
    assert r.static_gain == pytest.approx(static_gain(pop, dt, K=K), rel=1e-6)
    # the engine's own stationary state is the theory's
    assert r.rate_hz == pytest.approx(stationary_rate_discrete(pop, dt, K=K), rel=1e-9)
    assert r.sigma_floor < -5.0
    # the transfer function at z = 1 is the plain sum
    assert r.transfer(1.0).real == pytest.approx(r.h.sum(), rel=1e-12)


def test_response_is_linear_in_the_input_point():
    # at a stronger input the population is faster and more sensitive to its input:
    # the gain changes as the theory's slope does
    cfg = load_config(packaged_config("v1_single"))
    pop = cfg.populations[0]
    dt = cfg.run.dt
    K = history_length(pop, dt)
    for mu in (pop.mu - 2.0, pop.mu + 2.0):
        assert impulse_response(pop, dt, mu_eff=mu).static_gain == pytest.approx(
            static_gain(pop, dt, mu_eff=mu, K=K), rel=1e-6)


def test_bad_input_is_refused():
    pop = load_config(packaged_config("v1_single")).populations[0]
    for dt in (0.0, -0.5, math.nan):
        with pytest.raises(TheoryInputError, match="dt"):
            impulse_response(pop, dt)
    with pytest.raises(TheoryInputError, match="mu_eff"):
        impulse_response(pop, 0.5, mu_eff=math.inf)
    raw = _raw("v4_pattern")
    raw["lattice"]["boundary"] = "open"
    with pytest.raises(TheoryInputError, match="periodic"):
        growth_rates(raw)


def test_bad_population_parameters_and_windows_are_refused_by_name():
    # The engine's kernel takes what it is given: a negative delta_u used to be
    # reported as a population that "does not settle", tau_m = 0 raised
    # ZeroDivisionError, a NaN mu was named "mu_eff = None", c = 0 returned a
    # zero response, and K = 3 (inside the 8 refractory steps) returned the
    # response of a population firing at 223 Hz instead of 24.4 Hz.
    import dataclasses

    pop = load_config(packaged_config("v1_single")).populations[0]
    for change, message in (({"delta_u": -1.0}, "'delta_u' = -1.0 must be > 0"),
                            ({"tau_m": 0.0}, "'tau_m' = 0.0 must be > 0"),
                            ({"mu": math.nan}, "'mu' = nan must be finite"),
                            ({"c": 0.0}, "'c' = 0.0 must be > 0")):
        with pytest.raises(TheoryInputError, match=message):
            impulse_response(dataclasses.replace(pop, **change), 0.5)
    for K in (3, 8, 0, -5, 10.5, "a", math.nan):
        with pytest.raises(TheoryInputError, match=r"K = .* must be a whole number of steps from n_ref \+ 1 = 9"):
            impulse_response(pop, 0.5, K=K)
    # the smallest allowed window gives the stationary rate of the discrete theory at that window
    r = impulse_response(pop, 0.5, K=9)
    assert r.rate_hz == pytest.approx(stationary_rate_discrete(pop, 0.5, K=9), rel=1e-12)
    # numpy scalars are numbers: the same response as with Python floats
    reference = impulse_response(pop, 0.5, mu_eff=23.0)
    r = impulse_response(pop, np.float32(0.5), mu_eff=np.float32(23.0), K=np.int64(reference.K))
    assert np.array_equal(r.h, reference.h)


# ---------------------------------------------------------------------------
# root counting and the leading root on loops with closed-form roots
# ---------------------------------------------------------------------------


def _loop(gain: float, delay: int, P_im=1.0, P_sm=0.0, P_ss=0.0) -> _Loop:
    h = np.zeros((1, 4))
    h[0, 0] = gain  # H(z) = gain
    return _Loop(h, [(0, 0, 1.0, P_im, P_sm, P_ss, np.array([delay]), np.array([1.0 + 0j]))])


def test_pure_delay_loop():
    # det = 1 - g z^-d: d roots on |z| = g^(1/d)
    g, d, dt = 1.2, 3, 0.5
    loop = _loop(g, d)
    radius = g ** (1 / d)
    assert loop.count_outside(0.9 * radius) == d
    assert loop.count_outside(1.1 * radius) == 0
    sigma, _, unstable = _leading_root(loop, dt, r_floor=0.5)
    assert unstable == d
    assert sigma == pytest.approx(1000 * math.log(radius) / dt, abs=1e-3)
    # a decaying loop: below the unit circle, none unstable
    sigma, _, unstable = _leading_root(_loop(0.8, 2), dt, r_floor=0.5)
    assert unstable == 0
    assert sigma == pytest.approx(1000 * math.log(0.8 ** 0.5) / dt, abs=1e-3)
    # below the floor: not resolved
    assert _leading_root(_loop(0.1, 1), dt, r_floor=0.5)[0] == -math.inf


def test_winding_number_on_circles_grazing_the_roots():
    # Circles 1e-9 inside and outside the three roots of 1 - g z^-3 (at 120
    # degrees, one on an FFT point): the phase steps next to the roots are
    # subdivided until they resolve, where doubling the whole circle five times
    # (the earlier rule) gave up; on the roots themselves nothing can be told.
    g, d = 1.2, 3
    loop = _loop(g, d)
    radius = g ** (1 / d)
    assert loop.count_outside(radius * (1 - 1e-9)) == d
    assert loop.count_outside(radius * (1 + 1e-9)) == 0
    with pytest.raises(_OnRoot):
        loop.count_outside(radius)


def test_synaptic_pole_is_not_counted():
    # H = g, filter P_im + P_sm (1-P_ss)/(z-P_ss), delay 1: the roots solve
    # z^2 - (P_ss + g P_im) z + g (P_im P_ss - P_sm (1 - P_ss)) = 0. With the pole
    # at z = P_ss = 0.9 between the circles, an uncorrected winding number would be
    # off by one.
    g, P_im, P_sm, P_ss = 0.5, 0.3, 0.6, 0.9
    roots = np.roots([1.0, -(P_ss + g * P_im), g * (P_im * P_ss - P_sm * (1 - P_ss))])
    loop = _loop(g, 1, P_im, P_sm, P_ss)
    for r in (0.05, 0.5, 0.85, 0.95, 1.2):
        assert loop.count_outside(r) == int(np.sum(np.abs(roots) > r)), r
    sigma, freq, unstable = _leading_root(loop, 0.5, r_floor=0.2)
    lead = roots[np.argmax(np.abs(roots))]
    assert sigma == pytest.approx(1000 * math.log(abs(lead)) / 0.5, abs=1e-3)
    assert freq == pytest.approx(1000 * abs(np.angle(lead)) / (2 * math.pi * 0.5), abs=1e-6)
    assert unstable == int(np.sum(np.abs(roots) > 1))


def test_complex_pair_frequency():
    # z^2 - 2 rho cos(phi) z + rho^2 from a delay-2 loop with H = 0 ... built as
    # 1 - a z^-1 - b z^-2 through two terms: roots rho exp(+-i phi)
    rho, phi, dt = 0.98, 0.3, 0.5
    a, b = 2 * rho * math.cos(phi), -rho ** 2
    h = np.zeros((1, 2))
    h[0, 0] = 1.0
    loop = _Loop(h, [(0, 0, a, 1.0, 0.0, 0.0, np.array([1]), np.array([1.0 + 0j])),
                     (0, 0, b, 1.0, 0.0, 0.0, np.array([2]), np.array([1.0 + 0j]))])
    sigma, freq, unstable = _leading_root(loop, dt, r_floor=0.5)
    assert unstable == 0
    assert sigma == pytest.approx(1000 * math.log(rho) / dt, abs=1e-3)
    assert freq == pytest.approx(1000 * phi / (2 * math.pi * dt), rel=1e-9)


# ---------------------------------------------------------------------------
# against mean-field simulations
# ---------------------------------------------------------------------------


def test_damped_ei_oscillation_matches_the_mean_field_relaxation():
    # One site, E and I with a 6-ms I -> E delay: the homogeneous state is stable,
    # its slowest root a damped oscillation (theory: -12.50/s at 8.44 Hz). The
    # mean-field engine relaxes from its initial state along it; a damped cosine
    # fitted to E between 300 and 700 ms (amplitude 0.1 .. 1e-3 Hz, far above the
    # float32 records' 1e-6 relative rounding) gives the root to ~0.3 % (the next
    # root's share has decayed by exp(-(sigma2 - sigma1) 0.3 s)).
    from scipy.optimize import curve_fit

    raw = _one_site_ei()
    raw["run"].update(mean_field=True, t_end=700.0)
    raw["record"] = {"interval": 0.5}
    cfg = load_config(raw)
    gr = growth_rates(cfg)
    assert gr.n_unstable.max() == 0
    assert gr.frequency_peak > 1.0  # complex root
    res = meshfield.run(cfg)
    t = np.asarray(res.times)
    A = np.asarray(res.A, dtype=float)[:, 0, 0] - gr.rates[0]
    use = t >= 300.0
    x = (t[use] - 300.0) / 1000.0

    def damped(x, amp, sigma, f, phase):
        return amp * np.exp(sigma * x) * np.cos(2 * np.pi * f * x + phase)

    guess = [np.abs(A[use]).max(), -10.0, 8.0, 0.0]
    p, _ = curve_fit(damped, x, A[use], p0=guess, maxfev=20000)
    assert p[1] == pytest.approx(gr.sigma_max, rel=0.01)
    assert p[2] == pytest.approx(gr.frequency_peak, rel=0.005)


def test_v4_growth_rates_and_onset():
    # The V4 ring at coupling scales 0.95 and 1.0 (docs/validation_v4.md: measured
    # -0.88/s and +3.25/s for the dominant mode m = 6 in 3-s mean-field runs); here a
    # 0.7-s mean-field run at g = 1 from a weak OU seed, the mode-6 amplitude fitted
    # in its linear regime, and the sign change between g = 0.95 and 0.96 where
    # the static theory's eigenvalue crosses 1.
    raw = _raw("v4_pattern")
    raw["run"].update(mean_field=True, t_end=700.0)
    raw["stimuli"][0]["amplitude"] = 0.02
    at = {}
    for g in (0.95, 0.96, 1.0):
        r = copy.deepcopy(raw)
        for c in r["couplings"]:
            c["J"] *= g
        cfg = load_config(r)
        at[g] = (cfg, growth_rates(cfg), dispersion(cfg))
    for g, (_, gr, d) in at.items():
        assert (gr.sigma_max > 0) == d.unstable == (g > 0.955)
        assert gr.frequency_peak == 0.0  # a stationary pattern
        assert int(round(gr.k_peak / gr.k_step)) == d.k_peak_steps == 6
    cfg, gr, _ = at[1.0]
    A = np.asarray(meshfield.run(cfg).A, dtype=float)[:, 0]
    t = np.arange(A.shape[0]) * cfg.record.interval
    amp = 2 * np.abs(np.fft.rfft(A, axis=-1)[:, 6]) / A.shape[-1]
    # the driver's fit (drivers/v4_patterns.py), from 300 ms: samples above 1e-4 Hz
    # (the float32 records resolve ~1e-6 Hz of a 17-Hz mean, and the amplitude of a
    # mode is a sum over 64 of them) and below 0.2 Hz (the linear regime)
    use = (t >= 300.0) & (amp > 1e-4) & (amp < 0.2)
    assert use.sum() >= 300  # 300 .. 636 ms
    measured = np.polyfit(t[use], np.log(amp[use]), 1)[0] * 1e3
    # the slower modes' share at 300 ms (decaying at least 3/s faster than m = 6:
    # m = 5 at -0.06/s) bends the log by < 0.01/s over the fit; measured: 0.003/s
    assert measured == pytest.approx(gr.sigma_max, abs=0.02)
    assert gr.sigma_max == pytest.approx(3.25, abs=0.02)


def test_a_population_that_oscillates_on_its_own_is_refused_quickly():
    # at 1800 mV every neuron fires as soon as it leaves refractoriness: the mean-field
    # population fires all at once every n_ref + 1 steps and never settles (the
    # warm-up used to run all 4e6 steps and then report a phase sample, "last 0 Hz")
    pop = load_config(_raw("v1_single")).populations[0]
    # 20 chunks of 2000 steps (0.5 ms): refused after 20 s of simulated time, not 2e6 ms
    with pytest.raises(TheoryInputError, match=r"does not settle: after 20000 ms it still swings between "
                                               r"0 and 2000 Hz"):
        impulse_response(pop, 0.5, mu_eff=1800.0)
