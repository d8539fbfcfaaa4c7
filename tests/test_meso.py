"""The mesoscopic engine against its reference, the renewal theory and the r/N noise level."""

import math

import numpy as np
import pytest
from mpi4py import MPI

import meshfield
from meshfield.config import Config, ConfigError, refractory_steps, to_steps
from meshfield.coupling import build_stencils
from meshfield.meso import history_length
from meshfield.meso.kernels import synaptic_input
from meshfield.meso.reference import ReferencePopulation
from meshfield.simulation import build_model, make_decomposition
from meshfield.theory import stationary_rate, stationary_rate_discrete

POP = dict(N=500, mu=24.0, tau_m=20.0, t_ref=4.0, u_reset=0.0, u_th=15.0, c=10.0, delta_u=2.5,
           tau_s=3.0)


def single(t_end=1000.0, record=0.5, **pop):
    return {
        "run": {"t_end": t_end, "dt": 0.5, "seed": 7},
        "lattice": {"shape": [1], "boundary": "open"},
        "populations": {"E": {**POP, **pop}},
        "record": {"interval": record},
    }


def run_self(cfg, overrides=()):
    return meshfield.run(meshfield.load_config(cfg, overrides), comm=MPI.COMM_SELF)


# --------------------------------------------------------------------------- history length


def test_history_length_without_adaptation_is_five_tau_m_plus_t_ref():
    pop = Config.from_dict(single()).populations[0]
    assert history_length(pop, 0.5) == math.ceil((5 * 20.0 + 4.0) / 0.5)


def test_history_length_with_adaptation_is_shortest_below_tolerance():
    pop = Config.from_dict(single(tau_theta=[1000.0, 100.0], J_theta=[1000.0, 300.0])).populations[0]
    K = history_length(pop, 0.5)

    def eps(a):
        return sum(J / tau * math.exp(-a / tau) for tau, J in zip(pop.tau_theta, pop.J_theta))

    assert eps(K * 0.5) < 0.1 * pop.delta_u
    assert eps((K - 1) * 0.5) >= 0.1 * pop.delta_u
    assert K > 1000  # the slow timescale dominates: K is in the thousands


def test_explicit_history_length_must_exceed_refractory_period():
    pop = Config.from_dict(single(K=5)).populations[0]
    with pytest.raises(ConfigError, match="K = 5"):
        history_length(pop, 0.5)


def _reference_history_length(pop, dt, bound):
    """The automatic K by its definition, scanning |eps_theta| over 0 ... bound steps at once."""
    n_ref = refractory_steps(pop.t_ref, dt)
    k_min = math.ceil((5 * pop.tau_m + pop.t_ref) / dt - 1e-9)
    eps = np.abs(sum(J / tau * np.exp(-np.arange(bound + 1) * dt / tau)
                     for tau, J in zip(pop.tau_theta, pop.J_theta)) + np.zeros(bound + 1))
    above = np.nonzero(eps >= 0.1 * pop.delta_u)[0]
    return max(k_min, int(above[-1]) + 1 if len(above) else 0, n_ref + 1)


@pytest.mark.parametrize("tau_theta, J_theta, delta_u, t_ref", [
    ([1000.0, 100.0], [1000.0, 300.0], 2.5, 4.0),
    ([100.0, 1000.0], [1000.0, -1000.0], 2.5, 4.0),     # mixed signs
    ([50.0, 50.0], [400.0, -400.0], 2.5, 4.0),          # terms that cancel exactly
    ([30.0, 300.0, 3000.0], [-50.0, 800.0, 5000.0], 0.5, 0.0),
    ([1e-3], [10.0], 2.5, 4.0),                         # a huge but short kernel
])
def test_automatic_history_length_equals_its_definition(tau_theta, J_theta, delta_u, t_ref):
    pop = Config.from_dict(single(tau_theta=tau_theta, J_theta=J_theta, delta_u=delta_u,
                                  t_ref=t_ref)).populations[0]
    for dt in (0.1, 0.5):
        assert history_length(pop, dt) == _reference_history_length(pop, dt, 200_000)


