"""Acting on Ctrl-C and SIGTERM at the same block on every rank.

``mpiexec`` and ``srun`` pass Ctrl-C (SIGINT) and SIGTERM on to every rank, but
not at the same instant, and a rank that waits inside a blocking exchange cannot
run a Python signal handler until the exchange completes. If every rank raised
at once, a rank that had left the time loop would keep a neighbour waiting for
its halo for ever, and the job could only be aborted (``meshfield.cli`` does so
after a few seconds, with a message that says why).

:class:`StopOnSignal` therefore defers the signals during the time loop: its
handler only notes the signal, and the ranks vote on it with a non-blocking
allreduce that is started at one block and completed at a later one, the same on
every rank. Every rank sees the same vote after the same block and runs the
signal's own handler there (Python's ``KeyboardInterrupt`` for Ctrl-C, the
command line's ``Terminated`` for SIGTERM), so the job ends as a serial run does.
A signal that comes again before the vote changes nothing: a rank may get the
same signal twice, as under ``mpiexec`` in a batch job, where the batch system
signals every process of the job and ``mpiexec`` forwards what it gets. A job
that must end at once has its launcher's own ways: a second Ctrl-C to
``mpiexec``, SIGKILL.

The ranks vote about every :data:`VOTE_INTERVAL_S` seconds: each vote also
carries each rank's wall time per block since the last one, and the slowest
rank's sets the number of blocks to the next vote, which every rank thus
computes alike. A vote costs a few microseconds (docs/parallel.md),
so 10 ms between votes make it negligible even where a block takes tens of
microseconds, and a signal is acted on within a few tens of milliseconds.
"""

from __future__ import annotations

import signal
import time

import numpy as np
from mpi4py import MPI

from .._agreed import agreed, is_agreed

__all__ = ["StopOnSignal"]

#: The signals deferred to the vote.
SIGNALS = (signal.SIGINT, signal.SIGTERM)

#: Wall seconds between two votes that the ranks aim at.
VOTE_INTERVAL_S = 0.01

#: The most blocks between two votes.
MAX_BLOCKS_PER_VOTE = 10_000


class StopOnSignal:
    """Context manager around a time loop on ``comm``; call :meth:`poll` once per
    block, at the same point on every rank.

    Only signals whose handler is a Python function (``KeyboardInterrupt`` for
    SIGINT, the command line's handler for SIGTERM) are deferred; ignored or
    default-action signals are left alone, as is everything on one rank or off
    the main thread, where the handlers act at once as before.

    Parameters
    ----------
    comm : mpi4py.MPI.Comm
        The ranks of the run (duplicated, so the votes never meet the run's own
        collectives; the duplicate is freed when the loop ends, and when it
        raises a failure that every rank raises alike, :mod:`meshfield._agreed`,
        such as the signal's own after a vote).
    interval_s : float
        The wall seconds between two votes to aim at (0: a vote at every block).
    """

    def __init__(self, comm, interval_s: float = VOTE_INTERVAL_S):
        self._world = comm
        self._interval_s = interval_s
        self._comm = None
        self._previous = {}
        self._pending = 0  # the signal noted since the last vote, 0 for none
        # the vote: (signal number or 0, wall seconds per block since the last vote), reduced by MAX
        self._mine = np.zeros(2)
        self._agreed = np.zeros(2)
        self._request = None
        self._every = 1       # blocks from one vote to the next
        self._blocks = 0      # blocks since the last vote
        self._t_vote = 0.0

    # -- the handler ------------------------------------------------------

    def _note(self, signum, frame):
        if not self._pending:
            self._pending = signum

    # -- the context ------------------------------------------------------

    def __enter__(self) -> "StopOnSignal":
        if self._world.Get_size() == 1:
            return self
        # collective on every rank alike: the decision depends on nothing local
        self._comm = self._world.Dup()
        self._t_vote = time.perf_counter()
        for signum in SIGNALS:
            try:
                handler = signal.getsignal(signum)
                if callable(handler):
                    signal.signal(signum, self._note)
                    self._previous[signum] = handler
            except ValueError:  # not the main thread: leave the signals alone
                break
        return self

    def poll(self) -> None:
        """Collective: call once per block. At a vote's block, complete the last
        vote, act on it and start the next one.

        Runs the handler of the signal that the vote agreed on (on every rank,
        also those that got no signal); a handler that returns instead of
        raising lets the run go on.
        """
        if self._comm is None:
            return
        self._blocks += 1
        if self._blocks < self._every:
            return
        now = time.perf_counter()
        if self._request is not None:
            self._request.Wait()
            self._request = None
            signum, slowest = int(self._agreed[0]), float(self._agreed[1])
            if signum:
                self._deliver_everywhere(signum)
            self._every = int(min(MAX_BLOCKS_PER_VOTE, max(1, self._interval_s // max(slowest, 1e-9))))
        self._mine[:] = (self._pending, (now - self._t_vote) / self._blocks)
        self._blocks, self._t_vote = 0, now
        self._request = self._comm.Iallreduce(self._mine, self._agreed, op=MPI.MAX)

    def _deliver(self, signum: int) -> None:
        self._pending = 0
        handler = self._previous.get(signum)
        if handler is None:  # another rank deferred a signal whose action here is not Python's
            raise KeyboardInterrupt() if signum == signal.SIGINT else SystemExit(128 + signum)
        handler(signum, None)

    def _deliver_everywhere(self, signum: int) -> None:
        """Run the handler of the signal that a vote agreed on, at the same point on
        every rank: what it raises, it raises on every rank (marked so,
        :mod:`meshfield._agreed`)."""
        try:
            self._deliver(signum)
        except BaseException as exc:
            agreed(exc)
            raise

    def __exit__(self, exc_type, exc, tb) -> bool:
        if self._comm is None:
            return False
        voted = 0
        try:
            if exc_type is None:
                # every rank is here: a blocking last vote covers a signal noted
                # during the last block
                if self._request is not None:
                    self._request.Wait()
                voted = self._comm.allreduce(self._pending, op=MPI.MAX)
                self._comm.Free()
            elif is_agreed(exc):
                # every rank raised it at the same block, so each has started the
                # same votes: complete the last one and free. Freeing is collective:
                # not after any other exception, which may be one rank's alone.
                if self._request is not None:
                    self._request.Wait()
                self._comm.Free()
        finally:
            self._restore()
        if voted:
            self._deliver_everywhere(voted)
        elif self._pending and exc_type is None:  # came after the last vote: as outside the loop
            self._deliver(self._pending)
        return False

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
