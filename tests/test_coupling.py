"""Kernels, stencils, normalization, delays; the propagators; the vectorizable exp."""

import math

import numpy as np
import pytest

from meshfield.config import ConfigError, load_config
from meshfield.coupling import build_stencil, build_stencils, halo_width, min_delay
from meshfield.lattice import Lattice
from meshfield.numerics import VEXP_MAX_REL_ERROR, vexp
from meshfield.propagators import membrane_propagators


def cfg(kernel, shape=(21, 21), boundary="periodic", delay=None, dx=0.1):
    return load_config(None, [f"lattice.shape={list(shape)}", f"lattice.boundary='{boundary}'",
                              f"lattice.dx={dx}", "stimuli=[]",
                              f"couplings.0.kernel={kernel}",
                              f"couplings.0.delay={delay or '{d0=1.0}'}"])


def test_gaussian_stencil_is_normalized_isotropic_and_cut_off():
    st = build_stencil(cfg("{shape='gaussian', sigma=0.2, r_max=0.5}"), 0)
    assert st.weights.sum() == pytest.approx(1.0, abs=1e-15)
    r = np.sqrt((st.offsets ** 2).sum(axis=1)) * 0.1
    assert r.max() <= 0.5 + 1e-12
    # every lattice offset within the cutoff is present: count the lattice points
    n_inside = sum(1 for i in range(-5, 6) for j in range(-5, 6) if math.hypot(i, j) * 0.1 <= 0.5 + 1e-12)
    assert len(st.weights) == n_inside
    w = dict(zip(map(tuple, st.offsets), st.weights))
    assert w[(1, 0)] == w[(0, 1)] == w[(-1, 0)]
    assert w[(1, 0)] / w[(0, 0)] == pytest.approx(math.exp(-0.5 * (0.1 / 0.2) ** 2))


@pytest.mark.parametrize("kernel, profile", [
    ("{shape='exponential', length=0.15, r_max=0.4}", lambda r: math.exp(-r / 0.15)),
    ("{shape='tophat', radius=0.25}", lambda r: 1.0),
])
def test_kernel_profiles(kernel, profile):
    st = build_stencil(cfg(kernel), 0)
    r = np.sqrt((st.offsets ** 2).sum(axis=1)) * 0.1
    expected = np.array([profile(x) for x in r])
    np.testing.assert_allclose(st.weights, expected / expected.sum(), rtol=1e-12)


def test_tophat_includes_the_offsets_on_its_radius():
    """MODEL.md §3: a tophat weighs every offset with |o| dx <= radius. Radius 0.2 mm
    at dx = 0.1 mm: the 13 offsets with |o| <= 2 sites, four of them exactly on the
    circle, each of weight 1/13."""
    st = build_stencil(cfg("{shape='tophat', radius=0.2}"), 0)
    inside = sorted((i, j) for i in range(-2, 3) for j in range(-2, 3) if i * i + j * j <= 4)
    assert sorted(map(tuple, st.offsets.tolist())) == inside
    np.testing.assert_allclose(st.weights, 1.0 / 13, rtol=1e-14)


def test_dog_is_center_minus_surround_clipped_at_zero():
    st = build_stencil(cfg("{shape='dog', sigma_center=0.1, sigma_surround=0.3, surround_weight=0.5, r_max=0.6}"), 0)
    assert (st.weights > 0).all()
    r = np.sqrt((st.offsets ** 2).sum(axis=1)) * 0.1
    g = lambda s: np.exp(-0.5 * (r / s) ** 2) / (2 * np.pi * s * s)
    raw = np.clip(g(0.1) - 0.5 * g(0.3), 0, None)
    np.testing.assert_allclose(st.weights, raw / raw.sum(), rtol=1e-12)


