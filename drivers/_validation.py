"""Shared pieces of the validation drivers (VALIDATION.md studies V1, V3, V5, V6).

Every driver runs on one MPI rank (``COMM_SELF``). Run as a script, it uses one
numba thread unless ``NUMBA_NUM_THREADS`` is set: the wall and CPU times of the
two levels are then measured under the same conditions, and on a busy machine
the engine's parallel kernels can be many times slower with more threads than
free cores. It writes figures and ``vN.json`` into its ``--out`` folder. The
drivers import this module by name, so it must sit next to them
(``python drivers/vN_*.py`` puts ``drivers/`` on the path).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

import meshfield
from meshfield.config import Config, load_config, packaged_config


@dataclass
class ActivityRecord:
    """A result-like activity record that ``meshfield.analysis`` accepts.

    Used for records that no single run produced: the stationary parts of
    several seeds joined in time, or a peer simulator's activity.

    Attributes
    ----------
    A : ndarray, shape (n_time, n_types, *lattice_shape)
        Activity in Hz.
    types : tuple of str
    record_interval : float
        Sampling interval, ms.
    config : dict
        Nested configuration; ``config["lattice"]`` supplies ``dx`` (mm) and
        ``boundary`` to the spatial statistics.
    """

    A: np.ndarray
    types: tuple
    record_interval: float
    config: dict

    @property
    def shape(self) -> tuple:
        """Lattice shape."""
        return tuple(self.A.shape[2:])


def config_path(name: str) -> str:
    """A packaged configuration's file path for ``name`` (or ``name`` itself if it is a file)."""
    if Path(name).exists():
        return str(name)
    return str(packaged_config(name))


def load(source, overrides=()) -> Config:
    """A configuration from a Config, a dict, a TOML path or a packaged name, with ``--set`` overrides."""
    if isinstance(source, Config):
        source = source.to_dict()
    if not isinstance(source, dict):
        source = config_path(source)
    return load_config(source, list(overrides))


def cpu_seconds() -> float:
    """CPU time (user + system, s) of this process and its terminated children.

    ``meshfield.peers.nest`` runs NEST in a spawned child process, so
    process_time() alone would miss its cost.
    """
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed_run(config: Config, overrides=()):
    """Run ``config`` on this process alone and time it.

    Returns
    -------
    result : MemoryResult
    timing : dict
        ``wall_s`` (whole call, incl. model build) and ``cpu_s`` (CPU time of
        the call, :func:`cpu_seconds`) in seconds, ``loop_wall_s`` (the time
        loop alone, from the result's metadata).
    """
    from mpi4py import MPI

    if overrides:
        config = load(config, overrides)
    wall, cpu = time.perf_counter(), cpu_seconds()
    result = meshfield.run(config, comm=MPI.COMM_SELF)
    timing = dict(wall_s=time.perf_counter() - wall, cpu_s=cpu_seconds() - cpu,
                  loop_wall_s=float(result.meta.get("wall_time", float("nan"))))
    return result, timing


def trimmed(result, discard: float) -> ActivityRecord:
    """The part of a result after the first ``discard`` ms, as an :class:`ActivityRecord`."""
    start = int(math.ceil(discard / result.record_interval - 1e-9))
    return ActivityRecord(np.asarray(result.A[start:], dtype=np.float64), tuple(result.types),
                          float(result.record_interval), dict(result.config))


def concatenate(records) -> ActivityRecord:
    """Join stationary records (independent seeds) in time.

    Segments and blocks of the statistics that straddle a join mix two
    independent runs; choose segment and block lengths that divide each
    record's length so none does.
    """
    records = list(records)
    first = records[0]
    for r in records[1:]:
        if tuple(r.types) != tuple(first.types) or not math.isclose(r.record_interval, first.record_interval):
            raise ValueError("records to concatenate need the same types and record interval")
    return ActivityRecord(np.concatenate([np.asarray(r.A, dtype=np.float64) for r in records]),
                          tuple(first.types), first.record_interval, dict(first.config))


def rebin(A: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor`` consecutive samples along axis 0 (a whole number of groups kept).

    Turns a per-step activity (Hz) into the per-record activity meshfield
    records: the mean over each record interval.
    """
    n = (len(A) // factor) * factor
    return np.asarray(A[:n]).reshape((n // factor, factor) + A.shape[1:]).mean(axis=1)


def mean_se(record, discard: float = 0.0, n_blocks: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Mean activity per type (Hz) and its batch-means standard error (Hz)."""
    from meshfield.analysis import mean_var

    m = mean_var(record, discard=discard, n_blocks=n_blocks)
    return m.mean, m.mean_se


def report_dict(report) -> dict:
    """A :class:`meshfield.analysis.ComparisonReport` as plain data for the JSON."""
    return dict(labels=list(report.labels), passed=report.passed, settings=report.settings,
                rows=[asdict(row) for row in report.rows])


def within(value: float, reference: float, se: float | None = None, *, n_se: float = 3.0,
           relative: float | None = None) -> dict:
    """A check of ``value`` against ``reference``: ``|d| <= n_se * se`` where ``se`` is given,
    and ``|d| <= relative * |reference|`` where ``relative`` is given (both when both are)."""
    diff = value - reference
    ok, rules = True, []
    if se is not None:
        ok = ok and abs(diff) <= n_se * se
        rules.append(f"|d|<={n_se:g}SE")
    if relative is not None:
        ok = ok and abs(diff) <= relative * abs(reference)
        rules.append(f"|d|<={100 * relative:g}%")
    return dict(value=value, reference=reference, se=se, difference=diff,
                relative=diff / reference if reference else float("nan"), rule=" and ".join(rules),
                passed=bool(ok))


def _plain(obj):
    """JSON-safe copy: numpy scalars and arrays to Python, NaN and inf to None."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` as indented JSON (NaN and inf become null)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_plain(data), indent=2) + "\n")


def new_figure(n_rows: int, n_cols: int, width: float = 5.0, height: float = 3.6):
    """A matplotlib figure (Agg canvas, no pyplot state) and its axes array."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width * n_cols, height * n_rows))
    FigureCanvasAgg(figure)
    axes = figure.subplots(n_rows, n_cols, squeeze=False)
    return figure, axes


def save_figure(figure, path: Path, dpi: int = 80) -> None:
    """Save with a tight layout; small PNGs suit the docs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=dpi)


def parser(study: str, description: str) -> argparse.ArgumentParser:
    """Command-line parser with the option every driver shares (``--out``)."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Threads: NUMBA_NUM_THREADS (default 1 in the drivers).")
    p.add_argument("--out", type=Path, default=Path("out") / study,
                   help=f"folder for the figures and {study}.json (default out/{study})")
    return p


def speedup(micro: dict, meso: dict) -> dict:
    """Ratios micro time / meso time of two :func:`timed_run` timings."""
    return dict(wall=micro["wall_s"] / meso["wall_s"], cpu=micro["cpu_s"] / meso["cpu_s"],
                loop_wall=micro["loop_wall_s"] / meso["loop_wall_s"])
