"""Stimuli: closed forms at known sites and times; OU statistics."""

import math

import numpy as np
import pytest

from meshfield.config import load_config
from meshfield.lattice import Lattice
from meshfield.stimulus import Stimulus


def make(stimuli, shape=(10, 8), start=(0, 0), local=None, periodic=True):
    cfg = load_config(None, [f"lattice.shape={list(shape)}", f"stimuli={stimuli}",
                             f"lattice.boundary='{'periodic' if periodic else 'open'}'",
                             "couplings=[]"])
    return cfg, Stimulus(cfg, Lattice.from_config(cfg.lattice), start, local or shape)


def test_constant_drive_only():
    cfg, s = make("[]")
    mu = s.mu_block(0, 3)
    assert mu.shape == (3, 2, 80)
    np.testing.assert_array_equal(mu[:, 0], cfg.populations[0].mu)
    np.testing.assert_array_equal(mu[:, 1], cfg.populations[1].mu)


def test_pulse_is_gaussian_in_space_rectangular_in_time_with_minimum_image():
    cfg, s = make("[{kind='pulse', amplitude=3.0, center=[0.0, 0.0], width=0.2, t_start=1.0, "
                  "duration=1.0, types=['E']}]")
    mu = s.mu_block(0, 6) - s.mu0[None, :, None]  # steps at t = 0, 0.5, ..., 2.5 ms
    assert np.all(mu[[0, 1, 4, 5]] == 0)
    field = mu[2, 0].reshape(10, 8)
    assert field[0, 0] == pytest.approx(3.0)
    assert field[1, 0] == pytest.approx(3.0 * math.exp(-0.5 * (0.1 / 0.2) ** 2))
    assert field[9, 0] == pytest.approx(field[1, 0])  # periodic: site 9 is one site away
    assert np.all(mu[2, 1] == 0)  # only E


def test_pulse_on_an_open_lattice_does_not_wrap():
    """Only a periodic lattice takes the minimum image: on an open one the site at
    0.9 mm from a pulse centred at the origin is 0.9 mm away (exp(-10.125) of the
    peak), not 0.1 mm as on the torus."""
    _, s = make("[{kind='pulse', amplitude=3.0, center=[0.0, 0.0], width=0.2, types=['E']}]", periodic=False)
    field = (s.mu_block(0, 1) - s.mu0[None, :, None])[0, 0].reshape(10, 8)
    x = np.arange(10)[:, None] * 0.1
    y = np.arange(8)[None, :] * 0.1
    np.testing.assert_allclose(field, 3.0 * np.exp(-0.5 * (x ** 2 + y ** 2) / 0.2 ** 2), rtol=1e-12,
                               atol=1e-12)  # (mu0 + pulse - mu0 rounds to 1e-15)


def test_moving_spot_moves_with_its_velocity():
    _, s = make("[{kind='moving_spot', amplitude=1.0, center=[0.2, 0.4], width=0.05, "
                "velocity=[0.1, 0.0], t_start=0.0}]")
    mu = s.mu_block(0, 21) - s.mu0[None, :, None]
    peak0 = np.unravel_index(np.argmax(mu[0, 0]), (10, 8))
    peak20 = np.unravel_index(np.argmax(mu[20, 0]), (10, 8))  # 10 ms later: moved 1 mm = 10 sites
    assert peak0 == (2, 4) and peak20 == ((2 + 10) % 10, 4)


def test_moving_spot_starts_at_its_center_at_t_start():
    """docs/model.md §6: the centre is ``center + velocity (t - t_start)`` while the
    spot is on. With t_start = 2 ms it sits at ``center`` in step 4 (t = 2 ms) and
    10 ms later has moved 0.05 mm/ms x 10 ms = 0.5 mm; nothing before t_start.
    The closed form uses the minimum image on the 1.0 x 0.8 mm torus."""
    _, s = make("[{kind='moving_spot', amplitude=1.0, center=[0.2, 0.4], width=0.1, "
                "velocity=[0.05, 0.0], t_start=2.0}]")
    mu = s.mu_block(0, 25) - s.mu0[None, :, None]
    assert np.all(mu[:4] == 0)
    x = np.arange(10)[:, None] * 0.1
    y = np.arange(8)[None, :] * 0.1
    for step in (4, 24):
        cx = 0.2 + 0.05 * (step * 0.5 - 2.0)
        d0 = (x - cx + 0.5) % 1.0 - 0.5
        d1 = (y - 0.4 + 0.4) % 0.8 - 0.4
        want = np.exp(-0.5 * (d0 ** 2 + d1 ** 2) / 0.1 ** 2)
        np.testing.assert_allclose(mu[step, 0].reshape(10, 8), want, rtol=1e-12, atol=1e-14)


