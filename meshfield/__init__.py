"""meshfield: stochastic neural fields of finite-size GLIF populations on MPI-distributed lattices.

The mesoscopic population equation of Schwalger, Deger & Gerstner (2017) on every
site of a lattice, coupled by distance-dependent kernels with delays, and the
microscopic GLIF network it approximates, both distributed the same way.

Entry points: :func:`meshfield.run` (simulate), :func:`meshfield.open_result`
(read a result), :func:`meshfield.load_config` (configuration).
"""

__version__ = "0.1.0"

from .config import ConfigError, load_config  # noqa: E402


def run(*args, **kwargs):
    """Run a simulation; see :func:`meshfield.simulation.run`."""
    from .simulation import run as _run
    return _run(*args, **kwargs)


def open_result(path):
    """Open a result file; see :func:`meshfield.io.open_result`."""
    from .io import open_result as _open
    return _open(path)


__all__ = ["__version__", "run", "open_result", "load_config", "ConfigError"]
