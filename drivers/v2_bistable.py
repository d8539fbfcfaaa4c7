"""Validation study V2 (docs/validation.md): the theory's Fig. 1, a bistable pair.

Physics. Two populations A and B of N = 500 GLIF neurons at one site excite
themselves weakly and inhibit each other strongly (``meshfield/configs/
bistable_pair.toml``). In the mean-field limit the pair has two stable
asymmetric states (one population up, the other down) and an unstable symmetric
one; at N = 500 the finite-size fluctuations make it switch between the two
asymmetric states at random. The mesoscopic model claims to reproduce the
statistics of this switching, which depends exponentially on the height of the
barrier between the states, from the population equation alone.

What is computed:

* theory (:mod:`meshfield.theory`): the three stationary states, in continuous
  time, with the mesoscopic discrete rule (trapezoid hazard, the engine's window
  K) and with the microscopic rule (endpoint hazard); their quasi-static
  stability (eigenvalues of the gain matrix ``F'(mu_eff) w`` below 1);
* a mean-field run of the mesoscopic level (no finite-size noise) kicked by a
  small asymmetric pulse: it must leave the symmetric state and settle in the
  asymmetric fixed point of the discrete theory, and never switch back;
* micro and meso runs of the same configuration and seed: sample paths (like
  Fig. 1B,C), mean and variance per type, PSD in log bands, the dwell-time
  distributions of the two states, the levels of the up and down states, and the
  acceptance rules of docs/validation.md (``compare_results``, micro the reference;
  the hysteresis thresholds of the smoothed state signal lie half way to the
  theory's states, the same for both levels);
* wall and CPU time of both levels and the speedup of meso over micro.

Outputs in ``--out`` (default out/v2/): ``v2_paths.png`` (sample paths),
``v2_stats.png`` (PSD, mean and variance), ``v2_dwell.png`` (dwell-time
distributions), ``v2_compare.png`` (the acceptance report) and ``v2.json``.

Cost (idle machine, one core): the default configuration (t_end = 4800 s)
takes about 50 minutes: about 9 min (meso) and 37 min (micro), plus the
continuous-time theory (~30 s). ``--quick`` simulates 120 s per level and takes
about 1.5 minutes (94 s measured on the shared 2-core machine).

Usage::

    python drivers/v2_bistable.py                       # out/v2/
    python drivers/v2_bistable.py --quick --out out/v2_quick
    python drivers/v2_bistable.py --quick --set couplings.0.C=250   # any config override (repeatable)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

if __name__ == "__main__":
    # one numba thread unless the user chose (see _validation); before numba starts
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _validation as val  # noqa: E402
from meshfield.analysis import (  # noqa: E402
    BistableSpec,
    compare_results,
    plot_comparison,
    smooth,
)
from meshfield.meso import history_length  # noqa: E402
from meshfield.theory import stationary_rate_discrete, stationary_rates_network  # noqa: E402

CONFIG = "bistable_pair"
PROG = "v2_bistable.py"

#: Every file the study writes into --out.
OWNED = ("v2.json", "v2_paths.png", "v2_stats.png", "v2_dwell.png", "v2_compare.png")

#: PSD segment of the comparison (ms): the statistics need two after the transient.
SEGMENT_MS = 1000.0

#: Moving-average window (ms) of the state signal A_A - A_B before the
#: hysteresis detection: long enough to remove most of the per-step finite-size
#: noise (the signal's histogram is then clearly bimodal), short against the
#: switching time (~20 ms) and the dwell times (~1 s).
WINDOW_MS = 30.0

#: Initial transient left out of every statistic (ms): the runs start with all
#: neurons at reset, and the pair picks a state within a few hundred ms.
DISCARD_MS = 1000.0

#: ``--quick``: simulated time (ms), enough for ~100 switches per level.
QUICK_T_END = 120000.0

#: Mean-field check: pulse (mV, ms) on type A that breaks the symmetry, run
#: length (ms), and the window at the end (ms) compared with the discrete theory.
MF_KICK = dict(amplitude=0.05, t_start=200.0, duration=100.0)
MF_T_END = 6000.0
MF_WINDOW = 1000.0

#: A deterministic run of the mesoscopic model in the stationary state must
#: reproduce the discrete-time fixed point (same rule, same K) to round-off
#: level; 1e-5 leaves room for the slow geometric convergence.
MF_RELATIVE = 1e-5

#: Starting points (Hz) of the fixed-point search for the bistable_pair
#: configuration; stationary_rates_network also tries the corners of the rate box.
GUESSES = dict(up=(4.0, 0.3), down=(0.3, 4.0), symmetric=(1.5, 1.5))

#: Step (mV) of the centred difference for F'(mu_eff).
GAIN_STEP = 1e-3

#: Bins of the histograms that locate the up and down levels (modes).
LEVEL_BINS = 80


def coupling_matrices(config) -> tuple[np.ndarray, np.ndarray]:
    """Weights J (mV) and in-degrees C, shape (T, T), indexed [target, source]."""
    index = {name: i for i, name in enumerate(config.types)}
    T = len(index)
    J, C = np.zeros((T, T)), np.zeros((T, T))
    for c in config.couplings:
        J[index[c.target], index[c.source]] = c.J
        C[index[c.target], index[c.source]] = c.C
    return J, C


def _gain_matrix(config, rates: np.ndarray, K) -> np.ndarray:
    """Quasi-static loop gain ``F'_a(mu_eff_a) w_ab`` (dimensionless) at ``rates`` (Hz).

    ``w_ab = tau_m C_ab J_ab / 1000`` (mV/Hz) is the shift of the stationary drive
    of type a per Hz of type b; F' is the slope (Hz/mV) of the discrete-time
    stationary rate of the mesoscopic rule with window K.
    """
    J, C = coupling_matrices(config)
    dt = config.run.dt
    pops = config.populations
    tau_m = np.array([p.tau_m for p in pops])
    w = tau_m[:, None] * C * J * 1e-3
    mu_eff = np.array([p.mu for p in pops]) + w @ rates
    slope = np.empty(len(pops))
    for a, pop in enumerate(pops):
        hi = stationary_rate_discrete(pop, dt, mu_eff=mu_eff[a] + GAIN_STEP, K=K[a])
        lo = stationary_rate_discrete(pop, dt, mu_eff=mu_eff[a] - GAIN_STEP, K=K[a])
        slope[a] = (hi - lo) / (2.0 * GAIN_STEP)
    return slope[:, None] * w


def fixed_points(config, continuous: bool = True) -> dict:
    """The stationary states of the pair and their quasi-static stability.

    ``continuous=False`` skips the continuous-time theory (the slow one, ~30 s).

    Returns
    -------
    dict
        Per rule (``continuous``; ``trapezoid`` with the engine's K, the
        mesoscopic level; ``endpoint``, the microscopic rule): ``up`` (type 0
        high), ``down`` (type 0 low) and ``symmetric`` rates (Hz). For the
        trapezoid rule also, per state, the eigenvalues of the gain matrix and
        ``stable`` (all real parts below 1), and ``G``, the antisymmetric loop
        gain of the symmetric state.

    Notes
    -----
    A fixed point of ``tau dA/dt = -A + F(mu + w A)`` is stable when every
    eigenvalue of ``F' w`` has real part below 1. This quasi-static criterion
    ignores oscillatory instabilities of the full population dynamics; the
    mean-field run (:func:`mean_field_check`) tests the actual dynamics.
    """
    J, C = coupling_matrices(config)
    dt = config.run.dt
    pops = config.populations
    K = [history_length(p, dt) for p in pops]
    rules = dict(trapezoid=dict(dt=dt, K=K), endpoint=dict(dt=dt, hazard_rule="endpoint"))
    if continuous:
        rules["continuous"] = dict()
    guesses = {name: np.array(g) for name, g in GUESSES.items()}
    out: dict = dict(K=K)
    for rule, kw in rules.items():
        states: dict = {}
        for name in ("up", "down", "symmetric"):
            if name in states:
                continue
            found = stationary_rates_network(pops, J, C, rates0=guesses[name], **kw).solutions
            for rates in found:
                states.update(_classify(rates, guesses))
        missing = {"up", "down", "symmetric"} - set(states)
        if missing:
            # bad input for V2 (one error line, status 2), not a failed study
            raise val.DriverError(f"the {rule} theory finds no {sorted(missing)} state for this configuration "
                                  f"(found: {_rates_text(states)}); the pair is not bistable, so V2 cannot study its "
                                  f"switching")
        out[rule] = states
        # The discrete solutions start the slower continuous search near its answer.
        guesses = {name: np.asarray(rates) for name, rates in states.items()}
    stability = {}
    for name, rates in out["trapezoid"].items():
        eig = np.linalg.eigvals(_gain_matrix(config, rates, K))
        stability[name] = dict(eigenvalues=eig.real.tolist(), eigenvalues_imag=eig.imag.tolist(),
                               stable=bool(np.all(eig.real < 1.0)))
    out["stability"] = stability
    gain = _gain_matrix(config, out["trapezoid"]["symmetric"], K)
    out["G"] = float(gain[0, 0] - gain[0, 1])
    return out


def _rates_text(states: dict) -> str:
    """``symmetric 1.12/1.12 Hz, ...`` of the theory's states (A/B rates)."""
    return ", ".join(f"{name} {'/'.join(f'{r:.3g}' for r in rates)} Hz" for name, rates in states.items()) or "none"


