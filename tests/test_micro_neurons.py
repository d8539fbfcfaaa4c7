"""Microscopic neurons (meshfield.micro.neurons): kernel vs reference, closed forms, escape noise."""

import math

import numpy as np
import pytest

from meshfield.config import PopulationConfig
from meshfield.micro.neurons import (
    NeuronLayout,
    NeuronState,
    advance_neurons,
    advance_neurons_reference,
    neuron_parameters,
)


def population(name="E", **kw):
    base = dict(N=1, mu=10.0, tau_m=20.0, t_ref=0.0, u_reset=0.0, u_th=15.0, c=10.0, delta_u=2.0,
                tau_theta=(), J_theta=(), tau_s=3.0)
    base.update(kw)
    return PopulationConfig(name=name, **base)


class Network:
    """Local neurons of ``len(global_site)`` sites without synapses: state, ring and runner."""

    def __init__(self, pops, J=None, global_site=(0,), dt=0.5, n_slots=4, seed=7):
        n_types = len(pops)
        self.pops = pops
        self.params = neuron_parameters(pops, np.zeros((n_types, n_types)) if J is None else J, dt)
        self.layout = NeuronLayout.build(np.array(global_site), [p.N for p in pops])
        self.state = NeuronState.initial(self.params, self.layout)
        self.ring = np.zeros((n_slots, self.layout.n_local * n_types), dtype=np.int32)
        self.seed = seed
        self.step = 0

    def mu(self, nsteps):
        return np.broadcast_to(np.array([p.mu for p in self.pops])[None, :, None],
                               (nsteps, len(self.pops), self.layout.n_sites)).copy()

    def run(self, nsteps, n_volt=1, params=None):
        """Advance ``nsteps`` with the kernel; returns spiked, counts, expected, volt."""
        p = params or self.params
        lay, st = self.layout, self.state
        spiked = np.empty((nsteps, lay.n_local), dtype=np.uint8)
        counts = np.empty((nsteps, lay.n_types, lay.n_sites))
        expected = np.empty_like(counts)
        volt = np.full((nsteps, lay.n_types, lay.n_sites, n_volt), np.nan)
        advance_neurons(self.step, nsteps, self.seed, lay.global_site, lay.type_offset, st.u, st.y, st.q,
                        st.ref, self.ring, self.mu(nsteps), p.P_mm, p.P_ss, p.P_sm, p.P_im, p.J_over_dt,
                        p.u_reset, p.u_th, p.inv_delta_u, p.c_per_ms, p.n_ref, p.q_decay, p.q_jump, p.dt,
                        spiked, counts, expected, volt)
        self.step += nsteps
        return spiked, counts, expected, volt


# ----------------------------------------------------------------------------- kernel vs reference


def test_kernel_matches_reference():
    pops = [population("E", N=5, c=2000.0, tau_theta=(10.0, 50.0), J_theta=(20.0, 100.0), t_ref=1.0,
                       tau_s=2.0, mu=14.0),
            population("I", N=3, c=3000.0, tau_m=10.0, u_reset=2.0, tau_s=20.0, mu=13.0, t_ref=0.5)]
    J = np.array([[0.5, -1.0], [0.8, -0.4]])
    nets = [Network(pops, J, global_site=(3, 8, 11), n_slots=6) for _ in range(2)]
    rng = np.random.default_rng(1)
    init_u = rng.uniform(-2, 16, nets[0].layout.n_local)
    init_y = rng.uniform(-1, 1, (nets[0].layout.n_local, 2))
    init_q = rng.uniform(0, 3, (nets[0].layout.n_local, 2))
    init_ref = rng.integers(0, 3, nets[0].layout.n_local)
    ring = rng.integers(0, 5, nets[0].ring.shape).astype(np.int32)
    for net in nets:
        net.state.u[:] = init_u
        net.state.y[:] = init_y
        net.state.q[:] = init_q
        net.state.ref[:] = init_ref
        net.ring[:] = ring
    nsteps = 6
    spiked, counts, expected, volt = nets[0].run(nsteps, n_volt=5)
    b = nets[1]
    r_spiked, r_counts, r_expected, r_volt = advance_neurons_reference(
        0, nsteps, b.seed, b.layout, b.params, b.state, b.ring, b.mu(nsteps))
    assert spiked.sum() > 5, "the comparison needs spikes"
    np.testing.assert_array_equal(spiked, r_spiked)
    np.testing.assert_array_equal(counts, r_counts)
    np.testing.assert_allclose(expected, r_expected, rtol=1e-13, atol=1e-15)
    a_st, r_st = nets[0].state, b.state
    for name in ("u", "y", "q"):
        np.testing.assert_allclose(getattr(a_st, name), getattr(r_st, name), rtol=1e-13, atol=1e-13)
    np.testing.assert_array_equal(a_st.ref, r_st.ref)
    np.testing.assert_array_equal(nets[0].ring, b.ring)
    # the ring rows of the steps taken are consumed
    assert not nets[0].ring[:nsteps].any()
    # voltage record: neurons i < 5 of each type and site; type I has only 3
    lay = nets[0].layout
    for a in range(2):
        for s in range(3):
            for i in range(5):
                if i < np.diff(lay.type_offset)[a]:
                    np.testing.assert_allclose(volt[:, a, s, i], r_volt[:, lay.neuron(s, a, i)], rtol=1e-13)
                else:
                    assert np.isnan(volt[:, a, s, i]).all()


