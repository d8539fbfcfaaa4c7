"""Validation study V7 (docs/validation.md): limit-cycle oscillations, one site and on a lattice.

Physics. An excitatory and an inhibitory population with a delayed inhibitory
loop (``meshfield/configs/v7_oscillation.toml``: N = 500 E + 125 I at one site,
I -> E delay 6 ms) lose their stationary state through an oscillatory (Hopf)
instability: by the linear theory the E-I mode grows at +30.5/s at 19.3 Hz. The
activity runs on a limit cycle of about 15 Hz, which the finite-size noise of
the populations perturbs. On a periodic 8 x 8 lattice of such pairs with local
Gaussian coupling (``v7_oscillating_field.toml``) neighbouring sites oscillate
nearly in phase: a strongly synchronized field, one of the regimes where the
validation plan expects the approximation to be weaker.

What is compared (micro is the reference):

* one site and lattice, micro vs meso with the acceptance rules of docs/validation.md
  (``meshfield.analysis.compare_results``): per-type mean rate, PSD of the site
  activity in 8 log bands from 1 Hz to the Nyquist rate, and on the lattice the
  correlation of fluctuations at distances 0, 1, 2;
* the quantities the validation plan names for V7, reported with their standard
  errors (the plan fixes no tolerance for them): the oscillation frequency
  (peak of the PSD) and amplitude (``meshfield.analysis.oscillation``), and on
  the lattice the phase coherence of neighbouring sites
  (``meshfield.analysis.phase_coherence``);
* for context: the linear theory's unstable mode (``meshfield.theory.stability``)
  and the deterministic limit cycle of the mean-field run (N -> infinity);
* a control on one site: the micro level at scaled in-degrees (``--scan``, J C
  fixed, so the meso level is unchanged), which shows how much of a difference
  comes from the identical input the mesoscopic model gives every neuron.

Cost on one core (shared 2-core machine): one site about 0.01 s (meso) and
0.15 s (micro) of CPU per simulated second; the lattice about 0.4 s and 7 s.
The default run (100 s on one site, 20 s on the lattice, one in-degree factor)
takes about 3 minutes (docs/validation_v7.md).

Outputs in ``--out`` (default out/v7/): ``v7.json``, ``v7_paths.png``,
``v7_compare.png``, ``v7_field_compare.png`` and ``v7_field_activity.png``
(``v7_field_*`` unless ``--t-sim-field 0``).

Usage::

    python drivers/v7_oscillations.py                     # out/v7/
    # a quick check (about 20 s): shorter runs, a 5 x 5 lattice, no scan
    python drivers/v7_oscillations.py --t-sim 10000 --t-sim-field 3000 --shape 5 5 --scan \\
        --out out/v7_quick
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
    AnalysisInputError,
    compare_results,
    mean_var,
    oscillation,
    phase_coherence,
    plot_comparison,
)
from meshfield.theory import stability  # noqa: E402

CONFIG = "v7_oscillation"
FIELD_CONFIG = "v7_oscillating_field"
PROG = "v7_oscillations.py"

#: Every file the study can write into --out.
OWNED = ("v7.json", "v7_paths.png", "v7_compare.png", "v7_field_compare.png", "v7_field_activity.png")

#: PSD segment of the comparison and of the oscillation measures (ms): 1 Hz resolution.
SEGMENT_MS = 1000.0

#: In-degree factors of the micro level in the one-site control (J scaled by 1/factor).
SCAN_FACTORS = (0.25,)

#: Duration of the mean-field run after its transient (ms; 10 PSD segments).
MEAN_FIELD_T_SIM = 10000.0


def compare_levels(config, discard: float) -> tuple[dict, object, dict]:
    """Micro and meso runs of ``config`` and what both parts of the study report of them.

    Returns the results by level, the comparison report (micro the reference) and
    the numbers: rhythms and their differences, the comparison, timings and speedup.
    """
    results, timing = {}, {}
    for level in ("micro", "meso"):
        results[level], timing[level] = val.timed_run(config, [f"run.level={level}"])
    report = compare_results(results["micro"], results["meso"], discard=discard, labels=("micro", "meso"))
    rhythms = {level: rhythm(results[level], discard) for level in results}
    numbers = dict(
        rhythm=rhythms,
        rhythm_difference=dict(frequency=in_se(rhythms, "frequency"), amplitude=in_se(rhythms, "amplitude")),
        compare=val.report_dict(report),
        timing=timing,
        speedup=val.speedup(timing["micro"], timing["meso"]),
    )
    return results, report, numbers


def rhythm(result, discard: float) -> dict:
    """Frequency and amplitude of the oscillation per type, with jackknife SEs (Hz)."""
    o = oscillation(result, discard=discard, segment_ms=SEGMENT_MS)
    return dict(frequency=o.frequency, frequency_err=o.frequency_err, amplitude=o.amplitude,
                amplitude_err=o.amplitude_err, band=o.band, n_segments=o.n_segments)


def coherence(result, discard: float) -> dict:
    """Phase-locking value of neighbouring sites per type, its jackknife SE and the mean lag.

    A field without a rhythm the record can resolve (its band's edges would
    take the whole record) gets NaN and the reason, not an error after the runs.
    """
    try:
        c = phase_coherence(result, discard=discard, segment_ms=SEGMENT_MS)
    except AnalysisInputError as exc:
        nan = [float("nan")] * len(result.types)
        return dict(plv=nan, plv_err=nan, lag_rad=nan, band=None, n_pairs=None, n_blocks=None,
                    note=f"not computed: {exc}")
    return dict(plv=c.plv, plv_err=c.plv_err, lag_rad=c.lag, band=c.band, n_pairs=c.n_pairs, n_blocks=c.n_blocks)


def in_se(values: dict, key: str) -> dict:
    """meso - micro of ``values[level][key]`` per type, absolute and in combined standard errors."""
    micro, meso = np.asarray(values["micro"][key]), np.asarray(values["meso"][key])
    se = np.hypot(values["micro"][key + "_err"], values["meso"][key + "_err"])
    return dict(difference=meso - micro, relative=meso / micro - 1.0, in_se=(meso - micro) / se)


def theory(config) -> dict:
    """The linear theory's homogeneous state and its fastest mode."""
    report = stability(config)
    return dict(rates=report.rates, growth_rate_per_s=report.sigma, frequency_hz=report.frequency,
                k_rad_per_mm=report.k, kind=report.kind)


