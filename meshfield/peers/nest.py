"""NEST as an independent peer: the same configuration built from NEST models.

meshfield's two levels have counterparts in NEST (https://www.nest-simulator.org):

- mesoscopic: ``gif_pop_psc_exp``, one node per population (site, type), which
  implements the same population equation (Schwalger, Deger & Gerstner 2017);
- microscopic: ``gif_psc_exp``, one node per neuron.

This module translates a meshfield configuration (a :class:`~meshfield.config.Config`,
or anything :func:`~meshfield.config.load_config` accepts) into NEST parameters by MODEL.md
section 8, builds and runs the NEST networks, and returns population activities
in meshfield's conventions (``A[time, type]`` in Hz, one entry per step of
length ``dt``, step ``t`` covering ``[t dt, (t+1) dt)``).

NEST is imported lazily inside the functions that need it, so this module can
be imported (and its translation functions used) without NEST installed.

Conventions of the translation (MODEL.md section 8)
----------------------------------------------------
NEST works with currents, meshfield with potentials. With ``E_L = 0`` and any
membrane capacitance ``C_m`` (it cancels; :data:`C_M` = 250 pF here) and
``g_L = C_m / tau_m``:

- ``I_e = mu g_L`` (pA), ``lambda_0 = c`` (Hz), ``Delta_V = delta_u``,
  ``V_T_star = u_th``, ``V_reset = u_reset`` (both absolute potentials in NEST,
  hence relative to ``E_L = 0``), ``t_ref = t_ref``;
- ``tau_sfa = tau_theta``, ``q_sfa = J_theta / tau_theta`` (mV): NEST's threshold
  jumps by ``q_sfa`` at a spike and decays with ``tau_sfa``, which is
  ``eps_theta(s) = (J_theta/tau_theta) exp(-s/tau_theta)``;
- ``tau_syn_ex`` / ``tau_syn_in`` of a target are the ``tau_s`` of its excitatory
  (J > 0) / inhibitory (J < 0) source types: a NEST neuron has one time constant
  per sign, so all excitatory sources of a target must share one ``tau_s``, and
  all inhibitory sources another;
- microscopic synapse weight ``J C_m / tau_s`` (pA): a spike makes the synaptic
  current jump by that amount, so ``y = I_syn / C_m`` jumps by ``J / tau_s`` as in
  MODEL.md section 2;
- mesoscopic population-to-population weight ``J (C / N_beta) C_m / tau_s``:
  ``gif_pop_psc_exp`` multiplies the weight by the number of spikes the source
  population emitted and divides by ``dt``, i.e. its input per step is
  ``J C n_beta / (N_beta dt)`` (mV/ms), MODEL.md's mesoscopic input; on a lattice
  the weight of offset ``o`` carries the stencil weight ``kappa(o)`` as well;
- ``len_kernel = K`` (or -1: NEST chooses the history length), ``BinoRand`` is
  True for ``noise = "binomial"``, False for ``"poisson"``.

Known differences of the peer (they do not change the stationary rates beyond
statistical errors in the comparisons documented in docs/peers.md):

- ``gif_psc_exp`` adds an arriving spike to the synaptic current at the start of
  the step it arrives in, while meshfield spreads it over that step;
- ``gif_psc_exp`` increments its threshold after the hazard of the spike's step,
  so a neuron's own threshold kernel acts one step later (a factor
  ``exp(dt/tau_theta)`` in amplitude, 0.5 % for tau_theta = 100 ms, dt = 0.5 ms);
- ``gif_pop_psc_exp`` uses ``P = lambda dt`` (not ``1 - exp(-lambda dt)``)
  when ``lambda dt < 0.01`` and starts with all neurons in the oldest cohort;
- NEST requires at least one adaptation timescale in ``gif_pop_psc_exp``: a type
  without adaptation gets one with ``q_sfa = 0``; NEST has no mean-field mode.
"""

from __future__ import annotations

import concurrent.futures
import functools
import math
import multiprocessing
import os
import time
from dataclasses import asdict, dataclass, replace

import numpy as np

from meshfield.config import Config, RunConfig, load_config
from meshfield.coupling import Stencil, build_stencils
from meshfield.lattice import Lattice

#: Membrane capacitance (pF) given to every NEST node; it cancels in the dynamics.
C_M = 250.0

#: Transient (ms) discarded before rate statistics.
DEFAULT_DISCARD = 1000.0

#: Block length (ms) for batch-means standard errors.
DEFAULT_BLOCK = 1000.0


class PeerConfigError(ValueError):
    """A valid meshfield configuration that the NEST peer cannot represent."""


# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------


