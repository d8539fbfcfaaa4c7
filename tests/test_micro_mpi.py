"""Decomposition invariance of the microscopic level (MODEL.md §7).

Run under ``mpiexec -n 2`` and ``-n 4``: every rank computes the serial run itself
(``MPI.COMM_SELF``) and then takes part in runs on 2 .. size ranks (sub-communicators
of the world, so 3 ranks are covered under ``-n 4``) with every process grid the
lattice allows; the records must be bitwise identical. Every rank asserts, after an
agreement on the outcome, so a failure on one rank fails all of them instead of
hanging.
"""

import numpy as np
import pytest
from mpi4py import MPI

import meshfield
from meshfield.config import Config
from meshfield.parallel import DecompositionError

pytestmark = pytest.mark.mpi

WORLD = MPI.COMM_WORLD


def micro_config(shape, boundary):
    types = ("E", "I")
    pops = {
        "E": dict(N=40, mu=22.0, tau_m=20.0, t_ref=2.0, u_reset=0.0, u_th=15.0, c=10.0, delta_u=2.5,
                  tau_theta=[50.0, 200.0], J_theta=[20.0, 100.0], tau_s=3.0),
        "I": dict(N=12, mu=20.0, tau_m=10.0, t_ref=1.0, u_reset=0.0, u_th=15.0, c=10.0, delta_u=2.5,
                  tau_s=6.0),
    }
    couplings = []
    for a in types:
        for b in types:
            couplings.append(dict(
                target=a, source=b, J=0.4 if b == "E" else -1.2, C=20 if b == "E" else 6,
                kernel=dict(shape="gaussian", sigma=0.12, r_max=0.2),
                delay=dict(d0=1.0, velocity=0.1) if b == "E" else dict(d0=1.5)))
    return Config.from_dict(dict(
        run=dict(level="micro", t_end=60.0, dt=0.5, seed=17),
        lattice=dict(shape=list(shape), dx=0.1, boundary=boundary),
        populations=pops, couplings=couplings, record=dict(interval=1.0)))


CASES = [((12,), "periodic"), ((10,), "open"), ((8, 6), "periodic"), ((9, 7), "open")]


def grids(ndim, size):
    if ndim == 1:
        return [(size,)]
    return [(p, size // p) for p in range(1, size + 1) if size % p == 0]


def all_agree(ok: bool) -> bool:
    return bool(WORLD.allreduce(bool(ok), op=MPI.LAND))


@pytest.mark.parametrize("shape,boundary", CASES)
def test_records_identical_on_any_number_of_ranks(shape, boundary):
    config = micro_config(shape, boundary)
    serial = meshfield.run(config, comm=MPI.COMM_SELF)
    assert serial.A.sum() > 0, "the comparison needs spikes"
    checked = 0
    for size in range(2, WORLD.Get_size() + 1):
        member = WORLD.Get_rank() < size
        sub = WORLD.Split(0 if member else MPI.UNDEFINED, WORLD.Get_rank())
        for dims in grids(len(shape), size):
            ok = True
            if member:
                try:
                    result = meshfield.run(config, comm=sub, dims=dims)
                except DecompositionError:  # the halo does not fit this grid
                    result = None
                if result is not None:
                    ok = (np.array_equal(result.A, serial.A) and np.array_equal(result.Abar, serial.Abar))
                    checked += 1
            assert all_agree(ok), f"records differ on {size} ranks, process grid {dims}"
        if member:
            sub.Free()
    if WORLD.Get_size() > 1 and WORLD.Get_rank() == 0:
        assert checked >= 1


def test_memory_check_refuses_on_every_rank(monkeypatch):
    """One rank short of memory: every rank raises the same error (no rank is left
    waiting in a collective call of the build)."""
    import meshfield.simulation as sim
    from meshfield.config import ConfigError
    needed = 1 if WORLD.Get_rank() == WORLD.Get_size() - 1 else 2**62
    monkeypatch.setattr(sim, "node_memory_bytes", lambda: needed)
    try:
        meshfield.run(micro_config((8, 6), "periodic"), comm=WORLD)
        message = None
    except ConfigError as exc:
        message = str(exc)
    messages = WORLD.allgather(message)
    assert all(m is not None and "the micro model needs about" in m for m in messages), messages
    assert len(set(messages)) == 1, messages


def test_spikes_and_voltage_read_back_identically_on_any_number_of_ranks(shared_tmp):
    """Result.spikes()/voltage() assemble the ranks' blocks into the 1-rank layout."""
    d = micro_config((9, 7), "open").to_dict()
    d["record"].update(spikes_per_site=20, voltage_neurons=3)
    config = Config.from_dict(d)
    serial = meshfield.run(config, output=shared_tmp / f"serial{WORLD.rank}.h5", comm=MPI.COMM_SELF)
    world = meshfield.run(config, output=shared_tmp / "world.h5", comm=WORLD)
    with serial, world:
        spikes, (times, u) = serial.spikes(), serial.voltage()
        same = (np.array_equal(world.spikes(), spikes) and len(spikes) > 100
                and all(np.array_equal(a, b, equal_nan=True) for a, b in zip(world.voltage(), (times, u))))
    assert all_agree(same), f"spikes or voltage differ on {WORLD.Get_size()} ranks"