def _classify(rates: np.ndarray, guesses: dict) -> dict:
    """Name a stationary solution: symmetric (equal rates), up (type 0 higher) or down."""
    if np.isclose(rates[0], rates[1], rtol=1e-6):
        return dict(symmetric=rates)
    return dict(up=rates) if rates[0] > rates[1] else dict(down=rates)


def state_thresholds(theory: dict) -> tuple[float, float]:
    """Hysteresis thresholds (Hz) of the state signal A_0 - A_1: half way to the theory's states.

    The signal sits near ``+D`` in the up state and ``-D`` in the down state,
    ``D = A_up - A_down`` of the discrete (trapezoid) fixed points; the
    thresholds ``-D/2`` and ``+D/2`` are the same for both levels and do not
    depend on either simulation.
    """
    up, down = theory["trapezoid"]["up"], theory["trapezoid"]["down"]
    return float(down[0] - down[1]) / 2.0, float(up[0] - up[1]) / 2.0


def mean_field_check(config, theory: dict) -> dict:
    """Mean-field meso run with a small pulse on type A: settles in the asymmetric fixed point.

    Returns
    -------
    dict
        Rates in the last ``MF_WINDOW`` ms (Hz), the trapezoid fixed point, the
        relative differences, the largest |A_A - A_B| sign change count after the
        pulse (0: no switch back) and ``passed``.
    """
    stim = ("stimuli=[{kind=\"step\", amplitude=%g, types=[\"%s\"], t_start=%g, duration=%g}]"
            % (MF_KICK["amplitude"], config.types[0], MF_KICK["t_start"], MF_KICK["duration"]))
    result, timing = val.timed_run(config, ["run.mean_field=true", f"run.t_end={MF_T_END}", stim])
    A = np.asarray(result.A[:, :, 0], dtype=np.float64)
    n = int(round(MF_WINDOW / result.record_interval))
    rate = A[-n:].mean(axis=0)
    target = np.asarray(theory["trapezoid"]["up"])
    relative = rate / target - 1.0
    after = A[int(round((MF_KICK["t_start"] + MF_KICK["duration"]) / result.record_interval)):]
    sign = np.sign(after[:, 0] - after[:, 1])
    sign = sign[sign != 0]
    reversals = int(np.count_nonzero(np.diff(sign)))
    return dict(rate=rate, theory=target, relative=relative, reversals=reversals, kick=MF_KICK,
                t_end_ms=MF_T_END, window_ms=MF_WINDOW, timing=timing,
                passed=bool(np.all(np.abs(relative) <= MF_RELATIVE) and reversals == 0))


