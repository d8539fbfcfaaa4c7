"""Validation study V6 (docs/validation.md): numerics.

Part 1, convergence as dt -> 0 (0.5, 0.25, 0.1 ms). Both levels follow the
step conventions of docs/model.md: the mesoscopic firing probability uses the
trapezoidal rule, the microscopic one the hazard at the end of the step. Both
converge to the continuous-time renewal theory with errors of first order in
dt, with different constants. Measured:

* the mean-field (N -> infinity) mesoscopic rate of the two V1 populations
  (``v1_single.toml``) and of the V3 E/I network on one site (``v3_field.toml``
  with delta kernels) against the continuous theory, and against the exact
  discrete-time theory at the same dt (which it must match to round-off); the
  error is split into the time-step part (first order in dt) and the part of
  the finite history window K (independent of dt);
* the finite-size (N = 500) mesoscopic and microscopic mean rates of the V1
  populations with batch-means standard errors, against the continuous theory
  and against each other; for the adapting type the two levels converge to
  different limits (the quasi-renewal approximation, see V1).

The observed order between two step sizes is ``log(e1/e2) / log(dt1/dt2)``.

Part 2, bitwise identity across rank counts: a small field
(``v3_field.toml`` on a 9 x 7 lattice, 200 ms, both levels) is run by
``mpiexec -n 1``, ``-n 2`` and ``-n 3`` subprocesses, and on one rank with 2
numba threads; the records A and Abar must be bitwise identical to the 1-rank
run.

Part 3, bitwise identity across restarts: the same field, both levels, through
the command line as a user (or slurm/chain.sbatch) runs it: 0 -> 200 ms on one
rank; 0 -> 75 ms on 2 ranks writing a checkpoint, 75 -> 130 ms restarted on 3
ranks writing the next, 130 -> 200 ms restarted on 1 rank. The three segments'
records, joined along their time axes, must equal the uninterrupted run bit for
bit.

Cost: about 3 minutes on one core (the run in docs/validation_v1356.md took
3 min 5 s; the dt = 0.1 ms runs and the MPI subprocesses of parts 2 and 3
dominate). ``--skip-ranks`` leaves out parts 2 and 3.

A failed MPI worker (parts 2 and 3) is reported as ``ERROR (worker failed:
...)``, not as a difference, and makes the exit status 2.

Outputs in ``--out`` (default out/v6/): ``v6.json`` and ``v6_convergence.png``.

Usage::

    python drivers/v6_numerics.py                         # out/v6/
    python drivers/v6_numerics.py --t-sim 5000 --skip-ranks
"""

from __future__ import annotations

import hashlib
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

if __name__ == "__main__":
    # one numba thread unless the user chose (see _validation); before numba starts
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _validation as val  # noqa: E402
from _bench import last_line, mpiexec, worker_env  # noqa: E402
from meshfield.meso import history_length  # noqa: E402
from meshfield.theory import stationary_rate, stationary_rate_discrete, stationary_rates_network  # noqa: E402

DTS = (0.5, 0.25, 0.1)
SINGLE = "v1_single"
NETWORK = "v3_field"
PROG = "v6_numerics.py"

#: Every file the study writes into --out.
OWNED = ("v6.json", "v6_convergence.png")

#: Batch-means blocks of the finite-size means (each needs at least one record).
N_BLOCKS = 20

#: The mean-field run must reproduce the discrete theory at its dt to this relative accuracy.
MEAN_FIELD_RELATIVE = 1e-6

#: Runs of part 2: lattice, duration and the rank counts.
RANK_SHAPE = (9, 7)
RANK_T_END = 200.0
RANKS = (1, 2, 3)

#: Part 3: the segments (end time in ms, ranks) of the restarted run.
SEGMENTS = ((75.0, 2), (130.0, 3), (RANK_T_END, 1))

