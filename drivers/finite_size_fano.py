"""Finite-size fluctuations of uncoupled populations: spike-count Fano factors.

A diagnosis for docs/validation.md's section on where the approximation is
weaker, not an acceptance study. The two populations of V1 (``v1_single``:
N = 500, without and with adaptation) are simulated uncoupled on ``--sites``
independent sites by

* the meshfield micro level (the reference: N GLIF neurons each),
* the meshfield meso level (the population equation with binomial noise),
* NEST's ``gif_pop_psc_exp`` (the same population equation, another code), when
  NEST is installed and ``--skip-nest`` is not given,

and the Fano factor var(n)/mean(n) of the population spike count n in windows
of 0.5 to 100 ms is computed with ``meshfield.analysis.fano_factor`` (standard
errors from 10 blocks). A renewal population of N independent neurons has a
Fano factor that falls from about 1 at short windows towards its interval CV^2;
the population equation approximates the finite-size noise, and this driver
shows by how much its count fluctuations differ from the network's, and whether
NEST's independent implementation of the same equation agrees with meshfield's.

Outputs in ``--out`` (default out/finite_size_fano/): ``finite_size_fano.json``
and ``finite_size_fano.png``. Exit status 0 after a completed run (no
acceptance rule applies), 2 for bad input.

    python drivers/finite_size_fano.py                      # 8 sites, 40 s each
    python drivers/finite_size_fano.py --t-sim 5000 --sites 2 --skip-nest
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from pathlib import Path

import numpy as np

if __name__ == "__main__":
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _validation as val  # noqa: E402
from meshfield.analysis import fano_factor  # noqa: E402

PROG = "finite_size_fano.py"
OWNED = ("finite_size_fano.json", "finite_size_fano.png")
CONFIG = "v1_single"
WINDOWS_MS = (0.5, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)
DISCARD_MS = 1000.0
N_BLOCKS = 10


def config(sites: int, t_sim: float, seed: int):
    """V1's two populations, uncoupled, on ``sites`` independent sites."""
    return val.load(CONFIG, [f"lattice.shape=[{sites}]", f"run.t_end={DISCARD_MS + t_sim}",
                             f"run.seed={seed}"])


def compute(*, sites: int = 8, t_sim: float = 40000.0, seed: int = 1, nest: bool = True,
            command: str | None = None) -> tuple[dict, list]:
    """Run the levels and return the numbers and the figure (file name, draw)."""
    cfg = config(sites, t_sim, seed)
    N = [p.N for p in cfg.populations]
    fano, timing = {}, {}
    for level in ("micro", "meso"):
        result, timing[level] = val.timed_run(cfg, [f"run.level={level}"])
        fano[level] = fano_factor(result, WINDOWS_MS, discard=DISCARD_MS, n_blocks=N_BLOCKS)
    if nest:
        from meshfield.peers.nest import run_gif_pop_lattice

        wall, cpu = time.perf_counter(), val.cpu_seconds()
        _, A = run_gif_pop_lattice(cfg)
        # the NEST worker is a child process: cpu_seconds counts it once it has ended
        timing["nest"] = dict(wall_s=time.perf_counter() - wall, cpu_s=val.cpu_seconds() - cpu)
        fano["nest"] = fano_factor(A, WINDOWS_MS, N=N, record_interval=cfg.run.dt, discard=DISCARD_MS,
                                   n_blocks=N_BLOCKS)
    ref = fano["micro"]
    data = dict(
        study="finite-size Fano factors",
        command=command or f"python drivers/{PROG}",
        settings=dict(config=CONFIG, sites=sites, t_sim_ms=t_sim, discard_ms=DISCARD_MS, seed=seed,
                      n_blocks=N_BLOCKS, N=N, dt_ms=cfg.run.dt),
        types=list(cfg.types),
        windows_ms=list(WINDOWS_MS),
        fano={level: f.fano for level, f in fano.items()},
        se={level: f.se for level, f in fano.items()},
        ratio_to_micro={level: f.fano / ref.fano - 1.0 for level, f in fano.items() if level != "micro"},
        ratio_to_micro_se={level: np.hypot(f.se / ref.fano, f.fano * ref.se / ref.fano**2)
                           for level, f in fano.items() if level != "micro"},
        timing=timing,
    )
    return data, [("finite_size_fano.png", lambda path: draw(data, path))]