def test_grating_and_step():
    _, s = make("[{kind='grating', amplitude=2.0, wavelength=0.5, direction=0.0, frequency=0.0},"
                " {kind='step', amplitude=1.5, t_start=1.0}]", shape=(10,))
    mu = s.mu_block(0, 3) - s.mu0[None, :, None]
    x = np.arange(10) * 0.1
    np.testing.assert_allclose(mu[0, 0], 2.0 * np.cos(2 * np.pi * x / 0.5), atol=1e-12)
    np.testing.assert_allclose(mu[2, 0], 2.0 * np.cos(2 * np.pi * x / 0.5) + 1.5, atol=1e-12)


def test_grating_travels_along_its_wave_vector():
    """docs/model.md §6: ``amplitude cos(k x - 2 pi f t)``; at f = 50 Hz the crests
    move towards +x at f wavelength = 0.025 mm/ms (the phase advances 0.157 rad
    per step of 0.5 ms, far above the 1e-12 tolerance)."""
    _, s = make("[{kind='grating', amplitude=2.0, wavelength=0.5, direction=0.0, frequency=50.0}]",
                shape=(10,))
    mu = s.mu_block(0, 5) - s.mu0[None, :, None]
    x = np.arange(10) * 0.1
    for step in range(5):
        t = step * 0.5
        np.testing.assert_allclose(mu[step, 0], 2.0 * np.cos(2 * np.pi * x / 0.5 - 2 * np.pi * 50.0 * t * 1e-3),
                                   atol=1e-12)


def test_stimulus_depends_on_global_coordinates_only():
    stim = "[{kind='ou', amplitude=1.0, tau=5.0}, {kind='pulse', amplitude=2.0, center=[0.3, 0.3], width=0.2}]"
    _, whole = make(stim)
    _, block = make(stim, start=(4, 2), local=(3, 5))
    a = whole.mu_block(0, 10).reshape(10, 2, 10, 8)[:, :, 4:7, 2:7]
    b = block.mu_block(0, 10).reshape(10, 2, 3, 5)
    np.testing.assert_array_equal(a, b)


def test_ou_noise_has_its_variance_and_correlation_time():
    """80 sites x 4000 steps: the stationary variance (amplitude^2) within 5 % and the
    lag-one autocorrelation exp(-dt/tau) within 0.01 (effective samples ~ 80 x 4000 /
    (2 tau/dt) = 16000, relative SE of the variance ~ 1.1 %)."""
    _, s = make("[{kind='ou', amplitude=1.5, tau=5.0, types=['E']}]")
    x = s.mu_block(0, 4000)[:, 0] - s.mu0[0]
    assert x.var() == pytest.approx(1.5 ** 2, rel=0.05)
    r1 = np.mean(x[1:] * x[:-1]) / x.var()
    assert r1 == pytest.approx(math.exp(-0.5 / 5.0), abs=0.01)
    # sites are independent
    c = np.corrcoef(x[:, 0], x[:, 1])[0, 1]
    assert abs(c) < 5 / math.sqrt(4000 / 20)


def on_steps(dt, t_start, duration, steps=200):
    cfg = load_config(None, ["lattice.shape=[4]", "couplings=[]", f"run.dt={dt}", f"record.interval={dt}",
                             f"stimuli=[{{kind='step', amplitude=1.0, t_start={t_start}, duration={duration}}}]"])
    s = Stimulus(cfg, Lattice.from_config(cfg.lattice), (0,), (4,))
    mu = s.mu_block(0, steps)[:, 0, 0] - s.mu0[0]
    return np.flatnonzero(mu).tolist()


@pytest.mark.parametrize("dt, t_start, duration, expected", [
    (0.1, 16.1, 0.1, [161]),          # the float test t < t_start + duration also took step 162
    (0.1, 8.3, 0.3, [83, 84, 85]),    # ... 4 steps
    (0.3, 0.9, 0.3, [3]),             # ... no step: 3 * 0.3 = 0.8999999999999999 < 0.9
    (0.5, 7.3, 1.0, [15, 16]),        # an onset between grid points acts from the next step start
])
def test_stimulus_window_is_decided_on_whole_steps(dt, t_start, duration, expected):
    assert on_steps(dt, t_start, duration) == expected


