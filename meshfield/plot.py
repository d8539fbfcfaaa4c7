"""Figures from results (matplotlib, Agg backend: no display needed).

Every figure is drawn into a hidden file beside its target and renamed onto it
only when complete, so a failure leaves no half-written image. Use
:func:`check_figure_target` before long work to refuse an unwritable target
early.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .io.result import records_of

__all__ = ["overview", "animate", "plot_psd", "raster", "check_figure_target", "check_plot_options",
           "published", "PlotInputError", "ANIMATION_FORMATS"]

#: animation suffixes and the matplotlib writer each needs
ANIMATION_FORMATS = {".gif": "pillow", ".mp4": "ffmpeg"}
#: the default snapshot of the overview is chosen after this much of the record (ms)
SNAPSHOT_DISCARD_MS = 200.0
#: the onset transient that the PSD figure leaves out of a run from t = 0
PSD_DISCARD_MS = 200.0
#: statistics over a record are computed in slices of about this size (float64)
_SLICE_BYTES = 16 * 2**20


class PlotInputError(ValueError):
    """Bad input to a figure: a path that cannot be written (format, folder,
    writer), a snapshot time outside the record, a frame step below 1."""


class OutputWriteError(OSError):
    """A figure or JSON file that could not be written although its path was
    checked (a full disk, a quota): nothing was written there, and a file
    already at the path is left as it was. ``strerror`` is the system's
    reason, ``filename`` the path."""

    def __str__(self) -> str:
        return f"cannot write {self.filename!r}: {self.strerror}; nothing was written there"


def _image_formats() -> list[str]:
    from matplotlib.backend_bases import FigureCanvasBase
    return sorted(f".{ext}" for ext in FigureCanvasBase.get_supported_filetypes())


def check_figure_target(path, option: str = "path", animation: bool = False) -> Path:
    """Check that ``path`` can receive a figure (or an animation) before drawing it.

    Parameters
    ----------
    path : str or path-like
    option : str
        How the caller names the path in messages (e.g. ``"--psd"``).
    animation : bool
        ``path`` is for :func:`animate` (``.gif``, or ``.mp4`` with ffmpeg).

    Returns
    -------
    Path

    Raises
    ------
    PlotInputError
        Naming ``option``, the path and what is allowed: an unknown format, a
        missing or unwritable folder, a folder in the way, or MP4 without ffmpeg.
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if animation:
        allowed = sorted(ANIMATION_FORMATS)
        if suffix not in ANIMATION_FORMATS:
            raise PlotInputError(
                f"{option} {str(path)!r}: unknown animation format {suffix or '(no suffix)'!r}; "
                f"allowed: {', '.join(allowed)}"
            )
        from matplotlib import animation as mpl_animation
        writer = ANIMATION_FORMATS[suffix]
        if not mpl_animation.writers.is_available(writer):
            raise PlotInputError(
                f"{option} {str(path)!r}: writing {suffix} needs the {writer!r} writer, "
                f"which is not available here (for MP4 install ffmpeg); use .gif"
            )
    else:
        allowed = _image_formats()
        if suffix not in allowed:
            raise PlotInputError(
                f"{option} {str(path)!r}: unknown image format {suffix or '(no suffix)'!r}; "
                f"allowed: {', '.join(allowed)}"
            )
    checked = check_output_file(path, option)
    # The figure is drawn into a hidden twin first (``published``), whose name is
    # longer than the target's: a legal name near the file system's limit would
    # fail only after the drawing, with earlier figures already written.
    hidden = _partial(target).name
    try:
        limit = os.pathconf(target.resolve().parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    if len(os.fsencode(hidden)) > limit:
        longer = len(os.fsencode(hidden)) - len(os.fsencode(target.name))
        raise PlotInputError(
            f"{option} {str(path)!r}: the name is too long: the figure is drawn into the hidden file "
            f"{hidden!r} beside it first, longer than the {limit} bytes a file name may have there; "
            f"use a name of at most {limit - longer} bytes"
        )
    return checked


def check_output_file(path, option: str = "path", error: type[ValueError] = PlotInputError) -> Path:
    """Check that a file can be written at ``path``: its folder exists and is
    writable, and ``path`` is not a folder. Raises ``error`` naming ``option``."""
    target = Path(path)
    folder = target.resolve().parent
    if not folder.is_dir():
        raise error(f"{option} {str(path)!r}: the output folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise error(f"{option} {str(path)!r}: the output folder {str(folder)!r} is not writable")
    if target.is_dir() or str(path).endswith(("/", "\\")):
        raise error(f"{option} {str(path)!r} is a folder, not a file name")
    return target


def check_plot_options(result, time: float | None = None, every: int = 1, raster: bool = False) -> None:
    """Check a snapshot time (ms), an animation frame step and (``raster``) the
    presence of spike trains against ``result`` before drawing; raises
    :class:`PlotInputError` naming the value and what is allowed."""
    if time is not None:
        _snapshot_record(result, time)
    _frame_step(every)
    if raster:
        _recorded_spikes(result)


def _recorded_spikes(result) -> np.ndarray:
    """All ranks' recorded spikes, rows ``(step, global site, type, neuron)``."""
    if "spikes" in getattr(result, "extra_names", ()):
        return result.spikes()
    level = result.config.get("run", {}).get("level", "meso")
    raise PlotInputError(
        f"the result holds no spike trains (level {level!r}, record.spikes_per_site = "
        f"{result.config.get('record', {}).get('spikes_per_site', 0)}); run the micro level with "
        f"--set record.spikes_per_site=K to record K neurons of every type at every site"
    )


def _snapshot_record(result, time: float) -> int:
    """Index of the record that covers ``time`` (ms)."""
    times = np.asarray(result.times)
    t_last = float(times[-1]) + float(result.record_interval)
    if not (np.isfinite(time) and float(times[0]) <= time <= t_last):
        raise PlotInputError(
            f"snapshot time {time!r} ms is outside the record, which covers {float(times[0]):g} to {t_last:g} ms"
        )
    return int(np.clip(np.searchsorted(times, time, side="right") - 1, 0, len(times) - 1))


def _frame_step(every) -> int:
    if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
        raise PlotInputError(f"every = {every!r}: the frame step must be a whole number >= 1")
    return int(every)


def _partial(target: Path) -> Path:
    """The hidden temporary file beside ``target`` that :func:`published` writes first."""
    return target.with_name(f".{target.stem}.partial-{os.getpid()}{target.suffix}")


@contextmanager
def published(path):
    """Yield a hidden temporary path beside ``path`` (same suffix, so matplotlib
    picks the format from it) and rename it onto ``path`` on success; on any
    failure remove it and leave ``path`` untouched. A failure of the system to
    write (``OSError``) becomes an :class:`OutputWriteError` naming ``path``."""
    target = Path(path)
    partial = _partial(target)
    try:
        yield partial
        os.replace(partial, target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise OutputWriteError(exc.errno, exc.strerror or str(exc), str(path)) from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _save(fig, path, dpi: int = 110) -> str:
    """Write ``fig`` to ``path`` through :func:`published` and close it (also on failure)."""
    try:
        with published(path) as partial:
            fig.savefig(partial, dpi=dpi)
    finally:
        _plt().close(fig)
    return str(path)


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _row(records, ti: int) -> tuple[np.ndarray, str]:
    """The space-time array ``[time, site]`` of type ``ti`` along one lattice row
    (the middle one in 2-D), read as one hyperslab of ``records`` ``[time, type,
    *lattice]``."""
    if len(records.shape) == 3:
        return np.asarray(records[:, ti]), "site"
    mid = records.shape[2] // 2
    return np.asarray(records[:, ti, mid]), f"site along axis 1 (row {mid} of axis 0)"


def _site_extent(shape, dx: float) -> tuple:
    """``imshow`` extent (per axis: first and last pixel edge, mm) that centres
    the pixel of site i on its position ``i dx``, as in the line plots."""
    return tuple(edge for n in shape for edge in (-0.5 * dx, (n - 0.5) * dx))


def _per_record(records, reduce) -> np.ndarray:
    """``reduce`` applied to ``records`` ``[time, type, *lattice]`` in slices of
    about ``_SLICE_BYTES`` (float64), concatenated along time: per-record
    statistics of a large result without holding it in memory."""
    n_time = int(records.shape[0])
    per_record = 8 * max(1, int(np.prod(records.shape[1:])))
    step = max(1, _SLICE_BYTES // per_record)
    return np.concatenate([reduce(np.asarray(records[i:i + step], dtype=np.float64))
                           for i in range(0, n_time, step)])


def _lattice_means(records) -> np.ndarray:
    """The lattice mean of each record and type, ``(n_records, n_types)``."""
    return _per_record(records, lambda x: x.reshape(len(x), x.shape[1], -1).mean(axis=2))


def _lattice_moments(records) -> tuple[np.ndarray, np.ndarray]:
    """The lattice mean and the spatial variance of each record and type, each
    ``(n_records, n_types)``, in one pass over ``records``."""
    def both(x):
        x = x.reshape(len(x), x.shape[1], -1)
        return np.stack([x.mean(axis=2), x.var(axis=2)], axis=1)
    moments = _per_record(records, both)
    return moments[:, 0], moments[:, 1]


def _default_snapshot(records, times: np.ndarray, which: list, spatial_var: np.ndarray | None = None) -> int:
    """Index of the record of largest spatial variance of the types ``which``,
    after the first ``SNAPSHOT_DISCARD_MS`` (all of a shorter record); the last
    record of a single site. ``spatial_var`` (``(n_records, n_types)``, as from
    :func:`_lattice_moments`) saves a pass over ``records``."""
    if len(records.shape) < 3 or np.prod(records.shape[2:]) == 1:
        return len(times) - 1
    first = int(np.searchsorted(times, times[0] + SNAPSHOT_DISCARD_MS))
    first = first if first < len(times) else 0
    # each type's variance relative to its mean over those records, summed over
    # the types (pooling the types would count the difference of their mean rates
    # as structure, and without the scaling the type with the largest shot noise
    # would decide alone); the onset transient's fronts would otherwise win
    if spatial_var is None:
        spatial_var = _lattice_moments(records)[1]
    var = spatial_var[first:, which]
    scaled = (var / np.where(var.mean(axis=0) > 0, var.mean(axis=0), 1.0)).sum(axis=1)
    return first + int(np.argmax(scaled))


def overview(result, path, type_index: int | None = None, time: float | None = None) -> str:
    """Write a PNG with, per type: a snapshot of the activity field at ``time`` (ms;
    default: the record of largest spatial variance, each type's relative to its
    mean over the record, summed over the types, after the first
    ``SNAPSHOT_DISCARD_MS`` of a longer record), the space-time plot of one
    lattice row, and the lattice-averaged activity over time.

    Parameters
    ----------
    result : Result or MemoryResult
    path : str
        Output PNG.
    type_index : int, optional
        Only this type (default: all types, one row of panels each).
    """
    plt = _plt()
    A = records_of(result, "A")  # a large result file's read in slices
    times = np.asarray(result.times)
    types = list(result.types)
    which = range(len(types)) if type_index is None else [type_index]
    means, spatial_var = _lattice_moments(A)  # one pass over A
    means_bar = _lattice_means(records_of(result, "Abar"))
    if time is None:
        rec = _default_snapshot(A, times, list(which), spatial_var)
    else:
        rec = _snapshot_record(result, time)
    fig, axes = plt.subplots(len(which), 3, figsize=(13, 3.6 * len(which)), squeeze=False)
    dx = result.config.get("lattice", {}).get("dx", 1.0)
    for row, ti in enumerate(which):
        ax = axes[row, 0]
        snap = np.asarray(A[rec, ti])
        if snap.ndim == 1:
            # markers keep a few sites (a single one is a line of length 0) visible
            ax.plot(np.arange(len(snap)) * dx, snap, marker="o" if len(snap) <= 32 else None, ms=4)
            ax.set_xlabel("position (mm)")
            ax.set_ylabel("A (Hz)")
        else:
            im = ax.imshow(snap.T, origin="lower", cmap="viridis", extent=_site_extent(snap.shape, dx))
            fig.colorbar(im, ax=ax, label="A (Hz)")
            ax.set_xlabel("x (mm)")
            ax.set_ylabel("y (mm)")
        ax.set_title(f"{types[ti]}: field at t = {times[rec]:g} ms")
        ax = axes[row, 1]
        st, label = _row(A, ti)
        if st.shape[1] > 1:
            # percentiles, so that the onset transient does not wash out the rest
            im = ax.imshow(st.T, aspect="auto", origin="lower", cmap="magma",
                           vmin=float(np.percentile(st, 1)), vmax=float(np.percentile(st, 99)),
                           extent=(times[0], times[-1] + result.record_interval) + _site_extent(st.shape[1:], dx))
            fig.colorbar(im, ax=ax, label="A (Hz)")
            ax.set_ylabel(f"position (mm), {label}")
        else:
            ax.plot(times, st[:, 0], lw=0.5, marker="o" if len(times) == 1 else None)
            ax.set_ylabel("A (Hz)")
        ax.set_xlabel("t (ms)")
        ax.set_title(f"{types[ti]}: space-time")
        ax = axes[row, 2]
        one = "o" if len(times) == 1 else None
        ax.plot(times, means[:, ti], lw=0.6, label="A", marker=one)
        ax.plot(times, means_bar[:, ti], lw=0.6, label="Ā", marker=one)
        ax.set_xlabel("t (ms)")
        ax.set_ylabel("lattice mean (Hz)")
        ax.legend(loc="upper right", fontsize=8)
        ax.set_title(f"{types[ti]}: mean activity")
    fig.tight_layout()
    return _save(fig, path)


def animate(result, path, type_index: int = 0, every: int = 1, fps: int = 25, progress=None) -> str:
    """Write an animation (GIF via Pillow, or MP4 when ffmpeg is available and the
    path ends in .mp4) of the activity field of one type; ``progress(done, total)``,
    if given, after each frame (``meshfield plot --animate`` prints a line every
    10 s)."""
    every = _frame_step(every)
    plt = _plt()
    from matplotlib import animation
    A = np.asarray(records_of(result, "A")[::every, type_index])  # the frames only
    times = np.asarray(result.times)[::every]
    fig, ax = plt.subplots(figsize=(5, 4))
    dx = result.config.get("lattice", {}).get("dx", 1.0)
    if A.ndim == 2:
        # the whole range, so no peak leaves the frame
        vmin, vmax = float(A.min()), float(A.max())
        (line,) = ax.plot(np.arange(A.shape[1]) * dx, A[0], marker="o" if A.shape[1] <= 32 else None, ms=4)
        ax.set_ylim(vmin, vmax if vmax > vmin else vmin + 1)
        ax.set_xlabel("position (mm)")
        ax.set_ylabel("A (Hz)")

        def draw(i):
            line.set_ydata(A[i])
            ax.set_title(f"{result.types[type_index]}  t = {times[i]:g} ms")
            return (line,)
    else:
        # percentiles, so that a few extreme sites do not wash out the colours
        vmin, vmax = float(np.percentile(A, 1)), float(np.percentile(A, 99))
        im = ax.imshow(A[0].T, origin="lower", cmap="viridis", vmin=vmin, vmax=vmax,
                       extent=_site_extent(A.shape[1:], dx))
        fig.colorbar(im, ax=ax, label="A (Hz)")
        ax.set_xlabel("x (mm)")
        ax.set_ylabel("y (mm)")

        def draw(i):
            im.set_data(A[i].T)
            ax.set_title(f"{result.types[type_index]}  t = {times[i]:g} ms")
            return (im,)
    anim = animation.FuncAnimation(fig, draw, frames=len(A), blit=False)
    writer = ANIMATION_FORMATS.get(Path(path).suffix.lower(), "pillow")
    with published(path) as partial:
        anim.save(partial, writer=writer, fps=fps,
                  progress_callback=None if progress is None else lambda i, n: progress(i + 1, n))
    plt.close(fig)
    return str(path)


def raster(result, path, window_ms: float = 1000.0, max_rows: int = 2000) -> str:
    """Write a spike raster of the neurons whose spike trains the microscopic
    level recorded (``record.spikes_per_site``): the last ``window_ms`` of the
    run, one row per recorded neuron, rows grouped by site (global index order)
    and within a site by type, coloured by type. Only the first sites are drawn
    if all would exceed ``max_rows`` rows (the title says how many).

    Raises
    ------
    PlotInputError
        If the result holds no spike trains.
    """
    spikes = _recorded_spikes(result)
    plt = _plt()
    cfg = result.config
    k = int(cfg.get("record", {}).get("spikes_per_site", 0))
    dt = float(cfg["run"]["dt"])
    types = list(result.types)
    n_types = len(types)
    n_sites = int(np.prod(getattr(result, "shape", None) or records_of(result, "A").shape[2:]))  # without a read
    per_site = n_types * k
    shown = max(1, min(n_sites, max_rows // max(per_site, 1)))
    times = np.asarray(result.times)
    t_end = float(times[-1]) + float(result.record_interval)
    t_from = max(float(times[0]), t_end - window_ms)
    step, site, typ, neuron = (spikes[:, c] for c in range(4))
    t = step * dt
    keep = (site < shown) & (t >= t_from)
    row = (site * n_types + typ) * k + neuron
    fig, ax = plt.subplots(figsize=(9, 5))
    for ti, name in enumerate(types):
        sel = keep & (typ == ti)
        ax.scatter(t[sel], row[sel], s=1.5, marker="|" if shown * per_site <= 200 else ".", lw=0.6,
                   label=f"{name} ({int(sel.sum())} spikes)")
    ax.set_xlim(t_from, t_end)
    ax.set_ylim(-0.5, shown * per_site - 0.5)
    ax.set_xlabel("t (ms)")
    ax.set_ylabel(f"neuron ({k} per type and site, grouped by site)")
    what = f"all {n_sites} sites" if shown == n_sites else f"sites 0-{shown - 1} of {n_sites}"
    ax.set_title(f"recorded spike trains, {what}")
    ax.legend(loc="upper right", fontsize=8, markerscale=4)
    fig.tight_layout()
    return _save(fig, path)


def plot_psd(result, path, discard: float | None = None) -> str:
    """Write the lattice-averaged power spectral density of A per type (two-sided,
    Hz^2/Hz, log-log, with the standard error band across segments) and the
    level r/N of N independent spike trains of the mean rate r (over the
    spectrum's samples; not for a mean-field run, which has no finite-size
    noise). ``discard`` (ms): by default ``PSD_DISCARD_MS`` of a run from
    t = 0, nothing of a run restarted from a checkpoint."""
    from .analysis import psd
    from .analysis._record import onset_discard
    plt = _plt()
    if discard is None:
        discard = onset_discard(PSD_DISCARD_MS, result)
    spec = psd(result, discard=discard, per_site=False)
    finite_size = not result.config.get("run", {}).get("mean_field", False)
    N = {name: p["N"] for name, p in result.config.get("populations", {}).items()} if finite_size else {}
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.set_xscale("log")
    ax.set_yscale("log")
    for ti, name in enumerate(result.types):
        f, S, err = spec.freqs[1:], spec.S[1:, ti], spec.S_err[1:, ti]
        if not np.any(S > 0):  # no fluctuations: nothing to draw on a log axis
            ax.plot([], [], lw=0.8, label=f"{name} (no fluctuations)")
            continue
        (line,) = ax.plot(f, S, lw=0.8, label=name)
        ax.fill_between(f, np.maximum(S - err, S * 1e-3), S + err, color=line.get_color(), alpha=0.2)
        if name in N and spec.mean[ti] > 0:
            ax.axhline(float(spec.mean[ti]) / N[name], color=line.get_color(), ls="--", lw=0.8)
    ax.set_xlabel("f (Hz)")
    ax.set_ylabel("PSD of A (Hz²/Hz, two-sided)")
    ax.set_title("power spectral density (band: ±1 SE" + ("; dashed: r/N)" if finite_size else "; mean field)"))
    ax.legend()
    fig.tight_layout()
    return _save(fig, path)
