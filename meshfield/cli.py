"""Command line: ``meshfield run | info | plot | compare | analyze``.

Argument parsing only; every command calls a library function. Invalid input
(configuration, decomposition, output path) ends with one line
``meshfield: error: ...`` on rank 0 and exit status 2; under ``mpiexec``, an
error that only some ranks meet aborts the job (:func:`_guarded`).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import time
from pathlib import Path

from . import __version__
from ._console import emit, silence
from .config import ConfigError, load_config

EXIT_USAGE = 2

#: the onset transient that ``compare`` and ``analyze`` discard by default
#: (``--discard``), from a result whose run started at t = 0
DEFAULT_DISCARD_MS = 500.0
DISCARD_HELP = (f"initial transient to discard (ms; default {DEFAULT_DISCARD_MS:g}, or 0 when the results "
                "continue runs from checkpoints, which have no onset transient)")


#: the exception types that mean "bad input" (not a bug), by module
_INPUT_ERRORS = (("io.recorder", "RecorderError"), ("io.result", "ResultError"),
                 ("analysis", "AnalysisInputError"), ("io.checkpoint", "CheckpointError"),
                 ("parallel", "DecompositionError"), ("plot", "PlotInputError"),
                 ("plot", "OutputWriteError"))


def _input_errors() -> tuple:
    """Exception types that mean "bad input" (not a bug).

    A module that cannot be imported (numba failing to start, say) is left
    out rather than raising here: this runs in an ``except`` clause, where an
    error would bypass the handlers below it, and under ``mpiexec`` leave the
    other ranks waiting. The command's own error then reaches them."""
    import importlib

    types = [ConfigError]
    for module, name in _INPUT_ERRORS:
        try:
            types.append(getattr(importlib.import_module(f".{module}", __package__), name))
        except Exception:
            continue
    return tuple(types)


def _rank() -> int:
    try:
        from mpi4py import MPI
        return MPI.COMM_WORLD.Get_rank()
    except Exception:  # pragma: no cover - mpi4py missing is reported elsewhere
        return 0


def _load(args):
    """The configuration of ``args.config`` with ``--set`` and, where the command
    has it, ``--level`` (last, so that it wins over a ``--set run.level``)."""
    overrides = list(args.set or ())
    if getattr(args, "level", None):
        overrides.append(f"run.level={args.level}")
    return load_config(args.config, overrides)


# ----------------------------------------------------------------------------- run

#: suffixes accepted for result and checkpoint files, so that a slip such as
#: ``-o field.toml --overwrite`` cannot replace a configuration
HDF5_SUFFIXES = (".h5", ".hdf5")


def _check_file_option(option: str, path: str) -> None:
    """Refuse an HDF5 path to be written (result, checkpoint) that names a folder or
    lacks an HDF5 suffix."""
    if path.endswith(("/", "\\")):
        stem = path.rstrip("/\\")
        # 'keep.h5/' is a slip for 'keep.h5' (which may be a file), not a folder of runs
        example = stem if Path(stem).suffix.lower() in HDF5_SUFFIXES else f"{path}run.h5"
        raise ConfigError(f"{option} {path!r} names a folder; give a file name, e.g. {example}")
    if Path(path).suffix.lower() not in HDF5_SUFFIXES:
        raise ConfigError(
            f"{option} {path!r}: an HDF5 file name must end in {' or '.join(HDF5_SUFFIXES)}"
        )


def _dims_option(text: str) -> tuple[int, ...]:
    """``--dims 2,2`` as a process grid (its fit to the ranks is checked by the decomposition)."""
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(
            f"--dims {text!r} is invalid: expected ranks per lattice axis as whole numbers "
            f"separated by commas, e.g. 2,2"
        ) from None


def cmd_run(args) -> int:
    from .simulation import run
    config = _load(args)
    out = args.output
    if out is None:
        stem = Path(args.config).stem if args.config else "default"
        out = f"{stem}.h5"
    _check_file_option("-o", out)
    parent = Path(out).resolve().parent
    if not parent.is_dir():
        raise ConfigError(f"-o {out}: the output folder {str(parent)!r} does not exist")
    if args.checkpoint is not None:  # written; --restart is only read
        _check_file_option("--checkpoint", args.checkpoint)
    dims = _dims_option(args.dims) if args.dims else None

    def warn():
        """After run()'s own checks: bad input gets its one error line alone."""
        if not args.quiet:
            for warning in config_warnings(config):
                print(f"meshfield run: warning: {warning}", file=sys.stderr)

    result = run(config, output=out, overwrite=args.overwrite, progress=not args.quiet, dims=dims,
                 checkpoint=args.checkpoint, restart=args.restart, on_start=warn)
    result.close()
    return 0


# ----------------------------------------------------------------------------- info


