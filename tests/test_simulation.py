"""meshfield.run called from Python: what it checks and what it leaves behind."""

import dataclasses

import numpy as np
import pytest
from mpi4py import MPI

import meshfield
import meshfield.simulation as simulation
from meshfield.config import ConfigError

# one uncoupled site, two records: a run takes about a millisecond once compiled
TINY = {
    "run": {"t_end": 2.0, "dt": 0.5},
    "lattice": {"shape": [1], "boundary": "open"},
    "populations": {"E": {"N": 50, "mu": 20.0}},
}


def _replace(config, section, **changes):
    return dataclasses.replace(config, **{section: dataclasses.replace(getattr(config, section), **changes)})


@pytest.mark.parametrize("section, changes, message", [
    ("run", dict(level="mcro"), "run.level = 'mcro' is invalid: allowed: 'meso', 'micro'"),
    ("run", dict(dt=-0.5), "run.dt = -0.5 is invalid: must be > 0"),
    ("run", dict(t_end="100"), "run.t_end = '100' is invalid: expected a number"),
    ("run", dict(seed=-1), "run.seed = -1 is invalid: must be >= 0"),
    ("record", dict(interval=0.3), "record.interval = 0.3 is invalid: must be a positive multiple of run.dt"),
])
def test_a_config_changed_in_python_is_validated_like_the_toml_route(section, changes, message):
    # dataclasses.replace runs no checks; meshfield.run used to take such a
    # Config as it was: level 'mcro' ran the meso level, record.interval = 0.3
    # at dt = 0.5 recorded every step and labelled the records 0.3 ms apart
    config = _replace(meshfield.load_config(TINY), section, **changes)
    with pytest.raises(ConfigError) as info:
        meshfield.run(config, comm=MPI.COMM_SELF)
    assert str(info.value).startswith(message)


def test_a_population_changed_in_python_is_validated():
    config = meshfield.load_config(TINY)
    config = dataclasses.replace(config, populations=(dataclasses.replace(config.populations[0], N=0),))
    with pytest.raises(ConfigError, match=r"^populations\.E\.N = 0 is invalid: must be >= 1"):
        meshfield.run(config, comm=MPI.COMM_SELF)


def test_a_valid_config_runs_as_it_is():
    config = meshfield.load_config(TINY)
    changed = _replace(config, "run", seed=9)
    result = meshfield.run(changed, comm=MPI.COMM_SELF)
    assert result.config["run"]["seed"] == 9
    assert np.array_equal(result.A, meshfield.run(meshfield.load_config(TINY, ["run.seed=9"]),
                                                  comm=MPI.COMM_SELF).A)


@pytest.mark.parametrize("to_file", [False, True])
def test_run_releases_its_cartesian_communicator(monkeypatch, tmp_path, to_file):
    made = []

    def recording(*args, **kwargs):
        made.append(make(*args, **kwargs))
        return made[-1]

    make = simulation.make_decomposition
    monkeypatch.setattr(simulation, "make_decomposition", recording)
    result = meshfield.run(TINY, comm=MPI.COMM_SELF, output=str(tmp_path / "r.h5") if to_file else None)
    assert result.A.shape == (2, 1, 1)  # [time, type, site]
    assert len(made) == 1 and made[0].comm == MPI.COMM_NULL


def test_a_thousand_runs_in_one_process_do_not_exhaust_the_communicator_ids():
    # MPICH has about 2000 context ids; each run used to keep one or two
    config = meshfield.load_config(TINY)
    means = [float(meshfield.run(config, comm=MPI.COMM_SELF).A.mean()) for _ in range(1200)]
    assert len(set(means)) == 1


def test_a_sweep_of_thousands_of_refused_runs_does_not_exhaust_the_communicator_ids(monkeypatch):
    # a refusal that every rank raises alike frees the communicator; each kept
    # one before, and MPICH (1024 ids here) failed at the 1023rd
    config = meshfield.load_config(TINY)
    monkeypatch.setattr(simulation, "node_memory_bytes", lambda: 1)
    for _ in range(2100):
        with pytest.raises(ConfigError, match="of memory per rank on this node"):
            meshfield.run(config, comm=MPI.COMM_SELF)


def test_a_failure_not_known_to_be_every_ranks_leaves_the_communicator(monkeypatch):
    # freeing is collective: after a failure that may be one rank's alone (here
    # the model's construction) the other ranks may never join it
    made = []

    def recording(*args, **kwargs):
        made.append(make(*args, **kwargs))
        return made[-1]

    def broken(*args):
        raise MemoryError("one rank's")

    make = simulation.make_decomposition
    monkeypatch.setattr(simulation, "make_decomposition", recording)
    monkeypatch.setattr(simulation, "build_model", broken)
    with pytest.raises(MemoryError):
        meshfield.run(TINY, comm=MPI.COMM_SELF)
    assert len(made) == 1 and made[0].comm != MPI.COMM_NULL
    made[0].free()


def test_a_run_on_comm_self_shares_the_node_with_the_jobs_other_processes(monkeypatch):
    # a sweep under mpiexec -n 2 that gives each rank its own run on COMM_SELF:
    # each rank took all the node's cores for its numba threads (2 x 2 threads on
    # 2 cores ran the default 6 to 9 times slower than 2 x 1) and all its memory
    seen = {}
    monkeypatch.setenv("MPI_LOCALNRANKS", "2")
    monkeypatch.setattr(simulation, "set_threads_per_rank", lambda local: seen.setdefault("threads", local))
    check = simulation.check_memory
    monkeypatch.setattr(simulation, "check_memory",
                        lambda *args, on_node, **kwargs: check(*args, on_node=seen.setdefault("memory", on_node),
                                                               **kwargs))
    meshfield.run(TINY, comm=MPI.COMM_SELF)
    assert seen == {"threads": 2, "memory": 2}


@pytest.mark.parametrize("to_file", [False, True])
def test_what_run_returns_can_be_closed_with_or_without_output(tmp_path, to_file):
    result = meshfield.run(TINY, comm=MPI.COMM_SELF, output=str(tmp_path / "r.h5") if to_file else None)
    A = result.A
    result.close()
    assert A.shape == (2, 1, 1) and np.isfinite(A).all()


def test_a_failure_before_the_time_loop_leaves_no_files(tmp_path, monkeypatch):
    """The recorder's temporary files were made before the loop's arrays and the
    extras' first dataset, outside the block that aborts the recorder: a failure
    there (out of memory, a block file that cannot take the spikes' dataset)
    left them behind. Now nothing is left."""
    from meshfield.io import Recorder

    def refuse(self, *args, **kwargs):
        raise OSError("no room for the spikes")

    monkeypatch.setattr(Recorder, "append_extra", refuse)
    config = meshfield.load_config("v3_field", ["run.level=micro", "run.t_end=4", "record.spikes_per_site=2",
                                                "populations.E.N=20", "populations.I.N=5"])
    with pytest.raises(OSError, match="no room for the spikes"):
        meshfield.run(config, output=str(tmp_path / "r.h5"))
    assert sorted(p.name for p in tmp_path.iterdir()) == []
