"""Memory and time of the analysis commands: results read whole or in slices.

``meshfield plot``, ``analyze`` and ``compare`` take a result's records from
``Result.records``: up to ``$MESHFIELD_READ_WHOLE_MIB`` MiB (default 1024) they
read A whole, once; above it they read it in slices, so that their memory is set
by the lattice, not by the length of the record. This benchmark measures both
ways on synthetic results: a lattice (``--shape``, default 64 x 64) of the
packaged default's two types, white noise around 10 Hz as A and Abar, for each record length given
(default 4000 and 16 000 records of 1 ms, A of 131 and 524 MB), written by
meshfield's own recorder on each number of ranks given (default 1 and 16: the
slices of a many-rank result read through many block files). Each command runs
in its own process, once reading whole (``MESHFIELD_READ_WHOLE_MIB=1e9``, as the
default does for these results) and once in slices (``MESHFIELD_READ_WHOLE_MIB=0``);
the table gives
its peak resident memory (``ru_maxrss``) and wall time. The results are written
into a temporary folder (``--scratch``, removed at the end), 2 x 4 bytes x types x
sites per record: 1 GB for 16 000 records.

    python drivers/bench_analysis.py                                  # about 8 minutes
    python drivers/bench_analysis.py --records 4000 64000 --ranks 1   # 4 GB of scratch
    python drivers/bench_analysis.py --shape 256 256 --records 2500 --ranks 1

It prints the table and writes ``--json`` (default out/bench_analysis.json).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _validation as val  # noqa: E402
from _bench import mpiexec, prepare_json  # noqa: E402

PROG = "bench_analysis.py"
DEFAULT_RUN = "about 8 minutes on two cores for the default record lengths and rank counts."
DEFAULT_SHAPE = (64, 64)

#: the commands measured, {} standing for the result file
COMMANDS = {
    "plot (overview + PSD)": ["plot", "{}", "-o", "{}.png", "--psd", "{}.psd.png"],
    "analyze": ["analyze", "{}"],
    "compare (with itself)": ["compare", "{}", "{}"],
}

#: the ways of reading: the value of MESHFIELD_READ_WHOLE_MIB (a petabyte: always whole)
MODES = {"whole": "1e9", "slices": "0"}

#: runs one meshfield command and reports its peak memory on the last line of stderr
_MEASURE = ("import resource, sys\n"
            "from meshfield.cli import main\n"
            "status = main(sys.argv[1:])\n"
            "print('peak_kib', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
            "sys.exit(status)\n")

#: writes a synthetic result on every rank of its MPI job: path, records, seed
_WRITE = """
import sys
import numpy as np
from mpi4py import MPI
sys.path.insert(0, sys.argv[4])
import _validation as val
from meshfield.io import Recorder
from meshfield.parallel import Decomposition
path, n_records, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
shape = tuple(int(n) for n in sys.argv[5].split("x"))
config = val.load("default", [f"lattice.shape={list(shape)}", f"run.t_end={float(n_records)}",
                              "record.interval=1.0"])
decomposition = Decomposition(MPI.COMM_WORLD, shape, True, 1)
types = list(config.types)
recorder = Recorder(path, decomposition, types, n_records, 1.0, 0.0, config.to_dict(),
                    dict(level="meso", seed=seed, dt=config.run.dt), overwrite=True)
rng = np.random.default_rng([seed, decomposition.rank])
for first in range(0, n_records, 500):
    k = min(500, n_records - first)
    A = (10.0 + rng.standard_normal((k, len(types)) + tuple(decomposition.local_shape))).astype(np.float32)
    recorder.write(first, A, A)
