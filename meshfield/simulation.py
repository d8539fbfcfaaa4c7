"""The time loop shared by both levels (ARCHITECTURE.md).

Blocks of ``d_min`` steps: advance the model over the block, record, exchange the
block's halo activity with the neighbours (collective), repeat. A run on one rank
goes through exactly the same code path as a run on many.

Records: record ``i`` holds the activity averaged over the interval
``[i, i + 1) * record.interval`` (ms), i.e. ``A = (spikes in the interval) /
(N * interval)`` in Hz, and ``Abar`` the same average of the expected activity.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from . import __version__
from ._agreed import agreed, is_agreed
from ._console import emit as _emit
from .config import Config, load_config
from .coupling import build_stencils, halo_width, min_delay
from .parallel import Decomposition, StopOnSignal, processes_on_node

__all__ = ["run", "build_model", "make_decomposition", "MemoryResult", "DEFAULT_BLOCK",
           "RESTART_MAY_CHANGE", "config_differences"]

#: block length (steps) when nothing couples the sites and no delay bounds it
DEFAULT_BLOCK = 64


def loop_block_steps(model_block: int | None, d_min: int) -> int:
    """Steps the time loop advances at once: the model's own block where it takes
    longer ones (no halo to exchange within them), else the shortest delay
    ``d_min``, else :data:`DEFAULT_BLOCK` (nothing couples the sites)."""
    return model_block or d_min or DEFAULT_BLOCK

#: the micro level's recorded spike trains and membrane potentials go to the
#: block file whenever this many bytes have gathered (per rank)
EXTRA_FLUSH_BYTES = 4 << 20

#: configuration keys that may differ between a checkpoint and the run restarted from it
RESTART_MAY_CHANGE = ("run.t_end", "run.progress_interval")


def _flatten(obj, prefix: str = "") -> dict:
    """Nested dicts and lists as ``{"a.b.0.c": value}``."""
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, (list, tuple)):
        items = ((str(i), v) for i, v in enumerate(obj))
    else:
        return {prefix: obj}
    out = {}
    for key, value in items:
        out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    if not out and prefix:
        out[prefix] = obj  # keep empty containers visible
    return out


def config_differences(here: dict, stored: dict, ignore=RESTART_MAY_CHANGE) -> list:
    """Keys whose values differ between two configurations (``Config.to_dict()``
    form), as ``(key, value here, value stored)``; a key missing on one side has
    the value None there. Values are compared after a JSON round trip, so tuples
    and lists compare equal."""
    a = _flatten(json.loads(json.dumps(here, default=str)))
    b = _flatten(json.loads(json.dumps(stored, default=str)))
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b))
            if k not in ignore and a.get(k) != b.get(k)]


@njit(cache=True)
def _accumulate(counts, expected, step, R, acc_n, acc_e, to_hz, out_A, out_E, first):
    """Add a block's steps to the running sums of the current record.

    Each record completed (after every ``R``-th step) is scaled to Hz and
    written to ``out_A[first + i]``, ``out_E[first + i]`` (float32), and the sums
    restart. The steps are added one after the other, so the records do not
    depend on how the steps were split into blocks.

    Parameters
    ----------
    counts, expected : float64 (nb, n_types, n_local)
        The block's spike counts and their expectations; the block starts at ``step``.
    acc_n, acc_e : float64 (n_types, n_local)
        Running sums (updated in place).
    to_hz : float64 (n_types, 1)
        Spikes per record to Hz.
    out_A, out_E : float32 (chunk, n_types, n_local)

    Returns
    -------
    int
        Records completed.
    """
    done = 0
    n_types, n_local = acc_n.shape
    for k in range(counts.shape[0]):
        for i in range(n_types):
            for j in range(n_local):
                acc_n[i, j] += counts[k, i, j]
                acc_e[i, j] += expected[k, i, j]
        if (step + k + 1) % R == 0:
            for i in range(n_types):
                for j in range(n_local):
                    out_A[first + done, i, j] = acc_n[i, j] * to_hz[i, 0]
                    out_E[first + done, i, j] = acc_e[i, j] * to_hz[i, 0]
                    acc_n[i, j] = 0.0
                    acc_e[i, j] = 0.0
            done += 1
    return done


def _restart_step(config: Config, path, dec) -> tuple[int, list]:
    """The step a checkpoint was written at, after checking that it fits ``config``,
    and the chain of checkpoints it descends from (oldest first, itself last).
    Collective."""
    from .io.checkpoint import CheckpointError, read_checkpoint_attrs

    def check():
        attrs = _naming_restart(read_checkpoint_attrs, path)
        _check_restart_attrs(path, attrs, config.record_every)
        here_config = config.to_dict()
        # The state is stored by position along the type axis, so the order of the
        # populations must match too (the comparison by key below ignores it).
        here_types, stored_types = list(here_config["populations"]), list(attrs["config"].get("populations", {}))
        if sorted(here_types) == sorted(stored_types) and here_types != stored_types:
            raise CheckpointError(
                f"--restart {path}: the populations are in the order {here_types} here and {stored_types} "
                "in the checkpoint, whose state is stored in that order; list them in the checkpoint's order")
        stored_config = _with_defaults(attrs["config"])
        diff = config_differences(here_config, stored_config)
        if diff:
            key = diff[0][0]
            more = f" (and {len(diff) - 1} more key(s))" if len(diff) > 1 else ""
            raise CheckpointError(
                f"--restart {path}: the configuration differs from the checkpoint's at {key}: "
                f"{_shown(here_config, key)} here, {_shown(stored_config, key)} in the checkpoint"
                f"{more}; only {' and '.join(RESTART_MAY_CHANGE)} may change on a restart")
        step = int(attrs["step"])
        t_ckpt = step * config.run.dt
        if step >= config.n_records * config.record_every:
            t_last = config.n_records * config.record.interval
            ends = (f"run.t_end = {config.run.t_end:g} ms" if math.isclose(t_last, config.run.t_end)
                    else f"run.t_end = {config.run.t_end:g} ms ends the records at {t_last:g} ms "
                         f"(whole record intervals of {config.record.interval:g} ms), which")
            raise CheckpointError(
                f"--restart {path}: {ends} must be later than the checkpoint's time {t_ckpt:g} ms "
                f"by at least one record interval (set it with --set run.t_end=...)")
        return step, [str(p) for p in attrs.get("restart_chain", [])] + [os.path.abspath(path)]

    return dec.root_decides(check, CheckpointError)


def _with_defaults(stored: dict) -> dict:
    """A checkpoint's configuration with the keys that a later meshfield added
    filled in with their defaults, which is what they meant when it was written
    (a checkpoint from before ``run.cohort_dtype`` holds float64 cohorts); as it
    is if it does not load (the comparison then names what differs)."""
    import copy

    try:
        return Config.from_dict(copy.deepcopy(stored)).to_dict()
    except (ValueError, TypeError, KeyError, AttributeError):  # ConfigError is a ValueError
        return stored


def _naming_restart(read, path):
    """``read(path)``, its CheckpointError (which names the file) prefixed with
    ``--restart``, as the checks of this module word theirs."""
    from .io.checkpoint import CheckpointError
    try:
        return read(path)
    except CheckpointError as exc:
        raise CheckpointError(f"--restart {exc}") from None


def _check_restart_attrs(path, attrs: dict, record_every: int) -> None:
    """Refuse a checkpoint whose attributes a restart relies on are missing or
    malformed (a damaged file, or one edited by hand), by name, before they are used."""
    from .io.checkpoint import CheckpointError

    def damaged(what):
        raise CheckpointError(f"--restart {path}: damaged or foreign checkpoint: {what}")

    if not isinstance(attrs.get("config"), dict):
        damaged(f"its 'config' attribute is {type(attrs.get('config')).__name__}, not a configuration table")
    if "step" not in attrs:
        damaged("it lacks the 'step' attribute (the time step it was written at)")
    step = attrs["step"]
    if isinstance(step, (bool, np.bool_)) or not isinstance(step, (int, np.integer)) or step < 0 \
            or step % record_every:
        damaged(f"its 'step' attribute is {step!r}; a checkpoint is written at a whole number of "
                f"record intervals, a step >= 0 that is a multiple of {record_every}")
    chain = attrs.get("restart_chain", [])
    if not isinstance(chain, (list, tuple)) or not all(isinstance(p, str) for p in chain):
        damaged(f"its 'restart_chain' attribute is {chain!r}, not a list of file names")


def _check_state(path, expected: dict, state: dict, nonnegative=frozenset()) -> None:
    """Refuse a checkpoint whose arrays are not the ones this model stores (names and
    shapes depend on the configuration only), or hold values no run can reach: NaN
    or infinities, or negative values in arrays whose last name part is in
    ``nonnegative``. The values are this rank's block (the caller makes every
    rank raise when one does)."""
    from .io.checkpoint import CheckpointError

    def damaged(what):
        raise CheckpointError(f"--restart {path}: damaged or foreign checkpoint: {what}")

    for name, want in expected.items():
        if name not in state:
            damaged(f"it lacks the array {name!r} that this model's state holds")
        have = np.shape(state[name])
        if have != np.shape(want):
            damaged(f"the array {name!r} has shape {have} here, this model's state needs {np.shape(want)}")
        values = np.asarray(state[name])
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            damaged(f"the array {name!r} holds {np.count_nonzero(~np.isfinite(values))} NaN or infinite "
                    f"value(s) in this block")
        if name.rsplit("/", 1)[-1] in nonnegative and values.size and values.min() < 0:
            damaged(f"the array {name!r} holds negative values (down to {values.min():.6g}) in this "
                    f"block; it holds counts, variances or rates, which are >= 0")


def make_decomposition(config: Config, comm=None, dims=None, stencils=None) -> Decomposition:
    """The block decomposition of ``config``'s lattice over ``comm``. Collective."""
    if comm is None:
        from mpi4py import MPI  # the outermost API may default to the world
        comm = MPI.COMM_WORLD
    stencils = build_stencils(config) if stencils is None else stencils
    return Decomposition(comm, config.lattice.shape, config.lattice.boundary == "periodic",
                         halo_width(stencils), dims=dims)


