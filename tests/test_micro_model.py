"""The microscopic model on one rank (meshfield.micro.model): interface, records, checkpoints."""

import math

import numpy as np
import pytest
from mpi4py import MPI

import meshfield
from meshfield.config import Config
from meshfield.coupling import build_stencils
from meshfield.micro import MicroModel
from meshfield.micro.model import resources
from meshfield.simulation import make_decomposition


def config_dict(shape=(4, 3), couplings=True, **record):
    pops = {
        "E": dict(N=30, mu=24.0, t_ref=2.0, tau_theta=[50.0], J_theta=[100.0], tau_s=3.0),
        "I": dict(N=10, mu=22.0, t_ref=1.0, tau_s=6.0),
    }
    cps = []
    if couplings:
        for a in pops:
            for b in pops:
                cps.append(dict(target=a, source=b, J=0.3 if b == "E" else -1.0, C=12 if b == "E" else 4,
                                kernel=dict(shape="gaussian", sigma=0.1, r_max=0.1),
                                delay=dict(d0=1.0, velocity=0.1)))
    return dict(run=dict(level="micro", t_end=100.0, dt=0.5, seed=9),
                lattice=dict(shape=list(shape), dx=0.1, boundary="periodic"),
                populations=pops, couplings=cps, record=dict(interval=1.0, **record))


def build(d):
    config = Config.from_dict(d)
    stencils = build_stencils(config)
    dec = make_decomposition(config, MPI.COMM_SELF, stencils=stencils)
    return config, dec, MicroModel(config, dec, stencils)


def run_blocks(model, step0, nsteps, block):
    n_sites = int(np.prod(model.local_shape))
    counts = np.empty((nsteps, model.n_types, n_sites))
    expected = np.empty_like(counts)
    spikes = []
    for s in range(step0, step0 + nsteps, block):
        k = slice(s - step0, s - step0 + block)
        model.advance(s, block, counts[k], expected[k])
        spikes.append(model.recorded_spikes())
        model.exchange()
    return counts, expected, np.concatenate(spikes)


def test_resources_match_the_built_model():
    config, dec, model = build(config_dict())
    r = resources(config, build_stencils(config), dec.local_shape, dec.halo_width)
    assert r["neurons"] == model.n_neurons == 12 * 40
    assert r["synapses"] == model.n_synapses == 12 * (30 * 16 + 10 * 16)
    assert r["memory_bytes"] == model.memory_bytes()
    # while building: the incoming synapses too (int32 source key, uint8 delay here)
    assert r["peak_bytes"] == r["memory_bytes"] + 5 * r["synapses"]
    # a 4 x 3 block with halo 1: the inner sites are 2 x 1
    assert r["edge_neurons"] == (12 - 2) * 40
    # spikes cross only faces with a neighbour rank: none on one rank; on a (2, 1)
    # periodic grid the two faces along axis 0 (sites of rows 0 and 3: 6 sites)
    stencils = build_stencils(config)
    alone = resources(config, stencils, dec.local_shape, dec.halo_width, (1, 1), True)
    assert (alone["edge_neurons"], alone["spikes_per_exchange_per_hz"], alone["bytes_per_exchange_per_hz"]) == (0, 0, 0)
    split = resources(config, stencils, (4, 3), 1, (2, 1), True)
    assert split["edge_neurons"] == 6 * 40
    # each of those spikes travels as 3 int64 (site, neuron, step), no coordinates
    assert split["bytes_per_exchange_per_hz"] == pytest.approx(24 * split["spikes_per_exchange_per_hz"])
    # an open axis split in 2: one neighbour, one face (3 sites)
    assert resources(config, stencils, (4, 3), 1, (2, 1), False)["edge_neurons"] == 3 * 40


def test_advance_rejects_blocks_longer_than_d_min():
    _, _, model = build(config_dict())
    assert model.d_min == 2
    counts = np.empty((3, 2, 12))
    with pytest.raises(ValueError, match="d_min"):
        model.advance(0, 3, counts, counts.copy())


def test_recorded_spikes_are_the_counted_spikes():
    _, dec, model = build(config_dict(spikes_per_site=30))
    counts, expected, spikes = run_blocks(model, 0, 120, model.d_min)
    assert counts.sum() > 50
    rebuilt = np.zeros_like(counts)
    np.add.at(rebuilt, (spikes[:, 0], spikes[:, 2], spikes[:, 1]), 1)  # global site = local (1 rank)
    np.testing.assert_array_equal(rebuilt, counts)
    assert np.all(spikes[:, 3] < np.where(spikes[:, 2] == 0, 30, 10))
    assert np.all(expected >= 0) and np.all(expected <= np.array([30, 10])[None, :, None])


def test_recorded_spikes_are_those_of_the_first_spikes_per_site_neurons():
    """record.spikes_per_site = 5 keeps the spikes of neurons i < 5 of every type and
    site: exactly the rows with i < 5 of the same run recording every neuron (the
    recording does not touch the dynamics)."""
    _, _, every = build(config_dict(spikes_per_site=30))
    _, _, first = build(config_dict(spikes_per_site=5))
    all_spikes = run_blocks(every, 0, 120, every.d_min)[2]
    some = run_blocks(first, 0, 120, first.d_min)[2]
    assert len(some) > 20 and (all_spikes[:, 3] >= 5).sum() > 20
    np.testing.assert_array_equal(some, all_spikes[all_spikes[:, 3] < 5])