recorder.close(wall_time=0.0)
"""


def write_result(path: Path, n_records: int, ranks: int, shape: tuple, seed: int = 1) -> int:
    """A result of ``n_records`` records of white noise (10 +- 1 Hz) on the
    default's types over a lattice of ``shape``, written by meshfield's own
    recorder on ``ranks`` ranks; returns the bytes of A."""
    cmd = [mpiexec(), "-n", str(ranks), sys.executable, "-c", _WRITE, str(path), str(n_records), str(seed),
           str(Path(__file__).resolve().parent), "x".join(str(n) for n in shape)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        raise val.DriverError(f"writing the synthetic result on {ranks} ranks failed (status {proc.returncode}): "
                              f"{lines[-1] if lines else 'no output'}")
    return n_records * 2 * shape[0] * shape[1] * 4


def measure(args: list, whole_mib: str) -> dict:
    """Peak memory (MiB) and wall time (s) of ``meshfield ARGS`` in a new
    process, with ``MESHFIELD_READ_WHOLE_MIB=whole_mib``."""
    env = dict(os.environ, MESHFIELD_READ_WHOLE_MIB=whole_mib)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _MEASURE, *args], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    lines = proc.stderr.strip().splitlines()
    peak = [line for line in lines if line.startswith("peak_kib")]
    if proc.returncode not in (0, 1) or not peak:
        said = [line for line in lines if not line.startswith("peak_kib")]
        raise val.DriverError(f"meshfield {' '.join(args)} failed (status {proc.returncode}): "
                              f"{said[-1] if said else 'no output'}")
    return dict(peak_mib=int(peak[-1].split()[1]) / 1024.0, wall_s=wall)


def table(rows: list) -> str:
    lines = ["| records (A) | ranks | read | " + " | ".join(COMMANDS) + " |",
             "|---|---|---|" + "---|" * len(COMMANDS)]
    for r in rows:
        cells = [f"{r[name]['peak_mib']:.0f} MiB, {r[name]['wall_s']:.1f} s" for name in COMMANDS]
        lines.append(f"| {r['records']} ({r['A_bytes'] / 1e6:.0f} MB) | {r['ranks']} | {r['read']} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


#: argparse type of --records: whole, at least 2500 (compare's 500 ms discard and two 1-s PSD segments)
RECORDS = val._at_least(val._whole, 2500, False,
                        "argparse type: a record length, an integer >= 2500 (compare discards 500 ms "
                        "and needs two PSD segments of 1 s).")
RANKS = val._at_least(val._whole, 1, False, "argparse type: a number of ranks, an integer >= 1.")
SIDE = val._at_least(val._whole, 2, False, "argparse type: a lattice side, an integer >= 2.")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=val.HelpFormatter,
        epilog=val.epilog("--json (default out/bench_analysis.json): the table's numbers and the command, "
                          "as JSON; an existing file is replaced (a warning says so).", DEFAULT_RUN,
                          val.BENCH_EXIT_STATUS))
    p.add_argument("--records", nargs="+", type=RECORDS, default=[4000, 16000], metavar="N",
                   help="record lengths (records of 1 ms) to measure (>= 2500; default 4000 16000)")
    p.add_argument("--ranks", nargs="+", type=RANKS, default=[1, 16], metavar="R",
                   help="numbers of ranks that write each result (default 1 16; more ranks than cores "
                        "oversubscribe, which only slows the writing)")
    p.add_argument("--shape", nargs=2, type=SIDE, default=list(DEFAULT_SHAPE), metavar=("NX", "NY"),
                   help="the lattice of the synthetic results (default 64 64)")
    p.add_argument("--scratch", type=Path, default=None, metavar="DIR",
                   help="folder for the temporary results (default: the system's temporary folder)")
    p.add_argument("--json", type=Path, default=Path("out") / "bench_analysis.json", metavar="FILE",
                   help="where the JSON goes; its folder is created if missing (default out/bench_analysis.json)")
    return p


def main(argv=None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    val.refuse_duplicates(p, "--records", args.records)
    val.refuse_duplicates(p, "--ranks", args.ranks)
    if args.scratch is not None and not args.scratch.is_dir():
        p.error(f"--scratch {args.scratch}: not an existing folder")
    prepare_json(p, args.json)
    rows = []
    with tempfile.TemporaryDirectory(dir=args.scratch, prefix="bench_analysis-") as folder:
        for n in args.records:
            for ranks in args.ranks:
                path = Path(folder) / f"r{n}_{ranks}.h5"
                A_bytes = write_result(path, n, ranks, tuple(args.shape))
                for mode, whole_mib in MODES.items():
                    row = dict(records=n, ranks=ranks, read=mode, A_bytes=A_bytes)
                    for name, template in COMMANDS.items():
                        row[name] = measure([part.replace("{}", str(path)) for part in template], whole_mib)
                        print(f"[analysis] {n} records, {ranks} ranks, {mode}, {name}: "
                              f"{row[name]['peak_mib']:.0f} MiB, {row[name]['wall_s']:.1f} s", flush=True)
                    rows.append(row)
                os.remove(path)
                shutil.rmtree(f"{path}.blocks")
    print()
    print(table(rows))
    val.write_json(args.json, dict(command=val.command_line(PROG, argv), shape=list(args.shape), rows=rows))
    print(f"wrote {args.json}")
    return val.EXIT_PASSED


if __name__ == "__main__":
    sys.exit(val.run_main(main, PROG))
