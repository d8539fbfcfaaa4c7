"""Shared plumbing of the benchmark drivers (bench_meso.py, bench_micro.py); the
MPI subprocess helpers also serve v6_numerics.py.

Each benchmark times meshfield in ``mpiexec`` subprocesses (one numba thread per
rank, so ranks x threads never exceeds the cores) and NEST in the driver's own
process (through :mod:`meshfield.peers.nest`, which isolates NEST in a subprocess).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path


def bench_parser(description: str, config: str, json_path: str) -> argparse.ArgumentParser:
    """The command line both benchmarks share."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--config", default=config, help="TOML file or packaged name")
    p.add_argument("--t-sim", type=float, default=200.0, help="timed biological time (ms)")
    p.add_argument("--nest-t-sim", type=float, default=None, help="timed time for NEST (default: --t-sim)")
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    p.add_argument("--skip-nest", action="store_true")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--json", default=json_path)
    return p


def mpiexec() -> str:
    """The environment's ``mpiexec`` (beside the Python, from the mpich wheel), else the one on PATH."""
    beside = Path(sys.executable).with_name("mpiexec")
    return str(beside) if beside.exists() else "mpiexec"


def worker_env(threads: int = 1) -> dict:
    """The environment of an MPI subprocess: ``threads`` numba threads per rank, so that
    ranks x threads does not exceed the cores."""
    return dict(os.environ, NUMBA_NUM_THREADS=str(threads), OMP_NUM_THREADS="1")


def run_worker(worker_source: str, config: str, t_sim: float, ranks: int, overrides) -> dict:
    """Run ``worker_source`` (Python code printing one JSON line on rank 0) under
    ``mpiexec -n ranks`` with arguments ``config t_sim *overrides``; return the JSON."""
    cmd = [mpiexec(), "-n", str(ranks), sys.executable, "-c", worker_source, config, str(t_sim), *overrides]
    out = subprocess.run(cmd, capture_output=True, text=True, env=worker_env(), check=False)
    if out.returncode != 0:
        raise SystemExit(f"meshfield worker failed on {ranks} rank(s):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