def _config(config, t_end=None, dt=None, seed=None) -> Config:
    """A validated :class:`Config` from a Config, a dict, a TOML path or a packaged
    name, with ``run.t_end``, ``run.dt`` and ``run.seed`` replaced where given."""
    if not isinstance(config, Config):
        config = load_config(config)
    changes = {k: v for k, v in (("t_end", t_end), ("dt", dt), ("seed", seed)) if v is not None}
    if changes:
        config = replace(config, run=RunConfig.from_dict({**asdict(config.run), **changes}))
    if config.run.mean_field:
        raise PeerConfigError("run.mean_field = true: NEST has no mean-field (N -> infinity) mode")
    if config.stimuli:
        raise PeerConfigError("stimuli: the NEST peer supports only the constant drive mu")
    return config


def _population(config: Config, type_name: str):
    if type_name not in config.types:
        raise PeerConfigError(f"unknown population type {type_name!r}; the types are {list(config.types)}")
    return config.population(type_name)


def _require_single_site(config: Config) -> None:
    if int(np.prod(config.lattice.shape)) != 1:
        raise PeerConfigError(
            f"lattice.shape = {list(config.lattice.shape)}: this function needs a single site (shape = [1])"
        )


def _steps(t_ms: float, dt: float, what: str) -> int:
    """Whole steps in ``t_ms`` (nearest), at least one."""
    n = int(round(t_ms / dt))
    if n < 1:
        raise PeerConfigError(f"{what} = {t_ms} ms is shorter than one step (dt = {dt} ms)")
    return n


def nest_seed(seed: int) -> int:
    """NEST's ``rng_seed`` for a meshfield seed: NEST accepts 1 .. 2**32 - 1.

    Seeds 0 .. 2**32 - 2 map to distinct NEST seeds (``seed + 1``); 2**32 - 1
    wraps to 1.
    """
    return seed % (2**32 - 1) + 1


# ---------------------------------------------------------------------------
# MODEL.md section 8: parameter translation
# ---------------------------------------------------------------------------


def synaptic_time_constants(config, type_name: str) -> tuple[float, float]:
    """``(tau_syn_ex, tau_syn_in)`` (ms) of a NEST node of type ``type_name``.

    They are the ``tau_s`` of the excitatory (J > 0) and inhibitory (J < 0)
    source types of the target (couplings with C = 0 or J = 0 carry nothing and
    are ignored). A channel without sources gets ``tau_m / 2``, a value that
    carries no current and avoids ``gif_pop_psc_exp``'s ``tau_syn = tau_m``
    singularity.

    Raises
    ------
    PeerConfigError
        If the excitatory (or inhibitory) sources of the target have different
        ``tau_s``, or a ``tau_s`` is 0 (NEST has no instantaneous synapses).
    """
    config = _config(config)
    target = _population(config, type_name)
    by_sign: dict[str, dict[str, float]] = {"excitatory": {}, "inhibitory": {}}
    for cp in config.couplings:
        if cp.target != type_name or cp.C == 0 or cp.J == 0.0:
            continue
        tau_s = config.population(cp.source).tau_s
        if not tau_s > 0.0:
            raise PeerConfigError(
                f"populations.{cp.source}.tau_s = {tau_s}: NEST's exponential synapses need tau_s > 0 ms"
            )
        by_sign["excitatory" if cp.J > 0 else "inhibitory"][cp.source] = tau_s
    result = []
    for sign, taus in by_sign.items():
        if len(set(taus.values())) > 1:
            name = "tau_syn_ex" if sign == "excitatory" else "tau_syn_in"
            raise PeerConfigError(
                f"target {type_name!r}: its {sign} sources have different tau_s {taus}; a NEST neuron has "
                f"one {name}, so all {sign} sources of a target must share one tau_s"
            )
        result.append(next(iter(taus.values())) if taus else 0.5 * target.tau_m)
    return result[0], result[1]


def _neuron_params(config: Config, type_name: str) -> dict:
    pop = _population(config, type_name)
    tau_ex, tau_in = synaptic_time_constants(config, type_name)
    return {
        "C_m": C_M,
        "E_L": 0.0,
        "I_e": pop.mu * C_M / pop.tau_m,
        "lambda_0": pop.c,
        "Delta_V": pop.delta_u,
        "V_T_star": pop.u_th,
        "V_reset": pop.u_reset,
        "t_ref": pop.t_ref,
        "tau_sfa": list(pop.tau_theta),
        "q_sfa": [J / tau for J, tau in zip(pop.J_theta, pop.tau_theta)],
        "tau_syn_ex": tau_ex,
        "tau_syn_in": tau_in,
    }