@pytest.mark.parametrize("override, message", [
    ("stimuli=[{kind='step', amplitude=1.0, t_start=10.1, duration=0.2}]",
     r"stimuli\[0\]: the window t_start = 10.1 ms .. t_start \+ duration = 10.3 ms holds no step start"),
    ("stimuli=[{kind='step', amplitude=1.0, t_start=-50.0, duration=10.0}]", "holds no step start"),
    ("stimuli=[{kind='pulse', amplitude=1.0, center=[0.5, 0.5], width=0.1, velocity=[0.1, 0.0]}]",
     r"stimuli\[0\].velocity is not used by a 'pulse' stimulus \(it belongs to kind = 'moving_spot'\)"),
    ("stimuli=[{kind='step', amplitude=1.0, width=0.1}]", "stimuli\\[0\\].width is not used by a 'step'"),
    ("stimuli=[{kind='ou', amplitude=-2.0, tau=5.0}]", "standard deviation of the noise"),
    ("stimuli=[{kind='ou', amplitude=1.0}]", "an 'ou' stimulus needs tau"),
    ("stimuli=[{kind='grating', amplitude=1.0, wavelength=0.15}]",
     r"stimuli\[0\].wavelength = 0.15 is invalid: the grating's period along a lattice axis must be at least 2 dx"),
    ("stimuli=[{kind='grating', amplitude=1.0, wavelength=0.19, direction=0.1}]", "aliasing"),
])
def test_stimulus_configuration_errors(override, message):
    from meshfield.config import ConfigError

    with pytest.raises(ConfigError, match=message):
        load_config(None, ["lattice.shape=[8, 8]", "lattice.dx=0.1", "couplings=[]", override])


def test_diagonal_grating_finer_than_two_spacings_is_allowed():
    """Along the diagonal, a period of 0.15 mm projects to 0.21 mm on each axis: representable."""
    load_config(None, ["lattice.shape=[8, 8]", "lattice.dx=0.1", "couplings=[]",
                       "stimuli=[{kind='grating', amplitude=1.0, wavelength=0.15, direction=0.7853981634}]"])


def test_grating_at_twice_the_spacing_is_allowed():
    cfg = load_config(None, ["lattice.shape=[8, 8]", "lattice.dx=0.1", "couplings=[]",
                             "stimuli=[{kind='grating', amplitude=1.0, wavelength=0.2}]"])
    s = Stimulus(cfg, Lattice.from_config(cfg.lattice), (0, 0), (8, 8))
    row = (s.mu_block(0, 1)[0, 0] - s.mu0[0]).reshape(8, 8)[:, 0]
    np.testing.assert_allclose(row, [1.0, -1.0] * 4, atol=1e-12)


def test_drives_beyond_floating_point_are_refused_by_name():
    """A pulse whose width squared underflows gave 0/0 = NaN at its centre,
    which the meso kernel reported as a binomial error from inside numba (the
    micro level ran on with NaN); overflowing values gave numpy warnings and NaN
    or inf drives. A grating faster than the steps can represent is refused."""
    import warnings

    from meshfield.config import ConfigError
    from meshfield.stimulus import StimulusError

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg, s = make("[{kind='pulse', amplitude=2.0, center=[0.0, 0.0], width=1e-200}]")
        drive = (s.mu_block(0, 1) - s.mu0[None, :, None])[0, 0].reshape(10, 8)
    assert drive[0, 0] == 2.0 and np.count_nonzero(drive) == 1   # a point pulse at its centre
    for stimuli, said in [
        ("[{kind='moving_spot', amplitude=1.0, center=[0.0, 0.0], width=0.1, velocity=[1e308, 0.0]}]",
         r"stimuli\[0\] \(moving_spot\) gives a drive that is not a finite number at t = 2 ms"),
        ("[{kind='step', amplitude=1e308}, {kind='step', amplitude=1e308}]",
         r"the stimuli add up to a drive beyond floating point .* between t = 0 and 2.5 ms"),
    ]:
        _, s = make(stimuli)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(StimulusError, match=said):
                s.mu_block(0, 5)
        assert issubclass(StimulusError, ConfigError)   # bad input: status 2 from the command line
    with pytest.raises(ConfigError, match=r"stimuli\[0\].frequency = 1001.0 is invalid: at most 1000 Hz"):
        make("[{kind='grating', amplitude=1.0, wavelength=1.0, frequency=1001.0}]")
    make("[{kind='grating', amplitude=1.0, wavelength=1.0, frequency=-1000.0}]")   # the Nyquist rate itself
