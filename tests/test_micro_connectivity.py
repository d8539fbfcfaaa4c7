"""Microscopic connectivity (meshfield.micro.connectivity) and spike delivery (meshfield.micro.delivery)."""

import math

import numpy as np
import pytest
from scipy import stats

from meshfield.config import Config
from meshfield.coupling import build_stencils
from meshfield.micro.connectivity import (
    BlockGeometry,
    build_alias,
    build_connectivity,
    draw_incoming_reference,
    key_dtype,
    sample_alias,
)
from meshfield.micro import connectivity
from meshfield.micro.delivery import deliver, deliver_reference, spike_list
from meshfield.micro.neurons import NeuronLayout
from meshfield.parallel import block_range

#: significance of the chi-square tests: each fails with probability 0.1 % under the
#: null hypothesis for a random seed; seeds are fixed, so the tests are deterministic
ALPHA = 1e-3


def make_config(shape, boundary="periodic", N=(30, 10), C=((12, 5), (9, 4)), sigma=0.15, r_max=0.3,
                velocity=0.25, seed=4):
    types = ("E", "I")
    pops = {t: dict(N=n, mu=10.0) for t, n in zip(types, N)}
    couplings = []
    for a, ta in enumerate(types):
        for b, tb in enumerate(types):
            delay = {"d0": 0.5 + 0.5 * b} | ({"velocity": velocity} if velocity else {})
            couplings.append(dict(target=ta, source=tb, J=0.1 if b == 0 else -0.4, C=C[a][b],
                                  kernel=dict(shape="gaussian", sigma=sigma, r_max=r_max), delay=delay))
    return Config.from_dict(dict(run=dict(level="micro", t_end=10.0, dt=0.5, seed=seed),
                                 lattice=dict(shape=list(shape), dx=0.1, boundary=boundary),
                                 populations=pops, couplings=couplings))


def geometry_of(config, start=None, local_shape=None):
    shape = tuple(config.lattice.shape)
    stencils = build_stencils(config)
    h = max(s.radius_sites for s in stencils)
    return BlockGeometry(shape, config.lattice.boundary == "periodic", start or (0,) * len(shape),
                         local_shape or shape, h)


