"""Benchmark of the microscopic level against NEST's ``gif_psc_exp``, side by side.

The packaged ``bench_micro`` configuration (an 8x8 periodic lattice with 400 E and
100 I neurons per site, in-degree 200 from a Gaussian kernel: 32000 neurons and
6.4 million synapses) is run

* by meshfield on 1 and 2 MPI ranks (one numba thread per rank), each in an
  ``mpiexec`` subprocess: a first build and block (numba compilation, cached
  after the first ever run), a timed warm build, then the warm throughput over
  ``--t-sim`` ms;
* by NEST (one thread) from ``gif_psc_exp`` neurons with spatial
  ``fixed_indegree`` connectivity (:func:`meshfield.peers.nest.time_gif_psc_exp_lattice`),
  in this process.

Printed: neuron-steps per second per core, synapses built per second, memory per
synapse, spikes and bytes sent per exchange, the meshfield/NEST ratios of
simulation and construction speed, and the 1 -> 2 rank speedup. Wall times on a
machine shared with other work fluctuate; the process CPU times are printed
beside them. A JSON of the numbers goes to ``--json`` (default
out/bench_micro.json).

Usage::

    python drivers/bench_micro.py                          # full comparison (about 1.5 minutes)
    python drivers/bench_micro.py --t-sim 50 --skip-nest --ranks 1
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _validation as val  # noqa: E402
from _bench import bench_parser, check_bench_args, run_worker  # noqa: E402

PROG = "bench_micro.py"

#: Cost of the default run, estimated from the measurements in docs/micro.md.
DEFAULT_RUN = ("about 1.5 minutes, estimated from docs/micro.md: NEST's connection build (about 70 s) "
               "dominates; meshfield takes a few seconds per rank count.")

WORKER = r"""
import json, sys, time
import numpy as np
from mpi4py import MPI
import meshfield
from meshfield.coupling import build_stencils
from meshfield.simulation import DEFAULT_BLOCK, build_model, make_decomposition
config = meshfield.load_config(sys.argv[1], sys.argv[3:])
t_sim = float(sys.argv[2])
comm = MPI.COMM_WORLD
stencils = build_stencils(config)
dec = make_decomposition(config, comm, stencils=stencils)
comm.Barrier(); t0 = time.perf_counter()
build_model(config, dec, stencils)  # compiles the kernels on a first ever run (then cached)
comm.Barrier(); t_first_build = time.perf_counter() - t0
comm.Barrier(); t0 = time.perf_counter(); c0 = time.process_time()
model = build_model(config, dec, stencils)
build_cpu = time.process_time() - c0
comm.Barrier(); t_build = time.perf_counter() - t0
B = model.d_min or DEFAULT_BLOCK
nt = len(config.types)
n_sites = int(np.prod(dec.local_shape))
counts = np.empty((B, nt, n_sites)); expected = np.empty_like(counts)
comm.Barrier(); t0 = time.perf_counter()
model.advance(0, B, counts, expected); model.exchange()
comm.Barrier(); t_first = time.perf_counter() - t0
n_blocks = max(1, int(round(t_sim / config.run.dt / B)))
sent0, spikes0 = dec.bytes_sent, model.spikes_sent
n_spikes = 0.0
comm.Barrier(); t0 = time.perf_counter(); c0 = time.process_time()
for b in range(1, n_blocks + 1):
    model.advance(b * B, B, counts, expected)
    n_spikes += counts.sum()
    model.exchange()
comm.Barrier(); wall = time.perf_counter() - t0; cpu = time.process_time() - c0
steps = n_blocks * B
neurons = comm.allreduce(model.n_neurons)
synapses = comm.allreduce(model.n_synapses)
spikes = comm.allreduce(n_spikes)
out = dict(
    ranks=comm.size, dims=list(dec.dims), d_min=B, neurons=neurons, synapses=synapses,
    first_build_s=t_first_build, build_s=t_build, build_cpu_s_rank0=build_cpu,
    connect_s=comm.allreduce(model.build_seconds, op=MPI.MAX),
    connect_cpu_s=comm.allreduce(model.connectivity.build_cpu_seconds),
    synapses_per_s=synapses / comm.allreduce(model.build_seconds, op=MPI.MAX),
    first_block_s=t_first, steps=steps, wall_s=wall, cpu_s_rank0=cpu,
    neuron_steps_per_s=neurons * steps / wall,
    neuron_steps_per_cpu_s=neurons * steps / comm.allreduce(cpu),
    rate_hz=spikes / (neurons * steps * config.run.dt * 1e-3),
    synapse_events_per_s=spikes * synapses / neurons / wall,
    memory_bytes=comm.allreduce(model.memory_bytes()),
    synapse_table_bytes=comm.allreduce(model.connectivity.nbytes),
    spikes_sent_per_exchange=comm.allreduce(model.spikes_sent - spikes0) / n_blocks,
    bytes_sent_per_exchange=comm.allreduce(dec.bytes_sent - sent0) / n_blocks,
)
if comm.rank == 0:
    print(json.dumps(out))