def config_to_gif_pop_params(config, type_name: str) -> dict:
    """Parameters of NEST's ``gif_pop_psc_exp`` for one population of type ``type_name``.

    Parameters
    ----------
    config : Config, dict, path or packaged name
        meshfield configuration.
    type_name : str
        Population type (a key of ``populations``).

    Returns
    -------
    dict
        NEST status dictionary: ``N``, ``C_m`` (pF), ``tau_m`` (ms), ``E_L`` = 0,
        ``I_e = mu C_m / tau_m`` (pA), ``lambda_0`` (Hz), ``Delta_V``, ``V_T_star``,
        ``V_reset`` (mV), ``t_ref`` (ms), ``tau_sfa`` (ms), ``q_sfa`` (mV),
        ``tau_syn_ex``, ``tau_syn_in`` (ms), ``len_kernel`` (``K``, or -1 for
        NEST's automatic choice when K = 0) and ``BinoRand``.

    Raises
    ------
    PeerConfigError
        For parameters NEST cannot represent (see :func:`synaptic_time_constants`),
        or a synaptic time constant equal to ``tau_m`` (``gif_pop_psc_exp``
        divides by their difference).
    """
    config = _config(config)
    pop = config.population(type_name)
    params = _neuron_params(config, type_name)
    for key in ("tau_syn_ex", "tau_syn_in"):
        if math.isclose(params[key], pop.tau_m, rel_tol=1e-12):
            raise PeerConfigError(
                f"target {type_name!r}: {key} = tau_s = tau_m = {pop.tau_m} ms, which gif_pop_psc_exp cannot "
                "integrate (it divides by tau_syn - tau_m)"
            )
    if not params["tau_sfa"]:
        # gif_pop_psc_exp refuses an empty adaptation list; a zero-amplitude
        # timescale is the same model.
        params["tau_sfa"], params["q_sfa"] = [pop.tau_m], [0.0]
    params.update(
        N=pop.N,
        tau_m=pop.tau_m,
        len_kernel=pop.K if pop.K > 0 else -1,
        BinoRand=config.run.noise == "binomial",
    )
    return params


def config_to_gif_psc_exp_params(config, type_name: str) -> dict:
    """Parameters of NEST's ``gif_psc_exp`` for the neurons of type ``type_name``.

    Same translation as :func:`config_to_gif_pop_params`, with ``g_L = C_m / tau_m``
    (nS) instead of ``tau_m``, no spike-triggered currents (``tau_stc = q_stc = []``)
    and the initial membrane potential ``V_m = u_reset``.
    """
    config = _config(config)
    params = _neuron_params(config, type_name)
    params.update(
        g_L=C_M / config.population(type_name).tau_m,
        V_m=params["V_reset"],
        tau_stc=[],
        q_stc=[],
    )
    return params


def gif_pop_weight(J, C, N_source: int, tau_s: float, kappa=1.0):
    """``gif_pop_psc_exp`` connection weight (pA per source spike).

    ``J (C kappa / N_source) C_m / tau_s``, J in mV, tau_s in ms, kappa the
    stencil weight of the connection's offset (scalars or arrays).
    """
    return J * C * kappa / N_source * C_M / tau_s


def gif_psc_exp_weight(J: float, tau_s: float) -> float:
    """``gif_psc_exp`` synapse weight (pA): ``J C_m / tau_s``."""
    return J * C_M / tau_s


# ---------------------------------------------------------------------------
# Stencils on the lattice (MODEL.md section 3, via meshfield.coupling)
# ---------------------------------------------------------------------------


def lattice_connections(stencil: Stencil, lattice: Lattice):
    """All (target site, source site) pairs of one coupling on the whole lattice.

    Parameters
    ----------
    stencil : meshfield.coupling.Stencil
    lattice : meshfield.lattice.Lattice

    Returns
    -------
    target_site, source_site : ndarray of int, shape (n,)
        Flat (C-order) site indices.
    kappa : ndarray, shape (n,)
        Stencil weight of each pair; on an open lattice renormalized per target
        site over the offsets that exist, so every target keeps in-degree C.
    delay_steps : ndarray of int, shape (n,)
    """
    shape = lattice.shape
    sites = np.stack(np.unravel_index(np.arange(lattice.n_sites), shape), axis=-1)  # (n_sites, ndim)
    src = sites[:, None, :] + stencil.offsets[None, :, :]  # (n_sites, n_off, ndim)
    dims = np.asarray(shape)
    if lattice.periodic:
        src %= dims
        valid = np.ones(src.shape[:2], dtype=bool)
    else:
        valid = np.all((src >= 0) & (src < dims), axis=-1)
    norm = stencil.edge_normalization(lattice, (0,) * lattice.ndim, shape).reshape(-1, 1)
    kappa = np.broadcast_to(stencil.weights[None, :] / norm, valid.shape)[valid]
    target = np.broadcast_to(np.arange(lattice.n_sites)[:, None], valid.shape)[valid]
    source = np.ravel_multi_index(tuple(src[valid].T), shape)
    delays = np.broadcast_to(stencil.delays[None, :], valid.shape)[valid]
    return target, source, kappa, delays


# ---------------------------------------------------------------------------
# NEST session handling
# ---------------------------------------------------------------------------


def _import_nest():
    """Import NEST without its banner, at error verbosity."""
    os.environ.setdefault("PYNEST_QUIET", "1")
    try:
        import nest
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the NEST peer needs nest-simulator (pip install nest-simulator, or pip install -e '.[peer]')"
        ) from exc
    _quiet(nest)
    return nest


