"""Benchmark of the mesoscopic engine against NEST's ``gif_pop_psc_exp``, side by side.

The packaged ``bench_meso`` configuration (a 32x32 periodic E/I lattice with the
neuron parameters of NEST's gif_pop_psc_exp example: two adaptation timescales up
to 1 s, so K is in the thousands) is run

* by meshfield on 1 and 2 MPI ranks (one numba thread per rank), each in an
  ``mpiexec`` subprocess: build, first block (numba compilation, cached after the
  first ever run), then the warm throughput over ``--t-sim`` ms;
* by NEST (one thread) from ``gif_pop_psc_exp`` nodes, one per site and type,
  coupled by the same stencils (``meshfield.peers.nest``), in a worker process.

Printed: population-steps per second per core for both and their ratio (at the
same K), memory per population, bytes communicated per step, 1 -> 2 rank speedup.
A JSON of the numbers goes to ``--json`` (default out/bench_meso.json; ``make
bench`` runs this driver and replaces it). docs/performance.md quotes a run on
the idle machine, with its date; a run on a loaded machine gives other figures.

Usage::

    python drivers/bench_meso.py                      # full comparison (about 3.5 minutes)
    python drivers/bench_meso.py --t-sim 50 --skip-nest --ranks 1
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _validation as val  # noqa: E402
from _bench import bench_parser, check_bench_args, run_worker  # noqa: E402

PROG = "bench_meso.py"

#: Cost of the default run, estimated from the throughputs in docs/performance.md.
DEFAULT_RUN = ("about 3.5 minutes on an idle 2-core machine, estimated from the throughputs in "
               "docs/performance.md: meshfield about 30 s on 1 rank and 15 s on 2, NEST about "
               "2.5 minutes (200 ms of the 2048 populations).")

WORKER = r"""
import json, sys, time
import numpy as np
from mpi4py import MPI
import meshfield
from meshfield.coupling import build_stencils
from meshfield.simulation import build_model, make_decomposition
config = meshfield.load_config(sys.argv[1], sys.argv[3:])
t_sim = float(sys.argv[2])
comm = MPI.COMM_WORLD
t0 = time.perf_counter()
stencils = build_stencils(config)
dec = make_decomposition(config, comm, stencils=stencils)
model = build_model(config, dec, stencils)
t_build = time.perf_counter() - t0
B = getattr(model, "block_steps", None) or model.d_min or 64  # the time loop's block
nt = len(config.types)
counts = np.empty((B, nt, model.n_local)); expected = np.empty_like(counts)
comm.Barrier(); t0 = time.perf_counter()
model.advance(0, B, counts, expected); model.exchange()
comm.Barrier(); t_first = time.perf_counter() - t0
n_blocks = max(1, int(round(t_sim / config.run.dt / B)))
sent0 = dec.bytes_sent
comm.Barrier(); t0 = time.perf_counter(); c0 = time.process_time()
for b in range(1, n_blocks + 1):
    model.advance(b * B, B, counts, expected); model.exchange()
comm.Barrier(); wall = time.perf_counter() - t0; cpu = time.process_time() - c0
steps = n_blocks * B
sent = comm.allreduce(dec.bytes_sent - sent0) / steps
mem = comm.allreduce(model.memory_bytes())
n_pop = int(np.prod(config.lattice.shape)) * nt
if comm.rank == 0:
    print(json.dumps(dict(ranks=comm.size, dims=list(dec.dims), K=model.history_lengths,
        build_s=t_build, first_block_s=t_first, steps=steps, wall_s=wall, cpu_s_rank0=cpu,
        pop_steps_per_s=n_pop * steps / wall, bytes_per_step=sent, memory_bytes=mem,
        memory_per_population=mem / n_pop)))
"""


def run_meshfield(config: str, t_sim: float, ranks: int, overrides) -> dict:
    return run_worker(WORKER, config, t_sim, ranks, overrides)


def run_nest(config: str, t_sim: float, overrides) -> dict:
    import meshfield
    from meshfield.peers.nest import time_gif_pop_lattice
    cfg = meshfield.load_config(config, overrides)
    return time_gif_pop_lattice(cfg, t_sim)


def build_parser():
    return bench_parser(__doc__, "bench_meso", "out/bench_meso.json", prog=PROG, default_run=DEFAULT_RUN)


def main(argv=None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    cfg = check_bench_args(p, args)
    n_pop = int(__import__("numpy").prod(cfg.lattice.shape)) * len(cfg.types)
    print(f"bench_meso: lattice {tuple(cfg.lattice.shape)} x {len(cfg.types)} types = {n_pop} populations, "
          f"dt = {cfg.run.dt} ms, timed {args.t_sim} ms", flush=True)
    results = {"command": val.command_line(PROG, argv), "config": args.config, "overrides": args.set,
               "t_sim": args.t_sim, "meshfield": {}}
    for r in args.ranks:
        m = run_meshfield(args.config, args.t_sim, r, args.set)
        results["meshfield"][r] = m
        print(f"meshfield {r} rank(s) {tuple(m['dims'])}: K = {m['K']}, build {m['build_s']:.2f} s, "
              f"first block (incl. compilation) {m['first_block_s']:.2f} s, "
              f"{m['pop_steps_per_s']:.3g} pop-steps/s = {m['pop_steps_per_s'] / r:.3g} per core; "
              f"{m['memory_per_population'] / 1024:.1f} KiB per population; "
              f"{m['bytes_per_step']:.0f} bytes sent per step", flush=True)
    if len(args.ranks) > 1:
        base = results["meshfield"][args.ranks[0]]["pop_steps_per_s"]
        for r in args.ranks[1:]:
            s = results["meshfield"][r]["pop_steps_per_s"] / base
            results.setdefault("speedup", {})[r] = s
            print(f"speedup {args.ranks[0]} -> {r} ranks: {s:.2f}")
    if not args.skip_nest:
        t0 = time.perf_counter()
        n = run_nest(args.config, args.nest_t_sim or args.t_sim, args.set)
        results["nest"] = n
        print(f"NEST gif_pop_psc_exp (1 thread): K = {n.get('K')}, build {n.get('build_seconds', float('nan')):.2f} s, "
              f"{n['pop_steps_per_second']:.3g} pop-steps/s ({time.perf_counter() - t0:.1f} s in all)")
        one = results["meshfield"][args.ranks[0]]["pop_steps_per_s"] / args.ranks[0]
        results["ratio_per_core"] = one / n["pop_steps_per_second"]
        print(f"ratio meshfield/NEST per core: {results['ratio_per_core']:.2f}")
    val.write_json(args.json, results)
    print(f"wrote {args.json}")
    return val.EXIT_PASSED


if __name__ == "__main__":
    sys.exit(val.run_main(main, PROG))
