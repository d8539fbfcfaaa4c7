"""Block decomposition of the lattice over a Cartesian process grid (MODEL.md §7).

The lattice of ``global_shape`` sites is split into rectangular blocks, one per
rank, on a process grid of ``dims`` ranks per axis. Along an axis of ``n`` sites
split over ``p`` ranks, block ``i`` holds ``n // p`` sites and the first
``n % p`` blocks hold one more (:func:`block_range`). Each rank stores its block
with a halo of ``halo_width`` sites on every side; :meth:`Decomposition.exchange`
fills the halo from the neighbouring ranks' blocks (or, on a periodic axis with a
single rank, from the block itself), so that a kernel sees plain arrays with halo
and never a communicator.

Rules checked before any communication (all ranks check the same pure
conditions, so a bad request raises on every rank instead of hanging):

* every block holds at least one site: ``dims[k] <= global_shape[k]``;
* along an axis split over more than one rank, the halo comes from the nearest
  rank only: ``halo_width <= global_shape[k] // dims[k]`` (the smallest block);
* along a periodic axis held by one rank the halo is a copy of the block's own
  layers: ``halo_width <= global_shape[k]``. (That no stencil reaches the same
  site from both sides, ``2 r + 1 <= n`` for its reach ``r`` along the axis, is
  a property of the kernel, checked per axis with the configuration.)

Vocabulary (as in PyClaw): ``local_shape`` is the block without halo, the
*interior*; ``with_halo_shape`` adds ``halo_width`` cells on each side of every
axis. Leading dimensions of exchanged arrays (slots, types, ...) are arbitrary.
"""

from __future__ import annotations

import math
import os
from typing import Any, Callable, Sequence

import numpy as np
from mpi4py import MPI

from .._agreed import agreed

__all__ = [
    "DecompositionError",
    "block_range",
    "process_grid",
    "check_halo",
    "halo_cells_sent",
    "neighbour_faces",
    "Decomposition",
]


class DecompositionError(ValueError):
    """The lattice cannot be split as requested (too many ranks, halo too wide)."""


def block_range(n: int, parts: int, index: int) -> tuple[int, int]:
    """Sites ``[start, stop)`` of block ``index`` when ``n`` sites are split into
    ``parts`` blocks.

    The first ``n % parts`` blocks hold ``n // parts + 1`` sites, the others
    ``n // parts``; consecutive blocks tile ``[0, n)`` exactly. Pure function.

    Parameters
    ----------
    n : int
        Number of sites along the axis, ``n >= 0``.
    parts : int
        Number of blocks, ``parts >= 1``.
    index : int
        Block index, ``0 <= index < parts``.

    Returns
    -------
    (start, stop) : tuple of int
    """
    if parts < 1:
        raise DecompositionError(f"parts must be >= 1, got {parts}")
    if n < 0:
        raise DecompositionError(f"n must be >= 0, got {n}")
    if not 0 <= index < parts:
        raise DecompositionError(f"block index must lie in [0, {parts}), got {index}")
    base, extra = divmod(n, parts)
    start = index * base + min(index, extra)
    stop = start + base + (1 if index < extra else 0)
    return start, stop


