"""Control experiment for V3: the field where the model's two approximations are small.

V3 (drivers/v3_field_async.py) fails the 3 SE part of the mean-rate rule, and its
lattice in-degree scan splits the gap into the identical-input approximation
(falling as 1/C) and the difference of the two levels' prescribed step rules
(the discrete theory predicts it). This driver tests that decomposition where
it predicts a small gap: the same lattice, seed and statistics as V3, with

* every in-degree multiplied by ``--factor`` (default 64; J divided by it, so
  J C and the theory are unchanged), which shrinks the identical-input part to
  b / factor;
* ``dt = 0.1 ms`` instead of 0.5, which shrinks the step-rule part fivefold;
* an explicit history window of 150 ms (E) and 100 ms (I) instead of the
  default 5 tau_m + t_ref, so that the window adds nothing.

It prints the two levels' means, the prediction (discrete theory at this dt and
window, plus b / factor with b from V3's lattice scan: ``B_PERCENT`` in this file), and
docs/validation.md's comparison. This is a diagnosis, not an acceptance study: V3's
configuration and verdict are V3's.

Cost on one core (measured): 633 s (micro) and 151 s (meso) of CPU time, about
13 minutes in all; the micro network has 205 million synapses (1.2 GB resident).

Outputs in ``--out`` (default out/v3_control/): ``v3_control.json`` and
``v3_control_compare.png``. The exit status follows the acceptance rules'
verdict (1 when any quantity fails them), like every driver's.

    python drivers/v3_control.py                       # out/v3_control/
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

if __name__ == "__main__":
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _validation as val  # noqa: E402
import v3_field_async as v3  # noqa: E402
from meshfield.analysis import compare_results, plot_comparison  # noqa: E402
from meshfield.theory import stationary_rates_network  # noqa: E402

#: In-degree part of V3's gap at the study's in-degrees, percent (E, I): the fit
#: b of the lattice scan in docs/validation_v1356.md (b / factor at factor).
B_PERCENT = (-0.541, -1.194)
B_SE_PERCENT = (0.140, 0.037)

PROG = "v3_control.py"

#: Every file the control writes into --out.
OWNED = ("v3_control.json", "v3_control_compare.png")

#: History windows (ms) per type: past the decay of the interval distributions,
#: where the discrete theory no longer changes with K (checked at 100-300 ms).
WINDOW_MS = {"E": 150.0, "I": 100.0}


def control_config(factor: float, dt: float, seed: int, t_end: float):
    """V3's configuration with scaled in-degrees, step ``dt`` and explicit windows."""
    overrides = [f"run.dt={dt}", f"run.seed={seed}", f"run.t_end={t_end}"]
    overrides += [f"populations.{name}.K={int(round(ms / dt))}" for name, ms in WINDOW_MS.items()]
    return val.scaled_indegrees(v3.CONFIG, factor, overrides)


def predicted_gap(config, factor: float, b_percent=B_PERCENT, b_se_percent=B_SE_PERCENT) -> dict:
    """Predicted relative difference meso - micro per type: the discrete network
    theory with the meso rule (trapezoid, the configured K) against the micro
    rule (end of step, no window), plus b / factor."""
    types = list(config.types)
    J = np.zeros((len(types), len(types)))
    C = np.zeros_like(J)
    for c in config.couplings:
        J[types.index(c.target), types.index(c.source)] = c.J
        C[types.index(c.target), types.index(c.source)] = c.C
    dt = config.run.dt
    meso = stationary_rates_network(config.populations, J, C, dt=dt, K=[p.K for p in config.populations]).rates
    micro = stationary_rates_network(config.populations, J, C, dt=dt, hazard_rule="endpoint").rates
    step_rule = meso / micro - 1.0
    indegree = np.asarray(b_percent) / 100.0 / factor
    return dict(step_rule=step_rule, indegree=indegree, total=step_rule + indegree,
                total_se=np.asarray(b_se_percent) / 100.0 / factor, theory_meso=meso, theory_micro=micro)


def study(out: Path | None = None, *, factor: float = 64.0, dt: float = 0.1, seed: int = 1,
          t_sim: float = 10000.0, discard: float = 500.0, command: str | None = None) -> dict:
    """Run both levels of the control, compare them, and return the numbers
    (written with the comparison figure to ``out`` if given)."""
    data, figures = compute(factor=factor, dt=dt, seed=seed, t_sim=t_sim, discard=discard, command=command)
    if out is not None:
        val.write_outputs(out, "v3_control.json", data, figures, OWNED)
    return data