def _quiet(nest) -> None:
    if hasattr(nest, "VerbosityLevel"):
        nest.verbosity = nest.VerbosityLevel.ERROR
    else:  # NEST < 3.9
        nest.set_verbosity("M_ERROR")


def _reset_kernel(nest, config: Config) -> None:
    nest.ResetKernel()
    _quiet(nest)
    nest.local_num_threads = 1
    nest.resolution = config.run.dt
    nest.rng_seed = nest_seed(config.run.seed)


def _padded_simulation(nest, n_steps: int, dt: float) -> None:
    """Simulate ``n_steps`` steps plus enough to flush recorders.

    Recorders receive the data of the last min-delay interval only in the next
    interval, so the run goes on for one maximal delay longer; callers keep
    the first ``n_steps`` steps.
    """
    pad = int(round(float(nest.max_delay) / dt)) + 1
    nest.Simulate((n_steps + pad) * dt)


def _stamp_to_step(times_ms, dt: float) -> np.ndarray:
    """Step index of a NEST time stamp: NEST stamps events of step t with (t+1) dt."""
    return np.rint(np.asarray(times_ms) / dt).astype(np.int64) - 1


# ---------------------------------------------------------------------------
# Mesoscopic peer: gif_pop_psc_exp
# ---------------------------------------------------------------------------


@dataclass
class GifPopLattice:
    """A lattice of ``gif_pop_psc_exp`` nodes built in the current NEST kernel.

    Attributes
    ----------
    types : tuple of str
    shape : tuple of int
        Lattice shape.
    nodes : list of NodeCollection
        ``nodes[a]`` holds the populations of type ``types[a]`` at all sites, in
        flat C-order site order.
    node_ids : ndarray of int, shape (n_types, n_sites)
    n_connections : int
    build_seconds : float
        Wall time of kernel reset, node creation and connection.
    """

    types: tuple
    shape: tuple
    nodes: list
    node_ids: np.ndarray
    n_connections: int
    build_seconds: float


#: set in the worker processes that run NEST (see :func:`_isolated`)
_IN_WORKER = "MESHFIELD_NEST_WORKER"


def _worker_init() -> None:
    os.environ[_IN_WORKER] = "1"


def _call_in_worker(name: str, args, kwargs):
    return globals()[name].in_process(*args, **kwargs)


def _isolated(impl):
    """Run a NEST function in a fresh ``spawn`` subprocess.

    NEST must not share a process with numba's threading layer or an MPI state
    left by earlier work: in a test session that had run meshfield kernels first,
    ``nest.ResetKernel`` crashed with a segmentation fault. A fresh interpreter per
    call costs NEST's import (a few seconds) and removes the problem. Inside the
    worker, nested calls run directly. ``f.in_process`` is the unwrapped function.
    """

    @functools.wraps(impl)
    def wrapper(*args, **kwargs):
        if os.environ.get(_IN_WORKER) == "1":
            return impl(*args, **kwargs)
        ctx = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx, initializer=_worker_init) as ex:
            return ex.submit(_call_in_worker, impl.__name__, args, kwargs).result()

    wrapper.in_process = impl
    return wrapper



def build_gif_pop_lattice(config, dt=None, seed=None) -> GifPopLattice:
    """Reset NEST and build the configuration's lattice from ``gif_pop_psc_exp`` nodes.

    One node per (site, type). Node (x, alpha) receives from (x + o, beta), for
    every coupling (alpha <- beta) and stencil offset o of
    :func:`meshfield.coupling.build_stencils`, with weight
    ``J C kappa(o) / N_beta * C_m / tau_s,beta`` (pA) and the stencil's delay
    ``round((d0 + |o| dx / v) / dt)`` steps.

    Parameters
    ----------
    config : Config, dict, path or packaged name
    dt : float, optional
        Resolution (ms); default ``run.dt``.
    seed : int, optional
        Default ``run.seed``.
    """
    config = _config(config, dt=dt, seed=seed)
    dt = config.run.dt
    lattice = Lattice.from_config(config.lattice)
    types = config.types
    params = {name: config_to_gif_pop_params(config, name) for name in types}
    nest = _import_nest()
    t0 = time.perf_counter()
    _reset_kernel(nest, config)
    nodes = [nest.Create("gif_pop_psc_exp", lattice.n_sites, params=params[name]) for name in types]
    node_ids = np.array([nc.tolist() for nc in nodes], dtype=np.int64).reshape(len(types), lattice.n_sites)
    pre, post, weight, delay = [], [], [], []
    for st in build_stencils(config):
        target, source, kappa, steps = lattice_connections(st, lattice)
        src_pop = config.populations[st.source]
        pre.append(node_ids[st.source, source])
        post.append(node_ids[st.target, target])
        weight.append(gif_pop_weight(st.J, st.C, src_pop.N, src_pop.tau_s, kappa))
        delay.append(steps * dt)
    n_connections = int(sum(len(p) for p in pre))
    if n_connections:
        nest.Connect(
            np.concatenate(pre),
            np.concatenate(post),
            "one_to_one",
            {"synapse_model": "static_synapse", "weight": np.concatenate(weight), "delay": np.concatenate(delay)},
        )
    return GifPopLattice(
        types=types,
        shape=lattice.shape,
        nodes=nodes,
        node_ids=node_ids,
        n_connections=n_connections,
        build_seconds=time.perf_counter() - t0,
    )