def test_dog_in_one_dimension_uses_one_dimensional_gaussians():
    """The area-normalized Gaussians of a dog kernel are (2 pi s^2)^(-d/2) in d
    dimensions; on a 1-D lattice centre and surround are weighed with d = 1."""
    st = build_stencil(cfg("{shape='dog', sigma_center=0.1, sigma_surround=0.3, surround_weight=0.5, r_max=0.6}",
                           shape=(21,)), 0)
    o = np.arange(-6, 7)
    r = np.abs(o) * 0.1
    g = lambda s: np.exp(-0.5 * (r / s) ** 2) / np.sqrt(2 * np.pi * s * s)
    raw = np.clip(g(0.1) - 0.5 * g(0.3), 0, None)
    assert st.offsets[:, 0].tolist() == o[raw > 0].tolist()
    np.testing.assert_allclose(st.weights, raw[raw > 0] / raw.sum(), rtol=1e-12)


def test_custom_kernel_table():
    st = build_stencil(cfg("{shape='custom', weights=[[0,0,2.0],[1,0,1.0],[-1,0,1.0]]}"), 0)
    assert dict(zip(map(tuple, st.offsets), st.weights)) == {(0, 0): 0.5, (1, 0): 0.25, (-1, 0): 0.25}


def test_delays_follow_distance_and_velocity():
    st = build_stencil(cfg("{shape='gaussian', sigma=0.2, r_max=0.5}", delay="{d0=1.0, velocity=0.1}"), 0)
    r = np.sqrt((st.offsets ** 2).sum(axis=1)) * 0.1
    np.testing.assert_array_equal(st.delays, np.rint((1.0 + r / 0.1) / 0.5).astype(int))
    assert min_delay([st]) == 2


def test_open_lattice_edge_renormalizes_over_existing_offsets():
    c = cfg("{shape='gaussian', sigma=0.2, r_max=0.3}", shape=(10,), boundary="open")
    st = build_stencil(c, 0)
    lat = Lattice.from_config(c.lattice)
    norm = st.edge_normalization(lat, (0,), (10,))
    w = dict(zip((int(o[0]) for o in st.offsets), st.weights))
    assert norm[5] == pytest.approx(1.0)
    assert norm[0] == pytest.approx(sum(v for o, v in w.items() if o >= 0))
    assert norm[9] == pytest.approx(sum(v for o, v in w.items() if o <= 0))


def test_kernel_too_wide_for_periodic_lattice_is_rejected():
    with pytest.raises(ConfigError, match=r"couplings\[0\].kernel.r_max = 0.5 mm is too large"):
        build_stencil(cfg("{shape='gaussian', sigma=0.2, r_max=0.5}", shape=(8, 8)), 0)


def test_kernel_reaching_half_a_periodic_axis_is_rejected():
    """On a periodic axis of 8 sites the offsets +4 and -4 are the same site: a
    stencil may reach 3 sites, not 4."""
    with pytest.raises(ConfigError, match=r"reaches 4 sites along axis 0, but a periodic axis of 8 sites "
                                          r"allows at most 3"):
        build_stencil(cfg("{shape='gaussian', sigma=0.2, r_max=0.4}", shape=(8, 8)), 0)
    assert halo_width([build_stencil(cfg("{shape='gaussian', sigma=0.2, r_max=0.3}", shape=(8, 8)), 0)]) == 3


def test_halo_width_is_the_widest_stencil():
    c = load_config(None, ["stimuli=[]"])
    assert halo_width(build_stencils(c)) == max(int(np.abs(s.offsets).max()) for s in build_stencils(c))


# --------------------------------------------------------------------------- propagators


def test_propagators_match_numerical_integration():
    """Integrate tau_m du/dt = -u + mu + tau_m y, tau_s dy/dt = -y + I finely and compare."""
    tau_m, tau_s, dt, mu, u0, y0, I = 20.0, 3.0, 0.5, 10.0, 2.0, 0.4, 0.9
    p = membrane_propagators(tau_m, np.array([tau_s]), dt)
    u, y, h = u0, y0, 1e-5
    for _ in range(int(dt / h)):
        du = (-u + mu + tau_m * y) / tau_m
        dy = (-y + I) / tau_s
        u, y = u + h * du, y + h * dy
    assert u0 * p.P_mm + mu * (1 - p.P_mm) + y0 * p.P_sm[0] + I * p.P_im[0] == pytest.approx(u, rel=1e-5)
    assert y0 * p.P_ss[0] + I * (1 - p.P_ss[0]) == pytest.approx(y, rel=1e-5)


