"""Configuration: frozen dataclasses loaded from one TOML file plus ``--set`` overrides.

Every parameter of MODEL.md sections 1-5 has a field here. Loading validates every
value and raises :class:`ConfigError` with one message that names the key, the value
and what is allowed; the CLI turns it into a one-line error and exit status 2.

Units: ms, mV, Hz, mm, mm/ms (MODEL.md).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import math
import numbers
import re
import sys
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "ConfigError",
    "RunConfig",
    "LatticeConfig",
    "PopulationConfig",
    "KernelConfig",
    "DelayConfig",
    "CouplingConfig",
    "StimulusConfig",
    "RecordConfig",
    "Config",
    "load_config",
    "packaged_config",
    "PACKAGED",
]

def _packaged_names() -> tuple[str, ...]:
    folder = Path(str(resources.files("meshfield") / "configs"))
    return tuple(sorted(p.stem for p in folder.glob("*.toml")))


#: packaged example configurations (``meshfield/configs/NAME.toml``)
PACKAGED = _packaged_names()

KERNEL_SHAPES = ("delta", "gaussian", "exponential", "tophat", "dog", "custom")
STIMULUS_KINDS = ("pulse", "moving_spot", "grating", "step", "ou")


# Upper bounds set by the integer types of the engines (tests/test_config.py checks
# them against the engines' own constants; they are repeated here because importing
# the engines from this module would be an import cycle).
#: meso: spike counts are binomial/Poisson draws with N trials, exact integers in
#: float64 (meshfield.random.N_END - 1)
N_MAX_MESO = 2**53 - 1
#: micro: a neuron's random-number ident is ``type * 2**24 + i``
#: (meshfield.micro.neurons.IDENT_TYPE_STRIDE - 1) ...
N_MAX_MICRO = 2**24 - 1
#: ... and idents are 32-bit (meshfield.random.IDENT_END // IDENT_TYPE_STRIDE types)
TYPES_MAX_MICRO = 2**32 // 2**24
#: in-degrees, synapse and neuron counts are int64
INT64_MAX = 2**63 - 1
#: the step counter (and, at the micro level, the synapse counter of the connectivity
#: draws) of the random numbers is below 2**48 (meshfield.random.STEP_END)
COUNTER_MAX = 2**48 - 1
#: global site indices of the random numbers are 32-bit (meshfield.random.SITE_END)
SITES_MAX = 2**32
#: meso: the storage types of the cohort arrays m, v, u, lam, n (run.cohort_dtype)
COHORT_DTYPES = ("float64", "float32")
#: meso: the facilitating (negative) threshold jumps per spike, sum |J_theta| / tau_theta,
#: at most this many delta_u (exp(-eps_theta / delta_u) of the quasi-renewal
#: threshold stays below e**700, about 1e304, within double precision)
FACILITATION_MAX = 700.0
#: the history length K of the meso level: at most this many milliseconds ...
K_MAX_MS = 1e7
#: ... and at most this many steps
K_MAX_STEPS = 2**31 - 1


def history_limit(dt: float) -> int:
    """The largest history length K (steps) at step ``dt``: ``min(K_MAX_MS / dt,
    K_MAX_STEPS)``, for an explicit and an automatic K alike."""
    steps = K_MAX_MS / dt  # inf for a tiny dt
    if steps >= K_MAX_STEPS:
        return K_MAX_STEPS
    return int(math.floor(steps + 1e-9))


def to_steps(t_ms: float, dt: float) -> int:
    """A duration (ms) in whole steps, rounded to the nearest (halves up)."""
    return int(math.floor(t_ms / dt + 0.5 + 1e-9))


def fits_step_counter(t_ms: float, dt: float) -> bool:
    """Whether a duration (ms), in whole steps of ``dt``, is at most
    :data:`COUNTER_MAX` steps (and not infinite): a delay or refractory period
    longer than any run can be."""
    return math.isfinite(t_ms / dt) and to_steps(t_ms, dt) <= COUNTER_MAX


def refractory_steps(t_ref: float, dt: float) -> int:
    """``n_ref``: the absolute refractory period ``t_ref`` (ms) in whole steps of ``dt``,
    rounded as delays are (:func:`to_steps`: to the nearest, halves up, so that a
    decimal tie such as 0.35 ms / 0.1 ms, 3.4999... in floating point, gives 4).
    The one definition of both levels and the theory."""
    return to_steps(t_ref, dt)


class ConfigError(ValueError):
    """An invalid configuration value; the message names key, value and what is allowed."""


# --------------------------------------------------------------------------- helpers


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _as_written(value: Any) -> str:
    """A value as a TOML file or ``--set`` writes it where Python's repr differs:
    ``true``/``false`` for booleans, ISO dates and times; lists and tables
    element by element; everything else as its repr."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (datetime.date, datetime.time)):  # datetime.datetime is a date
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_as_written(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_as_written(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _fail(key: str, value: Any, allowed: str) -> None:
    raise ConfigError(f"{key} = {_as_written(value)} is invalid: {allowed}")


def _number(key: str, value: Any) -> float:
    # numbers.Real: Python's int and float, and NumPy's scalars from scripts
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        _fail(key, value, "expected a number")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond float's range (TOML integers have no limit)
        _fail(key, _digits(value), "expected a finite number")
    if not math.isfinite(number):
        _fail(key, value, "expected a finite number")
    return number


class _digits(int):
    """An integer too long to show: its repr gives its size, not its digits."""

    def __repr__(self) -> str:
        text = str(abs(int(self)))
        return f"{'-' * (self < 0)}{text[:6]}... ({len(text)} digits)"


def _positive(key: str, value: Any, allow_zero: bool = False, allow_inf: bool = False) -> float:
    if allow_inf and isinstance(value, (int, float)) and value == math.inf:
        return math.inf
    v = _number(key, value)
    if v < 0 or (v == 0 and not allow_zero):
        _fail(key, value, "must be >= 0" if allow_zero else "must be > 0")
    return v


def _integer(key: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> int:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = int(value)  # NumPy's integer scalars too
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            _fail(key, value, "expected an integer")
    if minimum is not None and value < minimum:
        _fail(key, value, f"must be >= {minimum}")
    if maximum is not None and value > maximum:
        _fail(key, value, f"must be <= {maximum}")
    return int(value)


def _choice(key: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        _fail(key, value, "allowed: " + ", ".join(repr(a) for a in allowed))
    return value


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        _fail(key, value, "expected true or false")
    return value


def _number_list(key: str, value: Any) -> tuple[float, ...]:
    if not isinstance(value, (list, tuple)):
        _fail(key, value, "expected a list of numbers")
    return tuple(_number(f"{key}[{i}]", v) for i, v in enumerate(value))


def _kind(value: Any) -> str:
    """What a TOML value is, in words: ``a number``, ``an array``, ..."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"


def _check_keys(section: str, table: dict, allowed: set[str]) -> None:
    if not isinstance(table, dict):
        _fail(section, table, "expected a table")
    unknown = sorted(set(table) - allowed)
    if "" in unknown:
        raise ConfigError(
            f"an empty key name (\"\") in [{section or 'top level'}] is not allowed; allowed keys: "
            + ", ".join(sorted(allowed))
        )
    if unknown:
        key = f"{section}.{unknown[0]}" if section else unknown[0]
        raise ConfigError(
            f"{key} is not a known key; allowed in [{section or 'top level'}]: "
            + ", ".join(sorted(allowed))
        )


# --------------------------------------------------------------------------- sections


@dataclass(frozen=True)
class RunConfig:
    """``[run]``: level, duration, step, seed, noise model and the storage type of
    the mesoscopic cohort arrays (``cohort_dtype``; arithmetic is float64 either way)."""

    level: str = "meso"
    t_end: float = 1000.0
    dt: float = 0.5
    seed: int = 1
    mean_field: bool = False
    noise: str = "binomial"
    progress_interval: float = 10.0
    cohort_dtype: str = "float64"

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        _check_keys("run", d, {f.name for f in fields(cls)})
        c = cls(**d)
        _choice("run.level", c.level, ("meso", "micro"))
        _positive("run.t_end", c.t_end)
        _positive("run.dt", c.dt)
        _integer("run.seed", c.seed, 0, 2**32 - 1)
        _bool("run.mean_field", c.mean_field)
        _choice("run.noise", c.noise, ("binomial", "poisson"))
        _choice("run.cohort_dtype", c.cohort_dtype, COHORT_DTYPES)
        _positive("run.progress_interval", c.progress_interval)
        if c.mean_field and c.level == "micro":
            _fail("run.mean_field", True, "the mean-field limit exists only for level = 'meso'")
        n_steps = c.t_end / c.dt  # may be inf for a tiny dt
        if not (math.isfinite(n_steps) and round(n_steps) <= COUNTER_MAX):
            shown = f"{round(n_steps)}" if n_steps < 1e18 else f"{n_steps:.3g}"
            raise ConfigError(
                f"run.t_end = {c.t_end!r} with run.dt = {c.dt!r} is invalid: the run would have "
                f"{shown} steps (round(t_end / dt)); at most 2**48 - 1 = {COUNTER_MAX} steps are "
                "allowed (the step counter of the random numbers)")
        return cls(
            level=c.level, t_end=float(c.t_end), dt=float(c.dt), seed=int(c.seed),
            mean_field=c.mean_field, noise=c.noise, progress_interval=float(c.progress_interval),
            cohort_dtype=c.cohort_dtype,
        )

    @property
    def n_steps(self) -> int:
        """Number of time steps, ``round(t_end / dt)``."""
        return int(round(self.t_end / self.dt))


@dataclass(frozen=True)
class LatticeConfig:
    """``[lattice]``: shape (sites per axis), spacing ``dx`` (mm), boundary."""

    shape: tuple[int, ...] = (1,)
    dx: float = 0.1
    boundary: str = "periodic"

    @classmethod
    def from_dict(cls, d: dict) -> "LatticeConfig":
        _check_keys("lattice", d, {f.name for f in fields(cls)})
        shape = d.get("shape", [1])
        if not isinstance(shape, (list, tuple)) or len(shape) not in (1, 2):
            _fail("lattice.shape", shape, "expected [n] (1-D) or [nx, ny] (2-D)")
        shape = tuple(_integer(f"lattice.shape[{i}]", n, 1) for i, n in enumerate(shape))
        if math.prod(shape) > SITES_MAX:
            _fail("lattice.shape", list(shape),
                  f"{math.prod(shape)} sites; at most 2**32 = {SITES_MAX} sites are allowed (the "
                  "global site index of the random numbers is 32-bit)")
        dx = _positive("lattice.dx", d.get("dx", 0.1))
        boundary = _choice("lattice.boundary", d.get("boundary", "periodic"), ("periodic", "open"))
        return cls(shape=shape, dx=dx, boundary=boundary)


#: Characters of a type name: it is a key of ``--set populations.NAME.KEY`` paths
#: (split at dots) and of checkpoint arrays ``NAME/...`` (HDF5 paths, split at '/').
_TYPE_NAME = re.compile(r"[A-Za-z0-9_-]+")
#: A name the checkpoint's own arrays take (the spike-count history ``hist``).
_RESERVED_TYPE_NAMES = ("hist",)


def _check_type_name(name: str) -> None:
    """Refuse a type name that ``--set`` paths or checkpoints could not hold."""
    if not _TYPE_NAME.fullmatch(name):
        bad = sorted({ch for ch in name if not _TYPE_NAME.fullmatch(ch)})
        raise ConfigError(f"populations.{name!r}: the type name holds {', '.join(map(repr, bad))}; "
                          "allowed are ASCII letters, digits, '_' and '-' (names are parts of --set paths "
                          "such as populations.E.mu and of the checkpoint's array paths)")
    if name in _RESERVED_TYPE_NAMES:
        raise ConfigError(f"populations.{name!r}: the type name {name!r} is reserved (the "
                          "checkpoint's spike-count history); choose another name")


@dataclass(frozen=True)
class PopulationConfig:
    """``[populations.NAME]``: one GLIF population type (MODEL.md §2).

    ``K`` is the history length of the mesoscopic model in steps; 0 (the default)
    chooses it automatically (:func:`meshfield.meso.history_length`).
    """

    name: str
    N: int
    mu: float
    tau_m: float = 20.0
    t_ref: float = 4.0
    u_reset: float = 0.0
    u_th: float = 15.0
    c: float = 10.0
    delta_u: float = 2.5
    tau_theta: tuple[float, ...] = ()
    J_theta: tuple[float, ...] = ()
    tau_s: float = 3.0
    K: int = 0

    @classmethod
    def from_dict(cls, name: str, d: dict, level: str = "meso") -> "PopulationConfig":
        sec = f"populations.{name}"
        _check_keys(sec, d, {f.name for f in fields(cls)} - {"name"})
        for required in ("N", "mu"):
            if required not in d:
                raise ConfigError(f"{sec}.{required} is missing; every population needs N and mu")
        kw = dict(d)
        kw["N"] = _integer(f"{sec}.N", kw["N"], 1)
        if level == "micro" and kw["N"] > N_MAX_MICRO:
            _fail(f"{sec}.N", kw["N"],
                  f"the micro level allows 1 ... 2**24 - 1 = {N_MAX_MICRO} neurons per site and type "
                  "(a neuron's random-number ident is type * 2**24 + i)")
        if kw["N"] > N_MAX_MESO:
            _fail(f"{sec}.N", kw["N"],
                  f"allowed: 1 ... 2**53 - 1 = {N_MAX_MESO} neurons per site and type (spike counts "
                  f"are exact integers in float64; the micro level allows at most {N_MAX_MICRO})")
        kw["mu"] = _number(f"{sec}.mu", kw["mu"])
        for key in ("tau_m", "c", "delta_u"):
            if key in kw:
                kw[key] = _positive(f"{sec}.{key}", kw[key])
        for key in ("t_ref", "tau_s"):
            if key in kw:
                kw[key] = _positive(f"{sec}.{key}", kw[key], allow_zero=True)
        for key in ("u_reset", "u_th"):
            if key in kw:
                kw[key] = _number(f"{sec}.{key}", kw[key])
        tau_theta = _number_list(f"{sec}.tau_theta", kw.get("tau_theta", []))
        J_theta = _number_list(f"{sec}.J_theta", kw.get("J_theta", []))
        for i, t in enumerate(tau_theta):
            _positive(f"{sec}.tau_theta[{i}]", t)
        if len(tau_theta) != len(J_theta):
            _fail(f"{sec}.J_theta", list(J_theta),
                  f"needs one entry per adaptation time constant (tau_theta has {len(tau_theta)})")
        if not math.isfinite(sum(abs(J) / t for J, t in zip(J_theta, tau_theta))):
            _fail(f"{sec}.J_theta", list(J_theta),
                  f"the threshold jumps per spike J_theta / tau_theta (tau_theta = {list(tau_theta)}) must "
                  f"sum to a finite number of mV; these overflow double precision")
        # terms of equal tau_theta act as one (J = 1e4 and -1e4 at the same tau cancel)
        per_tau: dict[float, float] = {}
        for J, t in zip(J_theta, tau_theta):
            per_tau[t] = per_tau.get(t, 0.0) + J / t
        facilitation = sum(-jump for jump in per_tau.values() if jump < 0)
        delta_u = kw.get("delta_u", cls.delta_u)
        if level == "meso" and facilitation > FACILITATION_MAX * delta_u:
            _fail(f"{sec}.J_theta", list(J_theta),
                  f"the negative (facilitating) jumps per spike sum to {facilitation:.6g} mV; the "
                  f"mesoscopic model allows at most {FACILITATION_MAX:g} delta_u = "
                  f"{FACILITATION_MAX * delta_u:.6g} mV, since its quasi-renewal threshold holds "
                  f"exp(-eps_theta / delta_u) (MODEL.md §4), which overflows double precision beyond "
                  f"about exp(709)")
        kw["tau_theta"], kw["J_theta"] = tau_theta, J_theta
        kw["K"] = _integer(f"{sec}.K", kw.get("K", 0), 0)  # upper bound: Config._check_sizes (needs dt)
        return cls(name=name, **kw)


@dataclass(frozen=True)
class KernelConfig:
    """Spatial coupling kernel (MODEL.md §3); lengths in mm.

    ``shape``: ``delta`` (same site only), ``gaussian`` (``sigma``), ``exponential``
    (``length``), ``tophat`` (``radius``), ``dog`` (``sigma_center``,
    ``sigma_surround``, ``surround_weight``), ``custom`` (``weights``: a list of
    ``[offset..., weight]`` rows in lattice units). ``r_max`` is the cutoff radius (mm).
    """

    shape: str = "delta"
    r_max: float = 0.0
    sigma: float = 0.0
    length: float = 0.0
    radius: float = 0.0
    sigma_center: float = 0.0
    sigma_surround: float = 0.0
    surround_weight: float = 0.0
    weights: tuple[tuple[float, ...], ...] = ()

    @classmethod
    def from_dict(cls, key: str, d: dict) -> "KernelConfig":
        _check_keys(key, d, {f.name for f in fields(cls)})
        shape = _choice(f"{key}.shape", d.get("shape", "delta"), KERNEL_SHAPES)
        need = {
            "delta": (),
            "gaussian": ("sigma",),
            "exponential": ("length",),
            "tophat": ("radius",),
            "dog": ("sigma_center", "sigma_surround", "surround_weight"),
            "custom": ("weights",),
        }[shape]
        for k in need:
            if k not in d:
                raise ConfigError(f"{key}.{k} is missing; a {shape!r} kernel needs " + ", ".join(need))
        kw: dict[str, Any] = {"shape": shape}
        for k in ("sigma", "length", "radius", "sigma_center", "sigma_surround"):
            if k in d:
                kw[k] = _positive(f"{key}.{k}", d[k])
        if "surround_weight" in d:
            kw["surround_weight"] = _positive(f"{key}.surround_weight", d["surround_weight"], allow_zero=True)
        if shape == "custom":
            rows = d["weights"]
            if not isinstance(rows, (list, tuple)) or not rows:
                _fail(f"{key}.weights", rows, "expected a non-empty list of [offset..., weight] rows")
            parsed = []
            for i, row in enumerate(rows):
                vals = _number_list(f"{key}.weights[{i}]", row)
                if len(vals) < 2 or any(not float(v).is_integer() for v in vals[:-1]):
                    _fail(f"{key}.weights[{i}]", row, "expected [offset..., weight] with integer offsets")
                _positive(f"{key}.weights[{i}] weight", vals[-1], allow_zero=True)
                parsed.append(vals)
            offsets = [tuple(row[:-1]) for row in parsed]
            for i, offset in enumerate(offsets):
                if offset in offsets[:i]:
                    _fail(f"{key}.weights[{i}]", rows[i], f"it repeats the offset {list(map(int, offset))} "
                          f"of weights[{offsets.index(offset)}]; each offset may appear once")
            if all(row[-1] == 0 for row in parsed):
                _fail(f"{key}.weights", rows, "the weights are all zero; at least one weight must be > 0")
            kw["weights"] = tuple(parsed)
        default_r_max = {
            "delta": 0.0,
            "gaussian": 3.0 * kw.get("sigma", 0.0),
            "exponential": 4.0 * kw.get("length", 0.0),
            "tophat": kw.get("radius", 0.0),
            "dog": 3.0 * max(kw.get("sigma_center", 0.0), kw.get("sigma_surround", 0.0)),
            "custom": math.inf,
        }[shape]
        kw["r_max"] = _positive(f"{key}.r_max", d.get("r_max", default_r_max), allow_zero=True, allow_inf=True)
        if shape == "dog" and kw["sigma_surround"] <= kw["sigma_center"]:
            _fail(f"{key}.sigma_surround", kw["sigma_surround"], "must exceed sigma_center")
        return cls(**kw)


@dataclass(frozen=True)
class DelayConfig:
    """Delay rule ``Δ(o) = d0 + |o| dx / velocity`` (ms; velocity in mm/ms, inf = constant)."""

    d0: float = 1.0
    velocity: float = math.inf

    @classmethod
    def from_dict(cls, key: str, d: dict) -> "DelayConfig":
        _check_keys(key, d, {"d0", "velocity"})
        d0 = _positive(f"{key}.d0", d.get("d0", 1.0), allow_zero=True)
        velocity = _positive(f"{key}.velocity", d.get("velocity", math.inf), allow_inf=True)
        return cls(d0=d0, velocity=velocity)


@dataclass(frozen=True)
class CouplingConfig:
    """``[[couplings]]``: connections from type ``source`` onto type ``target``."""

    target: str
    source: str
    J: float
    C: int
    kernel: KernelConfig = field(default_factory=KernelConfig)
    delay: DelayConfig = field(default_factory=DelayConfig)

    @classmethod
    def from_dict(cls, i: int, d: dict, types: tuple[str, ...]) -> "CouplingConfig":
        sec = f"couplings[{i}]"
        _check_keys(sec, d, {"target", "source", "J", "C", "kernel", "delay"})
        for k in ("target", "source", "J", "C"):
            if k not in d:
                raise ConfigError(f"{sec}.{k} is missing; a coupling needs target, source, J and C")
        for k in ("target", "source"):
            _choice(f"{sec}.{k}", d[k], types)
        C = _integer(f"{sec}.C", d["C"], 0)
        if C > INT64_MAX:
            _fail(f"{sec}.C", C, f"allowed: 0 ... 2**63 - 1 = {INT64_MAX} inputs per neuron (int64)")
        return cls(
            target=d["target"],
            source=d["source"],
            J=_number(f"{sec}.J", d["J"]),
            C=C,
            kernel=KernelConfig.from_dict(f"{sec}.kernel", d.get("kernel", {})),
            delay=DelayConfig.from_dict(f"{sec}.delay", d.get("delay", {})),
        )


@dataclass(frozen=True)
class StimulusConfig:
    """``[[stimuli]]``: space-time input added to ``mu`` (MODEL.md §5).

    ``kind``:
    ``pulse``: Gaussian in space (``center`` mm, ``width`` mm), rectangular in time
    (``t_start``, ``duration`` ms); ``moving_spot``: Gaussian spot starting at
    ``center`` moving with ``velocity`` (mm/ms per axis) between ``t_start`` and
    ``t_start + duration``; ``grating``: ``amplitude * cos(k·x - omega t)`` with
    ``wavelength`` (mm), ``direction`` (axis-0 angle, rad), ``frequency`` (Hz);
    ``step``: ``amplitude`` from ``t_start`` on (everywhere); ``ou``: per-site
    Ornstein-Uhlenbeck noise with standard deviation ``amplitude`` (mV) and
    correlation time ``tau`` (ms). ``types`` lists the affected types (default: all).
    """

    kind: str
    amplitude: float
    types: tuple[str, ...] = ()
    center: tuple[float, ...] = ()
    width: float = 0.0
    t_start: float = 0.0
    duration: float = math.inf
    velocity: tuple[float, ...] = ()
    wavelength: float = 0.0
    direction: float = 0.0
    frequency: float = 0.0
    tau: float = 0.0

    #: the keys each kind uses (besides kind, amplitude, types, t_start, duration)
    KEYS = {
        "pulse": ("center", "width"),
        "moving_spot": ("center", "width", "velocity"),
        "grating": ("wavelength", "direction", "frequency"),
        "step": (),
        "ou": ("tau",),
    }

    def step_window(self, dt: float) -> tuple[int, float]:
        """The steps ``first <= s < end`` at whose start ``s dt`` the stimulus is on
        (``t_start <= s dt < t_start + duration``, decided on whole steps with the
        tolerance of :func:`to_steps`, not by rounding-prone float comparisons);
        ``end`` is ``inf`` for an unlimited duration."""
        first = math.ceil(self.t_start / dt - 1e-9)
        end = math.inf if math.isinf(self.duration) else math.ceil((self.t_start + self.duration) / dt - 1e-9)
        return first, end

    @classmethod
    def from_dict(cls, i: int, d: dict, types: tuple[str, ...], ndim: int) -> "StimulusConfig":
        sec = f"stimuli[{i}]"
        _check_keys(sec, d, {f.name for f in fields(cls)})
        if "kind" not in d:
            raise ConfigError(f"{sec}.kind is missing; allowed: " + ", ".join(STIMULUS_KINDS))
        kind = _choice(f"{sec}.kind", d["kind"], STIMULUS_KINDS)
        uses = ("kind", "amplitude", "types", "t_start", "duration", *cls.KEYS[kind])
        unused = [k for k in d if k not in uses]
        if unused:
            other = [other for other, keys in cls.KEYS.items() if unused[0] in keys]
            hint = f" (it belongs to kind = {' or '.join(map(repr, other))})" if other else ""
            raise ConfigError(
                f"{sec}.{unused[0]} is not used by a {kind!r} stimulus{hint}; a {kind!r} stimulus takes "
                + ", ".join(uses))
        if "amplitude" not in d:
            raise ConfigError(f"{sec}.amplitude is missing (mV)")
        kw: dict[str, Any] = {"kind": kind, "amplitude": _number(f"{sec}.amplitude", d["amplitude"])}
        stim_types = d.get("types", list(types))
        if not isinstance(stim_types, (list, tuple)):
            _fail(f"{sec}.types", stim_types, "expected a list of type names")
        if not stim_types:
            _fail(f"{sec}.types", stim_types,
                  "expected a non-empty list of type names (allowed: " + ", ".join(map(repr, types))
                  + "); leave types out for all types, or remove the stimulus")
        kw["types"] = tuple(_choice(f"{sec}.types", t, types) for t in stim_types)
        if len(set(kw["types"])) < len(kw["types"]):
            _fail(f"{sec}.types", stim_types, "each type may appear once (a stimulus acts once on each "
                  "type it names; listing a type twice would not double its amplitude)")
        for k in ("center", "velocity"):
            if k in d:
                v = _number_list(f"{sec}.{k}", d[k])
                if len(v) != ndim:
                    _fail(f"{sec}.{k}", list(v), f"needs {ndim} component(s), one per lattice axis")
                kw[k] = v
        for k in ("width", "wavelength", "tau"):
            if k in d:
                kw[k] = _positive(f"{sec}.{k}", d[k])
        for k in ("t_start", "direction", "frequency"):
            if k in d:
                kw[k] = _number(f"{sec}.{k}", d[k])
        if "duration" in d:
            kw["duration"] = _positive(f"{sec}.duration", d["duration"], allow_inf=True)
        need = {
            "pulse": ("center", "width"),
            "moving_spot": ("center", "width", "velocity"),
            "grating": ("wavelength",),
            "step": (),
            "ou": ("tau",),
        }[kind]
        for k in need:
            if k not in kw:
                raise ConfigError(f"{sec}.{k} is missing; {_article(kind)} {kind!r} stimulus needs "
                                  + ", ".join(need))
        if kind == "ou" and kw["amplitude"] < 0:
            _fail(f"{sec}.amplitude", kw["amplitude"], "the standard deviation of the noise (mV) must be >= 0")
        return cls(**kw)


@dataclass(frozen=True)
class RecordConfig:
    """``[record]``: record interval (ms) and microscopic extras."""

    interval: float = 1.0
    spikes_per_site: int = 0
    voltage_neurons: int = 0

    @classmethod
    def from_dict(cls, d: dict) -> "RecordConfig":
        _check_keys("record", d, {f.name for f in fields(cls)})
        return cls(
            interval=_positive("record.interval", d.get("interval", 1.0)),
            spikes_per_site=_integer("record.spikes_per_site", d.get("spikes_per_site", 0), 0),
            voltage_neurons=_integer("record.voltage_neurons", d.get("voltage_neurons", 0), 0),
        )


# --------------------------------------------------------------------------- the whole


@dataclass(frozen=True)
class Config:
    """A complete, validated meshfield configuration."""

    run: RunConfig
    lattice: LatticeConfig
    populations: tuple[PopulationConfig, ...]
    couplings: tuple[CouplingConfig, ...] = ()
    stimuli: tuple[StimulusConfig, ...] = ()
    record: RecordConfig = field(default_factory=RecordConfig)

    @property
    def types(self) -> tuple[str, ...]:
        """Population type names in order."""
        return tuple(p.name for p in self.populations)

    @property
    def record_every(self) -> int:
        """Steps per record."""
        return int(round(self.record.interval / self.run.dt))

    @property
    def n_records(self) -> int:
        return self.run.n_steps // self.record_every

    @classmethod
    def from_dict(cls, d: dict) -> "Config":
        _check_keys("", d, {"run", "lattice", "populations", "couplings", "stimuli", "record"})
        run = RunConfig.from_dict(d.get("run", {}))
        lattice = LatticeConfig.from_dict(d.get("lattice", {}))
        if "populations" not in d:
            raise ConfigError("populations is missing; define at least one [populations.NAME] table")
        pops_d = d["populations"]
        if not isinstance(pops_d, dict):
            _fail("populations", pops_d, f"found {_kind(pops_d)}; expected a table of tables, one per "
                  "type ([populations.NAME], e.g. [populations.E])")
        if not pops_d:
            raise ConfigError("populations is empty; define at least one [populations.NAME] table")
        for name in pops_d:
            if not isinstance(name, str):
                _fail("populations", list(pops_d), "type names must be strings")
            if not name.strip():
                raise ConfigError(f"populations.{name!r}: the type name is empty; name each type, "
                                  "e.g. [populations.E]")
            _check_type_name(name)
        for name, p in pops_d.items():
            missing = [key for key in ("N", "mu") if isinstance(p, dict) and key not in p]
            others = [other for other in pops_d if other != name and isinstance(pops_d[other], dict)
                      and not {"N", "mu"} - set(pops_d[other])]
            if missing and others:  # most often a misspelt type name in --set, which makes a new table
                raise ConfigError(f"populations.{name}.{missing[0]} is missing; every population needs N and mu "
                                  f"(the configuration's types are {', '.join(others)}: is {name!r} misspelt?)")
        pops = tuple(PopulationConfig.from_dict(name, p, run.level) for name, p in pops_d.items())
        types = tuple(p.name for p in pops)
        couplings_d = d.get("couplings", [])
        if not isinstance(couplings_d, list):
            _fail("couplings", couplings_d, "expected an array of tables [[couplings]]")
        couplings = tuple(CouplingConfig.from_dict(i, c, types) for i, c in enumerate(couplings_d))
        seen = set()
        for i, c in enumerate(couplings):
            if (c.target, c.source) in seen:
                raise ConfigError(
                    f"couplings[{i}] repeats target = {c.target!r}, source = {c.source!r}; "
                    "each ordered pair may appear once")
            seen.add((c.target, c.source))
        stimuli_d = d.get("stimuli", [])
        if not isinstance(stimuli_d, list):
            _fail("stimuli", stimuli_d, "expected an array of tables [[stimuli]]")
        stimuli = tuple(StimulusConfig.from_dict(i, s, types, len(lattice.shape))
                        for i, s in enumerate(stimuli_d))
        record = RecordConfig.from_dict(d.get("record", {}))
        cfg = cls(run=run, lattice=lattice, populations=pops, couplings=couplings,
                  stimuli=stimuli, record=record)
        cfg._check_steps()
        cfg._check_sizes()
        return cfg

    def _check_steps(self) -> None:
        dt = self.run.dt
        ratio = self.record.interval / dt
        if not math.isfinite(ratio) or abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
            _fail("record.interval", self.record.interval, f"must be a positive multiple of run.dt = {dt}")
        if self.n_records < 1:
            _fail("run.t_end", self.run.t_end, f"must cover at least one record interval ({self.record.interval} ms)")
        # (at the meso level the history length, K >= t_ref / dt, has the tighter bound)
        for p in self.populations if self.run.level == "micro" else ():
            if not fits_step_counter(p.t_ref, dt):
                _fail(f"populations.{p.name}.t_ref", p.t_ref,
                      f"{p.t_ref / dt:.3g} steps of run.dt = {dt} ms, longer than any run can be: at "
                      f"most 2**48 - 1 = {COUNTER_MAX} steps (the step counter of the random numbers)")
        for i, c in enumerate(self.couplings):
            if not fits_step_counter(c.delay.d0, dt):
                _fail(f"couplings[{i}].delay.d0", c.delay.d0,
                      f"{c.delay.d0 / dt:.3g} steps of run.dt = {dt} ms; a delay may have at most "
                      f"2**48 - 1 = {COUNTER_MAX} steps (the step counter of the random numbers)")
            # (that every delay is >= one step is checked per offset with the stencil,
            # meshfield.coupling.build_stencil: d0 < dt/2 is fine where no offset has |o| = 0)
        for i, st in enumerate(self.stimuli):
            first, end = st.step_window(dt)
            if end <= max(first, 0):
                raise ConfigError(
                    f"stimuli[{i}]: the window t_start = {st.t_start:g} ms .. t_start + duration = "
                    f"{st.t_start + st.duration:g} ms holds no step start on the grid of run.dt = {dt:g} ms "
                    "(the drive of a step is evaluated at its start), so the stimulus would never act")
            if st.kind == "grating":
                k = 2.0 * math.pi / st.wavelength
                along = [abs(k * math.cos(st.direction)), abs(k * math.sin(st.direction))][:len(self.lattice.shape)]
                if not math.isfinite(k) or any(ka * self.lattice.dx > math.pi * (1 + 1e-12) for ka in along):
                    _fail(f"stimuli[{i}].wavelength", st.wavelength,
                          f"the grating's period along a lattice axis must be at least 2 dx = "
                          f"{2 * self.lattice.dx:g} mm, or the lattice cannot represent it (aliasing)")
                nyquist = 1000.0 / (2.0 * dt)
                if abs(st.frequency) > nyquist * (1 + 1e-12):
                    _fail(f"stimuli[{i}].frequency", st.frequency,
                          f"at most {nyquist:g} Hz in magnitude, half the rate of the time steps of run.dt = "
                          f"{dt:g} ms, or the steps cannot represent it (aliasing)")

    def _check_sizes(self) -> None:
        """Upper bounds that involve several sections: history lengths, recorded
        neurons, the kernels of the active couplings and, at the micro level, the
        neuron and synapse counts of the whole network."""
        dt = self.run.dt
        k_max = history_limit(dt)
        for p in self.populations:
            if p.K > k_max:
                _fail(f"populations.{p.name}.K", p.K,
                      f"allowed: 0 (automatic) ... {k_max} steps (a history of at most {K_MAX_MS:g} ms "
                      f"at run.dt = {dt} ms and at most 2**31 - 1 steps)")
        n_max = max(p.N for p in self.populations)
        sizes = ", ".join(f"{p.name}: {p.N}" for p in self.populations)
        for key in ("spikes_per_site", "voltage_neurons"):
            value = getattr(self.record, key)
            if value > n_max:
                _fail(f"record.{key}", value,
                      f"allowed: 0 ... {n_max}, the largest N of the types ({sizes}); neurons "
                      f"i < record.{key} of every type are recorded at every site")
        ndim = len(self.lattice.shape)
        active = [(i, c) for i, c in enumerate(self.couplings) if c.C > 0 and c.J != 0.0]
        for i, c in active:
            k = c.kernel
            # The clipped DoG is largest at offset 0, where it is g_center(0) times
            # 1 - w / (s_s/s_c)**ndim: zero everywhere unless w is below that
            # power, and by more than rounding (at w equal to it, the difference
            # of the two Gaussians is a residue of 1e-16 that normalization would
            # turn into a delta kernel).
            if k.shape == "dog" and k.surround_weight >= (1 - 1e-9) * (k.sigma_surround / k.sigma_center) ** ndim:
                _fail(f"couplings[{i}].kernel.surround_weight", k.surround_weight,
                      f"the surround cancels the center everywhere, so the kernel (clipped at 0) is zero; "
                      f"with sigma_center = {k.sigma_center}, sigma_surround = {k.sigma_surround} on a "
                      f"{ndim}-D lattice it must be < (sigma_surround/sigma_center)**{ndim} = "
                      f"{(k.sigma_surround / k.sigma_center) ** ndim:.6g}")
        if self.run.level != "micro":
            return
        types = self.types
        if len(types) > TYPES_MAX_MICRO:
            raise ConfigError(f"populations has {len(types)} types; the micro level allows at most "
                              f"{TYPES_MAX_MICRO} types (neuron idents type * 2**24 + i are 32-bit)")
        # (a self-coupling with the same-site offset and N < 2 is refused, as a
        # ConfigError, by meshfield.micro.connectivity before any synapse is drawn)
        n_sites = math.prod(self.lattice.shape)
        per_target: dict[str, int] = {}
        for i, c in active:
            per_target[c.target] = per_target.get(c.target, 0) + c.C
            if per_target[c.target] > COUNTER_MAX:
                _fail(f"couplings[{i}].C", c.C,
                      f"at the micro level the in-degrees C of the couplings onto type {c.target!r} "
                      f"sum to {per_target[c.target]}, but at most 2**48 - 1 = {COUNTER_MAX} are allowed "
                      "(the synapse counter of the connectivity's random numbers)")
        neurons = n_sites * sum(p.N for p in self.populations)
        if neurons > INT64_MAX:
            big = max(self.populations, key=lambda p: p.N)
            _fail(f"populations.{big.name}.N", big.N,
                  f"the micro network would have {neurons} neurons ({n_sites} sites x sum of N); "
                  f"neuron ids are int64 and allow at most 2**63 - 1 = {INT64_MAX}")
        contrib = [(n_sites * self.population(c.target).N * c.C, i, c) for i, c in active]
        synapses = sum(x for x, _, _ in contrib)
        if synapses > INT64_MAX:
            _, i, c = max(contrib, key=lambda t: t[0])
            _fail(f"couplings[{i}].C", c.C,
                  f"the micro network would have {synapses} synapses (sites x N of the target x C, "
                  f"summed over couplings); synapse indices are int64 and allow at most 2**63 - 1 = "
                  f"{INT64_MAX}")

    def to_dict(self) -> dict:
        """The configuration as nested dicts, as in the TOML (inf velocities/durations omitted)."""

        def clean(obj):
            if isinstance(obj, dict):
                return {k: clean(v) for k, v in obj.items()
                        if not (isinstance(v, float) and math.isinf(v))}
            if isinstance(obj, (list, tuple)):
                return [clean(v) for v in obj]
            return obj

        d = {
            "run": asdict(self.run),
            "lattice": asdict(self.lattice),
            "populations": {p.name: {k: v for k, v in asdict(p).items() if k != "name"}
                            for p in self.populations},
            "couplings": [dict(asdict(c), kernel=_set_fields(c.kernel, keep=("shape", "r_max")))
                          for c in self.couplings],
            "stimuli": [_set_fields(s, keep=("kind", "amplitude", "types")) for s in self.stimuli],
            "record": asdict(self.record),
        }
        return clean(d)

    def population(self, name: str) -> PopulationConfig:
        return self.populations[self.types.index(name)]


def _set_fields(obj, keep=()) -> dict:
    """The fields of a dataclass that differ from their defaults (plus ``keep``):
    the keys a user wrote, so the dict validates again."""
    out = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        default = f.default if f.default is not dataclasses.MISSING else None
        if f.name in keep or value != default:
            out[f.name] = value
    return out


# --------------------------------------------------------------------------- loading


def _parse_value(text: str) -> Any:
    """Parse the right-hand side of ``--set key=value`` as a TOML value (bare words are strings)."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _check_table(key: str, text: str, parts: list, i: int, node: Any) -> None:
    """Refuse to descend into ``parts[i]`` of ``node`` (reached by ``parts[:i]``) unless
    ``node`` is a table or an array."""
    if isinstance(node, (dict, list)):
        return
    where = ".".join(parts[:i])
    raise ConfigError(
        f"--set {key}={text.strip()} is invalid: {where} is a value ({_kind(node)}: {node!r}), "
        f"not a table, so it has no key {parts[i]!r}; set {where}=VALUE instead")


def _is_index(part: str) -> bool:
    """Whether a part of a ``--set`` key is an array index: ASCII digits only
    (``str.isdigit`` also accepts ``'²'``, which ``int`` refuses)."""
    return part.isascii() and part.isdigit()


def apply_override(d: dict, assignment: str) -> None:
    """Apply ``key.path=value`` (``--set``) to the nested dict ``d`` in place.

    Array-of-table entries are addressed by index: ``couplings.0.J=0.5``.
    """
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment!r} is invalid: expected KEY=VALUE, e.g. run.t_end=2000")
    key, text = assignment.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--set {assignment!r} is invalid: the key is empty; expected KEY=VALUE, "
                          "e.g. run.t_end=2000")
    dotted = re.sub(r"^(couplings|stimuli)\[\s*([0-9]+)\s*\](?=\.|$)", r"\1.\2", key)
    if dotted != key:
        raise ConfigError(f"--set {assignment!r} is invalid: entries of couplings and stimuli are addressed "
                          f"with a dot and their index from 0, as in {dotted}={text.strip()}")
    parts = key.split(".")
    if any(not part.strip() for part in parts):
        raise ConfigError(f"--set {assignment!r} is invalid: the key {key!r} has an empty part; "
                          "expected a dotted path such as run.t_end or couplings.0.J")
    node: Any = d
    for i, part in enumerate(parts[:-1]):
        where = ".".join(parts[: i + 1])
        _check_table(key, text, parts, i, node)
        if isinstance(node, list):
            if not _is_index(part) or int(part) >= len(node):
                raise ConfigError(f"--set {key}: {where} needs an index below {len(node)}")
            node = node[int(part)]
        else:
            if part not in node:
                if part in ("couplings", "stimuli"):
                    raise ConfigError(f"--set {key}: the configuration has no {part}")
                node[part] = {}
            node = node[part]
    last = parts[-1]
    value = _parse_value(text.strip())
    _check_table(key, text, parts, len(parts) - 1, node)
    if isinstance(node, list):
        if not _is_index(last) or int(last) >= len(node):
            raise ConfigError(f"--set {key}: index must be below {len(node)}")
        node[int(last)] = value
    else:
        node[last] = value


def packaged_config(name: str = "default") -> Path:
    """Path of a packaged example configuration (``meshfield/configs/NAME.toml``)."""
    path = Path(str(resources.files("meshfield") / "configs" / f"{name}.toml"))
    if not path.exists():
        raise ConfigError(f"packaged configuration {name!r} does not exist; available: "
                          + ", ".join(sorted(p.stem for p in path.parent.glob("*.toml"))))
    return path


def read_toml(path: str | Path) -> dict:
    """Read a TOML file into nested dicts, with clear errors."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"configuration file {str(path)!r} does not exist")
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration file {str(path)!r} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"configuration file {str(path)!r} is not valid UTF-8 TOML: byte "
                          f"0x{exc.object[exc.start]:02x} at offset {exc.start} cannot be decoded "
                          "(TOML files must be UTF-8 text)") from None
    except OSError as exc:
        raise ConfigError(f"configuration file {str(path)!r} cannot be read: {exc.strerror}") from None


def _no_such_configuration(name: str) -> None:
    """Refuse a configuration that is neither a file nor a packaged name, with the
    likely slip: a file name without its ``.toml``, or a packaged name mistyped."""
    message = f"configuration file {name!r} does not exist"
    if Path(name).suffix == "" and Path(name + ".toml").is_file():
        message += f"; did you mean {name + '.toml'!r}?"
    elif Path(name).suffix == "" and len(Path(name).parts) == 1:
        message += f", nor is it a packaged configuration (available: {', '.join(sorted(PACKAGED))})"
    raise ConfigError(message)


def _as_toml_values(value: Any) -> Any:
    """A copy of a configuration dict from Python, with the values that scripts
    compute (NumPy arrays, NumPy scalars such as ``np.bool_``, tuples) as the
    lists and Python scalars that a TOML file gives; the checks then see what
    they would see in a file."""
    if isinstance(value, dict):
        return {key: _as_toml_values(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_as_toml_values(v) for v in value]
    tolist = getattr(value, "tolist", None)  # numpy.ndarray and numpy.generic, without importing numpy here
    if tolist is not None and type(value).__module__ == "numpy":
        return _as_toml_values(tolist())
    return copy.deepcopy(value)


def load_config(path: str | Path | dict | None = None, overrides=()) -> Config:
    """Load and validate a configuration.

    Parameters
    ----------
    path : str, Path, dict, Config or None
        A TOML file, the name of a packaged example (``"default"``,
        ``"nest_example"``, ...), an already parsed dict (its NumPy arrays and
        scalars are read as the TOML lists and values they stand for), a Config
        (to apply ``overrides`` to), or None for the packaged default.
    overrides : iterable of str
        ``key.path=value`` assignments applied before validation (``--set``).
    """
    listed = None if isinstance(overrides, (str, bytes)) or not hasattr(overrides, "__iter__") \
        else list(overrides)
    if listed is None or not all(isinstance(a, str) for a in listed):
        raise ConfigError(f"overrides = {overrides!r} is invalid: expected a list of 'KEY=VALUE' strings, "
                          f"e.g. ['run.t_end=500']")
    if isinstance(path, Config):
        path = path.to_dict()
    elif path is not None and not isinstance(path, (str, Path, dict)):
        raise ConfigError(f"configuration {path!r} is invalid: expected a TOML file's path, the name of a "
                          f"packaged configuration, a dict or a Config")
    if path is None:
        d = read_toml(packaged_config("default"))
    elif isinstance(path, dict):
        d = _as_toml_values(path)
    elif not Path(path).exists() and str(path) in PACKAGED:
        d = read_toml(packaged_config(str(path)))
    else:
        if not Path(path).exists():
            _no_such_configuration(str(path))
        d = read_toml(path)
    for assignment in listed:
        apply_override(d, assignment)
    return Config.from_dict(d)
