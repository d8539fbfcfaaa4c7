"""Global lattice geometry (MODEL.md §1): shape, spacing, boundary, offsets and distances.

Pure functions of the configuration; no MPI. Sites are indexed in C order, and the
global flat index of a site is the key of all its random numbers (MODEL.md §7).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Lattice:
    """A 1-D or 2-D lattice of sites.

    Parameters
    ----------
    shape : tuple of int
        Sites per axis (``(n,)`` or ``(nx, ny)``).
    dx : float
        Site spacing (mm).
    periodic : bool
        True for a torus, False for open boundaries.
    """

    shape: tuple[int, ...]
    dx: float
    periodic: bool

    @classmethod
    def from_config(cls, lattice_config) -> "Lattice":
        return cls(tuple(lattice_config.shape), float(lattice_config.dx),
                   lattice_config.boundary == "periodic")

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def n_sites(self) -> int:
        return int(np.prod(self.shape))

    def offsets_within(self, r_max: float) -> np.ndarray:
        """All lattice offsets ``o`` with ``|o| dx <= r_max``, shape ``(n_off, ndim)``.

        Offsets are listed in a fixed order (lexicographic), bounded by the
        lattice extent (an offset of ``n`` or more along an axis never lands on a
        distinct site).
        """
        reach = [n - 1 for n in self.shape]
        sites = r_max / self.dx + 1e-9  # inf for an infinite r_max, or when r_max / dx overflows
        reach = [r if sites >= r else int(math.floor(sites)) for r in reach]
        ranges = [range(-r, r + 1) for r in reach]
        offs = np.array(list(itertools.product(*ranges)), dtype=np.int64).reshape(-1, self.ndim)
        dist = np.sqrt((offs.astype(float) ** 2).sum(axis=1)) * self.dx
        return offs[dist <= r_max * (1 + 1e-12) + 1e-12]

    def distance(self, offsets: np.ndarray) -> np.ndarray:
        """Euclidean length (mm) of lattice offsets, shape ``(n_off, ndim)`` -> ``(n_off,)``."""
        return np.sqrt((np.asarray(offsets, dtype=float) ** 2).sum(axis=-1)) * self.dx

    def minimum_image(self, offsets: np.ndarray) -> np.ndarray:
        """Offsets wrapped to the shortest image on a periodic lattice (unchanged if open)."""
        offsets = np.asarray(offsets, dtype=np.int64)
        if not self.periodic:
            return offsets
        n = np.asarray(self.shape, dtype=np.int64)
        return (offsets + n // 2) % n - n // 2

    def positions(self, index: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
        """Coordinates (mm) of sites given by integer index arrays, one per axis."""
        return tuple(np.asarray(i, dtype=float) * self.dx for i in index)

    def flat_index(self, index: tuple[np.ndarray, ...]) -> np.ndarray:
        """Global C-order flat index of sites given by per-axis integer arrays."""
        return np.ravel_multi_index(tuple(np.asarray(i) for i in index), self.shape)


def wave_number_shell(k_norm, k_step: float) -> np.ndarray:
    """Shell index ``m = round(|k| / k_step)`` of wave numbers (rad/mm), the
    grouping of the spatial spectrum and of the linear theory per ``|k|``.

    Halves round up (``np.rint`` would round them to even, putting 1.5 and 2.5
    steps into the same shell); on a rectangular lattice ``|k|`` can fall on a
    half step, and ``|k| / k_step`` then comes out as x.5 only to rounding
    (x.4999999999999999 on a 9 x 6 lattice of 0.1 mm), hence the 1e-9.
    """
    return np.floor(np.asarray(k_norm, dtype=float) / k_step + (0.5 + 1e-9)).astype(int)