WORKER = r"""
import sys
import numpy as np
from mpi4py import MPI
import meshfield
config = meshfield.load_config(sys.argv[1], sys.argv[3:])
result = meshfield.run(config, comm=MPI.COMM_WORLD)
if MPI.COMM_WORLD.rank == 0:
    np.savez(sys.argv[2], A=result.A, Abar=result.Abar, dims=np.array(result.meta["dims"]))
"""


def network_on_one_site(name: str = NETWORK) -> dict:
    """The E/I network of ``name`` on a single site: delta kernels, the coupling's d0 as delay."""
    d = val.load(name).to_dict()
    d["lattice"]["shape"] = [1]
    for c in d["couplings"]:
        c["kernel"] = {"shape": "delta"}
        c["delay"] = {"d0": c["delay"]["d0"]}
    return d


def _coupling_matrices(config) -> tuple[np.ndarray, np.ndarray]:
    T = len(config.types)
    index = {name: i for i, name in enumerate(config.types)}
    J, C = np.zeros((T, T)), np.zeros((T, T))
    for c in config.couplings:
        J[index[c.target], index[c.source]] = c.J
        C[index[c.target], index[c.source]] = c.C
    return J, C


def theory(config, dt: float | None, hazard_rule: str = "trapezoid", truncated: bool = True) -> np.ndarray:
    """Stationary rate per type (Hz): continuous (``dt=None``) or discrete at ``dt``.

    The discrete trapezoid theory uses the engine's history length K at ``dt``
    (``truncated``), or no window at all (``truncated=False``: the free pool
    only holds neurons whose hazard has converged), which separates the
    error of the window from that of the time step.
    """
    def window(p):
        return history_length(p, dt) if hazard_rule == "trapezoid" and truncated else None

    if not config.couplings:
        if dt is None:
            return np.array([stationary_rate(p) for p in config.populations])
        return np.array([stationary_rate_discrete(p, dt, K=window(p), hazard_rule=hazard_rule)
                         for p in config.populations])
    J, C = _coupling_matrices(config)
    if dt is None:
        return stationary_rates_network(config.populations, J, C).rates
    return stationary_rates_network(config.populations, J, C, dt=dt, K=[window(p) for p in config.populations],
                                    hazard_rule=hazard_rule).rates


def observed_order(dts, errors) -> list:
    """Observed convergence order between consecutive step sizes (NaN where an error is 0)."""
    out = []
    for (d1, e1), (d2, e2) in zip(zip(dts, errors), zip(dts[1:], errors[1:])):
        out.append(math.log(abs(e1) / abs(e2)) / math.log(d1 / d2) if e1 and e2 else float("nan"))
    return out


def mean_field_convergence(source, dts, t_end: float = 3000.0, window: float = 1000.0) -> dict:
    """Mean-field rate per type at every dt against the continuous and the discrete theory.

    The error against the continuous theory has two parts: the time step
    (discrete theory without a history window vs continuous; first order in
    dt) and the history window K (discrete theory with the engine's K vs
    without; it does not vanish with dt because K dt is fixed by tau_m, t_ref
    and the adaptation kernel).
    """
    base = val.load(source)
    continuous = theory(base, None)
    rows = []
    for dt in dts:
        cfg = val.load(base, [f"run.dt={dt}", "run.mean_field=true", f"run.t_end={t_end}"])
        result, timing = val.timed_run(cfg)
        tail = np.asarray(result.A[-int(round(window / result.record_interval)):], dtype=np.float64)
        rate = tail.reshape(tail.shape[0], tail.shape[1], -1).mean(axis=(0, 2))
        discrete = theory(cfg, dt)
        untruncated = theory(cfg, dt, truncated=False)
        rows.append(dict(dt=dt, rate=rate, discrete=discrete, discrete_untruncated=untruncated,
                         continuous=continuous, error_vs_continuous=rate / continuous - 1.0,
                         error_vs_discrete=rate / discrete - 1.0,
                         step_error=untruncated / continuous - 1.0, window_error=discrete / untruncated - 1.0,
                         passed_discrete=bool(np.all(np.abs(rate / discrete - 1.0) <= MEAN_FIELD_RELATIVE)),
                         wall_s=timing["wall_s"]))
    errors = np.array([r["error_vs_continuous"] for r in rows])
    step = np.array([r["step_error"] for r in rows])
    return dict(types=list(base.types), rows=rows,
                order=[observed_order(list(dts), list(errors[:, t])) for t in range(errors.shape[1])],
                step_order=[observed_order(list(dts), list(step[:, t])) for t in range(step.shape[1])])