def indegree_scan(config, factors, meso, discard: float) -> list:
    """The micro level at scaled in-degrees (J C fixed) against the one meso run.

    Returns
    -------
    list of dict
        Per factor: in-degrees, the quantities passed out of all, the failed
        rows, and the relative difference meso - micro of every PSD band.
    """
    rows = []
    for factor in factors:
        cfg = val.scaled_indegrees(config, factor)
        micro, timing = val.timed_run(cfg, ["run.level=micro"])
        report = compare_results(micro, meso, discard=discard, labels=("micro", "meso"))
        rows.append(dict(
            factor=float(factor), C={f"{c.target}<-{c.source}": c.C for c in cfg.couplings},
            passed=sum(r.passed for r in report.rows), quantities=len(report.rows),
            failed=[dict(quantity=r.quantity, type=r.type, micro=r.value_a, meso=r.value_b,
                         tolerance=r.tolerance) for r in report.failures],
            bands=[dict(quantity=r.quantity, type=r.type, micro=r.value_a, meso=r.value_b,
                        relative=r.value_b / r.value_a - 1.0) for r in report.rows if r.quantity.startswith("psd")],
            timing=timing,
        ))
    return rows


def plot_paths(path: Path, records: dict, types, window_ms: float = 400.0) -> None:
    """Sample paths of each type's activity: micro, meso and the mean-field limit cycle (last window)."""
    figure, axes = val.new_figure(len(types), 1, width=8.0, height=2.4)
    for t, name in enumerate(types):
        ax = axes[t, 0]
        for label, record in records.items():
            n = int(round(window_ms / record.record_interval))
            A = np.asarray(record.A[-n:, t], dtype=np.float64).reshape(n, -1)[:, 0]
            ax.plot(np.arange(n) * record.record_interval, A, lw=0.8 if label != "mean field" else 1.4,
                    label=label, color={"micro": "C0", "meso": "C1"}.get(label, "k"))
        ax.set_ylabel(f"A_{name} (Hz)")
        ax.set_title(f"{name}: the last {window_ms:g} ms of each run (site 0; the runs' phases are unrelated)")
        ax.legend(loc="upper right", fontsize=7)
    axes[-1, 0].set_xlabel("time (ms)")
    val.save_figure(figure, path)