def state_levels(result, state: np.ndarray, discard: float, window_ms: float) -> dict:
    """Activity of the dominant and the suppressed population in the detected states (Hz).

    ``state`` is the hysteresis state (+1: type 0 dominates, -1: type 1, 0:
    undetermined) of the samples after ``discard``; levels without a classified
    sample (a record that never reaches a threshold) are NaN. ``high``/``low`` are the
    means over the classified samples of the dominant / suppressed population's
    activity; ``high_mode``/``low_mode`` the peaks of the histograms of the same
    activities smoothed over ``window_ms`` (the most frequent level, less
    affected by the excursions towards the saddle than the mean).
    """
    start = int(np.ceil(discard / result.record_interval - 1e-9))
    A = np.asarray(result.A[start:, :, 0], dtype=np.float64)
    S = smooth(A, window_ms, result.record_interval)
    up, down = state == 1, state == -1
    high = np.concatenate((A[up, 0], A[down, 1]))
    low = np.concatenate((A[up, 1], A[down, 0]))

    def mode(x):
        if x.size == 0:  # no sample in a detected state (no switching at all): no level
            return float("nan")
        hist, edges = np.histogram(x, bins=LEVEL_BINS, range=(0.0, np.percentile(x, 99.5)))
        hist = np.convolve(hist, np.ones(3) / 3.0, mode="same")
        k = int(np.argmax(hist))
        return 0.5 * (edges[k] + edges[k + 1])

    def mean(x):
        return float(x.mean()) if x.size else float("nan")

    return dict(high=mean(high), low=mean(low),
                high_mode=mode(np.concatenate((S[up, 0], S[down, 1]))),
                low_mode=mode(np.concatenate((S[up, 1], S[down, 0]))),
                fraction_classified=float(np.mean(state != 0)))