def finite_size_convergence(source, dts, t_sim: float, discard: float, seed: int) -> dict:
    """Finite-size meso and micro mean rates per type at every dt, with SEs, against the theory."""
    base = val.load(source, [f"run.t_end={discard + t_sim}", f"run.seed={seed}"])
    continuous = theory(base, None)
    rows = []
    for dt in dts:
        cfg = val.load(base, [f"run.dt={dt}"])
        row = dict(dt=dt, continuous=continuous, theory_trapezoid=theory(cfg, dt),
                   theory_endpoint=theory(cfg, dt, "endpoint"))
        for level in ("micro", "meso"):
            result, timing = val.timed_run(cfg, [f"run.level={level}"])
            mean, se = val.mean_se(result, discard=discard)
            row[level] = dict(mean=mean, se=se, error_vs_continuous=mean / continuous - 1.0,
                              cpu_s=timing["cpu_s"])
        diff = row["meso"]["mean"] - row["micro"]["mean"]
        row["meso_minus_micro"] = diff
        row["meso_minus_micro_se"] = np.hypot(row["meso"]["se"], row["micro"]["se"])
        row["predicted_meso_minus_micro"] = row["theory_trapezoid"] - row["theory_endpoint"]
        rows.append(row)
    return dict(types=list(base.types), t_sim_ms=t_sim, discard_ms=discard, seed=seed, rows=rows)