def test_history_length_of_the_packaged_configurations():
    """Pinned values: the chunked search gives the same K as the plain scan before it."""
    expected = {("default", 0.5): [208, 104], ("nest_example", 0.5): [2773, 2773],
                ("nest_example", 0.1): [13864, 13864], ("nest_example", 0.01): [138634, 138634],
                ("bench_micro", 0.5): [2773, 2773], ("bistable_pair", 0.5): [108, 108]}
    for (name, dt), Ks in expected.items():
        assert [history_length(p, dt) for p in meshfield.load_config(name).populations] == Ks


@pytest.mark.parametrize("pop, words", [
    (dict(tau_theta=[1e7], J_theta=[1e7]),
     ["populations.E.tau_theta = [10000000.0]", "J_theta = [10000000.0]", "K would be 27725888 steps",
      "at most 20000000 steps", "explicit populations.E.K"]),
    (dict(tau_theta=[1e9], J_theta=[1e9]),
     ["populations.E.tau_theta", "K would be 2772588725 steps", "at most 20000000 steps"]),
    (dict(tau_theta=[1e300], J_theta=[1e308]), ["populations.E.tau_theta", "more than", "20000000"]),
    (dict(tau_m=1e9), ["populations.E.tau_m = 1000000000.0", "10000000008 steps", "at most 20000000 steps"]),
    (dict(t_ref=1e10), ["populations.E.t_ref = 10000000000.0", "20000000200 steps", "at most 20000000"]),
    (dict(t_ref=1e308), ["populations.E.t_ref", "at most 20000000"]),
])
def test_automatic_history_length_has_the_bound_of_an_explicit_one(pop, words):
    import tracemalloc
    pop = Config.from_dict(single(**pop)).populations[0]
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError) as info:
            history_length(pop, 0.5)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    for w in words:
        assert w in str(info.value), (w, str(info.value))
    assert peak < 2**20  # refused before anything large is allocated


def test_longest_automatic_history_length_uses_bounded_memory():
    import tracemalloc
    pop = Config.from_dict(single(tau_theta=[7e6], J_theta=[7e6])).populations[0]
    tracemalloc.start()
    try:
        K = history_length(pop, 0.5)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # eps_theta(t) = exp(-t / 7e6) >= 0.25 up to t = 7e6 ln 4 ms = 19408121.05 steps
    assert K == math.floor(7e6 * math.log(4.0) / 0.5) + 1 == 19_408_122
    assert math.exp(-K * 0.5 / 7e6) < 0.25 <= math.exp(-(K - 1) * 0.5 / 7e6)
    assert peak < 200 * 2**20  # chunks of 2**20 steps, not arrays of K values
    # an explicit K within the bound is the way to a shorter history
    pop = Config.from_dict(single(tau_theta=[1e9], J_theta=[1e9], K=20_000_000)).populations[0]
    assert history_length(pop, 0.5) == 20_000_000


# --------------------------------------------------------------------------- kernel vs reference