def test_recorded_voltage():
    _, _, model = build(config_dict(voltage_neurons=12))
    run_blocks(model, 0, 4, 2)
    step0, u = model.recorded_voltage()
    assert step0 == 2 and u.shape == (2, 2, 4, 3, 12)
    assert np.isnan(u[:, 1, ..., 10:]).all() and not np.isnan(u[:, 1, ..., :10]).any()
    np.testing.assert_array_equal(u[-1, 0].reshape(12, 12), model.state.u.reshape(12, 40)[:, :12])


def test_checkpoint_continues_bitwise():
    """state_dict after an exchange, loaded into a freshly built model, continues the
    run exactly (the synapses are rebuilt from the seed)."""
    _, _, a = build(config_dict())
    run_blocks(a, 0, 20, 2)
    saved = {k: v.copy() for k, v in a.state_dict().items()}
    views = a.state_dict(copy=False)  # for checkpoints: views of the model's arrays where they can be
    assert all(np.array_equal(views[k], saved[k]) for k in saved) and views.keys() == saved.keys()
    assert np.shares_memory(views["u"], a.state.u) and not np.shares_memory(a.state_dict()["u"], a.state.u)
    counts_a, expected_a, _ = run_blocks(a, 20, 30, 2)
    _, _, b = build(config_dict())
    b.load_state_dict(saved)
    counts_b, expected_b, _ = run_blocks(b, 20, 30, 2)
    assert counts_a.sum() > 10
    np.testing.assert_array_equal(counts_a, counts_b)
    np.testing.assert_array_equal(expected_a, expected_b)


def test_uncoupled_network_runs_in_long_blocks():
    """Without couplings there is no delay bound: any block length; the rate is then
    the single-neuron rate, the same for every block length."""
    d = config_dict(couplings=False)
    _, _, model = build(d)
    assert model.d_min == 0 and model.n_synapses == 0
    counts_long, _, _ = run_blocks(model, 0, 64, 32)
    _, _, model = build(d)
    counts_short, _, _ = run_blocks(model, 0, 64, 1)
    np.testing.assert_array_equal(counts_long, counts_short)


def test_run_entry_point_micro_level():
    result = meshfield.run(config_dict(), comm=MPI.COMM_SELF)
    assert result.A.shape == (100, 2, 4, 3)
    assert result.meta["level"] == "micro"
    # A - Abar is a sum of centred Bernoulli terms: its standard deviation is at most
    # sqrt(spike count); with ~750 E spikes (100 ms x 360 neurons x ~20 Hz) that is
    # ~4 % of the mean, so 20 % is 5 standard errors
    assert abs(result.A[:, 0].mean() - result.Abar[:, 0].mean()) < 0.2 * result.Abar[:, 0].mean()


def test_records_hold_the_drawn_and_the_expected_activity():
    """A record holds A = spikes / (N interval) and Abar = (sum of the firing
    probabilities) / (N interval). With u = mu = u_reset = u_th, t_ref = 0 and no
    adaptation or coupling every neuron fires in every step with P = 1 - exp(-c dt),
    so Abar = 1000 P / dt in every record (to float32 rounding), while A is
    Binomial(N R, P) / (N R dt) Hz per record of R = 2 steps: over 1000 records of
    N = 200 neurons its mean lies within 4 standard errors of Abar and its sample
    variance within 4 standard errors (sqrt(2 / 999), 4.5 %) of
    (1000 / dt)^2 P (1 - P) / (N R)."""
    d = config_dict(shape=(1,), couplings=False)
    d["populations"] = {"P": dict(N=200, mu=15.0, u_reset=15.0, u_th=15.0, c=100.0, delta_u=2.0, t_ref=0.0)}
    d["run"]["t_end"] = 1000.0
    result = meshfield.run(d, comm=MPI.COMM_SELF)
    P = 1.0 - math.exp(-100.0 * 1e-3 * 0.5)
    rate = 1000.0 * P / 0.5
    np.testing.assert_allclose(result.Abar, rate, rtol=1e-6)
    A = result.A[:, 0, 0].astype(float)
    assert len(A) == 1000
    var = (1000.0 / 0.5) ** 2 * P * (1.0 - P) / (200 * 2)
    assert abs(A.mean() - rate) < 4 * math.sqrt(var / len(A))
    assert abs(A.var(ddof=1) / var - 1.0) < 4 * math.sqrt(2.0 / (len(A) - 1))