@_isolated
def run_gif_pop_lattice(config, t_end=None, dt=None, seed=None) -> tuple[np.ndarray, np.ndarray]:
    """Run the configuration as a lattice of ``gif_pop_psc_exp`` nodes.

    Parameters
    ----------
    config : Config, dict, path or packaged name
    t_end, dt : float, optional
        Simulated time and resolution (ms); defaults from ``run``.
    seed : int, optional
        Default ``run.seed``.

    Returns
    -------
    times : ndarray, shape (n_steps,)
        Start of each step (ms).
    A : ndarray, shape (n_steps, n_types, *lattice.shape)
        Population activity ``n / (N dt)`` in Hz (spikes per second per neuron).
    """
    config = _config(config, t_end, dt, seed)
    dt = config.run.dt
    n_steps = _steps(config.run.t_end, dt, "run.t_end")
    lat = build_gif_pop_lattice(config)
    nest = _import_nest()
    mm = nest.Create("multimeter", params={"record_from": ["n_events"], "interval": dt})
    for nc in lat.nodes:
        nest.Connect(mm, nc)
    _padded_simulation(nest, n_steps, dt)
    ev = mm.events
    step = _stamp_to_step(ev["times"], dt)
    keep = step < n_steps
    column = np.full(int(lat.node_ids.max()) + 1, -1, dtype=np.int64)
    column[lat.node_ids.ravel()] = np.arange(lat.node_ids.size)
    counts = np.zeros((n_steps, lat.node_ids.size))
    counts[step[keep], column[np.asarray(ev["senders"])[keep]]] = np.asarray(ev["n_events"])[keep]
    N = np.array([p.N for p in config.populations], dtype=float)
    A = counts.reshape(n_steps, len(lat.types), -1) / (N[None, :, None] * dt) * 1000.0
    return np.arange(n_steps) * dt, A.reshape((n_steps, len(lat.types)) + tuple(lat.shape))


@_isolated
def run_gif_pop(config, t_end=None, dt=None, seed=None) -> tuple[np.ndarray, np.ndarray]:
    """Run a single-site configuration with NEST's ``gif_pop_psc_exp``.

    Parameters
    ----------
    config : Config, dict, path or packaged name
        Single-site configuration (``lattice.shape = [1]``).
    t_end, dt : float, optional
        Simulated time and resolution (ms); defaults from ``run``.
    seed : int, optional
        Default ``run.seed``.

    Returns
    -------
    times : ndarray, shape (n_steps,)
        Start of each step (ms).
    A : ndarray, shape (n_steps, n_types)
        Population activity in Hz per neuron.
    """
    config = _config(config, t_end, dt, seed)
    _require_single_site(config)
    times, A = run_gif_pop_lattice(config)
    return times, A.reshape(len(times), -1)


@_isolated
def time_gif_pop_lattice(config, t_sim: float, dt=None, seed=None) -> dict:
    """Time NEST's ``gif_pop_psc_exp`` lattice of the configuration (one thread).

    The build (kernel reset, node creation, connection, and NEST's preparation,
    which allocates the history buffers) is timed separately from the
    simulation. Nothing is recorded during the timed simulation.

    Returns
    -------
    dict
        ``build_seconds``, ``seconds`` (simulation wall time), the process CPU
        times ``build_cpu_seconds`` and ``cpu_seconds`` (NEST runs on one thread
        in this process, so on a shared machine CPU time is the cost on an idle
        core), ``pop_steps_per_second`` (populations x steps / simulation seconds)
        and ``pop_steps_per_cpu_second``,
        ``K`` (dict type -> history length in steps used by NEST),
        ``n_populations``, ``n_connections``, ``steps``.
    """
    config = _config(config, dt=dt, seed=seed)
    dt = config.run.dt
    n_steps = _steps(t_sim, dt, "t_sim")
    nest = _import_nest()
    t0, c0 = time.perf_counter(), time.process_time()
    lat = build_gif_pop_lattice(config)
    nest.Prepare()
    t1, c1 = time.perf_counter(), time.process_time()
    nest.Run(n_steps * dt)
    seconds, cpu_seconds = time.perf_counter() - t1, time.process_time() - c1
    nest.Cleanup()
    n_pops = int(lat.node_ids.size)
    return {
        "build_seconds": t1 - t0,
        "build_cpu_seconds": c1 - c0,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "pop_steps_per_second": n_pops * n_steps / seconds,
        "pop_steps_per_cpu_second": n_pops * n_steps / cpu_seconds,
        "K": {name: int(nc[0].get("len_kernel")) for name, nc in zip(lat.types, lat.nodes)},
        "n_populations": n_pops,
        "n_connections": lat.n_connections,
        "steps": n_steps,
    }


