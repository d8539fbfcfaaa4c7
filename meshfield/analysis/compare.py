"""Side-by-side statistics of two results with the acceptance rules of VALIDATION.md.

Result A is the reference (the microscopic level, or the peer simulator). For
every type:

* mean activity: ``|B - A| <= 3 sqrt(SE_A^2 + SE_B^2)`` and ``|B - A| <= 0.05 |A|``
  (batch-means standard errors, :func:`meshfield.analysis.mean_var`);
* PSD (site-averaged per-site PSD, :func:`meshfield.analysis.psd` with 1 s
  segments) in ``n_bands`` (default 8) log-spaced bands from 1 Hz to the
  Nyquist rate: each band ``|B - A| <= 3 SE_diff`` or ``|B - A| <= 0.2 |A|``;
* correlation of fluctuations at lattice distances 0, 1, 2 (lattices with more
  than one site): ``|B - A| <= 3 SE_diff`` or ``|B - A| <= 0.05``;
* with a ``bistable`` option: mean dwell time in each state ``|B - A| <=
  0.25 A``, and at least 30 switches in each result.

``SE_diff = sqrt(SE_A^2 + SE_B^2)``. A quantity that is undefined in both
results (a correlation of a type without fluctuations) passes; undefined in
one of them fails.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from ._record import OPEN_FIRST, AnalysisInputError, Stages, as_record, is_path, is_result, number, whole
from .bistable import bistable_signal, dwell_times
from .spatial import correlation_vs_distance
from .spectra import psd, segment_cut, validation_bands
from .stats import DEFAULT_BLOCKS, mean_var

MEAN_SE_FACTOR = 3.0
MEAN_RELATIVE = 0.05
PSD_SE_FACTOR = 3.0
PSD_RELATIVE = 0.20
CORR_SE_FACTOR = 3.0
CORR_ABSOLUTE = 0.05
DWELL_RELATIVE = 0.25
MIN_SWITCHES = 30
#: below this many PSD segments in either result the report notes how often a
#: band fails by chance (docs/analysis.md, "False failures of the rules")
FEW_SEGMENTS = 10
#: the dwell rule's chance failure per state above which the report notes it
DWELL_CHANCE_NOTE = 0.05


class CompareInputError(AnalysisInputError):
    """Two results that cannot be compared (types, lattice, sampling, length, values)."""


@dataclass(frozen=True)
class BistableSpec:
    """How to find switching in a bistable result (see :func:`bistable_signal`).

    Attributes
    ----------
    low, high : float
        Hysteresis thresholds of the state signal ``A_1 - A_2``, Hz.
    window_ms : float
        Smoothing window of the state signal, ms.
    populations : pair, optional
        The two competing populations (default: the two types, or the two
        sites of a one-type lattice).
    """

    low: float
    high: float
    window_ms: float = 0.0
    populations: tuple | None = None


@dataclass(frozen=True)
class Row:
    """One compared quantity.

    Attributes
    ----------
    quantity : str
        E.g. ``"mean"``, ``"psd 1-2.17 Hz"``, ``"corr d=1"``, ``"dwell up"``.
    type : str
        Type name (``"E1-E2"`` for the bistable state signal).
    value_a, value_b : float
        The value in the reference A and in B.
    se_a, se_b : float
        Their standard errors (NaN where not used).
    unit : str
        Unit of the values.
    tolerance : str
        The rule applied, with the numbers.
    passed : bool
    """

    quantity: str
    type: str
    value_a: float
    value_b: float
    se_a: float
    se_b: float
    unit: str
    tolerance: str
    passed: bool

    @property
    def difference(self) -> float:
        """``value_b - value_a``."""
        return self.value_b - self.value_a


@dataclass(frozen=True)
class ComparisonReport:
    """Result of :func:`compare_results`.

    Attributes
    ----------
    rows : tuple of Row
    labels : tuple of str
        Names of A (reference) and B.
    types : tuple of str
    settings : dict
        The analysis settings used: ``discard_ms``, ``segment_ms`` (as cut:
        an even number of records), ``f_min_hz``, ``n_bands``, ``blocks``
        (numbers), and ``segments`` and ``block_ms`` (pairs, for A and B).
    means : tuple of MeanVar
    psds : tuple of PSD
    bands : tuple of BandAverage
    band_passed : ndarray of bool, shape (n_bands, n_types)
    correlations : tuple of CorrelationVsDistance, or None
    dwells : tuple of DwellTimes, or None
    """

    rows: tuple
    labels: tuple
    types: tuple
    settings: dict
    means: tuple
    psds: tuple
    bands: tuple
    band_passed: np.ndarray
    correlations: tuple | None = None
    dwells: tuple | None = None

    @property
    def passed(self) -> bool:
        """True when every quantity passed."""
        return bool(self.rows) and all(row.passed for row in self.rows)

    @property
    def failures(self) -> list:
        """The rows that failed."""
        return [row for row in self.rows if not row.passed]

    @property
    def notes(self) -> list:
        """Where the rules fail by chance often at these sizes, how often: two
        samples of the *same* process compared with few PSD segments, or with
        few switches for the dwell rule (docs/analysis.md, "False failures of
        the rules"). The verdicts are the rules' as written; the notes say how
        much a FAIL there tells."""
        notes = []
        n_a, n_b = self.settings["segments"]
        if min(n_a, n_b) < FEW_SEGMENTS:
            from scipy import stats
            dof = n_a + n_b - 2
            chance = 2.0 * stats.t.sf(PSD_SE_FACTOR, dof)
            notes.append(
                f"{n_a} and {n_b} PSD segments: a band whose two results sample the same process fails its "
                f"3-SE test by chance in up to {100 * chance:.1f} % of comparisons (Student's t with {dof} "
                f"degrees of freedom; the 20 % alternative rescues some); with fewer than {FEW_SEGMENTS} "
                "segments a single band FAIL is weak evidence of a difference")
        if self.dwells is not None:
            chances = []
            for state in ("up", "down"):
                k_a, k_b = (getattr(d, state).size for d in self.dwells)
                if k_a and k_b:
                    # Markovian switching: exponential dwells, relative SE 1/sqrt(k) per mean
                    relative_se = math.sqrt(1.0 / k_a + 1.0 / k_b)
                    chances.append(math.erfc(DWELL_RELATIVE / relative_se / math.sqrt(2.0)))
            if chances and max(chances) > DWELL_CHANCE_NOTE:
                s_a, s_b = (d.n_switches for d in self.dwells)
                notes.append(
                    f"{s_a} and {s_b} switches: the dwell rule (means within 25 %) fails two samples of the same "
                    f"Markovian switching process by chance in about {100 * max(chances):.0f} % of comparisons "
                    "(exponential dwells, relative SE 1/sqrt(dwells) per mean); some 250 switches in each "
                    "result bring that below 5 %")
        return notes

    def format_text(self) -> str:
        """A plain-text table of all rows with a summary line."""
        a, b = self.labels
        lines = [f"A (reference): {a}", f"B: {b}", f"settings: {_settings_text(self.settings)}", ""]
        header = ("quantity", "type", "A", "B", "SE(A)", "SE(B)", "unit", "tolerance", "result")
        table = [header] + [
            (
                row.quantity,
                row.type,
                _number(row.value_a),
                _number(row.value_b),
                _number(row.se_a),
                _number(row.se_b),
                row.unit,
                row.tolerance,
                "pass" if row.passed else "FAIL",
            )
            for row in self.rows
        ]
        lines += _aligned(table)
        failures = self.failures
        lines.append("")
        if failures:
            names = "; ".join(f"{row.quantity} ({row.type})" for row in failures)
            lines.append(f"FAIL: {len(failures)} of {len(self.rows)} quantities out of tolerance: {names}")
        else:
            lines.append(f"PASS: all {len(self.rows)} quantities within tolerance")
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def _aligned(table: list[tuple]) -> list[str]:
    """The rows of a table of strings (header first) as lines, columns padded to a common width."""
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in table]


def _settings_text(settings: dict) -> str:
    """``key=value, ...`` of a report's settings: numbers as ``%g``, pairs (of
    results A and B) as ``a/b``, None (not applicable) as ``-``."""
    def text(value) -> str:
        if isinstance(value, tuple):
            return "/".join(text(v) for v in value)
        if value is None:
            return "-"
        return f"{value:g}" if isinstance(value, float) else str(value)
    return ", ".join(f"{key}={text(value)}" for key, value in settings.items())


def _number(value: float) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4g}"


def _se_diff(se_a: float, se_b: float) -> float:
    return math.sqrt(se_a**2 + se_b**2)


def _both_undefined(a: float, b: float) -> bool:
    return math.isnan(a) and math.isnan(b)


def _bistable_spec(bistable) -> BistableSpec | None:
    if bistable is None:
        return None
    if isinstance(bistable, BistableSpec):
        spec = bistable
    elif isinstance(bistable, dict):
        allowed = {f.name for f in fields(BistableSpec)}
        unknown = set(bistable) - allowed
        if unknown or not {"low", "high"} <= set(bistable):
            raise CompareInputError(
                f"bistable has keys {sorted(bistable)}; needs low and high, allowed: {sorted(allowed)}"
            )
        spec = BistableSpec(**bistable)
    else:
        raise CompareInputError(f"bistable = {bistable!r}: expected a BistableSpec or a dict")
    try:
        low, high, window = float(spec.low), float(spec.high), float(spec.window_ms)
    except (TypeError, ValueError):
        low = high = window = math.nan
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise CompareInputError(f"bistable low = {spec.low!r}, high = {spec.high!r}: need finite "
                                f"thresholds (Hz) with low < high")
    if not (math.isfinite(window) and window >= 0):
        raise CompareInputError(f"bistable window_ms = {spec.window_ms!r}: must be a finite smoothing "
                                f"window >= 0 ms (0: no smoothing)")
    return spec


def _check_compatible(records, labels) -> None:
    a, b = records
    la, lb = labels
    if list(a.types) != list(b.types):
        raise CompareInputError(f"types differ: {la} has {list(a.types)}, {lb} has {list(b.types)}")
    if a.lattice_shape != b.lattice_shape:
        raise CompareInputError(
            f"lattice shapes differ: {la} has {list(a.lattice_shape)}, {lb} has {list(b.lattice_shape)}"
        )
    if not math.isclose(a.record_interval, b.record_interval, rel_tol=1e-9):
        raise CompareInputError(
            f"record intervals differ: {la} has {a.record_interval} ms, {lb} has {b.record_interval} ms"
        )
    if a.n_sites > 1:
        for name, va, vb in (("lattice.dx", a.dx, b.dx), ("lattice.boundary", a.boundary, b.boundary)):
            if va is None or vb is None:
                raise CompareInputError(f"{name} is missing from the configuration of {la if va is None else lb}")
            if va != vb and not (isinstance(va, float) and math.isclose(va, vb, rel_tol=1e-9)):
                raise CompareInputError(f"{name} differs: {la} has {va!r}, {lb} has {vb!r}")


def compare_results(
    res_a,
    res_b,
    discard: float = 500.0,
    *,
    bistable=None,
    labels: tuple = ("A", "B"),
    segment_ms: float = 1000.0,
    n_bands: int = 8,
    f_min: float | None = None,
    n_blocks: int = DEFAULT_BLOCKS,
    distances: tuple | None = None,
    min_switches: int = MIN_SWITCHES,
    progress=None,
) -> ComparisonReport:
    """Compare the statistics of two results with the acceptance rules of VALIDATION.md.

    Parameters
    ----------
    res_a : result
        The reference (microscopic level or peer).
    res_b : result
        The result under test. Both need the same types (in the same order),
        lattice shape, spacing, boundary and record interval; their durations
        may differ.
    discard : float
        Initial transient dropped from both, ms.
    bistable : BistableSpec or dict, optional
        Thresholds (and smoothing, populations) for the dwell-time comparison.
    labels : pair of str
        Names of A and B in the report.
    segment_ms : float
        PSD segment duration, ms (1000 ms gives 1 Hz bins, the lowest band edge
        of VALIDATION.md). Both records need at least two segments after
        ``discard``.
    n_bands : int
        Number of log-spaced PSD bands (VALIDATION.md: at least 8).
    f_min : float, optional
        Lowest band edge, Hz. Default: 1 Hz (VALIDATION.md), or the lowest
        resolved frequency (the first PSD bin: 1000 over the segment as cut
        to an even number of records, ms) when segments are shorter than 1 s.
    n_blocks : int
        Blocks for the batch-means and correlation standard errors.
    distances : sequence of float, optional
        Lattice distances (site spacings) whose correlations are compared; each
        must occur on the lattice. Default: those of 0, 1, 2 that occur
        (VALIDATION.md).
    min_switches : int
        Switches each result must show for the dwell-time comparison.
    progress : callable, optional
        ``progress(stage, done, total)`` before each stage of the comparison
        (``stage`` names it; ``done`` stages of ``total`` are finished), e.g.
        for a progress line on large results read in slices.

    Returns
    -------
    ComparisonReport

    Raises
    ------
    CompareInputError
        For results that cannot be compared, with the reason.
    """
    if isinstance(labels, (str, bytes)) or not isinstance(labels, (tuple, list)) or len(labels) != 2:
        raise CompareInputError(f"labels = {labels!r}: must be a pair of names, e.g. ('micro', 'meso')")
    labels = tuple(str(label) for label in labels)
    for label, res in zip(labels, (res_a, res_b)):
        if not is_result(res):
            hint = f"; it is a path: {OPEN_FIRST}" if is_path(res) else ""
            raise CompareInputError(f"{label} = {res!r} is not a result (needs attributes A, types, "
                                    f"record_interval, config){hint}")
    spec = _bistable_spec(bistable)
    segment_ms = number("segment_ms", segment_ms, "a positive duration in ms", 0.0, strict=True,
                        error=CompareInputError)
    n_bands = whole("n_bands", n_bands, 1, error=CompareInputError)
    n_blocks = whole("n_blocks", n_blocks, 2, error=CompareInputError)
    min_switches = whole("min_switches", min_switches, 0, error=CompareInputError)
    if f_min is not None:
        f_min = number("f_min", f_min, "a positive frequency in Hz", 0.0, strict=True, error=CompareInputError)
    explicit_distances = distances is not None
    if explicit_distances:
        if isinstance(distances, (str, bytes)) or not np.iterable(distances):
            raise CompareInputError(f"distances = {distances!r}: must be a sequence of distances in site spacings")
        distances = tuple(number("distances", d, "a sequence of distances >= 0 in site spacings", 0.0,
                                 error=CompareInputError) for d in distances)
    else:
        distances = (0.0, 1.0, 2.0)
    # the transient applies to both: an invalid one is the setting's fault, a
    # record too short for it is one result's, which the message then names
    discard = number("discard", discard, "a non-negative time in ms", 0.0, error=CompareInputError)
    records = []
    for label, res in zip(labels, (res_a, res_b)):
        try:
            records.append(as_record(res, discard=discard))
        except AnalysisInputError as error:
            raise CompareInputError(f"{label}: {error}") from error
    records = tuple(records)
    _check_compatible(records, labels)
    types = records[0].types
    dt = records[0].record_interval
    # psd cuts segments to an even number of samples, and two must fit (shorter
    # segments than 2 samples are psd's to refuse)
    cut = segment_cut(segment_ms, dt)
    as_cut = "" if abs(cut * dt - segment_ms) < 1e-9 * segment_ms else \
        f", cut to {cut * dt:g} ms (an even number of samples)"
    for label, record in zip(labels, records):
        remaining = record.n_time * dt
        if cut >= 2 and record.n_time < 2 * cut:
            raise CompareInputError(
                f"{label}: {remaining:g} ms remain after discarding the first {discard:g} ms; the PSD "
                f"bands need two segments of segment_ms = {segment_ms:g} ms{as_cut} ({2 * cut * dt:g} ms). "
                f"Run longer, discard less (discard), or use shorter segments (segment_ms), whose bands "
                f"then start at their lowest frequency, 1000 Hz over the segment's ms, instead of "
                f"VALIDATION.md's 1 Hz"
            )
    rows: list[Row] = []
    stage = Stages(["mean and variance", "power spectral density"]
                   + ["correlations"] * (records[0].n_sites > 1) + ["dwell times"] * (spec is not None), progress,
                   CompareInputError)
    stage("mean and variance")
    means = []
    for label, res in zip(labels, (res_a, res_b)):
        try:
            means.append(mean_var(res, discard=discard, n_blocks=n_blocks))
        except AnalysisInputError as error:  # e.g. NaN in the activity
            raise CompareInputError(f"{label}: {error}") from error
    means = tuple(means)
    for t, name in enumerate(types):
        a, b = float(means[0].mean[t]), float(means[1].mean[t])
        se_a, se_b = float(means[0].mean_se[t]), float(means[1].mean_se[t])
        se_limit = MEAN_SE_FACTOR * _se_diff(se_a, se_b)
        rel_limit = MEAN_RELATIVE * abs(a)
        rows.append(
            Row(
                "mean", name, a, b, se_a, se_b, "Hz",
                f"|d|<=3SE={se_limit:.3g} and |d|<=5%={rel_limit:.3g}",
                abs(b - a) <= se_limit and abs(b - a) <= rel_limit,
            )
        )

    stage("power spectral density")
    try:
        psds = tuple(psd(res, discard=discard, segment_ms=segment_ms, per_site=False) for res in (res_a, res_b))
        # by default from the segments as cut (an even number of samples), not as asked
        bands, f_min = validation_bands(psds[0], dt, n_bands, f_min)
        bands = (bands, validation_bands(psds[1], dt, n_bands, f_min)[0])
    except AnalysisInputError as error:
        raise CompareInputError(str(error)) from error
    band_passed = np.zeros((n_bands, len(types)), dtype=bool)
    for t, name in enumerate(types):
        for i in range(n_bands):
            a, b = float(bands[0].value[i, t]), float(bands[1].value[i, t])
            se_a, se_b = float(bands[0].se[i, t]), float(bands[1].se[i, t])
            se_limit = PSD_SE_FACTOR * _se_diff(se_a, se_b)
            rel_limit = PSD_RELATIVE * abs(a)
            ok = abs(b - a) <= se_limit or abs(b - a) <= rel_limit
            band_passed[i, t] = ok
            rows.append(
                Row(
                    f"psd {bands[0].f_lo[i]:.3g}-{bands[0].f_hi[i]:.3g} Hz", name, a, b, se_a, se_b, "Hz",
                    f"|d|<=3SE={se_limit:.3g} or |d|<=20%={rel_limit:.3g}", ok,
                )
            )

    correlations = None
    if explicit_distances and records[0].n_sites == 1 and distances:
        raise CompareInputError(f"distances = {distances}: the results have a single site, so no correlations")
    if records[0].n_sites > 1:
        stage("correlations")
        reach = max(distances) if distances else 0
        correlations = tuple(
            correlation_vs_distance(res, max_distance=reach, discard=discard, n_blocks=n_blocks)
            for res in (res_a, res_b)
        )
        present = correlations[0].distances
        absent = [d for d in distances if not np.isclose(present, d).any()]
        if explicit_distances and absent:
            raise CompareInputError(
                f"distances = {distances}: no site pairs at {', '.join(f'{d:g}' for d in absent)} on the "
                f"lattice {list(records[0].lattice_shape)}; distances present up to {reach:g}: "
                f"{', '.join(f'{d:.3g}' for d in present)}"
            )
        for t, name in enumerate(types):
            for d in distances:
                where = np.flatnonzero(np.isclose(present, d))
                if where.size == 0:
                    continue
                j = int(where[0])
                a, b = float(correlations[0].r[t, j]), float(correlations[1].r[t, j])
                se_a, se_b = float(correlations[0].r_err[t, j]), float(correlations[1].r_err[t, j])
                se_limit = CORR_SE_FACTOR * _se_diff(se_a, se_b)
                ok = _both_undefined(a, b) or abs(b - a) <= se_limit or abs(b - a) <= CORR_ABSOLUTE
                rows.append(
                    Row(
                        f"corr d={d:g}", name, a, b, se_a, se_b, "1",
                        f"|d|<=3SE={se_limit:.3g} or |d|<=0.05", bool(ok),
                    )
                )

    dwells = None
    if spec is not None:
        stage("dwell times")
        try:
            signals = [
                bistable_signal(res, populations=spec.populations, window_ms=spec.window_ms, discard=discard)
                for res in (res_a, res_b)
            ]
            dwells = tuple(dwell_times(s, dt, spec.low, spec.high) for s in signals)
        except AnalysisInputError as error:
            raise CompareInputError(f"bistable: {error}") from error
        pair = _pair_name(records[0], spec.populations)
        n_a, n_b = dwells[0].n_switches, dwells[1].n_switches
        rows.append(
            Row(
                "switches", pair, float(n_a), float(n_b), float("nan"), float("nan"), "1",
                f">={min_switches} in each", n_a >= min_switches and n_b >= min_switches,
            )
        )
        for state in ("up", "down"):
            a = getattr(dwells[0], f"mean_{state}")
            b = getattr(dwells[1], f"mean_{state}")
            limit = DWELL_RELATIVE * abs(a)
            rows.append(
                Row(
                    f"dwell {state}", pair, a, b,
                    getattr(dwells[0], f"se_{state}"), getattr(dwells[1], f"se_{state}"), "ms",
                    f"|d|<=25%={limit:.3g}", bool(abs(b - a) <= limit),
                )
            )

    settings = {
        "discard_ms": float(discard),
        "segment_ms": float(psds[0].segment_ms),
        "f_min_hz": float(f_min),
        "segments": (psds[0].n_segments, psds[1].n_segments),
        "n_bands": n_bands,
        "blocks": n_blocks,
        "block_ms": (float(means[0].block_ms), float(means[1].block_ms)),
    }
    return ComparisonReport(
        rows=tuple(rows),
        labels=labels,
        types=types,
        settings=settings,
        means=means,
        psds=psds,
        bands=bands,
        band_passed=band_passed,
        correlations=correlations,
        dwells=dwells,
    )


def _pair_name(record, populations) -> str:
    if populations is None:
        if record.n_types == 2:
            return f"{record.types[0]}-{record.types[1]}"
        return f"{record.types[0]}[0]-{record.types[0]}[1]"

    def name(p):
        if isinstance(p, (tuple, list)):
            t = p[0] if isinstance(p[0], str) else record.types[int(p[0])]
            return f"{t}[{p[1]}]"
        return p if isinstance(p, str) else record.types[int(p)]

    return f"{name(populations[0])}-{name(populations[1])}"


def plot_comparison(report: ComparisonReport, path) -> None:
    """Draw a comparison report to an image file (format from the suffix).

    Panels: the mean activity per type relative to A, in percent, with the
    5 % band shaded (error bars: 3 standard errors; tick labels give the
    values in Hz); the
    PSD of each type for both results, with the comparison bands shaded green
    (pass) or red (fail) and the band averages marked; the correlation vs
    distance (lattices); the dwell-time distributions (bistable option).

    Parameters
    ----------
    report : ComparisonReport
    path : str or path-like
        Output file, e.g. ``compare.png`` or ``compare.pdf``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ..plot import check_figure_target, published

    if not isinstance(report, ComparisonReport):
        raise CompareInputError(f"report = {report!r}: must be the ComparisonReport of compare_results")
    check_figure_target(path)

    colours = ("tab:blue", "tab:orange")  # results A and B
    styles = ("o-", "s--", "^:", "D-.", "v-", "P--", "X:", "*-.")  # types, in turn
    types = report.types
    n_panels = 1 + len(types) + (report.correlations is not None) + (report.dwells is not None)
    n_cols = 2
    n_rows = (n_panels + n_cols - 1) // n_cols
    figure = Figure(figsize=(6.0 * n_cols, 4.2 * n_rows))
    # Fixed margins: an automatic layout engine would double the drawing time.
    figure.subplots_adjust(left=0.08, right=0.98, bottom=0.08, top=0.95, hspace=0.45, wspace=0.25)
    FigureCanvasAgg(figure)
    axes = iter(figure.subplots(n_rows, n_cols, squeeze=False).ravel())

    ax = next(axes)
    positions = np.arange(len(types))
    reference = report.means[0].mean
    scale = np.where(reference != 0, 100.0 / np.abs(np.where(reference != 0, reference, 1.0)), np.nan)
    ax.axhspan(-100.0 * MEAN_RELATIVE, 100.0 * MEAN_RELATIVE, color="0.9", lw=0, label="±5 %")
    for k, (label, means) in enumerate(zip(report.labels, report.means)):
        ax.errorbar(
            positions + (k - 0.5) * 0.2, (means.mean - reference) * scale, yerr=3.0 * means.mean_se * scale,
            fmt="o", color=colours[k], capsize=4, label=label,
        )
    mean_ok = {row.type: row.passed for row in report.rows if row.quantity == "mean"}
    ax.set_xticks(
        positions,
        [
            f"{t}\n{report.means[0].mean[i]:.3g} / {report.means[1].mean[i]:.3g} Hz\n"
            f"{'pass' if mean_ok[t] else 'FAIL'}"
            for i, t in enumerate(types)
        ],
        fontsize=9 if len(types) < 3 else 7,
    )
    ax.set_xlim(-0.5, len(types) - 0.5)
    ax.set_ylabel(f"mean activity relative to {report.labels[0]} (%)")
    ax.set_title("mean per type (bars: 3 SE)")
    ax.margins(y=0.4)  # room for the legend beside the largest deviation
    ax.legend(fontsize=8)

    for t, name in enumerate(types):
        ax = next(axes)
        bands = report.bands[0]
        for i in range(bands.f_lo.size):
            ax.axvspan(
                bands.f_lo[i], bands.f_hi[i], color="tab:green" if report.band_passed[i, t] else "tab:red",
                alpha=0.12, lw=0,
            )
        ax.set_xscale("log")
        ax.set_xlabel("frequency (Hz)")
        ax.set_ylabel("PSD (Hz, two-sided)")
        ax.set_title(f"PSD of site activity, {name}\n(bands: green pass, red fail; bars: 3 SE)", fontsize=10)
        if not any(np.any(spectrum.S[1:, t] > 0) for spectrum in report.psds):
            # a log axis without a positive value would only warn and stay empty
            ax.text(0.5, 0.5, f"no fluctuations of {name}:\nthe PSD is 0 in both results", ha="center",
                    va="center", transform=ax.transAxes)
            continue
        ax.set_yscale("log")
        for k, (label, spectrum, band) in enumerate(zip(report.labels, report.psds, report.bands)):
            positive = spectrum.freqs > 0
            ax.plot(spectrum.freqs[positive], spectrum.S[positive, t], color=colours[k], lw=0.8, alpha=0.7,
                    label=label)
            ax.errorbar(band.f_center, band.value[:, t], yerr=3.0 * band.se[:, t], fmt="s", color=colours[k], ms=4,
                        capsize=3)
        ax.legend()

    if report.correlations is not None:
        ax = next(axes)
        for k, (label, corr) in enumerate(zip(report.labels, report.correlations)):
            for t, name in enumerate(types):
                ax.errorbar(
                    corr.distances_mm, corr.r[t], yerr=3.0 * corr.r_err[t], fmt=styles[t % len(styles)],
                    color=colours[k], capsize=3, label=f"{label} {name}",
                )
        ax.set_xlabel("distance (mm)")
        ax.set_ylabel("correlation coefficient")
        ax.set_title("correlation of fluctuations (bars: 3 SE)")
        ax.legend()

    if report.dwells is not None:
        ax = next(axes)
        longest = max(max(d.up.max(initial=0.0), d.down.max(initial=0.0)) for d in report.dwells)
        edges = np.linspace(0.0, longest if longest > 0 else 1.0, 31)
        for k, (label, dwell) in enumerate(zip(report.labels, report.dwells)):
            for state, times, style in (("up", dwell.up, "-"), ("down", dwell.down, "--")):
                if times.size:  # a density of no dwell would only warn
                    ax.hist(times, bins=edges, histtype="step", color=colours[k], ls=style, density=True,
                            label=f"{label} {state} (n={times.size})")
        ax.set_xlabel("dwell time (ms)")
        ax.set_ylabel("density (1/ms)")
        ax.set_title("dwell times")
        if any(d.up.size or d.down.size for d in report.dwells):
            ax.legend()
        else:
            ax.text(0.5, 0.5, "no complete dwell in either result", ha="center", va="center",
                    transform=ax.transAxes)

    for ax in axes:
        ax.set_visible(False)
    with published(path) as partial:
        figure.savefig(partial, dpi=100)