@pytest.mark.parametrize("noise", ["none", "binomial"])
def test_population_kernel_matches_pure_python_reference(noise):
    """Same drive, same random numbers: the numba kernel and the line-by-line
    transcription of MODEL.md §4 agree step by step."""
    cfg = single(t_end=150.0, N=50, K=40, t_ref=2.0, tau_theta=[30.0, 8.0], J_theta=[40.0, 10.0],
                 mu=26.0, c=20.0)
    cfg["run"]["mean_field"] = noise == "none"
    config = Config.from_dict(cfg)
    dec = make_decomposition(config, MPI.COMM_SELF)
    model = build_model(config, dec, ())
    pop = config.populations[0]
    ref = ReferencePopulation(pop, 0.5, 40)
    h_inc = pop.mu * (1 - math.exp(-0.5 / pop.tau_m))
    n_steps = config.run.n_steps
    counts = np.empty((n_steps, 1, 1))
    expected = np.empty_like(counts)
    model.advance(0, n_steps, counts, expected)
    ref_n = np.empty(n_steps)
    ref_bar = np.empty(n_steps)
    for t in range(n_steps):
        ref_n[t], ref_bar[t] = ref.step(h_inc, t, noise=noise, seed=config.run.seed)
    assert ref_n.sum() > 20  # the comparison covers firing, not silence
    np.testing.assert_allclose(expected[:, 0, 0], ref_bar, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(counts[:, 0, 0], ref_n, rtol=1e-11, atol=1e-12)


def test_serial_twins_equal_the_threaded_kernels_bitwise():
    """Blocks with fewer sites than threads use the serial compilations; both
    must give the same numbers, so that results do not depend on the block size."""
    from meshfield.meso import kernels
    from test_invariance_mpi import PERIODIC_2D
    config = Config.from_dict(PERIODIC_2D)
    stencils = build_stencils(config)
    dec = make_decomposition(config, MPI.COMM_SELF, stencils=stencils)
    records = []
    for serial in (False, True):
        model = build_model(config, dec, stencils)
        model._advance = kernels.advance_fused_serial if serial else kernels.advance_fused
        counts, expected = np.empty((40, 2, 2, model.n_local)), np.empty((40, 2, 2, model.n_local))
        for b in range(40):
            model.advance(2 * b, 2, counts[b], expected[b])
            model.exchange()
        records.append((counts, expected))
    assert records[0][0].sum() > 100  # the network fires, so the comparison means something
    assert np.array_equal(records[0][0], records[1][0])
    assert np.array_equal(records[0][1], records[1][1])


def test_fused_blocks_equal_the_block_by_block_path_bitwise():
    """One site, no halo: the model advances 64 steps per call; calls of one block
    of d_min steps each (the time loop with a halo) must give the same numbers
    and state."""
    from test_invariance_mpi import EI
    cfg = {
        "run": {"t_end": 100.0, "dt": 0.5, "seed": 4},
        "lattice": {"shape": [1], "boundary": "open"},
        "populations": EI,
        "couplings": [dict(target=t, source=s, J=J, C=C, delay=dict(d0=d0))
                      for t in "EI" for s, J, C, d0 in (("E", 0.4, 60, 1.0), ("I", -1.5, 20, 1.5))],
        "stimuli": [{"kind": "ou", "amplitude": 1.0, "tau": 5.0}],
    }
    config = Config.from_dict(cfg)
    stencils = build_stencils(config)
    dec = make_decomposition(config, MPI.COMM_SELF, stencils=stencils)
    out = []
    for fused in (True, False):
        model = build_model(config, dec, stencils)
        assert model.block_steps == 64 and model.d_min == 2
        counts, expected = np.empty((640, 2, 1)), np.empty((640, 2, 1))
        if fused:
            # a first call that ends inside a block of d_min steps, as after a restart
            calls = [(0, 7), (7, 57)] + [(64 * b, 64) for b in range(1, 10)]
        else:
            calls = [(0, 2), (2, 2), (4, 2), (6, 1), (7, 1)] + [(t, 2) for t in range(8, 640, 2)]
        for t, nb in calls:
            model.advance(t, nb, counts[t:t + nb], expected[t:t + nb])
        out.append((counts, expected, model.state_dict()))
        # copy=False (checkpoints): the same values, the cohorts as views of the model's arrays
        views = model.state_dict(copy=False)
        assert views.keys() == out[-1][2].keys()
        assert all(np.array_equal(views[key], out[-1][2][key]) for key in views)
        assert np.shares_memory(views["E/m"], model.pops[0]["state"]["m"])
        assert not np.shares_memory(out[-1][2]["E/m"], model.pops[0]["state"]["m"])
    assert out[0][0].sum() > 500  # both types fire
    assert np.array_equal(out[0][0], out[1][0]) and np.array_equal(out[0][1], out[1][1])
    assert out[0][2].keys() == out[1][2].keys()
    for key in out[0][2]:
        assert np.array_equal(out[0][2][key], out[1][2][key]), key


def test_long_blocks_give_the_same_records(monkeypatch):
    """A single site runs in blocks of 64 steps; records of 3 steps (1.5 ms) then
    end inside blocks and 400 records fill more than one write chunk (256). The
    records equal those of blocks of d_min steps bit for bit."""
    import meshfield.meso.model as meso_model
    cfg = single(t_end=600.0, record=1.5, tau_theta=[30.0], J_theta=[40.0])
    cfg["couplings"] = [dict(target="E", source="E", J=0.2, C=100, delay=dict(d0=1.0))]
    long_blocks = run_self(cfg)
    monkeypatch.setattr(meso_model, "FUSED_MAX_SITES", 0)
    short_blocks = run_self(cfg)
    assert len(long_blocks.times) == 400 and long_blocks.A.mean() > 5.0
    assert np.array_equal(long_blocks.A, short_blocks.A)
    assert np.array_equal(long_blocks.Abar, short_blocks.Abar)


def test_state_dict_loaded_into_a_new_model_continues_bitwise():
    """MesoModel.load_state_dict restores every state array, the Ornstein-Uhlenbeck
    stimulus included: a freshly built model loaded with the state of another after
    20 steps continues as that one, bit for bit (OPEN_1D: E/I with adaptation,
    delays, a halo and an OU stimulus, whose fresh state differs)."""
    from test_invariance_mpi import OPEN_1D
    config = Config.from_dict(OPEN_1D)
    stencils = build_stencils(config)
    dec = make_decomposition(config, MPI.COMM_SELF, stencils=stencils)

    def run_blocks(model, step0, nsteps):
        counts, expected = np.empty((nsteps, 2, model.n_local)), np.empty((nsteps, 2, model.n_local))
        for t in range(step0, step0 + nsteps, model.d_min):
            k = slice(t - step0, t - step0 + model.d_min)
            model.advance(t, model.d_min, counts[k], expected[k])
            model.exchange()
        return counts, expected

    a = build_model(config, dec, stencils)
    assert a.d_min == 2 and a.block_steps is None
    run_blocks(a, 0, 20)
    saved = {key: value.copy() for key, value in a.state_dict().items()}
    b = build_model(config, dec, stencils)
    assert not np.array_equal(b.state_dict()["stimulus/ou_0"], saved["stimulus/ou_0"])
    b.load_state_dict(saved)
    counts_a, expected_a = run_blocks(a, 20, 60)
    counts_b, expected_b = run_blocks(b, 20, 60)
    assert counts_a.sum() > 100  # the populations fire: the comparison means something
    assert np.array_equal(counts_a, counts_b) and np.array_equal(expected_a, expected_b)


def test_synaptic_input_kernel_matches_numpy():
    rng = np.random.default_rng(3)
    D, n_types, shape, h = 6, 2, (5, 4), 2
    hist = rng.integers(0, 9, size=(D, n_types, shape[0] + 2 * h, shape[1] + 2 * h)).astype(float)
    offsets = np.array([[0, 0], [1, 0], [-2, 1], [0, -1]])
    weights = np.array([0.4, 0.3, 0.2, 0.1])
    delays = np.array([2, 3, 5, 2])
    ny = shape[1] + 2 * h
    site_base = np.array([(i + h) * ny + (j + h) for i in range(shape[0]) for j in range(shape[1])])
    norm = rng.uniform(0.5, 1.0, size=(1, site_base.size))
    out = np.empty((1, 2, site_base.size))
    synaptic_input(10, 2, hist.reshape(D, n_types, -1), D, site_base, np.array([1]),
                   np.array([0, 4]), offsets @ np.array([ny, 1]), weights, delays,
                   np.array([0.25]), norm, out)
    for k in range(2):
        for idx, (i, j) in enumerate(np.ndindex(shape)):
            want = sum(w * hist[(10 + k - d) % D, 1, i + h + o[0], j + h + o[1]]
                       for o, w, d in zip(offsets, weights, delays)) * 0.25 / norm[0, idx]
            assert out[0, k, idx] == pytest.approx(want, rel=1e-14)


# --------------------------------------------------------------------------- cohort storage


def test_float32_cohorts_halve_the_state_and_keep_the_deterministic_rates():
    """run.cohort_dtype = "float32" stores m, v, u, lam, n in float32 (the arithmetic
    stays float64): the mean-field rates of a population with two adaptation
    timescales stay within 2e-6 of the float64 ones (they differ by 1.9e-7;
    float32 itself resolves 6e-8), and the cohort state takes half the bytes."""
    cfg = single(t_end=3000.0, tau_theta=[100.0, 1000.0], J_theta=[500.0, 1000.0])
    rates = {}
    for dtype in ("float64", "float32"):
        config = meshfield.load_config(cfg, ["run.mean_field=true", f"run.cohort_dtype={dtype}"])
        dec = make_decomposition(config, MPI.COMM_SELF)
        model = build_model(config, dec, build_stencils(config))
        assert {name: a.dtype for name, a in model.pops[0]["state"].items() if name in "m v u lam n".split()} \
            == dict.fromkeys("m v u lam n".split(), np.dtype(dtype))
        assert model.pops[0]["state"]["x"].dtype == np.float64
        rates[dtype] = meshfield.run(config, comm=MPI.COMM_SELF).A[-1000:, 0, 0].astype(float).mean()
    assert rates["float32"] == pytest.approx(rates["float64"], rel=2e-6)
    from meshfield.meso.model import resources
    sizes = {d: resources(meshfield.load_config(cfg, [f"run.cohort_dtype={d}"]), (), (4,), 0)["state_bytes"]
             for d in ("float64", "float32")}
    K = history_length(Config.from_dict(cfg).populations[0], 0.5)
    assert sizes["float64"] - sizes["float32"] == 4 * 5 * 4 * K   # 4 sites x 5 arrays x 4 bytes x K


def test_cohort_dtype_is_refused_unless_float64_or_float32():
    with pytest.raises(ConfigError, match=r"run.cohort_dtype = 'float16' is invalid.*'float64'.*'float32'"):
        meshfield.load_config(single(), ["run.cohort_dtype=float16"])


# --------------------------------------------------------------------------- theory


@pytest.mark.parametrize("cohort_dtype", ["float64", "float32"])
def test_mean_field_rate_equals_discrete_theory_and_continuous_within_2_percent(cohort_dtype):
    res = run_self(single(t_end=1500.0), ["run.mean_field=true", f"run.cohort_dtype={cohort_dtype}"])
    A = res.A[:, 0, 0].astype(float)
    late = A[-1000:]
    pop = Config.from_dict(single()).populations[0]
    # the deterministic limit converges: no fluctuations remain
    assert late.std() < 1e-5 * late.mean()
    assert late.mean() == pytest.approx(stationary_rate_discrete(pop, 0.5, K=history_length(pop, 0.5)),
                                        rel=1e-6)
    assert late.mean() == pytest.approx(stationary_rate(pop), rel=0.02)


@pytest.mark.parametrize("cohort_dtype", ["float64", "float32"])
def test_finite_size_mean_rate_matches_renewal_theory(cohort_dtype):
    """N = 500, no adaptation, 40 s: the long-run mean within 2 % of the independent
    renewal rate and within 3 standard errors (batch means over 40 blocks of 1 s)."""
    res = run_self(single(t_end=41000.0, record=1.0), [f"run.cohort_dtype={cohort_dtype}"])
    A = res.A[1000:, 0, 0].astype(float)  # discard 1 s
    blocks = A.reshape(40, -1).mean(axis=1)
    mean, se = blocks.mean(), blocks.std(ddof=1) / math.sqrt(len(blocks))
    pop = Config.from_dict(single()).populations[0]
    r_cont = stationary_rate(pop)
    r_disc = stationary_rate_discrete(pop, 0.5, K=history_length(pop, 0.5))
    assert mean == pytest.approx(r_cont, rel=0.02)
    assert abs(mean - r_disc) < 3 * se


@pytest.mark.parametrize("noise", ["poisson", "binomial"])
def test_finite_size_draw_has_mean_n_bar_and_the_variance_of_its_law(noise):
    """Given the expectation n_bar of a step, run.noise = "binomial" draws n ~
    Binomial(N, n_bar/N) and "poisson" (MODEL.md §4, the documented alternative)
    n ~ Poisson(n_bar) clipped at N (never reached here). u = mu = u_th = u_reset
    and c = 400 Hz give n_bar/N ~ 0.125, so the two variances, n_bar (1 - n_bar/N)
    and n_bar, differ by 12 %. n - n_bar is a martingale difference: over 20000
    steps its mean is within 4 standard errors sqrt(mean var / steps) of 0, and
    sum (n - n_bar)^2 / sum var within 4 standard errors (about 1 %, computed
    from the sample) of 1."""
    N = 100
    res = run_self(single(t_end=10500.0, N=N, mu=15.0, u_reset=15.0, c=400.0, t_ref=1.0), [f"run.noise='{noise}'"])
    per_step = N * 0.5e-3  # Hz -> spikes per step
    n = res.A[1000:, 0, 0].astype(float) * per_step
    n_bar = res.Abar[1000:, 0, 0].astype(float) * per_step
    d = n - n_bar
    var = n_bar if noise == "poisson" else n_bar * (1.0 - n_bar / N)
    assert 0.1 < n_bar.mean() / N < 0.15
    assert abs(d.mean()) < 4 * math.sqrt(var.mean() / len(d))
    se = (d ** 2 - var).std() * math.sqrt(len(d)) / var.sum()
    assert se < 0.015  # resolves the 12 % between the two laws
    assert abs((d ** 2).sum() / var.sum() - 1.0) < 4 * se


def test_psd_at_high_frequency_approaches_r_over_N():
    """The finite-size noise of N neurons: at high frequencies the two-sided PSD of A
    (Hz^2/Hz) is r/N, the level of N independent spike trains of rate r."""
    N = 200
    res = run_self(single(t_end=20500.0, N=N, c=5.0))
    A = res.A[1000:, 0, 0].astype(float)  # record = dt = 0.5 ms; discard 0.5 s
    seg = 2000  # 1 s segments
    x = A[: len(A) // seg * seg].reshape(-1, seg)
    x = x - x.mean(axis=1, keepdims=True)
    dt_s = 0.5e-3
    S = (np.abs(np.fft.rfft(x, axis=1)) ** 2).mean(axis=0) * dt_s / seg
    f = np.fft.rfftfreq(seg, dt_s)
    band = (f > 300) & (f < 900)
    level = S[band].mean()
    r = A.mean()
    # Bernoulli spikes in bins of dt: white level r (1 - r dt) / N; 20 segments x 600
    # bins give a relative standard error ~ 1/sqrt(12000) ~ 1 %; allow 5 % for the
    # residual structure of the renewal spectrum at these frequencies.
    assert level == pytest.approx(r * (1 - r * dt_s) / N, rel=0.05)


@pytest.mark.parametrize("level", ["meso", "micro"])
def test_a_record_averages_the_steps_of_its_interval(level):
    """Recording does not touch the dynamics (the random numbers are keyed by
    step), so a run recorded every 4 steps holds the means over steps 4j..4j+3
    of the same run recorded every step, A and Abar, to float32 rounding; a
    window shifted by one step differs by the step-to-step fluctuations (~10 %)."""
    fine = run_self(single(t_end=200.0, record=0.5), [f"run.level='{level}'"])
    coarse = run_self(single(t_end=200.0, record=2.0), [f"run.level='{level}'"])
    for name in ("A", "Abar"):
        steps = getattr(fine, name).astype(float)
        means = steps.reshape(-1, 4, *steps.shape[1:]).mean(axis=1)
        np.testing.assert_allclose(getattr(coarse, name), means, rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(coarse.times, fine.times[::4])


@pytest.mark.parametrize("level", ["meso", "micro"])
def test_populations_at_different_sites_and_of_different_types_draw_independent_noise(level):
    """Two identical uncoupled types on two sites: four populations with the same
    parameters whose only difference is their key in the random streams. Their
    activities must be uncorrelated: with n = 19000 samples of nearly white
    fluctuations the sample correlation has SE ~ 1/sqrt(n) ~ 0.007 (assert
    |r| < 0.05, 7 SE). Keys that ignore the type or the site make two of them
    bitwise equal (r = 1)."""
    cfg = single(t_end=10000.0)
    cfg["lattice"] = {"shape": [2], "boundary": "open"}
    cfg["populations"]["F"] = dict(cfg["populations"]["E"])
    res = run_self(cfg, [f"run.level='{level}'"])
    series = res.A[1000:].astype(float).reshape(len(res.A) - 1000, 4).T     # (E,0) (E,1) (F,0) (F,1)
    r = np.corrcoef(series)
    for i in range(4):
        for j in range(i):
            assert not np.array_equal(series[i], series[j]), (i, j)
            assert abs(r[i, j]) < 0.05, (i, j, r[i, j])


def test_mean_field_and_finite_size_share_the_deterministic_limit():
    """As N grows, the finite-size mean rate approaches the mean-field rate and the
    variance of A falls like 1/N."""
    var = {}
    for N in (100, 1600):
        res = run_self(single(t_end=6000.0, N=N))
        A = res.A[2000:, 0, 0].astype(float)
        var[N] = A.var()
    # variance of the binned activity scales like 1/N: ratio 16, within +-25 %
    assert var[100] / var[1600] == pytest.approx(16.0, rel=0.25)


def test_resources_estimate_the_built_model():
    """The estimate that `meshfield info` prints and the memory check of
    `meshfield.run` uses: exact for the cohort arrays and the history, 64 bytes per
    population for the rest (within 0.5 % of the built model here)."""
    from meshfield.config import packaged_config
    from meshfield.meso.model import resources
    from meshfield.simulation import build_model, make_decomposition

    for name in ("default", "v3_field", "nest_example"):
        cfg = meshfield.load_config(packaged_config(name), ["run.level=meso"])
        stencils = build_stencils(cfg)
        dec = make_decomposition(cfg, MPI.COMM_SELF, None, stencils)
        r = resources(cfg, stencils, dec.local_shape, dec.halo_width)
        actual = build_model(cfg, dec, stencils).memory_bytes()
        assert abs(r["memory_bytes"] / actual - 1.0) < 0.005, (name, r, actual)


@pytest.mark.parametrize("t_ref, dt, n_ref", [(0.35, 0.1, 4), (0.15, 0.1, 2), (1.25, 0.5, 3), (1.3, 0.5, 3),
                                              (4.0, 0.5, 8), (0.0, 0.5, 0), (0.24, 0.5, 0)])
def test_refractory_steps_are_rounded_like_delays_at_both_levels_and_in_the_theory(t_ref, dt, n_ref):
    """Python's round of t_ref / dt gave 3 for 0.35 / 0.1 (3.4999... in floating
    point) and 2 for 1.25 / 0.5, where a delay of the same length has 4 and 3 steps."""
    from meshfield.micro.neurons import neuron_parameters
    from meshfield.theory.stationary import _neuron, _refractory_steps

    pop = Config.from_dict(dict(run=dict(dt=dt), lattice=dict(shape=[1]),
                                populations=dict(E=dict(N=10, mu=20.0, t_ref=t_ref)))).populations[0]
    assert refractory_steps(t_ref, dt) == n_ref == to_steps(t_ref, dt)
    assert ReferencePopulation(pop, dt, max(n_ref + 1, 5)).n_ref == n_ref
    assert list(neuron_parameters([pop], np.zeros((1, 1)), dt).n_ref) == [n_ref]
    assert _refractory_steps(_neuron(pop), dt) == n_ref