def _halo_cost(shape: Sequence[int], dims: Sequence[int]) -> int:
    """Sites a rank of the largest block sends per unit halo width: the number of
    faces crossed by messages times their area. Used only to rank suggestions."""
    largest = [-(-n // p) for n, p in zip(shape, dims)]
    return sum(
        math.prod(largest[:k] + largest[k + 1:]) for k, p in enumerate(dims) if p > 1
    )


def _divisors(size: int) -> list[int]:
    """The divisors of ``size`` in increasing order (trial division up to its square root)."""
    low, high = [], []
    p = 1
    while p * p <= size:
        if size % p == 0:
            low.append(p)
            if p * p != size:
                high.append(size // p)
        p += 1
    return low + high[::-1]


def _factorizations(size: int, ndim: int):
    """All ordered tuples of ``ndim`` positive integers whose product is ``size``."""
    if ndim == 1:
        yield (size,)
        return
    for p in _divisors(size):
        for rest in _factorizations(size // p, ndim - 1):
            yield (p, *rest)


def _fits(n: int, p: int, halo_width: int) -> bool:
    """Whether ``p`` ranks along an axis of ``n`` sites leave every block non-empty
    and at least ``halo_width`` sites wide (when the axis is split)."""
    return p <= n and (p == 1 or halo_width <= n // p)


def _largest_grid(shape: Sequence[int], halo_width: int) -> tuple[int, ...]:
    """The grid with the most ranks that fits ``shape`` and ``halo_width``."""
    return tuple(n if halo_width == 0 else max(1, n // halo_width) for n in shape)


def _grid_text(dims: Sequence[int]) -> str:
    """A process grid as the command line spells it (``dims=`` in Python)."""
    return f"--dims {','.join(str(p) for p in dims)}"


def _no_grid_advice(size: int, shape: Sequence[int], halo_width: int) -> str:
    """What is allowed when no grid of ``size`` ranks fits: the nearest rank counts
    that fit (within 64 of ``size``), and the most ranks that fit."""
    largest = _largest_grid(shape, halo_width)
    most = math.prod(largest)
    why = ("every block at least one site" if halo_width <= 1
           else f"every block at least {halo_width} sites (the halo) wide where an axis is split")
    near = []
    if size < most:
        def nearest(counts):  # the first rank count with a fitting grid, and that grid
            return next(((r, dims) for r in counts if (dims := _suggest_dims(r, shape, halo_width))), None)

        found = (nearest(range(size - 1, max(size - 65, 0), -1)), nearest(range(size + 1, min(size + 65, most))))
        near = [f"{r} ranks ({_grid_text(dims)})" for r, dims in filter(None, found)]
    return (f"no process grid of {size} ranks fits the lattice {tuple(shape)} with {why}; "
            + (f"{' or '.join(near)} would fit; " if near else "")
            + (f"at most {most} ranks fit, with {_grid_text(largest)}" if most > 1
               else "only 1 rank fits"))


def _suggest_dims(
    size: int, shape: Sequence[int], halo_width: int = 0
) -> tuple[int, ...] | None:
    """The valid process grid for ``size`` ranks with the least halo traffic, or
    None when none exists."""
    if size > math.prod(_largest_grid(shape, halo_width)):  # no grid fits
        return None
    best = None
    for dims in _factorizations(size, len(shape)):
        if not all(_fits(n, p, halo_width) for n, p in zip(shape, dims)):
            continue
        key = (_halo_cost(shape, dims), tuple(-p for p in dims))
        if best is None or key < best[0]:
            best = (key, dims)
    return None if best is None else best[1]


def _compute_dims(size: int, dims: Sequence[int]) -> tuple[int, ...]:
    """``MPI.Compute_dims(size, dims)``: the zero entries of ``dims`` filled with a
    balanced, non-increasing split of the ranks left. Beyond 2**24 ranks the split
    is computed here (the non-increasing one with the smallest largest entry,
    which equals MPICH's for all but 1 of the 9000 (size, ndim) pairs below 3000 x 3),
    because MPICH's Compute_dims dies with SIGFPE for some primes near 2**31."""
    if size <= 2**24:
        return tuple(MPI.Compute_dims(size, list(dims)))
    free = [k for k, p in enumerate(dims) if p == 0]
    left = size // math.prod(p for p in dims if p > 0)
    best = min((f for f in _factorizations(left, len(free)) if list(f) == sorted(f, reverse=True)),
               key=lambda f: (f[0], f), default=None) if free else ()
    out = list(dims)
    for k, p in zip(free, best):
        out[k] = p
    return tuple(out)


def _as_shape(shape: Sequence[int]) -> tuple[int, ...]:
    try:
        shape = tuple(int(n) for n in shape)
    except TypeError:
        raise DecompositionError(
            f"lattice shape must be a sequence of site counts, got {shape!r}"
        ) from None
    if not shape or any(n < 1 for n in shape):
        raise DecompositionError(
            f"lattice shape must have at least one axis and >= 1 site per axis, "
            f"got {shape}"
        )
    return shape


def process_grid(
    size: int, shape: Sequence[int], dims: Sequence[int] | None = None, halo_width: int = 0
) -> tuple[int, ...]:
    """Ranks per axis of the process grid for ``size`` ranks on a lattice of
    ``shape`` sites, checked so that every block holds at least one site.

    Pure (``MPI.Compute_dims`` is a local call).

    Parameters
    ----------
    size : int
        Number of ranks.
    shape : sequence of int
        Global lattice shape ``(n0,)``, ``(n0, n1)``, ...
    dims : sequence of int, optional
        Explicit ranks per axis; entries equal to 0 are chosen by
        ``MPI.Compute_dims``. Default: ``MPI.Compute_dims``'s balanced,
        non-increasing grid when it fits the lattice and the halo, else the
        fitting grid with the least halo traffic (a 5 x 13 lattice on 3 ranks
        gets (1, 3)).
    halo_width : int, optional
        The halo the grid must fit (see :func:`check_halo`); it is used to
        choose the default grid and the grid that messages suggest.

    Returns
    -------
    tuple of int
        ``dims`` with ``prod(dims) == size`` and ``dims[k] <= shape[k]``.

    Raises
    ------
    DecompositionError
        If the grid does not multiply to ``size`` or some block would be empty;
        the message names the rank count, the lattice shape and a valid grid
        when one exists.
    """
    shape = _as_shape(shape)
    if int(size) != size or size < 1:
        raise DecompositionError(f"number of ranks must be >= 1, got {size}")
    size = int(size)
    ndim = len(shape)
    if dims is None:
        dims = [0] * ndim
    else:
        dims = [int(p) for p in dims]
        if len(dims) != ndim:
            raise DecompositionError(
                f"process grid dims={tuple(dims)} has {len(dims)} entries, "
                f"the lattice of shape {shape} has {ndim} axes"
            )
        if any(p < 0 for p in dims):
            raise DecompositionError(
                f"process grid dims={tuple(dims)} must hold positive rank counts "
                f"(or 0 to let MPI choose)"
            )
        fixed = math.prod(p for p in dims if p > 0)
        if size % fixed != 0 or (0 not in dims and fixed != size):
            raise DecompositionError(
                f"process grid dims={tuple(dims)} does not fit {size} ranks: the "
                f"product of its entries must equal the number of ranks"
            )
    sites = math.prod(shape)
    if size > sites:  # no grid fits (and MPICH's Compute_dims crashes for some primes near 2**31)
        raise DecompositionError(
            f"more ranks ({size}) than sites ({sites}): {size} ranks on a lattice of shape {shape} "
            f"would leave empty blocks; every block must hold at least one site "
            f"({_no_grid_advice(size, shape, halo_width)})")
    if size > 2**31 - 1:  # MPI.Compute_dims takes a C int
        raise DecompositionError(
            f"{size} ranks on a lattice of shape {shape}: MPI allows at most 2**31 - 1 ranks")
    automatic = not any(dims)
    dims = _compute_dims(size, dims)
    if automatic and not all(_fits(n, p, halo_width) for n, p in zip(shape, dims)):
        dims = _suggest_dims(size, shape, halo_width) or dims
    for k, (n, p) in enumerate(zip(shape, dims)):
        if p > n:
            hint = _suggest_dims(size, shape, halo_width)
            allowed = (f"use {_grid_text(hint)}" if hint is not None
                       else _no_grid_advice(size, shape, halo_width))
            raise DecompositionError(
                f"more ranks ({p}) than sites ({n}) along axis {k}: {size} ranks on "
                f"a lattice of shape {shape} with process grid {dims} would leave "
                f"empty blocks; every block must hold at least one site ({allowed})"
            )
    return dims


def neighbour_faces(p: int, periodic: bool) -> int:
    """Faces of a block with a neighbour rank along an axis split over ``p`` ranks,
    for the block with the most of them (pure): none on one rank, two on a
    periodic axis or inside the grid, one on an open axis over two ranks."""
    return 0 if p == 1 else 2 if periodic or p >= 3 else 1


def halo_cells_sent(local_shape: Sequence[int], dims: Sequence[int], periodic: bool,
                    halo_width: int) -> int:
    """Most halo cells one rank sends to other ranks per exchange, for a block of
    ``local_shape`` on a grid of ``dims`` (pure; pass the largest block).

    As :meth:`Decomposition.exchange` does it: axes held by one rank are filled
    by a local copy and send nothing; along a split axis a rank sends a slab
    ``halo_width`` thick to each neighbour (one at an open edge); the slabs span
    the block along the axes after it and the block plus the halo already
    received along the axes before it (which carries the corners).
    """
    h = int(halo_width)
    cells = 0
    for k, p in enumerate(dims):
        if p > 1 and h > 0:
            across = [m + h * (2 if periodic else neighbour_faces(q, periodic))
                      for m, q in zip(local_shape[:k], dims[:k])]
            cells += neighbour_faces(p, periodic) * h * math.prod(across + list(local_shape[k + 1:]))
    return cells


def check_halo(
    shape: Sequence[int], dims: Sequence[int], periodic: bool, halo_width: int
) -> None:
    """Check that a halo of ``halo_width`` sites can be filled on this grid.

    Pure. Rules, per axis ``k`` with ``n = shape[k]`` sites over ``p = dims[k]``
    ranks:

    * periodic with ``p = 1``: ``halo_width <= n``, the halo is a copy of the
      block's own outer layers (the halo has one width on every axis, the
      largest reach of any stencil; that a stencil does not wrap onto itself
      along an axis is checked per axis with the configuration);
    * ``p > 1``: ``halo_width <= n // p``, so each halo side lies in the
      nearest rank's block.

    Raises
    ------
    DecompositionError
        Naming the axis, the lattice shape, the grid and what is allowed.
    """
    if int(halo_width) != halo_width or halo_width < 0:
        raise DecompositionError(f"halo_width must be an integer >= 0, got {halo_width}")
    shape = tuple(shape)
    for k, (n, p) in enumerate(zip(shape, dims)):
        if periodic and p == 1 and halo_width > n:
            raise DecompositionError(
                f"lattice too small for the halo: the halo is {halo_width} sites wide on "
                f"every axis (the longest reach of the couplings' stencils along any axis), "
                f"but periodic axis {k} of the lattice of shape {shape} has only {n} "
                f"site(s) to copy it from (use at least {halo_width} sites along this axis, "
                f"or open boundaries)"
            )
        if p > 1 and halo_width > n // p:
            hint = _suggest_dims(math.prod(dims), shape, halo_width)
            allowed = (f"use {_grid_text(hint)}" if hint is not None
                       else _no_grid_advice(math.prod(dims), shape, halo_width))
            raise DecompositionError(
                f"halo width {halo_width} exceeds the smallest block along axis {k} "
                f"({n // p} sites: {n} sites over {p} ranks) for {math.prod(dims)} "
                f"ranks on a lattice of shape {shape} with process grid "
                f"{tuple(dims)}; a halo must come from the nearest rank only "
                f"({allowed})"
            )


class Decomposition:
    """This rank's block of the lattice, its halo and its neighbours.

    Construction is collective over ``comm`` (it creates a Cartesian
    communicator). All checks run before any communication, so invalid requests
    raise :class:`DecompositionError` on every rank.

    Parameters
    ----------
    comm : mpi4py.MPI.Intracomm
        Communicator whose ranks share the lattice (``MPI.COMM_SELF`` for a
        serial run).
    global_shape : sequence of int
        Lattice shape in sites, ``(n0,)`` or ``(n0, n1)`` (any number of axes).
    periodic : bool
        Periodic (torus) boundary on every axis; otherwise open.
    halo_width : int
        Halo cells ``h >= 0`` on each side of every axis: the largest offset of
        any stencil along any axis (:func:`meshfield.coupling.halo_width`).
    dims : sequence of int, optional
        Explicit process grid (see :func:`process_grid`).

    Attributes
    ----------
    comm : mpi4py.MPI.Cartcomm
        The Cartesian communicator (ranks are not reordered: ``rank`` equals the
        rank in the communicator passed in).
    rank, size, ndim : int
    global_shape, dims, coords : tuple of int
    local_start, local_shape : tuple of int
        First global site and extent of the block per axis.
    local_slices : tuple of slice
        The block as slices into a global lattice array.
    halo_width : int
    with_halo_shape : tuple of int
        ``local_shape[k] + 2 * halo_width`` per axis.
    interior : tuple of slice
        The block inside an array of ``with_halo_shape`` (use as
        ``arr[(..., *interior)]``).
    periodic : bool
    neighbours : tuple of (int, int)
        ``(lower, upper)`` rank per axis; ``MPI.PROC_NULL`` across an open edge;
        this rank itself along a periodic axis with one rank.
    at_lower_boundary, at_upper_boundary : tuple of bool
        Per axis, whether the block touches an open domain edge on that side (the
        halo beyond it mirrors no site and is never written).
    bytes_sent : int
        Bytes this rank has sent to other ranks through this decomposition
        (cumulative; copies within a rank are not counted).
    """

    def __init__(
        self,
        comm: MPI.Intracomm,
        global_shape: Sequence[int],
        periodic: bool,
        halo_width: int,
        dims: Sequence[int] | None = None,
    ):
        global_shape = _as_shape(global_shape)
        size = comm.Get_size()
        dims = process_grid(size, global_shape, dims, halo_width)
        check_halo(global_shape, dims, bool(periodic), halo_width)

        self.global_shape = global_shape
        self.ndim = len(global_shape)
        self.dims = dims
        self.periodic = bool(periodic)
        self.halo_width = h = int(halo_width)
        self.comm = comm.Create_cart(dims, periods=[self.periodic] * self.ndim,
                                     reorder=False)
        self.rank = self.comm.Get_rank()
        self.size = size
        self.coords = tuple(self.comm.Get_coords(self.rank))

        ranges = [block_range(n, p, c) for n, p, c in zip(global_shape, dims, self.coords)]
        self.local_start = tuple(start for start, _ in ranges)
        self.local_shape = tuple(stop - start for start, stop in ranges)
        self.local_slices = tuple(slice(start, stop) for start, stop in ranges)
        self.with_halo_shape = tuple(m + 2 * h for m in self.local_shape)
        self.interior = tuple(slice(h, h + m) for m in self.local_shape)
        self.neighbours = tuple(self.comm.Shift(k, 1) for k in range(self.ndim))
        self.at_lower_boundary = tuple(
            not self.periodic and c == 0 for c in self.coords
        )
        self.at_upper_boundary = tuple(
            not self.periodic and c == p - 1 for c, p in zip(self.coords, dims)
        )
        self.bytes_sent = 0
        self._schedule = [self._axis_schedule(k) for k in range(self.ndim)]

    def __repr__(self) -> str:
        return (
            f"Decomposition(rank={self.rank}/{self.size}, global_shape="
            f"{self.global_shape}, dims={self.dims}, coords={self.coords}, "
            f"local_start={self.local_start}, local_shape={self.local_shape}, "
            f"halo_width={self.halo_width}, periodic={self.periodic})"
        )

    # -- halo exchange ---------------------------------------------------------

    def _axis_schedule(self, axis: int) -> list[tuple[int, int, tuple, tuple]]:
        """The two transfers of ``axis``: ``(dest, source, send_index,
        recv_index)``, indices into the trailing (lattice) axes of an array with
        halo.

        Along axes already exchanged the slabs include the halo (this is how
        corners are filled), except beyond an open edge, which stays untouched;
        along axes still to come they span the interior only.
        """
        h = self.halo_width
        m = self.local_shape[axis]
        across = []
        for k in range(self.ndim):
            if k < axis:
                lo = h if self.at_lower_boundary[k] else 0
                hi = self.with_halo_shape[k] - (h if self.at_upper_boundary[k] else 0)
                across.append(slice(lo, hi))
            else:
                across.append(self.interior[k])

        def index(along: slice) -> tuple:
            return tuple(across[:axis]) + (along,) + tuple(across[axis + 1:])

        lower, upper = self.neighbours[axis]
        return [
            # upward: my top interior layers become the upper rank's lower halo
            (upper, lower, index(slice(m, m + h)), index(slice(0, h))),
            # downward: my bottom interior layers become the lower rank's upper halo
            (lower, upper, index(slice(h, 2 * h)), index(slice(m + h, m + 2 * h))),
        ]

    def exchange(self, arr: np.ndarray) -> None:
        """Fill the halo of ``arr`` in place from the neighbours' interiors.

        Collective. Axes are exchanged one after the other, each including the
        halo of the axes before it, so corner (diagonal) cells are filled too.
        Halo cells beyond an open domain edge are left untouched (keep them
        zero). Along a periodic axis with one rank the halo is copied from the
        block itself.

        Parameters
        ----------
        arr : ndarray, shape (..., *with_halo_shape)
            Any dtype, any leading dimensions (identical on all ranks); may be a
            non-contiguous view.
        """
        if arr.ndim < self.ndim or arr.shape[arr.ndim - self.ndim:] != self.with_halo_shape:
            raise ValueError(
                f"array of shape {arr.shape} does not end in this rank's "
                f"with_halo_shape {self.with_halo_shape}"
            )
        if self.halo_width == 0:
            return
        for axis, transfers in enumerate(self._schedule):
            for direction, (dest, source, send_index, recv_index) in enumerate(transfers):
                send = arr[(Ellipsis, *send_index)]
                recv = arr[(Ellipsis, *recv_index)]
                if dest == self.rank:
                    recv[...] = send
                    continue
                if dest == MPI.PROC_NULL and source == MPI.PROC_NULL:
                    continue
                sendbuf = (
                    np.ascontiguousarray(send) if dest != MPI.PROC_NULL
                    else np.empty(0, dtype=np.uint8)
                )
                recvbuf = (
                    np.empty(recv.shape, dtype=arr.dtype) if source != MPI.PROC_NULL
                    else np.empty(0, dtype=np.uint8)
                )
                tag = 2 * axis + direction
                self.comm.Sendrecv(
                    [sendbuf, MPI.BYTE], dest, tag, [recvbuf, MPI.BYTE], source, tag
                )
                if dest != MPI.PROC_NULL:
                    self.bytes_sent += sendbuf.nbytes
                if source != MPI.PROC_NULL:
                    recv[...] = recvbuf

    # -- global indices --------------------------------------------------------

    def global_site_index(self) -> np.ndarray:
        """Global C-order flat index of each site of the block.

        Returns
        -------
        ndarray of int64, shape local_shape
        """
        axes = [np.arange(s.start, s.stop, dtype=np.int64) for s in self.local_slices]
        return np.ravel_multi_index(
            np.meshgrid(*axes, indexing="ij"), self.global_shape
        ).astype(np.int64)

    def global_site_index_with_halo(self) -> np.ndarray:
        """Global flat index of the site each cell of the array with halo holds
        after :meth:`exchange`.

        Periodic axes wrap around; cells beyond an open edge are ``-1``.

        Returns
        -------
        ndarray of int64, shape with_halo_shape
        """
        h = self.halo_width
        coords = []
        outside = np.zeros(self.with_halo_shape, dtype=bool)
        grids = np.meshgrid(
            *[np.arange(start - h, start + m + h, dtype=np.int64)
              for start, m in zip(self.local_start, self.local_shape)],
            indexing="ij",
        )
        for grid, n in zip(grids, self.global_shape):
            if self.periodic:
                grid = grid % n
            else:
                outside |= (grid < 0) | (grid >= n)
                grid = np.clip(grid, 0, n - 1)
            coords.append(grid)
        index = np.ravel_multi_index(coords, self.global_shape).astype(np.int64)
        index[outside] = -1
        return index

    # -- collectives for the time loop and the recorder --------------------------

    @property
    def is_root(self) -> bool:
        """Whether this is rank 0 (logs and single-writer tasks)."""
        return self.rank == 0

    def allreduce_sum(self, x: Any) -> Any:
        """Sum of ``x`` over all ranks. Collective.

        ``x`` is a number or an ndarray (same shape and dtype on all ranks;
        summed elementwise). Floating-point sums depend on the reduction order
        and hence on the number of ranks: use them for diagnostics, not for
        model state.
        """
        return self._allreduce(x, MPI.SUM)

    def allreduce_sum_in_place(self, x: np.ndarray, chunk_bytes: int = 16 << 20) -> None:
        """Replace the C-contiguous array ``x`` by its sum over all ranks. Collective.

        Sums ``chunk_bytes`` at a time, so that the MPI library's buffers stay
        that small whatever the size of ``x``; the sum adds no copy of ``x``. On
        one rank nothing is done. Same shape and dtype on all ranks.
        """
        if not x.flags.c_contiguous:
            raise ValueError("allreduce_sum_in_place needs a C-contiguous array")
        if self.size == 1 or x.size == 0:
            return
        flat = x.reshape(-1)
        step = max(1, chunk_bytes // x.itemsize)
        for start in range(0, flat.size, step):
            self.comm.Allreduce(MPI.IN_PLACE, flat[start:start + step], op=MPI.SUM)

    def allreduce_max(self, x: Any) -> Any:
        """Maximum of ``x`` over all ranks (elementwise for arrays). Collective."""
        return self._allreduce(x, MPI.MAX)

    def _allreduce(self, x: Any, op: MPI.Op) -> Any:
        if isinstance(x, np.ndarray):
            send = np.ascontiguousarray(x)
            out = np.empty_like(send)
            self.comm.Allreduce(send, out, op=op)
            return out
        return self.comm.allreduce(x, op=op)

    def bcast(self, obj: Any, root: int = 0) -> Any:
        """``obj`` of rank ``root`` on every rank (any picklable object). Collective."""
        return self.comm.bcast(obj, root=root)

    def root_decides(self, action: Callable[[], Any], error_type: type[Exception]) -> Any:
        """Run ``action`` on rank 0 and return its result on every rank. Collective.

        A failure on rank 0 is raised there as it is and on the other ranks as
        ``error_type(message)``, so no rank waits for a decision that never comes;
        both are marked as raised on every rank (:mod:`meshfield._agreed`).
        """
        failure, result = None, None
        if self.rank == 0:
            try:
                result = action()
            except Exception as exc:  # any failure must reach the waiting ranks
                failure = exc
        message = None if failure is None else str(failure) or type(failure).__name__
        message, result = self.bcast((message, result))
        if failure is not None:
            raise agreed(failure)
        if message is not None:
            raise agreed(error_type(message))
        return result

    def all_decide(self, action: Callable[[], Any], error_type: type[Exception]) -> Any:
        """Run ``action`` on every rank and return its result there. Collective.

        A failure on any rank is raised on every rank: where it happened as it
        is, on the others as ``error_type("rank R: message")`` of the lowest
        failing rank, so that no rank goes on into an exchange that the failed
        ones never join (a block of a checkpoint that one rank cannot read or
        finds damaged). Both are marked as raised on every rank.
        """
        failure, result = None, None
        try:
            result = action()
        except Exception as exc:  # any failure must reach the other ranks
            failure = exc
        message = None if failure is None else str(failure) or type(failure).__name__
        messages = self.comm.allgather(message)
        if failure is not None:
            raise agreed(failure)
        failed = [(rank, text) for rank, text in enumerate(messages) if text is not None]
        if failed:
            raise agreed(error_type(f"rank {failed[0][0]}: {failed[0][1]}"))
        return result

    def barrier(self) -> None:
        """Wait until all ranks arrive. Collective."""
        self.comm.Barrier()

    def free(self) -> None:
        """Release the Cartesian communicator. Collective; the decomposition is
        unusable afterwards (long sweeps in one process would otherwise run out
        of MPI communicator ids)."""
        self.comm.Free()


def ranks_on_node(comm: MPI.Intracomm) -> int:
    """Number of ranks of ``comm`` sharing this rank's node (shared-memory domain).

    Collective over ``comm``.
    """
    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        return node.Get_size()
    finally:
        node.Free()


#: environment variables in which launchers give the number of a job's processes
#: on this node: MPICH's Hydra (mpiexec), Open MPI's mpirun
LOCAL_SIZE_VARIABLES = ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE")


def processes_on_node(comm: MPI.Intracomm, environ=None) -> int:
    """Processes of the whole job that share this rank's node: the ranks of
    ``comm`` on it (:func:`ranks_on_node`), or more where the launcher says so.

    A run on a part of the job (``comm=MPI.COMM_SELF`` in a sweep that gives each
    rank its own run) shares the node's cores and memory with the job's other
    processes, which its communicator cannot see; the launcher's count is read
    from ``environ`` (default ``os.environ``) without communicating. Collective
    over ``comm``.
    """
    here = ranks_on_node(comm)
    environ = os.environ if environ is None else environ
    for name in LOCAL_SIZE_VARIABLES:
        text = str(environ.get(name, "")).strip()
        if text.isascii() and text.isdigit() and int(text) > 0:
            return max(here, int(text))
    return here
