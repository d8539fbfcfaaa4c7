"""The mesoscopic field: state arrays of one rank's block and the step driver.

:class:`MesoModel` implements the model interface of the time loop
(:mod:`meshfield.simulation`): ``advance(step0, nsteps, counts_out, expected_out)``
and the collective ``exchange()``.
"""

from __future__ import annotations

import math

import numpy as np

from ..config import K_MAX_MS, Config, ConfigError, PopulationConfig, history_limit, refractory_steps
from ..coupling import Stencil, max_delay, min_delay
from ..lattice import Lattice
from ..propagators import membrane_propagators
from ..random import RandomArgumentError
from ..stimulus import Stimulus
from . import kernels

__all__ = ["MesoModel", "OutOfRangeError", "history_length", "adaptation_kernel", "theta_tilde", "history_slots"]


class OutOfRangeError(ConfigError):
    """The numbers of the population equation left double precision (a firing
    probability became NaN): parameters far outside any physiological range. A
    ConfigError, so that the run ends with one line and exit status 2."""


def _extreme_parameters(config: Config) -> list[str]:
    """``key = value`` of the parameters beyond 1e100 in magnitude, or positive
    and below 1e-100: the likely cause of an :class:`OutOfRangeError`."""
    found = []
    for p in config.populations:
        for key in ("mu", "tau_m", "t_ref", "u_reset", "u_th", "c", "delta_u", "tau_s"):
            value = getattr(p, key)
            if abs(value) > 1e100 or 0 < abs(value) < 1e-100:
                found.append(f"populations.{p.name}.{key} = {value:g}")
    for i, c in enumerate(config.couplings):
        if abs(c.J) * max(c.C, 1) > 1e100:
            found.append(f"couplings[{i}].J = {c.J:g} with C = {c.C}")
    return found

#: K is the shortest history over which eps_theta has decayed below this fraction of delta_u
K_TOLERANCE = 0.1
#: ... but never shorter than this many membrane time constants (plus t_ref)
K_MIN_TAU_M = 5.0

#: Lattices of at most this many sites without a halo advance in blocks of about
#: FUSED_STEPS steps, each one compiled call (kernels.advance_fused): there the
#: Python calls per block of d_min steps cost ten times the work
FUSED_MAX_SITES = 16
FUSED_STEPS = 64


def adaptation_kernel(pop: PopulationConfig, ages_ms: np.ndarray) -> np.ndarray:
    """``eps_theta(a) = sum_j J_theta_j / tau_theta_j exp(-a / tau_theta_j)`` (mV)."""
    ages_ms = np.asarray(ages_ms, dtype=float)
    out = np.zeros_like(ages_ms)
    for tau, J in zip(pop.tau_theta, pop.J_theta):
        out += J / tau * np.exp(-ages_ms / tau)
    return out


def theta_tilde(pop: PopulationConfig, ages_ms: np.ndarray) -> np.ndarray:
    """``theta~(a) = delta_u (1 - exp(-eps_theta(a)/delta_u))`` (mV), MODEL.md §4."""
    return pop.delta_u * (1.0 - np.exp(-adaptation_kernel(pop, ages_ms) / pop.delta_u))


#: the automatic history length scans the adaptation kernel in chunks of this many
#: steps, so that its memory stays bounded for any K up to config.K_MAX_STEPS
K_SCAN_CHUNK = 2**20


def _adaptation_bound_above(pop: PopulationConfig, t_ms: float, log_tol: float) -> bool:
    """Whether ``U(t) (1 + 1e-9) >= tol`` (``log_tol = log(tol)``) for the monotone
    upper bound ``U(t) = sum_j |J_theta_j| / tau_theta_j exp(-t / tau_theta_j)`` of
    ``|eps_theta(t)|`` (terms of equal tau_theta merged first), evaluated in
    logarithms so that no term overflows."""
    by_tau: dict[float, list[float]] = {}
    for tau, J in zip(pop.tau_theta, pop.J_theta):
        by_tau.setdefault(tau, []).append(J)
    terms = []
    for tau, Js in by_tau.items():
        total = sum(Js)
        for J in ([total] if math.isfinite(total) else Js):  # (a sum may overflow)
            terms.append((tau, J))
    logs = [math.log(abs(J)) - math.log(tau) - t_ms / tau for tau, J in terms if J != 0]
    top = max(logs, default=-math.inf)
    if top == -math.inf:
        return False
    log_u = top + math.log(sum(math.exp(x - top) for x in logs))
    return log_u + 1e-9 >= log_tol