def set_threads_per_rank(local: int) -> int:
    """Numba threads of this rank: ``NUMBA_NUM_THREADS`` if the user set it, else the
    node's cores divided by the ``local`` processes of the job on the node
    (:func:`meshfield.parallel.processes_on_node`; at least 1). More
    threads than cores make the parallel kernels' workers wait on each other: on 2
    cores, two ranks with two threads each ran the default field 3x slower than
    with one."""
    import numba
    if "NUMBA_NUM_THREADS" in os.environ:
        return numba.get_num_threads()
    n = max(1, min(numba.config.NUMBA_NUM_THREADS, (os.cpu_count() or 1) // local))
    numba.set_num_threads(n)
    return n


def cgroup_memory_limit(proc_cgroup: str, root: str = "/sys/fs/cgroup") -> int | None:
    """The smallest memory limit (bytes) of the cgroups a process belongs to, or None.

    A batch system such as SLURM confines a job to a cgroup (``#SBATCH --mem``).
    ``proc_cgroup`` is the text of ``/proc/self/cgroup``: lines
    ``ID:CONTROLLERS:PATH``, where ID 0 with no controllers is the unified (v2)
    hierarchy (limit file ``memory.max``, ``max`` when unlimited) and the
    ``memory`` controller is v1 (``memory.limit_in_bytes``). The limit of every
    ancestor of the path applies too.
    """
    candidates = []
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        ident, controllers, path = parts
        if ident == "0" and controllers == "":
            candidates += [(os.path.join(root, mount), path, "memory.max") for mount in ("", "unified")]
        elif "memory" in controllers.split(","):
            candidates.append((os.path.join(root, "memory"), path, "memory.limit_in_bytes"))
    limits = []
    for base, path, name in candidates:
        parts = [p for p in path.split("/") if p]
        for depth in range(len(parts), -1, -1):
            try:
                with open(os.path.join(base, *parts[:depth], name)) as f:
                    text = f.read().strip()
            except OSError:
                continue
            if text.isdigit():
                limits.append(int(text))
    return min(limits) if limits else None


def node_memory_bytes() -> int:
    """Memory this process's node offers the job: the physical memory, or a smaller
    cgroup limit (:func:`cgroup_memory_limit`) where one is set."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        with open("/proc/self/cgroup") as f:
            limit = cgroup_memory_limit(f.read())
    except OSError:
        limit = None
    return int(total if limit is None else min(total, limit))


#: records a rank gathers (A and Abar of its block, float32) before it writes them
RECORD_BUFFER = 256

#: what a rank takes besides the model and its buffers: the interpreter, numpy,
#: numba, MPI and h5py (measured with numba 0.68.1, h5py 3.16; docs/hpc.md)
BASE_BYTES = 250 << 20


def record_buffer_bytes(config: Config, n_local: int) -> int:
    """Bytes of records a rank with ``n_local`` sites buffers before writing them
    (A and Abar, float32): at most :data:`RECORD_BUFFER` records."""
    return 2 * min(config.n_records, RECORD_BUFFER) * len(config.types) * int(n_local) * 4


def check_memory(config: Config, decomposition, stencils, in_memory: bool, on_node: int) -> None:
    """Refuse a run whose model cannot fit: the estimate of the largest rank's peak
    (the models' ``resources``, which ``meshfield info`` prints; at the micro level
    while the connectivity is built, at the meso level with the arrays of one block
    of steps) against the node's memory divided by the
    ``on_node`` ranks on it. Collective; every rank raises the
    same :class:`~meshfield.config.ConfigError` (marked as such, :mod:`meshfield._agreed`).

    The estimate is a lower bound (arrays of the model only, no interpreter or
    MPI buffers), so a refused run could not have run.
    """
    from .config import ConfigError
    dec = decomposition
    micro = config.run.level == "micro"
    if micro:
        from .micro.model import mean_field_rate, rate_bound, resources

        def sizes_at(rate):
            return resources(config, stencils, dec.local_shape, dec.halo_width, dec.dims, dec.periodic, rate)
        # the spikes of a block at the highest rate the neurons can fire at first,
        # which costs nothing; a model that does not fit so is counted again at the
        # stationary rate of the theory (seconds, at most; none found: no spikes)
        rate = rate_bound(config)
        sizes = sizes_at(rate)
    else:
        from .meso.model import resources
        sizes = resources(config, stencils, dec.local_shape, dec.halo_width)
    share = node_memory_bytes() / on_node
    records = 0
    if in_memory:  # A and Abar of the whole lattice, float32, gathered on every rank
        records = 2 * 4 * config.n_records * len(config.types) * math.prod(config.lattice.shape)

    def need_of(sizes):
        # (the micro level's peak while the connectivity is built ends before the
        # record buffers are made; the arrays of one block of steps live beside them)
        return max(sizes["peak_bytes"], sizes["memory_bytes"] + sizes.get("block_bytes", 0)
                   + record_buffer_bytes(config, math.prod(dec.local_shape)))

    need = need_of(sizes)
    worst = dec.allreduce_max((need + records) / share)
    if micro and worst > 1.0:  # the same on every rank
        rate = mean_field_rate(config)[0] or 0.0
        sizes = sizes_at(rate)
        need = need_of(sizes)
        worst = dec.allreduce_max((need + records) / share)
    if worst <= 1.0:
        return
    need_max, records = dec.allreduce_max(need), dec.allreduce_max(records)
    share = -dec.allreduce_max(-share)
    need_text, share_text = _distinct_sizes(need_max, share)
    kept = (f" plus {_size(records)} of records kept in memory (write them to a file "
            f"instead: -o OUT.h5, or output=...)" if records else "")
    meso = config.run.level == "meso"
    block_bytes = sizes.get("block_bytes", 0)
    if meso and sizes["history_bytes"] > max(sizes["state_bytes"], block_bytes):
        # the ring buffer of spike counts that the longest delay needs, not the cohorts
        longest = max(stencils, key=lambda st: int(st.delays.max()))
        steps = int(longest.delays.max())
        smaller = (f"or shorter delays: most of it is the spike-count history that the longest "
                   f"delay needs ({steps} steps = {steps * config.run.dt:g} ms, {longest.key}.delay)")
    elif stencils and block_bytes > (sizes["state_bytes"] if meso else sizes["memory_bytes"]):
        # the arrays of one block of d_min steps, which the shortest delay sets
        shortest = min(stencils, key=lambda st: int(st.delays.min()))
        steps = sizes["block_steps"]
        spikes = ("" if meso else f", {_size(sizes['spike_bytes'])} of it its spikes at {sizes['spike_rate']:.1f} Hz"
                  if rate else ", its spikes not counted (the theory finds no stationary rate)")
        smaller = (f"or shorter delays: most of it is the arrays of one block of {steps} steps "
                   f"= {steps * config.run.dt:g} ms, the shortest delay ({shortest.key}.delay), which the "
                   f"time loop advances at once{spikes}")
    else:
        halve = (", or run.cohort_dtype = 'float32', which halves the cohort state"
                 if meso and config.run.cohort_dtype == "float64" else "")
        smaller = f"or a smaller lattice, N, C{' or history K' if meso else ''}{halve}"
    raise agreed(ConfigError(
        f"the {config.run.level} model needs about {need_text} on the largest of the "
        f"{dec.size} rank(s){kept}, more than the {share_text} of memory per rank on this "
        f"node ({on_node} rank(s) share it); use more ranks or nodes (meshfield info -n RANKS "
        f"shows the need per rank), {smaller}"
    ))


def _size(nbytes: float, digits: int = 1) -> str:
    """``nbytes`` in GiB, or in MiB below 1 GiB, with ``digits`` decimals."""
    if nbytes >= 2.0 ** 30:
        return f"{nbytes / 2.0 ** 30:,.{digits}f} GiB"
    return f"{nbytes / 2.0 ** 20:,.{digits}f} MiB"


def _distinct_sizes(need: float, share: float) -> tuple[str, str]:
    """The two sizes of the memory refusal with as many decimals (up to 3) as it
    takes to tell them apart (0.3 GiB "more than" 0.3 GiB read as nonsense)."""
    for digits in (1, 2, 3):
        texts = _size(need, digits), _size(share, digits)
        if texts[0] != texts[1]:
            break
    return texts


def build_model(config: Config, decomposition, stencils):
    """The model of ``config.run.level`` on this rank's block."""
    if config.run.level == "micro":
        from .micro import MicroModel
        return MicroModel(config, decomposition, stencils)
    from .meso import MesoModel
    return MesoModel(config, decomposition, stencils)


@dataclass
class MemoryResult:
    """A run's records held in memory (``run(..., output=None)``), on every rank.

    Same fixed attributes as :class:`meshfield.io.Result`: ``A`` and ``Abar``
    (float32, Hz, ``[time, type, *lattice]``), ``times`` (ms), ``types``,
    ``config`` (nested dicts), ``meta``.
    """

    A: np.ndarray
    Abar: np.ndarray
    times: np.ndarray
    types: list
    config: dict
    meta: dict
    record_interval: float
    dt: float
    shape: tuple = field(default=())
    path: str | None = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def close(self) -> None:
        """Nothing to release (the records are arrays); there so that a script
        closes what ``run`` returns alike, with or without ``output``."""
        return None


class _Progress:
    """Progress lines on rank 0: simulated time, wall time, speed, ETA.

    The speed (and so the ETA) is measured from :meth:`mark`, called after the
    first block: that block includes numba compilation on a first run (a minute
    or more), which would make the early estimates absurd. Until a block after
    the mark has run, speed and ETA print as ``-``.
    """

    def __init__(self, t_end: float, interval: float, enabled: bool, stream=None, t_start: float = 0.0):
        self.t_end = t_end
        self.t_start = t_start
        self.interval = interval
        self.enabled = enabled
        self.stream = stream or sys.stdout
        self.start = time.perf_counter()
        self.last = self.start
        self.last_t = None
        self.mark_time = None
        self.mark_t = None

    def mark(self, t_sim: float) -> None:
        """Measure the speed from here on (simulated time ``t_sim``, ms)."""
        self.mark_time, self.mark_t = time.perf_counter(), t_sim

    def __call__(self, t_sim: float, force: bool = False) -> None:
        if not self.enabled or (force and t_sim == self.last_t):
            return
        now = time.perf_counter()
        if not force and now - self.last < self.interval:
            return
        self.last = now
        self.last_t = t_sim
        wall = now - self.start
        if self.mark_time is None:
            since, elapsed = t_sim - self.t_start, wall
        else:
            since, elapsed = t_sim - self.mark_t, now - self.mark_time
        if since > 0 and elapsed > 0:
            speed = since / elapsed
            rates = f"speed {speed:9.1f} ms/s  ETA {(self.t_end - t_sim) / speed:8.1f} s"
        else:
            rates = f"speed {'-':>9} ms/s  ETA {'-':>8} s"
        # the share of this run's own time span: a restarted run starts at 0 %
        span = self.t_end - self.t_start
        done = 100 * (t_sim - self.t_start) / span if span > 0 else 100.0
        _emit(f"[meshfield] t = {t_sim:10.1f} / {self.t_end:.1f} ms ({done:5.1f} %)"
              f"  wall {wall:8.1f} s  {rates}", self.stream)


def _shown(tree, key: str) -> str:
    """The value at dotted ``key`` of a nested configuration, for a message: the
    value itself, the size of a table or list, or "not set"."""
    node = json.loads(json.dumps(tree, default=str))
    for part in key.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return "not set"
    if isinstance(node, (list, dict)) and node:
        n = len(node)
        return f"a {'list' if isinstance(node, list) else 'table'} of {n} entr{'y' if n == 1 else 'ies'}"
    return repr(node)


def _check_distinct_files(output, checkpoint, restart) -> None:
    """Refuse a result or checkpoint file that is another file of the same run.

    The same path for the result and the checkpoint would leave one of them
    under the other's name; a result written over the checkpoint being
    restarted from would destroy it. (Writing the new checkpoint over the one
    restarted from is allowed with ``overwrite``: it is read before the run.)
    """
    from .io.checkpoint import CheckpointError

    def same(a, b):
        return a is not None and b is not None and os.path.realpath(a) == os.path.realpath(b)

    if same(output, checkpoint):
        raise CheckpointError(f"--checkpoint {checkpoint} is the result file (-o {output}); "
                              f"give the checkpoint a file name of its own")
    if same(output, restart):
        raise CheckpointError(f"-o {output} is the checkpoint to restart from (--restart {restart}); "
                              f"writing the result would replace it: give the result another name")


def run(config, output=None, comm=None, overwrite=False, progress=False, dims=None,
        overrides=(), log=None, checkpoint=None, restart=None, on_start=None):
    """Run a simulation. Collective over ``comm`` (default: MPI.COMM_WORLD).

    Parameters
    ----------
    config : Config, dict, str, Path or None
        A configuration, or anything :func:`meshfield.config.load_config` accepts.
        A Config is validated again, as its dict would be: one changed with
        ``dataclasses.replace`` (which checks nothing) raises the ConfigError
        that the same value in a TOML file would.
    overrides : list of str
        ``key.path=value`` assignments (``--set``) applied to ``config``.
    output : str or None
        Result file ``OUT.h5`` (with its block folder ``OUT.h5.blocks``); None keeps
        the records in memory and returns them on every rank.
    overwrite : bool
        Replace an existing result.
    progress : bool
        Print progress and a summary on rank 0.
    dims : tuple of int, optional
        Explicit process grid.
    checkpoint : str, optional
        Write the complete dynamic state to this HDF5 file at the end of the run
        (:mod:`meshfield.io.checkpoint`); refused before the run starts if the
        file exists and ``overwrite`` is false.
    restart : str, optional
        Continue from this checkpoint to ``run.t_end``, on any number of ranks and
        process grid: the records start at the checkpoint's time and equal, bit
        for bit, those of an uninterrupted run. The configuration must equal the
        checkpoint's except for :data:`RESTART_MAY_CHANGE`.
    on_start : callable, optional
        Called without arguments on rank 0 once every check of the run has
        passed (ranks, memory, files, the restart's state), just before the
        time loop: ``meshfield run`` prints its configuration warnings there,
        so that bad input gets its one error line without them. Collective
        in effect: if it raises, rank 0 raises its exception, the other ranks
        a RuntimeError with its message, and the output is discarded.

    Returns
    -------
    meshfield.io.Result (opened, when ``output`` is given) or MemoryResult.

    Notes
    -----
    The run frees the MPI communicators it makes when it returns, and when it
    raises a failure that every rank raises alike (a check refused the
    configuration, the files or the restart, ``on_start`` raised, a block file
    could not be written, a signal was voted on), so a sweep that catches such
    failures and goes on does not run out of communicators. After any other
    exception, which may be one rank's alone, they are left: freeing them is
    collective.
    """
    # a Config too, overrides or not: one changed in Python (dataclasses.replace,
    # which runs no checks) is validated as the TOML route is, naming the key
    config = load_config(config, overrides)
    _check_distinct_files(output, checkpoint, restart)
    stencils = build_stencils(config)
    dec = make_decomposition(config, comm, dims, stencils)
    try:
        result = _run_on(dec, config, stencils, output, overwrite, progress, log, checkpoint, restart,
                         on_start)
    except BaseException as exc:
        # raised on every rank at the same collective call (meshfield._agreed):
        # every rank is here, so the communicator can be freed for the next run
        # of a sweep; not after any other failure, which may be one rank's alone
        if is_agreed(exc):
            dec.free()
        raise
    # every rank is here, and nothing below communicates: release the run's
    # Cartesian communicator, or a sweep of about a thousand runs in one
    # process runs out of MPI's communicator ids
    dec.free()
    if output is None:
        return result
    from .io import open_result
    # The root has checked the blocks it published; the other ranks leave that
    # to their first read (R ranks each opening R block files adds up).
    return open_result(output, check_blocks=dec.is_root)


def _run_on(dec, config: Config, stencils, output, overwrite, progress, log, checkpoint, restart,
            on_start) -> MemoryResult | None:
    """The body of :func:`run` on the decomposition ``dec``, which it leaves to
    the caller to free: the records in memory, or None when they went to
    ``output``. Collective."""
    say = log or _emit
    root = dec.rank == 0
    verbose = progress and root
    # the job's processes on this node, also those outside comm (a sweep of
    # comm=MPI.COMM_SELF runs): they share its cores and memory
    on_node = processes_on_node(dec.comm)
    threads = set_threads_per_rank(on_node)
    check_memory(config, dec, stencils, in_memory=output is None, on_node=on_node)

    R = config.record_every
    n_steps = config.n_records * R
    step0, chain = _restart_step(config, restart, dec) if restart is not None else (0, [])
    if checkpoint is not None:
        from .io.checkpoint import CheckpointError, check_checkpoint_target
        checkpoint = dec.root_decides(lambda: check_checkpoint_target(checkpoint, overwrite), CheckpointError)

    t_build = time.perf_counter()
    model = build_model(config, dec, stencils)
    if restart is not None:
        from .io.checkpoint import CheckpointError, read_checkpoint

        def read_block():  # this rank's block: one rank alone may fail to read it, or find it damaged
            # read into the model's own arrays where it can (the state once, not twice)
            views = model.state_dict(copy=False)
            state = _naming_restart(lambda path: read_checkpoint(path, dec, into=views), restart)[0]
            _check_state(restart, views, state, model.NONNEGATIVE_STATE)
            return state

        model.load_state_dict(dec.all_decide(read_block, CheckpointError))
    t_build = time.perf_counter() - t_build
    n_types = len(config.types)
    n_records = (n_steps - step0) // R
    t0 = step0 * config.run.dt
    # a model may take longer blocks when no halo has to be exchanged within them
    block = loop_block_steps(getattr(model, "block_steps", None), min_delay(stencils))
    N = np.array([p.N for p in config.populations], dtype=float)
    to_hz = 1000.0 / (N[:, None] * config.record.interval)  # spikes per record -> Hz

    meta = dict(level=config.run.level, seed=config.run.seed, dt=config.run.dt,
                mean_field=config.run.mean_field)
    if restart is not None:
        meta["restart"] = os.path.abspath(restart)
        meta["restart_chain"] = chain
    local_shape = tuple(dec.local_shape)
    n_local = int(np.prod(local_shape))
    counts = np.empty((block, n_types, n_local))
    expected = np.empty((block, n_types, n_local))
    acc_n = np.zeros((n_types, n_local))
    acc_e = np.zeros((n_types, n_local))
    # records are buffered and written in chunks; a chunk holds at least one block's
    per_block = block // R + 1
    chunk = max(1, min(n_records, max(RECORD_BUFFER, per_block)))
    buf_A = np.empty((chunk, n_types) + local_shape, dtype=np.float32)
    buf_E = np.empty_like(buf_A)
    flat_A = buf_A.reshape(chunk, n_types, n_local)
    flat_E = buf_E.reshape(chunk, n_types, n_local)
    buf_first, buf_len = 0, 0
    if output is None:
        # in memory: the records of the whole lattice, each rank's block filled in
        # as it is flushed and the rest summed in place at the end (zeros: the pages
        # of other ranks' blocks are untouched until then)
        memory_A = np.zeros((n_records, n_types) + tuple(config.lattice.shape), dtype=np.float32)
        memory_E = np.zeros_like(memory_A)
        own = tuple(dec.local_slices)
    # the arrays above exist before the recorder's temporary files do, and
    # everything after it either succeeds or, in the try below, aborts it
    recorder = None
    if output is not None:
        from .io import Recorder
        recorder = Recorder(output, dec, list(config.types), n_records, config.record.interval, t0,
                            config.to_dict(), meta, overwrite=overwrite)

    def flush(t_ms):
        nonlocal buf_len
        if buf_len == 0:
            return
        if recorder is not None:
            recorder.write(buf_first, buf_A[:buf_len], buf_E[:buf_len])
            # collective (every rank flushes at the same step): a full disk stops
            # the run here, not after computing to the end
            recorder.sync(t_ms)
        else:
            rows = (slice(buf_first, buf_first + buf_len), slice(None)) + own
            memory_A[rows] = buf_A[:buf_len]
            memory_E[rows] = buf_E[:buf_len]
        buf_len = 0

    # microscopic extras: spike trains and membrane potentials of sampled neurons,
    # appended to the block file every EXTRA_FLUSH_BYTES (a result in memory has
    # no place for them)
    extras = {}
    if recorder is not None and config.run.level == "micro":
        if config.record.spikes_per_site > 0:
            extras["spikes"] = ([], {"columns": ["step", "global_site", "type", "neuron"]})
        if config.record.voltage_neurons > 0:
            extras["voltage"] = ([], {"units": "mV", "axes": ["step", "type", "*local_site", "neuron"],
                                      "local_start": list(dec.local_start)})
    extra_bytes = 0

    def flush_extras():
        nonlocal extra_bytes
        for name, (parts, attrs) in extras.items():
            if parts:
                recorder.append_extra(name, np.concatenate(parts), attrs)
                parts.clear()
        extra_bytes = 0

    report = _Progress(config.run.t_end, config.run.progress_interval, verbose, t_start=t0)
    try:
        if "spikes" in extras:
            # created now: a run whose recorded neurons never fire has it, empty
            recorder.append_extra("spikes", np.zeros((0, 4), np.int64), extras["spikes"][1])
        if on_start is not None:
            # collective: a callback that fails on rank 0 stops every rank (and
            # the recorder's temporary files go), instead of leaving the other
            # ranks waiting in the first exchange
            dec.root_decides(on_start, RuntimeError)
        if verbose:
            say(f"[meshfield] {config.run.level} level, lattice {tuple(config.lattice.shape)} "
                f"({config.lattice.boundary}), types {', '.join(config.types)}; {dec.size} rank(s), "
                f"process grid {tuple(dec.dims)}, {threads} thread(s) per rank, halo {dec.halo_width}, "
                f"block {block} step(s)")
            say(f"[meshfield] {n_steps - step0} steps of {config.run.dt} ms, {n_records} records; "
                f"model built in {t_build:.2f} s"
                + (f"; restarted from {restart} at t = {t0:g} ms" if restart is not None else ""))
        t_start = time.perf_counter()
        t_first_block = None
        first_block_steps = 0
        step = step0
        # under mpiexec, Ctrl-C and SIGTERM stop every rank after the same block
        with StopOnSignal(dec.comm) as stop:
            while step < n_steps:
                # blocks start at multiples of the block length, also after a restart:
                # the models' ring buffers hold whole blocks
                nb = min(block - step % block, n_steps - step)
                model.advance(step, nb, counts[:nb], expected[:nb])
                for name, (parts, _) in extras.items():
                    data = model.recorded_spikes() if name == "spikes" else model.recorded_voltage()[1]
                    parts.append(data)
                    extra_bytes += data.nbytes
                if extra_bytes >= EXTRA_FLUSH_BYTES:
                    flush_extras()
                if buf_len + min(per_block, chunk) > chunk:
                    flush(step * config.run.dt)
                if buf_len == 0:
                    buf_first = (step - step0) // R  # the next record to complete
                buf_len += _accumulate(counts[:nb], expected[:nb], step, R, acc_n, acc_e, to_hz,
                                       flat_A, flat_E, buf_len)
                step += nb
                model.exchange()
                if t_first_block is None:
                    t_first_block = time.perf_counter() - t_start
                    first_block_steps = nb
                    report.mark(step * config.run.dt)
                report(step * config.run.dt)
                stop.poll()
        flush(n_steps * config.run.dt)
        wall = time.perf_counter() - t_start
        report(n_steps * config.run.dt, force=True)
        wall = dec.allreduce_max(wall)
        # the steps of the first block too: a time loop "without the first block"
        # (slurm/scaling_table.py --time loop) ran the other steps
        extra = dict(first_block_seconds=float(t_first_block or 0.0), first_block_steps=int(first_block_steps),
                     build_seconds=float(t_build),
                     history_lengths=[int(k) for k in getattr(model, "history_lengths", [])])
        if recorder is not None:
            flush_extras()
            recorder.close(wall, extra)
            # The result is published: a checkpoint that fails below leaves it in place.
            recorder = None
        if checkpoint is not None:
            from .io.checkpoint import write_checkpoint
            # views, not a second copy of the state: the run has ended
            write_checkpoint(checkpoint, dec, model.state_dict(copy=False),
                             dict(config=config.to_dict(), level=config.run.level, step=n_steps,
                                  time_ms=n_steps * config.run.dt, dt=config.run.dt, seed=config.run.seed,
                                  meshfield_version=__version__, restart_chain=chain,
                                  result=os.path.abspath(output) if output else ""),
                             overwrite=overwrite)
            if verbose:
                say(f"[meshfield] wrote the checkpoint {checkpoint} (t = {n_steps * config.run.dt:g} ms)")
    except BaseException:
        if recorder is not None:
            recorder.abort()
        raise
    if verbose:
        resumed = f" (steps {step0}..{n_steps - 1}, resumed from {restart})" if step0 else ""
        say(f"[meshfield] done: {n_steps - step0} steps{resumed} in {wall:.2f} s wall "
            f"(first block incl. compilation {t_first_block:.2f} s)")
        if output is not None:
            say(f"[meshfield] wrote {output}")
    if output is not None:
        return None

    # in memory: each rank holds its block in a zero global array; summed over the
    # ranks (exact: one rank's value and zeros) in place, a slice at a time, the
    # records once on every rank (before: a copy of the blocks, and the sum's
    # output beside its input, about 2.2 times the records at the peak)
    shape = tuple(config.lattice.shape)
    A, E = memory_A, memory_E
    dec.allreduce_sum_in_place(A)
    dec.allreduce_sum_in_place(E)  # the last collective of the run
    meta.update(version=__version__, ranks=dec.size, dims=list(dec.dims), wall_time=wall,
                hostname=platform.node(), command=" ".join(sys.argv), **extra)
    return MemoryResult(A=A, Abar=E, times=t0 + np.arange(n_records) * config.record.interval,
                        types=list(config.types), config=config.to_dict(), meta=meta,
                        record_interval=config.record.interval, dt=config.run.dt, shape=shape)
