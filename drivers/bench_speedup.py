"""Speedup of the mesoscopic over the microscopic level, one row per validation study.

Each row runs one study's configuration (packaged TOML, the study's duration)
at both levels with ``meshfield.run`` on one rank and one numba thread, and
times the whole call: building the model (the micro connectivity included),
the time loop and recording. The speedup is micro CPU time / meso CPU time.
Before the timed runs every configuration runs once for 20 ms at each level,
untimed, so that numba compilation (cached on disk after the first
installation-wide run) does not count.

Rows (durations are the studies' own, per level):

* V1 -- ``v1_single`` (two unconnected types, N = 500 each), 61 s; and N = 50.
* V2 -- ``bistable_pair`` (two types of N = 500), 60 s of the study's 4800 s.
* V3 -- ``v3_field`` (8 x 8 lattice, E/I, 32 000 neurons), 10.5 s.
* V4 -- ``v4_pattern`` (ring of 64 sites, 40 000 neurons), 10 s.
* V5 -- ``nest_example`` (one E/I site, N = 800 + 200), 8 seeds of 11 s.
* V6 -- ``v1_single`` at dt = 0.25 and 0.1 ms, 21 s (the study's finite-size
  runs; dt = 0.5 is the V1 row at a third of the length). The mesoscopic cost
  per simulated second grows as 1/dt^2 (K = window / dt cohorts per step), the
  microscopic cost as 1/dt, so the speedup falls as dt -> 0.
* V7 -- ``v7_oscillation`` (one E/I site, N = 500 + 125, a limit cycle), 100.5 s;
  and ``v7_oscillating_field`` (8 x 8 lattice, 40 000 neurons), 20.5 s.

It prints a table and writes ``--json`` (default out/bench_speedup.json).
``--quick`` divides every duration by 10 (a check that the script works; the
ratios then weigh the build more).

    python drivers/bench_speedup.py                 # about 11 minutes on one core
    python drivers/bench_speedup.py --rows V2 V5
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

if __name__ == "__main__":
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _validation as val  # noqa: E402
from _bench import prepare_json  # noqa: E402

PROG = "bench_speedup.py"

#: Cost of the default run: the timed rows of the run in docs/validation_v1356.md
#: took 450 s in all (its log), V7's rows 165 s (docs/validation_v7.md), plus the
#: untimed 20 ms warm-up runs.
DEFAULT_RUN = ("about 11 minutes on one core (the timed rows took 7.5 minutes for V1-V6 in "
               "docs/validation_v1356.md and 3 minutes for V7 in docs/validation_v7.md, plus the untimed "
               "warm-up runs); --quick about 1 minute (40 s with V7, compiled kernels).")

#: (row, packaged configuration, overrides, seeds). run.t_end is each study's duration.
ROWS = (
    ("V1", "v1_single", ["run.t_end=61000"], (1,)),
    ("V1, N = 50", "v1_single", ["run.t_end=61000", "populations.plain.N=50", "populations.adapting.N=50"], (1,)),
    ("V2", "bistable_pair", ["run.t_end=60000"], (1,)),
    ("V3", "v3_field", ["run.t_end=10500"], (1,)),
    ("V4", "v4_pattern", ["run.t_end=10000"], (4,)),
    ("V5", "nest_example", ["run.t_end=11000"], tuple(range(1, 9))),
    ("V6, dt = 0.25", "v1_single", ["run.t_end=21000", "run.dt=0.25"], (1,)),
    ("V6, dt = 0.1", "v1_single", ["run.t_end=21000", "run.dt=0.1"], (1,)),
    ("V7", "v7_oscillation", ["run.t_end=100500"], (7,)),
    ("V7, lattice", "v7_oscillating_field", ["run.t_end=20500"], (7,)),
)

def _scaled(overrides, factor: float):
    """``overrides`` with run.t_end divided by ``factor`` (a whole number of ms kept)."""
    out = []
    for item in overrides:
        key, value = item.split("=", 1)
        out.append(f"run.t_end={max(100.0, round(float(value) / factor))}" if key == "run.t_end" else item)
    return out


def describe(config) -> dict:
    """Sizes that explain the cost: sites, neurons, history steps K per type."""
    from meshfield.meso import history_length

    sites = 1
    for n in config.lattice.shape:
        sites *= n
    pops = config.populations
    return dict(sites=sites, neurons=sites * sum(p.N for p in pops),
                K=[int(history_length(p, config.run.dt)) for p in pops], dt_ms=config.run.dt,
                t_end_ms=config.run.t_end)


def time_row(name: str, overrides, seeds) -> dict:
    """CPU and wall time of both levels of one row, summed over its seeds."""
    levels = {}
    for level in ("micro", "meso"):
        cpu = wall = 0.0
        for seed in seeds:
            cfg = val.load(name, [*overrides, f"run.seed={seed}", f"run.level={level}", "run.mean_field=false"])
            _, timing = val.timed_run(cfg)
            cpu += timing["cpu_s"]
            wall += timing["wall_s"]
        levels[level] = dict(cpu_s=cpu, wall_s=wall)
    info = describe(val.load(name, list(overrides)))
    simulated_s = info["t_end_ms"] * len(seeds) / 1000.0
    return dict(config=name, overrides=list(overrides), seeds=list(seeds), simulated_s=simulated_s, **info,
                micro=levels["micro"], meso=levels["meso"],
                speedup_cpu=levels["micro"]["cpu_s"] / levels["meso"]["cpu_s"],
                speedup_wall=levels["micro"]["wall_s"] / levels["meso"]["wall_s"])


def table(rows: dict) -> str:
    """The rows as a Markdown table (the form docs/validation_v1356.md shows)."""
    lines = ["| study | neurons | sites | K per type | dt (ms) | simulated | micro CPU | meso CPU | speedup |",
             "|---|---|---|---|---|---|---|---|---|"]
    for label, r in rows.items():
        lines.append(f"| {label} | {r['neurons']:,} | {r['sites']} | {' / '.join(map(str, r['K']))} | {r['dt_ms']:g} "
                     f"| {r['simulated_s']:g} s | {r['micro']['cpu_s']:.1f} s | {r['meso']['cpu_s']:.2f} s "
                     f"| {r['speedup_cpu']:.1f}x |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=val.HelpFormatter,
        epilog=val.epilog("--json (default out/bench_speedup.json): the table's numbers, the command, "
                          "the machine and the load average, as JSON; an existing file is replaced "
                          "(a warning says so).", DEFAULT_RUN, val.BENCH_EXIT_STATUS))
    p.add_argument("--rows", nargs="+", default=None, metavar="STUDY",
                   help="rows to run, by study id (V1 ... V7; default: all)")
    p.add_argument("--quick", action="store_true",
                   help="every duration divided by 10 (default: off, the studies' durations)")
    p.add_argument("--json", type=Path, default=Path("out") / "bench_speedup.json", metavar="FILE",
                   help="where the JSON goes; its folder is created if missing (default out/bench_speedup.json)")
    return p


def main(argv=None) -> int:
    p = build_parser()
    studies = [row[0].split(",")[0] for row in ROWS]  # "V6, dt = 0.1" belongs to V6
    args = p.parse_args(argv)
    if args.rows:
        unknown = sorted(set(args.rows) - set(studies))
        if unknown:
            p.error(f"--rows: unknown study {', '.join(unknown)}; allowed: {' '.join(dict.fromkeys(studies))}")
    prepare_json(p, args.json)
    chosen = [row for row, study in zip(ROWS, studies) if not args.rows or study in args.rows]

    for label, name, overrides, seeds in chosen:      # numba compilation, untimed, before any row is timed
        for level in ("micro", "meso"):
            val.warm_up(val.load(name, [*overrides, f"run.level={level}", "run.mean_field=false"]))
    load_before = os.getloadavg()
    rows = {}
    for label, name, overrides, seeds in chosen:
        overrides = _scaled(overrides, 10.0) if args.quick else overrides
        start = time.perf_counter()
        rows[label] = r = time_row(name, overrides, seeds)
        print(f"[speedup] {label}: micro {r['micro']['cpu_s']:.1f} s, meso {r['meso']['cpu_s']:.2f} s CPU "
              f"-> {r['speedup_cpu']:.1f}x ({time.perf_counter() - start:.0f} s)", flush=True)
    load_after = os.getloadavg()
    print()
    print(table(rows))
    print(f"\nload average (1 min) before {load_before[0]:.2f}, after {load_after[0]:.2f}; "
          f"NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS')}", flush=True)
    val.write_json(args.json, dict(command=val.command_line(PROG, argv), quick=args.quick,
                                   machine=platform.processor() or platform.machine(),
                                   numba_threads=os.environ.get("NUMBA_NUM_THREADS"),
                                   load_average=[load_before[0], load_after[0]], rows=rows))
    print(f"wrote {args.json}")
    return val.EXIT_PASSED


if __name__ == "__main__":
    sys.exit(val.run_main(main, PROG))