def describe(config, ranks: int = 1, dims=None) -> str:
    """The resolved model as text: lattice, types, stencils, K, d_min, memory and
    process grid for ``ranks`` ranks (``dims`` as for ``meshfield run --dims``;
    no MPI communication)."""
    import numpy as np
    from .coupling import build_stencils, halo_width, min_delay
    from .meso.model import history_length
    from .parallel import block_range, check_halo, halo_cells_sent, process_grid

    lat = config.lattice
    st = build_stencils(config)
    h = halo_width(st)
    dmin = min_delay(st)
    dims = process_grid(ranks, lat.shape, dims, h)
    check_halo(lat.shape, dims, lat.boundary == "periodic", h)
    largest = tuple(block_range(n, p, 0)[1] for n, p in zip(lat.shape, dims))
    n_local = int(np.prod(largest))
    lines = [
        f"meshfield {__version__}: {config.run.level} level"
        + (" (mean field)" if config.run.mean_field else ""),
        # the steps simulated: round(t_end/dt) cut down to whole records (docs/configuration.md)
        f"run:      t_end = {config.run.t_end} ms, dt = {config.run.dt} ms "
        f"({config.n_records * config.record_every} steps), "
        f"seed = {config.run.seed}, noise = {config.run.noise}",
        f"lattice:  shape {tuple(lat.shape)} ({int(np.prod(lat.shape))} sites), dx = {lat.dx} mm, "
        f"{lat.boundary}",
        f"record:   every {config.record.interval} ms ({config.n_records} records)",
        "types:",
    ]
    for p in config.populations:
        adapt = ", ".join(f"{t:g} ms/{j:g} mV ms" for t, j in zip(p.tau_theta, p.J_theta)) or "none"
        # the history length K exists at the meso level only (docs/configuration.md)
        history = ""
        if config.run.level == "meso":
            K = history_length(p, config.run.dt)
            history = f"; K = {K} steps ({K * config.run.dt:g} ms)"
        lines.append(f"  {p.name:>6}: N = {p.N}, mu = {p.mu} mV, tau_m = {p.tau_m} ms, t_ref = {p.t_ref} ms, "
                     f"adaptation {adapt}{history}")
    lines.append("couplings:")
    for s in st:
        lines.append(f"  {config.types[s.target]:>6} <- {config.types[s.source]:<6} J = {s.J:g} mV, "
                     f"C = {s.C}, {len(s.weights)} offsets (radius {s.radius_sites} sites), "
                     f"delays {s.delays.min()}..{s.delays.max()} steps")
    if not st:
        lines.append("  none")
    lines.append("stimuli:")
    for i, stim in enumerate(config.stimuli):
        lines.append(f"  [{i}] {stim.kind} on {', '.join(stim.types)}, amplitude {stim.amplitude:g} mV, "
                     f"{_stimulus_timing(config, stim)}")
    if not config.stimuli:
        lines.append("  none")
    lines.append(f"halo width {h} sites, d_min = {dmin} steps ({dmin * config.run.dt:g} ms): "
                 + (f"ranks exchange once every {dmin} step(s)" if dmin else "no couplings, no exchange"))
    lines.append(f"process grid for {ranks} rank(s): {tuple(dims)}, largest block {largest} "
                 f"({n_local} sites)")
    if config.run.level == "meso":
        from .meso.model import resources
        r = resources(config, st, largest, h)
        cells = halo_cells_sent(largest, dims, lat.boundary == "periodic", h)
        sent = cells * len(config.populations) * dmin * 8
        lines.append(f"memory per rank (meso): {r['state_bytes'] / 2**20:.1f} MiB cohort state "
                     f"({config.run.cohort_dtype}) + "
                     f"{r['history_bytes'] / 2**20:.2f} MiB spike-count history + "
                     f"{r['block_bytes'] / 2**20:.2f} MiB of arrays for a block of {r['block_steps']} step(s)")
        lines.append(f"communication: <= {sent / 1024:.1f} KiB per rank per exchange "
                     f"({cells} halo cells sent x types x d_min x 8 bytes)")
        lines.append(_buffers_line(config, n_local))
    else:
        from .micro.model import mean_field_rate, resources
        rate, why = mean_field_rate(config)
        r = resources(config, st, largest, h, dims, lat.boundary == "periodic", rate or 0.0)
        lines.append(f"micro level per rank: {r['neurons']} neurons, {r['synapses']} synapses, "
                     f"{r['memory_bytes'] / 2**20:.1f} MiB ({r['bytes_per_synapse']:.2f} bytes per synapse), "
                     f"{r['peak_bytes'] / 2**20:.1f} MiB while the connectivity is built")
        spikes = (f"{r['spike_bytes'] / 2**20:.2f} MiB for its spikes at {r['spike_rate']:.1f} Hz "
                  f"(twice the mean-field rate, for the first blocks and the allocator)"
                  if rate is not None else f"its spikes not counted (no mean-field rate: {why})")
        lines.append(f"plus {r['block_arrays_bytes'] / 2**20:.2f} MiB of arrays for a block of {r['block_steps']} "
                     f"step(s) and {spikes}")
        lines.append(_buffers_line(config, n_local))
        if not dmin:
            lines.append("spike traffic: none (no couplings)")
        elif not r["bytes_per_exchange_per_hz"]:
            lines.append(f"spike traffic: none (no neighbour ranks on the process grid {tuple(dims)})")
        elif rate is not None:
            lines.append(f"spike traffic per exchange (every {dmin} steps), at the mean-field rate "
                         f"{rate:.1f} Hz: about {r['spikes_per_exchange_per_hz'] * rate:.0f} spikes, "
                         f"{r['bytes_per_exchange_per_hz'] * rate / 1024:.1f} KiB per rank (in proportion "
                         "to the rate the network fires at)")
        else:
            lines.append(f"spike traffic per exchange (every {dmin} steps): about "
                         f"{r['spikes_per_exchange_per_hz']:.1f} spikes, "
                         f"{r['bytes_per_exchange_per_hz'] / 1024:.2f} KiB per rank per Hz of mean rate "
                         "(no mean-field rate to scale by)")
    return "\n".join(lines)


