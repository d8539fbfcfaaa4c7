"""Validation study V3 (docs/validation.md): a 2-D E/I field in the asynchronous regime.

Physics. On a periodic lattice every site holds an excitatory and an inhibitory
population coupled to nearby sites by Gaussian kernels with distance-dependent
delays. In the asynchronous regime the mean field is homogeneous and stable;
the activity fluctuates around it because every population is finite, and the
coupling spreads these fluctuations, so neighbouring sites are weakly
correlated. The mesoscopic field must reproduce the microscopic network's mean
rates, the spectrum of each site's activity and the correlation of the
fluctuations vs distance.

What is compared (``meshfield/configs/v3_field.toml``: 8 x 8 sites, N = 400 E +
100 I per site):

* microscopic (reference) vs mesoscopic level with the acceptance rules of
  docs/validation.md (``meshfield.analysis.compare_results``): per-type mean rate,
  PSD of site activity in 8 log bands from 1 Hz to the Nyquist rate, and the
  correlation of fluctuations at lattice distances 0, 1, 2;
* the mean-field limit on the same lattice (homogeneous and stationary: its
  spatial spread must vanish) and both levels against the stationary network
  theory (``meshfield.theory.stationary_rates_network``), continuous and in
  discrete time with the mesoscopic rule;
* the in-degree dependence of the micro-meso difference of the mean rates, on
  one site with the same network (in-degrees scaled, J C fixed), and on the
  lattice itself (the micro level at in-degrees x4 and x16 against the same
  meso run, which depends on J C only: its records are bitwise the same at
  every factor), with the fit ``gap(C) = a + b / C`` that separates the part of
  the gap that vanishes with the in-degree from the part that does not; and the
  difference of the two levels' hazard rules in the discrete network theory
  (the micro step rule ``1 - exp(-lambda dt)`` at the step's end, the meso
  trapezoid with its history window), which predicts part of ``a``;
* a synchrony index chi (standard deviation of the lattice-averaged activity
  over the root mean site variance; about ``1/sqrt(n_sites)`` for independent
  sites) to document that the regime is asynchronous;
* wall and CPU time of both levels on one core and the speedup.

Cost on one core (shared 2-core machine): about 1 s (meso) and 9-12 s (micro)
of CPU per simulated second; the in-degree scans add about 2 minutes (one
site) and 4-5 minutes (lattice, x4 and x16; x16 has 51 million synapses, 0.9 GB).
The default run took 7 minutes (docs/validation_v1356.md).

Outputs in ``--out`` (default out/v3/): ``v3.json``, ``v3_compare.png``,
``v3_activity.png``, ``v3_indegree_scan.png`` (unless ``--scan`` is given no
values) and ``v3_lattice_indegree_scan.png`` (likewise ``--lattice-scan``).

Usage::

    python drivers/v3_field_async.py                          # out/v3/
    # a quick check (about 20 s): the smallest lattice the kernels allow
    # (7 x 7), smaller populations, no in-degree scans
    python drivers/v3_field_async.py --t-sim 3000 --shape 7 7 --scan --lattice-scan \\
        --set populations.E.N=100 --set populations.I.N=25 --out out/v3_quick
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
from meshfield.analysis import compare_results, plot_comparison  # noqa: E402
from meshfield.meso import history_length  # noqa: E402
from meshfield.theory import stationary_rates_network  # noqa: E402

CONFIG = "v3_field"
PROG = "v3_field_async.py"

#: Every file the study can write into --out.
OWNED = ("v3.json", "v3_compare.png", "v3_activity.png", "v3_indegree_scan.png", "v3_lattice_indegree_scan.png")

#: PSD segment of the comparison (ms): the statistics need two after the transient.
SEGMENT_MS = 1000.0

#: Batch-means blocks of the mean rates (each needs at least one record).
N_BLOCKS = 20

#: Factors of the in-degrees (weights scaled inversely) of the single-site scan.
SCAN_FACTORS = (0.25, 1.0, 4.0)

#: Factors of the in-degrees of the micro level on the lattice (factor 1 is the main run).
LATTICE_SCAN_FACTORS = (4.0, 16.0)

#: Stated tolerance of each level's mean against the network theory, which
#: neglects the input fluctuations (docs/validation.md's 5 % for means).
THEORY_RELATIVE = 0.05

#: A deterministic run at a stable homogeneous state: the relative spread over
#: sites and over the last second must be round-off.
MEAN_FIELD_SPREAD = 1e-6


def network_theory(config, continuous: bool = True) -> dict:
    """Stationary rates (Hz) per type of the homogeneous field: discrete trapezoid and (if
    ``continuous``) continuous time; the continuous solver's multi-start search takes ~10 s."""
    T = len(config.types)
    J = np.zeros((T, T))
    C = np.zeros((T, T))
    index = {name: i for i, name in enumerate(config.types)}
    for c in config.couplings:
        J[index[c.target], index[c.source]] = c.J
        C[index[c.target], index[c.source]] = c.C
    dt = config.run.dt
    discrete = stationary_rates_network(config.populations, J, C, dt=dt,
                                        K=[history_length(p, dt) for p in config.populations])
    # The micro level's step rule, without a history window.
    endpoint = stationary_rates_network(config.populations, J, C, dt=dt, hazard_rule="endpoint")
    out = dict(discrete_trapezoid=discrete.rates, discrete_endpoint=endpoint.rates,
               hazard_rule_gap=discrete.rates / endpoint.rates - 1.0,
               multiple=bool(discrete.multiple or endpoint.multiple))
    if continuous:
        solution = stationary_rates_network(config.populations, J, C)
        out.update(continuous=solution.rates, mu_eff=solution.mu_eff,
                   multiple=bool(solution.multiple or discrete.multiple))
    return out


