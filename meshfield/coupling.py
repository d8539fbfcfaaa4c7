"""Coupling stencils (MODEL.md §3): kernel weights and delays per lattice offset.

A :class:`Stencil` holds, for one ordered pair (target type, source type), every
lattice offset ``o`` within the kernel's cutoff radius, its normalized weight
``kappa(o)`` (summing to 1 over the stencil) and its delay in whole steps. Both
levels use it: the mesoscopic model as the expected input, the microscopic model as
the probability of drawing a source at ``x + o``.

On an open lattice a target site near the edge renormalizes over the offsets that
exist (:meth:`Stencil.edge_normalization`), so every neuron keeps in-degree ``C``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .config import COUNTER_MAX, Config, ConfigError, KernelConfig, fits_step_counter, to_steps
from .lattice import Lattice

__all__ = ["Stencil", "kernel_profile", "build_stencil", "build_stencils", "halo_width",
           "min_delay", "max_delay"]


def kernel_profile(kernel: KernelConfig, offsets: np.ndarray, dx: float) -> np.ndarray:
    """Unnormalized kernel values at lattice offsets (shape ``(n_off, ndim)``).

    ``dog`` is ``g_center - surround_weight * g_surround`` with area-normalized
    Gaussians, clipped at zero: a connection kernel is a probability distribution,
    and signed lateral structure comes from pairing an excitatory with an
    inhibitory coupling (MODEL.md §3).
    """
    ndim = offsets.shape[1]
    r = np.sqrt((offsets.astype(float) ** 2).sum(axis=1)) * dx
    shape = kernel.shape
    if shape == "delta":
        return (r == 0).astype(float)
    if shape == "gaussian":
        return np.exp(-0.5 * (r / kernel.sigma) ** 2)
    if shape == "exponential":
        return np.exp(-r / kernel.length)
    if shape == "tophat":
        return (r <= kernel.radius * (1 + 1e-12)).astype(float)
    if shape == "dog":
        def g(s):
            return np.exp(-0.5 * (r / s) ** 2) / (2 * np.pi * s * s) ** (ndim / 2)
        return np.clip(g(kernel.sigma_center) - kernel.surround_weight * g(kernel.sigma_surround), 0, None)
    if shape == "custom":
        table = {tuple(int(v) for v in row[:-1]): row[-1] for row in kernel.weights}
        return np.array([table.get(tuple(int(v) for v in o), 0.0) for o in offsets])
    raise ValueError(f"unknown kernel shape {shape!r}")  # config validation prevents this


@dataclass(frozen=True)
class Stencil:
    """Weights and delays of one coupling (target type <- source type).

    Attributes
    ----------
    target, source : int
        Type indices (order of ``[populations.*]`` tables).
    J : float
        Synaptic weight (mV).
    C : int
        In-degree (type-``source`` inputs per type-``target`` neuron).
    offsets : ndarray of int64, shape (n_off, ndim)
        Lattice offsets with nonzero weight, in a fixed order.
    weights : ndarray of float64, shape (n_off,)
        ``kappa(o)``, summing to 1.
    delays : ndarray of int64, shape (n_off,)
        Delay of each offset in steps (>= 1).
    key : str
        The coupling in error messages, e.g. ``couplings[0]`` ("" if not built
        from a configuration).
    type_names : tuple of str
        The configuration's type names, indexed by ``target`` and ``source``
        (empty if not built from a configuration).
    """

    target: int
    source: int
    J: float
    C: int
    offsets: np.ndarray
    weights: np.ndarray
    delays: np.ndarray
    key: str = ""
    type_names: tuple = ()

    @property
    def radius_sites(self) -> int:
        """Largest offset component (sites): the halo width this stencil needs."""
        return int(np.abs(self.offsets).max()) if len(self.offsets) else 0

    def edge_normalization(self, lattice: Lattice, local_start, local_shape) -> np.ndarray:
        """``sum_o kappa(o)`` over the offsets that exist from each local site.

        1 everywhere on a periodic lattice; below 1 near the edges of an open one.
        Shape ``local_shape``.
        """
        if lattice.periodic:
            return np.ones(local_shape)
        grids = np.meshgrid(*[np.arange(s, s + n) for s, n in zip(local_start, local_shape)],
                            indexing="ij")
        norm = np.zeros(local_shape)
        for o, w in zip(self.offsets, self.weights):
            inside = np.ones(local_shape, dtype=bool)
            for axis, g in enumerate(grids):
                inside &= (g + o[axis] >= 0) & (g + o[axis] < lattice.shape[axis])
            norm += w * inside
        return norm


def build_stencil(config: Config, index: int) -> Stencil:
    """The stencil of ``config.couplings[index]``; raises ConfigError for a kernel
    that does not fit the lattice or a delay below one step."""
    c = config.couplings[index]
    key = f"couplings[{index}]"
    lattice = Lattice.from_config(config.lattice)
    dt = config.run.dt
    k = c.kernel
    if k.shape == "delta":
        offsets = np.zeros((1, lattice.ndim), dtype=np.int64)
    elif k.shape == "custom":
        offsets = _custom_offsets(k, lattice, key)
    else:
        offsets = lattice.offsets_within(k.r_max)
    weights = kernel_profile(k, offsets, lattice.dx)
    keep = weights > 0
    offsets, weights = offsets[keep], weights[keep]
    if weights.sum() <= 0:
        raise ConfigError(f"{key}.kernel has no positive weight within r_max = {k.r_max:.12g} mm "
                          f"on a lattice with dx = {lattice.dx} mm; increase r_max")
    if lattice.periodic:
        radius = np.abs(offsets).max(axis=0)
        for axis, (r, n) in enumerate(zip(radius, lattice.shape)):
            if 2 * r + 1 > n:
                raise ConfigError(
                    f"{key}.kernel.r_max = {k.r_max:.12g} mm{_r_max_origin(k)} is too large for the "
                    f"lattice: it reaches {r} sites along axis {axis}, but a periodic axis of {n} sites "
                    f"allows at most {(n - 1) // 2} (r_max < {((n - 1) // 2 + 1) * lattice.dx:g} mm) "
                    "so that no offset wraps onto another")
    weights = weights / weights.sum()
    if not lattice.periodic:
        stencil = Stencil(0, 0, c.J, c.C, offsets, weights, np.ones(len(weights), dtype=np.int64))
        norm = stencil.edge_normalization(lattice, (0,) * lattice.ndim, lattice.shape)
        if norm.min() <= 0:
            where = tuple(int(i) for i in np.unravel_index(np.argmin(norm), lattice.shape))
            raise ConfigError(f"{key}.kernel reaches no site of the open lattice from site {where}: "
                              "every site needs at least one in-lattice offset (include offset 0 "
                              "or use a wider kernel)")
    dist = lattice.distance(offsets)
    delay_ms = c.delay.d0 + (dist / c.delay.velocity if math.isfinite(c.delay.velocity) else 0.0)
    delay_ms = np.broadcast_to(delay_ms, weights.shape)
    with np.errstate(over="ignore"):
        too_long = ~np.isfinite(delay_ms / dt) | (delay_ms / dt >= COUNTER_MAX)
    for j in np.nonzero(too_long)[0]:
        if not fits_step_counter(delay_ms[j], dt):
            # (d0 alone is checked when the configuration is loaded)
            name, value = (("velocity", f"{c.delay.velocity!r} mm/ms") if dist[j] > 0
                           and math.isfinite(c.delay.velocity) else ("d0", f"{c.delay.d0!r} ms"))
            raise ConfigError(
                f"{key}.delay.{name} = {value} is invalid: the delay over offset "
                f"{tuple(int(v) for v in offsets[j])} (d0 + |o| dx / velocity = {delay_ms[j]:.6g} ms) "
                f"is {delay_ms[j] / dt:.3g} steps of run.dt = {dt} ms; a delay may have at most "
                f"2**48 - 1 = {COUNTER_MAX} steps (the step counter of the random numbers)")
    delays = np.array([to_steps(d, dt) for d in delay_ms], dtype=np.int64)
    if delays.min() < 1:  # MODEL.md §3: every delay, rounded to whole steps, >= one step
        j = int(np.argmin(delay_ms))
        if delay_ms[j] == c.delay.d0:  # a constant delay, or the kernel's offset 0
            raise ConfigError(f"{key}.delay.d0 = {c.delay.d0!r} is invalid: delays are rounded to whole steps "
                              f"and must be >= one step (run.dt = {dt} ms), so d0 >= dt/2 = {dt / 2:g} ms")
        raise ConfigError(f"{key}.delay.d0 = {c.delay.d0!r} is invalid: the delay over offset "
                          f"{tuple(int(v) for v in offsets[j])} (d0 + |o| dx / velocity = {delay_ms[j]:.6g} ms) "
                          f"rounds to {delays[j]} steps of run.dt = {dt} ms; every delay must be >= one step "
                          f"(raise d0, or lower delay.velocity)")
    types = config.types
    return Stencil(target=types.index(c.target), source=types.index(c.source), J=c.J, C=c.C,
                   offsets=offsets, weights=weights, delays=delays, key=key, type_names=types)


def _row_text(row) -> str:
    """A ``weights`` row as the user wrote it: integer offsets, then the weight."""
    return "[" + ", ".join([str(int(v)) for v in row[:-1]] + [repr(row[-1])]) + "]"


def _custom_offsets(k: KernelConfig, lattice: Lattice, key: str) -> np.ndarray:
    """The offsets of a ``custom`` kernel's rows within ``r_max`` and with weight > 0, in
    row order (int64, shape ``(n_off, ndim)``).

    Raises ConfigError naming the row for an offset with the wrong number of
    components or one that the lattice cannot hold: on a periodic axis of ``n`` sites
    at most ``(n - 1)//2`` sites (no offset wraps onto another), on an open axis at
    most ``n - 1`` (a longer offset never connects two sites).
    """
    ndim = lattice.ndim
    rows = []
    for j, row in enumerate(k.weights):
        if len(row) - 1 != ndim:
            raise ConfigError(
                f"{key}.kernel.weights[{j}] = {_row_text(row)} is invalid: it has {len(row) - 1} offset "
                f"component(s); the lattice of shape {tuple(lattice.shape)} is {ndim}-D, so each row "
                f"is [{', '.join(['offset'] * ndim)}, weight]")
        rows.append((j, tuple(int(v) for v in row[:-1]), row))
    if not rows:
        return np.zeros((0, ndim), dtype=np.int64)
    with np.errstate(over="ignore"):  # an offset of 1e200 sites is infinitely far
        dist = lattice.distance(np.array([off for _, off, _ in rows], dtype=float))
    kept = [r for r, d in zip(rows, dist) if d <= k.r_max * (1 + 1e-12) + 1e-12 and r[2][-1] > 0]
    for j, off, row in kept:
        for axis, (o, n) in enumerate(zip(off, lattice.shape)):
            if lattice.periodic and 2 * abs(o) + 1 > n:
                raise ConfigError(
                    f"{key}.kernel.weights[{j}] = {_row_text(row)} is invalid: its offset reaches "
                    f"{abs(o)} sites along axis {axis}, but a periodic axis of {n} sites (lattice shape "
                    f"{tuple(lattice.shape)}) allows at most {(n - 1) // 2} so that no offset wraps "
                    "onto another")
            if not lattice.periodic and abs(o) >= n:
                raise ConfigError(
                    f"{key}.kernel.weights[{j}] = {_row_text(row)} is invalid: its offset reaches "
                    f"{abs(o)} sites along axis {axis}, but an open axis of {n} sites (lattice shape "
                    f"{tuple(lattice.shape)}) allows at most {n - 1}: a longer offset never connects "
                    "two sites")
    return np.array([off for _, off, _ in kept], dtype=np.int64).reshape(-1, ndim)


def _r_max_origin(k: KernelConfig) -> str:
    """Where a kernel's ``r_max`` comes from when it is its shape's default, for
    messages (the user may not have written ``r_max``)."""
    default = {
        "gaussian": (3.0 * k.sigma, f"3 sigma, sigma = {k.sigma:g} mm"),
        "exponential": (4.0 * k.length, f"4 length, length = {k.length:g} mm"),
        "tophat": (k.radius, f"the radius, radius = {k.radius:g} mm"),
        "dog": (3.0 * max(k.sigma_center, k.sigma_surround),
                f"3 max(sigma_center, sigma_surround) = 3 x {max(k.sigma_center, k.sigma_surround):g} mm"),
    }.get(k.shape)
    if default is None or default[0] != k.r_max:
        return ""
    return f" (the default of a {k.shape!r} kernel: {default[1]})"


def build_stencils(config: Config) -> tuple[Stencil, ...]:
    """Stencils of all couplings with ``C > 0`` and ``J != 0``, in configuration order."""
    return tuple(build_stencil(config, i) for i, c in enumerate(config.couplings)
                 if c.C > 0 and c.J != 0.0)


def halo_width(stencils) -> int:
    """Halo width (sites) needed by the widest stencil."""
    return max((s.radius_sites for s in stencils), default=0)


def min_delay(stencils) -> int:
    """``d_min``: the smallest delay (steps) of all stencils; 0 if there are none."""
    return min((int(s.delays.min()) for s in stencils), default=0)


def max_delay(stencils) -> int:
    """The largest delay (steps) of all stencils; 0 if there are none."""
    return max((int(s.delays.max()) for s in stencils), default=0)