"""


def run_meshfield(config: str, t_sim: float, ranks: int, overrides) -> dict:
    return run_worker(WORKER, config, t_sim, ranks, overrides)


def run_nest(config: str, t_sim: float, overrides) -> dict:
    import meshfield
    from meshfield.peers.nest import time_gif_psc_exp_lattice
    return time_gif_psc_exp_lattice(meshfield.load_config(config, overrides), t_sim)


def build_parser():
    return bench_parser(__doc__, "bench_micro", "out/bench_micro.json", prog=PROG, default_run=DEFAULT_RUN)


def main(argv=None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    cfg = check_bench_args(p, args)
    print(f"bench_micro: lattice {tuple(cfg.lattice.shape)}, types {', '.join(cfg.types)}, "
          f"dt = {cfg.run.dt} ms, timed {args.t_sim} ms", flush=True)
    results = {"command": val.command_line(PROG, argv), "config": args.config, "overrides": args.set,
               "t_sim": args.t_sim, "meshfield": {}}
    for r in args.ranks:
        m = run_meshfield(args.config, args.t_sim, r, args.set)
        results["meshfield"][r] = m
        print(f"meshfield {r} rank(s) {tuple(m['dims'])}: {m['neurons']} neurons, {m['synapses']} synapses "
              f"built in {m['connect_s']:.2f} s wall, {m['connect_cpu_s']:.2f} s CPU "
              f"({m['synapses_per_s']:.3g} synapses/s; first build incl. compilation "
              f"{m['first_build_s']:.2f} s); first block "
              f"(incl. compilation) {m['first_block_s']:.2f} s; {m['steps']} steps in {m['wall_s']:.2f} s wall "
              f"({m['cpu_s_rank0']:.2f} s CPU on rank 0): {m['neuron_steps_per_s']:.3g} neuron-steps/s = "
              f"{m['neuron_steps_per_s'] / r:.3g} per core ({m['neuron_steps_per_cpu_s']:.3g} per CPU second), "
              f"{m['synapse_events_per_s']:.3g} synapse events/s, "
              f"rate {m['rate_hz']:.2f} Hz; {m['synapse_table_bytes'] / m['synapses']:.2f} bytes per synapse "
              f"({m['memory_bytes'] / m['synapses']:.2f} with neuron state and ring buffer); "
              f"{m['spikes_sent_per_exchange']:.0f} spikes, {m['bytes_sent_per_exchange']:.0f} bytes "
              f"sent per exchange", flush=True)
    if len(args.ranks) > 1:
        base = results["meshfield"][args.ranks[0]]["neuron_steps_per_s"]
        for r in args.ranks[1:]:
            s = results["meshfield"][r]["neuron_steps_per_s"] / base
            results.setdefault("speedup", {})[r] = s
            print(f"speedup {args.ranks[0]} -> {r} ranks: {s:.2f}")
    if not args.skip_nest:
        n = run_nest(args.config, args.nest_t_sim or args.t_sim, args.set)
        results["nest"] = n
        rates = ", ".join(f"{k} {v:.2f} Hz" for k, v in n["rates"].items())
        print(f"NEST gif_psc_exp (1 thread): {n['n_synapses']} synapses connected in {n['connect_seconds']:.2f} s "
              f"wall, {n['connect_cpu_seconds']:.2f} s CPU "
              f"({n['synapses_per_second']:.3g} synapses/s); {n['steps']} steps in {n['seconds']:.2f} s wall "
              f"({n['cpu_seconds']:.2f} s CPU): {n['neuron_steps_per_second']:.3g} neuron-steps/s; rates {rates}")
        one = results["meshfield"][args.ranks[0]]
        results["ratio_simulation_per_core"] = one["neuron_steps_per_s"] / args.ranks[0] / n["neuron_steps_per_second"]
        results["ratio_construction"] = one["synapses_per_s"] / n["synapses_per_second"]
        results["ratio_simulation_cpu"] = one["neuron_steps_per_cpu_s"] * n["cpu_seconds"] / (
            n["n_neurons"] * n["steps"])
        results["ratio_construction_cpu"] = n["connect_cpu_seconds"] / one["connect_cpu_s"]
        print(f"ratio meshfield/NEST per core: simulation {results['ratio_simulation_per_core']:.2f}, "
              f"construction {results['ratio_construction']:.2f} (wall time); per CPU second: simulation "
              f"{results['ratio_simulation_cpu']:.2f}, construction {results['ratio_construction_cpu']:.2f}")
    val.write_json(args.json, results)
    print(f"wrote {args.json}")
    return val.EXIT_PASSED


if __name__ == "__main__":
    sys.exit(val.run_main(main, PROG))
