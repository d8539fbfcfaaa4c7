"""compare_results on two independent samples of the same process: false-failure rate per row and per whole
comparison. K replica pairs per call: the types E0, I0, E1, I1, ... of one pair of records (every row is per type,
so the comparisons of different replicas do not mix); a comparison fails when any row of its two types fails."""
import sys
from collections import defaultdict
from types import SimpleNamespace
import numpy as np
from common import ar1
from meshfield.analysis import compare_results

n_calls = int(sys.argv[1]) if len(sys.argv) > 1 else 30
K = 10
rng = np.random.default_rng(7)
dt, tau, discard = 1.0, 10.0, 500.0


def result(n_time, shape):
    x = ar1(rng, n_time, (2 * K,) + shape, tau)
    if len(shape) == 2:
        x = x + sum(np.roll(x, s, axis=a) for a in (2, 3) for s in (1, -1))
    means = np.tile([10.0, 20.0], K).reshape((1, 2 * K) + (1,) * len(shape))
    A = means + x
    types = [f"{t}{k}" for k in range(K) for t in "EI"]
    return SimpleNamespace(A=A, Abar=A, times=np.arange(1, n_time + 1) * dt, types=types, record_interval=dt,
                           shape=shape, config={"lattice": {"shape": list(shape), "dx": 0.1, "boundary": "periodic"}})


for label, seconds, shape, n_blocks in (("4x4 lattice, 20 s, 20 blocks (block 100 tau)", 20, (4, 4), 20),
                                        ("4x4 lattice, 4 s, 20 blocks (block 20 tau)", 4, (4, 4), 20),
                                        ("one site, 20 s", 20, (1,), 20),
                                        ("one site, 2.5 s (2 PSD segments), 20 blocks (block 10 tau)", 2.5, (1,), 20),
                                        ("one site, 10 s", 10, (1,), 20)):
    n_time = int((seconds * 1000 + discard) / dt)
    fails = defaultdict(int)
    counts = defaultdict(int)
    whole = []
    for c in range(n_calls):
        rep = compare_results(result(n_time, shape), result(n_time, shape), discard=discard, n_blocks=n_blocks)
        failed = np.zeros(K, dtype=bool)
        for row in rep.rows:
            k = int(row.type[1:])
            key = row.quantity if not row.quantity.startswith("psd") else "psd band " + row.quantity.split()[1]
            counts[(key, row.type[0])] += 1
            if not row.passed:
                fails[(key, row.type[0])] += 1
                failed[k] = True
        whole.extend(failed)
    n_rows = len(rep.rows) // K
    print(f"--- {label}: {len(whole)} comparisons of {n_rows} rows; whole comparison fails {np.mean(whole):.3f}"
          f" ± {np.sqrt(np.mean(whole) * (1 - np.mean(whole)) / len(whole)):.3f}")
    print("    " + ", ".join(f"{q} {t}: {fails[(q, t)] / counts[(q, t)]:.3f}" for (q, t) in counts))