def draw(data: dict, path) -> None:
    figure, axes = val.new_figure(1, len(data["types"]), width=4.6, height=3.6)
    styles = dict(micro=("k", "o", "micro (network)"), meso=("C0", "s", "meso (meshfield)"),
                  nest=("C3", "^", "gif_pop_psc_exp (NEST)"))
    w = np.asarray(data["windows_ms"])
    for t, (ax, name) in enumerate(zip(np.atleast_1d(axes).ravel(), data["types"])):
        for level, (color, marker, label) in styles.items():
            if level in data["fano"]:
                ax.errorbar(w, np.asarray(data["fano"][level])[:, t], yerr=2 * np.asarray(data["se"][level])[:, t],
                            color=color, marker=marker, ms=4, lw=1, capsize=2, label=label)
        ax.set_xscale("log")
        ax.set_xlabel("counting window (ms)")
        ax.set_ylabel("Fano factor var(n)/mean(n)")
        ax.set_title(f"{name}: N = {data['settings']['N'][t]}, {data['settings']['sites']} sites")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    val.save_figure(figure, path)


def summary(data: dict) -> str:
    s = data["settings"]
    lines = [f"Fano factors of the population spike count ({s['config']}, N = {s['N']}, {s['sites']} uncoupled "
             f"sites, {s['t_sim_ms'] / 1000:g} s after {s['discard_ms']:g} ms; +- 1 SE from {s['n_blocks']} blocks)"]
    levels = list(data["fano"])
    for t, name in enumerate(data["types"]):
        lines.append(f"  {name}:")
        lines.append("    window (ms) " + "".join(f"{level:>16s}" for level in levels)
                     + "".join(f"{level + '/micro - 1':>18s}" for level in levels if level != "micro"))
        for j, w in enumerate(data["windows_ms"]):
            cells = "".join(f"{data['fano'][lv][j][t]:9.4f} +-{data['se'][lv][j][t]:.4f}" for lv in levels)
            ratios = "".join(f"{100 * data['ratio_to_micro'][lv][j][t]:+10.1f} +- {100 * data['ratio_to_micro_se'][lv][j][t]:3.1f} %"
                             for lv in levels if lv != "micro")
            lines.append(f"    {w:11g} {cells}{ratios}")
    t = data["timing"]
    lines.append("  time: " + ", ".join(f"{level} {t[level]['cpu_s']:.0f} s CPU" for level in t))
    return "\n".join(lines)


def build_parser():
    p = val.parser("finite_size_fano", __doc__, prog=PROG,
                   writes="finite_size_fano.json and the figure finite_size_fano.png into --out.",
                   default_run="about 2 minutes on one core (CPU: micro 69 s, NEST 48 s, meso 7 s; measured).",
                   exit_status="Exit status: 0 after a completed run (a diagnosis: no acceptance rule "
                               "applies), 2 for bad input or a failed run, 130 when interrupted.")
    p.add_argument("--sites", type=val.positive_int, default=8,
                   help="independent sites (populations per type), >= 1 (default 8)")
    p.add_argument("--t-sim", type=val.positive, default=40000.0, metavar="MS",
                   help=f"ms of statistics after a {DISCARD_MS:g} ms transient; each of the {N_BLOCKS} blocks "
                        f"must hold two {max(WINDOWS_MS):g}-ms windows (default 40000)")
    p.add_argument("--seed", type=val.seed, default=1, help="seed of every level (0 to 2^32-1; default 1)")
    p.add_argument("--skip-nest", action="store_true", help="leave NEST out (default: run it when installed)")
    return p


def main(argv=None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    shortest = N_BLOCKS * 2 * max(WINDOWS_MS)
    if args.t_sim < shortest:
        p.error(f"argument --t-sim: {args.t_sim:g} ms is too short: the {N_BLOCKS} blocks need two "
                f"{max(WINDOWS_MS):g}-ms windows each, at least {shortest:g} ms")
    nest = not args.skip_nest and importlib.util.find_spec("nest") is not None
    if not args.skip_nest and not nest:
        print(f"{PROG}: NEST is not installed; running meshfield's two levels only", file=sys.stderr)
    val.check_config(p, CONFIG, [f"lattice.shape=[{args.sites}]", f"run.t_end={DISCARD_MS + args.t_sim}",
                                 f"run.seed={args.seed}"], "--sites/--t-sim/--seed")
    out = val.prepare_out(p, args.out, list(OWNED), OWNED)
    data, figures = compute(sites=args.sites, t_sim=args.t_sim, seed=args.seed, nest=nest,
                            command=val.command_line(PROG, argv))
    print(summary(data), flush=True)
    print(val.wrote(out, val.write_outputs(out, "finite_size_fano.json", data, figures, OWNED)))
    return 0


if __name__ == "__main__":
    sys.exit(val.run_main(main, PROG))