def _buffers_line(config, n_local: int) -> str:
    """``info``'s line on the memory a rank takes besides its model."""
    from .simulation import BASE_BYTES, RECORD_BUFFER, record_buffer_bytes
    return (f"plus {record_buffer_bytes(config, n_local) / 2**20:.1f} MiB of record buffers (up to "
            f"{RECORD_BUFFER} records of A and Abar) and about {BASE_BYTES / 2**20:.0f} MiB per rank for "
            "Python, numba, MPI and h5py")


def _acting_steps(config, stim) -> tuple[int, float, int]:
    """The first step a stimulus acts in (not before 0), the step it stops at (inf
    for never), and the steps the run simulates (whole records)."""
    first, end = stim.step_window(config.run.dt)
    return max(first, 0), end, config.n_records * config.record_every


def _stimulus_timing(config, stim) -> str:
    """When a stimulus acts, in steps and ms, and whether the run reaches it."""
    dt = config.run.dt
    first, end, n_steps = _acting_steps(config, stim)
    if first >= n_steps:
        return f"from step {first} ({first * dt:g} ms): after the end of the run, never acts"
    until = "to the end" if end >= n_steps else f"to step {end - 1} (until {end * dt:g} ms)"
    return f"from step {first} ({first * dt:g} ms) {until}"


#: The lengths that set each kernel shape's reach besides r_max (a tophat's radius may be the shorter).
_KERNEL_WIDTHS = {"gaussian": ("sigma",), "exponential": ("length",), "tophat": ("radius",),
                  "dog": ("sigma_center", "sigma_surround")}


def config_warnings(config) -> list[str]:
    """Legal settings that probably do not do what was meant: a stimulus that starts
    at or after the end of the run, a refractory period or a constant delay that is
    not a whole number of steps, and (meso level) an explicit history length K shorter than the
    membrane's memory; a coupling that is left out (C or J zero), a spatial kernel that
    reaches no other site, and recording of neurons at the meso level, which has none."""
    from .config import refractory_steps, to_steps
    from .coupling import build_stencil
    from .meso.model import K_MIN_TAU_M
    dt = config.run.dt
    warnings = []
    for i, c in enumerate(config.couplings):
        if c.C == 0 or c.J == 0.0:
            warnings.append(f"couplings[{i}] ({c.source} -> {c.target}) has {'C = 0' if c.C == 0 else 'J = 0'}: "
                            "it is left out")
        elif c.kernel.shape not in ("delta", "custom") and len(build_stencil(config, i).offsets) == 1:
            widths = "".join(f"{name} = {getattr(c.kernel, name):g} mm, " for name in _KERNEL_WIDTHS[c.kernel.shape])
            warnings.append(f"couplings[{i}].kernel ({c.kernel.shape}, {widths}r_max = {c.kernel.r_max:g} mm) reaches "
                            f"no site but the target's own at lattice.dx = {config.lattice.dx:g} mm: it acts as a "
                            "delta kernel")
    if config.run.level == "meso":
        for key in ("spikes_per_site", "voltage_neurons"):
            if getattr(config.record, key):
                warnings.append(f"record.{key} = {getattr(config.record, key)} is ignored at the meso level, "
                                "which has no single neurons (it records A and Abar only)")
    for i, stim in enumerate(config.stimuli):
        first, _, n_steps = _acting_steps(config, stim)
        if first >= n_steps:
            warnings.append(f"stimuli[{i}] ({stim.kind}) starts at {first * dt:g} ms, at or after "
                            f"the end of the run (run.t_end = {config.run.t_end:g} ms): it never acts")
        sampling = 1000.0 / config.record.interval  # records per second
        if stim.kind == "grating" and abs(stim.frequency) > sampling / 2:
            seen = stim.frequency - round(stim.frequency / sampling) * sampling
            way = "travelling the other way" if seen * stim.frequency < 0 else "in the same direction"
            warnings.append(f"stimuli[{i}].frequency = {stim.frequency:g} Hz is beyond the Nyquist rate of the "
                            f"records ({sampling / 2:g} Hz at record.interval = {config.record.interval:g} ms): "
                            f"the records alias it, a wave at {abs(seen):g} Hz {way}; record.interval "
                            f"< {500.0 / abs(stim.frequency):.3g} ms records it")
    for i, c in enumerate(config.couplings):
        # a delay that varies with distance is rounded per offset, as documented; a
        # constant one is a single number the user chose, like t_ref
        constant = not math.isfinite(c.delay.velocity) or c.kernel.shape == "delta"
        d = to_steps(c.delay.d0, dt)
        if constant and abs(c.delay.d0 / dt - d) > 1e-9:
            warnings.append(f"couplings[{i}].delay.d0 = {c.delay.d0:g} ms is not a whole number of steps "
                            f"of run.dt = {dt:g} ms: both levels deliver the spikes of {c.source} to "
                            f"{c.target} after {d} step(s) ({d * dt:g} ms)")
    for p in config.populations:
        if not p.t_ref / dt < 2**53:  # absurd values are the run's to refuse, by name
            continue
        n_ref = refractory_steps(p.t_ref, dt)
        if abs(p.t_ref / dt - n_ref) > 1e-9:
            warnings.append(f"populations.{p.name}.t_ref = {p.t_ref:g} ms is not a whole number of steps of "
                            f"run.dt = {dt:g} ms: both levels hold the neuron refractory for {n_ref} step(s) "
                            f"({n_ref * dt:g} ms)")
        shortest = K_MIN_TAU_M * p.tau_m + p.t_ref
        if config.run.level == "meso" and p.K > 0 and p.K * dt < shortest - 1e-9:
            warnings.append(f"populations.{p.name}.K = {p.K} steps ({p.K * dt:g} ms) is shorter than "
                            f"5 tau_m + t_ref = {shortest:g} ms, the shortest history the automatic choice "
                            f"allows: neurons older than K steps join the free pool at its membrane "
                            f"potential, far from their own, and the rates can be far off (K = 0 chooses "
                            f"automatically)")
    return warnings