def indegree_scan(config, factors, t_sim: float, discard: float, seed: int) -> list:
    """Micro and meso mean rates of the field's E/I network on one site vs the in-degree.

    Every in-degree C is multiplied by a factor (rounded) and every weight J
    scaled so that J C is unchanged, so the mean input (proportional to J C) and the theory's rates stay the
    same while the microscopic input noise and the quenched differences between
    neurons' inputs (both of relative size ~ 1/sqrt(C)) change. The mesoscopic
    model gives every neuron of a population the same input, so its rate does
    not depend on C; the microscopic rate does.

    Returns
    -------
    list of dict
        Per factor: in-degrees, micro and meso means (Hz) with SE per type and the
        relative difference meso - micro.
    """
    base = config.to_dict()
    base["lattice"]["shape"] = [1]
    for c in base["couplings"]:
        c["kernel"] = {"shape": "delta"}
        c["delay"] = {"d0": c["delay"]["d0"]}
    rows = []
    for factor in factors:
        cfg = val.scaled_indegrees(base, factor, [f"run.t_end={discard + t_sim}", f"run.seed={seed}"])
        means = {}
        for level in ("micro", "meso"):
            result, _ = val.timed_run(cfg, [f"run.level={level}"])
            means[level] = val.mean_se(result, discard=discard)
        rows.append(dict(
            factor=float(factor), C={f"{c.target}<-{c.source}": c.C for c in cfg.couplings},
            micro=means["micro"][0], micro_se=means["micro"][1], meso=means["meso"][0], meso_se=means["meso"][1],
            meso_vs_micro=(means["meso"][0] - means["micro"][0]) / means["micro"][0],
        ))
    return rows


def lattice_indegree_scan(config, factors, meso, discard: float) -> list:
    """The micro level on the lattice at scaled in-degrees, compared with ``meso``.

    The mesoscopic level depends on J C only (its records are the same at every
    factor), so one meso run serves as the counterpart of every factor.

    Returns
    -------
    list of dict
        Per factor: in-degrees, micro means with SE, the relative difference
        meso - micro, the quantities passed out of all, and the rows of the
        failed ones; timing of the micro run.
    """
    rows = []
    for factor in factors:
        cfg = val.scaled_indegrees(config, factor)
        result, timing = val.timed_run(cfg, ["run.level=micro"])
        report = compare_results(result, meso, discard=discard, labels=("micro", "meso"))
        rows.append(scan_row(factor, cfg, report, timing))
        del result
    return rows