def _first_step_below(pop: PopulationConfig, dt: float, log_tol: float, lo: int, hi: int) -> int:
    """The first step ``s`` in ``(lo, hi]`` with ``U(s dt) < tol`` (bisection; ``U`` is
    above at step ``lo`` and below at step ``hi``)."""
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if _adaptation_bound_above(pop, mid * dt, log_tol) else (lo, mid)
    return hi


def _history_limit_error(pop: PopulationConfig, key: str, value, need: str, dt: float, k_max: int,
                         advice: str):
    return ConfigError(
        f"populations.{pop.name}.{key} = {value!r} is invalid: {need}; the history length K may be at "
        f"most {k_max} steps (a history of at most {K_MAX_MS:g} ms at run.dt = {dt} ms and at most "
        f"2**31 - 1 steps); {advice}")


def _steps_text(k) -> str:
    """A step count for a message: exact up to 10**15, else in floating point."""
    if k < 10**15:
        return str(math.ceil(k))
    return f"{float(k):.3g}"


def history_length(pop: PopulationConfig, dt: float) -> int:
    """History length K (steps) of a type: ``pop.K`` if set, else the shortest K with
    ``|eps_theta(k dt)| < 0.1 delta_u`` for all ``k >= K`` and ``K dt >= 5 tau_m + t_ref``
    (MODEL.md §4).

    Raises ConfigError for an explicit K that does not exceed the refractory period,
    and for an automatic K above the bound of an explicit one,
    ``config.history_limit(dt)`` steps. Memory stays bounded (chunks of
    :data:`K_SCAN_CHUNK` steps) whatever the parameters.
    """
    ref_steps = pop.t_ref / dt  # inf when t_ref / dt overflows
    n_ref = refractory_steps(pop.t_ref, dt) if math.isfinite(ref_steps) else math.inf
    if pop.K > 0:
        if pop.K <= n_ref:
            raise ConfigError(f"populations.{pop.name}.K = {pop.K} is invalid: must exceed the "
                              f"refractory period in steps ({_steps_text(n_ref)})")
        return pop.K
    k_max = history_limit(dt)
    # K dt >= 5 tau_m + t_ref, and K > n_ref
    min_steps = (K_MIN_TAU_M * pop.tau_m + pop.t_ref) / dt - 1e-9
    if not (min_steps <= k_max and n_ref + 1 <= k_max):  # (min_steps may be inf)
        key, value = ("tau_m", pop.tau_m) if K_MIN_TAU_M * pop.tau_m >= pop.t_ref else ("t_ref", pop.t_ref)
        raise _history_limit_error(
            pop, key, value,
            f"with tau_m = {pop.tau_m:g} ms and t_ref = {pop.t_ref:g} ms the automatic history length "
            f"needs K >= (5 tau_m + t_ref) / run.dt = {_steps_text(max(min_steps, n_ref + 1))} steps",
            dt, k_max, "use a shorter tau_m or t_ref")
    k_min = int(math.ceil(min_steps))
    tol = K_TOLERANCE * pop.delta_u
    log_tol = math.log(tol) if tol > 0 else -math.inf
    # first step s with U(s dt) < tol: |eps_theta| < tol from there on
    k_adapt = 0
    if _adaptation_bound_above(pop, 0.0, log_tol):
        if _adaptation_bound_above(pop, k_max * dt, log_tol):
            lo, hi = k_max, 2 * k_max + 2
            while hi < 2**1000 and _adaptation_bound_above(pop, hi * dt, log_tol):
                lo, hi = hi, 2 * hi
            if hi >= 2**1000:
                need = f"more than {float(lo):.3g} steps"
            else:
                s = _first_step_below(pop, dt, log_tol, lo, hi)
                # the bound is |eps_theta| itself when the J_theta share a sign
                same_sign = all(J >= 0 for J in pop.J_theta) or all(J <= 0 for J in pop.J_theta)
                need = f"{'' if same_sign else 'up to '}{_steps_text(s)} steps ({float(s) * dt:.6g} ms)"
            raise _history_limit_error(
                pop, "tau_theta", list(pop.tau_theta),
                f"with J_theta = {list(pop.J_theta)} the adaptation kernel |eps_theta| (bounded by "
                f"sum_j |J_theta_j| / tau_theta_j exp(-t / tau_theta_j)) stays above 0.1 delta_u = "
                f"{tol:g} mV so long that the automatic history length K would be {need}",
                dt, k_max,
                f"set an explicit populations.{pop.name}.K (spikes older than K steps still adapt the "
                "threshold, through exponential filters), or use shorter tau_theta or smaller J_theta")
        hi = _first_step_below(pop, dt, log_tol, 0, k_max)
        # the last step with |eps_theta| >= tol lies below hi: scan down in bounded chunks
        while hi > 0:
            lo = max(0, hi - K_SCAN_CHUNK)
            eps = np.abs(adaptation_kernel(pop, np.arange(lo, hi) * dt))
            above = np.nonzero(eps >= tol)[0]
            if len(above):
                k_adapt = lo + int(above[-1]) + 1
                break
            hi = lo
    return max(k_min, k_adapt, n_ref + 1)


