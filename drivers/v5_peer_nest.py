"""Validation study V5 (docs/validation.md): meshfield against an independent peer, NEST.

Physics. NEST's ``gif_pop_psc_exp`` implements the same mesoscopic population
equation (Schwalger, Deger & Gerstner 2017) in C++, written by other people, and
``gif_psc_exp`` the corresponding spiking neuron. On the E/I network of NEST's
``gif_pop_psc_exp`` example (``meshfield/configs/nest_example.toml``: one site,
N = 800 E + 200 I, in-degrees 160 / 40, two adaptation timescales of 100 ms and
1 s) the two simulators must produce the same statistics at each level.

What is compared (acceptance rules of docs/validation.md, ``compare_results``: mean
rate per type within 3 SE and 5 %, PSD in 8 log bands from 1 Hz to the Nyquist
rate within 3 SE or 20 %):

* meshfield meso vs NEST ``gif_pop_psc_exp`` (reference: NEST);
* meshfield micro vs NEST ``gif_psc_exp`` (reference: NEST);
* for context, meshfield meso vs meshfield micro and NEST ``gif_pop_psc_exp``
  vs NEST ``gif_psc_exp`` (the approximation itself, in each simulator).

Statistics: ``--seeds`` independent runs per simulator of ``--t-end`` ms; the
first ``--discard`` ms of each run are dropped and the stationary parts joined;
batch-means blocks of ``--block`` ms (several times the 1 s adaptation time
constant) and 1 s PSD segments never straddle two runs. NEST records one value
per step; it is averaged to meshfield's record interval.

``meshfield.peers.nest`` runs every NEST simulation in a spawned subprocess
(so NEST's and numba's OpenMP runtimes never share a process); its CPU time is
counted through the children's resource usage.

Cost: about 25 s per seed on one core (all four simulators, 11 s each); about
3 minutes for the default 8 seeds (docs/validation_v1356.md). Needs NEST
(``nest-simulator``).

Outputs in ``--out`` (default out/v5/): ``v5.json``, ``v5_overview.png``,
``v5_compare_meso.png`` and ``v5_compare_micro.png``.

Usage::

    python drivers/v5_peer_nest.py                       # 8 seeds, out/v5/
    python drivers/v5_peer_nest.py --seeds 1 2 --t-end 6000 --block 1000   # about 40 s
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
import time
from pathlib import Path


if __name__ == "__main__":
    # one numba thread unless the user chose (see _validation); before numba starts
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    os.environ.setdefault("PYNEST_QUIET", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import _validation as val  # noqa: E402
from meshfield.analysis import compare_results, plot_comparison, psd  # noqa: E402
from meshfield.analysis.spectra import segment_cut  # noqa: E402

CONFIG = "nest_example"
PROG = "v5_peer_nest.py"

#: Every file the study writes into --out.
OWNED = ("v5.json", "v5_overview.png", "v5_compare_meso.png", "v5_compare_micro.png")

#: PSD segment of the comparisons (ms): the joined records need two of them.
SEGMENT_MS = 1000.0

#: simulator key -> (label, level) in the order they are run
MESHFIELD = {"meshfield_meso": "meso", "meshfield_micro": "micro"}
NEST = {"nest_gif_pop": "meso", "nest_gif_psc_exp": "micro"}

#: (reference, tested) pairs; the first two are V5's acceptance comparisons
PAIRS = (
    ("nest_gif_pop", "meshfield_meso"),
    ("nest_gif_psc_exp", "meshfield_micro"),
    ("meshfield_micro", "meshfield_meso"),
    ("nest_gif_psc_exp", "nest_gif_pop"),
)


def run_nest(config, level: str, seed: int):
    """NEST's activity of one run at meshfield's record interval, with its timing.

    Returns
    -------
    A : ndarray, shape (n_records, n_types, 1)
        Activity in Hz, averaged over each record interval.
    timing : dict
        ``wall_s``, ``cpu_s`` (:func:`_validation.cpu_seconds`: NEST runs on one thread
        in a spawned subprocess, including its start-up).
    """
    from meshfield.peers import nest as peer

    runner = peer.run_gif_pop if level == "meso" else peer.run_gif_psc_exp_network
    wall, cpu = time.perf_counter(), val.cpu_seconds()
    _, A = runner(config, seed=seed)
    timing = dict(wall_s=time.perf_counter() - wall, cpu_s=val.cpu_seconds() - cpu)
    A = val.rebin(A, config.record_every)
    return A[:, :, None], timing


def collect(config, seeds, discard: float) -> tuple[dict, dict]:
    """Stationary records (seeds joined) and summed timings of the four simulators."""
    parts = {key: [] for key in (*MESHFIELD, *NEST)}
    timing = {key: dict(wall_s=0.0, cpu_s=0.0) for key in parts}
    for seed in seeds:
        for key, level in MESHFIELD.items():
            result, t = val.timed_run(config, [f"run.level={level}", f"run.seed={seed}"])
            parts[key].append(val.trimmed(result, discard))
            for k in ("wall_s", "cpu_s"):
                timing[key][k] += t[k]
    for seed in seeds:
        for key, level in NEST.items():
            A, t = run_nest(config, level, seed)
            record = val.ActivityRecord(A, tuple(config.types), config.record.interval, config.to_dict())
            parts[key].append(val.trimmed(record, discard))
            for k in ("wall_s", "cpu_s"):
                timing[key][k] += t[k]
    return {key: val.concatenate(p) for key, p in parts.items()}, timing


def plot_overview(path: Path, records: dict, reports: dict, types) -> None:
    """Rates of the four simulators (3 SE bars) and their PSDs, one column per type."""
    figure, axes = val.new_figure(2, len(types), width=4.4, height=3.3)
    colours = dict(nest_gif_pop="C3", meshfield_meso="C1", nest_gif_psc_exp="C2", meshfield_micro="C0")
    spectra = {key: psd(rec, segment_ms=1000.0) for key, rec in records.items()}
    means = {}
    for ref, test in PAIRS[:2]:
        rep = reports[(ref, test)]
        means[ref] = rep.means[0]
        means[test] = rep.means[1]
    for t, name in enumerate(types):
        ax = axes[0, t]
        for x, key in enumerate(colours):
            ax.errorbar(x, means[key].mean[t], yerr=3 * means[key].mean_se[t], fmt="o", color=colours[key], capsize=4)
        ax.set_xticks(range(len(colours)), [k.replace("_", "\n", 1) for k in colours], fontsize=7)
        ax.set_ylabel("mean rate (Hz)")
        ax.set_title(f"V5 {name}: mean rate (bars 3 SE)")
        ax = axes[1, t]
        for key, colour in colours.items():
            s = spectra[key]
            ax.loglog(s.freqs[1:], s.S[1:, t], color=colour, lw=0.7, alpha=0.8, label=key)
        ax.set_xlabel("frequency (Hz)")
        ax.set_ylabel("PSD (Hz)")
        ax.set_title(f"V5 {name}: PSD")
        ax.legend(fontsize=6)
    val.save_figure(figure, path)


def study(out: Path | None = None, *, config: str = CONFIG, seeds=tuple(range(1, 9)), t_end: float = 11000.0,
          discard: float = 1000.0, block: float = 5000.0, command: str | None = None) -> dict:
    """Run V5 and return its numbers (written, with figures, to ``out`` if given).

    The parameters are those of :func:`compute`; ``out`` is the folder for
    ``v5.json`` and the figures (:func:`_validation.write_outputs`).
    """
    data, figures = compute(config=config, seeds=seeds, t_end=t_end, discard=discard, block=block, command=command)
    if out is not None:
        val.write_outputs(out, "v5.json", data, figures, OWNED)
    return data


def compute(*, config: str = CONFIG, seeds=tuple(range(1, 9)), t_end: float = 11000.0,
            discard: float = 1000.0, block: float = 5000.0, command: str | None = None) -> tuple[dict, list]:
    """Run V5 and return its numbers and its figures, not yet drawn.

    Parameters
    ----------
    config : str
        Packaged name or TOML path of a single-site configuration NEST can represent.
    seeds : sequence of int
        One run per seed and simulator.
    t_end, discard : float
        Duration of each run and the transient dropped from it (ms); ``t_end -
        discard`` must be a whole number of blocks.
    block : float
        Batch-means block (ms).
    command : str, optional
        The command line recorded in the JSON (default: the plain driver call).

    Returns
    -------
    data : dict
        The JSON content (see docs/validation.md).
    figures : list of (str, callable)
        File name and ``draw(path)`` of every figure.
    """
    stationary = t_end - discard
    per_run = stationary / block
    if abs(per_run - round(per_run)) > 1e-9 or round(per_run) < 1:
        raise ValueError(f"t_end - discard = {stationary} ms must be a whole number of blocks of {block} ms")
    n_blocks = int(round(per_run)) * len(seeds)
    if n_blocks < 2:
        raise ValueError(f"{len(seeds)} seed(s) x {stationary} ms give {n_blocks} block(s) of {block} ms; need >= 2")
    cfg = val.load(config, [f"run.t_end={t_end}"])
    segments = stationary / psd_segment(cfg.record.interval)
    if abs(segments - round(segments)) > 1e-9 * segments:
        raise ValueError(f"t_end - discard = {stationary} ms must be a whole number of PSD segments of "
                         f"{psd_segment(cfg.record.interval)} ms, so that no segment joins two runs")
    records, timing = collect(cfg, seeds, discard)
    reports = {}
    for ref, test in PAIRS:
        reports[(ref, test)] = compare_results(records[ref], records[test], discard=0.0, labels=(ref, test),
                                               n_blocks=n_blocks)
    simulated_s = len(seeds) * t_end / 1000.0
    cost = {key: dict(wall_s=t["wall_s"], cpu_s=t["cpu_s"], cpu_s_per_simulated_s=t["cpu_s"] / simulated_s)
            for key, t in timing.items()}
    data = dict(
        study="V5",
        config=val.config_path(config),
        command=command or f"python drivers/{PROG}",
        settings=dict(seeds=list(seeds), t_end_ms=t_end, discard_ms=discard, block_ms=block, n_blocks=n_blocks,
                      dt_ms=cfg.run.dt, record_interval_ms=cfg.record.interval,
                      N=[p.N for p in cfg.populations]),
        types=list(cfg.types),
        comparisons={f"{test} vs {ref}": val.report_dict(rep) for (ref, test), rep in reports.items()},
        means={key: dict(mean=rep.means[i].mean, se=rep.means[i].mean_se)
               for (ref, test), rep in reports.items() for i, key in enumerate((ref, test))},
        timing=cost,
        speedup=dict(meshfield=timing["meshfield_micro"]["cpu_s"] / timing["meshfield_meso"]["cpu_s"],
                     nest=timing["nest_gif_psc_exp"]["cpu_s"] / timing["nest_gif_pop"]["cpu_s"]),
        acceptance={f"{test} vs {ref}": reports[(ref, test)].passed for ref, test in PAIRS[:2]},
    )
    figures = [("v5_overview.png", lambda path: plot_overview(path, records, reports, cfg.types))]
    for ref, test in PAIRS[:2]:
        figures.append((f"v5_compare_{test.split('_')[1]}.png",
                        lambda path, report=reports[(ref, test)]: plot_comparison(report, path)))
    return data, figures


def summary(data: dict) -> str:
    """Plain-text summary of the numbers."""
    s = data["settings"]
    lines = [f"V5 ({data['config']}): {len(s['seeds'])} seeds x {s['t_end_ms'] / 1000:g} s, "
             f"{s['n_blocks']} blocks of {s['block_ms'] / 1000:g} s"]
    for key, m in data["means"].items():
        lines.append(f"  {key:18s} " + ", ".join(f"{name} {m['mean'][t]:.4f} +- {m['se'][t]:.4f} Hz"
                                                   for t, name in enumerate(data["types"])))
    for name, rep in data["comparisons"].items():
        rows = rep["rows"]
        lines.append(f"  {name}: {'PASS' if rep['passed'] else 'FAIL'} ({sum(r['passed'] for r in rows)}/{len(rows)})")
        for r in rows:
            if r["quantity"] == "mean" or not r["passed"]:
                lines.append(f"    {'pass' if r['passed'] else 'FAIL'} {r['quantity']} {r['type']}: {r['value_a']:.4g} vs "
                             f"{r['value_b']:.4g} ({100 * (r['value_b'] / r['value_a'] - 1):+.2f} %; {r['tolerance']})")
    for key, t in data["timing"].items():
        lines.append(f"  time {key:18s} {t['cpu_s']:7.1f} s CPU ({t['cpu_s_per_simulated_s']:.3f} s per simulated s), "
                     f"{t['wall_s']:7.1f} s wall")
    lines.append(f"  speedup meso over micro (CPU): meshfield {data['speedup']['meshfield']:.2f}x, "
                 f"NEST {data['speedup']['nest']:.2f}x")
    lines.append(val.acceptance_line("V5 acceptance", data["acceptance"]))
    return "\n".join(lines)


def build_parser():
    p = val.parser("v5", __doc__, prog=PROG,
                   writes="v5.json and the figures v5_overview.png, v5_compare_meso.png, v5_compare_micro.png "
                          "into --out.",
                   default_run="about 3 minutes on one core (8 seeds x 11 s per simulator; "
                               "docs/validation_v1356.md).")
    p.add_argument("--config", default=CONFIG,
                   help="packaged name or TOML file of a single-site configuration NEST can represent "
                        "(default nest_example)")
    p.add_argument("--seeds", type=val.seed, nargs="+", default=list(range(1, 9)), metavar="SEED",
                   help="one run per seed and simulator, no repeats (default 1 2 3 4 5 6 7 8)")
    p.add_argument("--t-end", type=val.positive, default=11000.0, metavar="MS",
                   help="ms per run: --discard plus a whole number of blocks and of 1 s PSD segments "
                        "(default 11000)")
    p.add_argument("--discard", type=val.nonnegative, default=1000.0, metavar="MS",
                   help="transient dropped from each run, ms (>= 0; default 1000)")
    p.add_argument("--block", type=val.positive, default=5000.0, metavar="MS",
                   help="batch-means block, ms; the seeds together need at least 2 (default 5000)")
    return p


def psd_segment(interval: float) -> float:
    """The PSD segment (ms) as :func:`meshfield.analysis.psd` cuts ``SEGMENT_MS`` at
    this record interval: an even number of whole records."""
    return segment_cut(SEGMENT_MS, interval) * interval


def aligned_blocks(block: float, segment: float) -> int | None:
    """The fewest blocks that are also a whole number of PSD segments (None beyond 1000):
    runs of a multiple of them keep every segment inside one run."""
    for k in range(1, 1001):
        ratio = k * block / segment
        if abs(ratio - round(ratio)) <= 1e-9 * ratio:
            return k
    return None


def minimum_t_end(n_seeds: int, discard: float, block: float, segment: float = SEGMENT_MS) -> float | None:
    """The shortest run that gives the statistics enough data: at least one block per
    run, two blocks and two PSD segments over all seeds, and whole PSD segments per run
    (``aligned_blocks``; None if there is no such run)."""
    unit = aligned_blocks(block, segment)
    if unit is None:
        return None
    per_run = max(1, math.ceil(2 / n_seeds), math.ceil(2 * segment / (n_seeds * block) - 1e-9))
    return discard + unit * math.ceil(per_run / unit) * block


def check_args(p, args):
    """Every check of the options and the configuration, before any run; returns the configuration."""
    from meshfield.peers import nest as peer

    if importlib.util.find_spec("nest") is None:
        p.error("V5 compares with NEST, which is not installed here: pip install nest-simulator "
                "(make test installs it into .venv)")
    val.refuse_duplicates(p, "--seeds", args.seeds)
    cfg = val.check_config(p, args.config, [f"run.t_end={args.t_end}"])
    n = len(args.seeds)
    segment = psd_segment(cfg.record.interval)
    shortest = minimum_t_end(n, args.discard, args.block, segment)
    if shortest is None:
        p.error(f"argument --block: {args.block:g} ms has no multiple of at most 1000 blocks that is a whole "
                f"number of PSD segments of {segment:g} ms; choose a block such as {5 * segment:g}")
    if args.t_end < shortest - 1e-9:
        p.error(f"argument --t-end: {args.t_end:g} ms is too short for {n} seed(s): each run needs --discard "
                f"{args.discard:g} ms plus whole blocks of {args.block:g} ms, and all seeds together at least 2 "
                f"blocks and 2 PSD segments of {segment:g} ms: at least {shortest:g} ms")
    unit = aligned_blocks(args.block, segment) * args.block
    per_run = (args.t_end - args.discard) / unit
    if abs(per_run - round(per_run)) > 1e-9:
        lower = args.discard + math.floor(per_run) * unit
        upper = args.discard + math.ceil(per_run) * unit
        choices = " or ".join(f"{t:g}" for t in (lower, upper) if t >= shortest - 1e-9)
        whole = (f"blocks of {args.block:g} ms" if unit == args.block else
                 f"blocks of {args.block:g} ms and of PSD segments of {segment:g} ms (so that no segment "
                 f"joins two runs), i.e. of {unit:g} ms")
        p.error(f"argument --t-end: t_end - discard = {args.t_end - args.discard:g} ms must be a whole number of "
                f"{whole} (--t-end {choices})")
    problems = []
    if int(np.prod(cfg.lattice.shape)) != 1:
        problems.append(f"lattice.shape = {list(cfg.lattice.shape)}: the NEST peer needs a single site")
    if cfg.run.mean_field:
        problems.append("run.mean_field = true: NEST has no mean-field mode")
    if cfg.stimuli:
        problems.append("stimuli: the NEST peer supports only the constant drive mu")
    for name in cfg.types:
        for translate in (peer.config_to_gif_pop_params, peer.config_to_gif_psc_exp_params):
            try:
                translate(cfg, name)
            except peer.PeerConfigError as exc:
                problems.append(str(exc))
    if problems:
        p.error(f"--config: NEST cannot represent this configuration: {problems[0]}")
    return cfg


def main(argv=None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    check_args(p, args)
    out = val.prepare_out(p, args.out, list(OWNED), OWNED)
    data, figures = compute(config=args.config, seeds=args.seeds, t_end=args.t_end, discard=args.discard,
                            block=args.block, command=val.command_line(PROG, argv))
    print(summary(data), flush=True)
    names = val.write_outputs(out, "v5.json", data, figures, OWNED)
    print(val.wrote(out, names))
    return val.exit_status(data["acceptance"].values())


if __name__ == "__main__":
    sys.exit(val.run_main(main, PROG))