def synapses(config, geometry):
    """Build the rank's network and return every synapse in global terms (dict of arrays)."""
    stencils = build_stencils(config)
    N = [p.N for p in config.populations]
    layout = NeuronLayout.build(geometry.global_site(), N)
    conn = build_connectivity(config.run.seed, stencils, layout, geometry)
    n_types = len(N)
    key, target, b, delay = conn.incoming(n_types)
    cell, within = np.divmod(key, layout.n_per_site)
    src_type = np.searchsorted(layout.type_offset, within, side="right") - 1
    t_site, t_within = np.divmod(target, layout.n_per_site)
    t_type = np.searchsorted(layout.type_offset, t_within, side="right") - 1
    src_site = geometry.cell_global_site()[cell]
    tgt_site = layout.global_site[t_site]
    shape = np.array(geometry.global_shape)
    offset = (np.stack(np.unravel_index(src_site, geometry.global_shape), axis=1)
              - np.stack(np.unravel_index(tgt_site, geometry.global_shape), axis=1))
    if geometry.periodic:  # the stencil reaches each site by one offset only (2 r + 1 <= n)
        offset = (offset + shape // 2) % shape - shape // 2
    return dict(
        layout=layout, conn=conn, stencils=stencils, b=b, src_type=src_type,
        src_site=src_site, src_index=within - layout.type_offset[src_type],
        tgt_site=tgt_site, tgt_type=t_type, tgt_index=t_within - layout.type_offset[t_type],
        target=target, offset=offset, delay=delay)


def as_rows(syn):
    """Synapses as sorted rows (target site, type, index, source type, site, index, delay)."""
    rows = np.stack([syn["tgt_site"], syn["tgt_type"], syn["tgt_index"], syn["src_type"], syn["src_site"],
                     syn["src_index"], syn["delay"]], axis=1)
    return rows[np.lexsort(rows.T[::-1])]


# ----------------------------------------------------------------------------- kernel vs reference


@pytest.mark.parametrize("shape,boundary", [((5, 4), "open"), ((7,), "periodic"), ((7, 7), "periodic")])
def test_kernel_matches_reference(shape, boundary):
    config = make_config(shape, boundary, N=(4, 3), C=((5, 3), (4, 2)))
    geometry = geometry_of(config)
    syn = synapses(config, geometry)
    ref = draw_incoming_reference(config.run.seed, syn["stencils"], syn["layout"], geometry)
    layout = syn["layout"]
    ref_rows = []
    for n, b, src_site, j, d in ref:
        s, within = divmod(n, layout.n_per_site)
        a = int(np.searchsorted(layout.type_offset, within, side="right") - 1)
        ref_rows.append((layout.global_site[s], a, within - layout.type_offset[a], b, src_site, j, d))
    ref_rows = np.array(ref_rows)
    ref_rows = ref_rows[np.lexsort(ref_rows.T[::-1])]
    np.testing.assert_array_equal(as_rows(syn), ref_rows)


def test_key_dtype_is_the_smallest_that_holds_the_keys():
    assert key_dtype(2**31) is np.int32        # keys 0 .. 2**31 - 1
    assert key_dtype(2**31 + 1) is np.int64


def test_table_does_not_depend_on_the_key_type(monkeypatch):
    """The build draws with 4-byte keys when they fit; 8-byte keys (ranks with more
    than 2**31 keys) must give the same table."""
    config = make_config((7, 7), "open", N=(4, 3), C=((5, 3), (4, 2)))
    geometry = geometry_of(config)
    stencils = build_stencils(config)
    layout = NeuronLayout.build(geometry.global_site(), [p.N for p in config.populations])
    narrow = build_connectivity(config.run.seed, stencils, layout, geometry)
    monkeypatch.setattr(connectivity, "key_dtype", lambda n_keys: np.int64)
    wide = build_connectivity(config.run.seed, stencils, layout, geometry)
    for name in ("out_ptr", "out_col", "out_delay"):
        np.testing.assert_array_equal(getattr(narrow, name), getattr(wide, name))


def test_alias_table_reproduces_weights():
    rng = np.random.default_rng(3)
    for n in (1, 2, 7, 29, 200):
        w = rng.uniform(0, 1, n) ** 3
        w[rng.integers(0, n)] = 0.0 if n > 1 else w[0]
        prob = np.empty(n)
        alias = np.empty(n, dtype=np.int64)
        build_alias(w, n, prob, alias)
        implied = prob.copy()
        np.add.at(implied, alias, 1.0 - prob)
        np.testing.assert_allclose(implied / n, w / w.sum(), atol=1e-14)
        # sampling: the column from int(u n), then the threshold
        assert sample_alias(prob, alias, n, 0.5 / n) == (0 if prob[0] > 0.5 else alias[0])


# ----------------------------------------------------------------------------- the drawn network


@pytest.fixture(scope="module")
def periodic_network():
    config = make_config((7, 7), "periodic", N=(50, 20), C=((40, 10), (30, 8)))
    return config, synapses(config, geometry_of(config))


def test_in_degree_is_exactly_C(periodic_network):
    config, syn = periodic_network
    layout = syn["layout"]
    n_types = 2
    counts = np.bincount(syn["target"] * n_types + syn["b"], minlength=layout.n_local * n_types)
    counts = counts.reshape(layout.n_sites, layout.n_per_site, n_types)
    C = np.array([[40, 10], [30, 8]])
    assert np.all(counts[:, :50] == C[0]) and np.all(counts[:, 50:] == C[1])
    np.testing.assert_array_equal(syn["src_type"], syn["b"])


def test_no_autapses(periodic_network):
    _, syn = periodic_network
    same = ((syn["src_site"] == syn["tgt_site"]) & (syn["src_type"] == syn["tgt_type"])
            & (syn["src_index"] == syn["tgt_index"]))
    assert not same.any()
    # but same-site same-type inputs exist (they are drawn among the other neurons)
    assert ((syn["src_site"] == syn["tgt_site"]) & (syn["src_type"] == syn["tgt_type"])).sum() > 100


def test_delays_match_the_delay_rule(periodic_network):
    """Delta(o) = d0 + |o| dx / v, rounded to steps: d0 = 0.5 ms (E sources), 1 ms (I),
    v = 0.25 mm/ms, dx = 0.1 mm, dt = 0.5 ms."""
    _, syn = periodic_network
    dist = np.sqrt((syn["offset"] ** 2).sum(axis=1)) * 0.1
    d0 = np.where(syn["src_type"] == 0, 0.5, 1.0)
    np.testing.assert_array_equal(syn["delay"], np.rint((d0 + dist / 0.25) / 0.5))
    assert len(np.unique(syn["delay"])) >= 3


def test_source_sites_follow_the_kernel(periodic_network):
    """Chi-square of the pooled source offsets of each coupling against kappa(o)."""
    config, syn = periodic_network
    for st in syn["stencils"]:
        sel = (syn["tgt_type"] == st.target) & (syn["src_type"] == st.source)
        observed = np.array([np.all(syn["offset"][sel] == o, axis=1).sum() for o in st.offsets])
        assert observed.sum() == sel.sum()  # every offset lies in the stencil
        expected = st.weights * sel.sum()
        assert expected.min() >= 5  # chi-square approximation valid
        p = stats.chisquare(observed, expected).pvalue
        assert p > ALPHA, (st.target, st.source, p)


def test_source_neurons_are_uniform(periodic_network):
    """Chi-square of the source neuron index: uniform over the N_b neurons of the
    source site, over the other N_b - 1 for same-site same-type inputs."""
    _, syn = periodic_network
    for b, N_b in ((0, 50), (1, 20)):
        other = (syn["src_type"] == b) & ~((syn["src_site"] == syn["tgt_site"]) & (syn["tgt_type"] == b))
        observed = np.bincount(syn["src_index"][other], minlength=N_b)
        p = stats.chisquare(observed).pvalue
        assert p > ALPHA, (b, p)
    same = (syn["src_type"] == 0) & (syn["tgt_type"] == 0) & (syn["src_site"] == syn["tgt_site"])
    # relative index among the other neurons: j - (j > i), uniform on 0 .. N - 2
    rel = syn["src_index"][same] - (syn["src_index"][same] > syn["tgt_index"][same])
    assert stats.chisquare(np.bincount(rel, minlength=49)).pvalue > ALPHA


def test_open_lattice_renormalizes_at_the_edges():
    """Open 1-D lattice: a target at the left edge draws its offsets from kappa restricted
    to offsets that stay inside, renormalized; in-degree stays C."""
    config = make_config((9,), "open", N=(400, 10), C=((50, 5), (5, 5)), sigma=0.2, r_max=0.3)
    syn = synapses(config, geometry_of(config))
    st = syn["stencils"][0]  # E <- E
    assert np.all((syn["src_site"] >= 0) & (syn["src_site"] < 9))
    for site in (0, 1, 4):
        sel = (syn["tgt_site"] == site) & (syn["tgt_type"] == 0) & (syn["src_type"] == 0)
        assert sel.sum() == 400 * 50
        inside = (st.offsets[:, 0] + site >= 0) & (st.offsets[:, 0] + site < 9)
        kappa = st.weights[inside] / st.weights[inside].sum()
        observed = np.array([(syn["offset"][sel, 0] == o).sum() for o in st.offsets[inside, 0]])
        assert observed.sum() == sel.sum()
        p = stats.chisquare(observed, kappa * sel.sum()).pvalue
        assert p > ALPHA, (site, p)


@pytest.mark.parametrize("shape,boundary,dims", [((8, 7), "periodic", (2, 2)), ((9,), "open", (3,)),
                                                 ((7, 6), "open", (2, 3))])
def test_network_does_not_depend_on_the_decomposition(shape, boundary, dims):
    """The union of the blocks' synapses equals the synapses of one block holding the
    whole lattice (blocks built without MPI from their geometry)."""
    config = make_config(shape, boundary, N=(6, 3), C=((5, 2), (4, 3)), sigma=0.1, r_max=0.2)
    whole = as_rows(synapses(config, geometry_of(config)))
    parts = []
    for index in np.ndindex(*dims):
        ranges = [block_range(n, p, i) for n, p, i in zip(shape, dims, index)]
        geometry = geometry_of(config, tuple(r[0] for r in ranges), tuple(r[1] - r[0] for r in ranges))
        parts.append(as_rows(synapses(config, geometry)))
    parts = np.concatenate(parts)
    np.testing.assert_array_equal(parts[np.lexsort(parts.T[::-1])], whole)


def test_self_coupling_without_partner_is_rejected():
    config = Config.from_dict(dict(
        run=dict(level="micro", t_end=10.0, dt=0.5), lattice=dict(shape=[3]),
        populations=dict(E=dict(N=1, mu=10.0)),
        couplings=[dict(target="E", source="E", J=0.1, C=3)]))
    geometry = geometry_of(config)
    layout = NeuronLayout.build(geometry.global_site(), [1])
    with pytest.raises(ValueError, match="N >= 2"):
        build_connectivity(1, build_stencils(config), layout, geometry)


def test_build_rate_is_reported(periodic_network):
    _, syn = periodic_network
    conn = syn["conn"]
    assert conn.n_synapses == 49 * (50 * 50 + 20 * 38)
    assert conn.build_seconds > 0
    # memory: int64 pointers per key, int32 target column and a one-byte delay per synapse
    assert conn.nbytes == conn.out_ptr.nbytes + 5 * conn.n_synapses


# ----------------------------------------------------------------------------- delivery


def test_deliver_matches_reference():
    config = make_config((5, 5), "periodic", N=(8, 4), C=((6, 3), (5, 2)), r_max=0.2)
    syn = synapses(config, geometry_of(config))
    conn = syn["conn"]
    rng = np.random.default_rng(2)
    n_keys = conn.out_ptr.size - 1
    keys = rng.integers(0, n_keys, 300)
    steps = rng.integers(100, 104, 300)
    n_slots = int(syn["delay"].max()) + 1
    ring = np.zeros((n_slots, syn["layout"].n_local * 2), dtype=np.int32)
    ring_ref = ring.copy()
    deliver(keys, steps, conn.out_ptr, conn.out_col, conn.out_delay, ring)
    deliver_reference(keys, steps, conn.out_ptr, conn.out_col, conn.out_delay, ring_ref)
    np.testing.assert_array_equal(ring, ring_ref)
    assert ring.sum() == np.diff(conn.out_ptr)[keys].sum()


def test_spike_list_matches_nonzero():
    rng = np.random.default_rng(4)
    type_offset = np.array([0, 5, 8])
    n_sites, nsteps = 6, 4
    spiked = (rng.uniform(size=(nsteps, n_sites * 8)) < 0.3).astype(np.uint8)
    per_group = spiked.reshape(nsteps, n_sites, 8)
    counts = np.stack([per_group[:, :, :5].sum(axis=2), per_group[:, :, 5:].sum(axis=2)], axis=1).astype(float)
    steps, neurons = spike_list(50, spiked, counts, type_offset)
    k, n = np.nonzero(spiked)
    np.testing.assert_array_equal(steps, 50 + k)
    np.testing.assert_array_equal(neurons, n)


@pytest.mark.parametrize("geometry", [
    ((6,), True, (2,), (3,), 2), ((5,), True, (0,), (5,), 2), ((13, 3), True, (0, 0), (13, 3), 3),
    ((9, 7), True, (3, 0), (3, 7), 2), ((9, 7), False, (3, 2), (3, 3), 2), ((4, 5, 3), True, (0, 2, 0), (4, 2, 3), 1)])
def test_source_cells_match_a_lookup_over_the_whole_lattice(geometry):
    """source_cells looks the mirrored sites up among the block's own (it used to
    allocate a table over the whole lattice on every rank)."""
    g = BlockGeometry(*geometry)
    owner = {int(site): int(cell) for site, cell in zip(g.global_site(), g.interior_cells())}
    expected = [owner.get(int(site), i) if site >= 0 else i for i, site in enumerate(g.cell_global_site())]
    np.testing.assert_array_equal(g.source_cells(), expected)


def test_geometry_cells():
    g = BlockGeometry((6,), True, (2,), (3,), 2)
    np.testing.assert_array_equal(g.cell_global_site(), [0, 1, 2, 3, 4, 5, 0])
    np.testing.assert_array_equal(g.interior_cells(), [2, 3, 4])
    np.testing.assert_array_equal(g.source_cells(), np.arange(7))
    g = BlockGeometry((5,), True, (0,), (5,), 2)  # one rank: the halo mirrors its own sites
    np.testing.assert_array_equal(g.cell_global_site(), [3, 4, 0, 1, 2, 3, 4, 0, 1])
    np.testing.assert_array_equal(g.source_cells(), [5, 6, 2, 3, 4, 5, 6, 2, 3])
    g = BlockGeometry((4, 5), False, (0, 3), (2, 2), 1)
    cells = g.cell_global_site().reshape(4, 4)
    assert cells[0, 0] == -1 and cells[1, 1] == 3 and cells[2, 3] == -1 and cells[3, 0] == 12
    assert math.prod(g.with_halo_shape) == 16
