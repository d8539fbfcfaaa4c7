"""Linear stability of the homogeneous field: the static (Turing) dispersion relation (MODEL.md §6).

A homogeneous stationary state of the mean-field field (every site of type a at
the rate ``A_a``, total input ``mu_eff_a``; see
:func:`meshfield.theory.stationary_rates_network`) is perturbed by a small
spatial mode ``dA_b(x) = dA_b exp(i k.x)``. The drive of a type-a neuron at site x
is ``mu_eff_a(x) = mu_a + tau_m_a sum_b J_ab C_ab sum_o kappa_ab(o) A_b(x + o)/1000``
(``A`` in Hz, so ``A/1000`` spikes per ms; ``J`` in mV is the area of one
postsynaptic potential, ``tau_m`` in ms; see
:func:`meshfield.theory.mean_input`). A mode therefore changes the drive by

    dmu_a = tau_m_a / 1000 * sum_b J_ab C_ab kappa_hat_ab(-k) dA_b     (mV),

with the discrete Fourier transform of the stencil
``kappa_hat(k) = sum_o kappa(o) exp(-i k.o dx)`` (:func:`stencil_fourier`);
``kappa_hat(-k) = conj(kappa_hat(k))`` appears because a site reads its input
from ``x + o``. For a symmetric stencil (every isotropic kernel) it is real and
even, and the sign convention does not matter.

Static (zero-frequency) approximation. If the perturbation is held for long
enough, every population's rate follows its drive along the stationary rate
function, ``dA_a = g_a dmu_a`` with the static gain ``g_a = dA_a/dmu_a`` (Hz/mV;
:func:`static_gain`), which includes the steady-state effect of the population's
own adaptation. Closing the loop gives ``dA = G(k) dA`` with the static gain
matrix

    G_ab(k) = g_a tau_m_a J_ab C_ab kappa_hat_ab(-k) / 1000    (dimensionless).

A new stationary solution branches off the homogeneous state, i.e. a real
eigenvalue of the dynamics passes through zero, where ``det(I - G(k)) = 0``: a
real eigenvalue of ``G(k)`` passes through 1. So the homogeneous state is
statically unstable to the mode k when the leading *real* eigenvalue of ``G(k)``
exceeds 1, and the wave number that maximizes it is the predicted wave number
of the emerging stationary pattern (bumps, stripes, spots) near onset. Complex
eigenvalues of ``G(k)`` (an E/I loop whose inhibition dominates, or an
asymmetric stencil) do not give a static bifurcation and are not counted.

What the static theory leaves out. Delays, the synaptic filters and the
population's dynamic response all reduce to 1 at zero frequency, so they drop
out here. Growth rates in time and oscillatory (Turing-Hopf, travelling-wave,
synchronous) instabilities need the frequency-dependent gain ``G(k, z)`` built
from the population's transfer function; :mod:`meshfield.theory.response`
computes it for the discrete-time mesoscopic model and locates the roots of
``det(I - G(k, z)) = 0`` (at ``z = 1`` its ``G`` is this module's). The static
theory alone predicts the onset and wave number of a stationary pattern only
where no oscillatory instability comes first. Finite-size noise is absent from
both.

Only periodic lattices. On an open lattice the Fourier modes are not
eigenmodes (the edge renormalization of the stencil breaks translation
invariance), so :func:`dispersion` refuses ``lattice.boundary = "open"`` rather
than return the periodic lattice's answer for it.

Units: wave numbers in rad/mm, rates in Hz, potentials in mV, times in ms. No MPI.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..lattice import wave_number_shell
from .stationary import (
    TheoryInputError,
    _neuron,
    stationary_rate_discrete,
    stationary_rates_network,
)

__all__ = [
    "Dispersion",
    "dispersion",
    "lattice_wave_vectors",
    "static_gain",
    "stencil_fourier",
]

# Central differences of the stationary rate with a step of 1e-4 delta_u: the
# truncation error (h/delta_u)^2/6 ~ 2e-9 (relative; the rate varies on the scale
# delta_u) dominates the round-off, ~1e-13 relative accuracy of the rate over
# the relative step 1e-4, i.e. ~1e-9.
_GAIN_STEP = 1e-4

# An eigenvalue of G(k) counts as real when its imaginary part is below this
# fraction of its modulus (G(k) is real for symmetric stencils, so a real
# eigenvalue carries only round-off in its imaginary part; a nearly double root
# may split into a pair of order sqrt(machine epsilon) ~ 1e-8).
_REAL_TOL = 1e-7

_LEVELS = ("meso", "micro")


def _site_counts(lattice_shape) -> tuple[int, ...]:
    """``lattice_shape`` as a tuple of positive ints, or one TheoryInputError."""
    allowed = "a sequence of whole positive site counts, one per axis, e.g. (n,) or (nx, ny)"
    sequence = isinstance(lattice_shape, Sequence) and not isinstance(lattice_shape, (str, bytes))
    if not (sequence or (isinstance(lattice_shape, np.ndarray) and lattice_shape.ndim == 1)):
        raise TheoryInputError(f"lattice_shape = {lattice_shape!r} must be {allowed}")
    entries = [n.item() if isinstance(n, np.generic) else n for n in lattice_shape]
    if not entries:
        raise TheoryInputError(f"lattice_shape = {lattice_shape!r} is empty; it must be {allowed}")
    shape = []
    for n in entries:
        whole = isinstance(n, numbers.Integral) or (isinstance(n, numbers.Real) and math.isfinite(n)
                                                     and float(n).is_integer())
        if isinstance(n, (bool, np.bool_)) or not whole or n < 1:
            raise TheoryInputError(f"lattice_shape = {entries!r} holds {n!r}; it must be {allowed}")
        shape.append(int(n))
    return tuple(shape)


def _spacing(dx) -> float:
    """``dx`` as a positive finite float, or one TheoryInputError."""
    number = isinstance(dx, numbers.Real) and not isinstance(dx, (bool, np.bool_))
    if not (number and math.isfinite(dx) and dx > 0):
        raise TheoryInputError(f"dx = {dx!r} must be a positive (finite) number of mm")
    return float(dx)


def lattice_wave_vectors(lattice_shape, dx: float) -> np.ndarray:
    """The discrete wave vectors of a periodic lattice, in FFT order.

    Axis ``i`` of ``n_i`` sites carries ``k_i = 2 pi m / (n_i dx)`` for
    ``m = 0, 1, ..., -1`` (as ``numpy.fft.fftfreq``).

    Parameters
    ----------
    lattice_shape : sequence of int
        Sites per axis, ``(n,)`` or ``(nx, ny)``: whole numbers >= 1 (``4.0`` is
        accepted, ``4.7`` and a bare ``4`` are not).
    dx : float, mm
        Site spacing, a finite number > 0.

    Returns
    -------
    ndarray, shape (*lattice_shape, ndim), rad/mm.

    Raises
    ------
    TheoryInputError
        For a ``lattice_shape`` or ``dx`` outside these ranges.
    """
    shape = _site_counts(lattice_shape)
    dx = _spacing(dx)
    axes = [2.0 * np.pi * np.fft.fftfreq(n, d=dx) for n in shape]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)


def stencil_fourier(stencil: Any, lattice_shape, dx: float) -> np.ndarray:
    """Discrete Fourier transform of a coupling stencil on the lattice's wave vectors.

    ``kappa_hat(k) = sum_o kappa(o) exp(-i k.o dx)`` for every ``k`` of
    :func:`lattice_wave_vectors` (FFT order). ``kappa_hat(0)`` is the sum of the
    weights: 1 for meshfield's normalized stencils
    (:func:`meshfield.coupling.build_stencils`), whatever it is for a caller's own
    stencil (weights that do not sum to 1 are accepted). A stencil symmetric
    under ``o -> -o`` has a real transform.

    Computed by one FFT: since ``k_i = 2 pi m / (n_i dx)``, the phase is periodic
    in ``o_i`` with period ``n_i``, so the weights are summed on a periodic array
    of the lattice's shape at index ``o mod n`` (offsets that alias onto one site
    add up) and transformed with ``numpy.fft.fftn``. Cost ``O(n_sites log
    n_sites + n_off)`` in time and ``O(n_sites)`` in memory. The values at the
    lattice wave vectors do not depend on ``dx`` (it is only validated).

    Parameters
    ----------
    stencil : meshfield.coupling.Stencil (or any object with ``offsets``, shape
        ``(n_off, ndim)``, whole numbers of sites, and ``weights``, shape
        ``(n_off,)``, finite)
    lattice_shape : sequence of int
        Sites per axis (see :func:`lattice_wave_vectors`).
    dx : float, mm
        Site spacing.

    Returns
    -------
    ndarray of complex128, shape lattice_shape.

    Raises
    ------
    TheoryInputError
        For a bad ``lattice_shape`` or ``dx``, a stencil without ``offsets`` or
        ``weights``, shapes that do not fit the lattice, offsets that are not
        whole numbers, or non-finite weights.
    """
    shape = _site_counts(lattice_shape)
    _spacing(dx)
    ndim = len(shape)
    for name in ("offsets", "weights"):
        if not hasattr(stencil, name):
            raise TheoryInputError(
                f"stencil = {type(stencil).__name__} object has no '{name}'; a stencil needs 'offsets' "
                f"(n_off, ndim) in sites and 'weights' (n_off,)"
            )
    try:
        offsets = np.asarray(stencil.offsets, dtype=np.float64)
        weights = np.asarray(stencil.weights, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TheoryInputError(f"stencil offsets and weights must be numeric arrays ({err})") from None
    if offsets.ndim != 2 or offsets.shape[1] != ndim or weights.shape != offsets.shape[:1]:
        raise TheoryInputError(
            f"stencil offsets of shape {offsets.shape} and weights of shape {weights.shape} do not fit "
            f"a {ndim}-D lattice (expected offsets (n_off, {ndim}) and weights (n_off,))"
        )
    bad = ~(np.isfinite(offsets) & (offsets == np.rint(offsets)))
    if np.any(bad):
        i = int(np.flatnonzero(np.any(bad, axis=1))[0])
        raise TheoryInputError(
            f"stencil offsets must be whole numbers of sites; offsets[{i}] = {offsets[i].tolist()}"
        )
    bad = ~np.isfinite(weights)
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise TheoryInputError(
            f"stencil weights must be finite numbers; {int(bad.sum())} of {weights.size} are not "
            f"(weights[{i}] = {float(weights[i])} at offset {offsets[i].astype(np.int64).tolist()})"
        )
    # exp(-i k_i o_i dx) = exp(-2 pi i m o_i / n_i) depends on o_i mod n_i only.
    index = np.mod(offsets, np.asarray(shape, dtype=np.float64)).astype(np.int64)  # exact for whole floats
    folded = np.zeros(shape, dtype=np.float64)
    np.add.at(folded, tuple(index.T), weights)
    return np.fft.fftn(folded)


def static_gain(
    pop: Any,
    dt: float,
    mu_eff: float | None = None,
    K: int | None = None,
    hazard_rule: str = "trapezoid",
) -> float:
    """Static gain ``dA/dmu`` (Hz/mV) of a population at its stationary state.

    The slope of the stationary rate of the discrete-time model
    (:func:`meshfield.theory.stationary_rate_discrete`, with the adaptation at its
    self-consistent steady state) with respect to a constant input, by a central
    difference with the step ``1e-4 delta_u`` (relative accuracy about 1e-8).
    This is the zero-frequency limit of the population's linear response.

    Parameters
    ----------
    pop : population parameters (``mu, tau_m, t_ref, u_reset, u_th, c, delta_u,
        tau_theta, J_theta``).
    dt : float, ms
        Time step.
    mu_eff : float, mV, optional
        Total stationary input (default ``pop.mu``).
    K : int, optional
        History window in steps (the mesoscopic engine's K for consistency with
        it; None: untruncated).
    hazard_rule : {"trapezoid", "endpoint"}
        Mesoscopic (trapezoid) or microscopic (endpoint) firing rule.

    Returns
    -------
    float, Hz/mV.

    Raises
    ------
    TheoryInputError
        For a missing or out-of-range population parameter (the checks of the
        stationary theory, naming the parameter), a non-finite ``mu_eff`` or a
        bad ``dt``, ``K`` or ``hazard_rule``.
    """
    nrn = _neuron(pop)  # the stationary theory's checks: one TheoryInputError per bad parameter
    if mu_eff is None:
        mu = nrn.mu
    else:
        number = isinstance(mu_eff, numbers.Real) and not isinstance(mu_eff, (bool, np.bool_))
        if not (number and math.isfinite(mu_eff)):
            raise TheoryInputError(f"mu_eff = {mu_eff!r} must be a finite potential in mV")
        mu = float(mu_eff)
    h = _GAIN_STEP * nrn.delta_u

    def rate(m: float) -> float:
        return stationary_rate_discrete(pop, dt, mu_eff=m, K=K, hazard_rule=hazard_rule)

    return (rate(mu + h) - rate(mu - h)) / (2.0 * h)


@dataclass(frozen=True)
class Dispersion:
    """Static gain spectrum of the homogeneous state over the lattice's wave vectors.

    Arrays over wave vectors are in FFT order, shape ``lattice = config.lattice.shape``.

    Attributes
    ----------
    types : tuple of str
        Type names (type order of the configuration).
    k_vectors : ndarray, shape (*lattice, ndim), rad/mm
        Wave vectors (:func:`lattice_wave_vectors`).
    k_norm : ndarray, shape lattice, rad/mm
        ``|k|``.
    k_step : float, rad/mm
        Lattice wave-number step ``2 pi / (n dx)``, ``n`` the longest axis (as
        :func:`meshfield.analysis.spatial_spectrum`; on a rectangular lattice the
        finer of the two axes' steps).
    gain_matrix : ndarray of complex, shape (*lattice, T, T)
        ``G_ab(k)``, dimensionless, indexed ``[..., target, source]``.
    eigenvalues : ndarray of complex, shape (*lattice, T)
        Eigenvalues of ``G(k)``, sorted by decreasing real part.
    leading : ndarray, shape lattice
        Largest real eigenvalue of ``G(k)``; ``-inf`` where none is real.
    rates : ndarray, shape (T,), Hz
        Homogeneous stationary rates.
    mu_eff : ndarray, shape (T,), mV
        Total stationary input per type.
    slopes : ndarray, shape (T,), Hz/mV
        Static gains ``dA_a/dmu_a``.
    multiple : bool
        True if the homogeneous self-consistency has several solutions; the
        analysis is for ``rates`` (the one nearest ``rates0``, if given).
    level : str
        Firing rule used: ``"meso"`` (trapezoid, the engine's K) or ``"micro"``
        (endpoint rule, no window).
    """

    types: tuple
    k_vectors: np.ndarray
    k_norm: np.ndarray
    k_step: float
    gain_matrix: np.ndarray
    eigenvalues: np.ndarray
    leading: np.ndarray
    rates: np.ndarray
    mu_eff: np.ndarray
    slopes: np.ndarray
    multiple: bool
    level: str

    @property
    def max_leading(self) -> float:
        """Largest real eigenvalue over all wave vectors."""
        return float(np.max(self.leading))

    @property
    def unstable(self) -> bool:
        """True if some mode is statically unstable (``max_leading > 1``)."""
        return self.max_leading > 1.0

    @property
    def k_vector_peak(self) -> np.ndarray:
        """The wave vector (rad/mm, shape (ndim,)) of the largest real eigenvalue (first in FFT order)."""
        return self.k_vectors.reshape(-1, self.k_vectors.shape[-1])[int(np.argmax(self.leading))]

    @property
    def k_peak(self) -> float:
        """Predicted dominant wave number ``|k|`` (rad/mm): the argmax of the leading eigenvalue."""
        return float(np.sqrt(self.k_vector_peak @ self.k_vector_peak))

    @property
    def k_peak_steps(self) -> int:
        """``k_peak`` in lattice wave-number steps (rounded; the shell index of spatial_spectrum)."""
        return int(wave_number_shell(self.k_peak, self.k_step))

    @property
    def wavelength(self) -> float:
        """``2 pi / k_peak`` (mm); inf for a homogeneous (k = 0) instability."""
        return 2.0 * np.pi / self.k_peak if self.k_peak > 0 else math.inf

    def shells(self) -> tuple[np.ndarray, np.ndarray]:
        """Leading eigenvalue per shell of ``|k|`` (the shells of spatial_spectrum).

        Returns
        -------
        k : ndarray, shape (n_shells,), rad/mm
            ``m * k_step``, m = 0, 1, ...
        leading : ndarray, shape (n_shells,)
            Maximum of ``leading`` over the wave vectors of each shell
            (``-inf`` for a shell without lattice wave vectors or without a
            real eigenvalue).
        """
        shell = wave_number_shell(self.k_norm, self.k_step).ravel()
        out = np.full(shell.max() + 1, -np.inf)
        np.maximum.at(out, shell, self.leading.ravel())
        if out.size == 1:  # a single site: only k = 0 (and k_step is infinite)
            return np.zeros(1), out
        return np.arange(out.size) * self.k_step, out


def dispersion(config: Any, *, level: str | None = None, rates0: np.ndarray | None = None) -> Dispersion:
    """Static gain matrix ``G(k)`` of the homogeneous stationary state and its eigenvalues.

    See the module docstring for the theory. The stationary state is the
    self-consistent homogeneous solution of the discrete-time model
    (:func:`meshfield.theory.stationary_rates_network`) at ``run.dt``; kernels
    come from :func:`meshfield.coupling.build_stencils`, so the discrete,
    truncated and normalized stencils of the simulation are used. Stimuli are
    ignored (the homogeneous state has the constant drive ``mu`` only).

    Static theory only: ``G(k)`` is the zero-frequency gain, whose leading real
    eigenvalue locates the onset and wave number of a stationary pattern; it
    gives no growth rates in time (those, and oscillatory instabilities, come
    from the transfer function: :func:`meshfield.theory.growth_rates`). The lattice must be periodic (the theory of
    a homogeneous field); an open lattice is refused.

    Parameters
    ----------
    config : Config, or anything :func:`meshfield.config.load_config` accepts.
    level : {"meso", "micro"}, optional
        Firing rule of the stationary theory: ``"meso"`` (trapezoidal hazard,
        history window K of the mesoscopic engine) or ``"micro"`` (end-point
        hazard of the microscopic neuron, no window). Default: ``run.level``.
    rates0 : array_like, shape (T,), Hz, optional
        Starting point of the stationary-state search; of several solutions, the
        one nearest it in log rate is analysed.

    Returns
    -------
    Dispersion

    Raises
    ------
    TheoryInputError
        For ``lattice.boundary = "open"``, an unknown ``level``, or bad
        population parameters.
    """
    from ..config import Config, load_config
    from ..coupling import build_stencils
    from ..meso import history_length

    if not isinstance(config, Config):
        config = load_config(config)
    if config.lattice.boundary != "periodic":
        raise TheoryInputError(
            f"lattice.boundary = {config.lattice.boundary!r}: the linear theory (MODEL.md §6) is that of a "
            f"homogeneous field, whose Fourier modes are eigenmodes only on a periodic lattice; "
            f"allowed: 'periodic' (an open lattice's edge renormalization breaks translation invariance)"
        )
    level = config.run.level if level is None else level
    if level not in _LEVELS:
        raise TheoryInputError(f"level = {level!r}; allowed: {', '.join(_LEVELS)}")
    dt = config.run.dt
    pops = list(config.populations)
    T = len(pops)
    J = np.zeros((T, T))
    C = np.zeros((T, T))
    stencils = build_stencils(config)
    for s in stencils:
        J[s.target, s.source] = s.J
        C[s.target, s.source] = s.C
    if level == "meso":
        windows, rule = [history_length(p, dt) for p in pops], "trapezoid"
    else:
        windows, rule = None, "endpoint"
    state = stationary_rates_network(pops, J, C, dt=dt, K=windows, hazard_rule=rule, rates0=rates0)
    slopes = np.array([
        static_gain(p, dt, mu_eff=state.mu_eff[a], K=None if windows is None else windows[a], hazard_rule=rule)
        for a, p in enumerate(pops)
    ])

    shape = tuple(config.lattice.shape)
    dx = config.lattice.dx
    k_vectors = lattice_wave_vectors(shape, dx)
    gain = np.zeros(shape + (T, T), dtype=np.complex128)
    tau_m = np.array([p.tau_m for p in pops])
    for s in stencils:
        # A site reads its input from x + o, so the mode exp(i k.x) is weighted by
        # sum_o kappa(o) exp(+i k.o dx) = conj(kappa_hat(k)).
        coefficient = slopes[s.target] * tau_m[s.target] * s.J * s.C * 1e-3
        gain[..., s.target, s.source] = coefficient * np.conj(stencil_fourier(s, shape, dx))
    eigenvalues = np.linalg.eigvals(gain)
    order = np.argsort(-eigenvalues.real, axis=-1, kind="stable")
    eigenvalues = np.take_along_axis(eigenvalues, order, axis=-1)
    real = np.abs(eigenvalues.imag) <= _REAL_TOL * np.maximum(np.abs(eigenvalues), 1.0)
    leading = np.max(np.where(real, eigenvalues.real, -np.inf), axis=-1)
    long_axes = [n for n in shape if n > 1]
    # The step of the longest axis, as meshfield.analysis.spatial_spectrum: every
    # non-zero wave vector is at least one step long.
    k_step = 2.0 * np.pi / (max(long_axes) * dx) if long_axes else math.inf
    return Dispersion(
        types=tuple(config.types),
        k_vectors=k_vectors,
        k_norm=np.sqrt(np.sum(k_vectors**2, axis=-1)),
        k_step=k_step,
        gain_matrix=gain,
        eigenvalues=eigenvalues,
        leading=leading,
        rates=np.asarray(state.rates, dtype=np.float64),
        mu_eff=np.asarray(state.mu_eff, dtype=np.float64),
        slopes=slopes,
        multiple=bool(state.multiple),
        level=level,
    )