def scan_row(factor: float, config, report, timing: dict) -> dict:
    """One row of the lattice scan: the micro level at in-degree ``factor``
    (``config``) against the meso run, from their comparison ``report``."""
    micro, meso = report.means
    return dict(
        factor=float(factor), C={f"{c.target}<-{c.source}": c.C for c in config.couplings},
        micro=micro.mean, micro_se=micro.mean_se,
        meso_vs_micro=(meso.mean - micro.mean) / micro.mean,
        meso_vs_micro_se=np.hypot(micro.mean_se, meso.mean_se) / micro.mean,
        passed=sum(r.passed for r in report.rows), quantities=len(report.rows),
        failed=[dict(quantity=r.quantity, type=r.type, micro=r.value_a, meso=r.value_b,
                     tolerance=r.tolerance) for r in report.failures],
        timing=timing,
    )


def fit_indegree_gap(factors, gaps, errors) -> dict:
    """Weighted least-squares fit of ``gap = a + b / factor`` per type.

    Parameters
    ----------
    factors : sequence of float, length n (n >= 2)
    gaps, errors : array_like, shape (n, n_types)
        Relative differences meso - micro and their standard errors.

    Returns
    -------
    dict
        ``a`` (the gap at infinite in-degree), ``a_se``, ``b`` (the part that
        falls as 1/C, at factor 1), ``b_se`` per type, and ``chi2`` with
        ``dof`` = n - 2.
    """
    x = 1.0 / np.asarray(factors, dtype=float)
    gaps, errors = np.atleast_2d(gaps), np.atleast_2d(errors)
    out = {key: [] for key in ("a", "a_se", "b", "b_se", "chi2")}
    for t in range(gaps.shape[1]):
        w = 1.0 / errors[:, t] ** 2
        design = np.stack([np.ones_like(x), x], axis=1)
        cov = np.linalg.inv(design.T @ (design * w[:, None]))
        a, b = cov @ (design.T @ (w * gaps[:, t]))
        out["a"].append(a)
        out["b"].append(b)
        out["a_se"].append(np.sqrt(cov[0, 0]))
        out["b_se"].append(np.sqrt(cov[1, 1]))
        out["chi2"].append(float(np.sum(w * (gaps[:, t] - a - b * x) ** 2)))
    return dict({k: np.array(v) for k, v in out.items()}, dof=len(x) - 2)