# ----------------------------------------------------------------------------- closed forms


def test_free_membrane_and_single_psp_match_closed_form():
    """No spikes (c tiny): u relaxes to mu; one input spike adds the exact PSP of
    a rectangular drive J/dt over one step filtered by tau_s and tau_m."""
    tau_m, tau_s, dt, mu, J = 20.0, 5.0, 0.5, 12.0, 2.0
    pops = [population("E", N=1, mu=mu, tau_m=tau_m, tau_s=tau_s, c=1e-300, u_reset=0.0)]
    net = Network(pops, J=[[J]], dt=dt, n_slots=8)
    s_in = 10
    nsteps = 400
    _, counts, expected, volt = net.run(s_in)
    net.ring[s_in % 8, 0] = 1
    _, counts2, _, volt2 = net.run(nsteps - s_in)
    u = np.concatenate([volt[:, 0, 0, 0], volt2[:, 0, 0, 0]])
    assert counts.sum() == 0 and counts2.sum() == 0
    t = (np.arange(nsteps) + 1) * dt  # end of each step
    free = mu * (1 - np.exp(-t / tau_m))
    I = J / dt
    rate = 1 / tau_m - 1 / tau_s

    def during(tt):  # response to the constant drive I switched on at 0
        return I * (tau_m * (1 - np.exp(-tt / tau_m)) - (np.exp(-tt / tau_s) - np.exp(-tt / tau_m)) / rate)

    u_end, y_end = during(dt), I * (1 - math.exp(-dt / tau_s))
    tau = t - (s_in + 1) * dt
    psp = np.where(
        tau < 0, 0.0,
        u_end * np.exp(-tau / tau_m)
        + y_end * tau_m * tau_s / (tau_s - tau_m) * (np.exp(-tau / tau_s) - np.exp(-tau / tau_m)))
    np.testing.assert_allclose(u, free + psp, rtol=1e-12, atol=1e-12)
    assert psp.max() > 0.1 * J  # the PSP is visible in the comparison
    # J is the PSP area over tau_m (tau_m du/dt = -u + tau_m y, integral of y = J); the
    # run covers 19 tau_m and the sum over step ends is a rectangle rule: 2 % slack
    assert abs(psp.sum() * dt / tau_m - J) < 0.02 * J


def test_refractory_clamp_then_integration_from_reset():
    """A neuron refractory for 3 steps stays at u_reset with hazard 0, then integrates
    from u_reset: u = u_r + (mu - u_r)(1 - exp(-k dt / tau_m))."""
    dt, tau_m, mu, u_r = 0.5, 10.0, 20.0, 5.0
    pops = [population("E", N=1, mu=mu, tau_m=tau_m, u_reset=u_r, c=1e-3, t_ref=1.5)]
    net = Network(pops, dt=dt)
    net.state.ref[:] = 3
    _, counts, expected, volt = net.run(10)
    u = volt[:, 0, 0, 0]
    np.testing.assert_array_equal(u[:3], u_r)
    np.testing.assert_array_equal(expected[:3, 0, 0], 0.0)
    k = np.arange(1, 8)
    np.testing.assert_allclose(u[3:], u_r + (mu - u_r) * (1 - np.exp(-k * dt / tau_m)), rtol=1e-13)
    assert np.all(expected[3:, 0, 0] > 0) and counts.sum() == 0


def test_forced_spikes_repeat_every_n_ref_plus_one_steps():
    """With an enormous hazard a neuron fires whenever it may: in steps 0, n_ref+1, ...;
    in between it is clamped at u_reset and its firing probability is 0."""
    pops = [population("E", N=2, c=1e300, u_reset=-3.0, t_ref=2.0)]  # n_ref = 4 at dt = 0.5
    net = Network(pops)
    spiked, counts, expected, volt = net.run(23, n_volt=2)
    fire = np.zeros(23, dtype=bool)
    fire[::5] = True
    np.testing.assert_array_equal(spiked.T, np.tile(fire, (2, 1)))
    np.testing.assert_array_equal(expected[:, 0, 0], np.where(fire, 2.0, 0.0))
    np.testing.assert_array_equal(volt, -3.0)


