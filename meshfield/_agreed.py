"""Failures that every rank of a run raises alike, at the same collective call.

The collective checks (:meth:`meshfield.parallel.Decomposition.root_decides` and
``all_decide``, the memory check, the recorder's and the checkpoint writer's
failure agreement, the signal vote of the time loop) make every rank raise when
one fails, at the same call. They mark the exception with :func:`agreed`, and
:func:`meshfield.run` frees its communicators after a marked failure only:
freeing is collective, and after an unmarked one (a bug, an error inside a
blocking exchange, Ctrl-C outside the vote) the other ranks may be elsewhere.

Not in :mod:`meshfield.parallel`, which imports mpi4py: :mod:`meshfield.io` marks
its failures too and does not.
"""

from __future__ import annotations

_MARK = "_meshfield_raised_on_every_rank"


def agreed(exc: BaseException) -> BaseException:
    """Mark ``exc`` (returned) as raised on every rank at the same collective call
    (there as it is, on the other ranks as the error that names it)."""
    setattr(exc, _MARK, True)
    return exc


def is_agreed(exc: BaseException | None) -> bool:
    """Whether ``exc`` was marked by :func:`agreed`."""
    return getattr(exc, _MARK, False)
