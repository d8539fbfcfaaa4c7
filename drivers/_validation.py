"""Shared pieces of the validation drivers (studies V1-V6 of docs/validation.md)
and the command-line plumbing every driver and benchmark shares.

Every driver runs on one MPI rank (``COMM_SELF``). Run as a script, it uses one
numba thread unless ``NUMBA_NUM_THREADS`` is set: the wall and CPU times of the
two levels are then measured under the same conditions, and on a busy machine
the engine's parallel kernels can be many times slower with more threads than
free cores. It writes figures and ``vN.json`` into its ``--out`` folder. The
drivers import this module by name, so it must sit next to them
(``python drivers/vN_*.py`` puts ``drivers/`` on the path).

Command-line conventions (:func:`run_main`, :func:`parser`, :class:`Outputs`):

* every option is checked, and the configuration loaded with the user's
  overrides, before anything is simulated; bad input ends as one line
  ``DRIVER: error: MESSAGE`` on stderr with exit status 2;
* the output folder is created and tested for writing at startup;
* the summary is printed before any file is written, and the files of a run
  are written under temporary names and renamed into place together at the
  end, so a failure leaves the previous outputs untouched and no partial file;
* exit status 0 when every acceptance check passes, 1 when any fails, 2 for bad
  input or a failed run (:data:`EXIT_STATUS`).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import os
import shlex
import sys
import textwrap
import time
from dataclasses import asdict, dataclass, replace
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
    """A packaged configuration's file path for ``name`` (or ``name`` itself if it is a file,
    or names one: a path or a ``.toml`` name, which loading then reports as missing)."""
    if Path(name).exists() or "/" in str(name) or str(name).endswith(".toml"):
        return str(name)
    return str(packaged_config(name))


def load(source, overrides=()) -> Config:
    """A configuration from a Config, a dict, a TOML path or a packaged name, with ``--set`` overrides."""
    if isinstance(source, Config):
        source = source.to_dict()
    if not isinstance(source, dict):
        source = config_path(source)
    return load_config(source, list(overrides))


def scaled_indegrees(config, factor: float, overrides=()):
    """``config`` with every in-degree C multiplied by ``factor`` (rounded, at
    least 1) and every weight J scaled so that J C is unchanged."""
    d = load(config).to_dict()
    for c in d["couplings"]:
        C = max(1, int(round(c["C"] * factor)))
        c["J"], c["C"] = c["J"] * c["C"] / C, C
    return load(d, list(overrides))


def cpu_seconds() -> float:
    """CPU time (user + system, s) of this process and its terminated children.

    ``meshfield.peers.nest`` runs NEST in a spawned child process, so
    process_time() alone would miss its cost.
    """
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


#: Simulated time (ms) of the untimed run of :func:`warm_up`, at least one record interval.
WARM_UP_MS = 20.0

_warmed: set = set()


def warm_up(config: Config) -> None:
    """Run a short copy of ``config`` once per process, untimed.

    The first run of a configuration in a process compiles its numba kernels
    (or loads them from numba's cache), which can take longer than the run
    itself; a speedup timed over it says more about the cache than about the
    levels. Copies that differ in ``run.t_end`` or ``run.seed`` alone share
    one warm-up.
    """
    from mpi4py import MPI

    key = repr(replace(config, run=replace(config.run, t_end=0.0, seed=0)))
    if key in _warmed:
        return
    short = replace(config, run=replace(config.run, t_end=max(WARM_UP_MS, config.record.interval)))
    meshfield.run(short, comm=MPI.COMM_SELF)
    _warmed.add(key)


def timed_run(config: Config, overrides=()):
    """Run ``config`` on this process alone and time it, after :func:`warm_up`.

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
    warm_up(config)
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


def replacing(path):
    """Context manager: a hidden temporary path beside ``path`` (same suffix, so
    matplotlib picks the format from it) that is renamed onto ``path`` when the
    block succeeds and removed when it fails, leaving ``path`` untouched
    (:func:`meshfield.plot.published`, which ``meshfield plot`` uses too)."""
    from meshfield.plot import published

    return published(path)


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` as indented, strict JSON (NaN and inf become null; numpy
    values become plain numbers) through a temporary file renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_plain(data), indent=2, allow_nan=False) + "\n"
    with replacing(path) as partial:
        partial.write_text(text)


def new_figure(n_rows: int, n_cols: int, width: float = 5.0, height: float = 3.6):
    """A matplotlib figure (Agg canvas, no pyplot state) and its axes array."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width * n_cols, height * n_rows))
    FigureCanvasAgg(figure)
    axes = figure.subplots(n_rows, n_cols, squeeze=False)
    return figure, axes


def save_figure(figure, path: Path, dpi: int = 80) -> None:
    """Save with a tight layout (small PNGs suit the docs), through a temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    with replacing(path) as partial:
        figure.savefig(partial, dpi=dpi)


# ----------------------------------------------------------------------------- command line

#: Exit statuses of every driver (the convention of ``meshfield compare``).
EXIT_PASSED, EXIT_FAILED, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130

#: The exit-status paragraph of every driver's --help (and docs/validation.md).
EXIT_STATUS = ("Exit status: 0 when every acceptance check of the study passes; 1 when any "
               "fails (the numbers are printed and the files written all the same); 2 for bad "
               "input (an option, the configuration or the output folder: nothing is run or "
               "written) or a failed run (a worker or a file that could not be written); 130 "
               "when interrupted. Checks that an option skips are reported as \"not run\" and "
               "do not count.")

#: The exit-status paragraph of the benchmarks' --help (they have no acceptance checks).
BENCH_EXIT_STATUS = ("Exit status: 0 when the benchmark ran; 2 for bad input (an option, the "
                     "configuration or the output folder: nothing is run or written) or a failed "
                     "run (a worker that failed, a file that could not be written); 130 when "
                     "interrupted.")

THREADS = ("Threads: NUMBA_NUM_THREADS (default 1 in the drivers). Documentation: "
           "docs/validation.md.")


class DriverError(Exception):
    """A failure that a driver reports as one line ``DRIVER: error: MESSAGE`` (exit status 2)."""


def input_errors() -> tuple:
    """The meshfield exceptions that mean bad input rather than a bug."""
    from meshfield.analysis import AnalysisInputError
    from meshfield.config import ConfigError
    from meshfield.parallel.decomposition import DecompositionError
    from meshfield.peers.nest import PeerConfigError
    from meshfield.theory import TheoryInputError

    return (ConfigError, AnalysisInputError, TheoryInputError, PeerConfigError, DecompositionError, DriverError)


#: Folders :func:`prepare_out` created in this process, removed again (when still
#: empty) if the run fails.
_CREATED: list = []


def _remove_created() -> None:
    while _CREATED:
        folder = _CREATED.pop()
        try:
            folder.rmdir()
        except OSError:
            pass


def run_main(main, prog: str, argv=None) -> int:
    """Run a driver's ``main(argv)`` and turn its outcome into an exit status.

    ``main`` returns the status (None counts as 0). Bad input raised while it
    runs (an invalid configuration, input the analysis or the theory cannot
    use, a failed worker: :func:`input_errors`) and a file that cannot be
    written (``OSError``) end as one line ``PROG: error: MESSAGE`` on stderr
    and status 2, never a traceback; argparse's own usage errors (status 2)
    pass through. Folders created at startup and left empty are removed.
    """
    try:
        status = main(argv)
    except input_errors() + (OSError,) as exc:
        message = str(exc) or type(exc).__name__
        print(f"{prog}: error: {message}", file=sys.stderr)
        _remove_created()
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        _remove_created()
        return EXIT_INTERRUPTED
    if status == EXIT_ERROR:
        _remove_created()
    return EXIT_PASSED if status is None else int(status)


def command_line(prog: str, argv=None) -> str:
    """The command as the user typed it (``python drivers/PROG ARGS``), for the JSON."""
    args = sys.argv[1:] if argv is None else list(argv)
    return shlex.join(["python", f"drivers/{prog}", *map(str, args)])


def acceptance_line(label: str, acceptance: dict) -> str:
    """The summary line of a study's checks: ``  LABEL: name PASS, name FAIL; overall FAIL``."""
    parts = ", ".join(f"{name} {'PASS' if passed else 'FAIL'}" for name, passed in acceptance.items())
    return f"  {label}: {parts}; overall {'PASS' if all(acceptance.values()) else 'FAIL'}"


def exit_status(checks) -> int:
    """0 when every check passed, 1 when any failed; None entries (not run) do not count."""
    return EXIT_FAILED if any(c is False for c in checks) else EXIT_PASSED


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number (got {text})")
    return value


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer: {text!r}") from None


def _at_least(parse, minimum: float, strict: bool, doc: str):
    """An argparse type: ``parse`` (:func:`_number` or :func:`_whole`), then the
    bound ``> minimum`` (``strict``) or ``>= minimum``."""
    def check(text: str):
        value = parse(text)
        if value < minimum or (strict and value == minimum):
            raise argparse.ArgumentTypeError(f"must be {'>' if strict else '>='} {minimum:g} (got {text})")
        return value
    check.__doc__ = doc
    return check


positive = _at_least(_number, 0, True, "argparse type: a finite number > 0 (durations, factors).")
nonnegative = _at_least(_number, 0, False, "argparse type: a finite number >= 0 (transients).")
positive_int = _at_least(_whole, 1, False, "argparse type: an integer >= 1 (population sizes, ranks, counts).")
nonnegative_int = _at_least(_whole, 0, False, "argparse type: an integer >= 0 (0 usually means: skip).")


def require_segments(p: argparse.ArgumentParser, t_sim: float, segment_ms: float,
                     what: str = "the micro-meso comparison", option: str = "--t-sim") -> None:
    """``p.error`` unless ``option`` (``--t-sim``) holds the two PSD segments the comparison needs."""
    if t_sim < 2 * segment_ms:
        p.error(f"argument {option}: {t_sim:g} ms is too short: {what} needs two PSD segments of "
                f"{segment_ms:g} ms after the transient, so at least {2 * segment_ms:g} ms")


def seed(text: str) -> int:
    """argparse type: a seed, an integer in [0, 2**32 - 1] (run.seed)."""
    value = _whole(text)
    if not 0 <= value <= 2**32 - 1:
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to {2**32 - 1} (got {text})")
    return value


def refuse_duplicates(p: argparse.ArgumentParser, option: str, values) -> None:
    """``p.error`` when ``values`` repeats an entry."""
    if values is None:
        return
    seen, repeated = set(), []
    for v in values:
        if v in seen and v not in repeated:
            repeated.append(v)
        seen.add(v)
    if repeated:
        shown = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in repeated)
        p.error(f"argument {option}: repeated value(s) {shown}")


def check_config(p: argparse.ArgumentParser, source, overrides=(), what: str = "--config/--set"):
    """Load and validate ``source`` with ``overrides`` before any run, including the
    coupling kernels against the lattice (the stencils, cheap to build); ``p.error``
    if anything is invalid. Returns the :class:`Config`."""
    from meshfield.config import ConfigError
    from meshfield.coupling import build_stencils

    try:
        config = load(source, list(overrides))
        build_stencils(config)
    except ConfigError as exc:
        p.error(f"{what}: {exc}")
    return config


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the docstring's layout; wider option column."""

    def __init__(self, prog):
        super().__init__(prog, max_help_position=32)


def epilog(writes: str, default_run: str, exit_status: str = EXIT_STATUS) -> str:
    """The --help epilog: outputs, cost of the default run, exit status, threads."""
    paragraphs = [f"Writes: {writes}", f"Default run: {default_run}", exit_status, THREADS]
    return "\n\n".join(textwrap.fill(par, 79) for par in paragraphs)


def parser(study: str, description: str, *, prog: str, writes: str, default_run: str,
           out_default: Path | None = None, exit_status: str = EXIT_STATUS) -> argparse.ArgumentParser:
    """Command-line parser with the option every driver shares (``--out``).

    The help prints ``description`` (the driver's docstring) as written, and an
    epilog with the files written, the cost of the default run and the exit
    status (the studies' by default).
    """
    p = argparse.ArgumentParser(prog=prog, description=description, formatter_class=HelpFormatter,
                                epilog=epilog(writes, default_run, exit_status))
    default = out_default if out_default is not None else Path("out") / study
    p.add_argument("--out", type=Path, default=default, metavar="FOLDER",
                   help=f"folder for {study}.json and the figures; created if missing (default {default})")
    return p


def _matching(folder: Path, owned) -> set:
    """Names of the files in ``folder`` that match one of the patterns ``owned``."""
    if not folder.is_dir():
        return set()
    names = {entry.name for entry in folder.iterdir() if entry.is_file() or entry.is_symlink()}
    return {n for n in names if any(fnmatch.fnmatchcase(n, pattern) for pattern in owned)}


def prepare_out(p: argparse.ArgumentParser, folder, planned, owned=None, option: str = "--out",
                warnings: list | None = None) -> Path:
    """Create ``folder`` if needed and check that files can be written in it, before any run.

    ``planned`` are the file names this run will write, ``owned`` the names or
    glob patterns of every file the study can write (default: ``planned``).
    Files of an earlier run are announced on stderr: those in ``planned`` will
    be replaced, the others matching ``owned`` (outputs the current options do
    not produce) removed once the new outputs are in place (:class:`Outputs`).
    A driver with two output folders passes a list as ``warnings``, which
    collects the announcements instead, and prints them once both folders have
    passed (bad input gets its one error line alone). Any problem is a usage
    error (``p.error``, exit status 2), after removing the folders this process
    created (and left empty) so far.
    """
    folder = Path(folder)
    owned = list(planned) if owned is None else list(owned)
    if folder.exists() and not folder.is_dir():
        _remove_created()
        p.error(f"argument {option}: {folder} exists and is not a folder")
    missing = []
    parent = folder
    while not parent.exists():
        missing.append(parent)
        if parent.parent == parent:
            break
        parent = parent.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _remove_created()
        p.error(f"argument {option}: cannot create the folder {folder}: {exc.strerror or exc}")
    _CREATED.extend(reversed(missing))
    probe = folder / f".write-test-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        _remove_created()
        p.error(f"argument {option}: cannot write in the folder {folder}: {exc.strerror or exc}")
    existing = _matching(folder, owned)
    replaced = sorted(existing & set(planned))
    stale = sorted(existing - set(planned))
    if replaced or stale:
        parts = []
        if replaced:
            parts.append(f"{', '.join(replaced)} will be replaced")
        if stale:
            parts.append(f"{', '.join(stale)} (not produced with these options) will be removed")
        warning = (f"{p.prog}: warning: {folder} already holds outputs of an earlier run: {'; '.join(parts)} "
                   f"once this run has written its own")
        if warnings is None:
            print(warning, file=sys.stderr)
        else:
            warnings.append(warning)
    return folder


class Outputs:
    """The files one run writes into a folder: all replaced together, or none.

    ``path(name)`` gives a hidden temporary path to write ``name`` to; when the
    ``with`` block ends without an error every file is renamed into place and
    the study's other files (``owned`` patterns, outputs of an earlier run that
    this one did not write) are removed. On an error the temporary files are
    removed and the folder is left as it was.
    """

    def __init__(self, folder, owned=()):
        self.folder = Path(folder)
        self.owned = list(owned)
        self.staged: dict = {}

    def path(self, name: str) -> Path:
        target = self.folder / name
        partial = target.with_name(f".{target.stem}.staged-{os.getpid()}{target.suffix}")
        self.staged[target] = partial
        return partial

    def __enter__(self) -> "Outputs":
        self.folder.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, kind, value, traceback) -> bool:
        if kind is not None:
            self.discard()
            return False
        try:
            for target, partial in self.staged.items():
                os.replace(partial, target)
        except BaseException:
            self.discard()
            raise
        written = {target.name for target in self.staged}
        for name in sorted(_matching(self.folder, self.owned) - written):
            (self.folder / name).unlink(missing_ok=True)
        return False

    def discard(self) -> None:
        for partial in self.staged.values():
            partial.unlink(missing_ok=True)

    @property
    def names(self) -> list:
        return [target.name for target in self.staged]


def write_outputs(folder, json_name: str, data: dict, figures=(), owned=()) -> list:
    """Write a study's figures and JSON into ``folder``, all together (:class:`Outputs`).

    ``figures`` is a sequence of ``(file name, draw)`` where ``draw(path)``
    writes the figure to ``path``; ``owned`` the names or patterns of every file
    the study can write (earlier outputs this run does not replace are removed).
    Returns the names written.
    """
    with Outputs(folder, owned) as outputs:
        for name, draw in figures:
            draw(outputs.path(name))
        write_json(outputs.path(json_name), data)
    return outputs.names


def wrote(folder, names) -> str:
    """The closing line of a driver: what it wrote where."""
    return f"wrote {', '.join(names)} in {folder}"


def synchrony(record) -> np.ndarray:
    """Synchrony index chi per type: std of the lattice mean over the root mean site variance."""
    A = np.asarray(record.A, dtype=np.float64)
    A = A.reshape(A.shape[0], A.shape[1], -1)
    site_var = A.var(axis=0).mean(axis=1)
    return np.sqrt(A.mean(axis=2).var(axis=0) / site_var)


def plot_activity(path: Path, records: dict, types, window_ms: float = 300.0, smooth_ms: float = 5.0) -> None:
    """Space-time plots of the activity along one lattice row (box-smoothed over ``smooth_ms``),
    micro above meso, one column per type: the row y = 0 of a 2-D lattice, the
    whole of a 1-D one."""
    figure, axes = new_figure(2, len(types), width=4.2, height=2.6)
    for r, (level, record) in enumerate(records.items()):
        width = max(1, int(round(smooth_ms / record.record_interval)))
        A = np.asarray(record.A)
        A = np.apply_along_axis(lambda x: np.convolve(x, np.ones(width) / width, mode="same"), 0, A)
        n = int(round(window_ms / record.record_interval))
        # sites along the first axis, at index 0 of the others (none on a 1-D lattice)
        row = A.reshape(A.shape[:3] + (-1,))[..., 0]
        where = "row y = 0" if A.ndim > 3 else "all sites"
        for t, name in enumerate(types):
            ax = axes[r, t]
            image = ax.imshow(row[-n:, t].T, aspect="auto", origin="lower", cmap="viridis",
                              extent=(0, n * record.record_interval, -0.5, A.shape[2] - 0.5),
                              vmin=0, vmax=np.percentile(A[-n:, t], 99))
            ax.set_title(f"{level}: {name}, {where}, {smooth_ms:g} ms boxcar")
            ax.set_xlabel("time (ms, last window)")
            ax.set_ylabel("site x")
            figure.colorbar(image, ax=ax, label="Hz")
    save_figure(figure, path)


def speedup(micro: dict, meso: dict) -> dict:
    """Ratios micro time / meso time of two :func:`timed_run` timings."""
    return dict(wall=micro["wall_s"] / meso["wall_s"], cpu=micro["cpu_s"] / meso["cpu_s"],
                loop_wall=micro["loop_wall_s"] / meso["loop_wall_s"])