def cmd_info(args) -> int:
    config = _load(args)
    if _rank() == 0:
        print(describe(config, args.ranks, _dims_option(args.dims) if args.dims else None))
        for warning in config_warnings(config):
            print(f"meshfield info: warning: {warning}", file=sys.stderr)
    return 0


# ----------------------------------------------------------------------------- plot


def _distinct_targets(results, outputs, error) -> None:
    """Refuse an output path that is the file of an input result or of another
    output, before anything is read or drawn. ``outputs`` are ``(option, path)``
    pairs, ``path`` None for an option not given. A master file may have any
    name, even one ending in .png or .json, and writing there would replace it."""
    taken = {Path(result).resolve(): f"the result {result!r}" for result in results}
    for option, path in outputs:
        if path is None:
            continue
        key = Path(path).resolve()
        if key in taken:
            raise error(f"{option} {path!r} is also the file of {taken[key]}; give each output its own file, "
                        "other than the results")
        taken[key] = option


def cmd_plot(args) -> int:
    from . import open_result
    from .analysis import AnalysisInputError
    from .plot import (PlotInputError, animate, check_figure_target, check_plot_options, overview,
                       plot_psd, raster)
    out = args.output or str(Path(args.result).with_suffix(".png"))
    # Refuse every unwritable or shared target before drawing anything.
    figures = (("-o", out), ("--psd", args.psd), ("--raster", args.raster), ("--animate", args.animate))
    for option, path in figures:
        if path is not None:
            check_figure_target(path, option, animation=option == "--animate")
    _distinct_targets((args.result,), figures, PlotInputError)
    with open_result(args.result) as res:
        # --every matters only for --animate
        for option, value in (("--time", dict(time=args.time)),
                              ("--every", dict(every=args.every if args.animate else 1)),
                              ("--raster", dict(raster=bool(args.raster)))):
            try:
                check_plot_options(res, **value)
            except PlotInputError as exc:
                raise PlotInputError(f"{option}: {exc}") from exc
        # The PSD is the one figure whose input may be too short: draw it first,
        # so that a refusal leaves nothing written.
        if args.psd:
            try:
                plot_psd(res, args.psd)
            except AnalysisInputError as exc:
                raise AnalysisInputError(f"--psd {args.psd}: {exc}") from exc
        overview(res, out, time=args.time)
        if args.psd:
            print(f"wrote {args.psd}")
        print(f"wrote {out}")
        if args.raster:
            raster(res, args.raster)
            print(f"wrote {args.raster}")
        if args.animate:
            animate(res, args.animate, every=args.every,
                    progress=None if args.quiet else _CountProgress("meshfield plot", "frame"))
            print(f"wrote {args.animate}")
    return 0


# ----------------------------------------------------------------------------- compare


def _bistable_option(text: str) -> dict:
    """``--bistable LOW,HIGH,WINDOW_MS`` as the keyword arguments of the comparison.

    Raises
    ------
    CompareInputError
        Naming the option, the value and what is allowed: three finite
        numbers with ``LOW < HIGH`` and ``WINDOW_MS > 0``.
    """
    from .analysis import CompareInputError
    allowed = ("expected LOW,HIGH,WINDOW_MS: three finite numbers, thresholds LOW < HIGH (Hz) and a "
               "smoothing window WINDOW_MS > 0 (ms), e.g. 5,15,50")
    parts = text.split(",")
    try:
        low, high, window = (float(v) for v in parts)
    except ValueError:
        raise CompareInputError(f"--bistable {text!r}: {allowed}") from None
    if not all(math.isfinite(v) for v in (low, high, window)):
        problem = "a value is not finite"
    elif not low < high:
        problem = f"LOW = {low:g} is not below HIGH = {high:g}"
    elif not window > 0:
        problem = f"WINDOW_MS = {window:g} is not positive"
    else:
        return dict(low=low, high=high, window_ms=window)
    raise CompareInputError(f"--bistable {text!r}: {problem}; {allowed}")


def _check_bistable_types(option: str, label: str, result) -> None:
    """The state signal of ``--bistable`` needs two types, or one type on two sites."""
    from .analysis import CompareInputError
    types = list(result.types)
    sites = math.prod(result.shape)
    if len(types) == 2 or (len(types) == 1 and sites == 2):
        return
    raise CompareInputError(
        f"--bistable {option!r} needs a result with two population types (the state signal is the "
        f"activity of the first minus that of the second), or one type on a lattice of two sites; "
        f"{label} has {len(types)} type(s) {types} on {sites} site(s)"
    )


def _same_file(path_a: str, path_b: str) -> bool:
    try:
        return os.path.samefile(path_a, path_b)
    except OSError:
        return False