# ---------------------------------------------------------------------------
# Microscopic peer: gif_psc_exp
# ---------------------------------------------------------------------------


def _binned_activity(recorders, N, n_steps: int, dt: float) -> np.ndarray:
    A = np.zeros((n_steps, len(recorders)))
    for a, rec in enumerate(recorders):
        step = _stamp_to_step(rec.events["times"], dt)
        A[:, a] = np.bincount(step[step < n_steps], minlength=n_steps)[:n_steps] / (N[a] * dt) * 1000.0
    return A


@_isolated
def run_gif_psc_exp_network(config, t_end=None, dt=None, seed=None) -> tuple[np.ndarray, np.ndarray]:
    """Run a single-site configuration as a network of NEST ``gif_psc_exp`` neurons.

    ``N_alpha`` neurons per type; each type-alpha neuron gets ``C_alpha,beta``
    inputs drawn uniformly from the type-beta neurons (``fixed_indegree``, no
    autapses, multapses allowed), weight ``J C_m / tau_s,beta`` (pA) and the
    coupling's delay at offset 0.

    Parameters
    ----------
    config : Config, dict, path or packaged name
        Single-site configuration (``lattice.shape = [1]``).
    t_end, dt : float, optional
        Simulated time and resolution (ms); defaults from ``run``.
    seed : int, optional
        Default ``run.seed``.

    Returns
    -------
    times : ndarray, shape (n_steps,)
        Start of each step (ms).
    A : ndarray, shape (n_steps, n_types)
        Spikes per step per neuron, in Hz.
    """
    config = _config(config, t_end, dt, seed)
    _require_single_site(config)
    dt = config.run.dt
    n_steps = _steps(config.run.t_end, dt, "run.t_end")
    lattice = Lattice.from_config(config.lattice)
    N = [p.N for p in config.populations]
    params = {name: config_to_gif_psc_exp_params(config, name) for name in config.types}
    nest = _import_nest()
    _reset_kernel(nest, config)
    pops = [nest.Create("gif_psc_exp", n, params=params[name]) for name, n in zip(config.types, N)]
    for st in build_stencils(config):
        # on one site only offset 0 exists (periodic stencils cannot wrap onto it)
        _, _, _, steps = lattice_connections(st, lattice)
        nest.Connect(
            pops[st.source],
            pops[st.target],
            {"rule": "fixed_indegree", "indegree": st.C, "allow_autapses": False, "allow_multapses": True},
            {
                "synapse_model": "static_synapse",
                "weight": gif_psc_exp_weight(st.J, config.populations[st.source].tau_s),
                "delay": int(steps[0]) * dt,
            },
        )
    recorders = []
    for nc in pops:
        rec = nest.Create("spike_recorder")
        nest.Connect(nc, rec)
        recorders.append(rec)
    _padded_simulation(nest, n_steps, dt)
    return np.arange(n_steps) * dt, _binned_activity(recorders, N, n_steps, dt)


def _spatial_connection(nest, kernel, dx: float) -> dict:
    """NEST mask and connection-probability kernel of a meshfield kernel.

    The mask is the cutoff circle (widened by rounding error, so offsets exactly
    at ``r_max`` are kept: the next lattice distance is larger by far more); the
    delta kernel keeps the same site only (a quarter site).
    """
    radius = kernel.r_max * (1 + 1e-9) + 1e-12
    if kernel.shape == "delta":
        return {"mask": {"circular": {"radius": 0.25 * dx}}}
    if kernel.shape == "gaussian":
        p = nest.spatial_distributions.gaussian(nest.spatial.distance, std=kernel.sigma)
        return {"mask": {"circular": {"radius": radius}}, "p": p}
    if kernel.shape == "exponential":
        p = nest.spatial_distributions.exponential(nest.spatial.distance, beta=kernel.length)
        return {"mask": {"circular": {"radius": radius}}, "p": p}
    if kernel.shape == "tophat":
        return {"mask": {"circular": {"radius": min(radius, kernel.radius * (1 + 1e-9) + 1e-12)}}}
    raise PeerConfigError(
        f"kernel.shape = {kernel.shape!r}: the NEST spatial peer supports delta, gaussian, exponential and tophat"
    )


