"""Shared plumbing of the benchmark drivers (bench_meso.py, bench_micro.py); the
MPI subprocess helpers also serve bench_exchange.py and v6_numerics.py.

Each benchmark times meshfield in ``mpiexec`` subprocesses (one numba thread per
rank, so ranks x threads never exceeds the cores) and NEST in the driver's own
process (through :mod:`meshfield.peers.nest`, which isolates NEST in a subprocess).
The command-line conventions (checks before any run, one-line errors, exit
status, output written through a temporary file) are those of ``_validation``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _validation as val  # noqa: E402


class WorkerError(val.DriverError):
    """An MPI worker subprocess failed (reported as one error, exit status 2)."""


def bench_parser(description: str, config: str, json_path: str, *, prog: str, default_run: str,
                 writes: str | None = None) -> argparse.ArgumentParser:
    """The command line both benchmarks share."""
    writes = writes or (f"--json (default {json_path}): the numbers printed, as JSON; an existing "
                        "file is replaced (a warning says so).")
    p = argparse.ArgumentParser(prog=prog, description=description, formatter_class=val.HelpFormatter,
                                epilog=val.epilog(writes, default_run, val.BENCH_EXIT_STATUS))
    p.add_argument("--config", default=config,
                   help=f"TOML file or packaged configuration name (default {config})")
    p.add_argument("--t-sim", type=val.positive, default=200.0, metavar="MS",
                   help="timed biological time, ms (> 0; default 200)")
    p.add_argument("--nest-t-sim", type=val.positive, default=None, metavar="MS",
                   help="timed biological time for NEST, ms (> 0; default: --t-sim)")
    p.add_argument("--ranks", type=val.positive_int, nargs="+", default=[1, 2], metavar="N",
                   help="MPI rank counts of the meshfield runs, each >= 1, no repeats; speedups are "
                        "relative to the first (default 1 2)")
    p.add_argument("--skip-nest", action="store_true",
                   help="time meshfield only, not NEST (default: NEST is timed when installed)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="configuration override, repeatable (default: none)")
    p.add_argument("--json", type=Path, default=Path(json_path), metavar="FILE",
                   help=f"where the JSON of the numbers goes; its folder is created if missing "
                        f"(default {json_path})")
    return p


def check_bench_args(p: argparse.ArgumentParser, args):
    """Checks of the shared options before any run; returns the loaded configuration."""
    val.refuse_duplicates(p, "--ranks", args.ranks)
    cfg = val.check_config(p, args.config, args.set)
    prepare_json(p, args.json)
    return cfg


def prepare_json(p: argparse.ArgumentParser, path: Path) -> None:
    """Check at startup that ``--json`` can be written (folder created if missing)."""
    path = Path(path)
    if path.is_dir():
        p.error(f"argument --json: {path} is a folder; give a file name such as {path / 'bench.json'}")
    val.prepare_out(p, path.parent, [path.name], option="--json")


def mpiexec() -> str:
    """The environment's ``mpiexec`` (beside the Python, from the mpich wheel), else the one on PATH."""
    beside = Path(sys.executable).with_name("mpiexec")
    return str(beside) if beside.exists() else "mpiexec"


def worker_env(threads: int = 1) -> dict:
    """The environment of an MPI subprocess: ``threads`` numba threads per rank, so that
    ranks x threads does not exceed the cores."""
    return dict(os.environ, NUMBA_NUM_THREADS=str(threads), OMP_NUM_THREADS="1")


def last_line(text: str) -> str:
    """The last non-empty line of a worker's stderr (its error message), else a note."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else "no message on stderr"


def run_worker(worker_source: str, config: str, t_sim: float, ranks: int, overrides) -> dict:
    """Run ``worker_source`` (Python code printing one JSON line on rank 0) under
    ``mpiexec -n ranks`` with arguments ``config t_sim *overrides``; return the JSON.

    Raises
    ------
    WorkerError
        When the subprocess fails or prints no JSON (with the end of its stderr).
    """
    cmd = [mpiexec(), "-n", str(ranks), sys.executable, "-c", worker_source, config, str(t_sim), *overrides]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, env=worker_env(), check=False)
    except OSError as exc:
        raise WorkerError(f"cannot start {cmd[0]}: {exc.strerror or exc}") from None
    if out.returncode != 0:
        raise WorkerError(f"meshfield worker failed on {ranks} rank(s) (exit status {out.returncode}): "
                          f"{last_line(out.stderr)}\n{out.stderr[-3000:]}")
    try:
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise WorkerError(f"meshfield worker on {ranks} rank(s) printed no result: "
                          f"{last_line(out.stderr)}") from None