class _StageProgress:
    """Progress of ``meshfield analyze`` and ``compare`` on stderr: at the start
    of a stage, one line once ``interval`` seconds have passed since the start
    or the last line (none for an analysis that takes less)."""

    def __init__(self, command: str, interval: float = 10.0, stream=None):
        self.command = command
        self.interval = interval
        self.stream = stream or sys.stderr
        self.start = self.last = time.perf_counter()

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if now - self.last < self.interval:
            return
        self.last = now
        emit(f"[meshfield {self.command}] {stage} (stage {done + 1} / {total})  "
             f"wall {now - self.start:8.1f} s", self.stream)


#: the options of compare and analyze, by the meshfield.analysis parameter each sets
_OPTION_OF = {"discard": "--discard", "segment_ms": "--segment-ms", "n_bands": "--bands", "n_blocks": "--blocks",
              "max_distance": "--max-distance", "wave_ms": "--wave-ms"}


def _in_options(exc: Exception, params) -> str:
    """The message of ``exc`` in the words of the command line: in an analysis
    error, ``name = value`` of a parameter set by an option (one of ``params``)
    reads ``--option value``, a hint ``(name)`` reads ``(--option)``, and the
    transient discarded names ``--discard``."""
    from .analysis import AnalysisInputError
    message = str(exc)
    if isinstance(exc, AnalysisInputError):
        for name in params:
            message = re.sub(rf"(?<![\w-]){name} = ", f"{_OPTION_OF[name]} ", message)
            message = message.replace(f"({name})", f"({_OPTION_OF[name]})")
        if "discard" in params:
            message = re.sub(r"after discarding (the first )?(\S+) ms", r"after discarding \1\2 ms (--discard)",
                             message)
    return message


def cmd_compare(args) -> int:
    from contextlib import ExitStack

    from . import open_result
    from .analysis import compare_results, plot_comparison
    from .analysis._record import onset_discard
    from .plot import check_figure_target
    with ExitStack() as stack:
        try:
            bistable = _bistable_option(args.bistable) if args.bistable else None
            if args.figure:
                check_figure_target(args.figure, "--figure")
                _distinct_targets((args.reference, args.other), (("--figure", args.figure),), ValueError)
            a = stack.enter_context(open_result(args.reference))
            b = stack.enter_context(open_result(args.other))
            if bistable is not None:
                for label, res in ((args.reference, a), (args.other, b)):
                    _check_bistable_types(args.bistable, label, res)
            discard = args.discard if args.discard is not None else onset_discard(DEFAULT_DISCARD_MS, a, b)
            report = compare_results(a, b, discard=discard, bistable=bistable, segment_ms=args.segment_ms,
                                     n_blocks=args.blocks, labels=(args.reference, args.other),
                                     progress=None if args.quiet else _StageProgress("compare"))
        except (OSError, ValueError) as exc:  # every bad-input error of meshfield is a ValueError
            print(f"meshfield compare: unusable input: {_in_options(exc, ('discard', 'segment_ms', 'n_blocks'))}",
                  file=sys.stderr)
            return EXIT_USAGE
    if _same_file(args.reference, args.other):
        print(f"meshfield compare: warning: {args.reference} and {args.other} are the same file, so "
              f"every quantity agrees with itself and the comparison passes trivially", file=sys.stderr)
    print(report.format_text())
    if args.figure and not _written("compare", "--figure", args.figure,
                                    lambda: plot_comparison(report, args.figure)):
        return EXIT_USAGE
    return 0 if report.passed else 1


# ----------------------------------------------------------------------------- analyze


def _check_json_target(path: str, option: str = "--json") -> Path:
    """Refuse a JSON output path that lacks ``.json``, names a folder or lies in a
    missing or unwritable folder, before any analysis runs."""
    from .analysis import AnalysisInputError
    from .plot import check_output_file
    if Path(path).suffix.lower() != ".json":
        raise AnalysisInputError(f"{option} {path!r}: the file name must end in .json")
    return check_output_file(path, option, AnalysisInputError)


def _write_json(target: Path, data: dict) -> None:
    """Write ``data`` to ``target`` whole or not at all (a temporary name, then a rename)."""
    import json

    from .plot import published
    with published(target) as partial:
        partial.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")


def cmd_analyze(args) -> int:
    from . import open_result
    from .analysis import summarize
    from .analysis._record import onset_discard
    try:
        bistable = _bistable_option(args.bistable) if args.bistable else None
        target = _check_json_target(args.json) if args.json is not None else None
        if target is not None:
            _distinct_targets((args.result,), (("--json", args.json),), ValueError)
        with open_result(args.result) as res:
            if bistable is not None:
                _check_bistable_types(args.bistable, args.result, res)
            discard = args.discard if args.discard is not None else onset_discard(DEFAULT_DISCARD_MS, res)
            summary = summarize(res, discard=discard, segment_ms=args.segment_ms, n_bands=args.bands,
                                n_blocks=args.blocks, max_distance=args.max_distance, bistable=bistable,
                                wave_ms=args.wave_ms, label=args.result,
                                progress=None if args.quiet else _StageProgress("analyze"))
    except (OSError, ValueError) as exc:  # every bad-input error of meshfield is a ValueError
        print(f"meshfield analyze: unusable input: {_in_options(exc, _OPTION_OF)}", file=sys.stderr)
        return EXIT_USAGE
    return _report(summary, "analyze", target, args.json)


