"""Linear response and growth rates of the mesoscopic field (MODEL.md §6).

The static theory (:mod:`meshfield.theory.linear`) says *whether* a spatial
mode of the homogeneous state is statically unstable; this module gives every
mode's *growth rate and frequency*, including oscillatory (Hopf, Turing-Hopf,
travelling-wave) instabilities, from the population's linear response to input
modulations, as MODEL.md §6 asks.

Linear response of one population (its transfer function)
----------------------------------------------------------
In the mean-field limit (``run.mean_field = true``: ``n = n_bar``) the
mesoscopic population of MODEL.md §4 is a deterministic map driven by the
common membrane increment of each step, ``h_inc(t) = mu (1 - P_mm) + sum_b
(y_b P_sm + I_b P_im)`` (the exact integration of :mod:`meshfield.propagators`).
Its impulse response ``h[n]`` (Hz/mV) is the change of the activity ``A`` at
the end of step ``n`` per mV of extra membrane increment received by every
neuron in step 0, to linear order about the stationary state; it contains the
refractoriness, the hazard's dynamics and the population's own adaptation.
:func:`impulse_response` measures it on the engine's own kernel
(:func:`meshfield.meso.kernels.population_block_serial`), by central
differences of two runs from the stationary state, so it is the response of
exactly the discrete model that ``meshfield run`` simulates. Its z-transform
``H(z) = sum_n h[n] z^-n`` is the transfer function; at ``z = 1`` it is the
static gain: ``H(1) (1 - P_mm) = dA/dmu`` (:func:`meshfield.theory.static_gain`).

Closing the loop on the lattice
-------------------------------
A mode ``dA_b(x, t) = dA_b exp(i k.x) z^t`` of the source activity reaches a
type-a neuron through each coupling (stencil ``kappa(o)``, delays ``d(o)``
steps, weight ``J``, in-degree ``C``) as the drive ``I = J C sum_o kappa(o)
dA_b(x + o, t - d(o)) / 1000`` (mV/ms; A in Hz), which is filtered by the
synapse, ``y(t+1) = P_ss y(t) + (1 - P_ss) I(t)``, into the membrane increment
``P_sm y + P_im I``. So ``dA = G(k, z) dA`` with

    G_ab(k, z) = H_a(z) sum_{a <- b couplings} [P_im + P_sm (1 - P_ss)/(z - P_ss)]
                 J C sum_o kappa(o) exp(i k.o dx) z^-d(o) / 1000,

and the mode grows as ``z^t`` for the roots of ``det(I - G(k, z)) = 0``. A
root ``z`` gives the growth rate ``ln|z| / dt`` and the frequency
``arg(z) / (2 pi dt)``. At ``z = 1`` (a stationary mode) ``G`` is the static
gain matrix of :func:`meshfield.theory.dispersion`, because ``P_im + P_sm =
tau_m (1 - P_mm)``.

Finding the leading root
------------------------
As a function of ``w = 1/z``, ``det(I - G)`` is analytic in the disk ``|w| <
1/r`` whenever the impulse responses decay faster than ``r^n`` (each population
on its own is stable) and equals 1 at ``w = 0`` (every delay is at least one
step). The number of roots with ``|z| > r`` is therefore the winding number of
``det(I - G)`` around 0 along the circle ``|z| = r`` (argument principle),
evaluated at FFT points with a check that the phase is resolved. The modulus of
the leading root is found by bisection on ``r``, its angle by the minimum of
``|det|`` on that circle, and the root is polished by Newton's method.

Limits. The impulse response is truncated where it has decayed to about 1e-11
of its peak; roots slower than :attr:`ImpulseResponse.sigma_floor` (where the
truncation's error, amplified by ``r^-n``, would reach 1e-5) are not resolved and
are reported as ``-inf``. Mean-field limit only: finite-size noise is absent.
Mesoscopic level only (the microscopic level's end-point rule has its own
mean-field dynamics). Periodic lattices only, as for the static theory.

Units: ms, mV, Hz; growth rates in 1/s, frequencies in Hz. No MPI.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np

from ..lattice import wave_number_shell
from .stationary import TheoryInputError, _explicit_window, _mu_eff, _neuron, _step

__all__ = ["GrowthRates", "ImpulseResponse", "growth_rates", "impulse_response"]

#: perturbation of the membrane increment, in units of delta_u: small enough that
#: the central difference's O(eps^2) error is ~1e-6 relative, large enough that
#: round-off (~1e-16 of A over 2 eps) stays ~1e-12 of the peak response
_EPS = 1e-3
#: the impulse response counts as decayed below this fraction of its peak
_DECAYED = 1e-11
#: error allowed from the truncation at radius r: |h_tail| r^-L stays below this
#: fraction of the peak, which fixes the slowest resolvable growth rate
_TRUNCATION = 1e-5
#: below this fraction of its peak a tail that stops falling is round-off
_PLATEAU = 1e-7
#: relative round-off of the central difference (1e-16 of A over 1e-3 delta_u,
#: with the cancellations of the cohort sums): smaller values are not trusted
_ROUNDOFF = 1e-13
#: longest impulse response or warm-up computed (steps)
_MAX_STEPS = 4_000_000
#: relative change of the activity over a warm-up chunk that counts as stationary
_STATIONARY = 1e-10
#: growth-rate resolution of the bisection (1/s)
_SIGMA_TOL = 1e-4


@dataclass(frozen=True)
class ImpulseResponse:
    """Linear response of one mesoscopic population in the mean-field limit.

    Attributes
    ----------
    h : ndarray, shape (L,), Hz/mV
        ``h[n]``: change of the activity at the end of step ``n`` per mV of
        membrane increment added to every neuron in step 0.
    dt : float, ms
    rate_hz : float, Hz
        Stationary activity about which the response is taken (reached by the
        engine itself).
    mu_eff : float, mV
        Constant total input of the stationary state.
    P_mm : float
        ``exp(-dt/tau_m)``.
    K : int
        History length (steps) of the engine.
    """

    h: np.ndarray
    dt: float
    rate_hz: float
    mu_eff: float
    P_mm: float
    K: int

    @property
    def static_gain(self) -> float:
        """``dA/dmu`` (Hz/mV) from the response: ``H(1) (1 - P_mm)``."""
        return float(self.h.sum() * (1.0 - self.P_mm))

    @property
    def sigma_floor(self) -> float:
        """Slowest growth rate (1/s, negative) that the response resolves: on
        ``|z| = r`` the neglected part beyond step ``L`` weighs about ``tail
        r^-L`` (``tail`` its largest value over the peak), which must stay below
        1e-5; ``h`` is kept to the length that makes this floor lowest."""
        return _floor(self.h, self.dt)[0]

    def transfer(self, z) -> np.ndarray:
        """``H(z) = sum_n h[n] z^-n`` (Hz/mV) at complex ``z`` with ``|z|`` at least
        ``exp(sigma_floor dt / 1000)``."""
        w = 1.0 / np.asarray(z, dtype=np.complex128)
        return np.polyval(self.h[::-1], w)


def _floor(h: np.ndarray, dt: float) -> tuple[float, int]:
    """``(sigma_floor, L)``: the lowest floor over truncation lengths L, and L."""
    a = np.abs(h)
    peak = a.max()
    if peak == 0.0:  # a silent population: no response, nothing to resolve
        return -math.inf, 1
    # largest value beyond each L, never below the round-off of the difference
    beyond = np.maximum.accumulate(a[::-1])[::-1][1:] / peak
    beyond = np.maximum(beyond, _ROUNDOFF)
    lengths = np.arange(1, len(a))
    floors = 1000.0 * (np.log(beyond) - math.log(_TRUNCATION)) / (lengths * dt)
    i = int(np.argmin(floors))
    return min(float(floors[i]), 0.0), int(lengths[i])


def impulse_response(pop: Any, dt: float, mu_eff: float | None = None, K: int | None = None) -> ImpulseResponse:
    """Impulse response of a mesoscopic population in the mean-field limit.

    Runs the engine's population kernel without noise at the constant input
    ``mu_eff`` until the activity is stationary (relative change below 1e-10),
    then adds ``+-1e-3 delta_u`` to the membrane increment of one step and
    returns the central difference of the two activities per mV, until it has
    decayed to 1e-11 of its peak (about its round-off level).

    Parameters
    ----------
    pop : meshfield.config.PopulationConfig
        The population (``N`` only scales counts: the response is that of the
        mean-field limit).
    dt : float, ms
        Time step.
    mu_eff : float, mV, optional
        Total stationary input (default ``pop.mu``).
    K : int, optional
        History length in steps (default: the engine's,
        :func:`meshfield.meso.history_length`).

    Returns
    -------
    ImpulseResponse

    Raises
    ------
    TheoryInputError
        For a missing or out-of-range population parameter (the checks of the
        stationary theory, naming the parameter), a bad ``dt``, ``mu_eff`` or
        ``K`` (a whole number of steps above the refractory steps, at most the
        engine's bound), or when the activity does not
        become stationary or the response does not decay within 4e6 steps (the
        population oscillates on its own: it has no stable stationary state to
        linearize about).
    """
    from ..config import history_limit, refractory_steps
    from ..meso import kernels
    from ..meso.model import history_length, population_tables
    from ..propagators import membrane_propagators

    # The engine's kernel takes the parameters as they are: a negative delta_u, a
    # zero tau_m or a window K inside the refractory period would give a wrong
    # response or an error from deep inside it, so they are checked here first.
    nrn = _neuron(pop)
    dt = _step(dt)
    mu = _mu_eff(nrn, mu_eff)
    if K is None:
        K = history_length(pop, dt)
    else:
        K = _explicit_window(nrn, dt, K, history_limit(dt),
                             f" (the engine's history length; t_ref = {nrn.t_ref:g} ms is "
                             f"{refractory_steps(nrn.t_ref, dt)} steps)")
    const = population_tables(pop, dt, K, 3, 0)
    state = const["state"]
    P_mm = membrane_propagators(pop.tau_m, np.zeros(0), dt).P_mm
    N = int(pop.N)
    to_hz = 1000.0 / (N * dt)
    sites = np.arange(3, dtype=np.int64)
    chunk = max(4 * K, 2000)
    no_in = np.zeros(0)

    def advance(step0: int, mu_steps: np.ndarray) -> np.ndarray:
        nsteps = mu_steps.shape[0]
        counts = np.empty((nsteps, 3))
        expected = np.empty((nsteps, 3))
        kernels.population_block_serial(
            step0, nsteps, 0, N, dt, const["n_ref"], pop.u_reset, pop.u_th, pop.c * 1e-3, pop.delta_u,
            P_mm, mu_steps, np.zeros((0, nsteps, 3)), no_in, no_in, no_in, no_in, state["y"],
            const["eps_rev"], const["theta_tilde_rev"], const["adapt_w"], const["adapt_decay"],
            const["adapt_enter"], state["g"], state["m"], state["v"], state["u"], state["lam"], state["n"],
            state["x"], state["z"], state["h"], state["lam_free"], kernels.NOISE_NONE, 0, sites,
            counts, expected)
        return counts * to_hz

    # warm-up: the three copies stay identical until the pulse
    step = 0
    steady = np.full((chunk, 3), float(mu))
    previous = None
    swings = []  # peak-to-peak activity per chunk: a sustained oscillation keeps it
    while True:
        A = advance(step, steady)[:, 0]
        step += chunk
        level = float(A[-1])
        swings.append(float(np.ptp(A)))
        if previous is not None and abs(level - previous) <= _STATIONARY * max(abs(level), 1e-300) \
                and np.ptp(A[-K:]) <= _STATIONARY * max(abs(level), 1e-300):
            break
        sustained = len(swings) >= 20 and swings[-1] > 0.99 * swings[-10] and swings[-1] > 1e-6 * A.max()
        if sustained or step >= _MAX_STEPS:
            raise TheoryInputError(
                f"populations.{pop.name}: the mean-field activity at mu_eff = {mu:g} mV (threshold u_th = "
                f"{pop.u_th:g} mV) does not settle: after {step * dt:g} ms it still swings between "
                f"{A.min():.4g} and {A.max():.4g} Hz (by {np.ptp(A):.3g} Hz). The population oscillates on its own (e.g. "
                f"refractory-locked firing at a drive far above threshold), so there is no stable stationary "
                f"state to linearize about")
        previous = level

    eps = _EPS * pop.delta_u
    pulse = steady.copy()
    pulse[0, 1] += eps / (1.0 - P_mm)
    pulse[0, 2] -= eps / (1.0 - P_mm)
    out = []
    peak = 0.0
    first = True
    last_tail = math.inf
    while True:
        A = advance(step, pulse if first else steady)
        first = False
        step += chunk
        out.append((A[:, 1] - A[:, 2]) / (2.0 * eps))
        peak = max(peak, float(np.abs(out[-1]).max()))
        length = len(out) * chunk
        tail = np.abs(out[-1][-max(K, 10):]).max()
        # decayed, or down to its round-off level (the tail no longer falls)
        if tail <= _DECAYED * peak or (tail <= _PLATEAU * peak and tail >= 0.5 * last_tail):
            break
        last_tail = tail
        if length >= _MAX_STEPS:
            raise TheoryInputError(
                f"populations.{pop.name}: the linear response at mu_eff = {mu:g} mV has not decayed after "
                f"{_MAX_STEPS} steps ({_MAX_STEPS * dt:g} ms; tail {tail / peak:.2g} of its peak): the "
                f"population is at the edge of an oscillatory instability of its own")
    h = np.concatenate(out)
    h = h[:_floor(h, dt)[1]].copy()
    return ImpulseResponse(h=h, dt=float(dt), rate_hz=float(level), mu_eff=float(mu),
                           P_mm=P_mm, K=K)


# ---------------------------------------------------------------------------
# The closed loop on the lattice
# ---------------------------------------------------------------------------


#: halvings of one step of the phase along a circle before it counts as on a
#: root: 2**-40 of a step (about 1e-16 of the circle) is at rounding level
_ARC_DEPTH = 40


class _OnRoot(Exception):
    """The circle passes so close to a root that its phase cannot be resolved."""


class _Loop:
    """``det(I - G(z))`` of one spatial mode: responses ``h`` (T, L) and, per
    (target, source) term, the synaptic filter and the delay polynomial.

    The synaptic filter of a source with ``P_ss > 0`` has a pole at ``z = P_ss``;
    column b of ``I - G`` is multiplied by ``s_b(z) = 1 - P_ss/z``, which removes
    it, so that the winding number counts zeros only, wherever the circle lies.
    The scaled determinant is that of the full linear system including the
    synaptic currents: where a mode barely couples to source b (its stencil
    transform near 0), it has a root near ``z = P_ss``, the current's own decay at
    ``-1/tau_s``, and reports it.
    """

    def __init__(self, h: np.ndarray, terms: list):
        # terms: (a, b, c, P_im, P_sm, P_ss, delays (n,), weights (n,) complex):
        # G_ab += H_a(z) [P_im + P_sm (1-P_ss)/(z-P_ss)] c sum_j weights_j z^-delays_j
        self.h = h
        self.lags = np.arange(h.shape[1])
        self.T = h.shape[0]
        self.terms = terms
        self.d_max = max((int(t[6].max()) for t in terms if len(t[6])), default=0)
        self.delays = sorted({int(d) for t in terms for d in t[6]})
        self.pole = np.zeros(self.T)
        for _, b, _, _, _, P_ss, _, _ in terms:
            self.pole[b] = P_ss

    def _det(self, H: np.ndarray, z: np.ndarray) -> np.ndarray:
        A = np.zeros(z.shape + (self.T, self.T), dtype=np.complex128)
        zinv = 1.0 / z
        scale = [1.0 - P * zinv for P in self.pole]
        for b in range(self.T):
            A[..., b, b] = scale[b]
        # z^-d for every delay, by repeated multiplication in increasing order
        powers, power, last = {}, np.ones_like(z), 0
        for d in self.delays:
            for _ in range(d - last):
                power = power * zinv
            powers[d], last = power, d
        for a, b, c, P_im, P_sm, P_ss, delays, weights in self.terms:
            filt = P_im * scale[b] + P_sm * (1.0 - P_ss) * zinv
            kern = np.zeros(z.shape, dtype=np.complex128)
            for d, wgt in zip(delays, weights):
                kern += wgt * powers[int(d)]
            A[..., a, b] -= H[a] * filt * c * kern
        if self.T == 1:
            return A[..., 0, 0]
        if self.T == 2:  # numpy's LU on millions of 2x2 matrices is ~10x slower
            return A[..., 0, 0] * A[..., 1, 1] - A[..., 0, 1] * A[..., 1, 0]
        return np.linalg.det(A)

    def _points(self) -> int:
        return 1 << max(10, int(math.ceil(math.log2(8 * (self.h.shape[1] + self.d_max + 2)))))

    def on_circle(self, r: float, M: int) -> tuple[np.ndarray, np.ndarray]:
        """``(z, det)`` at ``M`` points ``z_j = r exp(2 pi i j/M)``; H by one FFT."""
        n = np.arange(self.h.shape[1])
        H = np.fft.fft(self.h * np.exp(-np.log(r) * n), n=M, axis=1)
        z = r * np.exp(2j * np.pi * np.arange(M) / M)
        return z, self._det(H, z)

    def at(self, z: complex) -> complex:
        w = 1.0 / complex(z)
        # one vectorized sum per type (np.polyval loops in Python, 10 ms a call);
        # numpy forms w**n as exp(n log w), 1e-11 relative on 10^4 taps where Horner
        # gives 1e-14, which moves a growth rate by 1e-7/s, far below _SIGMA_TOL
        H = self.h @ w ** self.lags
        return complex(self._det(H, np.array(z, dtype=np.complex128)))

    def count_outside(self, r: float) -> int:
        """Number of roots with ``|z| > r`` (winding number along ``|z| = r``);
        :class:`_OnRoot` if a root lies too close to the circle to tell.

        The phase of the determinant is followed at the FFT points, and each
        step that turns by a quarter or more is subdivided until every part
        turns by less. Such steps lie next to a root near the circle, which
        the bisection of :func:`_leading_root` approaches on purpose: refining
        those few arcs instead of the whole circle keeps its last circles as
        cheap as its first. Two roots closer to each other than the points
        (1e-3 of the circle apart, just beside it) can turn one step by a whole
        2 pi, which looks like no turn: the count is then one short, but stays
        positive, so the bisection is not misled.
        """
        M = self._points()
        _, D = self.on_circle(r, M)
        if not np.all(np.isfinite(D)):
            raise TheoryInputError(f"the characteristic function is not finite on |z| = {r:.9g}")
        step = np.angle(np.roll(D, -1) / D)
        turn = float(step.sum())
        for j in np.flatnonzero(np.abs(step) >= np.pi / 2):
            angles = 2.0 * np.pi * np.array([j, j + 1]) / M
            turn += self._arc_turn(r, *angles, D[j], D[(j + 1) % M], _ARC_DEPTH) - step[j]
        # z runs counterclockwise, w = 1/z clockwise: roots inside |w| < 1/r
        return int(round(-turn / (2 * np.pi)))

    def _arc_turn(self, r: float, a0: float, a1: float, D0: complex, D1: complex, depth: int) -> float:
        """Phase turn of the determinant along ``|z| = r`` from angle ``a0`` to
        ``a1`` (its values ``D0``, ``D1`` there), halving the arc until every
        part turns by less than a quarter; :class:`_OnRoot` after ``depth``
        halvings."""
        step = float(np.angle(D1 / D0))
        if abs(step) < np.pi / 2:
            return step
        if depth == 0:
            raise _OnRoot
        middle = 0.5 * (a0 + a1)
        Dm = self.at(r * np.exp(1j * middle))
        if not (np.isfinite(Dm) and Dm != 0):
            raise _OnRoot
        return (self._arc_turn(r, a0, middle, D0, Dm, depth - 1)
                + self._arc_turn(r, middle, a1, Dm, D1, depth - 1))


def _leading_root(loop: _Loop, dt: float, r_floor: float) -> tuple[float, float, int]:
    """Growth rate (1/s), frequency (Hz, >= 0) and unstable-root count of the
    leading root; growth rate ``-inf`` (frequency NaN) below ``r_floor``."""
    tol = _SIGMA_TOL * dt / 1000.0  # in log r

    def count(log_r: float) -> int | None:
        """Roots outside exp(log_r), or None on a root."""
        try:
            return loop.count_outside(math.exp(log_r))
        except _OnRoot:
            return None

    unstable = count(0.0)
    just_outside = count(tol)
    if unstable is None:  # a root on the unit circle: count the ones just outside
        unstable = just_outside or 0
    found = None
    if just_outside != 0:
        # a growing root (or one on the unit circle): bracket it from above
        lo, hi = 0.0, dt / 1000.0  # log r of the growth rates 0 and 1/s
        while True:
            c = count(hi)
            if c is None:
                found, hi = hi, 2.0 * hi
                break
            if c == 0:
                break
            lo, hi = hi, 2.0 * hi
            if hi > 20.0:
                raise TheoryInputError("a root grows by more than exp(20) per step: the mode runs away")
    else:
        lo, hi = math.log(r_floor), 0.0
        c = count(lo)
        if c == 0:
            return -math.inf, math.nan, 0
        if c is None:
            found = lo
            lo -= tol
    while found is None and hi - lo > tol:
        mid = 0.5 * (lo + hi)
        c = count(mid)
        if c is None:
            found = mid
        elif c > 0:
            lo = mid
        else:
            hi = mid
    log_r = 0.5 * (lo + hi) if found is None else found
    r = math.exp(log_r)
    z_grid, D = loop.on_circle(r, loop._points())
    start = z_grid[int(np.argmin(np.abs(D)))]
    z = start
    # Newton on det(I - G(z)) with a central-difference derivative
    for _ in range(30):
        f = loop.at(z)
        dz_fd = 1e-7 * abs(z)
        df = (loop.at(z + dz_fd) - loop.at(z - dz_fd)) / (2 * dz_fd)
        if df == 0:
            break
        dz = f / df
        z -= dz
        if abs(dz) < 1e-14 * abs(z):
            break
    # the leading root's modulus lies in [lo, hi] (count(lo) > 0, none beyond hi);
    # a circle found too close to a root to count leaves that bracket wider than
    # tol, and Newton's root inside it is the answer
    if not (np.isfinite(z) and lo - 10 * tol <= math.log(abs(z)) <= hi + 10 * tol):
        z = r * start / abs(start)  # Newton wandered off: keep the bracketed modulus
    sigma = 1000.0 * math.log(abs(z)) / dt
    angle = abs(math.atan2(z.imag, z.real))
    # a real root carries only round-off in its angle
    freq = 0.0 if angle < 1e-9 else 1000.0 * angle / (2 * math.pi * dt)
    return sigma, freq, unstable


@dataclass(frozen=True)
class GrowthRates:
    """Leading linear growth rate and frequency of every spatial mode of the
    homogeneous mean-field state (arrays over wave vectors in FFT order, shape
    ``config.lattice.shape``).

    Attributes
    ----------
    types : tuple of str
    k_vectors : ndarray, shape (*lattice, ndim), rad/mm
    k_norm : ndarray, shape lattice, rad/mm
    k_step : float, rad/mm
        Lattice wave-number step (as :class:`meshfield.theory.Dispersion`).
    sigma : ndarray, shape lattice, 1/s
        Growth rate ``ln|z| / dt`` of the leading root; ``-inf`` where every root
        is slower than ``sigma_floor``.
    frequency : ndarray, shape lattice, Hz
        ``|arg z| / (2 pi dt)`` of the leading root (0: a stationary mode; NaN
        with ``sigma = -inf``).
    n_unstable : ndarray of int, shape lattice
        Number of roots with ``|z| > 1`` (growing solutions, counted with their
        complex conjugates).
    sigma_floor : float, 1/s
        Slowest growth rate resolved (see :attr:`ImpulseResponse.sigma_floor`).
    n_distinct : int
        Distinct modes computed (wave vectors whose stencil transforms coincide
        share one).
    rates : ndarray, shape (T,), Hz
        The homogeneous stationary state analysed (the one nearest ``rates0``, if given).
    mu_eff : ndarray, shape (T,), mV
    responses : tuple of ImpulseResponse
    solutions : ndarray, shape (S, T), Hz
        Every homogeneous stationary state the search found, ``rates`` among them
        (:attr:`meshfield.theory.NetworkStationaryState.solutions`); another is
        analysed by passing it as ``rates0``.
    """

    types: tuple
    k_vectors: np.ndarray
    k_norm: np.ndarray
    k_step: float
    sigma: np.ndarray
    frequency: np.ndarray
    n_unstable: np.ndarray
    sigma_floor: float
    n_distinct: int
    rates: np.ndarray
    mu_eff: np.ndarray
    responses: tuple
    solutions: np.ndarray

    @property
    def unstable(self) -> bool:
        """True if some mode grows."""
        return bool(np.any(self.n_unstable > 0))

    @property
    def k_vector_peak(self) -> np.ndarray:
        """Wave vector (rad/mm) of the fastest-growing mode (first in FFT order)."""
        return self.k_vectors.reshape(-1, self.k_vectors.shape[-1])[int(np.argmax(self.sigma))]

    @property
    def k_peak(self) -> float:
        """``|k|`` (rad/mm) of the fastest-growing mode."""
        return float(np.sqrt(self.k_vector_peak @ self.k_vector_peak))

    @property
    def sigma_max(self) -> float:
        """Largest growth rate (1/s) over the modes."""
        return float(np.max(self.sigma))

    @property
    def frequency_peak(self) -> float:
        """Frequency (Hz) of the fastest-growing mode."""
        return float(self.frequency.ravel()[int(np.argmax(self.sigma))])

    def shells(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per shell ``m = round(|k| / k_step)``: ``(k, sigma, frequency)``, the
        fastest mode of the shell (``-inf``/NaN for a shell without modes)."""
        shell = wave_number_shell(self.k_norm, self.k_step).ravel() if np.isfinite(self.k_step) \
            else np.zeros(self.sigma.size, dtype=int)
        sig = np.full(shell.max() + 1, -np.inf)
        freq = np.full(shell.max() + 1, np.nan)
        for i, (m, s) in enumerate(zip(shell, self.sigma.ravel())):
            if s > sig[m] or (np.isnan(freq[m]) and s == sig[m]):
                sig[m], freq[m] = s, self.frequency.ravel()[i]
        k = np.arange(sig.size) * (self.k_step if np.isfinite(self.k_step) else 0.0)
        return k, sig, freq


def growth_rates(config: Any, *, rates0: np.ndarray | None = None,
                 progress: Callable[[int, int], None] | None = None) -> GrowthRates:
    """Growth rate and frequency of the leading root of every lattice mode.

    The homogeneous stationary state of the mesoscopic model (as
    :func:`meshfield.theory.dispersion` with ``level = "meso"``) is linearized
    with each population's :func:`impulse_response`, and the roots of
    ``det(I - G(k, z))`` (module docstring) are located per distinct mode (wave
    vectors whose stencil transforms coincide are computed once).

    Parameters
    ----------
    config : Config, or anything :func:`meshfield.config.load_config` accepts.
    rates0 : array_like, shape (T,), Hz, optional
        Starting point of the stationary-state search; of several solutions, the
        one nearest it in log rate is analysed.
    progress : callable, optional
        Called as ``progress(done, total)`` after each distinct mode (about
        0.03 s each; a 128 x 128 lattice has two thousand).

    Returns
    -------
    GrowthRates

    Raises
    ------
    TheoryInputError
        For an open lattice, bad population parameters,
        or a population without a stable stationary state of its own.
    """
    from ..config import Config, load_config
    from ..coupling import build_stencils
    from ..meso import history_length
    from ..propagators import membrane_propagators
    from .linear import lattice_wave_vectors, stencil_fourier
    from .stationary import stationary_rates_network

    if not isinstance(config, Config):
        config = load_config(config)
    if config.lattice.boundary != "periodic":
        raise TheoryInputError(
            f"lattice.boundary = {config.lattice.boundary!r}: the linear theory (MODEL.md §6) is that of a "
            f"homogeneous field, whose Fourier modes are eigenmodes only on a periodic lattice; allowed: 'periodic'")
    dt = config.run.dt
    pops = list(config.populations)
    T = len(pops)
    stencils = build_stencils(config)
    J = np.zeros((T, T))
    C = np.zeros((T, T))
    for s in stencils:
        J[s.target, s.source] = s.J
        C[s.target, s.source] = s.C
    windows = [history_length(p, dt) for p in pops]
    state = stationary_rates_network(pops, J, C, dt=dt, K=windows, hazard_rule="trapezoid", rates0=rates0)
    responses = tuple(impulse_response(p, dt, mu_eff=float(state.mu_eff[a]), K=windows[a])
                      for a, p in enumerate(pops))
    L = max(len(r.h) for r in responses)
    h = np.zeros((T, L))
    for a, r in enumerate(responses):
        h[a, :len(r.h)] = r.h
    # silent populations (no response) set no floor; with none responding, ten steps
    floor = max((r.sigma_floor for r in responses if math.isfinite(r.sigma_floor)),
                default=1000.0 * math.log(_TRUNCATION) / (10 * dt))
    r_floor = math.exp(floor * dt / 1000.0)

    shape = tuple(config.lattice.shape)
    dx = config.lattice.dx
    k_vectors = lattice_wave_vectors(shape, dx)
    # per stencil and distinct delay: sum_o kappa(o) exp(+i k.o dx) over the offsets of that delay
    per_term = []
    for s in stencils:
        prop = membrane_propagators(pops[s.target].tau_m, np.array([pops[s.source].tau_s]), dt)
        delays = np.unique(s.delays)
        fourier = []
        for d in delays:
            sel = s.delays == d
            part = SimpleNamespace(offsets=s.offsets[sel], weights=s.weights[sel])
            fourier.append(np.conj(stencil_fourier(part, shape, dx)).ravel())
        per_term.append((s.target, s.source, s.J * s.C * 1e-3, float(prop.P_im[0]), float(prop.P_sm[0]),
                         float(prop.P_ss[0]), delays, np.array(fourier)))
    n_modes = int(np.prod(shape))
    if per_term:
        finger = np.concatenate([t[7] for t in per_term], axis=0).T  # (modes, features)
        key = np.round(np.concatenate([finger.real, finger.imag], axis=1), 12)
        _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    else:
        first, inverse = np.zeros(1, dtype=int), np.zeros(n_modes, dtype=int)
    sigma_u = np.empty(len(first))
    freq_u = np.empty(len(first))
    count_u = np.empty(len(first), dtype=int)
    # The distinct modes come sorted by their stencil transforms, so the long-wave
    # ones (often the slowest to solve, with a weakly damped root) would all come
    # last; a golden-ratio interleaving spreads them, which keeps the progress
    # lines' ETA honest. Each mode is solved on its own: the order changes nothing.
    order = np.argsort((np.arange(len(first)) * 0.6180339887498949) % 1.0, kind="stable")
    for done, i in enumerate(order, start=1):
        terms = [(a, b, c, P_im, P_sm, P_ss, delays, fourier[:, first[i]])
                 for a, b, c, P_im, P_sm, P_ss, delays, fourier in per_term]
        sigma_u[i], freq_u[i], count_u[i] = _leading_root(_Loop(h, terms), dt, r_floor)
        if progress is not None:
            progress(done, len(first))
    inverse = np.asarray(inverse).ravel()
    k_norm = np.sqrt((k_vectors ** 2).sum(axis=-1))
    longest = max(shape)
    k_step = 2.0 * np.pi / (longest * dx) if longest > 1 else math.inf
    return GrowthRates(
        types=tuple(p.name for p in pops), k_vectors=k_vectors, k_norm=k_norm, k_step=k_step,
        sigma=sigma_u[inverse].reshape(shape), frequency=freq_u[inverse].reshape(shape),
        n_unstable=count_u[inverse].reshape(shape), sigma_floor=floor, n_distinct=len(first),
        rates=np.asarray(state.rates, dtype=float), mu_eff=np.asarray(state.mu_eff, dtype=float),
        responses=responses, solutions=np.asarray(state.solutions, dtype=float))
