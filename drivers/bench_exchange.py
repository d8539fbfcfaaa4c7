"""Cost of one spike exchange of the microscopic level (`exchange_spikes`).

Runs `exchange_spikes` under ``mpiexec -n RANKS`` on the decomposition of the
micro benchmark (8 x 8 periodic lattice, halo width 3) with synthetic spike
records of its size (326 records of 3 columns per rank and exchange, as
`drivers/bench_micro.py` reports), and prints the wall time per call on rank 0,
with the records sorted (the default of the function) and unsorted (the micro
level's call). The figure includes the MPI messages and any wait for the other
ranks, so run it on an otherwise idle machine.

    python drivers/bench_exchange.py            # 2 ranks
    python drivers/bench_exchange.py --ranks 4
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from _bench import mpiexec, worker_env

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
if d.rank == 0:
    print(json.dumps(out))
"""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--records", type=int, default=326, help="spike records per rank and exchange")
    p.add_argument("--calls", type=int, default=4000)
    args = p.parse_args(argv)
    cmd = [mpiexec(), "-n", str(args.ranks), sys.executable, "-c", WORKER, str(args.records), str(args.calls)]
    run = subprocess.run(cmd, capture_output=True, text=True, env=worker_env(), check=False)
    if run.returncode != 0:
        raise SystemExit(f"bench_exchange: worker failed:\n{run.stderr[-3000:]}")
    res = json.loads(run.stdout.strip().splitlines()[-1])
    print(f"bench_exchange: lattice (8, 8), halo 3, {res['ranks']} rank(s) {tuple(res['dims'])}, "
          f"{res['records_per_rank']} records per rank, {res['calls']} calls")
    for key in ("sorted", "unsorted"):
        r = res[key]
        print(f"  {key:8s}: {r['ms_per_call']:.3f} ms per exchange ({r['received_per_call']:.0f} halo records received)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
