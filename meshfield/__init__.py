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


#: submodules reachable as attributes (``meshfield.analysis.psd``) without an
#: explicit import; they load on first access, so ``import meshfield`` stays light
_SUBMODULES = ("analysis", "cli", "config", "coupling", "io", "lattice", "meso", "micro", "numerics",
               "parallel", "peers", "plot", "propagators", "random", "simulation", "stimulus", "theory")


def __getattr__(name):
    if name in _SUBMODULES:
        import importlib
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'meshfield' has no attribute {name!r}")


__all__ = ["__version__", "run", "open_result", "load_config", "ConfigError"]