@_isolated
def time_gif_psc_exp_lattice(config, t_sim: float, dt=None, seed=None) -> dict:
    """Build and time the configuration's lattice of ``gif_psc_exp`` neurons in NEST.

    Every site holds ``N_alpha`` neurons of each type at the site's centre, in
    one NEST spatial layer per type (free positions, ``edge_wrap`` on periodic
    lattices). Each coupling is a spatial ``fixed_indegree`` connection with
    in-degree ``C``: NEST draws each input among the source neurons inside the
    cutoff mask with probability proportional to the kernel (for the Gaussian
    ``exp(-d^2 / (2 sigma^2))``), which is MODEL.md's choice of a source site
    with probability ``kappa(o)`` followed by a uniform neuron there. No
    autapses, multapses allowed; delay ``d0 + d / v`` rounded by NEST to whole
    steps; weight ``J C_m / tau_s`` (pA). One thread.

    Returns
    -------
    dict
        ``build_seconds`` (kernel reset, creation, connection, preparation),
        ``connect_seconds`` (connection and preparation), ``n_synapses``,
        ``synapses_per_second`` (``n_synapses / connect_seconds``), ``seconds``
        (simulation wall time), the process CPU times ``build_cpu_seconds``,
        ``connect_cpu_seconds`` and ``cpu_seconds`` (see
        :func:`time_gif_pop_lattice`), ``synapses_per_cpu_second``,
        ``neuron_steps_per_second``, ``neuron_steps_per_cpu_second``, ``n_neurons``,
        ``steps`` and ``rates`` (dict type -> mean rate in Hz over the run, from
        spike recorders that are part of the timed simulation).
    """
    config = _config(config, dt=dt, seed=seed)
    dt = config.run.dt
    n_steps = _steps(t_sim, dt, "t_sim")
    lattice = Lattice.from_config(config.lattice)
    if lattice.ndim != 2:
        raise PeerConfigError(
            f"lattice.shape = {list(lattice.shape)}: the NEST spatial benchmark needs a 2-D lattice"
        )
    build_stencils(config)  # validates kernels against the lattice and delays against dt
    types = config.types
    params = {name: config_to_gif_psc_exp_params(config, name) for name in types}
    N = [p.N for p in config.populations]
    dx = lattice.dx
    extent = [n * dx for n in lattice.shape]
    ii, jj = np.unravel_index(np.arange(lattice.n_sites), lattice.shape)
    centres = np.stack([(ii + 0.5) * dx - extent[0] / 2, (jj + 0.5) * dx - extent[1] / 2], axis=-1)
    nest = _import_nest()
    t0, c0 = time.perf_counter(), time.process_time()
    _reset_kernel(nest, config)
    layers = []
    for name, n in zip(types, N):
        positions = nest.spatial.free(np.repeat(centres, n, axis=0).tolist(), extent=extent, edge_wrap=lattice.periodic)
        layers.append(nest.Create("gif_psc_exp", positions=positions, params=params[name]))
    t_connect, c_connect = time.perf_counter(), time.process_time()
    for cp in config.couplings:
        if cp.C == 0 or cp.J == 0.0:
            continue
        source = types.index(cp.source)
        v = cp.delay.velocity
        nest.Connect(
            layers[source],
            layers[types.index(cp.target)],
            {
                "rule": "fixed_indegree",
                "indegree": cp.C,
                "allow_autapses": False,
                "allow_multapses": True,
                **_spatial_connection(nest, cp.kernel, dx),
            },
            {
                "synapse_model": "static_synapse",
                "weight": gif_psc_exp_weight(cp.J, config.populations[source].tau_s),
                "delay": cp.delay.d0 if math.isinf(v) else cp.delay.d0 + nest.spatial.distance / v,
            },
        )
    n_synapses = int(nest.num_connections)
    recorders = []
    for layer in layers:
        rec = nest.Create("spike_recorder")
        nest.Connect(layer, rec)
        recorders.append(rec)
    nest.Prepare()
    t_built, c_built = time.perf_counter(), time.process_time()
    nest.Run(n_steps * dt)
    seconds, cpu_seconds = time.perf_counter() - t_built, time.process_time() - c_built
    nest.Cleanup()
    n_neurons = lattice.n_sites * sum(N)
    t_s = n_steps * dt / 1000.0
    return {
        "build_seconds": t_built - t0,
        "build_cpu_seconds": c_built - c0,
        "connect_seconds": t_built - t_connect,
        "connect_cpu_seconds": c_built - c_connect,
        "n_synapses": n_synapses,
        "synapses_per_second": n_synapses / (t_built - t_connect),
        "synapses_per_cpu_second": n_synapses / (c_built - c_connect),
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "neuron_steps_per_second": n_neurons * n_steps / seconds,
        "neuron_steps_per_cpu_second": n_neurons * n_steps / cpu_seconds,
        "n_neurons": n_neurons,
        "steps": n_steps,
        "rates": {
            name: len(rec.events["times"]) / (n * lattice.n_sites) / t_s for name, n, rec in zip(types, N, recorders)
        },
    }


# ---------------------------------------------------------------------------
# Rate statistics and the comparison entry point
# ---------------------------------------------------------------------------