def study(out: Path | None = None, **kwargs) -> dict:
    """Run V7 and write its JSON and figures into ``out`` (if given); return the numbers.

    The parameters are those of :func:`compute`.
    """
    data, figures = compute(**kwargs)
    if out is not None:
        val.write_outputs(out, "v7.json", data, figures, OWNED)
    return data


def compute(*, config: str = CONFIG, field_config: str = FIELD_CONFIG, t_sim: float = 100000.0,
            t_sim_field: float = 20000.0, discard: float = 500.0, seed: int = 7, shape=None,
            scan_factors=SCAN_FACTORS, overrides=(), command: str | None = None) -> tuple[dict, list]:
    """Run V7 and return its numbers and its figures, not yet drawn.

    Parameters
    ----------
    config, field_config : str
        Packaged names or TOML paths of the one-site and the lattice configuration.
    t_sim, t_sim_field : float
        Simulated time for statistics on one site and on the lattice (ms; 0 for
        the lattice: skip it); ``discard`` ms of transient precede each.
    seed : int
    shape : pair of int, optional
        Lattice shape override.
    scan_factors : sequence of float
        In-degree factors of the one-site control (empty: skip it).
    overrides : sequence of str
        Further ``--set``-style overrides of both configurations.
    command : str, optional
        The command line recorded in the JSON (default: the plain driver call).

    Returns
    -------
    data : dict
        The JSON content (see docs/validation_v7.md).
    figures : list of (str, callable)
        File name and ``draw(path)`` of every figure.
    """
    cfg = val.load(config, [*overrides, f"run.t_end={discard + t_sim}", f"run.seed={seed}"])
    linear = theory(cfg)
    mean_field, mf_timing = val.timed_run(cfg, ["run.level=meso", "run.mean_field=true",
                                                f"run.t_end={discard + MEAN_FIELD_T_SIM}"])
    results, report, numbers = compare_levels(cfg, discard)
    scan = indegree_scan(cfg, scan_factors, results["meso"], discard) if len(scan_factors) else []
    one_site = dict(
        config=val.config_path(config),
        settings=dict(t_sim_ms=t_sim, discard_ms=discard, seed=seed, dt_ms=cfg.run.dt,
                      record_interval_ms=cfg.record.interval, N=[p.N for p in cfg.populations],
                      C={f"{c.target}<-{c.source}": c.C for c in cfg.couplings}),
        theory=linear,
        mean_field=dict(t_end_ms=discard + MEAN_FIELD_T_SIM, discard_ms=discard, timing=mf_timing,
                        mean=mean_var(mean_field, discard=discard).mean, **rhythm(mean_field, discard)),
        **numbers,
        indegree_scan=scan,
    )
    stationary = {level: val.trimmed(results[level], discard) for level in results}
    paths = {**stationary, "mean field": val.trimmed(mean_field, discard)}
    figures = [("v7_paths.png", lambda path: plot_paths(path, paths, cfg.types)),
               ("v7_compare.png", lambda path: plot_comparison(report, path))]
    acceptance = dict(one_site=report.passed)
    data = dict(study="V7", command=command or f"python drivers/{PROG}", types=list(cfg.types), one_site=one_site)
    del results, stationary

    if t_sim_field > 0:
        field_overrides = [*overrides, f"run.t_end={discard + t_sim_field}", f"run.seed={seed}"]
        if shape is not None:
            field_overrides.append(f"lattice.shape=[{int(shape[0])}, {int(shape[1])}]")
        fcfg = val.load(field_config, field_overrides)
        fresults, freport, fnumbers = compare_levels(fcfg, discard)
        fcoherence = {level: coherence(fresults[level], discard) for level in fresults}
        fstationary = {level: val.trimmed(fresults[level], discard) for level in fresults}
        data["field"] = dict(
            config=val.config_path(field_config),
            settings=dict(t_sim_ms=t_sim_field, discard_ms=discard, seed=seed, shape=list(fcfg.lattice.shape),
                          n_neurons=int(np.prod(fcfg.lattice.shape)) * sum(p.N for p in fcfg.populations)),
            theory=theory(fcfg),
            **fnumbers,
            coherence=fcoherence,
            coherence_difference=in_se(fcoherence, "plv"),
            synchrony={level: val.synchrony(fstationary[level]) for level in fstationary},
        )
        figures += [("v7_field_compare.png", lambda path: plot_comparison(freport, path)),
                    ("v7_field_activity.png", lambda path: val.plot_activity(path, fstationary, fcfg.types))]
        acceptance["field"] = freport.passed
    data["acceptance"] = acceptance
    return data, figures