def plot_scan(path: Path, rows: list, types, fit: dict | None = None,
              title: str = "V3 network on one site: in-degree", predicted=None) -> None:
    """Relative difference meso - micro of the mean rates vs the in-degree factor
    (bars: 3 SE), with the fit ``a + b / factor`` and a predicted limit per type
    (dashed) if given."""
    figure, axes = val.new_figure(1, 1, width=4.6, height=3.4)
    ax = axes[0, 0]
    factor = np.array([r["factor"] for r in rows])
    for t, name in enumerate(types):
        gap = np.array([r["meso_vs_micro"][t] for r in rows])
        if "meso_vs_micro_se" in rows[0]:
            se = np.array([r["meso_vs_micro_se"][t] for r in rows])
        else:
            micro = np.array([r["micro"][t] for r in rows])
            se = np.hypot([r["micro_se"][t] for r in rows], [r["meso_se"][t] for r in rows]) / micro
        (line,) = ax.plot([], [])
        ax.errorbar(factor, 100 * gap, yerr=300 * se, fmt="o", capsize=3, color=line.get_color(),
                    label=f"{name} (bars 3 SE)")
        if fit is not None:
            f = np.geomspace(factor.min(), factor.max() * 4, 50)
            ax.plot(f, 100 * (fit["a"][t] + fit["b"][t] / f), color=line.get_color(), lw=0.8,
                    label=f"{name}: a + b/factor, a = {100 * fit['a'][t]:+.2f} %")
        else:
            ax.plot(factor, 100 * gap, color=line.get_color(), lw=0.8)
        if predicted is not None:
            ax.axhline(100 * predicted[t], color=line.get_color(), lw=0.8, ls="--",
                       label=f"{name}: hazard rules (theory) {100 * predicted[t]:+.2f} %")
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(factor, [f"{f:g}" for f in factor])
    ax.set_xlabel("in-degree factor (J C fixed)")
    ax.set_ylabel("meso rate relative to micro (%)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    val.save_figure(figure, path)


def study(out: Path | None = None, *, config: str = CONFIG, t_sim: float = 10000.0, discard: float = 500.0,
          seed: int = 1, shape=None, mean_field_t_end: float = 2000.0, scan_factors=SCAN_FACTORS,
          scan_t_sim: float = 20000.0, lattice_scan_factors=(), overrides=(),
          continuous_theory: bool = True, command: str | None = None) -> dict:
    """Run V3 and return its numbers (written, with figures, to ``out`` if given).

    The parameters are those of :func:`compute`; ``out`` is the folder for
    ``v3.json`` and the figures (:func:`_validation.write_outputs`).
    """
    data, figures = compute(config=config, t_sim=t_sim, discard=discard, seed=seed, shape=shape,
                            mean_field_t_end=mean_field_t_end, scan_factors=scan_factors, scan_t_sim=scan_t_sim,
                            lattice_scan_factors=lattice_scan_factors, overrides=overrides,
                            continuous_theory=continuous_theory, command=command)
    if out is not None:
        val.write_outputs(out, "v3.json", data, figures, OWNED)
    return data


def compute(*, config: str = CONFIG, t_sim: float = 10000.0, discard: float = 500.0,
            seed: int = 1, shape=None, mean_field_t_end: float = 2000.0, scan_factors=SCAN_FACTORS,
            scan_t_sim: float = 20000.0, lattice_scan_factors=(), overrides=(),
            continuous_theory: bool = True, command: str | None = None) -> tuple[dict, list]:
    """Run V3 and return its numbers and its figures, not yet drawn.

    Parameters
    ----------
    config : str
        Packaged name or TOML path.
    t_sim, discard : float
        Simulated time for statistics and the transient before it (ms).
    seed : int
    shape : pair of int, optional
        Lattice shape override.
    mean_field_t_end : float
        Duration of the mean-field run (ms); its last second is checked.
    scan_factors : sequence of float
        In-degree factors of the single-site scan (empty: skip it).
    scan_t_sim : float
        Simulated time per level and factor of the scan (ms).
    lattice_scan_factors : sequence of float
        In-degree factors of the micro level on the lattice (empty: skip; the
        command line's default is ``LATTICE_SCAN_FACTORS``).
    overrides : sequence of str
        Further ``--set``-style overrides of the configuration (e.g. population sizes).
    continuous_theory : bool
        Also solve the continuous-time network theory (the levels' means are
        checked against it; otherwise against the discrete trapezoid theory).
    command : str, optional
        The command line recorded in the JSON (default: the plain driver call).

    Returns
    -------
    data : dict
        The JSON content (see docs/validation.md).
    figures : list of (str, callable)
        File name and ``draw(path)`` of every figure.
    """
    overrides = [*overrides, f"run.t_end={discard + t_sim}", f"run.seed={seed}"]
    if shape is not None:
        overrides.append(f"lattice.shape=[{int(shape[0])}, {int(shape[1])}]")
    cfg = val.load(config, overrides)
    theory = network_theory(cfg, continuous_theory)
    reference = "continuous" if continuous_theory else "discrete_trapezoid"

    mf, mf_timing = val.timed_run(cfg, ["run.mean_field=true", f"run.t_end={mean_field_t_end}"])
    tail = np.asarray(mf.A[-int(round(1000.0 / mf.record_interval)):], dtype=np.float64)
    mf_rate = tail.mean(axis=(0, 2, 3))
    mf_spread = tail.reshape(tail.shape[0], tail.shape[1], -1).std(axis=(0, 2)) / mf_rate
    mf_checks = []
    for t, name in enumerate(cfg.types):
        mf_checks.append(dict(type=name, theory="discrete_trapezoid",
                              **val.within(float(mf_rate[t]), float(theory["discrete_trapezoid"][t]),
                                           relative=MEAN_FIELD_SPREAD)))
        mf_checks.append(dict(type=name, theory="relative spread over sites and time", value=float(mf_spread[t]),
                              reference=0.0, rule=f"<={MEAN_FIELD_SPREAD:g}",
                              passed=bool(mf_spread[t] <= MEAN_FIELD_SPREAD)))

    results, timing = {}, {}
    for level in ("micro", "meso"):
        results[level], timing[level] = val.timed_run(cfg, [f"run.level={level}"])
    report = compare_results(results["micro"], results["meso"], discard=discard, labels=("micro", "meso"))
    stationary = {level: val.trimmed(results[level], discard) for level in results}
    checks = []
    for k, level in enumerate(("micro", "meso")):
        for t, name in enumerate(cfg.types):
            checks.append(dict(level=level, type=name, theory=reference,
                               **val.within(float(report.means[k].mean[t]), float(theory[reference][t]),
                                            relative=THEORY_RELATIVE)))
    scan = indegree_scan(cfg, scan_factors, scan_t_sim, discard, seed) if len(scan_factors) else []
    lattice_scan = None
    if len(lattice_scan_factors):
        rows = lattice_indegree_scan(cfg, lattice_scan_factors, results["meso"], discard)
        rows = [scan_row(1.0, cfg, report, timing["micro"]), *rows]
        fit = fit_indegree_gap([r["factor"] for r in rows], [r["meso_vs_micro"] for r in rows],
                               [r["meso_vs_micro_se"] for r in rows])
        lattice_scan = dict(rows=rows, fit=fit)
    n_sites = int(np.prod(cfg.lattice.shape))
    data = dict(
        study="V3",
        config=val.config_path(config),
        command=command or f"python drivers/{PROG}",
        settings=dict(t_sim_ms=t_sim, discard_ms=discard, seed=seed, shape=list(cfg.lattice.shape),
                      dt_ms=cfg.run.dt, record_interval_ms=cfg.record.interval,
                      N=[p.N for p in cfg.populations], n_neurons=n_sites * sum(p.N for p in cfg.populations),
                      K=[history_length(p, cfg.run.dt) for p in cfg.populations]),
        types=list(cfg.types),
        theory=theory,
        mean_field=dict(rate=mf_rate, relative_spread=mf_spread, t_end_ms=mean_field_t_end, timing=mf_timing,
                        checks=mf_checks),
        means={level: report.means[k].mean for k, level in enumerate(("micro", "meso"))},
        se={level: report.means[k].mean_se for k, level in enumerate(("micro", "meso"))},
        correlation={level: dict(distances=report.correlations[k].distances, r=report.correlations[k].r,
                                 r_err=report.correlations[k].r_err)
                     for k, level in enumerate(("micro", "meso"))},
        synchrony={level: val.synchrony(stationary[level]) for level in stationary},
        synchrony_independent=1.0 / np.sqrt(n_sites),
        theory_checks=checks,
        compare=val.report_dict(report),
        timing=timing,
        speedup=val.speedup(timing["micro"], timing["meso"]),
        indegree_scan=dict(t_sim_ms=scan_t_sim, rows=scan),
        lattice_indegree_scan=lattice_scan,
        acceptance=dict(micro_vs_meso=report.passed,
                        theory=all(c["passed"] for c in checks + mf_checks)),
    )
    figures = [("v3_compare.png", lambda path: plot_comparison(report, path)),
               ("v3_activity.png", lambda path: val.plot_activity(path, stationary, cfg.types))]
    if scan:
        figures.append(("v3_indegree_scan.png", lambda path: plot_scan(path, scan, cfg.types)))
    if lattice_scan:
        figures.append(("v3_lattice_indegree_scan.png", lambda path: plot_scan(
            path, lattice_scan["rows"], cfg.types, fit=lattice_scan["fit"],
            title="lattice: micro at scaled in-degrees vs one meso run", predicted=theory.get("hazard_rule_gap"))))
    return data, figures


def summary(data: dict) -> str:
    """Plain-text summary of the numbers."""
    s = data["settings"]
    lines = [f"V3 ({data['config']}): lattice {s['shape']}, {s['n_neurons']} neurons, {s['t_sim_ms'] / 1000:g} s"]
    for t, name in enumerate(data["types"]):
        lines.append(f"  {name}: theory {data['theory'].get('continuous', [np.nan] * 2)[t]:.4f} (discrete "
                     f"{data['theory']['discrete_trapezoid'][t]:.4f}) Hz, mean field {data['mean_field']['rate'][t]:.4f} "
                     f"(spread {data['mean_field']['relative_spread'][t]:.1e}); micro {data['means']['micro'][t]:.4f} "
                     f"+- {data['se']['micro'][t]:.4f}, meso {data['means']['meso'][t]:.4f} +- {data['se']['meso'][t]:.4f} Hz; "
                     f"chi micro {data['synchrony']['micro'][t]:.3f}, meso {data['synchrony']['meso'][t]:.3f} "
                     f"(independent {data['synchrony_independent']:.3f})")
    rows = data["compare"]["rows"]
    n_pass = sum(r["passed"] for r in rows)
    lines.append(f"  micro vs meso: {'PASS' if data['compare']['passed'] else 'FAIL'} ({n_pass}/{len(rows)} quantities)")
    for r in rows:
        if r["quantity"].startswith("corr") or not r["passed"]:
            lines.append(f"    {'pass' if r['passed'] else 'FAIL'} {r['quantity']} {r['type']}: micro {r['value_a']:.4g}, "
                         f"meso {r['value_b']:.4g} ({r['tolerance']})")
    for c in data["theory_checks"] + data["mean_field"]["checks"]:
        lines.append(f"    {c.get('level', 'mean field')} {c['type']} vs {c['theory']}: {c['value']:.5g} vs "
                     f"{c['reference']:.5g} {'pass' if c['passed'] else 'FAIL'}")
    t = data["timing"]
    lines.append(f"  time: micro {t['micro']['wall_s']:.1f} s wall / {t['micro']['cpu_s']:.1f} s CPU, meso "
                 f"{t['meso']['wall_s']:.1f} s / {t['meso']['cpu_s']:.1f} s; speedup {data['speedup']['cpu']:.2f}x CPU, "
                 f"{data['speedup']['wall']:.2f}x wall")
    for r in data["indegree_scan"]["rows"]:
        lines.append(f"  in-degree x{r['factor']:g} {r['C']}: " + "; ".join(
            f"{name} micro {r['micro'][t]:.4f} +- {r['micro_se'][t]:.4f}, meso {r['meso'][t]:.4f} +- "
            f"{r['meso_se'][t]:.4f} ({100 * r['meso_vs_micro'][t]:+.2f} %)" for t, name in enumerate(data["types"])))
    gap = data["theory"].get("hazard_rule_gap")
    if gap is not None:
        lines.append("  hazard rules (discrete theory, meso trapezoid with window vs micro endpoint): " + ", ".join(
            f"{name} {100 * gap[t]:+.3f} %" for t, name in enumerate(data["types"])))
    scan = data.get("lattice_indegree_scan")
    if scan:
        for r in scan["rows"]:
            lines.append(f"  lattice x{r['factor']:g} {r['C']}: {r['passed']}/{r['quantities']} pass; " + "; ".join(
                f"{name} micro {r['micro'][t]:.4f} +- {r['micro_se'][t]:.4f} (meso - micro "
                f"{100 * r['meso_vs_micro'][t]:+.3f} +- {100 * r['meso_vs_micro_se'][t]:.3f} %)"
                for t, name in enumerate(data["types"])))
        fit = scan["fit"]
        lines.append("  fit gap = a + b/factor: " + "; ".join(
            f"{name} a {100 * fit['a'][t]:+.3f} +- {100 * fit['a_se'][t]:.3f} %, b {100 * fit['b'][t]:+.3f} +- "
            f"{100 * fit['b_se'][t]:.3f} %, chi2 {fit['chi2'][t]:.2f} ({fit['dof']} dof)"
            for t, name in enumerate(data["types"])))
    lines.append(val.acceptance_line("V3 acceptance", data["acceptance"]))
    return "\n".join(lines)


def build_parser():
    p = val.parser("v3", __doc__, prog=PROG,
                   writes="v3.json and the figures v3_compare.png, v3_activity.png, v3_indegree_scan.png, "
                          "v3_lattice_indegree_scan.png (the last two only for the scans that run) into --out.",
                   default_run="about 7 minutes on one core (docs/validation_v1356.md), most of it the micro "
                               "level on the lattice at in-degrees x1, x4 and x16.")
    p.add_argument("--config", default=CONFIG, help="packaged name or TOML file (default v3_field)")
    p.add_argument("--t-sim", type=val.positive, default=10000.0, metavar="MS",
                   help=f"ms of statistics per level, at least {2 * SEGMENT_MS:g} (two PSD segments; default 10000)")
    p.add_argument("--discard", type=val.nonnegative, default=500.0, metavar="MS",
                   help="transient, ms (>= 0; default 500)")
    p.add_argument("--seed", type=val.seed, default=1, help="seed of every run (0 to 2^32-1; default 1)")
    p.add_argument("--shape", type=val.positive_int, nargs=2, default=None, metavar=("NX", "NY"),
                   help="lattice shape override; the kernels need at least 7 x 7 (default: the file's, 8 8)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="configuration override, e.g. populations.E.N=200 (repeatable; default: none)")
    p.add_argument("--scan", type=val.positive, nargs="*", default=list(SCAN_FACTORS), metavar="FACTOR",
                   help="in-degree factors (> 0) of the single-site scan (no values: skip; default "
                        + " ".join(f"{f:g}" for f in SCAN_FACTORS) + ")")
    p.add_argument("--scan-t-sim", type=val.positive, default=20000.0, metavar="MS",
                   help="ms of statistics per level and factor of the single-site scan (default 20000)")
    p.add_argument("--lattice-scan", type=val.positive, nargs="*", default=list(LATTICE_SCAN_FACTORS),
                   metavar="FACTOR",
                   help="in-degree factors (> 0, not 1: the main run is factor 1) of the micro level on the "
                        "lattice (no values: skip; default "
                        + " ".join(f"{f:g}" for f in LATTICE_SCAN_FACTORS) + ")")
    return p


def planned_outputs(args) -> list:
    """The files a run with these options writes."""
    names = ["v3.json", "v3_compare.png", "v3_activity.png"]
    if args.scan:
        names.append("v3_indegree_scan.png")
    if args.lattice_scan:
        names.append("v3_lattice_indegree_scan.png")
    return names


def check_args(p, args):
    """Every check of the options and the configuration, before any run; returns the configuration."""
    val.require_segments(p, args.t_sim, SEGMENT_MS)
    val.refuse_duplicates(p, "--scan", args.scan)
    val.refuse_duplicates(p, "--lattice-scan", args.lattice_scan)
    if 1.0 in args.lattice_scan:
        # the main run is the scan's factor 1 already; a second point at 1/factor = 1
        # leaves the fit a + b / factor without a solution (a singular matrix after the runs)
        p.error("argument --lattice-scan: factor 1 is the main run, which the scan includes already; "
                "give only the other factors (default " + " ".join(f"{f:g}" for f in LATTICE_SCAN_FACTORS) + ")")
    overrides = [*args.overrides, f"run.t_end={args.discard + args.t_sim}", f"run.seed={args.seed}"]
    if args.shape is not None:
        overrides.append(f"lattice.shape=[{args.shape[0]}, {args.shape[1]}]")
    what = "--config/--set" + ("/--shape" if args.shape else "")
    cfg = val.check_config(p, args.config, overrides, what=what)
    if len(cfg.lattice.shape) != 2:
        p.error(f"{what}: V3 studies a 2-D field (this configuration has a lattice of shape "
                f"{list(cfg.lattice.shape)}); use a 2-D configuration such as v3_field")
    if args.scan and args.scan_t_sim < N_BLOCKS * cfg.record.interval:
        p.error(f"argument --scan-t-sim: {args.scan_t_sim:g} ms is too short for {N_BLOCKS} batch-means blocks "
                f"of at least one record ({cfg.record.interval:g} ms): at least {N_BLOCKS * cfg.record.interval:g} ms")
    return cfg


def main(argv=None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    check_args(p, args)
    out = val.prepare_out(p, args.out, planned_outputs(args), OWNED)
    data, figures = compute(config=args.config, t_sim=args.t_sim, discard=args.discard, seed=args.seed,
                            shape=args.shape, scan_factors=args.scan, scan_t_sim=args.scan_t_sim,
                            lattice_scan_factors=args.lattice_scan, overrides=args.overrides,
                            command=val.command_line(PROG, argv))
    print(summary(data), flush=True)
    names = val.write_outputs(out, "v3.json", data, figures, OWNED)
    print(val.wrote(out, names))
    return val.exit_status(data["acceptance"].values())


if __name__ == "__main__":
    sys.exit(val.run_main(main, PROG))
