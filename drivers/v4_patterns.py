"""Validation study V4: a stationary pattern from lateral inhibition, both levels vs linear theory.

The packaged ``v4_pattern`` configuration (a periodic ring of 64 sites with E and I
types, narrow excitation and broad inhibition: a Mexican hat) sits just beyond the
onset of a static (Turing) instability of the homogeneous state. This driver

1. computes the linear theory (:func:`meshfield.theory.dispersion`): the leading
   real eigenvalue of the static gain matrix G(k) for every lattice wave number,
   the predicted dominant wave number (its argmax) and the critical coupling
   scale g_c at which it reaches 1 (all weights J multiplied by g), for the
   firing rules of both levels;
2. runs the mesoscopic model (finite N), the microscopic network and the
   mesoscopic mean-field limit, and measures the dominant wave number of the
   late activity (:func:`meshfield.analysis.spatial_spectrum`), its stability
   over 1-s blocks, the drift of the pattern and, if it travels, its speed
   (:func:`meshfield.analysis.wave_speed`);
3. sweeps the coupling scale g in the mean-field limit: the growth rate of
   every spatial mode in the linear regime (from a weak seed), and the measured
   onset (where the growth rate of the dominant mode crosses zero) against g_c;
4. runs the microscopic network again with every in-degree C scaled by s
   (default 0.25) at fixed J*C: the mesoscopic model and the theory are
   unchanged, but each neuron's own shot noise, which the mesoscopic model
   leaves out, grows by 1/s (``--indegree-scales``);
5. writes figures (``v4_patterns.png``, ``v4_dispersion.png``, ``v4_onset.png``)
   and ``v4.json`` with pass/fail per docs/validation.md: the same dominant wave number
   at both levels, and the theory within one lattice wave-number step of each.

Runs on one MPI rank (``COMM_SELF``) and, as a script, with one numba thread
unless ``NUMBA_NUM_THREADS`` is set: the two levels are then timed under the
same conditions, and on a busy machine waiting for descheduled threads at every
parallel region makes wall times erratic. Cost (warm numba cache): 10 s for the
10 s finite-N meso run, about 2 min for each 10 s micro run (two of them), under
a minute for the sweep; about 7 min in all.

``--skip-micro`` leaves out every micro run, so the main V4 criterion (the same
wave number at both levels) and the theory check of the micro level are
reported as "not run"; the exit status then counts the checks that ran.

Usage::

    python drivers/v4_patterns.py                          # full study -> out/v4/
    python drivers/v4_patterns.py --t-end 3000 --skip-micro --sweep 0.94 0.98   # about 25 s
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import optimize

if __name__ == "__main__":
    # one numba thread unless the user chose; must precede numba's start
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")

from mpi4py import MPI  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _validation as val  # noqa: E402
import meshfield  # noqa: E402
from meshfield.analysis import AnalysisInputError, space_time_spectrum, spatial_spectrum, wave_speed  # noqa: E402
from meshfield.theory import dispersion, growth_rates as theory_growth_rates  # noqa: E402

PROG = "v4_patterns.py"
CONFIG = "v4_pattern"

#: The figures the study can write into --figures, and its JSON in --out.
FIGURES = ("v4_patterns.png", "v4_dispersion.png", "v4_onset.png")
JSON_NAME = "v4.json"

#: coupling scales of the onset sweep (all J times g)
DEFAULT_SWEEP = (0.90, 0.93, 0.95, 0.96, 0.97, 0.98, 0.99, 1.00)
#: the linear-regime fit of the sweep starts here (the seed ends at 200 ms and the
#: fast non-critical transients have decayed by then)
FIT_START = 400.0  # ms
#: ... and ends at this time or when a mode exceeds FIT_LINEAR (Hz), whichever is first
FIT_END = 1400.0  # ms
FIT_LINEAR = 0.2  # Hz
#: amplitudes below this carry the float32 rounding of the records (A ~ 10 Hz)
FIT_FLOOR = 1e-4  # Hz
#: seed of the sweep runs (OU amplitude, mV): small, so that the modes stay linear
SWEEP_SEED = 0.02
#: modes of the sweep compared in sign with the theory: static eigenvalue at least this
SIGN_CHECK_MIN = 0.8
#: a pattern counts as stationary (not travelling) if at least half of the space-time
#: power at its wave number lies at frequencies up to this
F_STATIONARY = 2.0  # Hz


def scaled_overrides(config, g: float) -> list[str]:
    """Overrides multiplying every coupling weight by ``g``."""
    return [f"couplings.{i}.J={c.J * g!r}" for i, c in enumerate(config.couplings)]


def indegree_overrides(config, s: float) -> list[str]:
    """Overrides scaling every in-degree by ``s`` (rounded) at fixed ``J*C``.

    The mesoscopic model, which sees J and C only through J*C, is unchanged; the
    microscopic network's per-neuron shot noise scales as J^2 C, i.e. as 1/s.
    """
    out = []
    for i, c in enumerate(config.couplings):
        C = max(1, int(round(c.C * s)))
        out += [f"couplings.{i}.C={C}", f"couplings.{i}.J={c.J * c.C / C!r}"]
    return out


def shot_noise_sd(config, rates_hz) -> list[float]:
    """Membrane SD (mV) per type from the shot noise of a neuron's own inputs.

    Campbell's theorem for independent Poisson inputs with the postsynaptic
    potential of the model, ``PSP(t) = J tau_m (exp(-t/tau_m) - exp(-t/tau_s))
    / (tau_m - tau_s)`` (area ``J tau_m``): ``Var u = sum_b C_ab (A_b/1000)
    J_ab^2 tau_m^2 / (2 (tau_m + tau_s,b))``. This is the part of the input that
    the mesoscopic model omits (it keeps only the fluctuations common to a
    population); compare it with ``delta_u``.
    """
    types = list(config.types)
    var = np.zeros(len(types))
    for c in config.couplings:
        a, b = types.index(c.target), types.index(c.source)
        tau_m, tau_s = config.populations[a].tau_m, config.populations[b].tau_s
        var[a] += c.C * rates_hz[b] * 1e-3 * c.J**2 * tau_m**2 / (2.0 * (tau_m + tau_s))
    return np.sqrt(var).tolist()


def theory(config_path, overrides, level: str) -> dict:
    """Dispersion at the configuration and the critical coupling scale g_c."""
    base = meshfield.load_config(config_path, overrides)
    d = dispersion(base, level=level)
    k, lead = d.shells()

    def excess(g):
        return dispersion(meshfield.load_config(config_path, overrides + scaled_overrides(base, g)),
                          level=level).max_leading - 1.0

    lo, hi = 0.5, 1.5
    with np.errstate(over="ignore"):
        g_c = optimize.brentq(excess, lo, hi, xtol=1e-6) if excess(lo) < 0 < excess(hi) else float("nan")
        d_c = dispersion(meshfield.load_config(config_path, overrides + scaled_overrides(base, g_c)),
                         level=level) if np.isfinite(g_c) else None
    return dict(
        level=level, rates_hz=d.rates.tolist(), mu_eff_mv=d.mu_eff.tolist(), slopes_hz_per_mv=d.slopes.tolist(),
        max_leading=d.max_leading, unstable=d.unstable, k_peak=d.k_peak, k_peak_steps=d.k_peak_steps,
        wavelength_mm=d.wavelength, k_step=d.k_step, multiple_states=d.multiple,
        shells_k=k.tolist(), shells_leading=np.where(np.isfinite(lead), lead, None).tolist(),
        g_c=g_c, k_peak_steps_at_g_c=None if d_c is None else d_c.k_peak_steps,
    )


def pattern_drift(E: np.ndarray, m: int, n: int, dx: float, block: int) -> dict:
    """Position of the mode-m pattern over time (from the phase of its Fourier
    coefficient in blocks of ``block`` records) and its mean drift."""
    nb = E.shape[0] // block
    profiles = E[: nb * block].reshape(nb, block, -1).mean(axis=1)
    phase = np.unwrap(-np.angle(np.fft.rfft(profiles, axis=-1)[:, m]))
    k = 2 * np.pi * m / (n * dx)
    position = phase / k  # mm, crest position of cos(k x - phase)
    t = np.arange(nb) * block
    slope = np.polyfit(t, position, 1)[0] if nb > 1 else float("nan")
    return dict(drift_speed_mm_per_s=float(slope * 1e3),
                net_displacement_wavelengths=float((position[-1] - position[0]) * k / (2 * np.pi)),
                rms_excursion_wavelengths=float(np.std(position) * k / (2 * np.pi)))


def timed_run(config):
    """``meshfield.run`` in memory, with the CPU seconds of this process (build included,
    numba compilation not: :func:`_validation.warm_up` runs first)."""
    val.warm_up(config)
    c0 = time.process_time()
    result = meshfield.run(config, comm=MPI.COMM_SELF)
    return result, time.process_time() - c0


def measure(result, discard: float, label: str, cpu_s: float = float("nan")) -> dict:
    """Dominant wave number, its stability over 1-s blocks, drift and travel of a run."""
    cfg = result.config
    dx = cfg["lattice"]["dx"]
    n = cfg["lattice"]["shape"][0]
    interval = result.record_interval
    A = np.asarray(result.A, dtype=np.float64)
    i0 = int(round(discard / interval))
    late = A[i0:]
    spec = spatial_spectrum(late, dx, lattice_ndim=1)
    per_block = int(round(1000.0 / interval))
    block_steps = [int(spatial_spectrum(late[j:j + per_block], dx, lattice_ndim=1).k_peak_steps[0])
                   for j in range(0, late.shape[0] - per_block + 1, per_block)]
    m = int(spec.k_peak_steps[0])
    # Spatial SD of the E profile averaged over 100-ms blocks (a drifting pattern
    # keeps its contrast; the finite-size noise adds about sqrt(A/(N 0.1 s)) to it).
    per_100 = int(round(100.0 / interval))
    nb = late.shape[0] // per_100
    profiles = late[: nb * per_100, 0].reshape(nb, per_100, -1).mean(axis=1)
    st = space_time_spectrum(late[:, 0], interval, dx)
    k_axis = np.abs(st.k[0])
    at_k = st.power[:, np.isclose(k_axis, m * spec.k_step)].sum(axis=1)
    slow = float(at_k[np.abs(st.freqs) <= F_STATIONARY].sum() / at_k.sum())
    try:
        ws = wave_speed(late[:, 0], interval, dx, method="spectrum")
        travel = dict(speed_mm_per_ms=ws.speed, frequency_hz=ws.frequency, k=ws.k,
                      directionality=ws.directionality)
    except AnalysisInputError:  # a frozen (mean-field) pattern has no power at f > 0
        travel = None
    out = dict(
        label=label, t_end_ms=float(result.times[-1] + interval), discard_ms=discard,
        wall_s=float(result.meta.get("wall_time", float("nan"))),
        build_s=float(result.meta.get("build_seconds", float("nan"))),
        cpu_s=float(cpu_s),
        mean_rates_hz=late.mean(axis=(0, 2)).tolist(),
        k_peak=spec.k_peak.tolist(), k_peak_steps=[int(v) for v in spec.k_peak_steps],
        wavelength_mm=spec.wavelength.tolist(), k_step=spec.k_step,
        shells_k=spec.k.tolist(), shells_power=spec.power.tolist(),
        block_k_peak_steps=block_steps,
        block_fraction_at_peak=float(np.mean(np.array(block_steps) == m)) if block_steps else float("nan"),
        pattern_contrast_hz=float(np.mean(profiles.std(axis=-1))),
        stationary_power_fraction=slow, travelling=slow < 0.5,
        wave_speed=travel,
    )
    out.update(pattern_drift(late[:, 0], m, n, dx, per_block // 10))
    return out


def growth_rates(A: np.ndarray, interval: float) -> tuple[np.ndarray, int]:
    """Exponential growth rate (1/s) of every spatial mode m = 0..n/2 of a mean-field run.

    Fitted to ``log`` of the mode amplitude over the linear regime: from
    FIT_START to FIT_END ms, or until any mode exceeds FIT_LINEAR Hz, using the
    samples above FIT_FLOOR (NaN where fewer than 50 qualify). Returns the rates
    and the dominant mode: the largest at the end of that window. Its rate is the
    leading linear growth rate; the fastest fitted rate can belong to a
    harmonic, which the dominant mode drives quadratically at twice its rate.
    """
    amp = 2.0 * np.abs(np.fft.rfft(A, axis=-1)) / A.shape[-1]
    amp[:, 0] = 0.0
    t = np.arange(A.shape[0]) * interval
    window = (t >= FIT_START) & (t < FIT_END)
    over = np.nonzero(window & (amp.max(axis=1) > FIT_LINEAR))[0]
    if over.size:
        window &= t < t[over[0]]
    rates = np.full(amp.shape[1], np.nan)
    for m in range(1, amp.shape[1]):
        use = window & (amp[:, m] > FIT_FLOOR)
        if use.sum() >= 50:
            rates[m] = np.polyfit(t[use], np.log(amp[use, m]), 1)[0] * 1e3
    # No linear regime at all (a mode beyond FIT_LINEAR already at FIT_START): the
    # dominant mode is still the largest there, its rate NaN.
    last = np.nonzero(window)[0][-1] if window.any() else int(np.searchsorted(t, FIT_START))
    return rates, int(np.argmax(amp[min(last, len(t) - 1)]))


def sweep(config_path, overrides, base, gs, t_sweep: float) -> dict:
    """Mean-field runs at coupling scales ``gs``: growth rates and final pattern amplitude.

    Beside the onset, every mode m whose static eigenvalue G_m is at least
    SIGN_CHECK_MIN is a check of the dispersion relation: its measured growth rate
    must have the sign of G_m - 1 (modes far below carry nonlinearly driven
    combinations of the growing ones once those are large, and decay below the
    record resolution otherwise).
    """
    rows = []
    for g in gs:
        cfg = meshfield.load_config(config_path, overrides + scaled_overrides(base, g) + [
            "run.mean_field=true", "run.level=meso", f"run.t_end={t_sweep}",
            f"stimuli.0.amplitude={SWEEP_SEED}"])
        _, leading = dispersion(cfg).shells()
        _, sigma, _ = theory_growth_rates(cfg).shells()
        t0 = time.perf_counter()
        r = meshfield.run(cfg, comm=MPI.COMM_SELF)
        E = np.asarray(r.A[:, 0], dtype=np.float64)
        rates, dominant = growth_rates(E, r.record_interval)
        amp_final = 2.0 * np.abs(np.fft.rfft(E[-1])) / E.shape[-1]
        rows.append(dict(g=g, growth_rate_per_s=np.where(np.isfinite(rates), rates, None).tolist(),
                         dominant_mode=dominant, dominant_growth_rate_per_s=float(rates[dominant]),
                         final_amplitude_hz=float(amp_final[1:].max()),
                         final_mode=int(1 + np.argmax(amp_final[1:])),
                         contrast_hz=float(E[-1].std()), wall_s=time.perf_counter() - t0,
                         theory_leading=np.where(np.isfinite(leading), leading, None).tolist(),
                         theory_growth_rate_per_s=np.where(np.isfinite(sigma), sigma, None).tolist()))
        print(f"[v4] sweep g = {g:.3f}: dominant mode {dominant}, growth {rates[dominant]:+.3f}/s "
              f"(theory {sigma[dominant]:+.3f}/s), "
              f"final amplitude {amp_final[1:].max():.3f} Hz (mode {1 + np.argmax(amp_final[1:])})", flush=True)
    g_arr = np.array([r["g"] for r in rows])
    lam = np.array([r["dominant_growth_rate_per_s"] for r in rows])
    order = np.argsort(g_arr)
    g_arr, lam = g_arr[order], lam[order]
    crossing = np.nonzero((lam[:-1] < 0) & (lam[1:] >= 0))[0]
    if crossing.size:
        i = crossing[0]
        g_c = float(g_arr[i] - lam[i] * (g_arr[i + 1] - g_arr[i]) / (lam[i + 1] - lam[i]))
        bracket = [float(g_arr[i]), float(g_arr[i + 1])]
    else:
        g_c, bracket = float("nan"), None
    pairs = np.array([(G, lam_m) for r in rows
                      for G, lam_m in zip(r["theory_leading"], r["growth_rate_per_s"])
                      if G is not None and lam_m is not None and G >= SIGN_CHECK_MIN]).reshape(-1, 2)
    # no mode with G >= SIGN_CHECK_MIN (every g of the sweep far below the onset): nothing to check
    excess, measured = pairs[:, 0] - 1.0, pairs[:, 1]
    # the growth rates of the same modes against the transfer-function theory
    # (meshfield.theory.growth_rates; None where a root is below its resolution)
    both = np.array([(s, lam_m) for r in rows
                     for G, s, lam_m in zip(r["theory_leading"], r["theory_growth_rate_per_s"],
                                            r["growth_rate_per_s"])
                     if G is not None and G >= SIGN_CHECK_MIN and s is not None and lam_m is not None])
    return dict(t_end_ms=t_sweep, seed_amplitude_mv=SWEEP_SEED, fit_window_ms=[FIT_START, FIT_END],
                rows=rows, g_c_measured=g_c, g_c_bracket=bracket,
                growth_rate_check=dict(n_modes=int(len(both)),
                                       max_abs_difference_per_s=float(np.abs(both[:, 1] - both[:, 0]).max())
                                       if len(both) else None),
                sign_check=dict(min_leading=SIGN_CHECK_MIN, n_modes=int(len(pairs)),
                                agree=int(np.sum(np.sign(excess) == np.sign(measured))),
                                rate_per_unit_excess_per_s=float(excess @ measured / (excess @ excess))
                                if len(pairs) else None))


# ---------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------


def figure_patterns(runs: dict, dx: float, path: Path, show_ms: float = 2000.0) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(runs)
    fig, axes = plt.subplots(2, len(labels), figsize=(3.0 * len(labels), 5.4), squeeze=False,
                             gridspec_kw=dict(height_ratios=[2, 1]))
    for j, key in enumerate(labels):
        r = runs[key]
        E = np.asarray(r.A[:, 0], dtype=np.float64)
        interval = r.record_interval
        # 5-ms bins: the eye sees the pattern through less noise, and the PNG stays small.
        per_bin = max(1, int(round(5.0 / interval)))
        n_show = min(E.shape[0], int(show_ms / interval)) // per_bin * per_bin
        t_end = E.shape[0] * interval
        shown = E[E.shape[0] - n_show:].reshape(n_show // per_bin, per_bin, -1).mean(axis=1)
        ax = axes[0, j]
        im = ax.imshow(shown, aspect="auto", origin="lower", cmap="magma", interpolation="nearest",
                       extent=[0, E.shape[1] * dx, t_end - n_show * interval, t_end],
                       vmin=0, vmax=np.percentile(shown, 99.5))
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("x (mm)")
        if j == 0:
            ax.set_ylabel("t (ms)")
        fig.colorbar(im, ax=ax, label="A_E (Hz)" if j == len(labels) - 1 else None)
        avg = E[-int(200 / interval):].mean(axis=0)
        x = np.arange(E.shape[1]) * dx
        axes[1, j].plot(x, avg, color="C3")
        axes[1, j].set_xlabel("x (mm)")
        if j == 0:
            axes[1, j].set_ylabel("A_E, last 200 ms (Hz)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def figure_dispersion(summary: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 4.4))
    colors = dict(meso="C0", micro="C1")
    n_max = min(len(summary["theory"]["meso"]["shells_k"]), 21)
    for level, th in summary["theory"].items():
        lead = np.array([np.nan if v is None else v for v in th["shells_leading"]])
        ax.plot(np.arange(lead.size), lead, "o-", ms=3, color=colors[level], label=f"G(k), {level} rule")
    ax.axhline(1.0, color="k", lw=0.8, ls=":")
    ax.set_xlabel("wave number (lattice steps, 2π/L)")
    ax.set_ylabel("leading eigenvalue of G(k)")
    ax.set_xlim(0, n_max - 1)
    ax2 = ax.twinx()
    styles = dict(meso=("C0", "--"), micro=("C1", "--"), mean_field=("C2", ":"))
    measured = dict(summary["runs"])
    for j, run in enumerate(summary.get("indegree_series", [])):
        styles[run["label"]] = (f"C{4 + j}", "-.")
        measured[run["label"]] = run
    noisy = []
    for key, run in measured.items():
        p = np.array(run["shells_power"][0])
        color, ls = styles[key]
        ax2.semilogy(np.arange(1, p.size), p[1:], ls=ls, color=color, lw=1, label=f"power, {key}")
        ax.axvline(run["k_peak_steps"][0], color=color, lw=2, alpha=0.35)
        if key != "mean_field":
            noisy.append(p[1:n_max])
    # The mean-field spectrum is a single line over round-off; scale the axis to the noisy ones.
    top = max(max(np.max(run["shells_power"][0][1:]) for run in measured.values()), 1e-12)
    bottom = min((np.min(p) for p in noisy), default=top * 1e-3)
    ax2.set_ylim(0.5 * bottom, 2.0 * top)
    ax2.set_ylabel("spatial power of A_E per mode (Hz²)")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    fig.legend(h1 + h2, l1 + l2, fontsize=7, loc="lower center", ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.savefig(path, dpi=90)
    plt.close(fig)


def figure_onset(summary: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sw = summary["sweep"]
    g = np.array([r["g"] for r in sw["rows"]])
    lam = np.array([r["dominant_growth_rate_per_s"] for r in sw["rows"]])
    amp = np.array([r["final_amplitude_hz"] for r in sw["rows"]])
    g_c = summary["theory"]["meso"]["g_c"]
    fig, axes = plt.subplots(1, 3, figsize=(11.0, 3.3))
    axes[0].plot(g, lam, "o-", color="C0", label="mean-field meso")
    dominant = [r["dominant_mode"] for r in sw["rows"]]
    theory = [r["theory_growth_rate_per_s"][m] for r, m in zip(sw["rows"], dominant)]
    axes[0].plot(g, [np.nan if x is None else x for x in theory], "x", color="C3", ms=7,
                 label="theory (transfer function)")
    axes[0].axhline(0, color="k", lw=0.8, ls=":")
    # far below the onset the mode may have decayed to 0, which a log axis cannot show
    (axes[1].semilogy if np.any(amp > 0) else axes[1].plot)(g, amp, "o-", color="C0")
    for ax in axes[:2]:
        ax.axvline(g_c, color="C3", lw=1.2, label=f"theory g_c = {g_c:.3f}")
        ax.set_xlabel("coupling scale g (all J × g)")
    if np.isfinite(sw["g_c_measured"]):
        axes[0].axvline(sw["g_c_measured"], color="C0", ls="--", lw=1,
                        label=f"measured g_c = {sw['g_c_measured']:.3f}")
    axes[0].set_ylabel("growth rate, dominant mode (1/s)")
    axes[0].legend(fontsize=7)
    # From a seed of ~0.03 Hz: decays below g_c, grows above (saturated only well above).
    axes[1].set_ylabel(f"mode amplitude at {sw['t_end_ms']:.0f} ms (Hz)")
    check = sw["sign_check"]
    for j, row in enumerate(sw["rows"]):
        pts = [(s, lam_m) for G, s, lam_m in zip(row["theory_leading"], row["theory_growth_rate_per_s"],
                                                 row["growth_rate_per_s"])
               if G is not None and s is not None and lam_m is not None and G >= check["min_leading"]]
        if pts:
            x, y = np.array(pts).T
            axes[2].plot(x, y, "o", ms=3.5, color=plt.cm.viridis(j / max(1, len(sw["rows"]) - 1)),
                         label=f"g = {row['g']:.2f}")
    axes[2].axhline(0, color="k", lw=0.8, ls=":")
    axes[2].axvline(0, color="k", lw=0.8, ls=":")
    lim = axes[2].get_xlim()
    axes[2].plot(lim, lim, color="k", lw=0.6)
    axes[2].set_xlabel("theory: growth rate of the mode (1/s)")
    axes[2].set_ylabel("measured modal growth rate (1/s)")
    diff = sw["growth_rate_check"]["max_abs_difference_per_s"]
    axes[2].set_title(f"signs agree with G − 1 for {check['agree']}/{check['n_modes']} modes"
                      + ("" if diff is None else f"\n|measured − theory| ≤ {diff:.2f}/s"), fontsize=8)
    if axes[2].get_legend_handles_labels()[0]:  # none when no mode reached the sign check
        axes[2].legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# ---------------------------------------------------------------------------


def build_parser():
    p = val.parser("v4", __doc__, prog=PROG,
                   writes="v4.json into --out, the figures v4_patterns.png, v4_dispersion.png and "
                          "v4_onset.png (the last only with a sweep) into --figures (default: --out).",
                   default_run="about 7 minutes on one core with a warm numba cache (docs/validation_v4.md).")
    p.add_argument("--config", default=CONFIG,
                   help="a 1-D configuration whose first stimulus is the symmetry-breaking seed, packaged name "
                        "or TOML file (default v4_pattern)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="configuration override, repeatable (default: none)")
    p.add_argument("--seed", type=val.seed, default=None,
                   help="run.seed of every run (0 to 2^32-1; default: the config's, 4)")
    p.add_argument("--figures", type=Path, default=None, metavar="FOLDER",
                   help="folder for the PNGs; created if missing (default: --out)")
    p.add_argument("--t-end", type=val.positive, default=None, metavar="MS",
                   help="ms of the finite-N meso run, > 0 (default: the config's run.t_end, 10000)")
    p.add_argument("--t-micro", type=val.positive, default=None, metavar="MS",
                   help="ms of each micro run, > 0 (default: --t-end)")
    p.add_argument("--t-mean-field", type=val.positive, default=3000.0, metavar="MS",
                   help="ms of the mean-field run, > 0 (default 3000)")
    p.add_argument("--discard", type=val.nonnegative, default=1000.0, metavar="MS",
                   help="ms of transient dropped, at most half of each run (>= 0; default 1000)")
    p.add_argument("--skip-micro", action="store_true",
                   help="leave out the micro runs; their checks are reported as not run (default: off)")
    p.add_argument("--sweep", type=val.positive, nargs="*", default=list(DEFAULT_SWEEP), metavar="G",
                   help="coupling scales g (> 0, no repeats) of the mean-field onset sweep (no values: skip; "
                        "default " + " ".join(f"{g:g}" for g in DEFAULT_SWEEP) + ")")
    p.add_argument("--t-sweep", type=val.positive, default=3000.0, metavar="MS",
                   help=f"ms per sweep run, at least {FIT_END:g} (the end of the growth-rate fit; default 3000)")
    p.add_argument("--indegree-scales", type=val.positive, nargs="*", default=[0.25], metavar="S",
                   help="extra micro runs with every C times s (> 0, no repeats) at fixed J*C, more shot noise "
                        "for s < 1 (no values: none; default 0.25)")
    return p


def check_args(p, args, overrides):
    """Every check of the options and the configuration, before any run; returns the configuration."""
    val.refuse_duplicates(p, "--sweep", args.sweep)
    val.refuse_duplicates(p, "--indegree-scales", args.indegree_scales)
    if args.sweep and args.t_sweep < FIT_END:
        p.error(f"argument --t-sweep: {args.t_sweep:g} ms is too short: the growth rates are fitted from "
                f"{FIT_START:g} to {FIT_END:g} ms, so at least {FIT_END:g} ms")
    base = val.check_config(p, args.config, overrides)
    if len(base.lattice.shape) != 1:
        p.error(f"--config: {PROG} analyses 1-D lattices (the pattern drift and the figures); this one has "
                f"shape {list(base.lattice.shape)}")
    if base.lattice.shape[0] < 2:
        p.error(f"--config: {PROG} measures the wave number of a pattern, which needs a lattice of at least "
                f"two sites; this one has shape {list(base.lattice.shape)}")
    if args.sweep and not base.stimuli:
        p.error("--config: the sweep needs a first stimulus (the symmetry-breaking seed); this configuration "
                "has none (or skip the sweep: --sweep with no values)")
    t_end = args.t_end if args.t_end is not None else base.run.t_end
    t_micro = args.t_micro if args.t_micro is not None else t_end
    val.check_config(p, args.config, overrides + [f"run.t_end={t_end}"], what="--t-end")
    val.check_config(p, args.config, overrides + [f"run.t_end={args.t_mean_field}", "run.mean_field=true"],
                     what="--t-mean-field")
    if not args.skip_micro:
        val.check_config(p, args.config, overrides + ["run.level=micro", f"run.t_end={t_micro}"], what="--t-micro")
        for scale in args.indegree_scales:
            val.check_config(p, args.config, overrides + indegree_overrides(base, scale) + ["run.level=micro"],
                             what=f"--indegree-scales {scale:g}")
    for g in args.sweep:
        val.check_config(p, args.config, overrides + scaled_overrides(base, g) + [f"run.t_end={args.t_sweep}"],
                         what=f"--sweep {g:g}")
    return base


def main(argv=None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    overrides = list(args.overrides) + ([f"run.seed={args.seed}"] if args.seed is not None else [])
    base = check_args(p, args, overrides)
    t_end = args.t_end if args.t_end is not None else base.run.t_end
    t_micro = args.t_micro if args.t_micro is not None else t_end
    dx = base.lattice.dx
    planned = ["v4_patterns.png", "v4_dispersion.png"] + (["v4_onset.png"] if args.sweep else [])
    out = Path(args.out)
    figs = Path(args.figures) if args.figures is not None else out
    if figs.resolve() == out.resolve():
        val.prepare_out(p, out, [JSON_NAME, *planned], [JSON_NAME, *FIGURES])
    else:  # both checked before a warning is printed; a refused --figures leaves no new --out folder
        warnings: list = []
        val.prepare_out(p, out, [JSON_NAME], warnings=warnings)
        val.prepare_out(p, figs, planned, FIGURES, option="--figures", warnings=warnings)
        for warning in warnings:
            print(warning, file=sys.stderr)

    t0 = time.perf_counter()
    command = val.command_line(PROG, argv)
    summary: dict = dict(study="V4", config=val.config_path(args.config), overrides=overrides, command=command,
                         seed=base.run.seed, theory={}, runs={})
    for level in ("meso", "micro"):
        summary["theory"][level] = theory(args.config, overrides, level)
        th = summary["theory"][level]
        print(f"[v4] theory ({level} rule): rates {np.round(th['rates_hz'], 3)} Hz, max eigenvalue "
              f"{th['max_leading']:.4f} at m = {th['k_peak_steps']} (k = {th['k_peak']:.2f} rad/mm), "
              f"g_c = {th['g_c']:.4f}", flush=True)

    plan = [("meso", ["run.level=meso", "run.mean_field=false", f"run.t_end={t_end}"]),
            ("mean_field", ["run.level=meso", "run.mean_field=true", f"run.t_end={args.t_mean_field}"])]
    if not args.skip_micro:
        plan.insert(1, ("micro", ["run.level=micro", "run.mean_field=false", f"run.t_end={t_micro}"]))
    results = {}
    for label, extra in plan:
        cfg = meshfield.load_config(args.config, overrides + extra)
        r, cpu = timed_run(cfg)
        results[label] = r
        discard = min(args.discard, 0.5 * cfg.run.t_end)
        summary["runs"][label] = measure(r, discard, label, cpu)
        run = summary["runs"][label]
        print(f"[v4] {label}: {cfg.run.t_end:.0f} ms in {run['wall_s']:.1f} s; rates "
              f"{np.round(run['mean_rates_hz'], 2)} Hz; dominant m = {run['k_peak_steps']} "
              f"(k = {np.round(run['k_peak'], 2)} rad/mm); 1-s blocks at the peak: "
              f"{run['block_fraction_at_peak']:.2f}; stationary power fraction "
              f"{run['stationary_power_fraction']:.2f}", flush=True)

    summary["shot_noise_sd_mv"] = dict(config=shot_noise_sd(base, summary["theory"]["micro"]["rates_hz"]))
    if not args.skip_micro:
        summary["indegree_series"] = []
        for scale in args.indegree_scales:
            extra = indegree_overrides(base, scale)
            cfg = meshfield.load_config(args.config, overrides + extra + [
                "run.level=micro", "run.mean_field=false", f"run.t_end={t_micro}"])
            label = f"micro, C x {scale:g}"
            results[label], cpu = timed_run(cfg)
            run = measure(results[label], min(args.discard, 0.5 * cfg.run.t_end), label, cpu)
            run.update(scale=scale, C=[c.C for c in cfg.couplings], J=[c.J for c in cfg.couplings],
                       shot_noise_sd_mv=shot_noise_sd(cfg, summary["theory"]["micro"]["rates_hz"]))
            summary["indegree_series"].append(run)
            print(f"[v4] micro with C x {scale} (shot-noise SD {np.round(run['shot_noise_sd_mv'], 2)} mV): rates "
                  f"{np.round(run['mean_rates_hz'], 2)} Hz; dominant m = {run['k_peak_steps']}; 1-s blocks at "
                  f"the peak: {run['block_fraction_at_peak']:.2f}; contrast {run['pattern_contrast_hz']:.2f} Hz",
                  flush=True)

    if "micro" in results:
        # Cost per simulated ms: wall time of the time loop, and CPU time of the
        # whole call (build and numba cache loading included). On a shared machine
        # run with NUMBA_NUM_THREADS=1: waiting for a descheduled thread at every
        # parallel region inflates the wall time of both levels unpredictably.
        meso, micro = summary["runs"]["meso"], summary["runs"]["micro"]
        summary["speedup_meso_vs_micro"] = {
            key: (micro[key] / micro["t_end_ms"]) / (meso[key] / meso["t_end_ms"]) for key in ("wall_s", "cpu_s")}
        print(f"[v4] speedup meso vs micro per simulated ms: loop wall "
              f"{summary['speedup_meso_vs_micro']['wall_s']:.1f}, CPU {summary['speedup_meso_vs_micro']['cpu_s']:.1f}")

    if args.sweep:
        summary["sweep"] = sweep(args.config, overrides, base, args.sweep, args.t_sweep)
        summary["sweep"]["g_c_theory"] = summary["theory"]["meso"]["g_c"]
        within = summary["sweep"]["growth_rate_check"]["max_abs_difference_per_s"]
        print(f"[v4] onset: measured g_c = {summary['sweep']['g_c_measured']:.4f} "
              f"(bracket {summary['sweep']['g_c_bracket']}), theory {summary['theory']['meso']['g_c']:.4f}; "
              f"growth-rate signs agree with G - 1 for {summary['sweep']['sign_check']['agree']}/"
              f"{summary['sweep']['sign_check']['n_modes']} modes; growth rates within "
              f"{'-' if within is None else format(within, '.3g')}/s of the transfer-function "
              f"theory for {summary['sweep']['growth_rate_check']['n_modes']} modes")

    # Acceptance (docs/validation.md): same dominant wave number at both levels; the
    # theory within one lattice wave-number step of each level (type E; I reported).
    acc = {}
    for label in ("meso", "micro"):
        if label in summary["runs"]:
            predicted = summary["theory"][label]["k_peak_steps"]
            measured = summary["runs"][label]["k_peak_steps"]
            acc[f"theory_vs_{label}"] = dict(predicted_steps=predicted, measured_steps=measured,
                                             difference_steps=[m - predicted for m in measured],
                                             passed=bool(abs(measured[0] - predicted) <= 1))
    if "micro" in summary["runs"]:
        m_meso = summary["runs"]["meso"]["k_peak_steps"]
        m_micro = summary["runs"]["micro"]["k_peak_steps"]
        acc["same_k_both_levels"] = dict(meso_steps=m_meso, micro_steps=m_micro,
                                         passed=bool(m_meso[0] == m_micro[0]))
    acc["passed"] = bool(all(v["passed"] for v in acc.values()))
    not_run = [] if "micro" in summary["runs"] else ["theory_vs_micro", "same_k_both_levels"]
    acc["not_run"] = not_run
    summary["acceptance"] = acc
    summary["total_wall_s"] = time.perf_counter() - t0

    # The verdict first: a file that cannot be written must not lose it.
    for key, v in acc.items():
        if key not in ("passed", "not_run"):
            print(f"[v4] {key}: {'PASS' if v['passed'] else 'FAIL'} {v}")
    for key in not_run:
        print(f"[v4] {key}: not run (--skip-micro)")
    if not acc["passed"]:
        print("[v4] overall: FAIL", flush=True)
    elif not_run:
        print(f"[v4] overall: not run: {', '.join(not_run)} (--skip-micro); the checks that ran passed", flush=True)
    else:
        print("[v4] overall: PASS", flush=True)

    titles = {"meso": "meso (finite N)", "micro": "micro", "mean_field": "meso, mean field"}
    with val.Outputs(figs, FIGURES) as figures, val.Outputs(out, (JSON_NAME,)) as data:
        figure_patterns({titles.get(k, k): r for k, r in results.items()}, dx, figures.path("v4_patterns.png"))
        figure_dispersion(summary, figures.path("v4_dispersion.png"))
        if args.sweep:
            figure_onset(summary, figures.path("v4_onset.png"))
        val.write_json(data.path(JSON_NAME), summary)
    print(f"[v4] wrote {out / JSON_NAME} and {', '.join(figures.names)} in {figs}")
    return val.EXIT_PASSED if acc["passed"] else val.EXIT_FAILED


if __name__ == "__main__":
    with warnings.catch_warnings():
        # Trial points of the stationary solvers may overflow the hazard (harmless: inf).
        warnings.filterwarnings("ignore", category=RuntimeWarning, message="overflow")
        sys.exit(val.run_main(main, PROG))