def level_numbers(report, k: int, level_result, discard: float, window_ms: float) -> dict:
    """The statistics of one level (index k of the report) as plain data."""
    m, b, d = report.means[k], report.bands[k], report.dwells[k]
    return dict(
        mean=m.mean, mean_se=m.mean_se, var=m.var, var_se=m.var_se, block_ms=m.block_ms,
        psd_bands=dict(f_lo=b.f_lo, f_hi=b.f_hi, f_center=b.f_center, value=b.value, se=b.se, n_bins=b.n_bins),
        n_switches=d.n_switches,
        dwell=dict(mean_up=d.mean_up, se_up=d.se_up, n_up=int(d.up.size), mean_down=d.mean_down,
                   se_down=d.se_down, n_down=int(d.down.size),
                   mean_all=float(np.concatenate((d.up, d.down)).mean()) if d.up.size + d.down.size else None,
                   cv_all=float(np.std(np.concatenate((d.up, d.down))) / np.mean(np.concatenate((d.up, d.down))))
                   if d.up.size + d.down.size > 1 else None),
        levels=state_levels(level_result, d.state, discard, window_ms),
    )


def variance_checks(report) -> list:
    """Variance per type, micro vs meso (reported; docs/validation.md has no variance rule)."""
    rows = []
    for t, name in enumerate(report.types):
        a, b = float(report.means[0].var[t]), float(report.means[1].var[t])
        sa, sb = float(report.means[0].var_se[t]), float(report.means[1].var_se[t])
        rows.append(dict(type=name, micro=a, meso=b, micro_se=sa, meso_se=sb, relative=(b - a) / a,
                         within_3se=bool(abs(b - a) <= 3.0 * np.hypot(sa, sb))))
    return rows


# ----------------------------------------------------------------------------- figures

def plot_paths(path: Path, results: dict, types, t0: float, span: float, window_ms: float = 10.0) -> None:
    """Sample paths of A_A and A_B of both levels over ``span`` ms from ``t0`` (Fig. 1B,C)."""
    figure, axes = val.new_figure(2, 1, width=9.0, height=2.3)
    for row, level in enumerate(("micro", "meso")):
        res = results[level]
        dt = res.record_interval
        i0, i1 = int(t0 / dt), int((t0 + span) / dt)
        A = smooth(np.asarray(res.A[:, :, 0], dtype=np.float64), window_ms, dt)[i0:i1]
        t = (np.arange(i0, i1) * dt) / 1000.0
        ax = axes[row, 0]
        for k, name in enumerate(types):
            ax.plot(t, A[:, k], lw=0.7, color=f"C{k}", label=f"A_{name}")
        ax.set_ylabel("activity (Hz)")
        ax.set_xlim(t[0], t[-1])
        ax.set_title(f"{level}: N = 500 per population ({window_ms:g} ms moving average)", fontsize=9)
        ax.legend(fontsize=7, loc="upper right", ncol=2)
    axes[1, 0].set_xlabel("time (s)")
    val.save_figure(figure, path)


