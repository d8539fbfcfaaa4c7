"""Stationary mean-field theory of GLIF populations (MODEL.md §2, §4, §6).

The stationary state of a population that receives a constant total input is a
renewal process: a neuron's state is fixed by its age ``a`` (time since its last
spike). With the effective mean input ``mu_eff`` (mV; the external ``mu`` plus the
mean recurrent drive, see :func:`mean_input`) the membrane potential after a spike is

    u(a) = u_r                                              for a <= t_ref
    u(a) = mu_eff + (u_r - mu_eff) exp(-(a - t_ref)/tau_m)   for a >  t_ref

and the hazard is ``lambda(a) = c exp((u(a) - theta(a))/delta_u)`` (Hz), zero during
the refractory period. Adaptation enters through the quasi-renewal threshold

    theta(a) = u_th + eps_theta(a) + A int_a^inf theta_tilde(s) ds,
    theta_tilde(s) = delta_u (1 - exp(-eps_theta(s)/delta_u)),

the mean effect of all earlier spikes of the neuron at the stationary rate ``A``
(per ms inside the integral). The survivor function is
``S(a) = exp(-int_0^a lambda)`` and the stationary rate solves ``A = 1/int_0^inf S``,
self-consistently in ``A`` when there is adaptation.

Two flavours are provided:

* continuous time (:func:`stationary_rate`): the exact renewal theory, evaluated by
  composite Gauss-Legendre quadrature with an analytic tail (relative accuracy
  about 1e-12);
* discrete time (:func:`stationary_rate_discrete`): the exact fixed point of the
  mean-field (N -> infinity) limit of the mesoscopic update of MODEL.md §4 at step
  ``dt``, with the step conventions of the project (trapezoidal hazard, refractory
  steps, history window of length K with a free pool). A long mean-field run of the
  mesoscopic engine must reproduce it to round-off, which separates the
  discretization error (discrete vs continuous) from implementation errors
  (engine vs discrete theory). With ``hazard_rule="endpoint"`` the same function
  gives the exact stationary rate of the microscopic neuron (firing probability
  ``1 - exp(-lambda dt)`` with ``lambda`` at the end of the step), exact without
  adaptation and in the quasi-renewal approximation with it.

Rates are reported in Hz; ages and times in ms; potentials in mV. The population
parameters are read from any object with the attributes of a ``[populations.X]``
table (``mu, tau_m, t_ref, u_reset, u_th, c, delta_u, tau_theta, J_theta``; ``N``
only where stated). Nothing here uses MPI.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from numpy.polynomial import legendre
from scipy import optimize

from ..config import refractory_steps

__all__ = [
    "TheoryInputError",
    "DiscreteProfile",
    "NetworkStationaryState",
    "membrane_potential",
    "threshold",
    "hazard_free",
    "survivor",
    "renewal_rate",
    "stationary_rate",
    "renewal_rate_discrete",
    "stationary_profile_discrete",
    "stationary_rate_discrete",
    "mean_input",
    "stationary_rates_network",
    "psd_high_frequency_level",
]


class TheoryInputError(ValueError):
    """A parameter passed to the stationary theory is missing or out of range."""


# The hazard and the threshold relax as exp(-age/tau) for the membrane and every
# adaptation timescale; after 40 timescales the remainder (e^-40 ~ 4e-18, times
# amplitudes of order delta_u) is below double precision, so the hazard is constant
# (larger amplitudes get ln(amplitude/delta_u) timescales more: _relaxations).
_CONVERGED_TIMESCALES = 40.0

# Beyond a cumulative hazard of 100 the survivor function is below 4e-44; later
# ages cannot change the mean interval in double precision.
_NEGLIGIBLE_CUMULATIVE_HAZARD = 100.0

# Gauss-Legendre panels: 16 nodes integrate polynomials of degree 31 exactly. A panel
# is refined until exp(-Lambda) changes by at most e^-8 (lambda * h <= 8) and the log
# hazard by at most 2 across it, which keeps the quadrature error below 1e-13.
_GL_ORDER = 16
_MAX_HAZARD_TIMES_PANEL = 8.0
_MAX_LOG_HAZARD_RANGE = 2.0

# A panel whose hazard overflows (S = 0 inside it) needs no finer resolution.
_MAX_REFINEMENT = 4096
# Refined panels are checked again (a rise hidden between the coarse nodes shows
# only on the finer grid), up to this many times and this many nodes.
_REFINEMENT_PASSES = 4
_MAX_NODES = 4_000_000

# Upper end of the rates a network solver may try: log(1e7 Hz).
_LOG_MAX_RATE = math.log(1e7)

# The continuous hazard is capped at 1e250 per ms: a neuron under it fires within
# 1e-250 ms, so the mean interval cannot change in double precision, and the
# quadrature's sums of hazards (signed Gauss-Legendre weights) stay finite, where
# an overflowing hazard (inf - inf) made them NaN.
_LOG_MAX_HAZARD = math.log(1e250)

# Longest history window (steps) the discrete theory builds: its arrays take about
# 80 bytes per step (0.3 GiB here). The default window of 40 timescales reaches
# it for tau / dt above about 1e5.
_MAX_THEORY_K = 2**22

# One-dimensional root scans (facilitation, one-type networks): grid points per
# decade of rate, from _SCAN_LOWEST_HZ up to the largest possible rate.
_SCAN_PER_DECADE = 40
_SCAN_LOWEST_HZ = 1e-6

_HAZARD_RULES = ("trapezoid", "endpoint")


# ---------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Neuron:
    """Validated parameters of one population type (units of MODEL.md)."""

    mu: float
    tau_m: float
    t_ref: float
    u_reset: float
    u_th: float
    c: float
    delta_u: float
    tau_theta: np.ndarray
    J_theta: np.ndarray

    @property
    def adapting(self) -> bool:
        return bool(np.any(self.J_theta != 0.0))

    @property
    def facilitating(self) -> bool:
        """Some threshold kernel is negative: the rate may grow with the population's
        own activity, and the self-consistency may have several solutions."""
        return bool(np.any(self.J_theta < 0.0))

    @property
    def active_tau_theta(self) -> np.ndarray:
        """Adaptation timescales with a non-zero amplitude (ms)."""
        return self.tau_theta[self.J_theta != 0.0]


def _neuron(pop: Any) -> _Neuron:
    """Read and validate the population parameters from ``pop``'s attributes."""
    values = {}
    for name in ("mu", "tau_m", "t_ref", "u_reset", "u_th", "c", "delta_u"):
        if not hasattr(pop, name):
            raise TheoryInputError(f"population parameter '{name}' is missing")
        try:
            values[name] = float(getattr(pop, name))
        except (TypeError, ValueError):
            raise TheoryInputError(
                f"population parameter '{name}' = {getattr(pop, name)!r} is not a number"
            ) from None
        if not math.isfinite(values[name]):
            raise TheoryInputError(f"population parameter '{name}' = {values[name]} must be finite")
    for name in ("tau_m", "c", "delta_u"):
        if values[name] <= 0.0:
            raise TheoryInputError(f"population parameter '{name}' = {values[name]} must be > 0")
    if values["t_ref"] < 0.0:
        raise TheoryInputError(f"population parameter 't_ref' = {values['t_ref']} must be >= 0")
    kernel = {}
    for name in ("tau_theta", "J_theta"):
        value = getattr(pop, name, ())
        try:
            kernel[name] = np.atleast_1d(np.asarray(value, dtype=np.float64))
        except (TypeError, ValueError):
            raise TheoryInputError(f"population parameter '{name}' = {value!r} must be a list of numbers") from None
    tau_theta, J_theta = kernel["tau_theta"], kernel["J_theta"]
    if tau_theta.ndim != 1 or tau_theta.shape != J_theta.shape:
        raise TheoryInputError(
            f"population parameters 'tau_theta' ({tau_theta.tolist()}) and 'J_theta' "
            f"({J_theta.tolist()}) must be lists of the same length"
        )
    if np.any(~(tau_theta > 0.0)) or not np.all(np.isfinite(tau_theta)):
        raise TheoryInputError(
            f"population parameter 'tau_theta' = {tau_theta.tolist()} must hold finite values > 0"
        )
    if not np.all(np.isfinite(J_theta)):
        raise TheoryInputError(f"population parameter 'J_theta' = {J_theta.tolist()} must be finite")
    return _Neuron(tau_theta=tau_theta, J_theta=J_theta, **values)