def _rhythm_lines(part: dict, types) -> list:
    lines = []
    r, d = part["rhythm"], part["rhythm_difference"]
    for t, name in enumerate(types):
        lines.append(
            f"    {name}: frequency micro {r['micro']['frequency'][t]:.3f} +- {r['micro']['frequency_err'][t]:.3f}, "
            f"meso {r['meso']['frequency'][t]:.3f} +- {r['meso']['frequency_err'][t]:.3f} Hz "
            f"({d['frequency']['in_se'][t]:+.1f} SE); amplitude micro {r['micro']['amplitude'][t]:.3f} +- "
            f"{r['micro']['amplitude_err'][t]:.3f}, meso {r['meso']['amplitude'][t]:.3f} +- "
            f"{r['meso']['amplitude_err'][t]:.3f} Hz ({100 * d['amplitude']['relative'][t]:+.1f} %, "
            f"{d['amplitude']['in_se'][t]:+.1f} SE)")
    return lines


def _compare_lines(compare: dict) -> list:
    rows = compare["rows"]
    lines = [f"  micro vs meso: {'PASS' if compare['passed'] else 'FAIL'} "
             f"({sum(r['passed'] for r in rows)}/{len(rows)} quantities)"]
    for r in rows:
        if r["quantity"] == "mean" or not r["passed"]:
            lines.append(f"    {'pass' if r['passed'] else 'FAIL'} {r['quantity']} {r['type']}: micro "
                         f"{r['value_a']:.4g}, meso {r['value_b']:.4g} ({100 * (r['value_b'] / r['value_a'] - 1):+.2f} %; "
                         f"{r['tolerance']})")
    return lines


def summary(data: dict) -> str:
    """Plain-text summary of the numbers."""
    types = data["types"]
    one = data["one_site"]
    s = one["settings"]
    th = one["theory"]
    lines = [f"V7 one site ({one['config']}): {s['t_sim_ms'] / 1000:g} s per level, seed {s['seed']}",
             f"  linear theory: {th['kind']} at {th['frequency_hz']:.2f} Hz, growth {th['growth_rate_per_s']:+.2f}/s "
             f"(stationary rates " + ", ".join(f"{n} {th['rates'][t]:.2f}" for t, n in enumerate(types)) + " Hz)",
             "  mean-field limit cycle: " + ", ".join(
                 f"{n} {one['mean_field']['frequency'][t]:.3f} Hz, amplitude {one['mean_field']['amplitude'][t]:.3f} Hz, "
                 f"mean {one['mean_field']['mean'][t]:.3f} Hz" for t, n in enumerate(types))]
    lines += _compare_lines(one["compare"])
    lines += _rhythm_lines(one, types)
    for row in one["indegree_scan"]:
        lines.append(f"  micro at in-degrees x{row['factor']:g} {row['C']}: {row['passed']}/{row['quantities']} pass"
                     + "".join(f"; FAIL {f['quantity']} {f['type']} micro {f['micro']:.4g} meso {f['meso']:.4g}"
                               for f in row["failed"]))
    t = one["timing"]
    lines.append(f"  time: micro {t['micro']['cpu_s']:.1f} s CPU, meso {t['meso']['cpu_s']:.1f} s CPU; "
                 f"speedup {one['speedup']['cpu']:.2f}x CPU")
    field = data.get("field")
    if field:
        fs = field["settings"]
        lines.append(f"V7 lattice ({field['config']}): shape {fs['shape']}, {fs['n_neurons']} neurons, "
                     f"{fs['t_sim_ms'] / 1000:g} s per level")
        lines += _compare_lines(field["compare"])
        lines += _rhythm_lines(field, types)
        c, d = field["coherence"], field["coherence_difference"]
        for level in ("micro", "meso"):
            if "note" in c[level]:
                lines.append(f"    {level} phase locking {c[level]['note']}")
        for k, name in enumerate(types):
            lines.append(f"    {name}: neighbour phase locking micro {c['micro']['plv'][k]:.5f} +- "
                         f"{c['micro']['plv_err'][k]:.1e}, meso {c['meso']['plv'][k]:.5f} +- "
                         f"{c['meso']['plv_err'][k]:.1e} ({d['in_se'][k]:+.1f} SE); synchrony chi micro "
                         f"{field['synchrony']['micro'][k]:.3f}, meso {field['synchrony']['meso'][k]:.3f}")
        ft = field["timing"]
        lines.append(f"  time: micro {ft['micro']['cpu_s']:.1f} s CPU, meso {ft['meso']['cpu_s']:.1f} s CPU; "
                     f"speedup {field['speedup']['cpu']:.2f}x CPU")
    lines.append(val.acceptance_line("V7 acceptance", data["acceptance"]))
    return "\n".join(lines)