def plot_stats(path: Path, report, types) -> None:
    """PSD per type of both levels with the band averages; mean and variance per type (3 SE bars)."""
    figure, axes = val.new_figure(2, 2, width=4.4, height=3.2)
    colours = dict(micro="C0", meso="C1")
    for t, name in enumerate(types):
        ax = axes[0, t]
        for k, level in enumerate(("micro", "meso")):
            s, b = report.psds[k], report.bands[k]
            ax.loglog(s.freqs[1:], s.S[1:, t], color=colours[level], lw=0.6, alpha=0.6, label=level)
            ax.errorbar(b.f_center, b.value[:, t], yerr=3 * b.se[:, t], fmt="o", ms=3, capsize=2,
                        color=colours[level])
        for i, ok in enumerate(report.band_passed[:, t]):
            ax.axvspan(report.bands[0].f_lo[i], report.bands[0].f_hi[i], color="g" if ok else "r",
                       alpha=0.06 if ok else 0.15, lw=0)
        ax.set_xlabel("frequency (Hz)")
        ax.set_ylabel("PSD (Hz)")
        ax.set_title(f"PSD of A_{name} (bands: 3 SE)", fontsize=9)
        ax.legend(fontsize=7)
    for j, (what, unit) in enumerate((("mean", "Hz"), ("var", "Hz^2"))):
        ax = axes[1, j]
        x = np.arange(len(types))
        for k, level in enumerate(("micro", "meso")):
            m = report.means[k]
            v, se = getattr(m, what), getattr(m, f"{what}_se")
            ax.errorbar(x + (k - 0.5) * 0.2, v, yerr=3 * se, fmt="o", capsize=4, color=colours[level], label=level)
        ax.set_xticks(x, [f"A_{n}" for n in types])
        ax.set_xlim(-0.6, len(types) - 0.4)
        ax.set_ylabel(f"{'mean' if what == 'mean' else 'variance'} ({unit})")
        ax.set_title(f"{'mean' if what == 'mean' else 'variance'} per type (3 SE)", fontsize=9)
        ax.legend(fontsize=7)
    val.save_figure(figure, path)


def plot_dwell(path: Path, report, pair: str) -> None:
    """Dwell-time distributions of both states and levels with their means."""
    figure, axes = val.new_figure(1, 2, width=4.4, height=3.2)
    colours = dict(micro="C0", meso="C1")
    for j, state in enumerate(("up", "down")):
        ax = axes[0, j]
        samples = [getattr(d, state) / 1000.0 for d in report.dwells]
        top = max(float(np.percentile(s, 99)) if s.size else 1.0 for s in samples)
        bins = np.linspace(0.0, top, 30)
        for k, level in enumerate(("micro", "meso")):
            s = samples[k]
            if not s.size:
                continue
            se = f" +- {s.std(ddof=1) / np.sqrt(s.size):.2f}" if s.size > 1 else ""
            ax.hist(s, bins=bins, density=True, histtype="step", lw=1.2, color=colours[level],
                    label=f"{level}: {s.mean():.2f}{se} s (n={s.size})")
            ax.axvline(s.mean(), color=colours[level], ls="--", lw=1)
        ax.set_xlabel(f"dwell time in the {state} state (s)")
        ax.set_ylabel("density (1/s)")
        ax.set_title(f"{pair}: {state} state ({'A' if state == 'up' else 'B'} dominant)", fontsize=9)
        if any(s.size for s in samples):
            ax.set_yscale("log")
            ax.legend(fontsize=7)
        else:  # a record without a whole dwell: nothing to draw (and no warnings)
            ax.text(0.5, 0.5, "no complete dwell in either level", ha="center", va="center",
                    transform=ax.transAxes)
    val.save_figure(figure, path)


# ----------------------------------------------------------------------------- study

