"""Exact one-step propagators of the membrane and synaptic equations (MODEL.md §2, §4).

Both levels integrate

    tau_m du/dt  = -u + mu + tau_m * sum_beta y_beta
    tau_s dy/dt  = -y + J * r_beta

exactly over one step of length ``dt``, with the input spike rate ``r_beta``
(spikes per ms, weighted by J) held constant within the step. With
``I = J r`` (mV/ms) the solution after one step is

    y(dt) = y0 * P_ss + I * (1 - P_ss)
    u(dt) = u0 * P_mm + mu * (1 - P_mm) + y0 * P_sm + I * P_im

with ``P_mm = exp(-dt/tau_m)``, ``P_ss = exp(-dt/tau_s)``,
``P_sm = tau_m tau_s / (tau_s - tau_m) * (P_ss - P_mm)`` (``dt * P_mm`` when the
two time constants coincide, and computed as ``dt P_mm expm1(x) / x``, ``x = dt
(1/tau_m - 1/tau_s)``, when they nearly do) and ``P_im = tau_m (1 - P_mm) - P_sm``.

In the limit ``tau_s -> 0`` a single input spike in a step raises ``u`` by ``J``
times ``tau_m (1 - P_mm) / dt``, which tends to ``J`` as ``dt -> 0``: ``J`` is the
area of one postsynaptic potential in mV, as MODEL.md defines it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Propagators:
    """Propagator coefficients of one target type for one step.

    Attributes
    ----------
    P_mm : float
        ``exp(-dt/tau_m)``, the membrane decay over one step.
    P_ss : ndarray, shape (n_source_types,)
        ``exp(-dt/tau_s)`` of each source type's synaptic current.
    P_sm : ndarray, shape (n_source_types,)
        Contribution of the synaptic current at the start of the step to ``u``.
    P_im : ndarray, shape (n_source_types,)
        Contribution of the (constant) input drive ``I = J r`` to ``u``, in ms.
    """

    P_mm: float
    P_ss: np.ndarray
    P_sm: np.ndarray
    P_im: np.ndarray


#: |x| below which :func:`synaptic_to_membrane` uses the expm1 form (relative error
#: of the difference form there: above ~1e-13)
_NEAR_EQUAL = 1e-3


def synaptic_to_membrane(tau_m: float, tau_s: float, dt: float) -> float:
    """``P_sm``: the membrane response over one step to a unit synaptic current
    ``y0 = 1 mV/ms`` decaying with ``tau_s`` (ms)."""
    p_mm = math.exp(-dt / tau_m)
    if tau_s <= 0.0:
        return 0.0
    # P_sm = dt P_mm expm1(x) / x with x = dt (1/tau_m - 1/tau_s). Near x = 0 the
    # difference form cancels (relative error ~1e-16/|x|: 3.6e-4 at tau_s =
    # tau_m (1 + 1e-11)); there the expm1 form is exact to rounding. Elsewhere
    # the difference form is kept, so results of distinct time constants are
    # unchanged bit for bit.
    x = dt * (tau_s - tau_m) / (tau_m * tau_s)
    if x == 0.0:
        return dt * p_mm
    if abs(x) < _NEAR_EQUAL:
        return dt * p_mm * math.expm1(x) / x
    p_ss = math.exp(-dt / tau_s)
    return tau_m * tau_s / (tau_s - tau_m) * (p_ss - p_mm)


def membrane_propagators(tau_m: float, tau_s: np.ndarray, dt: float) -> Propagators:
    """Propagators of a target type with membrane time constant ``tau_m`` (ms)
    receiving from source types with synaptic time constants ``tau_s`` (ms,
    shape ``(n_source_types,)``; 0 means instantaneous synapses)."""
    tau_s = np.asarray(tau_s, dtype=np.float64)
    p_mm = math.exp(-dt / tau_m)
    p_ss = np.array([math.exp(-dt / ts) if ts > 0.0 else 0.0 for ts in tau_s])
    p_sm = np.array([synaptic_to_membrane(tau_m, ts, dt) for ts in tau_s])
    p_im = tau_m * (1.0 - p_mm) - p_sm
    return Propagators(P_mm=p_mm, P_ss=p_ss, P_sm=p_sm, P_im=p_im)
