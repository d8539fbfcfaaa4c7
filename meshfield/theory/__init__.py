"""Mean-field theory of the meshfield model (MODEL.md §6); no MPI.

The stationary renewal theory (:mod:`meshfield.theory.stationary`) is the
independent reference that the mesoscopic and microscopic engines are validated
against; the linear theory (:mod:`meshfield.theory.linear`, static, and
:mod:`meshfield.theory.response`, growth rates and frequencies from the
population's transfer function) predicts the patterns that form.
"""

from meshfield.theory.stationary import (
    DiscreteProfile,
    NetworkStationaryState,
    TheoryInputError,
    hazard_free,
    mean_input,
    membrane_potential,
    psd_high_frequency_level,
    renewal_rate,
    renewal_rate_discrete,
    stationary_profile_discrete,
    stationary_rate,
    stationary_rate_discrete,
    stationary_rates_network,
    survivor,
    threshold,
)
from meshfield.theory.linear import (
    Dispersion,
    dispersion,
    lattice_wave_vectors,
    static_gain,
    stencil_fourier,
)
from meshfield.theory.stability import StabilityReport, stability
from meshfield.theory.response import (
    GrowthRates,
    ImpulseResponse,
    growth_rates,
    impulse_response,
)

__all__ = [
    "Dispersion",
    "DiscreteProfile",
    "NetworkStationaryState",
    "TheoryInputError",
    "hazard_free",
    "mean_input",
    "membrane_potential",
    "psd_high_frequency_level",
    "renewal_rate",
    "renewal_rate_discrete",
    "stationary_profile_discrete",
    "stationary_rate",
    "stationary_rate_discrete",
    "stationary_rates_network",
    "survivor",
    "threshold",
    "dispersion",
    "lattice_wave_vectors",
    "static_gain",
    "stencil_fourier",
    "GrowthRates",
    "ImpulseResponse",
    "growth_rates",
    "impulse_response",
    "StabilityReport",
    "stability",
]