def study(out: Path | None = None, *, config: str = CONFIG, t_end: float | None = None, seed: int | None = None,
          discard: float = DISCARD_MS, window_ms: float = WINDOW_MS, overrides=(), path_window=(20000.0, 10000.0),
          continuous_theory: bool = True, command: str | None = None) -> dict:
    """Run V2 and return its numbers (written, with figures, to ``out`` if given).

    The parameters are those of :func:`compute`; ``out`` is the folder for
    ``v2.json`` and the figures (:func:`_validation.write_outputs`).
    """
    data, figures = compute(config=config, t_end=t_end, seed=seed, discard=discard, window_ms=window_ms,
                            overrides=overrides, path_window=path_window, continuous_theory=continuous_theory,
                            command=command)
    if out is not None:
        val.write_outputs(out, "v2.json", _json_part(data), figures, OWNED)
    return data


def _json_part(data: dict) -> dict:
    """``data`` without the objects that do not go into the JSON (report, results)."""
    return {k: v for k, v in data.items() if k not in ("report", "results")}


def compute(*, config: str = CONFIG, t_end: float | None = None, seed: int | None = None,
            discard: float = DISCARD_MS, window_ms: float = WINDOW_MS, overrides=(),
            path_window=(20000.0, 10000.0), continuous_theory: bool = True,
            command: str | None = None) -> tuple[dict, list]:
    """Run V2 and return its numbers and its figures, not yet drawn.

    Parameters
    ----------
    config : str
        Packaged name or TOML path.
    t_end : float, optional
        Simulated time per level, ms (default: the file's).
    seed : int, optional
        Seed of both levels (default: the file's).
    discard : float
        Transient left out of the statistics, ms.
    window_ms : float
        Smoothing of the state signal before the hysteresis detection, ms.
    overrides : sequence of str
        Further ``--set`` assignments applied to the configuration.
    path_window : (float, float)
        Start and length (ms) of the sample paths drawn.
    continuous_theory : bool
        Also solve the continuous-time theory (slow; the tests skip it).
    command : str, optional
        The command line recorded in the JSON (default: the driver call with ``--t-end``).

    Returns
    -------
    data : dict
        The JSON content (see docs/validation.md), plus ``report`` (the
        ComparisonReport) and ``results`` (the two runs, by level), which are
        not written to the JSON.
    figures : list of (str, callable)
        File name and ``draw(path)`` of every figure.
    """
    extra = list(overrides)
    if t_end is not None:
        extra.append(f"run.t_end={t_end}")
    if seed is not None:
        extra.append(f"run.seed={seed}")
    cfg = val.load(config, extra)
    theory = fixed_points(cfg, continuous=continuous_theory)
    mean_field = mean_field_check(cfg, theory)

    results, timing = {}, {}
    for level in ("micro", "meso"):
        results[level], timing[level] = val.timed_run(cfg, [f"run.level={level}"])

    low, high = state_thresholds(theory)
    spec = BistableSpec(low=low, high=high, window_ms=window_ms)
    report = compare_results(results["micro"], results["meso"], discard=discard, bistable=spec,
                             labels=("micro", "meso"))
    levels = {level: level_numbers(report, k, results[level], discard, window_ms)
              for k, level in enumerate(("micro", "meso"))}
    pair = f"{cfg.types[0]}-{cfg.types[1]}"
    data = dict(
        study="V2",
        config=val.config_path(config),
        overrides=extra,
        command=command or f"python drivers/{PROG}" + (f" --t-end {t_end:g}" if t_end is not None else ""),
        settings=dict(t_end_ms=cfg.run.t_end, discard_ms=discard, seed=cfg.run.seed, dt_ms=cfg.run.dt,
                      record_interval_ms=cfg.record.interval, window_ms=window_ms,
                      N=[p.N for p in cfg.populations], mf_relative=MF_RELATIVE),
        types=list(cfg.types),
        theory=theory,
        mean_field=mean_field,
        thresholds=dict(low=low, high=high, source="theory (trapezoid): half way to the up/down states"),
        levels=levels,
        variance=variance_checks(report),
        compare=val.report_dict(report),
        timing=timing,
        speedup=val.speedup(timing["micro"], timing["meso"]),
        acceptance=dict(micro_vs_meso=report.passed, failures=[f"{r.quantity} ({r.type})" for r in report.failures],
                        mean_field=mean_field["passed"],
                        theory_bistable=bool(theory["stability"]["up"]["stable"]
                                             and theory["stability"]["down"]["stable"]
                                             and not theory["stability"]["symmetric"]["stable"])),
    )
    t0, span = path_window
    t0 = min(t0, max(discard, cfg.run.t_end - span))
    figures = [
        ("v2_paths.png", lambda path: plot_paths(path, results, cfg.types, t0, min(span, cfg.run.t_end - t0))),
        ("v2_stats.png", lambda path: plot_stats(path, report, cfg.types)),
        ("v2_dwell.png", lambda path: plot_dwell(path, report, pair)),
        ("v2_compare.png", lambda path: plot_comparison(report, path)),
    ]
    data["report"] = report
    data["results"] = results
    return data, figures


