"""Statistics of meshfield results: spectra, moments, spatial structure, oscillations, switching.

The functions on records take plain numpy arrays in the result layout
``[time, type, *lattice]`` (activity in Hz) plus the record interval in ms, or a
result object (``meshfield.io.open_result``) from which the interval, type
names and lattice geometry are read; ``space_time_spectrum`` and ``wave_speed``
take one type's field ``[time, *lattice]``, ``spatial_spectrum`` also a
snapshot, ``auto_thresholds`` a signal array, ``compare_results`` two results and ``summarize`` one.
``oscillation`` gives the frequency and amplitude of each type's rhythm and
``phase_coherence`` the phase locking of neighbouring sites (validation V7).
Units: ms, Hz, mm, rad/mm, mm/ms. See docs/analysis.md.
"""

from ._record import AnalysisInputError
from .bistable import (
    DwellTimes,
    NotBimodalError,
    Thresholds,
    auto_thresholds,
    bistable_signal,
    dwell_times,
    smooth,
)
from .compare import (
    BistableSpec,
    CompareInputError,
    ComparisonReport,
    Row,
    compare_results,
    plot_comparison,
)
from .oscillation import Oscillation, PhaseCoherence, oscillation, phase_coherence
from .spatial import (
    CorrelationVsDistance,
    NoWaveError,
    SpaceTimeSpectrum,
    SpatialSpectrum,
    WaveSpeed,
    correlation_vs_distance,
    space_time_spectrum,
    spatial_spectrum,
    wave_speed,
)
from .spectra import PSD, BandAverage, log_band_average, psd
from .stats import FanoFactor, MeanVar, fano_factor, mean_var
from .summary import Quantity, Summary, summarize

__all__ = [
    "AnalysisInputError",
    "BandAverage",
    "BistableSpec",
    "CompareInputError",
    "ComparisonReport",
    "CorrelationVsDistance",
    "DwellTimes",
    "FanoFactor",
    "MeanVar",
    "NoWaveError",
    "NotBimodalError",
    "Oscillation",
    "PSD",
    "PhaseCoherence",
    "Quantity",
    "Row",
    "SpaceTimeSpectrum",
    "SpatialSpectrum",
    "Summary",
    "Thresholds",
    "WaveSpeed",
    "auto_thresholds",
    "bistable_signal",
    "compare_results",
    "correlation_vs_distance",
    "dwell_times",
    "fano_factor",
    "log_band_average",
    "mean_var",
    "oscillation",
    "phase_coherence",
    "plot_comparison",
    "psd",
    "smooth",
    "space_time_spectrum",
    "spatial_spectrum",
    "summarize",
    "wave_speed",
]
