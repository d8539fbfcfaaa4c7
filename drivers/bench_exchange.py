"""Cost of one spike exchange of the microscopic level (`exchange_spikes`).

Runs `exchange_spikes` under ``mpiexec -n RANKS`` on the decomposition of the
micro benchmark (8 x 8 periodic lattice, halo width 3) with synthetic spike
records of its size (326 records of 3 columns per rank and exchange, as
`drivers/bench_micro.py` reports), and prints the wall time per call on rank 0,
with the records sorted (the default of the function) and unsorted (the micro
level's call). The figure includes the MPI messages and any wait for the other
ranks, so run it on an otherwise idle machine. It also prints the cost of the
time loop's vote on Ctrl-C and SIGTERM (`meshfield.parallel.StopOnSignal`),
timed at every block. It prints its figures and writes no file (docs/micro.md
and docs/parallel.md quote them).

    python drivers/bench_exchange.py            # 2 ranks, about 10 seconds
    python drivers/bench_exchange.py --ranks 4
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _validation as val  # noqa: E402
from _bench import WorkerError, last_line, mpiexec, worker_env  # noqa: E402

PROG = "bench_exchange.py"

WORKER = r"""
import json, sys, time
import numpy as np
from mpi4py import MPI
from meshfield.parallel import Decomposition, exchange_spikes

shape, halo, n_records, calls = (8, 8), 3, int(sys.argv[1]), int(sys.argv[2])
d = Decomposition(MPI.COMM_WORLD, shape, True, halo)
rng = np.random.default_rng(d.rank)
sites = d.global_site_index().ravel()
batches = []
for _ in range(64):
    site = rng.choice(sites, n_records)
    batches.append(np.stack([site, rng.integers(0, 500, n_records), rng.integers(0, 2, n_records)],
                            axis=1).astype(np.int64))
out = {"ranks": d.size, "dims": list(d.dims), "records_per_rank": n_records, "calls": calls}
for sort in (True, False):
    for batch in batches[:4]:
        exchange_spikes(d, batch, sort=sort)  # compilation, first messages
    d.comm.Barrier()
    t0 = time.perf_counter()
    received = 0
    for k in range(calls):
        received += len(exchange_spikes(d, batches[k % len(batches)], sort=sort)[0])
    elapsed = d.comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
    out["sorted" if sort else "unsorted"] = {"ms_per_call": 1e3 * elapsed / calls,
                                             "received_per_call": received / calls}
# the stop vote of the time loop (meshfield/parallel/stop.py), here at every block
from meshfield.parallel import StopOnSignal
with StopOnSignal(d.comm, interval_s=0.0) as stop:
    for _ in range(100):
        stop.poll()
    d.comm.Barrier()
    t0 = time.perf_counter()
    for _ in range(calls):
        stop.poll()
    elapsed = d.comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
out["vote_us"] = 1e6 * elapsed / calls
if d.rank == 0:
    print(json.dumps(out))
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=val.HelpFormatter,
        epilog=val.epilog("nothing; the figures are printed.",
                          "about 10 seconds on 2 ranks (2 x 4000 exchanges of about 1 ms or less, plus "
                          "start-up and compilation; docs/micro.md).", val.BENCH_EXIT_STATUS))
    p.add_argument("--ranks", type=val.positive_int, default=2, metavar="N",
                   help="MPI ranks, >= 1 (default 2: process grid (2, 1); 4 gives (2, 2))")
    p.add_argument("--records", type=val.positive_int, default=326, metavar="N",
                   help="spike records per rank and exchange, >= 1 (default 326, as bench_micro.py reports)")
    p.add_argument("--calls", type=val.positive_int, default=4000, metavar="N",
                   help="timed exchanges per variant (sorted, unsorted), >= 1 (default 4000)")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    cmd = [mpiexec(), "-n", str(args.ranks), sys.executable, "-c", WORKER, str(args.records), str(args.calls)]
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, env=worker_env(), check=False)
    except OSError as exc:
        raise WorkerError(f"cannot start {cmd[0]}: {exc.strerror or exc}") from None
    if run.returncode != 0:
        raise WorkerError(f"worker failed on {args.ranks} rank(s) (exit status {run.returncode}): "
                          f"{last_line(run.stderr)}\n{run.stderr[-3000:]}")
    res = json.loads(run.stdout.strip().splitlines()[-1])
    print(f"bench_exchange: lattice (8, 8), halo 3, {res['ranks']} rank(s) {tuple(res['dims'])}, "
          f"{res['records_per_rank']} records per rank, {res['calls']} calls")
    for key in ("sorted", "unsorted"):
        r = res[key]
        print(f"  {key:8s}: {r['ms_per_call']:.3f} ms per exchange ({r['received_per_call']:.0f} halo records received)")
    print(f"  stop vote: {res['vote_us']:.1f} µs per vote (the time loop's vote on Ctrl-C and SIGTERM, "
          "docs/parallel.md; a vote at every block here)")
    return val.EXIT_PASSED


if __name__ == "__main__":
    sys.exit(val.run_main(main, PROG))