def _number(name: str, value: Any, what: str, valid: Callable[[float], bool] = lambda x: True) -> float:
    """``value`` as a finite float satisfying ``valid``, or one TheoryInputError naming it."""
    try:
        ok = not isinstance(value, (bool, str, bytes)) and math.isfinite(float(value))
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not (ok and valid(float(value))):
        raise TheoryInputError(f"{name} = {value!r} must be {what}")
    return float(value)


def _mu_eff(nrn: _Neuron, mu_eff: float | None) -> float:
    if mu_eff is None:
        return nrn.mu
    return _number("mu_eff", mu_eff, "a finite potential in mV")


def _rate(rate_hz: float) -> float:
    return _number("rate_hz", rate_hz, "a finite rate >= 0 Hz", lambda x: x >= 0.0)


def _step(dt: float) -> float:
    return _number("dt", dt, "a time step > 0 ms", lambda x: x > 0.0)


# ---------------------------------------------------------------------------
# Age-dependent quantities (continuous time)
# ---------------------------------------------------------------------------


def _epsilon(nrn: _Neuron, ages: np.ndarray) -> np.ndarray:
    """eps_theta(a) = sum_j (J_j/tau_j) exp(-a/tau_j) in mV."""
    ages = np.asarray(ages, dtype=np.float64)
    eps = np.zeros_like(ages)
    for tau, J in zip(nrn.tau_theta, nrn.J_theta):
        if J != 0.0:
            eps += (J / tau) * np.exp(-ages / tau)
    return eps


def _theta_tilde(nrn: _Neuron, eps: np.ndarray) -> np.ndarray:
    """Quasi-renewal kernel delta_u (1 - exp(-eps/delta_u)) in mV; -inf where
    strong facilitation (eps < -709 delta_u) overflows it."""
    with np.errstate(over="ignore"):
        return -nrn.delta_u * np.expm1(-eps / nrn.delta_u)


def _threshold_tail(panels: "_Panels", nrn: _Neuron, end: float) -> tuple[np.ndarray, np.ndarray]:
    """``end + int_x theta_tilde`` (mV ms) to the last edge of ``panels``, at their
    nodes and edges (:meth:`_Panels.backward`).

    theta_tilde is at most delta_u, so the only infinity it takes is -inf, where
    strong facilitation overflows it; an integral over such ages is -inf, not the
    nan that ``inf - inf`` in the panel sums makes of it.
    """
    with np.errstate(invalid="ignore"):
        tails = panels.backward(_theta_tilde(nrn, _epsilon(nrn, panels.nodes)), end)
    return tuple(np.where(np.isnan(tail), -np.inf, tail) for tail in tails)


def _linear_tail(nrn: _Neuron, ages: np.ndarray) -> np.ndarray:
    """int_a^inf eps_theta(s) ds = sum_j J_j exp(-a/tau_j) (mV ms), shape of ``ages``.

    Used for ages where eps_theta is negligible against delta_u, so that
    theta_tilde = eps_theta up to a relative error eps_theta/(2 delta_u).
    """
    ages = np.asarray(ages, dtype=np.float64)
    return np.sum(nrn.J_theta[:, None] * np.exp(-ages.reshape(1, -1) / nrn.tau_theta[:, None]), axis=0).reshape(
        ages.shape
    )


def _membrane(nrn: _Neuron, ages: np.ndarray, mu_eff: float) -> np.ndarray:
    ages = np.asarray(ages, dtype=np.float64)
    free = mu_eff + (nrn.u_reset - mu_eff) * np.exp(-np.maximum(ages - nrn.t_ref, 0.0) / nrn.tau_m)
    return np.where(ages <= nrn.t_ref, nrn.u_reset, free)


def _log_hazard_per_ms(nrn: _Neuron, u: np.ndarray, theta: np.ndarray) -> np.ndarray:
    return math.log(nrn.c * 1e-3) + (u - theta) / nrn.delta_u


def _threshold(nrn: _Neuron, ages: np.ndarray, A: float, tail: np.ndarray) -> np.ndarray:
    """theta(a) (mV) from the tail int_a^inf theta_tilde (mV ms) and the rate A (per ms)."""
    return nrn.u_th + _epsilon(nrn, ages) + _rate_times(A, tail)


def _rate_times(A: float, tail):
    """``A * tail``, the threshold that a rate A builds from a kernel tail; 0 for a
    silent population (A = 0) also where strong facilitation overflows the tail to
    -inf (0 * inf would be nan: a silent population has no adaptation)."""
    return A * tail if A != 0.0 else np.zeros_like(tail)