def test_propagators_equal_time_constants_limit():
    a = membrane_propagators(10.0, np.array([10.0]), 0.5).P_sm[0]
    b = membrane_propagators(10.0, np.array([10.0 + 1e-7]), 0.5).P_sm[0]
    assert a == pytest.approx(b, rel=1e-6)


# --------------------------------------------------------------------------- vexp


def test_vexp_matches_math_exp():
    from numba import njit

    @njit
    def apply(x):
        out = np.empty_like(x)
        for i in range(x.size):
            out[i] = vexp(x[i])
        return out

    x = np.concatenate([np.linspace(-699, 699, 200001), np.random.default_rng(1).uniform(-50, 10, 100000)])
    np.testing.assert_allclose(apply(x), np.exp(x), rtol=VEXP_MAX_REL_ERROR)
    assert apply(np.array([-1e4]))[0] == pytest.approx(math.exp(-700))


def _refused(config, index=0):
    with pytest.raises(ConfigError) as info:
        build_stencil(config, index)
    return str(info.value)


@pytest.mark.parametrize("boundary, allowed", [("periodic", "allows at most 10"),
                                               ("open", "allows at most 20")])
def test_custom_offsets_beyond_the_lattice_name_the_row(boundary, allowed):
    # 1e19 does not fit int64: refused by the lattice size, not an OverflowError
    msg = _refused(cfg("{shape='custom', weights=[[0, 0, 1], [1e19, 0, 1]]}", boundary=boundary))
    for w in ("couplings[0].kernel.weights[1] = [10000000000000000000, 0, 1.0]", "axis 0", allowed,
              "lattice shape (21, 21)", boundary):
        assert w in msg, (w, msg)
    assert "r_max" not in msg


def test_custom_offset_too_long_for_an_open_lattice_is_refused():
    """It would never connect two sites, yet set the halo width to 100000 sites."""
    msg = _refused(cfg("{shape='custom', weights=[[0, 0, 1], [100000, 0, 1]]}", shape=(16, 16),
                       boundary="open"))
    for w in ("couplings[0].kernel.weights[1] = [100000, 0, 1.0]", "reaches 100000 sites along axis 0",
              "open axis of 16 sites", "lattice shape (16, 16)", "at most 15"):
        assert w in msg, (w, msg)
    # the longest offset an open axis holds is kept; zero weights and rows beyond r_max are dropped
    st = build_stencil(cfg("{shape='custom', weights=[[0, 0, 1], [15, 0, 1], [1e300, 0, 0]]}",
                           shape=(16, 16), boundary="open"), 0)
    assert halo_width([st]) == 15
    st = build_stencil(cfg("{shape='custom', weights=[[0, 0, 1], [1e300, 0, 1]], r_max=1.0}",
                           shape=(16, 16), boundary="open"), 0)
    assert st.offsets.tolist() == [[0, 0]]


def test_custom_kernel_too_wide_for_periodic_lattice_names_the_row_not_r_max():
    msg = _refused(cfg("{shape='custom', weights=[[4, 0, 1]]}", shape=(8, 8)))
    assert msg.startswith("couplings[0].kernel.weights[0] = [4, 0, 1.0] is invalid: its offset reaches 4 "
                          "sites along axis 0, but a periodic axis of 8 sites (lattice shape (8, 8)) allows "
                          "at most 3"), msg
    assert "r_max" not in msg


