"""The homogeneous steady state of a configuration and its linear stability
(``meshfield steady``; MODEL.md §6).

Collects what :func:`meshfield.theory.dispersion` (static gain matrix) and
:func:`meshfield.theory.growth_rates` (transfer function) say about one
configuration into one report: the stationary rates, the fastest mode, and what
kind of instability it is. Non-homogeneous steady states (patterns found by
Newton-Krylov and followed by continuation) are not computed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

__all__ = ["StabilityReport", "stability"]


def _kind(unstable: bool, k: float, f: float) -> str:
    """What a growing (or the least stable) mode of wave number k and frequency f is."""
    if not unstable:
        return "stable"
    if f == 0.0:
        return "uniform stationary instability" if k == 0.0 else "stationary pattern"
    return "synchronous oscillation" if k == 0.0 else "oscillatory pattern"


@dataclass(frozen=True)
class StabilityReport:
    """The homogeneous steady state and its linear stability.

    Attributes
    ----------
    name : str
        The configuration (its file or packaged name).
    types : tuple of str
    rates, mu_eff, gains : ndarray, shape (T,)
        Stationary rates (Hz), total inputs (mV) and static gains (Hz/mV).
    multiple : bool
        The homogeneous self-consistency has several solutions (this is one).
    solutions : ndarray, shape (S, T), Hz
        Every homogeneous solution found (``rates`` among them).
    rates0 : ndarray, shape (T,), Hz, or None
        The start given to the search; ``rates`` is the solution nearest it (None:
        the default start, the uncoupled rates at ``mu``, and ``rates`` the
        solution reached from there).
    n_sites : int
        Lattice sites (= lattice modes).
    n_distinct : int
        Distinct modes computed (wave vectors with equal stencil transforms share one).
    static_leading : float
        Largest real eigenvalue of the static gain matrix over all modes.
    static_k : float, rad/mm
        Its wave number.
    sigma : float, 1/s
        Growth rate of the fastest mode (``-inf``: every mode decays faster than
        ``sigma_floor``).
    frequency : float, Hz
    k : float, rad/mm
        Wave number of the fastest mode.
    n_unstable_modes : int
        Modes with a growing root.
    sigma_floor : float, 1/s
    kind : str
        ``"stable"``, ``"uniform stationary instability"``, ``"stationary
        pattern"``, ``"synchronous oscillation"`` or ``"oscillatory pattern"``.
    shells : dict
        Per ``|k|`` shell: ``k_rad_per_mm``, ``growth_rate_per_s``,
        ``frequency_hz`` and ``static_leading`` (arrays).
    dt : float, ms
    ignored : tuple of str
        What of the configuration the theory leaves out, e.g. ``"stimuli[0] (step)"``:
        the homogeneous state has the constant drive ``mu`` only.
    """

    name: str
    types: tuple
    rates: np.ndarray
    mu_eff: np.ndarray
    gains: np.ndarray
    multiple: bool
    n_sites: int
    n_distinct: int
    static_leading: float
    static_k: float
    sigma: float
    frequency: float
    k: float
    n_unstable_modes: int
    sigma_floor: float
    kind: str
    shells: dict
    dt: float
    ignored: tuple = ()
    solutions: np.ndarray = None
    rates0: np.ndarray = None

    @property
    def wavelength(self) -> float:
        """``2 pi / k`` (mm) of the fastest mode; inf for k = 0."""
        return 2.0 * math.pi / self.k if self.k > 0 else math.inf

    def format_text(self) -> str:
        """The report as a table and a verdict."""
        lines = [f"homogeneous steady state of {self.name} (mean-field limit, mesoscopic rule, "
                 f"dt = {self.dt:g} ms)"]
        lines.append(f"  {'type':<8} {'rate (Hz)':>10} {'mu_eff (mV)':>12} {'gain (Hz/mV)':>13}")
        for name, r, m, g in zip(self.types, self.rates, self.mu_eff, self.gains):
            lines.append(f"  {name:<8} {r:>10.4f} {m:>12.4f} {g:>13.4f}")
        if self.multiple:
            here = ("reached from the default start" if self.rates0 is None else
                    "the nearest to --rates0 " + " ".join(f"{r:g}" for r in self.rates0))
            lines.append(f"  the self-consistency has {len(self.solutions)} homogeneous solutions "
                         f"(choose one with --rates0, a rate per type):")
            for solution in self.solutions:
                mark = f"   <- analysed here ({here})" if np.allclose(solution, self.rates, rtol=1e-6,
                                                                       atol=0.0) else ""
                lines.append("    " + ", ".join(f"{name} {r:.4f} Hz" for name, r in zip(self.types, solution))
                             + mark)
        lines.append(f"linear stability, {self.n_sites} lattice modes ({self.n_distinct} distinct):")
        if math.isinf(self.static_leading):
            lines.append("  static:  no real eigenvalue of G(k) at any k (complex pairs only: no static "
                         "instability)")
        else:
            lines.append(f"  static:  largest real eigenvalue of G(k) {self.static_leading:.4f} at "
                         f"|k| = {self.static_k:.4g} rad/mm")
        if math.isinf(self.sigma):
            lines.append(f"  dynamic: every mode decays faster than {self.sigma_floor:.1f}/s "
                         f"(the resolution of the transfer function)")
        else:
            lines.append(f"  dynamic: fastest mode |k| = {self.k:.4g} rad/mm: growth rate {self.sigma:+.4g}/s, "
                         f"frequency {self.frequency:.4g} Hz; {self.n_unstable_modes} of {self.n_sites} "
                         f"modes grow")
        lines.append("verdict: " + self.verdict())
        if self.ignored:
            lines.append(f"ignored: {', '.join(self.ignored)} (the theory has the constant drive mu only)")
        lines.append("not computed: non-homogeneous steady states (Newton-Krylov and continuation, "
                     "MODEL.md §6)")
        return "\n".join(lines)

    def verdict(self) -> str:
        """One sentence: stable, or which instability and how fast."""
        if self.kind == "stable":
            if math.isinf(self.sigma):
                return "STABLE: every mode decays"
            return (f"STABLE: every mode decays; the slowest at {self.sigma:.3g}/s"
                    + (f", oscillating at {self.frequency:.3g} Hz" if self.frequency > 0 else ""))
        rate = f"grows at {self.sigma:.3g}/s"
        if self.kind == "uniform stationary instability":
            return (f"UNSTABLE: a perturbation that is the same at every site (k = 0) {rate} without "
                    "oscillating: the homogeneous state gives way to another stationary state (e.g. one "
                    "population of a bistable pair winning, or a runaway)")
        if self.kind == "stationary pattern":
            return f"UNSTABLE: a stationary pattern of wavelength {self.wavelength:.4g} mm {rate}"
        if self.kind == "synchronous oscillation":
            return f"UNSTABLE: a synchronous oscillation at {self.frequency:.4g} Hz {rate}"
        speed = 2.0 * math.pi * self.frequency / 1000.0 / self.k
        return (f"UNSTABLE: an oscillatory pattern of wavelength {self.wavelength:.4g} mm at "
                f"{self.frequency:.4g} Hz {rate}; standing or travelling (the linear theory cannot tell: "
                f"waves would travel at {speed:.3g} mm/ms)")

    def to_dict(self) -> dict:
        """JSON-ready numbers (``None`` for -inf and NaN)."""
        def clean(x):
            if isinstance(x, (list, tuple, np.ndarray)):
                return [clean(v) for v in np.asarray(x).tolist()]
            return None if x is None or not math.isfinite(x) else float(x)

        return dict(
            name=self.name, types=list(self.types), rates_hz=clean(self.rates), mu_eff_mv=clean(self.mu_eff),
            gains_hz_per_mv=clean(self.gains), multiple=self.multiple,
            solutions_hz=[] if self.solutions is None else [clean(s) for s in self.solutions],
            rates0_hz=None if self.rates0 is None else clean(self.rates0), dt_ms=self.dt, n_sites=self.n_sites,
            n_distinct_modes=self.n_distinct, static_leading=clean(self.static_leading),
            static_k_rad_per_mm=clean(self.static_k), growth_rate_per_s=clean(self.sigma),
            frequency_hz=clean(self.frequency), k_rad_per_mm=clean(self.k),
            wavelength_mm=clean(self.wavelength), n_unstable_modes=self.n_unstable_modes,
            sigma_floor_per_s=clean(self.sigma_floor), kind=self.kind, verdict=self.verdict(),
            shells={key: clean(value) for key, value in self.shells.items()}, ignored=list(self.ignored),
        )


def stability(config: Any, name: str | None = None,
              progress: Callable[[int, int], None] | None = None,
              rates0: Any = None) -> StabilityReport:
    """The homogeneous steady state of ``config`` and its linear stability.

    Parameters
    ----------
    config : Config, or anything :func:`meshfield.config.load_config` accepts.
    name : str, optional
        How the report names the configuration (default: ``config`` if a string).
    progress : callable, optional
        Passed to :func:`meshfield.theory.growth_rates`: ``progress(done, total)``
        after each distinct mode.
    rates0 : array_like, shape (T,), Hz, optional
        Start of the search for the stationary state; of several solutions, the
        one nearest it in log rate is analysed (default: the one reached from the
        uncoupled rates at ``mu``).

    Returns
    -------
    StabilityReport

    Raises
    ------
    TheoryInputError
        As :func:`meshfield.theory.growth_rates` (an open lattice, a population
        without a stable state of its own, ...).
    """
    from ..config import Config, load_config
    from .linear import dispersion
    from .response import growth_rates

    label = name if name is not None else (config if isinstance(config, str) else "the configuration")
    if not isinstance(config, Config):
        config = load_config(config)
    d = dispersion(config, level="meso", rates0=rates0)
    gr = growth_rates(config, rates0=rates0, progress=progress)
    i = int(np.argmax(gr.sigma))
    f = float(gr.frequency.ravel()[i])
    k = float(gr.k_norm.ravel()[i])
    unstable = bool(gr.n_unstable.ravel()[i] > 0)
    k_shell, sigma_shell, f_shell = gr.shells()
    _, leading_shell = d.shells()
    n = min(len(k_shell), len(leading_shell))
    return StabilityReport(
        name=str(label), types=tuple(gr.types), rates=gr.rates, mu_eff=gr.mu_eff, gains=d.slopes,
        multiple=bool(d.multiple), n_sites=int(gr.sigma.size),
        n_distinct=gr.n_distinct,
        static_leading=d.max_leading, static_k=d.k_peak, sigma=float(gr.sigma_max),
        frequency=f if math.isfinite(gr.sigma_max) else math.nan, k=k,
        n_unstable_modes=int(np.sum(gr.n_unstable > 0)), sigma_floor=gr.sigma_floor,
        kind=_kind(unstable, k, f), dt=config.run.dt,
        ignored=tuple(f"stimuli[{i}] ({stim.kind})" for i, stim in enumerate(config.stimuli)),
        solutions=gr.solutions, rates0=None if rates0 is None else np.asarray(rates0, dtype=np.float64),
        shells=dict(k_rad_per_mm=k_shell[:n], growth_rate_per_s=sigma_shell[:n], frequency_hz=f_shell[:n],
                    static_leading=leading_shell[:n]),
    )