def _report(report, command: str, target: Path | None, json_path: str | None) -> int:
    """Print ``report.format_text()`` and write ``report.to_dict()`` to the JSON
    ``target`` (already checked) if one was asked for; the exit status."""
    print(report.format_text())
    if target is not None and not _written(command, "--json", json_path,
                                           lambda: _write_json(target, report.to_dict())):
        return EXIT_USAGE
    return 0


def _written(command: str, option: str, path: str, write) -> bool:
    """Call ``write()``, which writes ``path`` through :func:`meshfield.plot.published`
    after the report was printed, and say so; if the system fails to write (a
    full disk, a name too long for the hidden temporary), say that in one line
    instead and return False: nothing was written at ``path``."""
    try:
        write()
    except OSError as exc:
        print(f"meshfield {command}: cannot write {option} {path!r}: {exc.strerror or exc}; "
              "nothing was written", file=sys.stderr)
        return False
    print(f"wrote {path}")
    return True


# ----------------------------------------------------------------------------- steady


class _CountProgress:
    """Progress of a command that works through ``total`` items (``meshfield steady``'s
    modes, ``plot --animate``'s frames) on stderr: one line every ``interval``
    seconds (none for work that takes less). The ETA is measured from the first
    item on, after whatever came before it."""

    def __init__(self, command: str, item: str, interval: float = 10.0, stream=None):
        self.command, self.item = command, item
        self.interval = interval
        self.stream = stream or sys.stderr
        self.start = self.last = time.perf_counter()
        self.first = None

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        if now - self.last < self.interval:
            return
        self.last = now
        eta = f"{(now - self.first) * (total - done) / (done - 1):8.1f} s" if done > 1 else f"{'-':>8} s"
        emit(f"[{self.command}] {self.item} {done} / {total} ({100 * done / total:5.1f} %)  "
             f"wall {now - self.start:8.1f} s  ETA {eta}", self.stream)