def _log_hazard_and_hazard(
    nrn: _Neuron, ages: np.ndarray, mu_eff: float, theta: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Log hazard and hazard (per ms) of the continuous model; the hazard is 0 below t_ref
    and capped at exp(_LOG_MAX_HAZARD) (certain firing within 1e-250 ms)."""
    log_hazard = np.minimum(_log_hazard_per_ms(nrn, _membrane(nrn, ages, mu_eff), theta), _LOG_MAX_HAZARD)
    return log_hazard, np.where(ages >= nrn.t_ref, _exp(log_hazard), 0.0)


def _exp(x: np.ndarray) -> np.ndarray:
    # A hazard so large that it overflows means certain firing: inf is the right value.
    with np.errstate(over="ignore"):
        return np.exp(x)


# ---------------------------------------------------------------------------
# Composite Gauss-Legendre quadrature on panels
# ---------------------------------------------------------------------------


def _gl_cumulative_matrix(t: np.ndarray) -> np.ndarray:
    """Matrix W with (W f)_i = int_{-1}^{t_i} p(s) ds, p the interpolant of f at t."""
    n = t.size
    vander = legendre.legvander(t, n - 1)
    antiderivatives = legendre.legint(np.eye(n), lbnd=-1.0)
    return legendre.legval(t, antiderivatives).T @ np.linalg.inv(vander)


_GL_NODES, _GL_WEIGHTS = legendre.leggauss(_GL_ORDER)
_GL_CUMULATIVE = _gl_cumulative_matrix(_GL_NODES)


@dataclass(frozen=True)
class _Panels:
    """Consecutive panels [edges[p], edges[p+1]] with Gauss-Legendre nodes."""

    edges: np.ndarray  # (P+1,)

    @property
    def half(self) -> np.ndarray:
        return 0.5 * np.diff(self.edges)

    @property
    def nodes(self) -> np.ndarray:  # (P, n)
        return self.edges[:-1, None] + self.half[:, None] * (_GL_NODES + 1.0)

    def totals(self, f: np.ndarray) -> np.ndarray:
        """Integral of f (given at the nodes) over each panel, shape (P,)."""
        return self.half * (f @ _GL_WEIGHTS)

    def _within(self, f: np.ndarray) -> np.ndarray:
        return self.half[:, None] * (f @ _GL_CUMULATIVE.T)

    def forward(self, f: np.ndarray, start: float) -> tuple[np.ndarray, np.ndarray]:
        """``start + int_{edges[0]}^x f`` at the nodes (P, n) and the edges (P+1,)."""
        at_edges = start + np.concatenate(([0.0], np.cumsum(self.totals(f))))
        return at_edges[:-1, None] + self._within(f), at_edges

    def backward(self, f: np.ndarray, end: float) -> tuple[np.ndarray, np.ndarray]:
        """``end + int_x^{edges[-1]} f`` at the nodes (P, n) and the edges (P+1,)."""
        totals = self.totals(f)
        at_edges = end + np.concatenate((np.cumsum(totals[::-1])[::-1], [0.0]))
        return at_edges[1:, None] + totals[:, None] - self._within(f), at_edges


def _subdivide(breaks: np.ndarray, counts: np.ndarray) -> _Panels:
    """Split each interval of ``breaks`` into ``counts`` equal panels.

    The breaks appear in the edges exactly (no rounding), so values at requested
    ages can be read off the edges.
    """
    counts = np.asarray(counts, dtype=np.int64)
    first = np.concatenate(([0], np.cumsum(counts)))
    interval = np.repeat(np.arange(counts.size), counts)
    k = np.arange(first[-1]) - first[interval]
    left = breaks[interval] + (breaks[interval + 1] - breaks[interval]) * (k / counts[interval])
    return _Panels(np.concatenate((left, breaks[-1:])))


@dataclass(frozen=True)
class _RenewalQuadrature:
    """Cumulative hazard and threshold tail on an age grid (continuous time)."""

    mean_interval: float  # ms, int_0^inf S
    cumulative_hazard: np.ndarray  # int_0^a lambda at the requested ages
    threshold_tail: np.ndarray  # int_a^inf theta_tilde at the requested ages (mV ms)


def _panel_splits(panels: _Panels, hazard: np.ndarray, log_hazard: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """Pieces (>= 1) to split each panel into so that lambda h <= 8 and the log
    hazard changes by at most 2 across each piece; a hazard that overflowed (NaN)
    asks for the most, and the ``whole`` panels (refractory, or where S is already
    negligible) stay whole."""
    with np.errstate(invalid="ignore"):
        splits = np.maximum(np.ceil(hazard.max(axis=1) * 2.0 * panels.half / _MAX_HAZARD_TIMES_PANEL),
                            np.ceil(np.ptp(log_hazard, axis=1) / _MAX_LOG_HAZARD_RANGE))
    splits = np.nan_to_num(splits, nan=_MAX_REFINEMENT)
    splits[whole] = 1.0
    return np.maximum(splits, 1.0)


def _renewal_quadrature(
    nrn: _Neuron, mu_eff: float, rate_hz: float, ages: np.ndarray | None = None
) -> _RenewalQuadrature:
    """Mean interval int_0^inf S(a) da and, at ``ages``, Lambda(a) and int_a^inf theta_tilde.

    The hazard is smooth for a > t_ref, with structure on the scales tau_m and
    tau_theta_j only. A coarse grid (panels no longer than the shortest timescale
    still active) resolves the threshold tail and the cumulative hazard Lambda;
    every panel is then split so that exp(-Lambda), which varies on the scale
    1/lambda, is resolved too. Beyond t_ref + 40 max(tau) (more for large amplitudes:
    :func:`_relaxations`) the hazard is constant
    and the remaining integral of S is exp(-Lambda)/lambda.
    """
    A = rate_hz * 1e-3
    ages = np.zeros(0) if ages is None else np.asarray(ages, dtype=np.float64)
    if np.any(~(ages >= 0.0)) or not np.all(np.isfinite(ages)):
        raise TheoryInputError("ages must be finite and >= 0 ms")

    timescales, spans = _relaxations(nrn, mu_eff)
    ends = np.array([nrn.t_ref + span for span in spans])
    horizon = ends.max(initial=nrn.t_ref)
    start = min(nrn.t_ref, ages.min(initial=nrn.t_ref))
    inside = ages[(ages > start) & (ages < horizon)]
    breaks = np.unique(np.concatenate(([start, nrn.t_ref, horizon], ends, inside)))

    def threshold_hazard(x: np.ndarray, tail: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _log_hazard_and_hazard(nrn, x, mu_eff, _threshold(nrn, x, A, tail))

    tail_at_horizon = float(_linear_tail(nrn, horizon))
    if breaks.size > 1:
        lefts = breaks[:-1]
        spacing = np.array(
            [min([tau for tau, end in zip(timescales, ends) if end > left], default=np.inf) for left in lefts]
        )
        widths = np.diff(breaks)
        coarse_counts = np.where(np.isfinite(spacing), np.ceil(widths / np.minimum(spacing, widths)), 1)
        coarse = _subdivide(breaks, coarse_counts)
        x = coarse.nodes
        tail_nodes, tail_edges = _threshold_tail(coarse, nrn, tail_at_horizon)
        log_hazard, hazard = threshold_hazard(x, tail_nodes)
        _, cumulative = coarse.forward(hazard, 0.0)

        # Keep panels until S is negligible, but at least up to the last requested age.
        keep = coarse.edges.size - 1
        negligible = np.nonzero(
            (cumulative[:-1] > _NEGLIGIBLE_CUMULATIVE_HAZARD) & (coarse.edges[:-1] >= ages.max(initial=0.0))
        )[0]
        if negligible.size:
            keep = int(negligible[0])
        splits = _panel_splits(coarse, hazard, log_hazard, coarse.edges[1:] <= nrn.t_ref)
        fine = _subdivide(coarse.edges[: keep + 1], np.minimum(splits[:keep], _MAX_REFINEMENT))
        tail_end = tail_edges[keep]
        for refinement in range(_REFINEMENT_PASSES + 1):
            x = fine.nodes
            tail_nodes, tail_edges = _threshold_tail(fine, nrn, tail_end)
            log_hazard, hazard = threshold_hazard(x, tail_nodes)
            cumulative_nodes, cumulative = fine.forward(hazard, 0.0)
            # A coarse panel (tau_m long) can hide the whole rise of the hazard
            # between two of its nodes (a strong drive with a long tau_m): check the
            # refined panels with the same criteria while S still matters there.
            more = _panel_splits(fine, hazard, log_hazard, (fine.edges[1:] <= nrn.t_ref)
                                 | (cumulative[:-1] > _NEGLIGIBLE_CUMULATIVE_HAZARD))
            if more.max() <= 1.0 or fine.nodes.size * 2 > _MAX_NODES or refinement == _REFINEMENT_PASSES:
                break
            fine = _subdivide(fine.edges, np.minimum(more, max(1.0, _MAX_NODES / fine.nodes.size)))
        # Lambda never decreases. A panel still too coarse for a hazard that jumps
        # by hundreds of orders of magnitude (delta_u below ~1e-3 mV: a sharp
        # threshold) makes the interpolant overshoot below the previous value, even
        # below 0 (exp(-Lambda) overflowed); the running maximum bounds the error
        # by that panel's width.
        cumulative_nodes = np.maximum.accumulate(np.maximum(cumulative_nodes, 0.0).ravel()).reshape(
            cumulative_nodes.shape)
        integral = float(np.sum(fine.totals(np.exp(-cumulative_nodes))))
        end = fine.edges[-1]
        end_cumulative, end_tail = cumulative[-1], tail_edges[-1]
        grid_edges, grid_cumulative, grid_tail = fine.edges, cumulative, tail_edges
    else:
        integral = 0.0
        end, end_cumulative, end_tail = horizon, 0.0, tail_at_horizon
        grid_edges, grid_cumulative, grid_tail = np.array([horizon]), np.zeros(1), np.array([tail_at_horizon])

    _, end_hazard = threshold_hazard(np.array([end]), np.array([end_tail]))
    end_hazard = float(end_hazard[0])
    survival_end = math.exp(-end_cumulative)
    if end_hazard > 0.0:
        remainder = survival_end / end_hazard
    else:
        remainder = math.inf if survival_end > 0.0 else 0.0
    mean_interval = start + integral + remainder
    if not mean_interval > 0.0:
        raise TheoryInputError(
            f"the stationary rate is unbounded: without refractoriness (t_ref = {nrn.t_ref:g} ms) the hazard "
            f"at mu_eff = {mu_eff:g} mV exceeds double precision from age 0; give t_ref > 0")

    position = np.clip(np.searchsorted(grid_edges, ages), 0, grid_edges.size - 1)
    on_grid = (ages >= start) & (ages <= end)
    cumulative_at = np.where(
        on_grid, grid_cumulative[position], end_cumulative + end_hazard * np.maximum(ages - end, 0.0)
    )
    cumulative_at = np.where(ages < nrn.t_ref, 0.0, cumulative_at)
    tail_at = np.where(on_grid, grid_tail[position], _linear_tail(nrn, ages))
    return _RenewalQuadrature(mean_interval, cumulative_at, tail_at)


# ---------------------------------------------------------------------------
# Public continuous-time functions
# ---------------------------------------------------------------------------


def membrane_potential(pop: Any, ages: np.ndarray, mu_eff: float | None = None) -> np.ndarray:
    """Membrane potential ``u(a)`` (mV) of a neuron of age ``a`` (ms) under constant input.

    ``u = u_reset`` for ``a <= t_ref``, then relaxes to ``mu_eff`` with ``tau_m``.
    ``mu_eff`` defaults to ``pop.mu`` (no recurrent input).
    """
    nrn = _neuron(pop)
    unique, inverse, shape = _sorted_query(ages)
    return _membrane(nrn, unique, _mu_eff(nrn, mu_eff))[inverse].reshape(shape)


def _sorted_query(ages: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    try:
        ages = np.asarray(ages, dtype=np.float64)
    except (TypeError, ValueError):
        raise TheoryInputError(f"ages = {ages!r} must be numbers (ms)") from None
    if not np.all(np.isfinite(ages)) or np.any(ages < 0.0):
        raise TheoryInputError("ages must be finite and >= 0 ms")
    unique, inverse = np.unique(ages.ravel(), return_inverse=True)
    return unique, inverse, ages.shape


def threshold(pop: Any, ages: np.ndarray, rate_hz: float = 0.0) -> np.ndarray:
    """Quasi-renewal threshold ``theta(a)`` (mV) at the stationary rate ``rate_hz`` (Hz).

    ``theta(a) = u_th + eps_theta(a) + A int_a^inf theta_tilde(s) ds`` with ``A`` the
    rate in spikes per ms and ``theta_tilde = delta_u (1 - exp(-eps_theta/delta_u))``.
    Ages in ms, any shape.
    """
    nrn = _neuron(pop)
    unique, inverse, shape = _sorted_query(ages)
    tail = _renewal_quadrature(nrn, nrn.mu, 0.0, unique).threshold_tail
    return _threshold(nrn, unique, _rate(rate_hz) * 1e-3, tail)[inverse].reshape(shape)


def hazard_free(
    pop: Any, ages: np.ndarray, mu_eff: float | None = None, rate_hz: float = 0.0
) -> np.ndarray:
    """Hazard ``lambda(a) = c exp((u(a) - theta(a))/delta_u)`` in Hz under constant input.

    Zero for ages below ``t_ref`` (absolute refractoriness).

    Parameters
    ----------
    pop : population parameters.
    ages : array_like, ms, any shape.
    mu_eff : float, mV, optional
        Total constant input (default ``pop.mu``).
    rate_hz : float, Hz
        Stationary rate entering the quasi-renewal threshold (irrelevant without
        adaptation).

    Returns
    -------
    ndarray, Hz, shape of ``ages``.
    """
    nrn = _neuron(pop)
    mu_eff = _mu_eff(nrn, mu_eff)
    unique, inverse, shape = _sorted_query(ages)
    tail = _renewal_quadrature(nrn, mu_eff, 0.0, unique).threshold_tail
    _, hazard = _log_hazard_and_hazard(nrn, unique, mu_eff, _threshold(nrn, unique, _rate(rate_hz) * 1e-3, tail))
    return 1e3 * hazard[inverse].reshape(shape)


def survivor(pop: Any, ages: np.ndarray, mu_eff: float | None = None, rate_hz: float = 0.0) -> np.ndarray:
    """Survivor function ``S(a) = exp(-int_0^a lambda)`` (dimensionless) under constant input.

    Same parameters as :func:`hazard_free`. Values below about 1e-43 are returned
    from a linear extrapolation of the cumulative hazard (they are zero for any
    practical purpose).
    """
    nrn = _neuron(pop)
    unique, inverse, shape = _sorted_query(ages)
    quad = _renewal_quadrature(nrn, _mu_eff(nrn, mu_eff), _rate(rate_hz), unique)
    return np.exp(-quad.cumulative_hazard)[inverse].reshape(shape)


def renewal_rate(pop: Any, rate_hz: float = 0.0, mu_eff: float | None = None) -> float:
    """Inverse mean inter-spike interval ``1/int_0^inf S(a) da`` in Hz.

    The threshold is built with the given ``rate_hz`` (Hz); the stationary rate is
    the fixed point ``rate_hz = renewal_rate(pop, rate_hz)`` (see
    :func:`stationary_rate`). Without adaptation ``rate_hz`` has no effect.
    """
    nrn = _neuron(pop)
    quad = _renewal_quadrature(nrn, _mu_eff(nrn, mu_eff), _rate(rate_hz))
    return 1e3 / quad.mean_interval


def _max_rate_hz(nrn: _Neuron, dt: float | None) -> float:
    """An upper bound of any stationary rate (Hz): the mean interval is at least
    t_ref (continuous) or n_ref + 1 steps (discrete); 1e7 Hz without refractoriness."""
    if dt is not None:
        return 1e3 / (dt * (_refractory_steps(nrn, dt) + 1))
    return 1e3 / nrn.t_ref if nrn.t_ref > 0.0 else math.exp(_LOG_MAX_RATE)


def _roots(residual: Callable[[float], float], max_rate: float) -> list[float]:
    """Every root (Hz) of ``residual`` on [0, max_rate] where it changes sign.

    ``residual(A) = A - F(A)`` is negative at 0 (or 0 there) and positive above
    the largest possible rate ``max_rate``. It is evaluated at 0 and at
    ``_SCAN_PER_DECADE`` log-spaced rates per decade from ``_SCAN_LOWEST_HZ`` to
    just above ``max_rate``; each sign change is refined by Brent's method. Two
    roots closer together than the grid spacing (2.5 % in rate) can be missed.
    """
    top = max_rate * 1.001
    decades = max(math.log10(top / _SCAN_LOWEST_HZ), 1.0)
    grid = np.concatenate(([0.0], np.geomspace(_SCAN_LOWEST_HZ, top, int(math.ceil(decades * _SCAN_PER_DECADE)) + 1)))
    values = np.array([residual(float(a)) for a in grid])
    if not np.all(np.isfinite(values)):
        bad = grid[~np.isfinite(values)][0]
        raise TheoryInputError(f"the rate equation is not finite at A = {bad:g} Hz (check the parameters)")
    roots = []
    for a, b, fa, fb in zip(grid[:-1], grid[1:], values[:-1], values[1:]):
        if fa == 0.0:
            roots.append(float(a))
        elif fa * fb < 0.0:
            roots.append(optimize.brentq(residual, a, b, xtol=1e-300, rtol=4.0 * np.finfo(float).eps, maxiter=200))
    return roots


def _self_consistent(rate_of: Callable[[float], float], nrn: _Neuron, max_rate: float) -> float:
    """Fixed point ``A = rate_of(A)`` (Hz).

    Without facilitation (every ``J_theta >= 0``) ``rate_of`` does not increase
    with A, so the only root lies in [0, rate_of(0)] (Brent's method). With
    facilitation there may be several; all are found by a scan
    (:func:`_roots`), and more than one is an error naming them.
    """
    r0 = rate_of(0.0)
    if not nrn.adapting or (r0 == 0.0 and not nrn.facilitating):
        return r0
    residual = lambda A: A - rate_of(A)  # noqa: E731
    if not nrn.facilitating:
        return optimize.brentq(residual, 0.0, r0, xtol=1e-15 * r0, rtol=4.0 * np.finfo(float).eps, maxiter=200)
    roots = _roots(residual, max_rate)
    if not roots:
        raise TheoryInputError(f"no stationary rate found below the largest possible rate {max_rate:g} Hz")
    if len(roots) > 1:
        raise TheoryInputError(
            f"several stationary rates solve the self-consistency with facilitation (J_theta < 0): "
            f"{', '.join(f'{r:.6g}' for r in roots)} Hz; stationary_rates_network returns all of them"
        )
    return roots[0]


def stationary_rate(pop: Any, mu_eff: float | None = None) -> float:
    """Stationary rate (Hz) of the continuous-time renewal theory.

    Solves ``A = 1/int_0^inf S(a) da`` with the quasi-renewal threshold, by Brent's
    method on ``A - renewal_rate(A)``. With facilitation (some ``J_theta < 0``)
    the equation may have several solutions: all are searched for on a grid of
    rates, and more than one raises :class:`TheoryInputError` naming them
    (:func:`stationary_rates_network` returns them all).

    Parameters
    ----------
    pop : population parameters.
    mu_eff : float, mV, optional
        Total constant input (default ``pop.mu``; see :func:`mean_input`).

    Returns
    -------
    float, Hz.
    """
    nrn = _neuron(pop)
    mu_eff = _mu_eff(nrn, mu_eff)
    return _self_consistent(lambda A: 1e3 / _renewal_quadrature(nrn, mu_eff, A).mean_interval, nrn,
                            _max_rate_hz(nrn, None))


# ---------------------------------------------------------------------------
# Discrete time: the fixed point of the mesoscopic mean-field update
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DiscreteProfile:
    """Stationary cohort profile of the discrete-time mean-field model.

    Index ``a = 0..K`` is the age in steps at the end of a step (a cohort created
    by the spikes of step s has age t - s at the end of step t). All arrays have
    shape ``(K + 1,)``.

    Attributes
    ----------
    rate_hz : float
        Stationary rate A (Hz) the profile was built with.
    dt : float
        Time step (ms).
    n_ref : int
        Refractory steps (``t_ref`` in whole steps, halves up: :func:`meshfield.config.refractory_steps`).
    K : int
        Length of the history window (steps); ages above K are the free pool.
    u : ndarray, mV
        Cohort membrane potential (``u_reset`` for ``a <= n_ref``).
    theta : ndarray, mV
        Cohort threshold (including the mean effect of older spikes).
    hazard : ndarray, Hz
        Hazard at the end of the step (0 for refractory ages).
    P : ndarray
        Firing probability in the step that brings the cohort to age a (P[0] = 0).
    survival : ndarray
        Probability to reach age a without firing, S_a = prod_{b<=a} (1 - P_b).
    m : ndarray
        Expected fraction of the population in the cohort of age a after the
        step's update, ``A dt S_a`` (``m[0]`` is the fraction that fired).
    free_fraction : float
        Expected fraction in the free pool after the step (all ages >= K; the
        cohort of age K has just been moved there).
    free_hazard : float
        Constant hazard of the free pool (Hz).
    theta_old : float
        Linear threshold contribution of the activity older than K steps (mV).
    """

    rate_hz: float
    dt: float
    n_ref: int
    K: int
    u: np.ndarray
    theta: np.ndarray
    hazard: np.ndarray
    P: np.ndarray
    survival: np.ndarray
    m: np.ndarray
    free_fraction: float
    free_hazard: float
    theta_old: float


def _free_stay_over_leave(free_hazard: float, dt: float) -> float:
    """(1 - P_free)/P_free for the constant free-pool hazard (per ms; inf if it vanishes)."""
    x = free_hazard * dt
    if x == 0.0:
        return math.inf
    return math.exp(-x) / -math.expm1(-x)


def _refractory_steps(nrn: _Neuron, dt: float) -> int:
    return refractory_steps(nrn.t_ref, dt)


def _relaxations(nrn: _Neuron, mu_eff: float) -> tuple[list[float], list[float]]:
    """The relaxing timescales (ms: each active tau_theta, and tau_m unless u starts
    at its fixed point) and the age span (ms) after which each has converged: 40
    timescales, plus ln(amplitude/delta_u) more for an amplitude (J_theta/tau_theta
    or |mu_eff - u_reset|, mV) above delta_u, so that what is left of it in the log
    hazard stays below e^-40."""
    taus = [float(t) for t in nrn.active_tau_theta]
    amplitudes = [abs(float(J)) / float(t) for J, t in zip(nrn.J_theta[nrn.J_theta != 0.0], taus)]
    if nrn.u_reset != mu_eff:
        taus.append(nrn.tau_m)
        amplitudes.append(abs(mu_eff - nrn.u_reset))
    spans = [tau * (_CONVERGED_TIMESCALES + max(0.0, math.log(amp / nrn.delta_u)) if amp > 0 else
                    _CONVERGED_TIMESCALES) for tau, amp in zip(taus, amplitudes)]
    return taus, spans


def _history_length(nrn: _Neuron, dt: float, mu_eff: float, K: int | None, hazard_rule: str) -> int:
    n_ref = _refractory_steps(nrn, dt)
    if hazard_rule not in _HAZARD_RULES:
        raise TheoryInputError(f"hazard_rule = {hazard_rule!r}; allowed: {', '.join(_HAZARD_RULES)}")
    if K is None:
        _, spans = _relaxations(nrn, mu_eff)
        longest = max(spans, default=0.0)
        K = n_ref + 1 + int(math.ceil(longest / dt))
        if K > _MAX_THEORY_K:
            raise TheoryInputError(
                f"the default window K = {K} steps ({longest:g} ms: 40 or more times the longest of tau_m and "
                f"tau_theta, at dt = {dt:g} ms) exceeds the {_MAX_THEORY_K} steps the discrete theory builds; "
                "pass an explicit K (the engine's window) or a larger dt"
            )
        return K
    if hazard_rule != "trapezoid":
        raise TheoryInputError("K (the mesoscopic history window) applies only to hazard_rule='trapezoid'")
    return _explicit_window(nrn, dt, K, _MAX_THEORY_K)


def _explicit_window(nrn: _Neuron, dt: float, K: Any, limit: int, note: str = "") -> int:
    """A history window ``K`` given by the caller: a whole number of steps beyond
    the refractory steps and at most ``limit``; ``note`` follows the limit in
    the message."""
    n_ref = _refractory_steps(nrn, dt)
    return int(_number("K", K, f"a whole number of steps from n_ref + 1 = {n_ref + 1} to {limit}{note}",
                       lambda k: k == int(k) and n_ref < k <= limit))


@dataclass(frozen=True)
class _DiscreteCohorts:
    """The rate-independent part of the discrete stationary cohort profile.

    The thresholds depend on the rate A only through the factor A dt in front of
    the sums over older cohorts, so those sums are computed once per input.
    """

    nrn: _Neuron
    dt: float
    n_ref: int
    K: int
    hazard_rule: str
    mu_eff: float
    u: np.ndarray  # (K+1,) mV
    eps: np.ndarray  # (K+1,) mV, eps_theta(a dt)
    older_in_window: np.ndarray  # (K+1,) mV, sum_{a < a' <= K} theta_tilde(a' dt)
    older_than_window: float  # mV, sum_{a' > K} eps_theta(a' dt)

    def _prefix(self, rate_hz: float, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Threshold (mV), hazard (per ms) and step hazards of ages 0..length-1."""
        A_step = rate_hz * 1e-3 * self.dt
        theta = (
            self.nrn.u_th + self.eps[:length]
            + _rate_times(A_step, self.older_in_window[:length] + self.older_than_window)
        )
        # capped as in the continuous theory: the step's firing probability is 1
        # either way, and the hazard in Hz of the profile stays finite
        hazard = _exp(np.minimum(_log_hazard_per_ms(self.nrn, self.u[:length], theta), _LOG_MAX_HAZARD))
        hazard[: self.n_ref + 1] = 0.0
        if self.hazard_rule == "trapezoid":
            step_hazard = 0.5 * (hazard[:-1] + hazard[1:]) * self.dt
        else:
            step_hazard = hazard[1:] * self.dt
        return theta, hazard, step_hazard

    def _free_hazard(self, rate_hz: float) -> float:
        """Constant hazard of the free pool (per ms): membrane mu_eff, threshold u_th + theta_old."""
        theta_old = float(_rate_times(rate_hz * 1e-3 * self.dt, np.float64(self.older_than_window)))
        return float(_exp(_log_hazard_per_ms(self.nrn, self.mu_eff, self.nrn.u_th + theta_old)))

    def renewal_rate_hz(self, rate_hz: float) -> float:
        """``1/(dt sum_a S_a)`` in Hz with the thresholds built at ``rate_hz`` (Hz).

        Ages are added in doubling blocks until the survival is negligible
        (cumulative hazard above 100, S < 4e-44) or the window is complete: a
        long window costs only as much as the ages that matter.
        """
        length = min(self.K + 1, 1024)
        while True:
            _, _, step_hazard = self._prefix(rate_hz, length)
            cumulative = np.concatenate(([0.0], np.cumsum(step_hazard)))
            total = float(np.sum(np.exp(-cumulative)))
            if length == self.K + 1:
                survival_K = math.exp(-cumulative[-1])
                if survival_K > 0.0:
                    total += survival_K * _free_stay_over_leave(self._free_hazard(rate_hz), self.dt)
                return 1e3 / (self.dt * total)
            if cumulative[-1] > _NEGLIGIBLE_CUMULATIVE_HAZARD:
                return 1e3 / (self.dt * total)
            length = min(2 * length, self.K + 1)

    def profile(self, rate_hz: float) -> DiscreteProfile:
        """Cohort profile with the thresholds built at the rate ``rate_hz`` (Hz)."""
        A_step = rate_hz * 1e-3 * self.dt
        theta, hazard, step_hazard = self._prefix(rate_hz, self.K + 1)
        survival = np.exp(np.concatenate(([0.0], -np.cumsum(step_hazard))))
        free_hazard = self._free_hazard(rate_hz)
        free_fraction = 0.0
        if A_step == 0.0:
            free_fraction = 1.0  # silent: every neuron is in the free pool
        elif survival[-1] > 0.0:
            free_fraction = A_step * survival[-1] * (1.0 + _free_stay_over_leave(free_hazard, self.dt))
        return DiscreteProfile(
            rate_hz=rate_hz,
            dt=self.dt,
            n_ref=self.n_ref,
            K=self.K,
            u=self.u,
            theta=theta,
            hazard=hazard * 1e3,
            P=np.concatenate(([0.0], -np.expm1(-step_hazard))),
            survival=survival,
            m=A_step * survival,
            free_fraction=free_fraction,
            free_hazard=free_hazard * 1e3,
            theta_old=A_step * self.older_than_window,
        )


def _discrete_cohorts(nrn: _Neuron, dt: float, mu_eff: float, K: int | None, hazard_rule: str) -> _DiscreteCohorts:
    n_ref = _refractory_steps(nrn, dt)
    K = _history_length(nrn, dt, mu_eff, K, hazard_rule)
    ages = np.arange(K + 1)

    # Closed form of u_a = u_{a-1} P_mm + mu_eff (1 - P_mm) from u_{n_ref} = u_reset.
    p_mm = math.exp(-dt / nrn.tau_m)
    u = mu_eff + (nrn.u_reset - mu_eff) * p_mm ** np.maximum(ages - n_ref, 0)
    u[: n_ref + 1] = nrn.u_reset

    eps = _epsilon(nrn, ages * dt)
    tilde = _theta_tilde(nrn, eps)
    older_in_window = np.concatenate((np.cumsum(tilde[:0:-1])[::-1], [0.0]))
    decay = np.exp(-dt / nrn.tau_theta)
    older_than_window = float(
        np.sum((nrn.J_theta / nrn.tau_theta) * decay ** (K + 1) / -np.expm1(-dt / nrn.tau_theta))
    )
    return _DiscreteCohorts(nrn, dt, n_ref, K, hazard_rule, mu_eff, u, eps, older_in_window, older_than_window)


def renewal_rate_discrete(
    pop: Any,
    dt: float,
    rate_hz: float = 0.0,
    mu_eff: float | None = None,
    K: int | None = None,
    hazard_rule: str = "trapezoid",
) -> float:
    """Discrete-time inverse mean interval ``1/(dt sum_a S_a)`` (Hz) with the threshold built at ``rate_hz``.

    See :func:`stationary_rate_discrete` for the model and the parameters; the
    stationary rate is the fixed point ``rate_hz = renewal_rate_discrete(..., rate_hz)``.
    """
    nrn = _neuron(pop)
    cohorts = _discrete_cohorts(nrn, _step(dt), _mu_eff(nrn, mu_eff), K, hazard_rule)
    return cohorts.renewal_rate_hz(_rate(rate_hz))


def stationary_rate_discrete(
    pop: Any,
    dt: float,
    mu_eff: float | None = None,
    K: int | None = None,
    hazard_rule: str = "trapezoid",
) -> float:
    """Stationary rate (Hz) of the discrete-time mean-field model at step ``dt``.

    This is the exact fixed point of the mesoscopic update of MODEL.md §4 in the
    mean-field limit (``n = n_bar``) with constant input, so a long mean-field run
    of the engine must reproduce it to round-off.

    Derivation. Let the stationary rate be A (per ms), so a fraction ``A dt`` of the
    population fires in every step and founds a new cohort. Index cohorts by their
    age a in steps at the end of a step. A cohort is refractory for ages
    ``1..n_ref`` (``n_ref``: ``t_ref`` in whole steps, halves up; u held at ``u_reset``, hazard 0);
    from ``u_{n_ref} = u_reset`` its membrane follows
    ``u_a = u_{a-1} P_mm + mu_eff (1 - P_mm)`` (the common increment per step with
    synaptic currents at their steady state is ``mu_eff (1 - P_mm)`` because
    ``P_sm + P_im = tau_m (1 - P_mm)``). Its hazard at the end of the step is
    ``lambda_a = c 1e-3 exp((u_a - theta_a)/delta_u)`` per ms, zero for
    ``a <= n_ref`` (in particular ``lambda_0 = 0`` for the new cohort), and it loses
    the fraction ``P_a = 1 - exp(-(lambda_{a-1} + lambda_a) dt/2)`` in that step
    (trapezoidal rule). Its survivors are ``m_a = A dt S_a`` with
    ``S_0 = 1``, ``S_a = prod_{b=1..a} (1 - P_b)``. Cohorts older than K steps form
    the free pool, which has membrane ``mu_eff`` (the free membrane potential at
    steady state), threshold ``u_th + theta_old`` and the constant hazard
    ``lambda_free``, hence ``P_free = 1 - exp(-lambda_free dt)`` and survival
    ``S_a = S_K (1 - P_free)^(a - K)`` for ``a > K``. Every neuron belongs to
    exactly one age class, so ``sum_{a>=0} m_a = 1``, i.e.

        A dt [ sum_{a=0..K} S_a + S_K (1 - P_free)/P_free ] = 1.

    (Equivalently, after a step the window holds ages 0..K-1 and the free pool
    ``x = m_K / P_free`` holds ages >= K, which is the engine's stationary state.)
    The thresholds are

        theta_a = u_th + eps_theta(a dt) + A dt sum_{a < a' <= K} theta_tilde(a' dt) + theta_old,
        theta_old = A dt sum_{a' > K} eps_theta(a' dt)
                  = A dt sum_j (J_j/tau_j) r_j^(K+1)/(1 - r_j),   r_j = exp(-dt/tau_j),

    i.e. cohorts inside the window act through the quasi-renewal kernel and the
    activity older than K steps acts linearly, each spike of step s counting
    ``eps_theta((t - s) dt)`` at the end of step t (as a neuron's own threshold
    does). Because A enters the thresholds, A is found self-consistently by Brent's
    method.

    Parameters
    ----------
    pop : population parameters.
    dt : float, ms
        Time step.
    mu_eff : float, mV, optional
        Total constant input (default ``pop.mu``).
    K : int, optional
        History window in steps (must exceed ``n_ref``). ``None``: a window so long
        that the free pool sees the converged hazard (40 times the longest of
        ``tau_m`` and the adaptation timescales), i.e. the model without truncation.
    hazard_rule : {"trapezoid", "endpoint"}
        ``"trapezoid"``: the mesoscopic rule above. ``"endpoint"``: the microscopic
        rule ``P_a = 1 - exp(-lambda_a dt)`` (no window; ``K`` must be ``None``);
        exact for the microscopic neuron without adaptation.

    Returns
    -------
    float, Hz.
    """
    return _stationary_profile(pop, dt, mu_eff, K, hazard_rule).rate_hz


def _stationary_profile(
    pop: Any, dt: float, mu_eff: float | None, K: int | None, hazard_rule: str
) -> DiscreteProfile:
    nrn = _neuron(pop)
    dt = _step(dt)
    cohorts = _discrete_cohorts(nrn, dt, _mu_eff(nrn, mu_eff), K, hazard_rule)
    rate = _self_consistent(cohorts.renewal_rate_hz, nrn, _max_rate_hz(nrn, dt))
    return cohorts.profile(rate)


def stationary_profile_discrete(
    pop: Any,
    dt: float,
    mu_eff: float | None = None,
    K: int | None = None,
    hazard_rule: str = "trapezoid",
) -> DiscreteProfile:
    """Stationary cohort profile (u, theta, hazard, survivors per age) of the discrete model.

    Same parameters as :func:`stationary_rate_discrete`; the profile is built at
    the stationary rate, so cohort-by-cohort comparisons with an engine state are
    possible.
    """
    return _stationary_profile(pop, dt, mu_eff, K, hazard_rule)


# ---------------------------------------------------------------------------
# Homogeneous network
# ---------------------------------------------------------------------------


def _population_list(pops: Sequence[Any] | Mapping[str, Any]) -> list[Any]:
    return list(pops.values()) if isinstance(pops, Mapping) else list(pops)


def _coupling_matrix(name: str, value: Any, n_types: int) -> np.ndarray:
    matrix = np.asarray(value, dtype=np.float64)
    if matrix.shape != (n_types, n_types) or not np.all(np.isfinite(matrix)):
        raise TheoryInputError(
            f"{name} must be a finite ({n_types}, {n_types}) array indexed [target, source]; "
            f"got shape {matrix.shape}"
        )
    return matrix


def mean_input(
    pops: Sequence[Any] | Mapping[str, Any], J: np.ndarray, C: np.ndarray, rates_hz: np.ndarray
) -> np.ndarray:
    """Stationary mean drive ``mu_eff`` (mV) of every type of a homogeneous field.

    ``mu_eff_a = mu_a + tau_m_a sum_b J_ab C_ab A_b / 1000``.

    Units: a type-a neuron receives C_ab inputs of type b, each a spike train of
    A_b/1000 spikes per ms; each spike adds the area J_ab (mV, MODEL.md §2: the
    integral of y over one synaptic event) to the synaptic variable, so the mean
    synaptic drive is ``y_b = J_ab C_ab A_b/1000`` (mV/ms), independent of tau_s,
    and the fixed point of ``tau_m du/dt = -u + mu + tau_m sum_b y_b`` is
    ``mu + tau_m sum_b y_b``. The kernels are normalized (weights sum to 1) and
    delays do not matter at steady state, so the result is independent of the
    kernel shapes and delays; it also holds for a single site.

    Parameters
    ----------
    pops : sequence (or mapping, in type order) of population parameters, length T.
    J : array_like, shape (T, T), mV
        Weights ``J[target, source]``.
    C : array_like, shape (T, T)
        In-degrees ``C[target, source]``.
    rates_hz : array_like, shape (T,), Hz

    Returns
    -------
    ndarray, shape (T,), mV.
    """
    neurons = [_neuron(p) for p in _population_list(pops)]
    T = len(neurons)
    rates = np.asarray(rates_hz, dtype=np.float64)
    if rates.shape != (T,) or not np.all(np.isfinite(rates)) or np.any(rates < 0.0):
        raise TheoryInputError(f"rates_hz must hold {T} finite rates >= 0 Hz; got {rates_hz!r}")
    return _mean_input(neurons, _coupling_matrix("J", J, T) * _coupling_matrix("C", C, T), rates)


def _mean_input(neurons: list[_Neuron], JC: np.ndarray, rates_hz: np.ndarray) -> np.ndarray:
    mu = np.array([n.mu for n in neurons])
    tau_m = np.array([n.tau_m for n in neurons])
    return mu + tau_m * (JC @ rates_hz) * 1e-3


@dataclass(frozen=True)
class NetworkStationaryState:
    """Self-consistent stationary state(s) of a homogeneous network.

    Attributes
    ----------
    rates : ndarray, shape (T,), Hz
        The solution reached from the default start (the uncoupled rates), or the
        solution nearest ``rates0`` in log rate when that is given (for one type,
        the solution nearest the start in either case).
    mu_eff : ndarray, shape (T,), mV
        Total mean input at ``rates``.
    solutions : ndarray, shape (S, T), Hz
        All distinct solutions found by the multi-start search, sorted by the
        rate of the first type.
    multiple : bool
        True if more than one distinct solution was found (for example a bistable
        pair, which also has an unstable symmetric solution).
    """

    rates: np.ndarray
    mu_eff: np.ndarray
    solutions: np.ndarray
    multiple: bool


def stationary_rates_network(
    pops: Sequence[Any] | Mapping[str, Any],
    J: np.ndarray,
    C: np.ndarray,
    *,
    dt: float | None = None,
    K: int | Sequence[int | None] | None = None,
    hazard_rule: str = "trapezoid",
    rates0: np.ndarray | None = None,
) -> NetworkStationaryState:
    """Self-consistent stationary rates (Hz) of all types of a homogeneous field or a single site.

    Solves ``A_a = F_a(mu_eff_a(A), A_a)`` for all types a, where F is the renewal
    rate (:func:`renewal_rate`, or :func:`renewal_rate_discrete` when ``dt`` is
    given) with the type's own rate in its quasi-renewal threshold and
    ``mu_eff = mean_input(pops, J, C, A)``. The equations are solved in the
    logarithms of the rates with ``scipy.optimize.root`` (hybrid Powell) from
    several starts: ``rates0`` (default: the uncoupled rates at ``mu``), and the
    corners of the box spanned per type by 0.01 Hz and the rate at a drive of
    ``u_th + 5 delta_u`` (for more than 4 types, 8 points on the diagonal of that
    box instead). Distinct converged solutions are all reported; more than one
    sets ``multiple``. The search is not exhaustive: it finds the solutions of a
    bistable pair, not necessarily every solution of a large network. For one
    type the equation is one-dimensional and every solution, stable or unstable,
    is found by a scan of 40 rates per decade from 1e-6 Hz to the largest
    possible rate (1/t_ref), refined by Brent's method (two solutions within
    2.5 % of each other could be missed); ``rates`` is then the solution nearest
    the primary start in log rate.

    Parameters
    ----------
    pops : sequence (or mapping, in type order) of population parameters, length T.
    J, C : array_like, shape (T, T)
        Weights (mV) and in-degrees, indexed ``[target, source]``.
    dt : float, ms, optional
        If given, use the discrete-time model at this step (see
        :func:`stationary_rate_discrete`).
    K : int or sequence of (int or None), optional
        History windows per type (discrete model only).
    hazard_rule : {"trapezoid", "endpoint"}
        Discrete model only.
    rates0 : array_like, shape (T,), Hz, optional
        Primary starting point; ``rates`` is then the solution found nearest it in
        log rate (the solver may reach another from there: from (30, 0.1) Hz a
        bistable pair's solver reaches the state where the second type wins).

    Returns
    -------
    NetworkStationaryState
    """
    neurons = [_neuron(p) for p in _population_list(pops)]
    T = len(neurons)
    if T == 0:
        raise TheoryInputError("pops must hold at least one population")
    in_degrees = _coupling_matrix("C", C, T)
    if np.any(in_degrees < 0) or np.any(in_degrees != np.round(in_degrees)):
        raise TheoryInputError(f"C = {in_degrees.tolist()} must hold whole in-degrees >= 0")
    JC = _coupling_matrix("J", J, T) * in_degrees
    if dt is not None:
        dt = _step(dt)
        if isinstance(K, (str, bytes)):
            raise TheoryInputError(f"K = {K!r} must be a whole number of steps, None, or one per type")
        windows = list(K) if isinstance(K, (Sequence, np.ndarray)) else [K] * T
        if len(windows) != T:
            raise TheoryInputError(f"K must be one value or {T} values (one per type); got {K!r}")
        for index, window in enumerate(windows):  # each window checked once, before any solving
            _history_length(neurons[index], dt, neurons[index].mu, window, hazard_rule)
    else:
        if K is not None:
            raise TheoryInputError("K applies only to the discrete model (give dt)")
        if hazard_rule != "trapezoid":
            raise TheoryInputError(f"hazard_rule = {hazard_rule!r} applies only to the discrete model (give dt)")

    def rate_of(index: int, mu_eff: float, rate_hz: float) -> float:
        nrn = neurons[index]
        # Far-off trial rates of the search (and strong facilitation) overflow the
        # threshold kernel; such a point is not a solution and the solver moves on
        # or discards it, so numpy's warnings about it would carry no information.
        with np.errstate(over="ignore", invalid="ignore"):
            if dt is None:
                return 1e3 / _renewal_quadrature(nrn, mu_eff, rate_hz).mean_interval
            return _discrete_cohorts(nrn, dt, mu_eff, windows[index], hazard_rule).renewal_rate_hz(rate_hz)

    tiny = 1e-300

    def residual(log_rates: np.ndarray) -> np.ndarray:
        # Trial steps of the solver may leave the physical range; keep them finite.
        rates = np.exp(np.clip(log_rates, math.log(tiny), _LOG_MAX_RATE))
        mu_eff = _mean_input(neurons, JC, rates)
        model = np.array([rate_of(i, mu_eff[i], rates[i]) for i in range(T)])
        return log_rates - np.log(np.maximum(model, tiny))

    if rates0 is None:
        primary = np.array([rate_of(i, n.mu, 0.0) for i, n in enumerate(neurons)])
    else:
        try:
            primary = np.asarray(rates0, dtype=np.float64)
        except (TypeError, ValueError):
            primary = np.full(0, np.nan)
        if primary.shape != (T,) or not np.all(np.isfinite(primary)) or np.any(~(primary > 0.0)):
            raise TheoryInputError(f"rates0 must hold {T} finite positive rates in Hz; got {rates0!r}")
    if T == 1:
        return _one_type_network(neurons[0], JC, primary[0], lambda mu, A: rate_of(0, mu, A), dt)
    low = np.full(T, 0.01)
    high = np.array([rate_of(i, n.u_th + 5.0 * n.delta_u, 0.0) for i, n in enumerate(neurons)])
    if T <= 4:
        corners = np.array(np.meshgrid(*[[0, 1]] * T, indexing="ij")).reshape(T, -1).T
        others = low + corners * (high - low)
    else:
        others = low + np.linspace(0.0, 1.0, 8)[:, None] * (high - low)
    starts = np.vstack((np.maximum(primary, tiny), others))

    solutions: list[np.ndarray] = []
    primary_solution = None
    closest = (math.inf, np.full(T, np.nan))
    runaway = 0
    for k, start in enumerate(starts):
        result = optimize.root(residual, np.log(start), method="hybr", options={"xtol": 1e-13})
        # The residual evaluates the model at rates clipped to 1e7 Hz, so beyond that
        # cap its zero is F(1e7 Hz), not a solution (a runaway without refractoriness).
        if np.any(result.x > _LOG_MAX_RATE):
            runaway += 1
            continue
        size = float(np.max(np.abs(residual(result.x))))
        if not math.isfinite(size):  # the model could not be evaluated there
            continue
        if size < closest[0]:
            closest = (size, np.exp(result.x))
        if not (result.success and size < 1e-9):
            continue
        rates = np.exp(result.x)
        if k == 0:
            primary_solution = rates
        if not any(np.allclose(rates, s, rtol=1e-6, atol=0.0) for s in solutions):
            solutions.append(rates)
    if not solutions and runaway == len(starts):
        raise TheoryInputError(
            f"no stationary state found: from every one of the {len(starts)} starts the rates ran beyond "
            f"{math.exp(_LOG_MAX_RATE):g} Hz (a runaway; the rate is unbounded where t_ref = 0; check J, C "
            "and the drives)"
        )
    if not solutions and not math.isfinite(closest[0]):
        raise TheoryInputError(
            f"no stationary state found: from each of the {len(starts)} starts the search ended where the "
            "model gives no finite rate"
            + (f" ({runaway} ran beyond {math.exp(_LOG_MAX_RATE):g} Hz)" if runaway else "")
            + " (check J, C, the drives and the adaptation)"
        )
    if not solutions:
        raise TheoryInputError(
            (f"no stationary state found from any of the {len(starts)} starts"
             + (f" ({runaway} ran beyond {math.exp(_LOG_MAX_RATE):g} Hz)" if runaway else "")) + ": the closest point reached, "
            f"rates {np.array2string(closest[1], precision=4)} Hz, misses the equations by {closest[0]:.3g} "
            "in log rate (check J, C and the drives, or give rates0 near a solution)"
        )
    if rates0 is not None:
        log_start = np.log(primary)
        primary_solution = min(solutions, key=lambda s: float(np.sum((np.log(np.maximum(s, tiny)) - log_start) ** 2)))
    elif primary_solution is None:
        primary_solution = solutions[0]
    # a rate at the solver's floor is a silent type: 0, not 1e-300
    primary_solution = np.where(primary_solution <= 2.0 * tiny, 0.0, primary_solution)
    solutions = [np.where(s <= 2.0 * tiny, 0.0, s) for s in solutions]
    ordered = np.array(sorted(solutions, key=lambda s: tuple(s)))
    return NetworkStationaryState(
        rates=primary_solution,
        mu_eff=_mean_input(neurons, JC, primary_solution),
        solutions=ordered,
        multiple=len(solutions) > 1,
    )


def _root_below(residual: Callable[[float], float], r0: float) -> float:
    """The root of an increasing ``residual`` in ``[0, r0]`` (Hz): by Brent's method,
    or in log rate when it lies so far below ``r0`` (extreme self-inhibition) that
    halving toward it does not converge; 0 below 1e-300 Hz."""
    tiny = 1e-300
    if residual(tiny) >= 0.0:
        return 0.0
    try:
        return optimize.brentq(residual, 0.0, r0, xtol=1e-300, rtol=4.0 * np.finfo(float).eps, maxiter=200)
    except RuntimeError:
        pass
    x = optimize.brentq(lambda x: residual(math.exp(x)), math.log(tiny), math.log(r0), xtol=1e-13, maxiter=500)
    return math.exp(x)


def _one_type_network(
    nrn: _Neuron, JC: np.ndarray, start_hz: float, rate_of: Callable[[float, float], float], dt: float | None
) -> NetworkStationaryState:
    """One type: ``A = F(mu + tau_m J C A / 1000, A)`` is one equation in A, so
    every solution is found by a scan (:func:`_roots`), stable or not; without
    self-excitation and facilitation it has exactly one, found directly. The
    primary solution is the one nearest ``start_hz`` in log rate."""
    coupling = nrn.tau_m * float(JC[0, 0]) * 1e-3
    residual = lambda A: A - rate_of(nrn.mu + coupling * A, A)  # noqa: E731
    if coupling <= 0.0 and not nrn.facilitating:
        # Self-inhibition and adaptation only lower the rate as A grows: the
        # residual increases strictly, so its one root lies in [0, F(0)].
        r0 = rate_of(nrn.mu, 0.0)
        roots = [r0 if r0 == 0.0 or residual(r0) == 0.0 else _root_below(residual, r0)]
    else:
        roots = _roots(residual, _max_rate_hz(nrn, dt))
    if not roots:
        raise TheoryInputError("no stationary state found (check J, C and the drive)")
    distance = [abs(math.log(max(r, 1e-300)) - math.log(max(start_hz, 1e-300))) for r in roots]
    primary = np.array([roots[int(np.argmin(distance))]])
    return NetworkStationaryState(
        rates=primary,
        mu_eff=np.array([nrn.mu + coupling * primary[0]]),
        solutions=np.array(roots)[:, None],
        multiple=len(roots) > 1,
    )


# ---------------------------------------------------------------------------
# Spectra
# ---------------------------------------------------------------------------


def psd_high_frequency_level(rate_hz: float, N: int) -> float:
    """High-frequency level of the power spectral density of the population activity (Hz).

    Convention (shared with :mod:`meshfield.analysis`): two-sided spectrum,
    frequency f in Hz, activity A(t) in Hz, time in s,

        S(f) = lim_{T->inf} E |int_0^T (A(t) - <A>) exp(-2 pi i f t) dt|^2 / T,

    so that ``int_{-inf}^{inf} S(f) df = Var A`` (Hz^2) and S is in Hz^2/Hz = Hz
    (the one-sided spectrum is 2 S for f > 0). For A = (1/N) sum of N independent
    spike trains of rate r, each train's spectrum tends to r at high frequency
    (for any renewal process, whatever its interval distribution), hence
    ``S(f -> inf) = r/N``. For a record binned at dt this level holds up to
    aliasing of the low-frequency structure (exactly r/N for Poisson trains).

    Parameters
    ----------
    rate_hz : float, Hz
        Rate per neuron.
    N : int
        Number of neurons.

    Returns
    -------
    float, Hz.
    """
    rate = _rate(rate_hz)
    N = _number("N", N, "a positive whole number of neurons", lambda x: x >= 1 and x == int(x))
    return rate / int(N)
