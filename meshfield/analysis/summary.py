"""The statistics of one result at a glance (``meshfield analyze``).

:func:`summarize` runs the analysis functions of this package on one result
with the settings of the validation (``discard``, 1-s PSD segments, 8
log-spaced bands from 1 Hz to the Nyquist rate, 20 blocks) and collects their
numbers in one table:

* mean and variance of the activity per type, with batch-means SEs;
* the PSD in log-spaced bands, and its most prominent peak above the lowest
  band edge: the bin that stands out most from the median of its
  neighbourhood (half to twice its frequency), with that ratio (a rhythm
  stands out by a large ratio; a smooth spectrum, white or low-pass, gives
  about 1);
* on lattices of more than one site: the correlation of fluctuations at the
  lattice distances up to ``max_distance``; the dominant spatial wave number
  with the share of the spatial variance in its shell; and the travelling
  wave of largest space-time power, with its share of the fluctuation power
  and its directionality (1 for a travelling, 0 for a standing wave);
* with ``bistable``: the number of switches and the mean dwell times.

The shares and ratios say how much a peak stands out; a wave speed, wave
number or directionality is a property of the field only where they do (a
noise field has a largest mode too; see docs/analysis.md for their noise
levels).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ._record import OPEN_FIRST, AnalysisInputError, Stages, as_record, is_path, is_result, number, whole
from .bistable import bistable_signal, dwell_times
from .compare import _aligned, _bistable_spec, _number, _pair_name, _settings_text
from .spatial import NoWaveError, correlation_vs_distance, spatial_spectrum, wave_speed
from .spectra import peak_prominence, psd, validation_bands
from .stats import DEFAULT_BLOCKS, mean_var

# The space-time transform of the wave analysis holds the field in float64, its
# complex transform and the power: 2**23 entries are about 400 MB in all. Longer records
# of large lattices are analysed over their first part (see ``wave_ms``).
WAVE_ENTRIES = 2**23


@dataclass(frozen=True)
class Quantity:
    """One number of the summary.

    Attributes
    ----------
    quantity : str
        E.g. ``"mean"``, ``"psd 1-2.17 Hz"``, ``"corr d=1"``, ``"wave speed"``.
    type : str
        Type name (the pair, e.g. ``"E1-E2"``, for dwell times).
    value : float
    se : float
        Standard error (NaN where none is defined).
    unit : str
    """

    quantity: str
    type: str
    value: float
    se: float
    unit: str


@dataclass(frozen=True)
class Summary:
    """Result of :func:`summarize`.

    Attributes
    ----------
    rows : tuple of Quantity
    types : tuple of str
    settings : dict
        The analysis settings used and what they gave, as numbers:
        ``discard_ms``, ``analysed_ms``, ``segment_ms`` (as cut: an even number
        of records), ``segments``, ``f_min_hz``, ``n_bands``, ``blocks``,
        ``block_ms``, ``max_distance`` (site spacings) and ``wave_ms`` (the
        part of the record analysed for waves); the last two None on a
        single site.
    label : str
        Name of the result in the report.
    """

    rows: tuple
    types: tuple
    settings: dict
    label: str = "result"

    def value(self, quantity: str, type: str) -> float:
        """The value of one quantity of one type (``KeyError`` if absent)."""
        for row in self.rows:
            if row.quantity == quantity and row.type == type:
                return row.value
        raise KeyError(f"{quantity!r} of type {type!r} is not in the summary")

    def format_text(self) -> str:
        """A plain-text table of all quantities."""
        lines = [f"result: {self.label}", f"settings: {_settings_text(self.settings)}", ""]
        header = ("quantity", "type", "value", "SE", "unit")
        table = [header] + [
            (row.quantity, row.type, _number(row.value), _number(row.se), row.unit) for row in self.rows
        ]
        return "\n".join(lines + _aligned(table))

    def to_dict(self) -> dict:
        """Plain data for JSON: NaN and infinities become None."""
        return {
            "result": self.label,
            "types": list(self.types),
            "settings": dict(self.settings),
            "quantities": [
                {"quantity": row.quantity, "type": row.type, "value": _finite(row.value),
                 "se": _finite(row.se), "unit": row.unit}
                for row in self.rows
            ],
        }


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def summarize(
    result,
    discard: float = 500.0,
    *,
    segment_ms: float | None = None,
    n_bands: int = 8,
    n_blocks: int = DEFAULT_BLOCKS,
    max_distance: float = 2.0,
    bistable=None,
    wave_ms: float | None = None,
    label: str = "result",
    progress=None,
) -> Summary:
    """The statistics of one result, with the settings of the validation.

    Parameters
    ----------
    result : result
        As returned by :func:`meshfield.open_result` (either level).
    discard : float
        Initial transient to drop, ms.
    segment_ms : float, optional
        PSD segment duration, ms. Default: 1000 ms (1 Hz bins), or two halves
        of a record shorter than 2 s after ``discard`` (as :func:`psd`).
    n_bands : int
        Log-spaced PSD bands from 1 Hz or the first PSD bin (about
        ``1000/segment_ms``), whichever is higher, to the Nyquist rate.
    n_blocks : int
        Blocks for the batch-means and correlation standard errors.
    max_distance : float
        Largest lattice distance (site spacings) of the correlations.
    bistable : BistableSpec or dict, optional
        Thresholds (and smoothing, populations) for the dwell times; as for
        :func:`compare_results`.
    wave_ms : float, optional
        Duration (after ``discard``) of the space-time analysis of waves, ms.
        Default: the whole record, or as much of its beginning as keeps the
        transform to ``WAVE_ENTRIES`` (2**23) samples times sites.
    label : str
        Name of the result in the report.
    progress : callable, optional
        ``progress(stage, done, total)`` before each stage of the analysis
        (``stage`` names it; ``done`` stages of ``total`` are finished), e.g.
        for a progress line on a large result read in slices.

    Returns
    -------
    Summary

    Raises
    ------
    AnalysisInputError
        For a result that cannot be analysed with these settings, naming the
        parameter.
    """
    if not is_result(result):
        hint = f"; it is a path: {OPEN_FIRST}" if is_path(result) else ""
        raise AnalysisInputError(f"result = {result!r} is not a result (needs attributes A, types, "
                                 f"record_interval, config){hint}")
    spec = _bistable_spec(bistable)
    n_bands = whole("n_bands", n_bands, 1)
    n_blocks = whole("n_blocks", n_blocks, 2)
    max_distance = number("max_distance", max_distance, "a distance >= 0 in site spacings", 0.0)
    if segment_ms is not None:
        segment_ms = number("segment_ms", segment_ms, "a positive duration in ms", 0.0, strict=True)
    if wave_ms is not None:
        wave_ms = number("wave_ms", wave_ms, "a positive duration in ms", 0.0, strict=True)
    record = as_record(result, discard=discard)
    types = record.types
    dt = record.need_interval()
    rows: list[Quantity] = []
    stage = Stages(["mean and variance", "power spectral density"]
                   + ["correlations", "spatial spectrum", "waves"] * (record.n_sites > 1)
                   + ["dwell times"] * (spec is not None), progress)
    stage("mean and variance")
    moments = mean_var(result, discard=discard, n_blocks=n_blocks)
    for t, name in enumerate(types):
        rows.append(Quantity("mean", name, float(moments.mean[t]), float(moments.mean_se[t]), "Hz"))
        rows.append(Quantity("variance", name, float(moments.var[t]), float(moments.var_se[t]), "Hz^2"))

    stage("power spectral density")
    spectrum = psd(result, discard=discard, segment_ms=segment_ms, per_site=False)
    bands, f_min = validation_bands(spectrum, dt, n_bands)
    peak_f, prominence = peak_prominence(spectrum, f_min)
    for t, name in enumerate(types):
        for i in range(n_bands):
            rows.append(Quantity(f"psd {bands.f_lo[i]:.3g}-{bands.f_hi[i]:.3g} Hz", name,
                                 float(bands.value[i, t]), float(bands.se[i, t]), "Hz"))
        rows.append(Quantity("psd peak frequency", name, float(peak_f[t]), float("nan"), "Hz"))
        rows.append(Quantity("psd peak prominence", name, float(prominence[t]), float("nan"), "1"))

    waves = None
    if record.n_sites > 1:
        stage("correlations")
        correlations = correlation_vs_distance(result, max_distance=max_distance, discard=discard,
                                               n_blocks=n_blocks)
        for t, name in enumerate(types):
            for d, r, err in zip(correlations.distances, correlations.r[t], correlations.r_err[t]):
                rows.append(Quantity(f"corr d={d:.3g}", name, float(r), float(err), "1"))
        stage("spatial spectrum")
        space = spatial_spectrum(result, discard=discard)
        weight = space.power * space.n_modes
        for t, name in enumerate(types):
            total = float(weight[t, 1:].sum())
            m = int(space.k_peak_steps[t])
            share = float(weight[t, m]) / total if m > 0 and total > 0 else float("nan")
            rows.append(Quantity("k peak", name, float(space.k_peak[t]), float("nan"), "rad/mm"))
            rows.append(Quantity("k peak steps", name, float(m) if m > 0 else float("nan"), float("nan"),
                                 "steps"))
            rows.append(Quantity("wavelength", name, float(space.wavelength[t]), float("nan"), "mm"))
            rows.append(Quantity("k peak share", name, share, float("nan"), "1"))
            # the single strongest wave vector: a pattern's orientation, and the |k|
            # that the linear theory (meshfield steady) predicts, where the shell
            # average above mixes the modes of a shell
            for axis, value in enumerate(space.k_vector_peak[t]):
                rows.append(Quantity(f"k vector peak [{axis}]", name, float(value), float("nan"), "rad/mm"))
        most = max(2, WAVE_ENTRIES // record.n_sites) * dt
        duration = min(wave_ms if wave_ms is not None else most, record.duration)
        if duration < 2 * dt:
            raise AnalysisInputError(f"wave_ms = {wave_ms:g} ms holds fewer than 2 records of "
                                     f"{dt:g} ms; give at least {2 * dt:g} ms")
        waves = float(duration)
        stage("waves")
        for t, name in enumerate(types):
            try:
                wave = wave_speed(result, type=t, discard=discard, duration=duration)
            except NoWaveError:  # no fluctuation at f > 0 and k != 0
                wave = None
            nan = float("nan")
            rows.append(Quantity("wave speed", name, wave.speed if wave else nan, nan, "mm/ms"))
            rows.append(Quantity("wave frequency", name, wave.frequency if wave else nan, nan, "Hz"))
            rows.append(Quantity("wave k", name, wave.k if wave else nan, nan, "rad/mm"))
            rows.append(Quantity("wave share", name, wave.share if wave else nan, nan, "1"))
            rows.append(Quantity("wave directionality", name, wave.directionality if wave else nan, nan, "1"))
            for axis in range(len(record.lattice_shape)):
                rows.append(Quantity(f"wave direction [{axis}]", name, wave.direction[axis] if wave else nan,
                                     nan, "1"))

    if spec is not None:
        stage("dwell times")
        signal = bistable_signal(result, populations=spec.populations, window_ms=spec.window_ms, discard=discard)
        dwell = dwell_times(signal, dt, spec.low, spec.high)
        pair = _pair_name(record, spec.populations)
        rows.append(Quantity("switches", pair, float(dwell.n_switches), float("nan"), "1"))
        rows.append(Quantity("dwell up", pair, dwell.mean_up, dwell.se_up, "ms"))
        rows.append(Quantity("dwell down", pair, dwell.mean_down, dwell.se_down, "ms"))

    settings = {
        "discard_ms": float(discard),
        "analysed_ms": float(record.duration),
        "segment_ms": float(spectrum.segment_ms),
        "segments": spectrum.n_segments,
        "f_min_hz": float(f_min),
        "n_bands": n_bands,
        "blocks": n_blocks,
        "block_ms": float(moments.block_ms),
        "max_distance": float(max_distance) if record.n_sites > 1 else None,
        "wave_ms": waves,
    }
    return Summary(rows=tuple(rows), types=types, settings=settings, label=str(label))
