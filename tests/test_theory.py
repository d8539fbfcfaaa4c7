"""Tests of the stationary renewal theory (meshfield.theory.stationary)."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import integrate, special

from meshfield.config import refractory_steps
from meshfield.propagators import membrane_propagators
from meshfield.theory import (
    TheoryInputError,
    hazard_free,
    mean_input,
    psd_high_frequency_level,
    renewal_rate,
    renewal_rate_discrete,
    stationary_profile_discrete,
    stationary_rate,
    stationary_rate_discrete,
    stationary_rates_network,
    survivor,
    threshold,
)


def population(**changes):
    """Parameter set (i) of the validation report, with changes."""
    values = dict(
        N=500, mu=24.0, tau_m=20.0, t_ref=4.0, u_reset=0.0, u_th=15.0, c=10.0,
        delta_u=2.5, tau_theta=[], J_theta=[], tau_s=3.0,
    )
    values.update(changes)
    return SimpleNamespace(**values)


# ---------------------------------------------------------------------------
# Brute-force reference: the mean-field (n = n_bar) update of MODEL.md §4
# ---------------------------------------------------------------------------


def iterate_mean_field(pops, dt, K, steps, JC=None, delay=1):
    """Iterate the mesoscopic update of MODEL.md §4 with n = n_bar, literally.

    One site, T types, population fractions (N = 1). Each type keeps K cohorts
    (index i holds the cohort of age i+1 during the step) and a free pool, all
    neurons start in the free pool at u_reset. The input of source type b reaches
    its targets after ``delay`` steps through exponential synapses integrated with
    the project's propagators. Returns the rates (Hz, shape (steps, T)) and the
    final cohort fractions m (shape (T, K)) and free fractions x (shape (T,)).
    """
    T = len(pops)
    JC = np.zeros((T, T)) if JC is None else np.asarray(JC, float)
    tau_s = np.array([p.tau_s for p in pops])
    types = []
    for p in pops:
        n_ref = refractory_steps(p.t_ref, dt)
        tau = np.asarray(p.tau_theta, float)
        Jt = np.asarray(p.J_theta, float)
        ages = np.arange(1, K + 1)
        eps = ((Jt / tau)[:, None] * np.exp(-ages[None, :] * dt / tau[:, None])).sum(axis=0)
        types.append(dict(
            p=p, prop=membrane_propagators(p.tau_m, tau_s, dt), refractory=ages <= n_ref,
            eps=eps, tilde=p.delta_u * (1.0 - np.exp(-eps / p.delta_u)),
            q=Jt / tau, r=np.exp(-dt / tau), g=np.zeros(tau.size),
            n=np.zeros(K), m=np.zeros(K), u=np.full(K, p.u_reset), lam=np.zeros(K),
            x=1.0, h=p.u_reset, lam_free=0.0, y=np.zeros(T),
        ))
    history = np.zeros((delay, T))  # spike fractions of the last `delay` steps, oldest first
    rates = np.empty((steps, T))
    for t in range(steps):
        arriving = history[0].copy()
        n_bar = np.empty(T)
        for a, s in enumerate(types):
            p, prop = s["p"], s["prop"]
            I = JC[a] * arriving / dt
            h_tot = p.mu * (1.0 - prop.P_mm) + np.sum(s["y"] * prop.P_sm + I * prop.P_im)
            s["y"] = s["y"] * prop.P_ss + I * (1.0 - prop.P_ss)
            s["g"] = s["g"] * s["r"]
            theta_old = s["g"].sum()
            weighted = s["n"] * s["tilde"]
            older = np.concatenate((np.cumsum(weighted[:0:-1])[::-1], [0.0]))
            theta = p.u_th + s["eps"] + older + theta_old
            u = np.where(s["refractory"], s["u"], s["u"] * prop.P_mm + h_tot)
            lam = np.where(s["refractory"], 0.0, p.c * 1e-3 * np.exp((u - theta) / p.delta_u))
            P = 1.0 - np.exp(-(s["lam"] + lam) * dt / 2.0)
            W, X = np.sum(P * s["m"]), np.sum(s["m"])
            m = (1.0 - P) * s["m"]
            s["h"] = s["h"] * prop.P_mm + h_tot
            lam_free = p.c * 1e-3 * math.exp((s["h"] - p.u_th - theta_old) / p.delta_u)
            P_free = 1.0 - math.exp(-(s["lam_free"] + lam_free) * dt / 2.0)
            s["lam_free"] = lam_free
            # In the mean-field limit the cohorts and the pool hold exactly N, so the
            # finite-size correction P_Lambda (N - X - x) vanishes.
            assert abs(1.0 - X - s["x"]) < 1e-12
            n_bar[a] = W + P_free * s["x"]
            s["x"] = (1.0 - P_free) * s["x"] + m[-1]
            s["g"] = s["g"] + s["n"][-1] * s["q"] * s["r"] ** K
            s["n"] = np.concatenate(([n_bar[a]], s["n"][:-1]))
            s["m"] = np.concatenate(([n_bar[a]], m[:-1]))
            s["u"] = np.concatenate(([p.u_reset], u[:-1]))
            s["lam"] = np.concatenate(([0.0], lam[:-1]))
        history = np.vstack((history[1:], n_bar))
        rates[t] = n_bar / dt * 1e3
    return rates, np.array([s["m"] for s in types]), np.array([s["x"] for s in types])


# ---------------------------------------------------------------------------
# Exactly solvable cases
# ---------------------------------------------------------------------------


def poisson_population(t_ref):
    # mu = u_reset keeps u constant, so the hazard is the constant c exp((mu - u_th)/delta_u).
    return population(mu=0.0, u_reset=0.0, u_th=1.0, t_ref=t_ref)


def constant_hazard_per_ms(pop):
    return pop.c * 1e-3 * math.exp((pop.mu - pop.u_th) / pop.delta_u)


def test_poisson_rate_continuous():
    pop = poisson_population(t_ref=0.0)
    assert stationary_rate(pop) == pytest.approx(pop.c * math.exp((pop.mu - pop.u_th) / pop.delta_u), rel=1e-12)


@pytest.mark.parametrize("dt", [0.5, 0.1])
def test_poisson_rate_discrete(dt):
    pop = poisson_population(t_ref=0.0)
    x = constant_hazard_per_ms(pop) * dt
    # Trapezoid: the new cohort has lambda_0 = 0, so it keeps exp(-x/2) in its first
    # step and exp(-x) per step later: sum_a S_a = 1 + exp(-x/2)/(1 - exp(-x)).
    expected = 1e3 / (dt * (1.0 + math.exp(-x / 2.0) / -math.expm1(-x)))
    assert stationary_rate_discrete(pop, dt) == pytest.approx(expected, rel=1e-12)
    # Microscopic rule: Bernoulli trials with p = 1 - exp(-x) in every step.
    expected_micro = -math.expm1(-x) / dt * 1e3
    assert stationary_rate_discrete(pop, dt, hazard_rule="endpoint") == pytest.approx(expected_micro, rel=1e-12)


def test_dead_time_continuous_and_discrete():
    pop = poisson_population(t_ref=4.0)
    lam = constant_hazard_per_ms(pop)
    assert stationary_rate(pop) == pytest.approx(1e3 / (pop.t_ref + 1.0 / lam), rel=1e-12)
    dt = 0.5
    n_ref, x = 8, lam * dt
    expected = 1e3 / (dt * (n_ref + 1 + math.exp(-x / 2.0) / -math.expm1(-x)))
    assert stationary_rate_discrete(pop, dt) == pytest.approx(expected, rel=1e-12)
    assert stationary_rate_discrete(pop, dt, K=n_ref + 1) == pytest.approx(expected, rel=1e-12)


# ---------------------------------------------------------------------------
# Continuous-time quadrature against independent computations
# ---------------------------------------------------------------------------


def threshold_tail_closed_form(pop, ages):
    """int_a^inf theta_tilde for one timescale: delta_u tau Ein(eps(a)/delta_u)."""
    tau, J = pop.tau_theta[0], pop.J_theta[0]
    x = (J / tau) / pop.delta_u * np.exp(-np.asarray(ages) / tau)
    ein = special.exp1(x) + np.log(x) + np.euler_gamma
    return pop.delta_u * tau * ein


def test_threshold_matches_closed_form():
    pop = population(tau_theta=[1000.0], J_theta=[1000.0])
    ages = np.array([0.0, 4.0, 100.0, 5000.0])
    rate = 10.0
    expected = pop.u_th + np.exp(-ages / 1000.0) + rate * 1e-3 * threshold_tail_closed_form(pop, ages)
    np.testing.assert_allclose(threshold(pop, ages, rate_hz=rate), expected, rtol=1e-13)


def test_renewal_rate_matches_ode_integration():
    """1/int S from an adaptive ODE solver with the closed-form threshold tail."""
    pop = population(tau_theta=[1000.0], J_theta=[1000.0])
    A = 8.42

    def rhs(a, y):
        u = pop.mu + (pop.u_reset - pop.mu) * math.exp(-(a - pop.t_ref) / pop.tau_m)
        theta = pop.u_th + math.exp(-a / 1000.0) + A * 1e-3 * threshold_tail_closed_form(pop, a)
        return [pop.c * 1e-3 * math.exp((u - theta) / pop.delta_u), math.exp(-y[0])]

    ages = np.array([10.0, 30.0, 100.0, 3000.0])
    sol = integrate.solve_ivp(rhs, (pop.t_ref, 3000.0), [0.0, 0.0], method="DOP853", rtol=1e-13, atol=1e-16,
                              t_eval=ages)
    assert sol.y[0, -1] > 400.0  # S(3000 ms) is negligible, so no tail is needed
    assert renewal_rate(pop, A) == pytest.approx(1e3 / (pop.t_ref + sol.y[1, -1]), rel=1e-11)
    np.testing.assert_allclose(survivor(pop, ages[:-1], rate_hz=A), np.exp(-sol.y[0, :-1]), rtol=1e-11)


def test_survivor_is_exp_of_integrated_hazard():
    pop = population(tau_theta=[50.0, 400.0], J_theta=[100.0, 800.0])
    rate, ages = 12.0, np.array([2.0, 4.0, 6.0, 25.0, 80.0])
    S = survivor(pop, ages, rate_hz=rate)
    assert np.all(S[:2] == 1.0)  # no escape during the refractory period
    for a, s in zip(ages[2:], S[2:]):
        cumulative, _ = integrate.quad(lambda b: hazard_free(pop, b, rate_hz=rate) * 1e-3, pop.t_ref, a,
                                       epsabs=0.0, epsrel=1e-12, limit=200)
        assert s == pytest.approx(math.exp(-cumulative), rel=1e-10)
    np.testing.assert_array_equal(hazard_free(pop, [0.0, 3.9], rate_hz=rate), [0.0, 0.0])


def test_self_consistency_with_adaptation():
    pop = population(tau_theta=[100.0, 1000.0], J_theta=[300.0, 1000.0])
    A = stationary_rate(pop)
    assert 0.0 < A < stationary_rate(population())
    assert renewal_rate(pop, A) == pytest.approx(A, rel=1e-8)
    dt = 0.5
    A_dt = stationary_rate_discrete(pop, dt)
    assert renewal_rate_discrete(pop, dt, A_dt) == pytest.approx(A_dt, rel=1e-8)


# ---------------------------------------------------------------------------
# Discrete vs continuous, discrete vs the iterated mean-field update
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("changes", [{}, {"tau_theta": [100.0], "J_theta": [200.0]}])
def test_discrete_converges_to_continuous_at_first_order(changes):
    pop = population(**changes)
    exact = stationary_rate(pop)
    steps = [0.5, 0.1, 0.02]
    errors = [abs(stationary_rate_discrete(pop, dt) / exact - 1.0) for dt in steps]
    orders = [math.log(errors[i] / errors[i + 1]) / math.log(steps[i] / steps[i + 1]) for i in range(2)]
    # The new cohort starts with lambda_0 = 0 and the mean interval is a left sum of
    # S: both are O(dt) effects, so the scheme is first order.
    assert all(0.9 < order < 1.1 for order in orders), (errors, orders)
    assert errors[-1] < 1e-3


@pytest.mark.parametrize("changes", [{}, {"tau_theta": [30.0, 100.0], "J_theta": [30.0, 300.0]}])
def test_discrete_matches_iterated_mean_field(changes):
    pop = population(**changes)
    dt, K = 0.5, 240
    rates, m, x = iterate_mean_field([pop], dt, K, steps=5000)
    assert abs(rates[-1, 0] - rates[-2, 0]) < 1e-10 * rates[-1, 0]  # reached the fixed point
    profile = stationary_profile_discrete(pop, dt, K=K)
    # Both sides are exact fixed points of the same map: agreement to round-off
    # (about 1e-14 is observed), far inside the 1e-6 an engine run must reach.
    assert rates[-1, 0] == pytest.approx(profile.rate_hz, rel=1e-9)
    np.testing.assert_allclose(m[0], profile.m[:K], rtol=1e-9, atol=1e-15)
    assert x[0] == pytest.approx(profile.free_fraction, rel=1e-9)
    assert profile.m[:K].sum() + profile.free_fraction == pytest.approx(1.0, rel=1e-12)


def test_network_discrete_matches_iterated_mean_field():
    """E/I pair with synaptic currents and delays: the drive enters only through mu_eff."""
    E = population(mu=20.0, tau_theta=[50.0], J_theta=[100.0], tau_s=3.0)
    I = population(mu=18.0, tau_m=10.0, t_ref=2.0, tau_s=6.0)
    J = np.array([[0.2, -0.6], [0.3, -0.4]])
    C = np.array([[80.0, 20.0], [80.0, 20.0]])
    dt, K = 0.5, 200
    rates, _, _ = iterate_mean_field([E, I], dt, K, steps=3000, JC=J * C, delay=3)
    assert np.all(np.abs(rates[-1] - rates[-2]) < 1e-10 * rates[-1])
    state = stationary_rates_network([E, I], J, C, dt=dt, K=K)
    assert not state.multiple
    np.testing.assert_allclose(rates[-1], state.rates, rtol=1e-9)


# ---------------------------------------------------------------------------
# Network
# ---------------------------------------------------------------------------


def test_mean_input_units():
    pops = [population(mu=20.0, tau_m=20.0), population(mu=10.0, tau_m=10.0)]
    J = np.array([[0.5, -1.0], [0.25, 0.0]])
    C = np.array([[100.0, 50.0], [200.0, 10.0]])
    rates = np.array([10.0, 40.0])
    # E: 100 inputs at 10 Hz of 0.5 mV -> 0.5 mV/ms; 50 at 40 Hz of -1 mV -> -2 mV/ms;
    # times tau_m = 20 ms: 20 + 20 * (0.5 - 2.0) = -10 mV. I: 10 + 10 * 0.5 = 15 mV.
    np.testing.assert_allclose(mean_input(pops, J, C, rates), [-10.0, 15.0], rtol=1e-14)


def test_network_single_population_self_consistent():
    pop = population(tau_theta=[200.0], J_theta=[200.0])
    J, C = np.array([[0.1]]), np.array([[100.0]])
    state = stationary_rates_network({"E": pop}, J, C)
    mu_eff = pop.mu + pop.tau_m * 0.1 * 100.0 * state.rates[0] * 1e-3
    assert state.mu_eff[0] == pytest.approx(mu_eff, rel=1e-14)
    assert state.rates[0] == pytest.approx(stationary_rate(pop, mu_eff=mu_eff), rel=1e-8)


def test_bistable_pair_has_three_solutions():
    pop = population()
    J = np.array([[0.0, -0.3], [-0.3, 0.0]])
    C = np.array([[0.0, 200.0], [200.0, 0.0]])
    state = stationary_rates_network([pop, pop], J, C)
    assert state.multiple
    assert len(state.solutions) == 3
    low, symmetric, high = state.solutions
    np.testing.assert_allclose(low, high[::-1], rtol=1e-6)
    assert symmetric[0] == pytest.approx(symmetric[1], rel=1e-6)
    assert low[0] < symmetric[0] < high[0]
    for rates in state.solutions:
        mu_eff = mean_input([pop, pop], J, C, rates)
        for a in range(2):
            assert rates[a] == pytest.approx(stationary_rate(pop, mu_eff=mu_eff[a]), rel=1e-8)


@pytest.mark.parametrize("rates0, expected", [((30.0, 0.1), 2), ((0.1, 30.0), 0), ((2.0, 2.0), 1)])
def test_rates0_selects_the_nearest_solution(rates0, expected):
    """V2's pair at the engine's step: from (30, 0.1) Hz the solver itself reaches
    the opposite state; ``rates`` is the solution nearest the start in log rate,
    so a start picks a state."""
    from meshfield.theory import growth_rates

    gr = growth_rates("bistable_pair", rates0=rates0)
    assert len(gr.solutions) == 3
    np.testing.assert_array_equal(gr.rates, gr.solutions[expected])


# ---------------------------------------------------------------------------
# Spectrum convention
# ---------------------------------------------------------------------------


def test_psd_level_matches_periodogram_of_poisson_population():
    rate, N = 20.0, 50
    assert psd_high_frequency_level(rate, N) == pytest.approx(0.4)
    dt_s, bins = 1e-3, 100_000
    counts = np.random.default_rng(12345).poisson(N * rate * dt_s, size=bins)
    A = counts / (N * dt_s)
    T_s = bins * dt_s
    S = np.abs(dt_s * np.fft.rfft(A - A.mean())) ** 2 / T_s
    level = S[1:-1].mean()
    # Binned Poisson counts have a flat spectrum; each periodogram value is
    # exponentially distributed, so the mean of n values has relative standard
    # error 1/sqrt(n) (0.45 % for n = 49999). Allow 4 standard errors.
    assert level == pytest.approx(rate / N, rel=4.0 / math.sqrt(S.size - 2))


# ---------------------------------------------------------------------------
# Input validation
# ---------------------------------------------------------------------------


def test_invalid_inputs_raise_clear_errors():
    pop = population()
    with pytest.raises(TheoryInputError, match="delta_u"):
        stationary_rate(population(delta_u=0.0))
    del pop.tau_m
    with pytest.raises(TheoryInputError, match="'tau_m' is missing"):
        stationary_rate(pop)
    with pytest.raises(TheoryInputError, match="tau_theta"):
        stationary_rate(population(tau_theta=[100.0], J_theta=[]))
    with pytest.raises(TheoryInputError, match="K = 8"):
        stationary_rate_discrete(population(), 0.5, K=8)
    with pytest.raises(TheoryInputError, match="hazard_rule"):
        stationary_rate_discrete(population(), 0.5, hazard_rule="midpoint")
    with pytest.raises(TheoryInputError, match="K"):
        stationary_rate_discrete(population(), 0.5, K=100, hazard_rule="endpoint")
    with pytest.raises(TheoryInputError, match="dt"):
        stationary_rate_discrete(population(), 0.0)
    with pytest.raises(TheoryInputError, match="N"):
        psd_high_frequency_level(1.0, 0)
    with pytest.raises(TheoryInputError, match=r"\(2, 2\)"):
        mean_input([population(), population()], np.zeros((2, 3)), np.zeros((2, 2)), np.zeros(2))


# ---------------------------------------------------------------------------
# Extreme drives, several solutions, bad input (found by an audit of the API)
# ---------------------------------------------------------------------------


def test_overflowing_hazard_gives_the_saturated_rate():
    """Drives whose hazard overflows double precision used to give NaN."""
    # reset above threshold: the neuron fires as soon as it leaves refractoriness
    assert stationary_rate(population(u_reset=1e4)) == pytest.approx(250.0, rel=1e-12)
    assert stationary_rate(population(u_th=-1e6)) == pytest.approx(250.0, rel=1e-12)
    # the rate keeps rising towards 1/t_ref as the drive grows past the overflow
    rates = [stationary_rate(population(), mu_eff=mu) for mu in (2000.0, 3000.0, 10_000.0)]
    assert 230.0 < rates[0] < rates[1] < rates[2] < 250.0
    # a sharp threshold: the neuron fires when u reaches u_th, at 4 + 20 ln(24/9) ms
    crossing = 4.0 + 20.0 * math.log(24.0 / 9.0)
    for delta_u in (1e-3, 1e-6):
        assert 1e3 / stationary_rate(population(delta_u=delta_u)) == pytest.approx(crossing, rel=1e-3)


def test_discrete_theory_saturates_without_overflow_warnings():
    """The discrete theory's hazard is capped like the continuous one: a huge drive
    used to warn 'overflow encountered in multiply' (the profile's hazard in Hz)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rate = stationary_rate_discrete(population(u_reset=100.0), 0.5, mu_eff=5000.0, K=208)
        profile = stationary_profile_discrete(population(u_reset=100.0), 0.5, mu_eff=5000.0, K=208)
    # fires in the first step after the 4-ms refractory period
    assert rate == pytest.approx(1e3 / 4.5, rel=1e-12)
    assert np.all(np.isfinite(profile.hazard))


def test_network_of_one_strongly_driven_type():
    pop = population(mu=300.0, delta_u=0.1)
    state = stationary_rates_network([pop], [[0.0]], [[0]])
    assert state.rates[0] == pytest.approx(stationary_rate(pop), rel=1e-12) and not state.multiple


def self_consistent_one_type(pop, JC, A, dt=None):
    mu_eff = pop.mu + pop.tau_m * JC * A * 1e-3
    if dt is None:
        return renewal_rate(pop, rate_hz=A, mu_eff=mu_eff)
    return renewal_rate_discrete(pop, dt, rate_hz=A, mu_eff=mu_eff)


@pytest.mark.parametrize("dt", [None, 0.5])
def test_one_type_network_finds_every_solution(dt):
    """Self-excitation with three fixed points (the unstable middle one included,
    which the multi-start search used to miss); each must solve A = F(A)."""
    pop = population(mu=12.0, delta_u=0.5)
    state = stationary_rates_network([pop], [[0.3]], [[100]], dt=dt)
    roots = state.solutions[:, 0]
    assert len(roots) == 3 and state.multiple
    assert roots[0] < 0.1 < 1.0 < roots[1] < 10.0 < 50.0 < roots[2]
    for A in roots:
        assert self_consistent_one_type(pop, 30.0, A, dt) == pytest.approx(A, rel=1e-9)
    assert state.rates[0] == roots[0]      # nearest the uncoupled rate (0.05 Hz)


def test_facilitation_with_several_rates_is_an_error_naming_them():
    pop = population(mu=12.0, tau_theta=[100.0], J_theta=[-200.0])
    with pytest.raises(TheoryInputError, match=r"several stationary rates .* 3\.155\d*, 70\.7\d*, 250 Hz"):
        stationary_rate(pop)
    state = stationary_rates_network([pop], [[0.0]], [[0]])
    assert len(state.solutions) == 3
    for A in state.solutions[:, 0]:
        assert renewal_rate(pop, rate_hz=A) == pytest.approx(A, rel=1e-9)
    # facilitation with one solution still has an answer
    single = population(tau_theta=[100.0], J_theta=[-5.0])
    A = stationary_rate(single)
    assert renewal_rate(single, rate_hz=A) == pytest.approx(A, rel=1e-9)


def test_history_window_limits_and_types():
    with pytest.raises(TheoryInputError, match=r"default window K = 20000201 steps .* pass an explicit K"):
        stationary_rate_discrete(population(tau_theta=[1e4], J_theta=[1000.0]), 0.02)
    with pytest.raises(TheoryInputError, match=r"K = 5000000 must be a whole number of steps from n_ref \+ 1 = 9 to 4194304"):
        stationary_rate_discrete(population(), 0.5, K=5_000_000)
    pops, J, C = [population()], [[0.1]], [[100]]
    as_list = stationary_rates_network(pops, J, C, dt=0.5, K=[20]).rates
    np.testing.assert_array_equal(stationary_rates_network(pops, J, C, dt=0.5, K=np.array([20])).rates, as_list)
    with pytest.raises(TheoryInputError, match="K = '20'"):
        stationary_rates_network(pops, J, C, dt=0.5, K="20")


@pytest.mark.parametrize("call,message", [
    (lambda: stationary_rates_network([population()], [[0.1]], [[-100]]), r"C = \[\[-100.0\]\] must hold whole"),
    (lambda: stationary_rates_network([population()], [[0.1]], [[2.5]]), "whole in-degrees"),
    (lambda: stationary_rates_network([population()] * 2, np.eye(2), np.eye(2), rates0=[np.inf, 1.0]),
     "finite positive rates"),
    (lambda: stationary_rates_network([population()], [[0.1]], [[10]], hazard_rule="bogus"),
     "hazard_rule = 'bogus' applies only to the discrete model"),
    (lambda: mean_input([population()], [[0.1]], [[10]], [np.nan]), "finite rates >= 0 Hz"),
    (lambda: renewal_rate(population(), rate_hz=None), "rate_hz = None must be a finite rate"),
    (lambda: stationary_rate(population(), mu_eff=[1.0, 2.0]), r"mu_eff = \[1.0, 2.0\]"),
    (lambda: stationary_rate_discrete(population(), None), "dt = None must be a time step"),
    (lambda: psd_high_frequency_level(10.0, np.inf), "N = inf must be a positive whole number"),
    (lambda: hazard_free(population(), [-5.0]), "ages must be finite and >= 0 ms"),
    (lambda: stationary_rate(population(tau_theta="abc", J_theta=[1.0])),
     "'tau_theta' = 'abc' must be a list of numbers"),
    (lambda: stationary_rate(population(tau_theta=[10.0], J_theta=[[1.0], 2.0])),
     r"'J_theta' = \[\[1.0\], 2.0\] must be a list of numbers"),
])
def test_bad_input_is_named(call, message):
    with pytest.raises(TheoryInputError, match=message):
        call()


def test_membrane_potential_checks_ages():
    from meshfield.theory import membrane_potential

    with pytest.raises(TheoryInputError, match="ages must be finite and >= 0 ms"):
        membrane_potential(population(), [1.0, np.nan])
    u = membrane_potential(population(), [[1.0, 24.0], [4.0, 1e9]])
    assert u.shape == (2, 2) and u[0, 0] == u[1, 0] == 0.0 and u[1, 1] == pytest.approx(24.0)
    assert u[0, 1] == pytest.approx(24.0 * (1.0 - math.exp(-1.0)))


def test_quiescent_one_type_network_and_unbounded_rate():
    """A population far below threshold has a rate that underflows to 0; the one-type
    search must not take log(0) (meshfield info crashed on such a model)."""
    pop = population(mu=-500.0, delta_u=0.5)
    for dt in (None, 0.5):
        state = stationary_rates_network([pop], [[0.1]], [[10]], dt=dt)
        assert state.rates[0] == pytest.approx(0.0, abs=1e-200) and not state.multiple
    # no refractoriness and a diverging hazard: no finite rate, and a message instead of ZeroDivisionError
    with pytest.raises(TheoryInputError, match="unbounded"):
        stationary_rate(population(t_ref=0.0, mu=20.0, tau_theta=[100.0], J_theta=[-1000.0]))


@pytest.mark.parametrize("delta_u", [0.1, 2.5])
def test_a_long_membrane_time_constant_with_a_strong_drive(delta_u):
    # tau_m = mu = 1e8: the membrane is a ramp from the end of the refractory period,
    # u(a) = a - t_ref (1 mV/ms; exact to 1e-8 over the ~100-ms intervals), and the
    # hazard c exp((u - u_th)/delta_u) has the closed-form cumulative
    # c delta_u (exp((a - t_ref - u_th)/delta_u) - exp(-u_th/delta_u)). The whole rise
    # of the hazard lies inside the first tau_m-long coarse panel, which the
    # quadrature used to leave unresolved (250 Hz = 1/t_ref at delta_u = 2.5).
    pop = population(mu=1e8, tau_m=1e8, delta_u=delta_u)
    c = pop.c * 1e-3

    def survivor(a):
        return math.exp(-c * delta_u * (math.exp((a - pop.t_ref - pop.u_th) / delta_u)
                                        - math.exp(-pop.u_th / delta_u)))

    edge = pop.t_ref + pop.u_th + delta_u * math.log(1.0 / (c * delta_u))  # where the hazard takes over
    interval = pop.t_ref + sum(integrate.quad(survivor, lo, hi, epsabs=0, epsrel=1e-12, limit=200)[0]
                               for lo, hi in ((pop.t_ref, edge), (edge, edge + 50 * delta_u + 50)))
    assert stationary_rate(pop) == pytest.approx(1000.0 / interval, rel=1e-6)


def test_a_huge_adaptation_amplitude_is_followed_to_its_end():
    # J_theta/tau_theta = 1e20 mV: 40 timescales leave e^-40 1e20 ~ 4e2 mV of
    # threshold, far from constant; the window must grow with ln(amplitude/delta_u).
    # Reference: the discrete theory with the engine's automatic K (which follows the
    # kernel until it is below 0.1 delta_u) at the same dt.
    from meshfield.meso import history_length
    pop = population(tau_theta=[100.0], J_theta=[1e22], name="E", K=0)
    K = history_length(pop, 0.5)
    reference = stationary_rate_discrete(pop, 0.5, K=K)
    assert stationary_rate_discrete(pop, 0.5) == pytest.approx(reference, rel=0.01)
    # the continuous theory agrees with the fine-step discrete one (O(dt) apart)
    assert stationary_rate(pop) == pytest.approx(stationary_rate_discrete(pop, 0.05), rel=0.05)


def test_silent_population_has_everyone_in_the_free_pool():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 0 * inf used to give NaN with a RuntimeWarning
        profile = stationary_profile_discrete(population(mu=10.0, delta_u=0.001), 0.5)
    assert profile.rate_hz == 0.0
    assert profile.free_fraction == 1.0


@pytest.mark.parametrize("J, expected", [(-1e50, (1e-53, 1e-51)), (-1e100, (1e-103, 1e-101)), (-1e300, (0.0, 0.0))])
def test_extreme_self_inhibition(J, expected):
    # a root far below the starting bracket made Brent's method give up after 200
    # halvings (a raw scipy RuntimeError); J C tau_m / 1000 = J 2e4 mV per Hz here
    rates = stationary_rates_network([population()], [[J]], [[10**6]], dt=0.5).rates
    assert expected[0] <= rates[0] <= expected[1]


def test_a_silent_type_has_rate_zero():
    # with delta_u = 0.001 mV the E type's drive stays below threshold: its rate
    # underflows, and the solver's log-rate floor (1e-300 Hz) was reported as the rate
    import meshfield
    from meshfield.theory import dispersion
    d = dispersion(meshfield.load_config("default", ["populations.E.delta_u=0.001",
                                                     "populations.I.delta_u=0.001"]))
    assert d.rates[0] == 0.0
    assert d.rates[1] == pytest.approx(20.241, abs=1e-3)


def test_a_runaway_network_without_refractoriness_has_no_solution():
    # E without refractoriness excites itself (J C tau_m / 1000 = 16 mV per Hz): its
    # rate is unbounded. The solver's residual clips the rates at 1e7 Hz, and its
    # zero there, F(1e7 Hz) = 1.28e8 Hz, was returned as a solution although the
    # model at that rate fires at 1.5e9 Hz.
    E, I = population(t_ref=0.0, mu=20.0), population(mu=18.0, tau_m=10.0, t_ref=2.0)
    J, C = np.array([[2.0, -0.1], [0.1, -0.1]]), np.array([[400, 200], [400, 200]])
    with pytest.raises(TheoryInputError, match=r"ran beyond 1e\+07 Hz"):
        stationary_rates_network([E, I], J, C)
    # with refractoriness the same network saturates below 1/t_ref: a true solution
    state = stationary_rates_network([population(mu=20.0), I], J, C)
    assert state.solutions.shape == (1, 2) and state.rates[0] < 250.0
    mu_eff = mean_input([population(mu=20.0), I], J, C, state.rates)
    for pop, rate, mu in zip((population(mu=20.0), I), state.rates, mu_eff):
        assert renewal_rate(pop, rate, mu_eff=mu) == pytest.approx(rate, rel=1e-9)


def test_strong_facilitation_saturates_at_the_refractory_limit_without_numpy_warnings():
    """Strong facilitation (J_theta = -1e9 mV ms) overflows the threshold kernel.
    Any rate above 0 then drives the threshold to -inf, so the type fires as soon
    as it leaves refractoriness: 1/(t_ref + dt) in discrete time (the step-end
    hazard fires in the first step after the n_ref refractory ones), 1/t_ref in
    continuous time. The search found no state before: at the start rate 0 the
    kernel's 0 * inf was nan (from every start), and the continuous tail integral
    made nan of -inf - (-inf); the message then blamed a runaway "where t_ref = 0"
    for a type with t_ref = 4 ms, and `meshfield info --level micro` left the
    traffic estimate out. Nor do numpy's overflow warnings reach the user."""
    import warnings

    import meshfield
    from meshfield.micro.model import mean_field_rate

    config = meshfield.load_config("default", ["run.level=micro", "populations.E.J_theta=[-1e9]",
                                               "populations.E.tau_theta=[10]"])
    E, I = config.populations
    J = [[c.J for c in config.couplings if c.target == t and c.source == s][0] for t in "EI" for s in "EI"]
    C = [[c.C for c in config.couplings if c.target == t and c.source == s][0] for t in "EI" for s in "EI"]
    J, C = np.reshape(J, (2, 2)), np.reshape(C, (2, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rate, why = mean_field_rate(config)
        discrete = stationary_rates_network([E, I], J, C, dt=0.5, hazard_rule="endpoint")
        continuous = stationary_rates_network([E, I], J, C)
    assert why is None
    assert discrete.rates[0] == pytest.approx(1e3 / (E.t_ref + 0.5), rel=1e-12)
    assert continuous.rates[0] == pytest.approx(1e3 / E.t_ref, rel=1e-9)
    # I at its own stationary rate under that drive: a self-consistent solution
    mu_I = mean_input([E, I], J, C, continuous.rates)[1]
    assert renewal_rate(I, continuous.rates[1], mu_eff=mu_I) == pytest.approx(continuous.rates[1], rel=1e-9)
    assert rate == pytest.approx((E.N * discrete.rates[0] + I.N * discrete.rates[1]) / (E.N + I.N), rel=1e-12)


def test_a_search_that_meets_only_undefined_rates_says_so(monkeypatch):
    """Where the model's rate is nan at every start (as strong facilitation made it
    before), the message blamed a runaway 'where t_ref = 0', or would quote a
    closest point of nan rates."""
    from meshfield.theory import stationary

    class Undefined:
        mean_interval = math.nan

    monkeypatch.setattr(stationary, "_renewal_quadrature", lambda *args, **kwargs: Undefined())
    with pytest.raises(TheoryInputError) as error:
        stationary_rates_network([population(), population(mu=18.0)], np.zeros((2, 2)), np.zeros((2, 2)))
    assert str(error.value) == (
        "no stationary state found: from each of the 5 starts the search ended where the model gives no "
        "finite rate (check J, C, the drives and the adaptation)")


def test_the_renewal_map_at_rate_zero_survives_an_overflowing_kernel():
    """At rate 0 the population builds no threshold, but each neuron keeps the
    kernel of its own last spike, which here (-1e7 mV at age 0) makes it fire as
    soon as it leaves refractoriness. The rate-0 term 0 * (-inf) was nan, so the
    map returned nan at the search's default start."""
    import warnings

    facilitating = population(tau_theta=[100.0], J_theta=[-1e9])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for rate_hz in (0.0, 1e-3, 30.0):
            assert renewal_rate(facilitating, rate_hz) == pytest.approx(1e3 / 4.0, rel=1e-9)
            assert renewal_rate_discrete(facilitating, 0.5, rate_hz) == pytest.approx(1e3 / 4.5, rel=1e-12)