def test_custom_row_with_the_wrong_number_of_offsets_names_the_row():
    msg = _refused(cfg("{shape='custom', weights=[[0, 0, 1], [1, 1]]}"))
    assert "couplings[0].kernel.weights[1] = [1, 1.0] is invalid: it has 1 offset component(s)" in msg
    assert "2-D" in msg


@pytest.mark.parametrize("kernel, dx, words", [
    ("{shape='gaussian', sigma=0.1, r_max=1e308}", 0.01,
     ["couplings[0].kernel.r_max = 1e+308 mm is too large"]),
    ("{shape='gaussian', sigma=1e307}", 0.1,
     ["couplings[0].kernel.r_max = 3e+307 mm", "3 sigma, sigma = 1e+307"]),
    ("{shape='tophat', radius=1e308}", 0.1, ["couplings[0].kernel.r_max = 1e+308 mm", "radius = 1e+308"]),
])
def test_r_max_that_overflows_in_sites_is_refused_by_name(kernel, dx, words):
    """r_max / dx overflows to inf: a ConfigError (too wide for the periodic lattice), not an OverflowError."""
    msg = _refused(cfg(kernel, dx=dx))
    for w in words + ["allows at most 10"]:
        assert w in msg, (w, msg)


def test_r_max_that_overflows_in_sites_covers_an_open_lattice():
    st = build_stencil(cfg("{shape='gaussian', sigma=1e307}", shape=(5,), boundary="open"), 0)
    assert st.offsets[:, 0].tolist() == [-4, -3, -2, -1, 0, 1, 2, 3, 4]


@pytest.mark.parametrize("velocity", ["1e-300", "1e-20"])
def test_delays_beyond_the_step_counter_name_the_velocity(velocity):
    msg = _refused(cfg("{shape='gaussian', sigma=0.1, r_max=0.3}", delay=f"{{d0=1.0, velocity={velocity}}}"))
    for w in (f"couplings[0].delay.velocity = {float(velocity)!r} mm/ms", "2**48 - 1 = 281474976710655 steps"):
        assert w in msg, (w, msg)


def test_d0_of_half_a_step_rounds_up_to_one_step():
    """docs: d0 >= dt/2 (an exact half rounds up)."""
    st = build_stencil(cfg("{shape='delta'}", delay="{d0=0.25}"), 0)  # dt = 0.5
    assert st.delays.tolist() == [1]
    assert _refused(cfg("{shape='delta'}", delay="{d0=0.2499}")) == (
        "couplings[0].delay.d0 = 0.2499 is invalid: delays are rounded to whole steps and must be >= one step "
        "(run.dt = 0.5 ms), so d0 >= dt/2 = 0.25 ms")


def test_d0_below_half_a_step_is_allowed_where_every_delay_is_a_step():
    """MODEL.md §3: every delay, rounded to whole steps, >= one step. A kernel
    without offset 0 and a finite velocity can have d0 = 0 (it was refused by
    d0 alone: d0 >= dt/2)."""
    ring = "{shape='custom', weights=[[-1, 0, 1.0], [1, 0, 1.0], [0, 2, 0.5]]}"
    st = build_stencil(cfg(ring, delay="{d0=0.0, velocity=0.1}"), 0)  # dx 0.1 mm: 1 ms per site
    assert sorted(st.delays.tolist()) == [2, 2, 4]
    # its shortest delay decides, named by its offset
    assert _refused(cfg(ring, delay="{d0=0.0, velocity=0.5}")) == (
        "couplings[0].delay.d0 = 0.0 is invalid: the delay over offset (-1, 0) (d0 + |o| dx / velocity = 0.2 ms) "
        "rounds to 0 steps of run.dt = 0.5 ms; every delay must be >= one step (raise d0, or lower "
        "delay.velocity)")
    # a kernel with offset 0 needs d0 >= dt/2 whatever the velocity
    assert "so d0 >= dt/2 = 0.25 ms" in _refused(cfg("{shape='gaussian', sigma=0.1, r_max=0.2}",
                                                     delay="{d0=0.2, velocity=0.1}"))
