"""The exact one-step propagators (meshfield/propagators.py) against the closed form
evaluated in 60-digit decimal arithmetic."""

from decimal import Decimal, getcontext

import pytest

from meshfield.propagators import membrane_propagators, synaptic_to_membrane


def exact_P_sm(tau_m: float, tau_s: float, dt: float) -> Decimal:
    getcontext().prec = 60
    tm, ts, h = Decimal(tau_m), Decimal(tau_s), Decimal(dt)
    if tm == ts:
        return h * (-h / tm).exp()
    return tm * ts / (ts - tm) * ((-h / ts).exp() - (-h / tm).exp())


@pytest.mark.parametrize("dt", [0.01, 0.5, 2.0])
@pytest.mark.parametrize("rel", [0.0, 1e-15, 1e-11, 1e-9, 1e-7, 1e-5, 5e-4, 1e-3, 2e-3, 0.1, 4.0,
                                 -1e-11, -1e-6, -5e-4, -0.85])
def test_P_sm_is_exact_to_rounding_also_for_nearly_equal_time_constants(rel, dt):
    """The difference form cancels when tau_s is close to tau_m: at tau_s = tau_m
    (1 + 1e-11) it was off by 3.6e-4 (relative)."""
    tau_m = 20.0
    tau_s = tau_m * (1.0 + rel)
    exact = exact_P_sm(tau_m, tau_s, dt)
    assert abs(Decimal(synaptic_to_membrane(tau_m, tau_s, dt)) - exact) <= Decimal(1e-13) * exact


def test_P_im_is_the_membrane_integral_minus_P_sm():
    p = membrane_propagators(20.0, [0.0, 3.0, 20.0 * (1 + 1e-11)], 0.5)
    assert p.P_sm[0] == 0.0 and p.P_ss[0] == 0.0
    for ts, p_sm, p_im in zip([0.0, 3.0, 20.0 * (1 + 1e-11)], p.P_sm, p.P_im):
        assert p_sm == synaptic_to_membrane(20.0, ts, 0.5)
        assert p_im == pytest.approx(20.0 * (1.0 - p.P_mm) - p_sm, rel=1e-15)