def compute(*, factor: float = 64.0, dt: float = 0.1, seed: int = 1, t_sim: float = 10000.0,
            discard: float = 500.0, command: str | None = None) -> tuple[dict, list]:
    """Run both levels of the control and compare them: the numbers and the
    comparison figure, not yet drawn (file name, ``draw(path)``)."""
    cfg = control_config(factor, dt, seed, discard + t_sim)
    prediction = predicted_gap(cfg, factor)
    results, timing = {}, {}
    for level in ("micro", "meso"):
        results[level], timing[level] = val.timed_run(cfg, [f"run.level={level}"])
    report = compare_results(results["micro"], results["meso"], discard=discard, labels=("micro", "meso"))
    micro, meso = report.means
    gap = meso.mean / micro.mean - 1.0
    gap_se = np.hypot(micro.mean_se, meso.mean_se) / micro.mean
    data = dict(
        study="V3 control",
        command=command or f"python drivers/{PROG}",
        settings=dict(factor=factor, dt_ms=dt, seed=seed, t_sim_ms=t_sim, discard_ms=discard,
                      K=[p.K for p in cfg.populations], C={f"{c.target}<-{c.source}": c.C for c in cfg.couplings}),
        types=list(cfg.types),
        prediction=prediction,
        means=dict(micro=micro.mean, meso=meso.mean), se=dict(micro=micro.mean_se, meso=meso.mean_se),
        gap=gap, gap_se=gap_se,
        gap_minus_prediction=gap - prediction["total"],
        gap_minus_prediction_se=np.hypot(gap_se, prediction["total_se"]),
        compare=val.report_dict(report),
        timing=timing,
    )
    return data, [("v3_control_compare.png", lambda path: plot_comparison(report, path))]


def summary(data: dict) -> str:
    """Plain-text summary of the numbers."""
    s = data["settings"]
    lines = [f"V3 control: in-degrees x{s['factor']:g} {s['C']}, dt {s['dt_ms']} ms, K {s['K']}, "
             f"{s['t_sim_ms'] / 1000:g} s"]
    p = data["prediction"]
    for t, name in enumerate(data["types"]):
        lines.append(
            f"  {name}: micro {data['means']['micro'][t]:.4f} +- {data['se']['micro'][t]:.4f}, meso "
            f"{data['means']['meso'][t]:.4f} +- {data['se']['meso'][t]:.4f} Hz; meso - micro "
            f"{100 * data['gap'][t]:+.3f} +- {100 * data['gap_se'][t]:.3f} %; predicted {100 * p['total'][t]:+.3f} % "
            f"(step rules {100 * p['step_rule'][t]:+.3f}, in-degree {100 * p['indegree'][t]:+.3f}); measured - "
            f"predicted {100 * data['gap_minus_prediction'][t]:+.3f} +- {100 * data['gap_minus_prediction_se'][t]:.3f} %")
    rows = data["compare"]["rows"]
    lines.append(f"  acceptance rules (docs/validation.md): {'PASS' if data['compare']['passed'] else 'FAIL'} "
                 f"({sum(r['passed'] for r in rows)}/{len(rows)})")
    for r in rows:
        if r["quantity"] == "mean" or not r["passed"]:
            lines.append(f"    {'pass' if r['passed'] else 'FAIL'} {r['quantity']} {r['type']}: micro "
                         f"{r['value_a']:.5g}, meso {r['value_b']:.5g} ({r['tolerance']})")
    t = data["timing"]
    lines.append(f"  time: micro {t['micro']['cpu_s']:.0f} s CPU, meso {t['meso']['cpu_s']:.0f} s CPU")
    return "\n".join(lines)


#: PSD segment of the comparison (ms): the statistics need two after the transient.
SEGMENT_MS = 1000.0

#: Transient of the control (ms), as in V3.
DISCARD_MS = 500.0


def build_parser():
    p = val.parser("v3_control", __doc__, prog=PROG,
                   writes="v3_control.json and the figure v3_control_compare.png into --out.",
                   default_run="about 13 minutes on one core (633 s micro, 151 s meso CPU; 1.2 GB).")
    p.add_argument("--factor", type=val.positive, default=64.0,
                   help="in-degree factor, > 0 (J divided by it, J C fixed; default 64)")
    p.add_argument("--dt", type=val.positive, default=0.1, metavar="MS",
                   help="time step, ms; must divide the record interval (default 0.1)")
    p.add_argument("--t-sim", type=val.positive, default=10000.0, metavar="MS",
                   help=f"ms of statistics per level after a {DISCARD_MS:g} ms transient, at least "
                        f"{2 * SEGMENT_MS:g} (two PSD segments; default 10000)")
    p.add_argument("--seed", type=val.seed, default=1, help="seed of both levels (0 to 2^32-1; default 1)")
    return p


def main(argv=None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    val.require_segments(p, args.t_sim, SEGMENT_MS, "the comparison")
    from meshfield.config import ConfigError

    try:
        control_config(args.factor, args.dt, args.seed, DISCARD_MS + args.t_sim)
    except ConfigError as exc:
        p.error(f"--factor/--dt/--t-sim/--seed: {exc}")
    out = val.prepare_out(p, args.out, list(OWNED), OWNED)
    data, figures = compute(factor=args.factor, dt=args.dt, seed=args.seed, t_sim=args.t_sim, discard=DISCARD_MS,
                            command=val.command_line(PROG, argv))
    print(summary(data), flush=True)
    names = val.write_outputs(out, "v3_control.json", data, figures, OWNED)
    print(val.wrote(out, names))
    return val.EXIT_PASSED if data["compare"]["passed"] else val.EXIT_FAILED


if __name__ == "__main__":
    sys.exit(val.run_main(main, PROG))
