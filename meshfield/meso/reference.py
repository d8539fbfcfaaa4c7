"""Pure-Python reference of one mesoscopic population (MODEL.md §4), for tests.

Written to be read against MODEL.md line by line: cohorts are kept in a plain list
ordered by age (no ring buffer, no vectorization tricks, ``math.exp``). It is
slow and only used to check :func:`meshfield.meso.kernels.population_block` on
small inputs.
"""

from __future__ import annotations

import math

import numpy as np

from ..config import refractory_steps
from ..random import STREAM_MESO, binomial
from .model import adaptation_kernel, theta_tilde


class ReferencePopulation:
    """One population at one site, driven by a given membrane increment per step.

    Parameters
    ----------
    pop : PopulationConfig
    dt : float
        Step (ms).
    K : int
        History length (steps).
    """

    def __init__(self, pop, dt: float, K: int):
        self.pop, self.dt, self.K = pop, dt, K
        self.n_ref = refractory_steps(pop.t_ref, dt)
        self.P_mm = math.exp(-dt / pop.tau_m)
        ages = np.arange(K + 1) * dt
        self.eps = adaptation_kernel(pop, ages)
        self.theta_tilde = theta_tilde(pop, ages)
        # cohorts[a - 1] is the cohort of age a (1..K) during the next step
        self.cohorts = [dict(n=0.0, m=0.0, v=0.0, u=pop.u_reset, lam=0.0) for _ in range(K)]
        self.x, self.z, self.h, self.lam_free = float(pop.N), 0.0, pop.u_reset, 0.0
        self.g = [0.0] * len(pop.tau_theta)

    def step(self, h_inc: float, t: int, noise: str = "none", seed: int = 0, site: int = 0,
             type_index: int = 0) -> tuple[float, float]:
        """Advance one step with common membrane increment ``h_inc`` (mV); return ``(n, n_bar)``."""
        pop, dt = self.pop, self.dt
        N = pop.N
        c = pop.c * 1e-3
        theta_old = sum(J / tau * g for J, tau, g in zip(pop.J_theta, pop.tau_theta, self.g))
        W = X = Y = Z = 0.0
        for a in range(1, self.K + 1):
            coh = self.cohorts[a - 1]
            X += coh["m"]
            if a <= self.n_ref:
                continue
            coh["u"] = coh["u"] * self.P_mm + h_inc
            older = sum(self.cohorts[b - 1]["n"] * self.theta_tilde[b] for b in range(a + 1, self.K + 1))
            theta = pop.u_th + self.eps[a] + older / N + theta_old
            lam = c * math.exp((coh["u"] - theta) / pop.delta_u)
            P = 1.0 - math.exp(-(coh["lam"] + lam) * dt / 2)
            coh["lam"] = lam
            W += P * coh["m"]
            Y += P * coh["v"]
            Z += coh["v"]
            coh["v"] = (1 - P) ** 2 * coh["v"] + P * coh["m"]
            coh["m"] = (1 - P) * coh["m"]
        self.h = self.h * self.P_mm + h_inc
        lam_f = c * math.exp((self.h - pop.u_th - theta_old) / pop.delta_u)
        P_free = 1.0 - math.exp(-(self.lam_free + lam_f) * dt / 2)
        self.lam_free = lam_f
        P_lambda = (Y + P_free * self.z) / (Z + self.z) if Z + self.z > 0 else 0.0
        n_bar = W + P_free * self.x + P_lambda * (N - X - self.x)
        if noise == "none":
            n = min(max(n_bar, 0.0), float(N))
        else:
            n = float(binomial(N, min(max(n_bar / N, 0.0), 1.0), seed, STREAM_MESO, site, type_index, t))
        oldest = self.cohorts.pop()
        self.z = (1 - P_free) ** 2 * self.z + P_free * self.x + oldest["v"]
        self.x = (1 - P_free) * self.x + oldest["m"]
        self.g = [math.exp(-dt / tau) * g + oldest["n"] / N * math.exp(-(self.K + 1) * dt / tau)
                  for tau, g in zip(pop.tau_theta, self.g)]
        self.cohorts.insert(0, dict(n=n, m=n, v=0.0, u=pop.u_reset, lam=0.0))
        return n, n_bar