def summary(data: dict) -> str:
    """Plain-text summary table of the numbers."""
    th, types = data["theory"], data["types"]
    lines = [f"V2 ({data['config']}, t_end = {data['settings']['t_end_ms'] / 1000:g} s, seed {data['settings']['seed']})"]
    for rule in ("continuous", "trapezoid", "endpoint"):
        if rule not in th:
            continue
        s = th[rule]
        lines.append(f"  theory {rule:10s}: up {s['up'][0]:.4f}/{s['up'][1]:.4f} Hz, symmetric {s['symmetric'][0]:.4f} Hz")
    st = th["stability"]
    lines.append(f"  stability (gain eigenvalues < 1): up {st['up']['stable']}, symmetric {st['symmetric']['stable']} "
                 f"(G = {th['G']:.3f})")
    mf = data["mean_field"]
    lines.append(f"  mean field after a {mf['kick']['amplitude']} mV kick: {mf['rate'][0]:.6f}/{mf['rate'][1]:.6f} Hz, "
                 f"rel. to theory {mf['relative'][0]:+.1e}/{mf['relative'][1]:+.1e}, {mf['reversals']} switches back: "
                 f"{'pass' if mf['passed'] else 'FAIL'}")
    lines.append(f"  thresholds (theory, {data['settings']['window_ms']:g} ms smoothing): low {data['thresholds']['low']:.3f}, "
                 f"high {data['thresholds']['high']:.3f} Hz")
    head = f"  {'quantity':24s} {'micro':>22s} {'meso':>22s}"
    lines.append(head)
    L = data["levels"]

    def pm(v, se, f="{:.4g}"):
        return (f + " +- " + f).format(v, se)

    for t, name in enumerate(types):
        lines.append(f"  {'mean A_' + name + ' (Hz)':24s} {pm(L['micro']['mean'][t], L['micro']['mean_se'][t]):>22s} "
                     f"{pm(L['meso']['mean'][t], L['meso']['mean_se'][t]):>22s}")
        lines.append(f"  {'var A_' + name + ' (Hz^2)':24s} {pm(L['micro']['var'][t], L['micro']['var_se'][t]):>22s} "
                     f"{pm(L['meso']['var'][t], L['meso']['var_se'][t]):>22s}")
    for state in ("up", "down"):
        lines.append(f"  {'dwell ' + state + ' (ms)':24s} "
                     f"{pm(L['micro']['dwell']['mean_' + state], L['micro']['dwell']['se_' + state], '{:.0f}'):>22s} "
                     f"{pm(L['meso']['dwell']['mean_' + state], L['meso']['dwell']['se_' + state], '{:.0f}'):>22s}")
    lines.append(f"  {'switches':24s} {L['micro']['n_switches']:>22d} {L['meso']['n_switches']:>22d}")
    for key, label in (("high", "up level mean (Hz)"), ("high_mode", "up level mode (Hz)"),
                       ("low", "down level mean (Hz)"), ("low_mode", "down level mode (Hz)")):
        lines.append(f"  {label:24s} {L['micro']['levels'][key]:>22.4g} {L['meso']['levels'][key]:>22.4g}")
    lines.append(f"  {'wall time (s)':24s} {data['timing']['micro']['wall_s']:>22.1f} {data['timing']['meso']['wall_s']:>22.1f}")
    lines.append(f"  speedup meso over micro: {data['speedup']['wall']:.2f}x wall, {data['speedup']['cpu']:.2f}x CPU")
    lines.append("  acceptance (docs/validation.md, micro reference):")
    for r in data["compare"]["rows"]:
        lines.append(f"    {r['quantity']:18s} {r['type']:4s} micro {r['value_a']:.4g}  meso {r['value_b']:.4g}  "
                     f"({r['tolerance']}) {'pass' if r['passed'] else 'FAIL'}")
    for v in data["variance"]:
        lines.append(f"    variance {v['type']}: meso/micro - 1 = {100 * v['relative']:+.1f} % "
                     f"({'within' if v['within_3se'] else 'outside'} 3 SE; no docs/validation.md rule)")
    acc = data["acceptance"]
    lines.append(f"  V2 {'PASS' if passed(data) else 'FAIL'}: "
                 f"micro vs meso {'PASS' if acc['micro_vs_meso'] else 'FAIL'}"
                 + (f": {', '.join(acc['failures'])}" if acc["failures"] else "")
                 + f"; mean-field check {'pass' if acc['mean_field'] else 'FAIL'}; "
                   f"theory bistable {'yes' if acc['theory_bistable'] else 'NO'}")
    return "\n".join(lines)


