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


def test_moving_spot_moves_with_its_velocity():
    _, s = make("[{kind='moving_spot', amplitude=1.0, center=[0.2, 0.4], width=0.05, "
                "velocity=[0.1, 0.0], t_start=0.0}]")
    mu = s.mu_block(0, 21) - s.mu0[None, :, None]
    peak0 = np.unravel_index(np.argmax(mu[0, 0]), (10, 8))
    peak20 = np.unravel_index(np.argmax(mu[20, 0]), (10, 8))  # 10 ms later: moved 1 mm = 10 sites
    assert peak0 == (2, 4) and peak20 == ((2 + 10) % 10, 4)


def test_grating_and_step():
    _, s = make("[{kind='grating', amplitude=2.0, wavelength=0.5, direction=0.0, frequency=0.0},"
                " {kind='step', amplitude=1.5, t_start=1.0}]", shape=(10,))
    mu = s.mu_block(0, 3) - s.mu0[None, :, None]
    x = np.arange(10) * 0.1
    np.testing.assert_allclose(mu[0, 0], 2.0 * np.cos(2 * np.pi * x / 0.5), atol=1e-12)
    np.testing.assert_allclose(mu[2, 0], 2.0 * np.cos(2 * np.pi * x / 0.5) + 1.5, atol=1e-12)


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