def test_threshold_kernel_and_hazard_follow_the_spike_train():
    """u held at mu = u_reset; every step's firing probability must equal
    1 - exp(-c dt exp((mu - theta)/delta_u)) with theta = u_th + sum over the neuron's
    earlier spikes s of eps_theta((t - s) dt), eps_theta(a) = sum_j J_j/tau_j exp(-a/tau_j)."""
    dt, mu, u_th, delta_u, c = 0.5, 10.0, 12.0, 2.0, 200.0
    tau_theta, J_theta = (5.0, 40.0), (10.0, 60.0)
    pops = [population("E", N=1, mu=mu, u_reset=mu, u_th=u_th, delta_u=delta_u, c=c, t_ref=1.0,
                       tau_theta=tau_theta, J_theta=J_theta)]
    net = Network(pops, dt=dt, seed=11)
    net.state.u[:] = mu
    nsteps = 2000
    spiked, _, expected, volt = net.run(nsteps)
    np.testing.assert_allclose(volt[:, 0, 0, 0], mu, rtol=1e-14)
    spikes = np.flatnonzero(spiked[:, 0])
    assert len(spikes) >= 20
    t = np.arange(nsteps)
    theta = np.full(nsteps, u_th)
    refractory = np.zeros(nsteps, dtype=bool)
    for s in spikes:
        age = (t - s)[s + 1:] * dt
        theta[s + 1:] += sum(J / tau * np.exp(-age / tau) for tau, J in zip(tau_theta, J_theta))
        refractory[s + 1:s + 3] = True  # n_ref = 2
    P = np.where(refractory, 0.0, 1 - np.exp(-c * 1e-3 * dt * np.exp((mu - theta) / delta_u)))
    np.testing.assert_allclose(expected[:, 0, 0], P, rtol=1e-9, atol=1e-15)
    # the adaptation state after the run is the kernel sum at the last step
    last = nsteps - 1
    q = [J / tau * np.exp(-(last - spikes) * dt / tau).sum() for tau, J in zip(tau_theta, J_theta)]
    np.testing.assert_allclose(net.state.q[0], q, rtol=1e-9)


@pytest.mark.parametrize("c", [0.05, 2.0])
def test_firing_probability_per_step_at_constant_potential(c):
    """u = mu = u_reset, no adaptation, t_ref = 0: every step of every neuron is an
    independent Bernoulli(P) trial with P = 1 - exp(-lambda dt), lambda = c exp((mu -
    u_th)/delta_u) (the kernel's P is exactly that). n = 1000 neurons x 1000 steps:
    the spike count is Binomial(n, P); we require it within 3 binomial standard
    deviations sqrt(n P (1 - P)) of n P (fails with probability 0.27 % for a random
    seed; the seed is fixed, so the test is deterministic)."""
    dt, mu, u_th, delta_u = 0.5, 14.0, 15.0, 1.0
    c_hz = c * 1000.0  # lambda dt = c * 0.5 * exp(-1): P ~ 0.009 and ~ 0.31
    pops = [population("E", N=1000, mu=mu, u_reset=mu, u_th=u_th, delta_u=delta_u, c=c_hz)]
    net = Network(pops, dt=dt, seed=5)
    net.state.u[:] = mu
    nsteps = 1000
    _, counts, expected, _ = net.run(nsteps)
    P = 1 - math.exp(-c_hz * 1e-3 * math.exp((mu - u_th) / delta_u) * dt)
    np.testing.assert_allclose(expected, 1000 * P, rtol=1e-12)
    n = 1000 * nsteps
    count = counts.sum()
    assert abs(count - n * P) < 3 * math.sqrt(n * P * (1 - P)), (count, n * P)


def test_parameters_from_populations():
    pops = [population("E", tau_theta=(10.0, 100.0), J_theta=(5.0, 50.0), t_ref=2.0, delta_u=4.0, c=20.0),
            population("I", tau_s=0.0)]
    p = neuron_parameters(pops, [[1.0, -2.0], [0.5, 0.0]], 0.25)
    np.testing.assert_array_equal(p.n_ref, [8, 0])
    np.testing.assert_allclose(p.q_jump, [[0.5, 0.5], [0.0, 0.0]])
    np.testing.assert_allclose(p.q_decay[0], np.exp(-0.25 / np.array([10.0, 100.0])))
    np.testing.assert_allclose(p.J_over_dt, [[4.0, -8.0], [2.0, 0.0]])
    np.testing.assert_allclose(p.c_per_ms, [0.02, 0.01])
    np.testing.assert_allclose(p.inv_delta_u, [0.25, 0.5])
    assert p.P_ss[1] == 0.0  # instantaneous synapses of type I


def test_layout_rejects_oversized_population():
    with pytest.raises(ValueError, match="N must be below"):
        NeuronLayout.build([0], [2**24])

