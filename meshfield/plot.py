"""Figures from results (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import numpy as np

__all__ = ["overview", "animate"]


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _row(A: np.ndarray) -> tuple[np.ndarray, str]:
    """The space-time array ``[time, site]`` of one lattice row (the middle one in 2-D)."""
    if A.ndim == 2:
        return A, "site"
    mid = A.shape[1] // 2
    return A[:, mid, :], f"site along axis 1 (row {mid} of axis 0)"


def overview(result, path, type_index: int | None = None, time: float | None = None) -> str:
    """Write a PNG with, per type: a snapshot of the activity field at ``time`` (ms;
    default: the record of largest spatial variance), the space-time plot of one
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
    A = np.asarray(result.A)
    times = np.asarray(result.times)
    types = list(result.types)
    which = range(len(types)) if type_index is None else [type_index]
    if time is None:
        spatial_var = A.reshape(A.shape[0], -1).var(axis=1)
        rec = int(np.argmax(spatial_var)) if A.ndim > 2 and np.prod(A.shape[2:]) > 1 else len(times) - 1
    else:
        rec = int(np.clip(np.searchsorted(times, time), 0, len(times) - 1))
    fig, axes = plt.subplots(len(which), 3, figsize=(13, 3.6 * len(which)), squeeze=False)
    dx = result.config.get("lattice", {}).get("dx", 1.0)
    for row, ti in enumerate(which):
        a = A[:, ti]
        ax = axes[row, 0]
        snap = a[rec]
        if snap.ndim == 1:
            ax.plot(np.arange(len(snap)) * dx, snap)
            ax.set_xlabel("position (mm)")
            ax.set_ylabel("A (Hz)")
        else:
            im = ax.imshow(snap.T, origin="lower", cmap="viridis",
                           extent=(0, snap.shape[0] * dx, 0, snap.shape[1] * dx))
            fig.colorbar(im, ax=ax, label="A (Hz)")
            ax.set_xlabel("x (mm)")
            ax.set_ylabel("y (mm)")
        ax.set_title(f"{types[ti]}: field at t = {times[rec]:.0f} ms")
        ax = axes[row, 1]
        st, label = _row(a)
        if st.shape[1] > 1:
            im = ax.imshow(st.T, aspect="auto", origin="lower", cmap="magma",
                           extent=(times[0], times[-1] + result.record_interval, 0, st.shape[1] * dx))
            fig.colorbar(im, ax=ax, label="A (Hz)")
            ax.set_ylabel(f"position (mm), {label}")
        else:
            ax.plot(times, st[:, 0], lw=0.5)
            ax.set_ylabel("A (Hz)")
        ax.set_xlabel("t (ms)")
        ax.set_title(f"{types[ti]}: space-time")
        ax = axes[row, 2]
        ax.plot(times, a.mean(axis=tuple(range(1, a.ndim))), lw=0.6, label="A")
        Abar = np.asarray(result.Abar)[:, ti]
        ax.plot(times, Abar.mean(axis=tuple(range(1, Abar.ndim))), lw=0.6, label="Ā")
        ax.set_xlabel("t (ms)")
        ax.set_ylabel("lattice mean (Hz)")
        ax.legend(loc="upper right", fontsize=8)
        ax.set_title(f"{types[ti]}: mean activity")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def animate(result, path, type_index: int = 0, every: int = 1, fps: int = 25) -> str:
    """Write an animation (GIF via Pillow, or MP4 when ffmpeg is available and the
    path ends in .mp4) of the activity field of one type."""
    plt = _plt()
    from matplotlib import animation
    A = np.asarray(result.A)[::every, type_index]
    times = np.asarray(result.times)[::every]
    fig, ax = plt.subplots(figsize=(5, 4))
    vmin, vmax = float(np.percentile(A, 1)), float(np.percentile(A, 99))
    if A.ndim == 2:
        (line,) = ax.plot(A[0])
        ax.set_ylim(vmin, vmax if vmax > vmin else vmin + 1)
        ax.set_xlabel("site")
        ax.set_ylabel("A (Hz)")

        def draw(i):
            line.set_ydata(A[i])
            ax.set_title(f"{result.types[type_index]}  t = {times[i]:.0f} ms")
            return (line,)
    else:
        im = ax.imshow(A[0].T, origin="lower", cmap="viridis", vmin=vmin, vmax=vmax)
        fig.colorbar(im, ax=ax, label="A (Hz)")

        def draw(i):
            im.set_data(A[i].T)
            ax.set_title(f"{result.types[type_index]}  t = {times[i]:.0f} ms")
            return (im,)
    anim = animation.FuncAnimation(fig, draw, frames=len(A), blit=False)
    writer = "ffmpeg" if str(path).endswith(".mp4") else "pillow"
    anim.save(path, writer=writer, fps=fps)
    plt.close(fig)
    return str(path)


def plot_psd(result, path, discard: float = 200.0) -> str:
    """Write the lattice-averaged power spectral density of A per type (two-sided,
    Hz^2/Hz, log-log, with the standard error band across segments) and the
    level r/N of N independent spike trains of the mean rate."""
    from .analysis import psd
    plt = _plt()
    spec = psd(result, discard=discard)
    N = {name: p["N"] for name, p in result.config.get("populations", {}).items()}
    A = np.asarray(result.A)
    fig, ax = plt.subplots(figsize=(6, 4))
    for ti, name in enumerate(result.types):
        f, S, err = spec.freqs[1:], spec.S[1:, ti], spec.S_err[1:, ti]
        (line,) = ax.loglog(f, S, lw=0.8, label=name)
        ax.fill_between(f, np.maximum(S - err, S * 1e-3), S + err, color=line.get_color(), alpha=0.2)
        if name in N:
            ax.axhline(float(A[:, ti].mean()) / N[name], color=line.get_color(), ls="--", lw=0.8)
    ax.set_xlabel("f (Hz)")
    ax.set_ylabel("PSD of A (Hz²/Hz, two-sided)")
    ax.set_title("power spectral density (dashed: r/N)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)