def cmd_steady(args) -> int:
    from .theory import stability
    try:
        target = _check_json_target(args.json) if args.json is not None else None
        progress = None if args.quiet else _CountProgress("meshfield steady", "mode")
        config = _load(args)
        if args.rates0 is not None and (len(args.rates0) != len(config.types)
                                        or not all(0.0 < r < math.inf for r in args.rates0)):
            raise ValueError(f"--rates0 {' '.join(f'{r:g}' for r in args.rates0)} is invalid: expected one "
                             f"finite rate > 0 Hz per type ({', '.join(config.types)})")
        report = stability(config, name=args.config or "default", progress=progress, rates0=args.rates0)
    except (OSError, ValueError) as exc:  # ConfigError and TheoryInputError are ValueErrors
        print(f"meshfield steady: unusable input: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return _report(report, "steady", target, args.json)


# ----------------------------------------------------------------------------- main


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose usage errors and help only the first rank prints
    under ``mpiexec`` or ``srun`` (every rank parses the same arguments). The
    rank is read from the launcher's environment, so that a usage error does
    not wait for MPI to start."""

    def _print_message(self, message, file=None):
        rank = next((os.environ[v] for v in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "SLURM_PROCID")
                     if v in os.environ), "0")
        if rank.strip() in ("", "0"):
            super()._print_message(message, file)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="meshfield",
        description="Stochastic neural fields of finite-size GLIF populations on MPI-distributed lattices.",
    )
    p.add_argument("--version", action="version", version=f"meshfield {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def config_args(q):
        q.add_argument("config", nargs="?", default=None,
                       help="TOML file or packaged example name (default: the packaged default)")
        q.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="override a value, e.g. --set run.t_end=2000 --set couplings.0.J=0.4")

    q = sub.add_parser("run", help="run a simulation (also under mpiexec -n R)")
    config_args(q)
    q.add_argument("-o", "--output", help="result file OUT.h5 (default: CONFIG-STEM.h5)")
    q.add_argument("--overwrite", action="store_true", help="replace an existing result")
    q.add_argument("--level", choices=("meso", "micro"), help="override run.level")
    q.add_argument("--dims", help="explicit process grid, e.g. 2,2")
    q.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    q.add_argument("--checkpoint", metavar="CKPT.h5",
                   help="write the complete state at the end of the run (docs/checkpoints.md)")
    q.add_argument("--restart", metavar="CKPT.h5",
                   help="continue from a checkpoint to run.t_end (same configuration otherwise; "
                        "any rank count)")
    q.set_defaults(func=cmd_run)

    q = sub.add_parser("info", help="print the resolved model, memory and process grid")
    config_args(q)
    q.add_argument("-n", "--ranks", type=int, default=1, help="rank count for the estimates")
    q.add_argument("--dims", help="explicit process grid, e.g. 2,2 (as for run)")
    q.add_argument("--level", choices=("meso", "micro"), help="override run.level (as for run)")
    q.set_defaults(func=cmd_info)

    q = sub.add_parser("plot", help="figures of a result: snapshot, space-time, mean; PSD; raster; animation")
    q.add_argument("result", help="a result file OUT.h5")
    q.add_argument("-o", "--output", help="overview image (default: RESULT.png; any matplotlib format)")
    q.add_argument("--time", type=float, help="snapshot time (ms); default: most structured record")
    q.add_argument("--psd", metavar="PNG", help="also write the power spectral density")
    q.add_argument("--animate", metavar="GIF_OR_MP4", help="also write an animation of the field")
    q.add_argument("--every", type=int, default=5, help="animation: every n-th record")
    q.add_argument("--raster", metavar="PNG",
                   help="also write a raster of the recorded spike trains (micro level, record.spikes_per_site)")
    q.add_argument("-q", "--quiet", action="store_true", help="no progress output (--animate)")
    q.set_defaults(func=cmd_plot)

    q = sub.add_parser("compare", help="compare the statistics of two results (VALIDATION.md rules)")
    q.add_argument("reference", help="the reference result (tolerances are relative to it)")
    q.add_argument("other", help="the result under test")
    q.add_argument("--discard", type=float, default=None, help=DISCARD_HELP)
    q.add_argument("--segment-ms", type=float, default=1000.0, metavar="MS",
                   help="PSD segment length (default 1000 ms: 1 Hz bins, the lowest band edge of "
                        "VALIDATION.md); both records need two segments after --discard")
    q.add_argument("--blocks", type=int, default=20, metavar="N",
                   help="time blocks for the standard errors of the means, variances and correlations "
                        "(default 20; fewer, longer blocks when the activity is correlated over long times)")
    q.add_argument("--bistable", metavar="LOW,HIGH,WINDOW_MS",
                   help="also compare dwell times: hysteresis thresholds (Hz) on A_0 - A_1 "
                        "smoothed over WINDOW_MS (see docs/analysis.md)")
    q.add_argument("--figure", metavar="PNG", help="write a comparison figure")
    q.add_argument("-q", "--quiet", action="store_true",
                   help="no progress lines (otherwise one on stderr at the start of a stage, at most "
                        "every 10 s, on results that take that long)")
    q.set_defaults(func=cmd_compare)

    q = sub.add_parser("analyze", help="the statistics of one result: moments, spectra, correlations, "
                                       "patterns, waves, dwell times")
    q.add_argument("result", help="a result file OUT.h5")
    q.add_argument("--discard", type=float, default=None, help=DISCARD_HELP)
    q.add_argument("--segment-ms", type=float, default=None, metavar="MS",
                   help="PSD segment length (ms; default 1000, or half the record if shorter than 2 s)")
    q.add_argument("--bands", type=int, default=8, help="log-spaced PSD bands (default 8)")
    q.add_argument("--blocks", type=int, default=20, metavar="N",
                   help="time blocks for the standard errors (default 20; fewer for short records)")
    q.add_argument("--max-distance", type=float, default=2.0, metavar="D",
                   help="largest lattice distance of the correlations (site spacings; default 2)")
    q.add_argument("--bistable", metavar="LOW,HIGH,WINDOW_MS",
                   help="also count switches and dwell times: hysteresis thresholds (Hz) on A_0 - A_1 "
                        "smoothed over WINDOW_MS")
    q.add_argument("--wave-ms", type=float, default=None, metavar="MS",
                   help="duration of the space-time analysis of waves (ms; default: all, within 2**23 "
                        "samples x sites)")
    q.add_argument("--json", metavar="OUT.json", help="also write the numbers as JSON")
    q.add_argument("-q", "--quiet", action="store_true",
                   help="no progress lines (otherwise one on stderr at the start of a stage, at most "
                        "every 10 s, on results that take that long)")
    q.set_defaults(func=cmd_analyze)

    q = sub.add_parser("steady", help="the homogeneous steady state and its linear stability: growth rate, "
                                      "frequency and wave number of the fastest mode (mean-field theory)")
    config_args(q)
    q.add_argument("--rates0", type=float, nargs="+", metavar="HZ",
                   help="one rate per type, in the configuration's order: of several steady states "
                        "(the report lists them), analyse the one nearest these rates")
    q.add_argument("--json", metavar="OUT.json", help="also write the numbers as JSON")
    q.add_argument("-q", "--quiet", action="store_true",
                   help="no progress lines (otherwise one on stderr every 10 s on a large lattice)")
    q.set_defaults(func=cmd_steady)
    return p


#: Commands that read results and write figures: serial. Started under mpiexec,
#: rank 0 does the work and every rank returns its exit status.
SERIAL_COMMANDS = ("plot", "compare", "analyze", "steady")


def _on_rank_zero(func, args) -> int:
    """Run ``func(args)`` on rank 0 of COMM_WORLD only and give every rank its status."""
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    status = EXIT_USAGE
    try:
        if comm.rank == 0:
            status = _guarded(func, args, collective=False)
    finally:
        status = comm.bcast(status, root=0)
    return status


class _PipeSafe:
    """A stand-in for ``sys.stdout`` that falls silent when the reader goes away
    (``meshfield info | head -1``, ``meshfield compare ... | head``): the command
    completes and keeps its exit status, without a BrokenPipeError traceback. The
    file descriptor is pointed at /dev/null, so later writes and the flush at
    interpreter exit succeed quietly."""

    def __init__(self, stream):
        self._stream = stream

    def _silence(self) -> None:
        silence(self._stream)

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._silence()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._silence()

    def __getattr__(self, name):
        return getattr(self._stream, name)


def main(argv=None) -> int:
    if sys.stdout is None:  # started with stdout closed: print() does nothing
        return _main(argv)
    stdout, sys.stdout = sys.stdout, _PipeSafe(sys.stdout)
    try:
        return _main(argv)
    finally:
        # what is still buffered must go through the wrapper too: a buffered
        # stdout (no PYTHONUNBUFFERED) would otherwise fail at interpreter exit
        sys.stdout.flush()
        sys.stdout = stdout


#: options whose value may start with a minus sign (argparse would take "-2,2,30" for an option)
_SIGNED_VALUES = ("--bistable",)


def _signed_values(argv: list) -> list:
    """``--bistable -2,2,30`` as ``--bistable=-2,2,30``: the thresholds on the
    signal A_0 - A_1, which is symmetric about 0, are often negative."""
    joined, i = [], 0
    while i < len(argv):
        # argparse also takes an unambiguous abbreviation (--bist); "--b" alone is ambiguous
        abbreviates = len(argv[i]) >= 4 and any(option.startswith(argv[i]) for option in _SIGNED_VALUES)
        if abbreviates and i + 1 < len(argv) and re.match(r"-[\d.]", argv[i + 1]):
            joined.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            joined.append(argv[i])
            i += 1
    return joined


def _main(argv=None) -> int:
    argv = _signed_values(list(sys.argv[1:] if argv is None else argv))
    args = build_parser().parse_args(argv)
    if getattr(args, "ranks", 1) is not None and getattr(args, "ranks", 1) < 1:
        print("meshfield: error: --ranks must be >= 1", file=sys.stderr)
        return EXIT_USAGE
    if args.command in SERIAL_COMMANDS and _world_size() > 1:
        return _on_rank_zero(args.func, args)
    return _guarded(args.func, args)


def _world_size() -> int:
    try:
        from mpi4py import MPI
        return MPI.COMM_WORLD.Get_size()
    except Exception:  # pragma: no cover - mpi4py missing is reported elsewhere
        return 1


#: Seconds a failing rank of a collective command waits for the other ranks to
#: fail too (bad input is found on every rank at once) before it aborts the job.
AGREE_S = 5.0


class Terminated(BaseException):
    """SIGTERM (``kill``, ``timeout``, a batch system's time limit) as an
    exception, so a run discards its unfinished output as it does on Ctrl-C."""


def _raise_terminated(signum, frame):
    raise Terminated()


def _guarded(func, args, collective: bool = True) -> int:
    """``func(args)`` with bad input reported as one line and exit status 2.

    Under ``mpiexec``, in a command that every rank runs (``collective``), a
    rank that fails waits up to :data:`AGREE_S` seconds for every other rank to
    fail too, as they do on bad input, which every rank finds at once. If they
    do not (an error on one rank only, Ctrl-C while the others wait in an
    exchange), it says so, removes the run's temporaries and aborts the MPI job
    instead of leaving the others waiting for ever.
    """
    import signal

    agree = _FailureAgreement() if collective and _world_size() > 1 else None
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread (main() called from a thread): leave SIGTERM alone
        previous = None
    try:
        return func(args)
    except _input_errors() as exc:
        _all_failed_or_abort(agree, EXIT_USAGE, f"meshfield: error: {exc}")
        if _rank() == 0:
            print(f"meshfield: error: {exc}", file=sys.stderr)
        from .io import recorder
        if recorder.HDF5_WRITE_FAILED:
            # HDF5 holds data it could not write (a full disk) and crashes when its
            # exit handler tries again; the output is already discarded, so leave
            # without that cleanup, with the documented status.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(EXIT_USAGE)
        return EXIT_USAGE
    except KeyboardInterrupt:
        _all_failed_or_abort(agree, 130, "meshfield: interrupted")
        if _rank() == 0:
            print("meshfield: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        _all_failed_or_abort(agree, 143, "meshfield: terminated (SIGTERM)")
        if _rank() == 0:
            print("meshfield: terminated (SIGTERM)", file=sys.stderr)
        return 143
    except Exception:
        if agree is None:
            raise
        import traceback
        traceback.print_exc()  # a bug: the whole traceback, from every rank that has it
        _all_failed_or_abort(agree, 1, "meshfield: error: the traceback above")
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


class _FailureAgreement:
    """A duplicate of COMM_WORLD on which only failing ranks enter a barrier:
    it completes when every rank has failed, and never otherwise."""

    def __init__(self):
        from mpi4py import MPI
        self.comm = MPI.COMM_WORLD.Dup()

    def all_failed(self, timeout: float) -> bool:
        request = self.comm.Ibarrier()
        deadline = time.monotonic() + timeout
        try:
            while not request.Test():
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.005)
        except (KeyboardInterrupt, Terminated):  # asked again to stop: do not wait
            return False
        return True


def _all_failed_or_abort(agree, status: int, message: str) -> None:
    """Return if this is a serial run or every rank has failed too; otherwise
    say which rank failed and abort the MPI job with ``status``."""
    if agree is None or agree.all_failed(AGREE_S):
        return
    rank = agree.comm.Get_rank()
    if status in (130, 143):
        # A signal reaches every rank, but one that waits inside an MPI exchange
        # cannot act on it until the exchange completes, which it never does.
        why = (f"not every rank could stop within {AGREE_S:g} s (a rank waiting in an MPI exchange "
               "cannot act on the signal)")
    else:
        why = f"the other ranks did not stop with it within {AGREE_S:g} s"
    print(f"{message} [rank {rank}; {why}, so the MPI job is aborted and its unfinished output removed]",
          file=sys.stderr)
    sys.stderr.flush()
    sys.stdout.flush()
    from .io.recorder import discard_unfinished
    discard_unfinished()
    from mpi4py import MPI
    MPI.COMM_WORLD.Abort(status)


if __name__ == "__main__":
    sys.exit(main())
