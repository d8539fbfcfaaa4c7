"""NEST peer (meshfield.peers.nest): parameter translation and known-rate checks.

The comparisons of meshfield's engine against NEST live with the engine's tests;
here NEST itself is checked against closed forms so that a translation error
(weights, signs, units, time stamps) cannot hide behind a statistical comparison.
"""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest

from meshfield.config import load_config, packaged_config, read_toml
from meshfield.peers import nest as pn
from meshfield.theory.stationary import stationary_rate_discrete

pytestmark = pytest.mark.peer

os.environ.setdefault("PYNEST_QUIET", "1")  # NEST's banner
nest = pytest.importorskip("nest")


@pytest.fixture(autouse=True, scope="module")
def nest_in_this_process():
    """Two tests inspect NEST's kernel state after a call, so this file runs NEST in
    the test process (elsewhere meshfield.peers.nest isolates every call in a
    subprocess). `make test` gives this file a pytest process of its own, with no
    numba kernels run before NEST (the two crash when they share a process)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(pn._IN_WORKER, "1")
        yield


def _single_population(mu, tau_theta=(), J_theta=(), N=1000, c=10.0, u_th=15.0, delta_u=2.5):
    return {
        "run": {"level": "meso", "t_end": 1000.0, "dt": 0.5, "seed": 7, "noise": "binomial"},
        "lattice": {"shape": [1], "dx": 0.1, "boundary": "periodic"},
        "populations": {
            "P": {
                "N": N,
                "mu": mu,
                "tau_m": 20.0,
                "t_ref": 4.0,
                "u_reset": 0.0,
                "u_th": u_th,
                "c": c,
                "delta_u": delta_u,
                "tau_theta": list(tau_theta),
                "J_theta": list(J_theta),
                "tau_s": 3.0,
            }
        },
        "couplings": [],
    }


def _example() -> dict:
    return read_toml(packaged_config("nest_example"))


def test_translation_of_the_nest_example_is_exact():
    cfg = load_config("nest_example")
    g_L = pn.C_M / 20.0
    expected_common = {
        "C_m": pn.C_M,
        "E_L": 0.0,
        "I_e": 24.0 * g_L,
        "lambda_0": 10.0,
        "Delta_V": 2.5,
        "V_T_star": 15.0,
        "V_reset": 0.0,
        "t_ref": 4.0,
        "tau_sfa": [100.0, 1000.0],
        "q_sfa": [10.0, 1.0],
        "tau_syn_ex": 3.0,
        "tau_syn_in": 6.0,
    }
    for name, N in (("E", 800), ("I", 200)):
        pop = pn.config_to_gif_pop_params(cfg, name)
        assert pop == {**expected_common, "N": N, "tau_m": 20.0, "len_kernel": -1, "BinoRand": True}
        neuron = pn.config_to_gif_psc_exp_params(cfg, name)
        assert neuron == {**expected_common, "g_L": g_L, "V_m": 0.0, "tau_stc": [], "q_stc": []}
    # The example's weights: J_syn * (C_m / tau_syn) * pconn, pconn = 0.2.
    assert pn.gif_pop_weight(0.3, 160, 800, 3.0) == pytest.approx(0.3 * pn.C_M / 3.0 * 0.2, rel=1e-15)
    assert pn.gif_pop_weight(-1.5, 40, 200, 6.0) == pytest.approx(-1.5 * pn.C_M / 6.0 * 0.2, rel=1e-15)
    assert pn.gif_psc_exp_weight(-1.5, 6.0) == -1.5 * pn.C_M / 6.0


def test_translation_options_and_errors():
    cfg = _single_population(mu=10.0)
    cfg["run"]["noise"] = "poisson"
    cfg["populations"]["P"]["K"] = 300
    params = pn.config_to_gif_pop_params(cfg, "P")
    assert params["BinoRand"] is False and params["len_kernel"] == 300
    # gif_pop_psc_exp needs one adaptation timescale: a zero-amplitude one
    assert params["tau_sfa"] == [20.0] and params["q_sfa"] == [0.0]
    # unused synaptic channels get tau_m / 2, away from the tau_syn = tau_m singularity
    assert (params["tau_syn_ex"], params["tau_syn_in"]) == (10.0, 10.0)

    cfg = _example()
    mixed = copy.deepcopy(cfg)
    mixed["populations"]["I"]["tau_s"] = 3.0
    mixed["couplings"][1]["J"] = 1.5  # I now excites E, with tau_s = 3 like E: allowed
    assert pn.synaptic_time_constants(mixed, "E") == (3.0, 10.0)
    mixed["populations"]["I"]["tau_s"] = 5.0
    with pytest.raises(pn.PeerConfigError, match="tau_syn_ex"):
        pn.config_to_gif_psc_exp_params(mixed, "E")
    bad = copy.deepcopy(cfg)
    bad["populations"]["E"]["tau_s"] = 20.0
    with pytest.raises(pn.PeerConfigError, match="tau_syn - tau_m"):
        pn.config_to_gif_pop_params(bad, "I")
    bad = copy.deepcopy(cfg)
    bad["run"]["mean_field"] = True
    with pytest.raises(pn.PeerConfigError, match="mean_field"):
        pn.run_gif_pop(bad)
    with pytest.raises(pn.PeerConfigError, match="unknown population type 'X'"):
        pn.config_to_gif_psc_exp_params(cfg, "X")
    bad = copy.deepcopy(cfg)
    bad["couplings"][0]["source"] = "X"
    with pytest.raises(ValueError, match="couplings\\[0\\].source"):
        pn.config_to_gif_pop_params(bad, "E")


def test_lattice_connections_carry_the_stencil():
    """On a 5 x 5 periodic lattice every node receives from 13 offsets (|o| <= 2),
    with weights summing to J C / N_beta * C_m / tau_s and delays d0 + |o| dx / v."""
    cfg = _example()
    cfg["lattice"] = {"shape": [5, 5], "dx": 0.1, "boundary": "periodic"}
    for cp in cfg["couplings"]:
        cp["kernel"] = {"shape": "gaussian", "sigma": 0.1, "r_max": 0.2}
        cp["delay"] = {"d0": 1.0, "velocity": 0.1}
    lat = pn.build_gif_pop_lattice(cfg)
    assert lat.n_connections == 4 * 25 * 13
    target = int(lat.node_ids[1, 12])  # I at the centre site (2, 2)
    conns = nest.GetConnections(target=nest.NodeCollection([target])).get(["source", "weight", "delay"])
    src = np.asarray(conns["source"])
    w = np.asarray(conns["weight"])
    d = np.asarray(conns["delay"])
    from_e = np.isin(src, lat.node_ids[0])
    assert w[from_e].sum() == pytest.approx(pn.gif_pop_weight(0.3, 160, 800, 3.0), rel=1e-12)
    assert w[~from_e].sum() == pytest.approx(pn.gif_pop_weight(-1.5, 40, 200, 6.0), rel=1e-12)
    site = np.searchsorted(lat.node_ids[0], src[from_e])
    dist = np.hypot(site // 5 - 2, site % 5 - 2) * 0.1
    assert np.array_equal(d[from_e], np.floor((1.0 + dist / 0.1) / 0.5 + 0.5) * 0.5)
    kappa = np.exp(-(dist**2) / (2 * 0.1**2))
    assert np.allclose(w[from_e] / w[from_e].sum(), kappa / kappa.sum(), rtol=1e-12)


@pytest.mark.parametrize("level", ["meso", "micro"])
def test_uncoupled_population_matches_dead_time_renewal_rate(level):
    """mu = u_reset = 0 keeps u constant, so the hazard is the constant
    lam = c exp((mu - u_th)/delta_u); u_th = -4 mV gives lam = 10 exp(1.6) = 49.5 Hz
    (lam dt / 2 > 0.01, so NEST's small-probability linearization is not used).
    The reference is the discrete-time renewal rate of meshfield.theory: n_ref =
    n_ref refractory steps (t_ref/dt rounded, halves up), then a firing probability p = 1 - exp(-lam dt)
    per step, except that the mesoscopic trapezoidal rule uses half the hazard in
    the first free step (the new cohort's previous hazard is 0); mean ISI
    n_ref + 1 + (1 - p1)/p steps.
    Tolerance: 3 batch-means standard errors over 20 blocks of 250 ms (about 41 Hz
    x 1000 neurons x 0.25 s = 1e4 spikes per block, SE about 0.2 %; the renewal
    process forgets its past after one ISI of ~25 ms, so the blocks are
    independent). The continuous-time formula 1/(t_ref + 1/lam) differs from the
    discrete one by 2 %, about 10 SE: the test checks NEST's step conventions, not
    only the order of magnitude.
    """
    cfg = _single_population(mu=0.0, u_th=-4.0)
    mean, se = pn.peer_rates(cfg, level, t_end=5500.0, seeds=[3], t_discard=500.0, block=250.0)
    rule = "trapezoid" if level == "meso" else "endpoint"
    expected = stationary_rate_discrete(load_config(cfg).population("P"), 0.5, hazard_rule=rule)
    assert se[0] < 0.005 * expected  # the check must be able to fail
    assert abs(mean[0] - expected) < 3.0 * se[0], (mean[0], se[0], expected)


@pytest.mark.parametrize("level", ["meso", "micro"])
def test_time_stamps_with_certain_firing(level):
    """With u_th = -100 mV the firing probability of every free step is 1, so the
    activity is deterministic: all N neurons fire together, then stay refractory
    for n_ref = 8 steps, a period of 9 steps at A = 1/dt = 2000 Hz. The
    microscopic neurons start free at u_reset and fire in step 0; NEST's
    population model starts with all neurons in its newest cohort (as if they had
    fired just before t = 0), so its first spikes fall in step n_ref = 8."""
    cfg = _single_population(mu=0.0, u_th=-100.0)
    runner = pn.run_gif_pop if level == "meso" else pn.run_gif_psc_exp_network
    times, A = runner(cfg, t_end=50.0)
    assert A.shape == (100, 1)
    assert np.array_equal(times, np.arange(100) * 0.5)
    first = 8 if level == "meso" else 0
    expected = np.zeros(100)
    expected[first::9] = 2000.0
    assert np.allclose(A[:, 0], expected, rtol=1e-12, atol=0.0)


def test_block_statistics():
    A = np.zeros((6000, 2))
    A[2000:4000] = [1.0, 2.0]
    A[4000:] = [3.0, 4.0]
    blocks = pn.block_means(A, dt=0.5, t_discard=1000.0, block=1000.0)
    assert blocks.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    mean, se = pn.mean_and_se(blocks)
    assert mean.tolist() == [2.0, 3.0] and se == pytest.approx([1.0, 1.0])
    with pytest.raises(pn.PeerConfigError, match="no whole block"):
        pn.block_means(A[:2500], dt=0.5, t_discard=1000.0, block=1000.0)


def test_open_lattice_connections_renormalize_at_the_edges():
    from meshfield.coupling import build_stencils
    from meshfield.lattice import Lattice

    cfg = _example()
    cfg["lattice"] = {"shape": [6], "dx": 0.1, "boundary": "open"}
    for cp in cfg["couplings"]:
        cp["kernel"] = {"shape": "gaussian", "sigma": 0.1, "r_max": 0.2}
    config = load_config(cfg)
    lattice = Lattice.from_config(config.lattice)
    target, source, kappa, _ = pn.lattice_connections(build_stencils(config)[0], lattice)
    assert np.allclose(np.bincount(target, weights=kappa), 1.0, rtol=1e-14)
    assert np.bincount(target).tolist() == [3, 4, 5, 5, 4, 3]
    assert np.all(np.abs(source - target) <= 2)


def test_spatial_micro_network_has_the_configured_structure():
    """5 x 5 periodic lattice, 20 E + 5 I per site: in-degrees exactly C, sources
    within the cutoff (minimum image), delays d0 + |o| dx / v in whole steps, no
    autapses."""
    cfg = _example()
    cfg["lattice"] = {"shape": [5, 5], "dx": 0.1, "boundary": "periodic"}
    cfg["populations"]["E"]["N"], cfg["populations"]["I"]["N"] = 20, 5
    for cp in cfg["couplings"]:
        cp["C"] = 8 if cp["source"] == "E" else 2
        cp["kernel"] = {"shape": "gaussian", "sigma": 0.1, "r_max": 0.15}
        cp["delay"] = {"d0": 1.0, "velocity": 0.1}
    result = pn.time_gif_psc_exp_lattice(cfg, t_sim=5.0)
    assert result["n_synapses"] == 25 * 25 * 10
    conns = nest.GetConnections(synapse_model="static_synapse").get(["source", "target", "delay"])
    src, tgt, delay = (np.asarray(conns[k]) for k in ("source", "target", "delay"))
    neurons = tgt <= 25 * 25  # drop the connections onto the spike recorders
    src, tgt, delay = src[neurons], tgt[neurons], delay[neurons]
    assert len(src) == 25 * 25 * 10 and np.all(src != tgt)
    assert np.all(np.bincount(tgt, minlength=626)[1:] == 10)

    def site(gid):  # E ids 1..500 (20 per site), I ids 501..625 (5 per site)
        return np.where(gid <= 500, (gid - 1) // 20, (gid - 501) // 5)

    d = np.stack(np.unravel_index(site(src), (5, 5))) - np.stack(np.unravel_index(site(tgt), (5, 5)))
    d = (d + 2) % 5 - 2
    dist_sites = np.hypot(*d)
    # r_max = 0.15 mm keeps the 9 offsets with |o| <= 1.5 sites, and all of them occur
    assert sorted(set(np.round(dist_sites**2).astype(int).tolist())) == [0, 1, 2]
    assert np.array_equal(delay, np.rint((1.0 + dist_sites * 0.1 / 0.1) / 0.5) * 0.5)
