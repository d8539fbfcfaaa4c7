"""StopOnSignal (meshfield/parallel/stop.py) on several ranks, in process.

Run with ``mpiexec -n 2`` and ``-n 4``. The whole job under a real Ctrl-C and
SIGTERM from ``mpiexec`` is tested in tests/test_mpi_faults.py; here a signal
that one rank sends itself is checked to reach every rank's handler at the
same block, and the interval between votes to be the same on every rank.
"""

import os
import signal
import time

import pytest
from mpi4py import MPI

from meshfield._agreed import agreed
from meshfield.parallel import StopOnSignal

pytestmark = pytest.mark.mpi

comm = MPI.COMM_WORLD


def _gathered(value):
    return comm.allgather(value)


def test_the_handlers_are_deferred_inside_and_restored_after():
    def mine(signum, frame):
        raise AssertionError("not deferred")

    previous = signal.signal(signal.SIGINT, mine)
    try:
        with StopOnSignal(comm):
            inside = signal.getsignal(signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is mine
    finally:
        signal.signal(signal.SIGINT, previous)
    assert all(_gathered(inside is not mine)) == (comm.size > 1)


def test_a_signal_on_one_rank_runs_every_ranks_handler_at_the_same_block():
    """A handler that returns lets the loop go on: here it records the block."""
    block, seen = [0], []

    def record(signum, frame):
        seen.append((signum, block[0]))

    previous = signal.signal(signal.SIGTERM, record)
    try:
        with StopOnSignal(comm) as stop:
            for block[0] in range(1, 201):
                time.sleep(0.0005 * (1 + comm.rank))  # ranks of different speeds
                if comm.rank == comm.size - 1 and block[0] == 7:
                    os.kill(os.getpid(), signal.SIGTERM)
                stop.poll()
    finally:
        signal.signal(signal.SIGTERM, previous)
    everywhere = _gathered(seen)
    assert all(s == everywhere[0] for s in everywhere), everywhere
    assert len(everywhere[0]) == 1 and everywhere[0][0][0] == signal.SIGTERM, everywhere
    # acted on at a vote after the one at or after block 7, within about
    # 2 x VOTE_INTERVAL_S = 20 ms (blocks of 0.5-2 ms here)
    assert 7 < everywhere[0][0][1] <= 7 + 2 * 20 + 1, everywhere


def test_the_blocks_between_votes_are_the_same_on_every_rank():
    """They follow the slowest rank's time per block: about 10 ms / 1 ms here."""
    intervals = []
    with StopOnSignal(comm) as stop:
        for _ in range(300):
            time.sleep(0.001 if comm.rank == 0 else 0.0001)
            stop.poll()
            intervals.append(stop._every)
    everywhere = _gathered(intervals)
    assert all(i == everywhere[0] for i in everywhere)
    if comm.size > 1:
        # the slowest rank takes >= 1 ms per block (sleep), well under 2 ms unless the machine is loaded
        assert 1 <= everywhere[0][-1] <= 10, everywhere[0][-20:]


def test_a_signal_during_the_last_blocks_is_acted_on_when_the_loop_ends():
    """The last vote is a blocking one when the loop ends."""
    got = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: got.append(signum))
    try:
        with StopOnSignal(comm) as stop:
            for _ in range(5):
                stop.poll()
            if comm.rank == 0:
                os.kill(os.getpid(), signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert _gathered(got) == [[signal.SIGINT]] * comm.size


@pytest.mark.parametrize("every_rank", [True, False])
def test_the_vote_is_freed_after_a_failure_only_when_every_rank_raises_it(every_rank):
    """With a vote under way; freeing is collective, so not after a failure that
    may be one rank's alone (here it is every rank's, unmarked)."""
    with pytest.raises(ValueError, match="refused"):
        with StopOnSignal(comm, interval_s=0) as stop:
            stop.poll()  # starts a vote
            failure = ValueError("refused")
            raise agreed(failure) if every_rank else failure
    if comm.size == 1:
        assert stop._comm is None
    elif every_rank:
        assert stop._comm == MPI.COMM_NULL
    else:
        stop._request.Wait()
        stop._comm.Free()
