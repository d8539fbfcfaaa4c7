"""External drive ``mu(x, t)`` (MODEL.md §5): a constant per type plus space-time stimuli.

Every stimulus is a function of global site coordinates and time (and, for the
Ornstein-Uhlenbeck noise, of counter-based random numbers keyed by the global site),
so the drive never depends on the decomposition. The drive of step ``t`` is
evaluated at the start of the step, ``t * dt``, and held constant over it.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .config import Config, ConfigError
from .lattice import Lattice
from .random import STREAM_INIT, STREAM_STIMULUS, normal

__all__ = ["Stimulus"]


@njit(cache=True)
def _ou_advance(state, decay, kick, seed, stream, ident, step, global_site):
    """One exact Ornstein-Uhlenbeck step per site: ``x <- x decay + kick xi``."""
    for l in range(state.shape[0]):
        state[l] = state[l] * decay + kick * normal(seed, stream, global_site[l], ident, step, 0)


class StimulusError(ConfigError):
    """A stimulus whose drive is not a finite number (values that pass every
    check but overflow floating point, such as an amplitude of 1e308)."""


class Stimulus:
    """The drive of every type at the local sites of one block.

    Parameters
    ----------
    config : Config
    lattice : Lattice
    local_start, local_shape : tuple of int
        The block (global index of its first site, sites per axis).
    """

    def __init__(self, config: Config, lattice: Lattice, local_start, local_shape):
        self.config = config
        self.dt = config.run.dt
        self.types = config.types
        self.mu0 = np.array([p.mu for p in config.populations])
        grids = np.meshgrid(*[np.arange(s, s + n) for s, n in zip(local_start, local_shape)], indexing="ij")
        self.index = [g.ravel() for g in grids]
        self.coords = [g.ravel() * lattice.dx for g in grids]  # mm
        self.extent = [n * lattice.dx for n in lattice.shape]
        self.periodic = lattice.periodic
        self.global_site = np.ascontiguousarray(lattice.flat_index(tuple(self.index)), dtype=np.int64)
        self.n_local = len(self.global_site)
        self.local_shape = tuple(int(n) for n in local_shape)
        self.stimuli = config.stimuli
        self.masks = [np.array([t in s.types for t in self.types]) for s in self.stimuli]
        self.windows = [s.step_window(self.dt) for s in self.stimuli]
        # Ornstein-Uhlenbeck states start from their stationary distribution
        self.ou_state = {}
        for i, s in enumerate(self.stimuli):
            if s.kind == "ou":
                x = np.zeros(self.n_local)
                _ou_advance(x, 0.0, s.amplitude, config.run.seed, STREAM_INIT, i, 0, self.global_site)
                self.ou_state[i] = x

    def state_dict(self, copy: bool = True) -> dict:
        """The Ornstein-Uhlenbeck states (mV), ``stimulus/ou_<i>`` of shape
        ``local_shape`` for stimulus ``i``, to be merged into a model's state
        (checkpoints; the other stimuli are pure functions of time); views of
        the stimulus's own arrays with ``copy=False``."""
        return {f"stimulus/ou_{i}": x.reshape(self.local_shape).copy() if copy else x.reshape(self.local_shape)
                for i, x in self.ou_state.items()}

    def load_state_dict(self, d: dict) -> None:
        """Restore the states of :meth:`state_dict` from a model's state (arrays of
        this block; other keys are ignored)."""
        for i, x in self.ou_state.items():
            x[:] = np.asarray(d[f"stimulus/ou_{i}"], dtype=np.float64).reshape(self.n_local)

    def _displacement(self, center) -> list[np.ndarray]:
        out = []
        for axis, (x, c) in enumerate(zip(self.coords, center)):
            d = x - c
            if self.periodic:
                L = self.extent[axis]
                d = (d + 0.5 * L) % L - 0.5 * L
            out.append(d)
        return out

    def _gaussian(self, center, width) -> np.ndarray:
        d = self._displacement(center)
        # (d / width)^2, not d^2 / width^2: a width whose square underflows gives 0/0
        return np.exp(-0.5 * sum((di / width) ** 2 for di in d))

    def _profile(self, i: int, s, step: int) -> np.ndarray | float:
        t = step * self.dt
        first, end = self.windows[i]
        if not first <= step < end:
            return 0.0
        if s.kind == "ou":
            return self.ou_state[i]
        if s.kind == "step":
            return s.amplitude
        if s.kind == "pulse":
            return s.amplitude * self._gaussian(s.center, s.width)
        if s.kind == "moving_spot":
            center = [c + v * (t - s.t_start) for c, v in zip(s.center, s.velocity)]
            return s.amplitude * self._gaussian(center, s.width)
        if s.kind == "grating":
            k = 2 * math.pi / s.wavelength
            direction = (math.cos(s.direction), math.sin(s.direction))
            phase = sum(k * direction[a] * x for a, x in enumerate(self.coords))
            return s.amplitude * np.cos(phase - 2 * math.pi * s.frequency * t * 1e-3)
        raise ValueError(s.kind)  # config validation prevents this

    def mu_block(self, step0: int, nsteps: int) -> np.ndarray:
        """Total drive (mV), shape ``(nsteps, n_types, n_local)``, for steps
        ``step0 .. step0 + nsteps - 1``. Must be called for consecutive blocks
        (the noise stimuli carry state)."""
        mu = np.empty((nsteps, len(self.types), self.n_local))
        mu[:] = self.mu0[None, :, None]
        # overflow is checked below, by name, instead of numpy warnings
        with np.errstate(over="ignore", invalid="ignore"):
            for k in range(nsteps):
                step = step0 + k
                for i, s in enumerate(self.stimuli):
                    if s.kind == "ou" and step > 0:
                        decay = math.exp(-self.dt / s.tau)
                        _ou_advance(self.ou_state[i], decay, s.amplitude * math.sqrt(1 - decay * decay),
                                    self.config.run.seed, STREAM_STIMULUS, i, step, self.global_site)
                    prof = self._profile(i, s, step)
                    if not np.all(np.isfinite(prof)):
                        raise StimulusError(
                            f"stimuli[{i}] ({s.kind}) gives a drive that is not a finite number at t = "
                            f"{step * self.dt:g} ms (values beyond floating point: amplitude, width, velocity "
                            f"or frequency?)")
                    mu[k, self.masks[i]] += prof
        if not np.all(np.isfinite(mu[:nsteps])):
            raise StimulusError(
                f"the stimuli add up to a drive beyond floating point (mu + stimuli) between t = "
                f"{step0 * self.dt:g} and {(step0 + nsteps) * self.dt:g} ms")
        return mu