def _digest(arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def rank_invariance(source: str = NETWORK, ranks=RANKS, shape=RANK_SHAPE, t_end: float = RANK_T_END) -> dict:
    """Bitwise comparison of A and Abar across rank counts (and 2 numba threads on 1 rank), both levels."""
    path = val.config_path(source)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for level in ("meso", "micro"):
            overrides = [f"run.level={level}", f"run.t_end={t_end}", f"lattice.shape=[{shape[0]}, {shape[1]}]"]
            runs = [(f"{n} rank(s)", n, "1") for n in ranks] + [("1 rank, 2 threads", 1, "2")]
            entries = []
            for label, n, threads in runs:
                target = Path(tmp) / f"{level}_{n}_{threads}.npz"
                proc = subprocess.run([mpiexec(), "-n", str(n), sys.executable, "-c", WORKER, path, str(target),
                                       *overrides], capture_output=True, text=True,
                                      env=worker_env(int(threads)), check=False)
                if proc.returncode != 0:
                    entries.append(dict(run=label, ranks=n, threads=int(threads), error=proc.stderr[-2000:]))
                    continue
                with np.load(target) as z:
                    entries.append(dict(run=label, ranks=n, threads=int(threads), dims=z["dims"].tolist(),
                                        A=z["A"], Abar=z["Abar"]))
            # A failed worker is an error, not a difference: identical is None for it,
            # and for every run when the 1-rank reference itself failed.
            reference = None if "error" in entries[0] else entries[0]
            for e in entries:
                if "error" in e:
                    e["identical"] = None
                    continue
                e["identical"] = None if reference is None else bool(
                    np.array_equal(e["A"], reference["A"]) and np.array_equal(e["Abar"], reference["Abar"]))
                e["digest"] = _digest((e["A"], e["Abar"]))
                e["mean_rate"] = e["A"].mean(axis=(0, 2, 3))
            out[level] = [{k: v for k, v in e.items() if k not in ("A", "Abar")} for e in entries]
    every = [e for entries in out.values() for e in entries]
    return dict(config=path, shape=list(shape), t_end_ms=t_end, levels=out,
                worker_errors=sum("error" in e for e in every), passed=_verdict(e["identical"] for e in every))


def _verdict(identical) -> bool | None:
    """False when any comparison differs, None when none differs but some could not be
    made (a worker failed), True when every one was made and is identical."""
    identical = list(identical)
    if any(v is False for v in identical):
        return False
    return None if any(v is None for v in identical) else True


def restart_invariance(source: str = NETWORK, shape=RANK_SHAPE, segments=SEGMENTS) -> dict:
    """Bitwise comparison of a run continued through checkpoints on changing rank
    counts with the uninterrupted 1-rank run, both levels, via ``meshfield run``."""
    path = val.config_path(source)
    t_end = segments[-1][0]
    out = {}

    def meshfield_run(n, level, end, output, *extra):
        command = [mpiexec(), "-n", str(n), sys.executable, "-m", "meshfield.cli", "run", path, "-q",
                   "-o", output, "--set", f"run.level={level}", "--set", f"run.t_end={end}",
                   "--set", f"lattice.shape=[{shape[0]}, {shape[1]}]", *extra]
        proc = subprocess.run(command, capture_output=True, text=True, env=worker_env(), check=False)
        return None if proc.returncode == 0 else proc.stderr[-2000:]

    with tempfile.TemporaryDirectory() as tmp:
        for level in ("meso", "micro"):
            whole = str(Path(tmp) / f"{level}_whole.h5")
            error = meshfield_run(1, level, t_end, whole)
            previous, parts, rows = None, [], []
            for k, (end, n) in enumerate(segments):
                if error is not None:
                    break
                output, ckpt = str(Path(tmp) / f"{level}_{k}.h5"), str(Path(tmp) / f"{level}_{k}.ckpt.h5")
                extra = ["--checkpoint", ckpt] + (["--restart", previous] if previous else [])
                error = meshfield_run(n, level, end, output, *extra)
                rows.append(dict(t_end_ms=end, ranks=n))
                parts.append(output)
                previous = ckpt
            if error is not None:
                out[level] = dict(segments=rows, identical=None, error=error)
                continue
            from meshfield.io import open_result
            with open_result(whole) as w:
                A, Abar, times = w.A[()], w.Abar[()], w.times[()]
            joined = {"A": [], "Abar": [], "times": []}
            for part in parts:
                with open_result(part) as r:
                    joined["A"].append(r.A[()])
                    joined["Abar"].append(r.Abar[()])
                    joined["times"].append(r.times[()])
            jA, jE, jt = (np.concatenate(joined[k]) for k in ("A", "Abar", "times"))
            out[level] = dict(segments=rows, identical=bool(np.array_equal(jA, A) and np.array_equal(jE, Abar)
                                                            and np.array_equal(jt, times)),
                              digest_whole=_digest((A, Abar)), digest_joined=_digest((jA, jE)))
    return dict(config=path, shape=list(shape), levels=out, worker_errors=sum("error" in v for v in out.values()),
                passed=_verdict(v["identical"] for v in out.values()))


def plot_convergence(path: Path, mean_field: dict, finite: dict) -> None:
    """Relative error vs dt: mean field (all types of both sources) and finite-size levels."""
    from matplotlib.ticker import NullLocator

    figure, axes = val.new_figure(1, 2, width=4.6, height=3.6)
    ax = axes[0, 0]
    for name, mf in mean_field.items():
        dts = np.array([r["dt"] for r in mf["rows"]])
        errors = np.array([r["error_vs_continuous"] for r in mf["rows"]])
        step = np.array([r["step_error"] for r in mf["rows"]])
        for t, tname in enumerate(mf["types"]):
            line, = ax.loglog(dts, np.abs(errors[:, t]) * 100, "o-", label=f"{name}: {tname}")
            ax.loglog(dts, np.abs(step[:, t]) * 100, "x--", color=line.get_color(), lw=0.8)
    ax.loglog(dts, 100 * 0.012 * dts, "k:", label="slope 1")
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticks(dts, [f"{d:g}" for d in dts])
    ax.set_xlabel("dt (ms)")
    ax.set_ylabel("|mean-field rate / theory - 1| (%)")
    ax.set_title("V6: mean field vs theory (x--: time-step part)")
    ax.legend(fontsize=6)
    ax = axes[0, 1]
    dts = np.array([r["dt"] for r in finite["rows"]])
    for t, tname in enumerate(finite["types"]):
        for level, marker in (("micro", "s"), ("meso", "o")):
            err = np.array([r[level]["error_vs_continuous"][t] for r in finite["rows"]]) * 100
            se = np.array([r[level]["se"][t] / r["continuous"][t] for r in finite["rows"]]) * 300
            ax.errorbar(dts, err, yerr=se, fmt=f"{marker}-", capsize=3, label=f"{level} {tname}")
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(dts, [f"{d:g}" for d in dts])
    ax.set_xlabel("dt (ms)")
    ax.set_ylabel("rate / continuous theory - 1 (%)")
    ax.set_title("V6: finite size N = 500 (bars 3 SE)")
    ax.legend(fontsize=6)
    val.save_figure(figure, path)


def study(out: Path | None = None, *, dts=DTS, t_sim: float = 20000.0, discard: float = 1000.0, seed: int = 1,
          ranks: bool = True, command: str | None = None) -> dict:
    """Run V6 and return its numbers (written, with a figure, to ``out`` if given).

    The parameters are those of :func:`compute`; ``out`` is the folder for
    ``v6.json`` and the figure (:func:`_validation.write_outputs`).
    """
    data, figures = compute(dts=dts, t_sim=t_sim, discard=discard, seed=seed, ranks=ranks, command=command)
    if out is not None:
        val.write_outputs(out, "v6.json", data, figures, OWNED)
    return data


def compute(*, dts=DTS, t_sim: float = 20000.0, discard: float = 1000.0, seed: int = 1,
            ranks: bool = True, command: str | None = None) -> tuple[dict, list]:
    """Run V6 and return its numbers and its figure, not yet drawn.

    Parameters
    ----------
    dts : sequence of float
        Step sizes (ms), largest first; each must divide the record interval.
    t_sim, discard : float
        Statistics time and transient of the finite-size runs (ms).
    seed : int
    ranks : bool
        Run parts 2 and 3 (rank and restart invariance, MPI subprocesses).
    command : str, optional
        The command line recorded in the JSON (default: the plain driver call).

    Returns
    -------
    data : dict
        The JSON content (see docs/validation.md).
    figures : list of (str, callable)
        File name and ``draw(path)`` of the figure.
    """
    dts = tuple(float(d) for d in dts)
    mean_field = {SINGLE: mean_field_convergence(SINGLE, dts),
                  f"{NETWORK} one site": mean_field_convergence(network_on_one_site(), dts)}
    finite = finite_size_convergence(SINGLE, dts, t_sim, discard, seed)
    invariance = rank_invariance() if ranks else None
    restarts = restart_invariance() if ranks else None
    data = dict(
        study="V6",
        config=dict(single=val.config_path(SINGLE), network=val.config_path(NETWORK)),
        command=command or f"python drivers/{PROG}",
        settings=dict(dts_ms=list(dts), t_sim_ms=t_sim, discard_ms=discard, seed=seed),
        mean_field=mean_field,
        finite_size=finite,
        rank_invariance=invariance,
        restarts=restarts,
        acceptance=dict(
            mean_field_matches_discrete_theory=all(r["passed_discrete"] for mf in mean_field.values()
                                                   for r in mf["rows"]),
            bitwise_across_ranks=None if invariance is None else invariance["passed"],
            bitwise_across_restarts=None if restarts is None else restarts["passed"],
        ),
    )
    return data, [("v6_convergence.png", lambda path: plot_convergence(path, mean_field, finite))]


def summary(data: dict) -> str:
    """Plain-text summary of the numbers."""
    lines = ["V6 numerics"]
    for name, mf in data["mean_field"].items():
        for r in mf["rows"]:
            lines.append(f"  mean field {name} dt={r['dt']:g}: " + "; ".join(
                f"{t} {r['rate'][i]:.5f} Hz ({100 * r['error_vs_continuous'][i]:+.3f} % vs continuous, "
                f"{r['error_vs_discrete'][i]:+.1e} vs discrete)" for i, t in enumerate(mf["types"])))
        for r in mf["rows"]:
            lines.append(f"    dt={r['dt']:g} step error " + ", ".join(
                f"{t} {100 * r['step_error'][i]:+.3f} %" for i, t in enumerate(mf["types"])) + "; window error " +
                ", ".join(f"{t} {100 * r['window_error'][i]:+.3f} %" for i, t in enumerate(mf["types"])))
        lines.append("    observed order, total: " + "; ".join(
            f"{t} " + ", ".join(f"{o:.2f}" for o in mf["order"][i]) for i, t in enumerate(mf["types"]))
            + "; time-step part: " + "; ".join(
            f"{t} " + ", ".join(f"{o:.2f}" for o in mf["step_order"][i]) for i, t in enumerate(mf["types"])))
    fs = data["finite_size"]
    for r in fs["rows"]:
        for i, t in enumerate(fs["types"]):
            lines.append(f"  N=500 dt={r['dt']:g} {t}: theory {r['continuous'][i]:.4f}; micro {r['micro']['mean'][i]:.4f} "
                         f"+- {r['micro']['se'][i]:.4f} ({100 * r['micro']['error_vs_continuous'][i]:+.3f} %), meso "
                         f"{r['meso']['mean'][i]:.4f} +- {r['meso']['se'][i]:.4f} "
                         f"({100 * r['meso']['error_vs_continuous'][i]:+.3f} %); meso-micro "
                         f"{r['meso_minus_micro'][i]:+.4f} +- {r['meso_minus_micro_se'][i]:.4f} "
                         f"(discrete theories predict {r['predicted_meso_minus_micro'][i]:+.4f})")
    inv = data["rank_invariance"]
    if inv is not None:
        for level, entries in inv["levels"].items():
            for e in entries:
                lines.append(f"  {level} {e['run']}: dims {e.get('dims')}, digest {e.get('digest')}, "
                             f"{_outcome(e)}")
    rs = data["restarts"]
    if rs is not None:
        for level, v in rs["levels"].items():
            plan = " -> ".join(f"{r['t_end_ms']:g} ms on {r['ranks']} rank(s)" for r in v["segments"])
            if "error" in v:
                lines.append(f"  restarts {level}: {plan or 'uninterrupted run'}: {_outcome(v)}")
            else:
                lines.append(f"  restarts {level}: {plan}: digest {v.get('digest_joined')} vs uninterrupted "
                             f"{v.get('digest_whole')}: {_outcome(v)}")
    acc = data["acceptance"]
    parts = [f"mean_field_matches_discrete_theory {'PASS' if acc['mean_field_matches_discrete_theory'] else 'FAIL'}"]
    for key, part in (("bitwise_across_ranks", inv), ("bitwise_across_restarts", rs)):
        if part is None:
            word = "not run (--skip-ranks)"
        elif acc[key] is False:
            word = "FAIL" + (" and ERROR" if part["worker_errors"] else "")
        else:
            word = "ERROR" if part["worker_errors"] else "PASS"
        parts.append(f"{key} {word}")
    lines.append("  V6 acceptance: " + ", ".join(parts) + f"; overall {verdict(data)}")
    return "\n".join(lines)


def _outcome(entry: dict) -> str:
    """identical / DIFFERENT / ERROR (worker failed: ...) / not compared, for one rank or restart entry."""
    if "error" in entry:
        return f"ERROR (worker failed: {last_line(entry['error'])})"
    if entry["identical"] is None:
        return "not compared (the 1-rank reference run failed)"
    return "identical" if entry["identical"] else "DIFFERENT"


def worker_errors(data: dict) -> int:
    """Number of MPI worker runs of parts 2 and 3 that failed."""
    return sum(part["worker_errors"] for part in (data["rank_invariance"], data["restarts"]) if part is not None)


def verdict(data: dict) -> str:
    """ERROR (a worker failed), FAIL (a check failed) or PASS (every check that ran passed)."""
    if worker_errors(data):
        return "ERROR (an MPI worker failed)"
    return "FAIL" if any(v is False for v in data["acceptance"].values()) else "PASS"


def build_parser():
    p = val.parser("v6", __doc__, prog=PROG, writes="v6.json and the figure v6_convergence.png into --out.",
                   default_run="about 3 minutes on one core (docs/validation_v1356.md); starts mpiexec -n 1, "
                               "2 and 3 unless --skip-ranks.")
    p.add_argument("--dt", type=val.positive, nargs="+", default=list(DTS), metavar="MS",
                   help="step sizes, ms, largest first, no repeats; each must divide the record interval "
                        "(default " + " ".join(f"{d:g}" for d in DTS) + ")")
    p.add_argument("--t-sim", type=val.positive, default=20000.0, metavar="MS",
                   help="ms of statistics per finite-size run (default 20000)")
    p.add_argument("--discard", type=val.nonnegative, default=1000.0, metavar="MS",
                   help="transient of the finite-size runs, ms (>= 0; default 1000)")
    p.add_argument("--seed", type=val.seed, default=1, help="seed of the finite-size runs (0 to 2^32-1; default 1)")
    p.add_argument("--skip-ranks", action="store_true",
                   help="skip parts 2 and 3: the MPI rank-invariance and the restart tests (default: off)")
    return p


def check_args(p, args) -> None:
    """Every check of the options and the configurations, before any run."""
    val.refuse_duplicates(p, "--dt", args.dt)
    for dt in args.dt:
        single = val.check_config(p, SINGLE, [f"run.dt={dt}", f"run.t_end={args.discard + args.t_sim}",
                                              f"run.seed={args.seed}"], what=f"--dt {dt:g}")
        val.check_config(p, network_on_one_site(), [f"run.dt={dt}"], what=f"--dt {dt:g}")
        if args.t_sim < N_BLOCKS * single.record.interval:
            p.error(f"argument --t-sim: {args.t_sim:g} ms is too short for {N_BLOCKS} batch-means blocks of at least "
                    f"one record ({single.record.interval:g} ms): at least {N_BLOCKS * single.record.interval:g} ms")


def main(argv=None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    check_args(p, args)
    out = val.prepare_out(p, args.out, list(OWNED), OWNED)
    data, figures = compute(dts=args.dt, t_sim=args.t_sim, discard=args.discard, seed=args.seed,
                            ranks=not args.skip_ranks, command=val.command_line(PROG, argv))
    print(summary(data), flush=True)
    names = val.write_outputs(out, "v6.json", data, figures, OWNED)
    print(val.wrote(out, names))
    if worker_errors(data):
        print(f"{PROG}: error: {worker_errors(data)} MPI worker run(s) failed (ERROR lines above; "
              f"their stderr is in v6.json)", file=sys.stderr)
        return val.EXIT_ERROR
    return val.exit_status(data["acceptance"].values())


if __name__ == "__main__":
    sys.exit(val.run_main(main, PROG))