def test_uncoupled_neurons_fire_at_the_dead_time_renewal_rate():
    """mu = u_reset = 0 keeps u constant, so each neuron is a discrete renewal process:
    n_ref = 8 refractory steps, then a firing probability p = 1 - exp(-lambda dt) per
    step with lambda = c exp((0 - u_th)/delta_u) = 10 exp(1.6) Hz: mean interval
    n_ref + 1/p steps (40.8 Hz). The neurons are independent, so the standard error
    of the mean rate is the standard deviation of the per-neuron spike counts over
    sqrt(N); we require 3 standard errors (about 1.2 %)."""
    d = config_dict(shape=(1,), couplings=False, spikes_per_site=500)
    d["populations"] = {"P": dict(N=500, mu=0.0, u_reset=0.0, u_th=-4.0, c=10.0, delta_u=2.5, t_ref=4.0)}
    _, _, model = build(d)
    discard, nsteps = 200, 4000
    run_blocks(model, 0, discard, 100)
    _, _, spikes = run_blocks(model, discard, nsteps, 100)
    per_neuron = np.bincount(spikes[:, 3], minlength=500) / (nsteps * 0.5e-3)
    p = 1 - np.exp(-10.0 * np.exp(1.6) * 1e-3 * 0.5)
    expected = 1000.0 / ((8 + 1 / p) * 0.5)
    se = per_neuron.std(ddof=1) / np.sqrt(500)
    assert se < 0.005 * expected  # the check must be able to fail
    assert abs(per_neuron.mean() - expected) < 3 * se, (per_neuron.mean(), expected, se)


def test_serial_twin_equals_the_threaded_kernel_bitwise():
    """A block with fewer sites than threads uses the serial compilation of the
    neuron kernel (the thread pool made a one-site network 3-5x slower on 2
    threads); both must give the same numbers."""
    import numba

    from meshfield.micro.neurons import advance_neurons, advance_neurons_serial
    records = []
    for kernel in (advance_neurons, advance_neurons_serial):
        _, _, model = build(config_dict())
        model._advance_neurons = kernel
        records.append(run_blocks(model, 0, 80, 2))
    assert records[0][0].sum() > 50  # the network fires
    for a, b in zip(records[0], records[1]):
        assert np.array_equal(a, b)
    # one site: serial whatever the thread count; 12 sites: threaded with 2 threads
    assert build(config_dict(shape=(1,), couplings=False))[2]._advance_neurons is advance_neurons_serial
    many = build(config_dict())[2]._advance_neurons
    assert many is (advance_neurons if numba.get_num_threads() >= 2 else advance_neurons_serial)


def test_resources_count_the_arrays_and_spikes_of_a_block():
    """The time loop advances d_min steps at once: a spike flag per neuron and step,
    float64 drives, counts and expectations per site, type and step, and the
    block's spikes as lists (and, on several ranks, the records exchanged).
    Neither was counted: with 200 ms delays on 2 and 4 ranks a run peaked 1.3
    and 1.5 times the estimate above the interpreter."""
    d = config_dict()
    for c in d["couplings"]:
        c["delay"] = dict(d0=10.0, velocity=0.1)  # d_min = 20 steps
    config = Config.from_dict(d)
    stencils = build_stencils(config)
    r = resources(config, stencils, (4, 3), 1, (1, 1), True)
    sites, neurons, block = 12, 12 * 40, 20
    assert r["block_steps"] == block
    assert r["block_arrays_bytes"] == r["block_bytes"] == block * neurons + 5 * 8 * block * 2 * sites
    # spikes at twice the stationary rate: on one rank step, neuron, site, neuron
    # within it and the delivery's two key temporaries, 6 int64 per spike
    rated = resources(config, stencils, (4, 3), 1, (1, 1), True, rate=10.0)
    spikes = 20.0 * neurons * block * 0.5e-3
    assert rated["spike_rate"] == 20.0 and rated["spike_bytes"] == math.ceil(48 * spikes)
    # several ranks: the edge sites' outbox (3 int64 per spike, from 3 temporary
    # columns) in the advance, then the exchange's records
    from meshfield.parallel.spikes import exchange_spikes_bytes
    peak, halo = exchange_spikes_bytes((4, 3), (2, 1), True, 1, 3)
    per_site = 20.0 * 40 * block * 0.5e-3
    loop, arrays = 2 * 8 * block * 2 * sites, block * neurons + 3 * 8 * block * 2 * sites
    advance = arrays + 33 * per_site * sites + 48 * per_site * (sites - 2)
    exchange = 24 * (sites - 2) * per_site + per_site * peak
    split = resources(config, stencils, (4, 3), 1, (2, 1), True, rate=10.0)
    assert split["block_bytes"] == loop + arrays + math.ceil(max(advance, exchange) - arrays)
    # never above the rate the refractory period allows
    assert resources(config, stencils, (4, 3), 1, (1, 1), True, rate=1e9)["spike_rate"] == \
        pytest.approx(1000 / 0.5 * (30 / (4 + 1) + 10 / (2 + 1)) / 40)


def test_one_rank_keeps_no_outbox_of_spikes():
    """On one rank nothing is exchanged: the edge sites' spikes were still copied
    into an outbox (3 int64 per spike) and held until the next block."""
    d = config_dict()
    for c in d["couplings"]:
        c["delay"] = dict(d0=10.0, velocity=0.1)
    config, dec, model = build(d)
    counts, expected, _ = run_blocks(model, 0, 40, 20)
    assert counts.sum() > 0
    assert model._outbox.shape == (0, 3)
