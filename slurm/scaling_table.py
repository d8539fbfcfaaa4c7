#!/usr/bin/env python3
"""Scaling study table: wall times of meshfield results per rank count.

Two uses (slurm/scaling.sbatch does the first after every run)::

    python slurm/scaling_table.py --record strong scaling.csv strong-R4.h5 [...]
    python slurm/scaling_table.py scaling.csv [--time loop]

``--record MODE`` appends one CSV row per result, read from the result's
metadata with :func:`meshfield.open_result`; without it the CSV is printed as a
table grouped by mode ("strong", "weak", ...).

Efficiency is the per-rank throughput (site updates per second and rank)
relative to the row with the fewest ranks of the same mode::

    E(R) = [sites * steps / (T * R)] / [sites0 * steps0 / (T0 * R0)]

which is T0 R0 / (T R) for strong scaling (fixed lattice) and T0 / T for weak
scaling (fixed sites per rank), when the runs have as many steps. ``steps`` are
the steps the result's run simulated: its records times the steps per record
(``meta["n_records"] * record_interval / dt``). That is not ``round(t_end /
dt)``: a run restarted from a checkpoint ran from the checkpoint's time on, and a
``t_end`` that is not a whole number of record intervals is cut down to one.
``--time wall`` uses ``meta["wall_time"]`` (s, the time loop, maximum over ranks,
including the first block, i.e. numba compilation or cache loading); ``--time
loop`` subtracts ``first_block_seconds`` from it, and ``first_block_steps`` from
the steps (a result written before meshfield stored ``first_block_steps`` is
counted with all its steps).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
from pathlib import Path

COLUMNS = ("mode", "ranks", "dims", "sites", "steps", "wall_time", "first_block_seconds",
           "first_block_steps", "result")


def run_steps(res) -> int:
    """The number of time steps the run of an open result simulated.

    Every record of a result covers ``record_interval / dt`` steps, and a run
    ends at a whole record, so the steps are ``n_records`` (``meta``) times that:
    from the checkpoint's step on for a run started with ``--restart`` (``meta["t0"]``
    is its time), and ``round(t_end / dt)`` cut down to whole record intervals.
    """
    per_record = round(res.record_interval / res.dt)
    return int(res.meta["n_records"]) * per_record


def result_row(mode: str, path: str) -> dict:
    """Return the CSV row of one result.

    Parameters
    ----------
    mode : str
        Label of the series ("strong", "weak"); rows are grouped by it.
    path : str
        Master file of a meshfield result.

    Returns
    -------
    dict
        Values for :data:`COLUMNS`; ``dims`` as ``"4x2"``, ``steps`` the steps
        the run simulated (:func:`run_steps`), ``wall_time`` and
        ``first_block_seconds`` in s, ``first_block_steps`` the steps of the first
        block (the last two empty when the result lacks them).
    """
    import meshfield

    with meshfield.open_result(path) as res:
        meta = res.meta
        return {
            "mode": mode,
            "ranks": int(meta["ranks"]),
            "dims": "x".join(str(int(d)) for d in meta["dims"]),
            "sites": math.prod(int(n) for n in res.shape),
            "steps": run_steps(res),
            "wall_time": float(meta["wall_time"]),
            "first_block_seconds": meta.get("first_block_seconds", ""),
            "first_block_steps": meta.get("first_block_steps", ""),
            "result": str(path),
        }


def append_rows(csv_path: str, rows: list[dict]) -> None:
    """Append ``rows`` to ``csv_path``, writing the header if the file is new or empty.

    A file with another header (one written before a column was added) gets the
    rows in its own columns, without those it lacks.
    """
    path = Path(csv_path)
    new = not path.exists() or path.stat().st_size == 0
    columns = COLUMNS
    if not new:
        with path.open(newline="") as f:
            columns = next(csv.reader(f), None) or COLUMNS
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerows(rows)


def read_rows(csv_path: str) -> list[dict]:
    """Read a scaling CSV; raise ValueError naming the file if a column is missing."""
    with open(csv_path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in ("mode", "ranks", "sites", "steps", "wall_time")
                   if c not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(f"{csv_path}: missing column(s) {', '.join(missing)}; "
                             f"expected the header {','.join(COLUMNS)}")
        return list(reader)


def _seconds(row: dict, which: str) -> float:
    wall = float(row["wall_time"])
    if which == "wall":
        return wall
    first = row.get("first_block_seconds")
    return wall - float(first) if first not in (None, "") else math.nan


def _steps(row: dict, which: str) -> int:
    """The steps run in the time :func:`_seconds` gives: all of them, or those after
    the first block (all of them when the row does not know the first block's)."""
    steps = int(row["steps"])
    first = row.get("first_block_steps")
    return steps - int(first) if which == "loop" and first not in (None, "") else steps


def format_table(rows: list[dict], which: str = "wall") -> str:
    """Return the scaling table as text.

    Parameters
    ----------
    rows : list of dict
        CSV rows (see :data:`COLUMNS`); values may be strings.
    which : {"wall", "loop"}
        Time the efficiency is based on: the whole time loop, or the loop
        without its first block.

    Returns
    -------
    str
        One line per row, grouped by mode and sorted by rank count, with the
        columns mode, ranks, dims, sites, sites/rank, wall (s), loop (s) and
        efficiency (1.0 for the smallest rank count of each mode).
    """
    lines = [f"{'mode':<8} {'ranks':>6} {'dims':>7} {'sites':>9} {'sites/rank':>10} "
             f"{'wall s':>9} {'loop s':>9} {'efficiency':>10}"]
    modes = list(dict.fromkeys(r["mode"] for r in rows))
    for mode in modes:
        series = sorted((r for r in rows if r["mode"] == mode), key=lambda r: int(r["ranks"]))
        base = None
        for r in series:
            ranks, sites, steps = int(r["ranks"]), int(r["sites"]), _steps(r, which)
            t = _seconds(r, which)
            throughput = sites * steps / (t * ranks) if t > 0 else math.nan
            if base is None:
                base = throughput
            eff = throughput / base if base and base > 0 else math.nan
            loop = _seconds(r, "loop")
            lines.append(f"{mode:<8} {ranks:>6} {r.get('dims', ''):>7} {sites:>9} "
                         f"{sites / ranks:>10.1f} {float(r['wall_time']):>9.2f} "
                         f"{loop:>9.2f} {eff:>10.2f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("csv", help="scaling CSV (read, or appended to with --record)")
    p.add_argument("results", nargs="*", help="with --record: result files (OUT.h5)")
    p.add_argument("--record", metavar="MODE", help="append rows for RESULTS under this mode label")
    p.add_argument("--time", choices=("wall", "loop"), default="wall",
                   help="time for the efficiency: wall (default) or loop (without the first block)")
    args = p.parse_args(argv)
    if args.record:
        if not args.results:
            p.error("--record needs at least one result file")
        try:
            rows = [result_row(args.record, r) for r in args.results]
        except (OSError, ValueError) as exc:
            print(f"scaling_table: {exc}", file=sys.stderr)
            return 2
        append_rows(args.csv, rows)
        return 0
    if args.results:
        p.error("result files are only accepted with --record MODE")
    try:
        rows = read_rows(args.csv)
    except (OSError, ValueError) as exc:
        print(f"scaling_table: {exc}", file=sys.stderr)
        return 2
    if not rows:
        print(f"scaling_table: {args.csv} has no rows", file=sys.stderr)
        return 2
    try:
        print(format_table(rows, args.time))
        sys.stdout.flush()
    except BrokenPipeError:  # `scaling_table.py out.csv | head`: the reader left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