def build_parser():
    p = val.parser("v7", __doc__, prog=PROG,
                   writes="v7.json and the figures v7_paths.png, v7_compare.png, v7_field_compare.png, "
                          "v7_field_activity.png (the last two unless --t-sim-field 0) into --out.",
                   default_run="about 3 minutes on one core (docs/validation_v7.md), most of it the micro "
                               "level on the lattice.")
    p.add_argument("--config", default=CONFIG, help=f"one-site configuration, packaged name or TOML file "
                                                    f"(default {CONFIG})")
    p.add_argument("--field-config", default=FIELD_CONFIG, help=f"lattice configuration (default {FIELD_CONFIG})")
    p.add_argument("--t-sim", type=val.positive, default=100000.0, metavar="MS",
                   help=f"ms of statistics per level on one site, at least {2 * SEGMENT_MS:g} (default 100000)")
    p.add_argument("--t-sim-field", type=val.nonnegative, default=20000.0, metavar="MS",
                   help=f"ms of statistics per level on the lattice, at least {2 * SEGMENT_MS:g}, or 0 to skip "
                        f"the lattice (default 20000)")
    p.add_argument("--discard", type=val.nonnegative, default=500.0, metavar="MS",
                   help="transient, ms (>= 0; default 500)")
    p.add_argument("--seed", type=val.seed, default=7, help="seed of every run (0 to 2^32-1; default 7)")
    p.add_argument("--shape", type=val.positive_int, nargs=2, default=None, metavar=("NX", "NY"),
                   help="lattice shape override; the kernels need at least 5 x 5 (default: the file's, 8 8)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override of both configurations, e.g. populations.E.N=200 (repeatable; default: none)")
    p.add_argument("--scan", type=val.positive, nargs="*", default=list(SCAN_FACTORS), metavar="FACTOR",
                   help="in-degree factors (> 0) of the micro level in the one-site control (no values: skip; "
                        "default " + " ".join(f"{f:g}" for f in SCAN_FACTORS) + ")")
    return p


def planned_outputs(args) -> list:
    """The files a run with these options writes."""
    names = ["v7.json", "v7_paths.png", "v7_compare.png"]
    if args.t_sim_field > 0:
        names += ["v7_field_compare.png", "v7_field_activity.png"]
    return names