def history_slots(d_min: int, d_max: int) -> int:
    """Length D of the ring buffer of spike counts: a multiple of the block length
    ``d_min`` holding ``d_max + d_min`` steps, so that a block never overwrites a
    slot that the same block still reads."""
    if d_min == 0:
        return 1
    return d_min * (-(-d_max // d_min) + 1)


def fused_block_steps(d_min: int, halo_width: int, n_sites: int) -> int | None:
    """Steps per call of :meth:`MesoModel.advance` on a lattice of ``n_sites`` sites
    without a halo (:data:`FUSED_MAX_SITES`, :data:`FUSED_STEPS`), or None where the
    time loop takes blocks of ``d_min`` steps (:func:`meshfield.simulation.loop_block_steps`).
    The same on every rank: a function of the configuration."""
    if halo_width == 0 and n_sites <= FUSED_MAX_SITES:
        return max(d_min, FUSED_STEPS - FUSED_STEPS % max(d_min, 1))
    return None


def resources(config: Config, stencils, local_shape, halo_width: int) -> dict:
    """Size of the mesoscopic model on a block, without building it (``meshfield
    info``, and the memory check of :func:`meshfield.run`).

    Pure function of the configuration and the block shape.

    Parameters
    ----------
    config : Config
    stencils : sequence of Stencil
    local_shape : tuple of int
        Sites of the block per axis.
    halo_width : int

    Returns
    -------
    dict
        ``K`` (history steps per type), ``state_bytes`` (the five cohort arrays of
        K values of ``run.cohort_dtype`` per population plus its scalars), ``history_bytes`` (the
        ring buffer of spike counts over the block and its halo),
        ``memory_bytes`` (their sum: the arrays the model keeps), ``block_steps``
        (the steps the time loop advances at once: ``d_min``, 64 without couplings),
        ``block_bytes`` (the float64 arrays of one such block, see below),
        ``peak_bytes`` (``memory_bytes + block_bytes``: the model is built without
        temporaries of its size) and ``halo_cells`` (sites of the halo).

        The arrays of a block are ``(steps, n_local)`` rows of float64, all alive while
        a type's populations advance: the time loop's spike counts and their
        expectations (2 per type, :func:`meshfield.simulation.run`), the drive of
        every type (:meth:`meshfield.stimulus.Stimulus.mu_block`), and in
        :func:`kernels.advance_fused` the input of every stencil, the inputs of the
        type's own stencils, its drive, spike counts and expectations (while the
        inputs are summed, the history slot of every stencil entry instead). With
        long delays (a large ``d_min``) they outgrow the cohort state: 400 steps
        of the default's two types and four stencils are 15 rows, about 47 KiB per site
        against 12 KiB of cohort state.
    """
    local_shape = tuple(int(m) for m in local_shape)
    h = int(halo_width)
    n_local = math.prod(local_shape)
    with_halo = math.prod(m + 2 * h for m in local_shape)
    Ks = [history_length(p, config.run.dt) for p in config.populations]
    D = history_slots(min_delay(stencils), max_delay(stencils))
    itemsize = np.dtype(config.run.cohort_dtype).itemsize
    state = n_local * sum(5 * K * itemsize + 64 for K in Ks)
    history = D * len(Ks) * with_halo * 8
    from ..simulation import loop_block_steps  # (simulation imports this module lazily)
    d_min = min_delay(stencils)
    n_steps = config.n_records * config.record_every
    block = loop_block_steps(fused_block_steps(d_min, h, math.prod(config.lattice.shape)), d_min)
    block = min(block, n_steps)  # a shorter run fills only its steps
    n_types = len(Ks)
    n_in = max((sum(1 for s in stencils if s.target == t) for t in range(n_types)), default=0)
    n_entries = sum(len(s.weights) for s in stencils)
    rows = n_local * (3 * n_types + len(stencils)) + max(n_local * (n_in + 3), n_entries)
    block_bytes = 8 * block * rows
    return dict(K=Ks, state_bytes=state, history_bytes=history, memory_bytes=state + history,
                block_steps=block, block_bytes=block_bytes, peak_bytes=state + history + block_bytes,
                halo_cells=with_halo - n_local)


def population_tables(pop: PopulationConfig, dt: float, K: int, n_local: int, n_in: int,
                      cohort_dtype: str = "float64") -> dict:
    """The kernel's per-type constants and the initial state of one type at
    ``n_local`` sites with ``n_in`` incoming stencils (all N neurons in the free
    pool at ``u_reset``, MODEL.md §4): ``K``, ``n_ref``, ``eps_rev``,
    ``theta_tilde_rev``, ``adapt_w``, ``adapt_decay``, ``adapt_enter`` and
    ``state`` (the arrays of :func:`kernels.population_block`; the cohort arrays
    ``m, v, u, lam, n`` of ``cohort_dtype``, the others float64)."""
    ages = np.arange(K + 1) * dt
    tau = np.array(pop.tau_theta, dtype=float)
    J = np.array(pop.J_theta, dtype=float)
    cohort = np.dtype(cohort_dtype)
    state = dict(
        m=np.zeros((n_local, K), cohort), v=np.zeros((n_local, K), cohort),
        u=np.full((n_local, K), pop.u_reset, cohort), lam=np.zeros((n_local, K), cohort),
        n=np.zeros((n_local, K), cohort),
        x=np.full(n_local, float(pop.N)), z=np.zeros(n_local), h=np.full(n_local, pop.u_reset),
        lam_free=np.zeros(n_local), g=np.zeros((n_local, len(tau))), y=np.zeros((n_in, n_local)),
    )
    return dict(
        K=K, n_ref=refractory_steps(pop.t_ref, dt),
        # ages K, K-1, ..., 1: the order in which the kernel reads them
        eps_rev=adaptation_kernel(pop, ages[:0:-1]), theta_tilde_rev=theta_tilde(pop, ages[:0:-1]),
        adapt_w=J / tau if len(tau) else np.zeros(0),
        adapt_decay=np.exp(-dt / tau), adapt_enter=np.exp(-(K + 1) * dt / tau),
        state=state,
    )


class MesoModel:
    """Mesoscopic populations of all types at the sites of one block.

    Parameters
    ----------
    config : Config
    decomposition : meshfield.parallel.Decomposition
        This rank's block; ``exchange`` is collective.
    stencils : sequence of Stencil
    """

    #: state arrays (the last part of a :meth:`state_dict` name) that hold counts,
    #: variances, hazards or filtered activity, never negative: a restart refuses
    #: a checkpoint with negative values in them
    NONNEGATIVE_STATE = frozenset({"hist", "m", "v", "lam", "n", "x", "z", "lam_free", "g"})

    def __init__(self, config: Config, decomposition, stencils: tuple[Stencil, ...]):
        self.config = config
        self.decomposition = decomposition
        self.stencils = tuple(stencils)
        self.lattice = Lattice.from_config(config.lattice)
        dt = config.run.dt
        self.dt = dt
        self.n_types = len(config.populations)
        self.local_shape = tuple(decomposition.local_shape)
        self.n_local = int(np.prod(self.local_shape))
        self.d_min = min_delay(self.stencils)
        self.d_max = max_delay(self.stencils)
        self.D = history_slots(self.d_min, self.d_max)
        if config.run.mean_field:
            self.noise = kernels.NOISE_NONE
        else:
            self.noise = kernels.NOISE_POISSON if config.run.noise == "poisson" else kernels.NOISE_BINOMIAL
        self.seed = config.run.seed
        self.global_site = np.ascontiguousarray(decomposition.global_site_index().ravel(), dtype=np.int64)

        # spike-count history with halo: (slot, type, *with_halo); halo cells beyond an
        # open edge stay zero forever
        self.hist = np.zeros((self.D, self.n_types) + tuple(decomposition.with_halo_shape))
        self._build_stencil_tables(decomposition)
        self.stimulus = Stimulus(config, self.lattice, decomposition.local_start, self.local_shape)
        self.pops = [self._build_population(i, p, dt) for i, p in enumerate(config.populations)]
        # the thread pool pays only when every thread gets sites (numerics.serial_twin)
        import numba
        serial = self.n_local < max(2, numba.get_num_threads())
        self._advance = kernels.advance_fused_serial if serial else kernels.advance_fused
        # Long blocks need no halo (nothing to exchange within them); the choice depends
        # on the configuration only, so every rank loops over the same blocks.
        self.block_steps = fused_block_steps(self.d_min, decomposition.halo_width, self.lattice.n_sites)
        self._per_type = self._per_type_arguments()

    # ------------------------------------------------------------------ construction
    def _build_stencil_tables(self, dec) -> None:
        hs = tuple(dec.with_halo_shape)
        h = dec.halo_width
        strides = np.array([int(np.prod(hs[i + 1:])) for i in range(len(hs))], dtype=np.int64)
        grids = np.meshgrid(*[np.arange(n) + h for n in self.local_shape], indexing="ij")
        self.site_base = np.ascontiguousarray(
            sum(g.ravel().astype(np.int64) * s for g, s in zip(grids, strides)))
        st = self.stencils
        self.st_source = np.array([s.source for s in st], dtype=np.int64)
        self.st_ptr = np.concatenate([[0], np.cumsum([len(s.weights) for s in st])]).astype(np.int64)
        cat = lambda arrs, dtype: (np.concatenate(arrs).astype(dtype) if arrs else np.zeros(0, dtype))
        self.st_flat_off = cat([s.offsets @ strides for s in st], np.int64)
        self.st_weight = cat([s.weights for s in st], np.float64)
        self.st_delay = cat([s.delays for s in st], np.int64)
        N = [p.N for p in self.config.populations]
        self.st_scale = np.array([s.C / N[s.source] for s in st], dtype=np.float64)
        self.st_norm = np.ones((len(st), self.n_local))
        for i, s in enumerate(st):
            self.st_norm[i] = s.edge_normalization(self.lattice, self.decomposition.local_start,
                                                   self.local_shape).ravel()

    def _build_population(self, index: int, pop: PopulationConfig, dt: float) -> dict:
        incoming = [i for i, s in enumerate(self.stencils) if s.target == index]
        tau_s = np.array([self.config.populations[self.stencils[i].source].tau_s for i in incoming])
        prop = membrane_propagators(pop.tau_m, tau_s, dt)
        tables = population_tables(pop, dt, history_length(pop, dt), self.n_local, len(incoming),
                                   self.config.run.cohort_dtype)
        return dict(
            tables, pop=pop, incoming=np.array(incoming, dtype=np.int64), P_mm=prop.P_mm,
            in_J=np.array([self.stencils[i].J for i in incoming], dtype=float),
            in_P_ss=prop.P_ss, in_P_sm=prop.P_sm, in_P_im=prop.P_im,
        )

    def _per_type_arguments(self) -> tuple:
        """The per-type parameters and state of :func:`kernels.advance_fused`, as
        arrays over types and tuples of the (shared, not copied) per-type arrays."""
        pops = [P["pop"] for P in self.pops]

        def per_type(key):
            return tuple(P[key] for P in self.pops)

        def state(key):
            return tuple(P["state"][key] for P in self.pops)

        return (
            np.array([p.N for p in pops], dtype=np.int64), self.dt,
            np.array([P["n_ref"] for P in self.pops], dtype=np.int64),
            np.array([p.u_reset for p in pops], dtype=float), np.array([p.u_th for p in pops], dtype=float),
            np.array([p.c * 1e-3 for p in pops], dtype=float), np.array([p.delta_u for p in pops], dtype=float),
            np.array([P["P_mm"] for P in self.pops], dtype=float),
            per_type("incoming"), per_type("in_J"), per_type("in_P_ss"), per_type("in_P_sm"),
            per_type("in_P_im"), state("y"), per_type("eps_rev"), per_type("theta_tilde_rev"),
            per_type("adapt_w"), per_type("adapt_decay"), per_type("adapt_enter"), state("g"),
            state("m"), state("v"), state("u"), state("lam"), state("n"), state("x"), state("z"),
            state("h"), state("lam_free"), self.noise, self.seed, self.global_site,
        )

    # ------------------------------------------------------------------ interface
    @property
    def history_lengths(self) -> list[int]:
        return [p["K"] for p in self.pops]

    def advance(self, step0: int, nsteps: int, counts_out: np.ndarray, expected_out: np.ndarray) -> None:
        """Simulate steps ``step0 .. step0 + nsteps - 1``: at most ``d_min`` steps
        within one block of ``d_min``, or ``block_steps`` when that is set (a
        lattice without a halo, where nothing is exchanged).

        Parameters
        ----------
        counts_out, expected_out : float64 (nsteps, n_types, n_local)
            Receive the spike counts ``n`` and their expectations ``n_bar``.
        """
        try:
            self._advance(step0, nsteps, self.d_min, self.D, self.hist.reshape(self.D, self.n_types, -1),
                          self.site_base, self.st_source, self.st_ptr, self.st_flat_off, self.st_weight,
                          self.st_delay, self.st_scale, self.st_norm, self.stimulus.mu_block(step0, nsteps),
                          *self._per_type, counts_out, expected_out)
        except (RandomArgumentError, SystemError) as exc:
            # the sampler refuses a NaN probability; numba hands it on as the
            # cause of a SystemError
            if not isinstance(exc, RandomArgumentError) and not isinstance(
                    exc.__cause__ or exc.__context__, RandomArgumentError):
                raise
            suspects = _extreme_parameters(self.config)
            raise OutOfRangeError(
                f"the population equation left the range of double precision between "
                f"{step0 * self.dt:g} and {(step0 + nsteps) * self.dt:g} ms (a firing probability became "
                f"NaN); " + (f"the likely cause: {', '.join(suspects)}" if suspects else
                             "look for extreme parameter or stimulus values")) from None
        # the history slots the exchange must complete; with a halo, a call never
        # leaves its block of d_min steps, and D is a multiple of d_min
        first = step0 % self.D
        self._last_block = (first, first + nsteps)

    def exchange(self) -> None:
        """Collective: fill the halo of the slots written by the last ``advance``."""
        if self.stencils:
            a, b = self._last_block
            self.decomposition.exchange(self.hist[a:b])

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self, copy: bool = True) -> dict:
        """The dynamic state, with the local sites as leading axes ``local_shape`` so
        that a checkpoint can be re-read on another decomposition.

        Valid between :meth:`exchange` and the next :meth:`advance`. With
        ``copy=False`` the arrays that can be are views of the model's own (the
        cohort buffers, most of the state), which the next :meth:`advance`
        changes: for writing a checkpoint without a second copy of the state.

        Returns
        -------
        dict of ndarray
            ``hist`` (*local_shape, D, n_types): the spike counts of the last D steps
            (slot ``t % D`` holds step ``t``; the halo is refilled on loading);
            ``<type>/<name>`` per population: the cohort buffers ``m, v, u, lam, n``
            (*local_shape, K), the free pool ``x, z, h, lam_free`` (*local_shape),
            ``g`` (*local_shape, n_adapt) and the synaptic currents ``y``
            (*local_shape, n_incoming); ``stimulus/ou_<i>`` (*local_shape) the
            states of Ornstein-Uhlenbeck stimuli.
        """
        shape, n = self.local_shape, self.n_local
        interior = (slice(None), slice(None)) + tuple(self.decomposition.interior)
        hist = self.hist[interior].reshape(self.D, self.n_types, n)
        out = dict(hist=np.moveaxis(hist, 2, 0).reshape(shape + (self.D, self.n_types)).copy())
        for P in self.pops:
            for name, a in P["state"].items():
                a = a.T if name == "y" else a  # y is (n_incoming, n_local)
                a = a.reshape(shape + a.shape[1:])
                out[f"{P['pop'].name}/{name}"] = a.copy() if copy else a
        out.update(self.stimulus.state_dict(copy))
        return out

    def load_state_dict(self, d: dict) -> None:
        """Restore the state of :meth:`state_dict` (arrays of this block).

        Collective: refills the halo of the spike-count history from the neighbours.
        """
        n = self.n_local
        hist = np.moveaxis(np.asarray(d["hist"], dtype=np.float64).reshape(n, self.D, self.n_types), 0, 2)
        interior = (slice(None), slice(None)) + tuple(self.decomposition.interior)
        self.hist[:] = 0.0
        self.hist[interior] = hist.reshape((self.D, self.n_types) + self.local_shape)
        for P in self.pops:
            for name, a in P["state"].items():
                b = np.asarray(d[f"{P['pop'].name}/{name}"], dtype=np.float64)
                if name == "y":
                    a[:] = b.reshape(n, a.shape[0]).T
                else:
                    a[:] = b.reshape(a.shape)
        self.stimulus.load_state_dict(d)
        if self.stencils:
            self.decomposition.exchange(self.hist)

    def memory_bytes(self) -> int:
        """Bytes held by the state arrays of this block."""
        total = self.hist.nbytes
        for P in self.pops:
            total += sum(a.nbytes for a in P["state"].values())
        return total
