"""Validation study V1 (docs/validation.md): one site, one uncoupled population.

Physics. An uncoupled population of N GLIF neurons with escape noise is N
independent (renewal, or with adaptation quasi-renewal) spike trains. Its
stationary rate follows from the renewal theory of docs/theory.md
(:mod:`meshfield.theory`), and at high frequencies the power spectral density
of the population activity is that of N independent trains, ``r/N`` (Hz).

What is compared, for a type without adaptation (``plain``) and one with
threshold adaptation (``adapting``), both in ``meshfield/configs/v1_single.toml``
(two uncoupled types at one site: two independent V1 studies in one run):

* stationary rate of the mesoscopic level (finite N and mean field) and of the
  microscopic level against the theory: continuous time, and discrete time with
  each level's hazard rule (trapezoid for meso, whose window K is the engine's;
  endpoint for micro);
* microscopic vs mesoscopic level with the acceptance rules of docs/validation.md
  (``meshfield.analysis.compare_results``: mean rate, PSD in 8 log bands);
* the high-frequency PSD level of both levels against ``r (1 - r dt) / N`` (the
  level of N Bernoulli spike trains in steps of dt, records at dt);
* the same comparison at small N (``--weak-n``, default 50), a regime
  docs/validation.md lists as weaker for the approximation;
* the PSD below 20 Hz of the ``plain`` type at N = 100 over 240 s, at both
  levels and in NEST (``gif_psc_exp``, ``gif_pop_psc_exp``) if installed;
* a scan of the adaptation strength (micro, meso and the quasi-renewal theory
  vs ``J_theta``), which shows how the error of the quasi-renewal threshold
  grows with adaptation;
* wall and CPU time of both levels.

Cost on one core: about 1.5 minutes in all with the defaults
(docs/validation_v1356.md). The 60 s per level at N = 500 take about 15 s
(micro) and 2.5 s (meso; K = 208 + 738 cohorts per step), the N = 50
comparison about 6 s, the adaptation scan (5 strengths x 2 levels x 20 s) and
the 240 s low-frequency check at both levels and in NEST most of the rest.

Outputs in ``--out`` (default out/v1/): ``v1.json``, ``v1_rates.png``,
``v1_psd.png``, ``v1_compare.png`` (and ``v1_compare_N50.png`` for
``--weak-n 50``), ``v1_adaptation_scan.png`` (unless the scan is skipped) and
``v1_low_frequency.png`` (unless that check is skipped).

Usage::

    python drivers/v1_single_population.py                 # out/v1/
    python drivers/v1_single_population.py --t-sim 20000 --weak-n 0
    python drivers/v1_single_population.py --t-sim 4000 --weak-n 0 --scan-j --low-frequency-t-sim 0  # ~10 s
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np

if __name__ == "__main__":
    # one numba thread unless the user chose (see _validation); before numba starts
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _validation as val  # noqa: E402
from meshfield.analysis import compare_results, plot_comparison, psd  # noqa: E402
from meshfield.meso import history_length  # noqa: E402
from meshfield.theory import stationary_rate, stationary_rate_discrete  # noqa: E402

CONFIG = "v1_single"
PROG = "v1_single_population.py"

#: Every file the study can write into --out (patterns), for the stale-output check.
OWNED = ("v1.json", "v1_rates.png", "v1_psd.png", "v1_compare.png", "v1_compare_N*.png",
         "v1_adaptation_scan.png", "v1_low_frequency.png")

#: PSD segment of the micro-meso comparison and of the high-frequency level (ms):
#: the statistics need two of them after the transient.
SEGMENT_MS = 1000.0

#: PSD segment of the low-frequency check (ms); it needs two of them as well.
LOW_SEGMENT_MS = 4000.0

#: Batch-means blocks of the mean rates (each needs at least one record).
N_BLOCKS = 20

#: Adaptation strengths J_theta (mV ms, tau_theta = 100 ms) of the scan.
SCAN_J = (250.0, 500.0, 1000.0, 2000.0, 4000.0)

#: Band (Hz) over which the high-frequency PSD level is averaged: above the
#: renewal structure (inverse mean interval and t_ref harmonics decay as
#: 1/(2 pi f tau) and are ~1 % here), up to the Nyquist rate.
HF_BAND = (300.0, 1000.0)

#: Stated tolerance of the high-frequency level against r (1 - r dt) / N.
HF_RELATIVE = 0.05

#: Stated tolerance of each level's mean against the continuous-time theory
#: (docs/validation.md's 5 % for means); the discretization error at dt = 0.5 ms is
#: below 1 % (see V6).
CONTINUOUS_RELATIVE = 0.05

#: The mean-field run is deterministic and converges geometrically; its last
#: second must agree with the discrete theory to this relative accuracy.
MEAN_FIELD_RELATIVE = 1e-6


def theory_rates(config) -> dict:
    """Stationary rates (Hz) per type: continuous, discrete trapezoid (engine K), discrete endpoint."""
    dt = config.run.dt
    out = {}
    for pop in config.populations:
        out[pop.name] = dict(
            continuous=stationary_rate(pop),
            discrete_trapezoid=stationary_rate_discrete(pop, dt, K=history_length(pop, dt)),
            discrete_endpoint=stationary_rate_discrete(pop, dt, hazard_rule="endpoint"),
            K=history_length(pop, dt),
        )
    return out


def mean_field_rates(config, t_end: float, window: float = 1000.0) -> dict:
    """Rate of each type in the last ``window`` ms of a mean-field run, with its relative spread."""
    result, timing = val.timed_run(config, ["run.mean_field=true", f"run.t_end={t_end}"])
    tail = np.asarray(result.A[-int(round(window / result.record_interval)):, :, 0], dtype=np.float64)
    rate = tail.mean(axis=0)
    return dict(rate=rate, relative_spread=tail.std(axis=0) / rate, t_end=t_end, window=window,
                timing=timing)


def high_frequency_level(record, discard: float, band=HF_BAND) -> tuple[np.ndarray, np.ndarray]:
    """Mean two-sided PSD (Hz) per type over the bins in ``band`` and its SE over 1 s segments."""
    spectrum = psd(record, discard=discard, segment_ms=1000.0)
    inside = (spectrum.freqs >= band[0]) & (spectrum.freqs <= band[1])
    per_segment = spectrum.segments[:, inside].mean(axis=1)
    return per_segment.mean(axis=0), per_segment.std(axis=0, ddof=1) / np.sqrt(per_segment.shape[0])


def level_comparison(config, t_sim: float, discard: float, seed: int, N: int | None,
                     theory: dict) -> dict:
    """Micro and meso runs of ``config`` (optionally at population size N) and all their checks.

    Returns
    -------
    dict
        ``N``, ``means`` / ``se`` per level (Hz), ``compare`` (report as data),
        ``report`` (the :class:`ComparisonReport`, not for the JSON),
        ``theory_checks``, ``hf_level``, ``timing``, ``speedup``, ``records``.
    """
    overrides = [f"run.t_end={discard + t_sim}", f"run.seed={seed}"]
    if N is not None:
        overrides += [f"populations.{name}.N={N}" for name in config.types]
    cfg = val.load(config, overrides)
    dt = cfg.run.dt
    results, timing = {}, {}
    for level in ("micro", "meso"):
        results[level], timing[level] = val.timed_run(cfg, [f"run.level={level}"])
    report = compare_results(results["micro"], results["meso"], discard=discard, labels=("micro", "meso"))
    means = {level: report.means[k].mean for k, level in enumerate(("micro", "meso"))}
    ses = {level: report.means[k].mean_se for k, level in enumerate(("micro", "meso"))}
    checks, hf = [], {}
    for level, rule in (("micro", "discrete_endpoint"), ("meso", "discrete_trapezoid")):
        hf_mean, hf_se = high_frequency_level(results[level], discard)
        for t, pop in enumerate(cfg.populations):
            th = theory[pop.name]
            m, se = float(means[level][t]), float(ses[level][t])
            checks.append(dict(level=level, type=pop.name, theory=rule, **val.within(m, th[rule], se)))
            checks.append(dict(level=level, type=pop.name, theory="continuous",
                               **val.within(m, th["continuous"], relative=CONTINUOUS_RELATIVE)))
            white = m * (1.0 - m * dt * 1e-3) / pop.N
            hf.setdefault(pop.name, {})[level] = dict(
                level=float(hf_mean[t]), se=float(hf_se[t]), r_over_N=m / pop.N, bernoulli=white,
                ratio=float(hf_mean[t]) / white, passed=bool(abs(hf_mean[t] / white - 1.0) <= HF_RELATIVE),
            )
    return dict(
        N=[p.N for p in cfg.populations], means=means, se=ses, compare=val.report_dict(report), report=report,
        theory_checks=checks, hf_level=hf, timing=timing, speedup=val.speedup(timing["micro"], timing["meso"]),
        records=results,
    )


def adaptation_scan(config, J_values, t_sim: float, discard: float, seed: int,
                    type_name: str = "adapting") -> list:
    """Micro and meso mean rate of one adapting type for several adaptation strengths J_theta.

    The quasi-renewal threshold of the mesoscopic model (and of the theory) is
    an approximation whose error grows with the adaptation strength; this scan
    shows how fast. Only ``type_name`` is simulated; every other setting is the
    configuration's.

    Returns
    -------
    list of dict
        Per J_theta (mV ms): micro and meso mean (Hz) with SE, the quasi-renewal
        theory (endpoint and trapezoid rules), and the acceptance check of the means.
    """
    base = config.to_dict()
    base["populations"] = {type_name: base["populations"][type_name]}
    rows = []
    for J in J_values:
        cfg = val.load(base, [f"populations.{type_name}.J_theta=[{float(J)}]", f"run.t_end={discard + t_sim}",
                              f"run.seed={seed}"])
        pop = cfg.populations[0]
        means = {}
        for level in ("micro", "meso"):
            result, _ = val.timed_run(cfg, [f"run.level={level}"])
            m, se = val.mean_se(result, discard=discard)
            means[level] = (float(m[0]), float(se[0]))
        (a, sa), (b, sb) = means["micro"], means["meso"]
        se = float(np.hypot(sa, sb))
        rows.append(dict(
            J_theta=float(J), micro=a, micro_se=sa, meso=b, meso_se=sb,
            theory_endpoint=stationary_rate_discrete(pop, cfg.run.dt, hazard_rule="endpoint"),
            theory_trapezoid=stationary_rate_discrete(pop, cfg.run.dt, K=history_length(pop, cfg.run.dt)),
            meso_vs_micro=(b - a) / a,
            passed=bool(abs(b - a) <= 3 * se and abs(b - a) <= 0.05 * abs(a)),
        ))
    return rows


def plot_scan(path: Path, rows: list) -> None:
    """Relative deviation of meso and of the quasi-renewal theory from micro vs J_theta."""
    figure, axes = val.new_figure(1, 1, width=4.6, height=3.4)
    ax = axes[0, 0]
    J = np.array([r["J_theta"] for r in rows])
    micro = np.array([r["micro"] for r in rows])
    micro_se = np.array([r["micro_se"] for r in rows])
    meso = np.array([r["meso"] for r in rows])
    meso_se = np.array([r["meso_se"] for r in rows])
    theory = np.array([r["theory_endpoint"] for r in rows])
    ax.axhspan(-5, 5, color="0.92", lw=0, label="5 %")
    ax.errorbar(J, 100 * (meso / micro - 1), yerr=300 * np.hypot(meso_se, micro_se) / micro, fmt="o-",
                color="C1", capsize=3, label="meso (bars 3 SE)")
    ax.plot(J, 100 * (theory / micro - 1), "k--", label="quasi-renewal theory")
    ax.axhline(0, color="C0", lw=1)
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(J, [f"{j:g}" for j in J])
    ax.set_xlabel("adaptation strength J_theta (mV ms), tau_theta = 100 ms")
    ax.set_ylabel("rate relative to micro (%)")
    ax.set_title("V1: quasi-renewal error vs adaptation")
    ax.legend(fontsize=7)
    val.save_figure(figure, path)


def low_frequency_check(config, N: int, t_sim: float, discard: float, seed: int, type_name: str = "plain",
                        with_nest: bool = True) -> dict:
    """Low-frequency PSD (0.25-20 Hz, 8 log bands, 4 s segments) of one type at both levels, and in NEST.

    A long run at small N resolves the spectrum below the bands of the
    acceptance comparison. NEST's ``gif_pop_psc_exp`` and ``gif_psc_exp`` (if
    NEST is installed) show whether a difference between the levels belongs to
    the mesoscopic model or to meshfield's implementation of it.

    Returns
    -------
    dict
        ``f_lo``, ``f_hi`` (Hz), and per simulator the band values and SEs (Hz)
        and the mean rate (Hz).
    """
    from meshfield.analysis import log_band_average

    base = config.to_dict()
    base["populations"] = {type_name: dict(base["populations"][type_name], N=N)}
    cfg = val.load(base, [f"run.t_end={discard + t_sim}", f"run.seed={seed}", "record.interval=1.0"])
    records = {}
    for level in ("micro", "meso"):
        result, _ = val.timed_run(cfg, [f"run.level={level}"])
        records[f"meshfield_{level}"] = val.trimmed(result, discard)
    if with_nest and importlib.util.find_spec("nest") is not None:
        from meshfield.peers import nest as peer

        for key, runner in (("nest_gif_psc_exp", peer.run_gif_psc_exp_network), ("nest_gif_pop", peer.run_gif_pop)):
            _, A = runner(cfg)
            A = val.rebin(A, cfg.record_every)[:, :, None]
            records[key] = val.trimmed(val.ActivityRecord(A, cfg.types, cfg.record.interval, cfg.to_dict()),
                                       discard)
    out = dict(type=type_name, N=N, t_sim_ms=t_sim, segment_ms=4000.0)
    for key, record in records.items():
        bands = log_band_average(psd(record, segment_ms=4000.0), f_min=0.25, f_max=20.0, n_bands=8)
        out.update(f_lo=bands.f_lo, f_hi=bands.f_hi)
        out[key] = dict(value=bands.value[:, 0], se=bands.se[:, 0], mean=float(np.mean(record.A)))
    return out


def plot_low_frequency(path: Path, low: dict) -> None:
    """Band PSDs below 20 Hz of every simulator relative to meshfield micro (bars 3 SE)."""
    figure, axes = val.new_figure(1, 1, width=4.8, height=3.4)
    ax = axes[0, 0]
    centre = np.sqrt(np.asarray(low["f_lo"]) * np.asarray(low["f_hi"]))
    reference = np.asarray(low["meshfield_micro"]["value"])
    styles = dict(meshfield_micro=("C0", "s"), meshfield_meso=("C1", "o"), nest_gif_psc_exp=("C2", "s"),
                  nest_gif_pop=("C3", "o"))
    for k, key in enumerate(k for k in styles if k in low):
        colour, marker = styles[key]
        value, se = np.asarray(low[key]["value"]), np.asarray(low[key]["se"])
        ax.errorbar(centre * (1 + 0.03 * k), 100 * (value / reference - 1), yerr=300 * se / reference,
                    fmt=f"{marker}-", color=colour, capsize=3, ms=4, label=key)
    ax.axhspan(-20, 20, color="0.92", lw=0, label="20 %")
    ax.set_xscale("log")
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("band PSD relative to meshfield micro (%)")
    ax.set_title(f"V1 {low['type']}, N = {low['N']}: PSD below 20 Hz")
    ax.legend(fontsize=6)
    val.save_figure(figure, path)


def plot_rates(path: Path, theory: dict, mean_field: dict, runs: dict, types) -> None:
    """Rates of every level (3 SE bars) against the three theories, one panel per type."""
    figure, axes = val.new_figure(1, len(types), width=4.2, height=3.4)
    for t, name in enumerate(types):
        ax = axes[0, t]
        th = theory[name]
        for key, colour, ls in (("continuous", "k", "-"), ("discrete_trapezoid", "C1", "--"),
                                ("discrete_endpoint", "C0", ":")):
            ax.axhline(th[key], color=colour, ls=ls, lw=1, label=key.replace("_", " "))
        labels, values, errors, colours = [], [], [], []
        labels.append("meso MF")
        values.append(mean_field["rate"][t])
        errors.append(0.0)
        colours.append("C2")
        for tag, run in runs.items():
            for level, colour in (("micro", "C0"), ("meso", "C1")):
                labels.append(f"{level}\n{tag}")
                values.append(run["means"][level][t])
                errors.append(3 * run["se"][level][t])
                colours.append(colour)
        x = np.arange(len(values))
        for xi, v, e, c in zip(x, values, errors, colours):
            ax.errorbar(xi, v, yerr=e, fmt="o", color=c, capsize=4)
        ax.set_xticks(x, labels, fontsize=7)
        ax.set_ylabel("stationary rate (Hz)")
        ax.set_title(f"V1 {name}: rate (bars 3 SE)")
        ax.legend(fontsize=7)
    val.save_figure(figure, path)


def plot_psd(path: Path, run: dict, types, discard: float) -> None:
    """PSD of micro and meso per type with the white level r (1 - r dt) / N."""
    figure, axes = val.new_figure(1, len(types), width=4.2, height=3.4)
    spectra = {level: psd(run["records"][level], discard=discard, segment_ms=1000.0) for level in ("micro", "meso")}
    for t, name in enumerate(types):
        ax = axes[0, t]
        for level, colour in (("micro", "C0"), ("meso", "C1")):
            s = spectra[level]
            ax.loglog(s.freqs[1:], s.S[1:, t], color=colour, lw=0.7, alpha=0.8, label=level)
        white = run["hf_level"][name]["micro"]["bernoulli"]
        ax.axhline(white, color="k", ls="--", lw=1, label="r(1-r dt)/N")
        ax.axvspan(*HF_BAND, color="0.9", lw=0)
        ax.set_xlabel("frequency (Hz)")
        ax.set_ylabel("PSD (Hz)")
        ax.set_title(f"V1 {name}, N = {run['N'][t]}")
        ax.legend(fontsize=7)
    val.save_figure(figure, path)


def study(out: Path | None = None, *, config: str = CONFIG, t_sim: float = 60000.0, discard: float = 1000.0,
          seed: int = 1, N: int | None = None, weak_n: int = 50, mean_field_t_end: float = 5000.0,
          scan_J=SCAN_J, scan_t_sim: float = 20000.0, low_frequency_t_sim: float = 240000.0,
          command: str | None = None) -> dict:
    """Run V1 and return its numbers (written, with figures, to ``out`` if given).

    The parameters are those of :func:`compute`; ``out`` is the folder for
    ``v1.json`` and the figures (:func:`_validation.write_outputs`).
    """
    data, figures = compute(config=config, t_sim=t_sim, discard=discard, seed=seed, N=N, weak_n=weak_n,
                            mean_field_t_end=mean_field_t_end, scan_J=scan_J, scan_t_sim=scan_t_sim,
                            low_frequency_t_sim=low_frequency_t_sim, command=command)
    if out is not None:
        val.write_outputs(out, "v1.json", data, figures, OWNED)
    return data


def compute(*, config: str = CONFIG, t_sim: float = 60000.0, discard: float = 1000.0,
            seed: int = 1, N: int | None = None, weak_n: int = 50, mean_field_t_end: float = 5000.0,
            scan_J=SCAN_J, scan_t_sim: float = 20000.0, low_frequency_t_sim: float = 240000.0,
            command: str | None = None) -> tuple[dict, list]:
    """Run V1 and return its numbers and its figures, not yet drawn.

    Parameters
    ----------
    config : str
        Packaged name or TOML path.
    t_sim, discard : float
        Simulated time used for statistics and the transient before it (ms).
    seed : int
    N : int, optional
        Override the population size of every type (default: the file's N).
    weak_n : int
        Population size of the small-N comparison (0, or the main N: skip it).
    mean_field_t_end : float
        Duration of the mean-field run (ms); its last second is compared.
    scan_J : sequence of float
        Adaptation strengths J_theta (mV ms) of the scan of the ``adapting`` type
        (empty: skip it).
    scan_t_sim : float
        Simulated time per level and strength of the scan (ms).
    low_frequency_t_sim : float
        Simulated time of the low-frequency check of the ``plain`` type at
        N = 100, per level and in NEST if installed (ms; 0: skip it).
    command : str, optional
        The command line recorded in the JSON (default: the plain driver call).

    Returns
    -------
    data : dict
        The JSON content (see docs/validation.md).
    figures : list of (str, callable)
        File name and ``draw(path)`` of every figure.
    """
    cfg = val.load(config)
    theory = theory_rates(cfg)
    mean_field = mean_field_rates(cfg, mean_field_t_end)
    mf_checks = []
    for t, name in enumerate(cfg.types):
        rate = float(mean_field["rate"][t])
        ref = theory[name]["discrete_trapezoid"]
        mf_checks.append(dict(type=name, theory="discrete_trapezoid",
                              **val.within(rate, ref, relative=MEAN_FIELD_RELATIVE)))
        mf_checks.append(dict(type=name, theory="continuous",
                              **val.within(rate, theory[name]["continuous"], relative=CONTINUOUS_RELATIVE)))
    runs = {}
    main_tag = f"N={N or cfg.populations[0].N}"
    runs[main_tag] = level_comparison(cfg, t_sim, discard, seed, N, theory)
    if weak_n and f"N={weak_n}" != main_tag:  # the same N would repeat the main comparison
        runs[f"N={weak_n}"] = level_comparison(cfg, t_sim, discard, seed, weak_n, theory)
    main = runs[main_tag]
    scan = adaptation_scan(cfg, scan_J, scan_t_sim, discard, seed) if len(scan_J) else []
    low = low_frequency_check(cfg, 100, low_frequency_t_sim, discard, seed) if low_frequency_t_sim else None
    data = dict(
        study="V1",
        config=val.config_path(config),
        command=command or f"python drivers/{PROG}",
        settings=dict(t_sim_ms=t_sim, discard_ms=discard, seed=seed, dt_ms=cfg.run.dt,
                      record_interval_ms=cfg.record.interval, hf_band_hz=list(HF_BAND),
                      hf_relative=HF_RELATIVE, continuous_relative=CONTINUOUS_RELATIVE),
        types=list(cfg.types),
        theory=theory,
        mean_field=dict(rate=mean_field["rate"], relative_spread=mean_field["relative_spread"],
                        t_end_ms=mean_field["t_end"], window_ms=mean_field["window"],
                        timing=mean_field["timing"], checks=mf_checks),
        runs={tag: {k: v for k, v in run.items() if k not in ("report", "records")} for tag, run in runs.items()},
        adaptation_scan=dict(t_sim_ms=scan_t_sim, rows=scan),
        low_frequency=low,
        acceptance=dict(micro_vs_meso=main["compare"]["passed"],
                        theory=all(c["passed"] for c in main["theory_checks"] + mf_checks),
                        hf_level=all(h["passed"] for per in main["hf_level"].values() for h in per.values())),
    )
    figures = [("v1_rates.png", lambda path: plot_rates(path, theory, mean_field, runs, cfg.types)),
               ("v1_psd.png", lambda path: plot_psd(path, main, cfg.types, discard))]
    for tag, run in runs.items():
        suffix = "" if tag == main_tag else f"_{tag.replace('=', '')}"
        figures.append((f"v1_compare{suffix}.png", lambda path, report=run["report"]: plot_comparison(report, path)))
    if scan:
        figures.append(("v1_adaptation_scan.png", lambda path: plot_scan(path, scan)))
    if low:
        figures.append(("v1_low_frequency.png", lambda path: plot_low_frequency(path, low)))
    return data, figures


def summary(data: dict) -> str:
    """Plain-text summary of the numbers."""
    lines = [f"V1 ({data['config']})"]
    for name in data["types"]:
        th = data["theory"][name]
        lines.append(f"  {name}: theory continuous {th['continuous']:.4f} Hz, trapezoid {th['discrete_trapezoid']:.4f}, "
                     f"endpoint {th['discrete_endpoint']:.4f} (K = {th['K']})")
    for c in data["mean_field"]["checks"]:
        lines.append(f"  mean field {c['type']} vs {c['theory']}: {c['value']:.5f} vs {c['reference']:.5f} Hz "
                     f"({100 * c['relative']:+.3f} %) {'pass' if c['passed'] else 'FAIL'}")
    for tag, run in data["runs"].items():
        lines.append(f"  {tag}: micro vs meso {'PASS' if run['compare']['passed'] else 'FAIL'}; "
                     f"speedup meso over micro {run['speedup']['cpu']:.2f}x CPU, {run['speedup']['wall']:.2f}x wall")
        for t, name in enumerate(data["types"]):
            lines.append(f"    {name}: micro {run['means']['micro'][t]:.4f} +- {run['se']['micro'][t]:.4f}, "
                         f"meso {run['means']['meso'][t]:.4f} +- {run['se']['meso'][t]:.4f} Hz")
        for c in run["theory_checks"]:
            lines.append(f"    {c['level']} {c['type']} vs {c['theory']}: {100 * c['relative']:+.3f} % "
                         f"({c['rule']}) {'pass' if c['passed'] else 'FAIL'}")
        for name, per in run["hf_level"].items():
            for level, h in per.items():
                lines.append(f"    HF level {level} {name}: {h['level']:.5g} +- {h['se']:.2g} Hz, "
                             f"r(1-r dt)/N = {h['bernoulli']:.5g}, ratio {h['ratio']:.4f} {'pass' if h['passed'] else 'FAIL'}")
        failures = [r for r in run["compare"]["rows"] if not r["passed"]]
        for r in failures:
            lines.append(f"    FAIL {r['quantity']} {r['type']}: micro {r['value_a']:.4g}, meso {r['value_b']:.4g} ({r['tolerance']})")
    for r in data["adaptation_scan"]["rows"]:
        lines.append(f"  scan J_theta = {r['J_theta']:g}: micro {r['micro']:.4f} +- {r['micro_se']:.4f}, meso {r['meso']:.4f} "
                     f"+- {r['meso_se']:.4f}, QR theory {r['theory_endpoint']:.4f} Hz; meso-micro "
                     f"{100 * r['meso_vs_micro']:+.2f} % {'pass' if r['passed'] else 'FAIL'}")
    low = data["low_frequency"]
    if low:
        lines.append(f"  low-frequency PSD, {low['type']} N = {low['N']}, {low['t_sim_ms'] / 1000:g} s (bands from "
                     + ", ".join(f"{f:.2g}" for f in low["f_lo"]) + " Hz):")
        for key in (k for k in low if k.startswith(("meshfield", "nest"))):
            lines.append(f"    {key:18s} " + " ".join(f"{v:.4f}" for v in low[key]["value"])
                         + f"  (mean {low[key]['mean']:.3f} Hz)")
    lines.append(val.acceptance_line("V1 acceptance (main N)", data["acceptance"]))
    return "\n".join(lines)


def build_parser():
    p = val.parser("v1", __doc__, prog=PROG,
                   writes="v1.json and the figures v1_rates.png, v1_psd.png, v1_compare.png, "
                          "v1_compare_N<weak-n>.png, v1_adaptation_scan.png, v1_low_frequency.png (the last "
                          "three only for the parts that run) into --out.",
                   default_run="about 1.5 minutes on one core (docs/validation_v1356.md).")
    p.add_argument("--config", default=CONFIG, help="packaged name or TOML file (default v1_single)")
    p.add_argument("--t-sim", type=val.positive, default=60000.0, metavar="MS",
                   help=f"ms of statistics per level, at least {2 * SEGMENT_MS:g} (two PSD segments; "
                        "default 60000)")
    p.add_argument("--discard", type=val.nonnegative, default=1000.0, metavar="MS",
                   help="transient before the statistics, ms (>= 0; default 1000)")
    p.add_argument("--seed", type=val.seed, default=1, help="seed of every run (0 to 2^32-1; default 1)")
    p.add_argument("--n", type=val.positive_int, default=None, metavar="N",
                   help="population size of every type (default: the file's, 500)")
    p.add_argument("--weak-n", type=val.nonnegative_int, default=50, metavar="N",
                   help="population size of the small-N comparison (0 or the main N: skip; default 50)")
    p.add_argument("--scan-j", type=val.positive, nargs="*", default=list(SCAN_J), metavar="J",
                   help="J_theta values (mV ms, > 0) of the adaptation scan of the 'adapting' type "
                        "(no values: skip; default " + " ".join(f"{j:g}" for j in SCAN_J) + ")")
    p.add_argument("--scan-t-sim", type=val.positive, default=20000.0, metavar="MS",
                   help="ms of statistics per level and J_theta (default 20000)")
    p.add_argument("--low-frequency-t-sim", type=val.nonnegative, default=240000.0, metavar="MS",
                   help="ms of the low-frequency check of the 'plain' type at N = 100, at least "
                        f"{2 * LOW_SEGMENT_MS:g} (0: skip; default 240000)")
    return p


def planned_outputs(args, config) -> list:
    """The files a run with these options writes."""
    names = ["v1.json", "v1_rates.png", "v1_psd.png", "v1_compare.png"]
    main_n = args.n or config.populations[0].N
    if args.weak_n and args.weak_n != main_n:
        names.append(f"v1_compare_N{args.weak_n}.png")
    if args.scan_j:
        names.append("v1_adaptation_scan.png")
    if args.low_frequency_t_sim:
        names.append("v1_low_frequency.png")
    return names


def check_args(p, args):
    """Every check of the options and the configuration, before any run; returns the configuration."""
    val.require_segments(p, args.t_sim, SEGMENT_MS)
    val.refuse_duplicates(p, "--scan-j", args.scan_j)
    if 0 < args.low_frequency_t_sim < 2 * LOW_SEGMENT_MS:
        p.error(f"argument --low-frequency-t-sim: {args.low_frequency_t_sim:g} ms is too short: the check needs "
                f"two PSD segments of {LOW_SEGMENT_MS:g} ms, so at least {2 * LOW_SEGMENT_MS:g} ms (or 0 to skip it)")
    run = [f"run.t_end={args.discard + args.t_sim}", f"run.seed={args.seed}"]
    cfg = val.check_config(p, args.config, run)
    if int(np.prod(cfg.lattice.shape)) != 1:
        p.error(f"--config/--set: V1 studies populations at one site (this configuration has a lattice of "
                f"shape {list(cfg.lattice.shape)}); use a single-site configuration such as v1_single")
    for option, n in (("--n", args.n), ("--weak-n", args.weak_n)):
        if n:
            val.check_config(p, args.config, run + [f"populations.{name}.N={n}" for name in cfg.types],
                             what=f"{option} {n}")
    if args.scan_t_sim < N_BLOCKS * cfg.record.interval:
        p.error(f"argument --scan-t-sim: {args.scan_t_sim:g} ms is too short for {N_BLOCKS} batch-means blocks "
                f"of at least one record ({cfg.record.interval:g} ms): at least {N_BLOCKS * cfg.record.interval:g} ms")
    for option, wanted, name in (("--scan-j", args.scan_j, "adapting"),
                                 ("--low-frequency-t-sim", args.low_frequency_t_sim, "plain")):
        if wanted and name not in cfg.types:
            skip = "--scan-j with no values" if option == "--scan-j" else f"{option} 0"
            p.error(f"argument {option}: the configuration has no population type {name!r} (types: "
                    f"{', '.join(cfg.types)}); skip this part ({skip})")
    for J in args.scan_j:
        val.check_config(p, args.config, run + [f"populations.adapting.J_theta=[{float(J)}]"],
                         what=f"--scan-j {J:g}")
    return cfg


def main(argv=None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    cfg = check_args(p, args)
    out = val.prepare_out(p, args.out, planned_outputs(args, cfg), OWNED)
    data, figures = compute(config=args.config, t_sim=args.t_sim, discard=args.discard, seed=args.seed, N=args.n,
                            weak_n=args.weak_n, scan_J=args.scan_j, scan_t_sim=args.scan_t_sim,
                            low_frequency_t_sim=args.low_frequency_t_sim, command=val.command_line(PROG, argv))
    print(summary(data), flush=True)
    names = val.write_outputs(out, "v1.json", data, figures, OWNED)
    print(val.wrote(out, names))
    return val.exit_status(data["acceptance"].values())


if __name__ == "__main__":
    sys.exit(val.run_main(main, PROG))