def block_means(A, dt: float, t_discard: float = DEFAULT_DISCARD, block: float = DEFAULT_BLOCK) -> np.ndarray:
    """Means of ``A`` over consecutive blocks after a transient.

    Parameters
    ----------
    A : ndarray, shape (n_steps, ...)
        Activity per step (Hz).
    dt, t_discard, block : float
        Step, discarded transient and block length (ms).

    Returns
    -------
    ndarray, shape (n_blocks, ...)
        Only whole blocks are used.
    """
    start = int(round(t_discard / dt))
    per_block = _steps(block, dt, "block")
    n_blocks = (len(A) - start) // per_block
    if n_blocks < 1:
        raise PeerConfigError(
            f"{len(A) * dt} ms of activity leaves no whole block of {block} ms after discarding {t_discard} ms"
        )
    kept = np.asarray(A[start : start + n_blocks * per_block])
    return kept.reshape((n_blocks, per_block) + kept.shape[1:]).mean(axis=1)


def mean_and_se(blocks) -> tuple[np.ndarray, np.ndarray]:
    """Mean over blocks (axis 0) and its standard error ``std(ddof=1) / sqrt(n_blocks)``.

    Batch means: the blocks must be long compared with the correlation time of
    the activity (with 1 s blocks and an adaptation time constant of 1 s the SE
    is somewhat underestimated; use longer blocks or independent seeds for
    strict tests).
    """
    blocks = np.asarray(blocks)
    if len(blocks) < 2:
        raise PeerConfigError(f"need at least 2 blocks for a standard error, got {len(blocks)}")
    return blocks.mean(axis=0), blocks.std(axis=0, ddof=1) / math.sqrt(len(blocks))


def peer_rates(
    config,
    level: str,
    t_end: float,
    seeds,
    t_discard: float = DEFAULT_DISCARD,
    block: float = DEFAULT_BLOCK,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean rate per type of NEST's run of a single-site configuration, with its SE.

    Parameters
    ----------
    config : Config, dict, path or packaged name
        Single-site configuration.
    level : {"meso", "micro"}
        ``gif_pop_psc_exp`` (:func:`run_gif_pop`) or ``gif_psc_exp``
        (:func:`run_gif_psc_exp_network`).
    t_end : float
        Simulated time per seed (ms), including the discarded transient.
    seeds : iterable of int
        One independent run per seed; their blocks are pooled.
    t_discard, block : float
        Transient discarded from each run and block length (ms).

    Returns
    -------
    mean, se : ndarray, shape (n_types,)
        Mean rate (Hz) and its batch-means standard error (Hz).
    """
    runners = {"meso": run_gif_pop, "micro": run_gif_psc_exp_network}
    if level not in runners:
        raise PeerConfigError(f"level = {level!r}; allowed: 'meso', 'micro'")
    config = _config(config, t_end=t_end)
    blocks = [block_means(runners[level](config, seed=int(seed))[1], config.run.dt, t_discard, block) for seed in seeds]
    if not blocks:
        raise PeerConfigError("seeds: at least one seed is required")
    return mean_and_se(np.concatenate(blocks))


@_isolated
def _timed_peer_rates(config, level: str, t_end: float, seeds) -> tuple[np.ndarray, np.ndarray, float]:
    """:func:`peer_rates` in one worker process, with the CPU seconds of NEST's runs
    (measured there, after NEST's import: the parent's CPU clock does not see
    the worker)."""
    _import_nest()
    cpu = time.process_time()
    mean, se = peer_rates(config, level, t_end, seeds)
    return mean, se, time.process_time() - cpu


def main(argv=None) -> None:
    """Print NEST's mean rates (Hz, +- batch-means SE) and run times at both levels.

    ``python -m meshfield.peers.nest [CONFIG] [--t-end MS] [--seeds S ...]``;
    CONFIG is a TOML file or a packaged name (default: ``nest_example``). The
    runs of a level share one worker process; its CPU time (NEST on one thread,
    without NEST's import) is printed beside the wall time (with the import),
    because CPU time is the cost on an idle core.
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m meshfield.peers.nest", description=main.__doc__)
    parser.add_argument("config", nargs="?", default="nest_example", help="TOML file or packaged name")
    parser.add_argument("--t-end", type=float, default=11000.0, help="ms per run, incl. the discarded 1 s")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1], help="one run per seed, blocks pooled")
    parser.add_argument("--levels", default="meso,micro", help="comma-separated: meso, micro")
    args = parser.parse_args(argv)
    config = _config(args.config)
    for level in args.levels.split(","):
        wall = time.perf_counter()
        mean, se, cpu = _timed_peer_rates(config, level, args.t_end, args.seeds)
        wall = time.perf_counter() - wall
        rates = ", ".join(f"{name} {m:.3f} +- {s:.3f} Hz" for name, m, s in zip(config.types, mean, se))
        model = "gif_pop_psc_exp" if level == "meso" else "gif_psc_exp"
        print(
            f"NEST {model:16s} {rates}  ({len(args.seeds)} x {args.t_end / 1000:g} s simulated; "
            f"{wall:.1f} s wall, {cpu:.1f} s CPU)",
            flush=True,
        )


if __name__ == "__main__":
    main()
