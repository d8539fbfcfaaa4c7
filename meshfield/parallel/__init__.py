"""Distribution of the lattice over MPI ranks (MODEL.md §7, docs/parallel.md).

The only package besides ``meshfield.io`` that imports mpi4py. Every function
takes its communicator (or a :class:`Decomposition`) as an explicit argument;
kernels see plain arrays with halo and never a communicator.
"""

from .decomposition import (
    Decomposition,
    DecompositionError,
    block_range,
    check_halo,
    halo_cells_sent,
    neighbour_faces,
    process_grid,
    processes_on_node,
    ranks_on_node,
)
from .spikes import exchange_spikes
from .stop import StopOnSignal

__all__ = [
    "Decomposition",
    "DecompositionError",
    "block_range",
    "check_halo",
    "halo_cells_sent",
    "neighbour_faces",
    "process_grid",
    "ranks_on_node",
    "processes_on_node",
    "exchange_spikes",
    "StopOnSignal",
]