def check_args(p, args):
    """Every check of the options and the configurations, before any run."""
    val.require_segments(p, args.t_sim, SEGMENT_MS)
    if args.t_sim_field > 0:
        val.require_segments(p, args.t_sim_field, SEGMENT_MS, option="--t-sim-field")
    val.refuse_duplicates(p, "--scan", args.scan)
    common = [*args.overrides, f"run.seed={args.seed}"]
    cfg = val.check_config(p, args.config, [*common, f"run.t_end={args.discard + args.t_sim}"])
    if int(np.prod(cfg.lattice.shape)) != 1:
        p.error(f"--config/--set: V7's first part studies one site (this configuration has a lattice of shape "
                f"{list(cfg.lattice.shape)}); use a one-site configuration such as {CONFIG}")
    for level in (["run.level=micro"], ["run.level=meso"], ["run.level=meso", "run.mean_field=true"]):
        val.check_config(p, args.config, [*common, f"run.t_end={args.discard + args.t_sim}", *level])
    check_statistics(p, "--config/--set", cfg, args.t_sim)
    check_statistics(p, "--config/--set", cfg, MEAN_FIELD_T_SIM, what_for="the mean-field run")
    if args.t_sim_field > 0:
        overrides = [*common, f"run.t_end={args.discard + args.t_sim_field}"]
        if args.shape is not None:
            overrides.append(f"lattice.shape=[{args.shape[0]}, {args.shape[1]}]")
        what = "--field-config/--set" + ("/--shape" if args.shape else "")
        fcfg = val.check_config(p, args.field_config, overrides, what=what)
        if int(np.prod(fcfg.lattice.shape)) < 2:
            p.error(f"{what}: V7's lattice part needs at least two sites (shape {list(fcfg.lattice.shape)}); "
                    f"use a lattice configuration such as {FIELD_CONFIG}")
        if tuple(fcfg.types) != tuple(cfg.types):
            p.error(f"{what}: the lattice configuration's types {list(fcfg.types)} differ from the one-site "
                    f"configuration's {list(cfg.types)}; V7 compares the same populations in both parts")
        for level in ("micro", "meso"):
            val.check_config(p, args.field_config, [*overrides, f"run.level={level}"], what=what)
        check_statistics(p, what, fcfg, args.t_sim_field)
    elif args.shape is not None:
        p.error("argument --shape: has no effect with --t-sim-field 0 (no lattice run)")


def check_statistics(p, what: str, cfg, t_sim: float, what_for: str = "the comparison") -> None:
    """``p.error`` unless the statistics accept records of ``t_sim`` ms at the configuration's
    record interval and lattice: a synthetic record of that shape (a 15 Hz line in noise, on
    at most 5 sites per axis) goes through the comparison and the rhythm measure first, so
    that nothing fails after the runs. Takes a second or two."""
    interval = cfg.record.interval
    n_time = int(t_sim / interval + 1e-9)
    shape = tuple(min(n, 5) for n in cfg.lattice.shape)
    d = cfg.to_dict()
    d["lattice"]["shape"] = list(shape)
    t = np.arange(n_time) * interval
    rng = np.random.default_rng(0)
    A = 10.0 + 5.0 * np.cos(2e-3 * np.pi * 15.0 * t).reshape((n_time, 1) + (1,) * len(shape))
    A = A + rng.normal(size=(n_time, len(cfg.types)) + shape)
    record = val.ActivityRecord(A, tuple(cfg.types), interval, d)
    try:
        if what_for == "the comparison":
            compare_results(record, record, discard=0.0, labels=("micro", "meso"))
        oscillation(record, segment_ms=SEGMENT_MS)
    except AnalysisInputError as exc:
        p.error(f"{what}: record.interval = {interval:g} ms over {t_sim:g} ms: {what_for} cannot use such "
                f"records ({exc}); the packaged configurations record every 1 ms")


def main(argv=None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    check_args(p, args)
    out = val.prepare_out(p, args.out, planned_outputs(args), OWNED)
    data, figures = compute(config=args.config, field_config=args.field_config, t_sim=args.t_sim,
                            t_sim_field=args.t_sim_field, discard=args.discard, seed=args.seed, shape=args.shape,
                            scan_factors=args.scan, overrides=args.overrides, command=val.command_line(PROG, argv))
    print(summary(data), flush=True)
    names = val.write_outputs(out, "v7.json", data, figures, OWNED)
    print(val.wrote(out, names))
    return val.exit_status(data["acceptance"].values())


if __name__ == "__main__":
    sys.exit(val.run_main(main, PROG))