def passed(data: dict) -> bool:
    """V2's verdict: the acceptance rules, the mean-field check and a bistable theory."""
    acc = data["acceptance"]
    return bool(acc["micro_vs_meso"] and acc["mean_field"] and acc["theory_bistable"])


def build_parser():
    p = val.parser("v2", __doc__, prog=PROG,
                   writes="v2.json and the figures v2_paths.png, v2_stats.png, v2_dwell.png, v2_compare.png "
                          "into --out.",
                   default_run="about 50 minutes on one core (t_end = 4800 s per level); --quick about 1.5 "
                               "minutes.")
    p.add_argument("--config", default=CONFIG, help="packaged name or TOML file (default bistable_pair)")
    p.add_argument("--t-end", type=val.positive, default=None, metavar="MS",
                   help="simulated ms per level, at least --discard + 2000 (default: the file's, 4800000; "
                        f"{QUICK_T_END:g} with --quick)")
    p.add_argument("--seed", type=val.seed, default=None, help="seed of both levels (default: the file's, 1)")
    p.add_argument("--quick", action="store_true",
                   help=f"short version: t_end = {QUICK_T_END:g} ms (default: off)")
    p.add_argument("--discard", type=val.nonnegative, default=DISCARD_MS, metavar="MS",
                   help=f"transient, ms (>= 0; default {DISCARD_MS:g})")
    p.add_argument("--window", type=val.nonnegative, default=WINDOW_MS, metavar="MS",
                   help=f"state-signal smoothing, ms (>= 0; default {WINDOW_MS:g})")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="configuration override (repeatable), e.g. couplings.0.C=250 (default: none)")
    return p


def main(argv=None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    t_end = args.t_end if args.t_end is not None else (QUICK_T_END if args.quick else None)
    extra = list(args.overrides)
    if t_end is not None:
        extra.append(f"run.t_end={t_end}")
    if args.seed is not None:
        extra.append(f"run.seed={args.seed}")
    cfg = val.check_config(p, args.config, extra)
    if len(cfg.types) != 2 or int(np.prod(cfg.lattice.shape)) != 1:
        p.error(f"--config/--set: V2 needs two population types at one site (this configuration has "
                f"{len(cfg.types)} type(s) on a lattice of shape {list(cfg.lattice.shape)})")
    if cfg.run.t_end - args.discard < 2 * SEGMENT_MS:
        p.error(f"run.t_end = {cfg.run.t_end:g} ms is too short: the comparison needs two PSD segments of "
                f"{SEGMENT_MS:g} ms after --discard {args.discard:g}, so --t-end of at least "
                f"{args.discard + 2 * SEGMENT_MS:g} ms")
    out = val.prepare_out(p, args.out, list(OWNED), OWNED)
    data, figures = compute(config=args.config, t_end=t_end, seed=args.seed, discard=args.discard,
                            window_ms=args.window, overrides=args.overrides, command=val.command_line(PROG, argv))
    print(summary(data), flush=True)
    names = val.write_outputs(out, "v2.json", _json_part(data), figures, OWNED)
    print(val.wrote(out, names))
    return val.EXIT_PASSED if passed(data) else val.EXIT_FAILED


if __name__ == "__main__":
    sys.exit(val.run_main(main, PROG))
