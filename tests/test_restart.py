"""Checkpoint and restart of a run (MODEL.md §7, docs/checkpoints.md): a run
restarted from a checkpoint continues bitwise identically, and every way a
restart can be misused ends with one clear error before anything is written.

The multi-rank cases (a checkpoint written on R ranks and read on another grid)
are in ``tests/test_restart_mpi.py``.
"""

import copy
import os

import numpy as np
import pytest
from mpi4py import MPI

import meshfield
from meshfield.cli import main
from meshfield.io import open_result
from meshfield.io.checkpoint import CheckpointError, read_checkpoint, read_checkpoint_attrs
from meshfield.simulation import config_differences

from test_checkpoint_io import damage, without_checksums
from test_invariance_mpi import OPEN_1D  # noqa: E402  (E/I with adaptation, delays, OU stimulus)

#: the checkpoint time (ms): a record boundary (records every 0.5 ms) at step 41,
#: which is not a multiple of the block length (d_min = 2 steps): the restarted run
#: must first complete the block the checkpoint fell into
T_SPLIT = 20.5
T_END = OPEN_1D["run"]["t_end"]


def with_run(cfg, **run):
    out = copy.deepcopy(cfg)
    out["run"].update(run)
    return out


def split_run(cfg, tmp_path, level):
    """Uninterrupted run, and the same run as two segments through a checkpoint."""
    cfg = with_run(cfg, level=level)
    ckpt = str(tmp_path / f"{level}.ckpt.h5")
    whole = meshfield.run(cfg, comm=MPI.COMM_SELF)
    first = meshfield.run(with_run(cfg, t_end=T_SPLIT), comm=MPI.COMM_SELF, checkpoint=ckpt)
    second = meshfield.run(cfg, comm=MPI.COMM_SELF, restart=ckpt)
    return whole, first, second, ckpt


@pytest.mark.parametrize("level, cohort_dtype", [("meso", "float64"), ("micro", "float64"), ("meso", "float32")])
def test_restart_continues_bitwise(tmp_path, level, cohort_dtype):
    cfg = copy.deepcopy(OPEN_1D)
    cfg["run"]["cohort_dtype"] = cohort_dtype
    whole, first, second, ckpt = split_run(cfg, tmp_path, level)
    n1 = len(first.times)
    assert n1 == round(T_SPLIT / OPEN_1D["record"]["interval"])
    # the activity is large enough for the comparison to mean something
    assert whole.A[5:].mean() > 1.0
    assert np.array_equal(first.A, whole.A[:n1])
    assert np.array_equal(second.times, whole.times[n1:])
    assert second.times[0] == T_SPLIT
    assert np.array_equal(second.A, whole.A[n1:])
    assert np.array_equal(second.Abar, whole.Abar[n1:])
    attrs = read_checkpoint_attrs(ckpt)
    assert attrs["step"] == round(T_SPLIT / OPEN_1D["run"]["dt"])
    assert attrs["level"] == level
    if level == "meso":  # the cohorts are stored as they are held
        assert read_checkpoint(ckpt)[0]["E/m"].dtype == np.dtype(cohort_dtype)


def test_a_checkpoint_from_before_a_new_configuration_key_restarts(tmp_path):
    """A checkpoint written before run.cohort_dtype existed stores no such key:
    its restart was refused ("'float64' here, not set in the checkpoint"), with
    no --set that could help. A missing key means its default."""
    import json

    import h5py

    whole, first, _, ckpt = split_run(OPEN_1D, tmp_path, "meso")
    with h5py.File(ckpt, "r+") as f:
        stored = json.loads(f.attrs["config"])
        del stored["run"]["cohort_dtype"]
        f.attrs["config"] = json.dumps(stored)
    second = meshfield.run(with_run(OPEN_1D, level="meso"), comm=MPI.COMM_SELF, restart=ckpt)
    assert np.array_equal(second.A, whole.A[len(first.times):])
    # a key the checkpoint does hold must still agree
    with pytest.raises(CheckpointError, match=r"differs from the checkpoint's at run.cohort_dtype: 'float32' here, "
                                              r"'float64' in the checkpoint"):
        meshfield.run(with_run(OPEN_1D, level="meso", cohort_dtype="float32"), comm=MPI.COMM_SELF, restart=ckpt)


def test_a_float32_runaway_hazard_is_stored_finite_and_restarts(tmp_path):
    """Facilitation (J_theta < 0) can drive a cohort's hazard to c e**700 per ms;
    stored in float32 it became inf, and the restart refused the run's own
    checkpoint as damaged. Stored hazards are capped where P = 1 already, which
    changes no record."""
    from meshfield.meso.kernels import HAZARD_STORED_MAX

    cfg = {"run": {"t_end": 300.0, "dt": 0.5, "seed": 1, "cohort_dtype": "float32"},
           "lattice": {"shape": [1]},
           "populations": {"E": {"N": 500, "mu": 24.0, "tau_theta": [100.0], "J_theta": [-1000.0]}}}
    ckpt = str(tmp_path / "runaway.ckpt.h5")
    whole = meshfield.run(cfg, comm=MPI.COMM_SELF)
    first = meshfield.run(with_run(cfg, t_end=200.0), comm=MPI.COMM_SELF, checkpoint=ckpt)
    assert read_checkpoint(ckpt)[0]["E/lam"].max() == np.float32(HAZARD_STORED_MAX)  # the runaway is capped
    second = meshfield.run(cfg, comm=MPI.COMM_SELF, restart=ckpt)
    assert np.array_equal(second.A, whole.A[len(first.times):])
    assert whole.A[100:].mean() > 150.0  # it did run away (the free rate is about 25 Hz)


def test_meso_checkpoint_holds_the_documented_arrays(tmp_path):
    _, _, _, ckpt = split_run(OPEN_1D, tmp_path, "meso")
    arrays, attrs = read_checkpoint(ckpt)
    n_sites = OPEN_1D["lattice"]["shape"][0]
    assert arrays["hist"].shape[0] == n_sites and arrays["hist"].shape[2] == 2
    for name in ("m", "v", "u", "lam", "n", "x", "z", "h", "lam_free", "g", "y"):
        assert arrays[f"E/{name}"].shape[0] == n_sites, name
    # the cohort created by step t (slot t % K) holds the spike count that the
    # history keeps in slot t % D: the two buffers agree over the steps both hold
    step, K, D = attrs["step"], arrays["E/n"].shape[1], arrays["hist"].shape[1]
    assert arrays["hist"][:, :, 0].sum() > 0
    for t in range(step - min(K, D), step):
        assert np.array_equal(arrays["E/n"][:, t % K], arrays["hist"][:, t % D, 0]), t
    assert arrays["stimulus/ou_0"].shape == (n_sites,)


def test_a_restart_chain_equals_one_run_in_a_result_file(tmp_path):
    """Three segments through files, as slurm/chain.sbatch runs them."""
    cfg = with_run(OPEN_1D, level="meso")
    whole = meshfield.run(cfg, comm=MPI.COMM_SELF)
    previous, parts = None, []
    for k, t_end in enumerate((15.0, 40.0, T_END)):
        out, ckpt = str(tmp_path / f"seg{k}.h5"), str(tmp_path / f"seg{k}.ckpt.h5")
        res = meshfield.run(with_run(cfg, t_end=t_end), output=out, comm=MPI.COMM_SELF,
                            checkpoint=ckpt, restart=previous)
        parts.append((res.times.copy(), res.A[()].copy()))
        res.close()
        previous = ckpt
    times = np.concatenate([t for t, _ in parts])
    A = np.concatenate([a for _, a in parts])
    assert np.array_equal(times, whole.times)
    assert np.array_equal(A, whole.A)
    # the last segment's result and checkpoint name the whole chain, oldest first
    chain = [str(tmp_path / f"seg{k}.ckpt.h5") for k in range(2)]
    with open_result(tmp_path / "seg2.h5") as res:
        assert res.meta["restart"] == chain[-1] and list(res.meta["restart_chain"]) == chain
    assert read_checkpoint_attrs(str(tmp_path / "seg2.ckpt.h5"))["restart_chain"] == chain
    assert read_checkpoint_attrs(chain[0])["restart_chain"] == []
    # in the file, as docs/checkpoints.md says: a JSON string (listed in json_attrs);
    # the result's meta holds an HDF5 array of strings
    import json

    import h5py

    with h5py.File(tmp_path / "seg2.ckpt.h5", "r") as f:
        stored = f.attrs["restart_chain"]
        assert isinstance(stored, str) and json.loads(stored) == chain
        assert "restart_chain" in json.loads(f.attrs["json_attrs"])


def test_restart_refuses_a_different_configuration(tmp_path):
    _, _, _, ckpt = split_run(OPEN_1D, tmp_path, "meso")
    other = with_run(OPEN_1D, level="meso")
    other["populations"] = copy.deepcopy(OPEN_1D["populations"])
    other["populations"]["E"]["mu"] = 22.0
    with pytest.raises(CheckpointError, match=r"populations\.E\.mu: 22\.0 here, 23\.0 in the checkpoint"):
        meshfield.run(other, comm=MPI.COMM_SELF, restart=ckpt)
    with pytest.raises(CheckpointError, match=r"run\.level: 'micro' here, 'meso'"):
        meshfield.run(with_run(OPEN_1D, level="micro"), comm=MPI.COMM_SELF, restart=ckpt)


def test_restart_needs_a_later_end(tmp_path):
    _, _, _, ckpt = split_run(OPEN_1D, tmp_path, "meso")
    with pytest.raises(CheckpointError, match="must be later than the checkpoint's time 20.5 ms"):
        meshfield.run(with_run(OPEN_1D, level="meso", t_end=T_SPLIT), comm=MPI.COMM_SELF, restart=ckpt)


def test_restart_messages_name_what_differs(tmp_path):
    """A removed list is shown by its size, not as None; a t_end that rounds down to
    the checkpoint's record says so."""
    _, _, _, ckpt = split_run(OPEN_1D, tmp_path, "meso")
    no_couplings = with_run(OPEN_1D, level="meso")
    no_couplings["couplings"] = []
    n = len(OPEN_1D["couplings"])
    with pytest.raises(CheckpointError, match=rf"couplings: \[\] here, a list of {n} entr(y|ies) in the checkpoint"):
        meshfield.run(no_couplings, comm=MPI.COMM_SELF, restart=ckpt)
    # records every 0.5 ms: t_end = 20.7 ms ends them at 20.5 ms, the checkpoint's time
    with pytest.raises(CheckpointError, match=r"run\.t_end = 20\.7 ms ends the records at 20\.5 ms "
                                              r"\(whole record intervals of 0\.5 ms\), which must be later"):
        meshfield.run(with_run(OPEN_1D, level="meso", t_end=20.7), comm=MPI.COMM_SELF, restart=ckpt)


def test_result_and_checkpoint_files_must_differ(tmp_path):
    """The same path for result and checkpoint, or a result written over the
    checkpoint it restarts from, is refused before anything runs or is written."""
    _, _, _, ckpt = split_run(OPEN_1D, tmp_path, "meso")
    before = sorted(p.name for p in tmp_path.iterdir())
    out = str(tmp_path / "r.h5")
    cfg = with_run(OPEN_1D, level="meso", t_end=T_SPLIT)
    with pytest.raises(CheckpointError, match=r"--checkpoint .*r\.h5 is the result file"):
        meshfield.run(cfg, output=out, checkpoint=str(tmp_path / "." / "r.h5"), overwrite=True,
                      comm=MPI.COMM_SELF)
    with pytest.raises(CheckpointError, match=r"-o .* is the checkpoint to restart from"):
        meshfield.run(with_run(OPEN_1D, level="meso"), output=ckpt, restart=ckpt, overwrite=True,
                      comm=MPI.COMM_SELF)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert read_checkpoint_attrs(ckpt)["step"] == int(round(T_SPLIT / OPEN_1D["run"]["dt"]))


def test_config_differences_ignores_only_the_end_and_progress():
    a = dict(run=dict(t_end=10.0, progress_interval=5.0, seed=1), stimuli=[dict(tau=(1, 2))])
    b = dict(run=dict(t_end=20.0, progress_interval=1.0, seed=2), stimuli=[dict(tau=[1, 2])])
    assert config_differences(a, b) == [("run.seed", 1, 2)]
    assert config_differences(a, dict(run=a["run"])) == [("stimuli.0.tau.0", 1, None),
                                                         ("stimuli.0.tau.1", 2, None)]


def test_cli_checkpoint_and_restart(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[run]\nt_end = 20.0\ndt = 0.5\nseed = 3\n[lattice]\nshape = [3]\n'
                   '[populations.E]\nN = 200\nmu = 20.0\n')
    whole, a, b = (str(tmp_path / n) for n in ("whole.h5", "a.h5", "b.h5"))
    ckpt = str(tmp_path / "a.ckpt.h5")
    assert main(["run", str(cfg), "-q", "-o", whole]) == 0
    assert main(["run", str(cfg), "-q", "-o", a, "--set", "run.t_end=8", "--checkpoint", ckpt]) == 0
    # the checkpoint exists now: writing it again needs --overwrite, and nothing else is written
    assert main(["run", str(cfg), "-q", "-o", str(tmp_path / "x.h5"), "--checkpoint", ckpt]) == 2
    assert "exists" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "x.h5")
    assert main(["run", str(cfg), "-q", "-o", b, "--restart", ckpt]) == 0
    with open_result(whole) as w, open_result(b) as r:
        assert r.times[0] == 8.0
        assert np.array_equal(r.times, w.times[w.times >= 8.0])
        assert np.array_equal(r.A[()], w.A[w.times >= 8.0])
    # unusable restarts: a missing file, a result file instead of a checkpoint
    assert main(["run", str(cfg), "-q", "-o", str(tmp_path / "y.h5"), "--restart",
                 str(tmp_path / "missing.ckpt.h5")]) == 2
    assert "missing.ckpt.h5" in capsys.readouterr().err
    assert main(["run", str(cfg), "-q", "-o", str(tmp_path / "y.h5"), "--restart", whole]) == 2
    assert "checkpoint" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "y.h5")
    # a checkpoint into a missing folder is refused before the run
    assert main(["run", str(cfg), "-q", "-o", str(tmp_path / "z.h5"), "--checkpoint",
                 str(tmp_path / "no" / "c.h5")]) == 2
    assert not os.path.exists(tmp_path / "z.h5")


def test_restart_refuses_populations_in_another_order(tmp_path):
    """The checkpoint stores the state by position along the type axis: the same
    populations listed in another order would load E's state into I."""
    _, _, _, ckpt = split_run(OPEN_1D, tmp_path, "meso")
    swapped = with_run(OPEN_1D, level="meso")
    swapped["populations"] = dict(reversed(list(OPEN_1D["populations"].items())))
    with pytest.raises(CheckpointError, match=r"populations are in the order \['I', 'E'\] here and \['E', 'I'\] "
                                              r"in the checkpoint"):
        meshfield.run(swapped, comm=MPI.COMM_SELF, restart=ckpt)


def test_a_failing_checkpoint_leaves_the_finished_result(tmp_path, monkeypatch):
    """The result is published before the checkpoint is written, so a checkpoint
    that fails at the end (a full disk) does not take the finished run with it."""
    import meshfield.io.checkpoint as checkpoint

    def full_disk(*args, **kwargs):
        raise CheckpointError("cannot write the checkpoint: No space left on device")

    monkeypatch.setattr(checkpoint, "write_checkpoint", full_disk)
    out = str(tmp_path / "r.h5")
    cfg = with_run(OPEN_1D, level="meso", t_end=10.0)
    with pytest.raises(CheckpointError, match="No space left"):
        meshfield.run(cfg, output=out, checkpoint=str(tmp_path / "c.h5"), comm=MPI.COMM_SELF)
    reference = meshfield.run(cfg, comm=MPI.COMM_SELF)
    with open_result(out) as res:
        assert res.A.shape[0] == 20 and np.array_equal(res.A, reference.A)


def test_an_unwritable_checkpoint_folder_is_refused_before_the_run(tmp_path, monkeypatch):
    import meshfield.io.checkpoint as checkpoint

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(checkpoint.tempfile, "NamedTemporaryFile", read_only)
    with pytest.raises(CheckpointError, match=r"the folder .* is not writable \(Permission denied\)"):
        checkpoint.check_checkpoint_target(str(tmp_path / "c.h5"))


def test_overwrite_replaces_a_file_only_with_one_of_its_kind(tmp_path):
    """--overwrite covers the result and the checkpoint; a slip that names the
    previous segment's result as the checkpoint (or the reverse) is refused."""
    _, _, _, ckpt = split_run(OPEN_1D, tmp_path, "meso")
    result = str(tmp_path / "seg0.h5")
    meshfield.run(with_run(OPEN_1D, level="meso", t_end=5.0), output=result, comm=MPI.COMM_SELF).close()
    cfg = with_run(OPEN_1D, level="meso", t_end=5.0)
    with pytest.raises(CheckpointError, match="the file is a meshfield result"):
        meshfield.run(cfg, output=str(tmp_path / "new.h5"), checkpoint=result, overwrite=True,
                      comm=MPI.COMM_SELF)
    from meshfield.io.recorder import RecorderError

    with pytest.raises(RecorderError, match="the file is a meshfield checkpoint"):
        meshfield.run(cfg, output=ckpt, overwrite=True, comm=MPI.COMM_SELF)
    with open_result(result) as res:
        assert res.A.shape[0] == 10
    assert read_checkpoint_attrs(ckpt)["step"] == int(round(T_SPLIT / OPEN_1D["run"]["dt"]))


def test_a_file_that_is_no_checkpoint_is_refused_naming_restart(tmp_path):
    """Every refusal of a --restart file names the option, as those of its
    contents do; a missing file or a result read as "PATH: no such checkpoint
    file" without it."""
    cfg = with_run(OPEN_1D, level="meso", t_end=5.0)
    result = str(tmp_path / "seg0.h5")
    meshfield.run(cfg, output=result, comm=MPI.COMM_SELF).close()
    text = tmp_path / "notes.h5"
    text.write_text("not HDF5")
    for path, said in [(tmp_path / "none.h5", "no such checkpoint file"),
                       (tmp_path, "is a folder, not a checkpoint file"),
                       (text, "not an HDF5 file, so not a meshfield checkpoint"),
                       (result, "not a meshfield checkpoint .its 'format' attribute is 'meshfield-result'")]:
        with pytest.raises(CheckpointError, match=rf"^--restart {path}: {said}"):
            meshfield.run(with_run(cfg, t_end=10.0), restart=str(path), comm=MPI.COMM_SELF)


def test_damaged_checkpoint_arrays_are_refused_by_name(tmp_path):
    """A checkpoint whose list of arrays matches its datasets but not the model's state
    (an array removed, or one of another trailing shape) used to end in a KeyError or
    a reshape traceback."""
    import json
    import shutil

    import h5py

    _, _, _, ckpt = split_run(OPEN_1D, tmp_path, "meso")
    cfg = with_run(OPEN_1D, level="meso")
    names = read_checkpoint_attrs(ckpt)["names"]
    removed = str(tmp_path / "removed.h5")
    shutil.copy(ckpt, removed)
    with h5py.File(removed, "r+") as f:
        del f[names[0]]
        f.attrs["names"] = json.dumps(names[1:])
    with pytest.raises(CheckpointError, match=rf"damaged or foreign checkpoint: it lacks the array '{names[0]}'"):
        meshfield.run(cfg, comm=MPI.COMM_SELF, restart=removed)
    reshaped = str(tmp_path / "reshaped.h5")
    shutil.copy(ckpt, reshaped)
    with h5py.File(reshaped, "r+") as f:
        data = f[names[0]][()]
        del f[names[0]]
        f[names[0]] = np.concatenate([data, data], axis=-1) if data.ndim > 1 else np.stack([data, data], axis=-1)
    with pytest.raises(CheckpointError, match=rf"the array '{names[0]}' has shape .* this model's state needs"):
        meshfield.run(cfg, comm=MPI.COMM_SELF, restart=reshaped)


@pytest.mark.parametrize("level, name, value, said", [
    ("meso", "hist", -1e9, "the array 'hist' holds negative values .down to -1e\\+09."),
    ("meso", "E/v", -0.5, "the array 'E/v' holds negative values .down to -0.5."),
    ("meso", "E/u", np.nan, "the array 'E/u' holds 1 NaN or infinite value"),
    ("micro", "ref", -3, "the array 'ref' holds negative values .down to -3."),
    ("micro", "y", np.inf, "the array 'y' holds 1 NaN or infinite value"),
], ids=["meso-negative-hist", "meso-negative-variance", "meso-nan-potential", "micro-negative-refractory",
        "micro-infinite-current"])
def test_checkpoint_values_no_run_can_reach_are_refused(tmp_path, level, name, value, said):
    """A hand-edited or damaged checkpoint with NaN or a negative spike count was
    accepted: the restarted run went on from it (NaN results or a sampler error)."""
    import shutil

    import h5py

    _, _, _, ckpt = split_run(OPEN_1D, tmp_path, level)
    cfg = with_run(OPEN_1D, level=level)
    meshfield.run(cfg, comm=MPI.COMM_SELF, restart=ckpt)  # the checkpoint as written is accepted
    damaged = str(tmp_path / "damaged.h5")
    shutil.copy(ckpt, damaged)
    with h5py.File(damaged, "r+") as f:
        data = f[name][()]
        data.flat[data.size // 2] = value
        f[name][...] = data
    with pytest.raises(CheckpointError, match=rf"^--restart {damaged}: damaged or foreign checkpoint: {said}"):
        meshfield.run(cfg, comm=MPI.COMM_SELF, restart=damaged)


@pytest.mark.parametrize("edit, said", [
    (lambda attrs: attrs.__delitem__("step"), "it lacks the 'step' attribute"),
    (lambda attrs: attrs.__setitem__("step", "abc"), "its 'step' attribute is 'abc'"),
    (lambda attrs: attrs.__setitem__("step", -2), "its 'step' attribute is -2"),
    (lambda attrs: attrs.__setitem__("step", 33.5), "its 'step' attribute is 33.5"),
    (lambda attrs: attrs.__setitem__("config", "[1, 2]"), "its 'config' attribute is list, not a configuration"),
])
def test_damaged_checkpoint_attributes_are_refused_by_name(tmp_path, edit, said):
    """A missing or malformed 'step' or 'config' attribute was a KeyError,
    ValueError or AttributeError traceback, a negative step a kernel error, and
    a step between records a message about records out of order."""
    import shutil

    import h5py

    _, _, _, ckpt = split_run(OPEN_1D, tmp_path, "meso")
    assert read_checkpoint_attrs(ckpt)["step"] == 41   # 20.5 ms at dt 0.5
    damaged = str(tmp_path / "damaged.h5")
    shutil.copy(ckpt, damaged)
    with h5py.File(damaged, "r+") as f:
        edit(f.attrs)
    with pytest.raises(CheckpointError, match=rf"--restart {damaged}: damaged or foreign checkpoint: {said}"):
        meshfield.run(with_run(OPEN_1D, level="meso"), comm=MPI.COMM_SELF, restart=damaged)


def test_a_checkpoint_step_between_records_is_refused():
    from meshfield.simulation import _check_restart_attrs

    _check_restart_attrs("c.h5", {"config": {}, "step": np.int64(42), "restart_chain": ["a.h5"]}, 2)
    with pytest.raises(CheckpointError, match=r"'step' attribute is 41; .* a multiple of 2"):
        _check_restart_attrs("c.h5", {"config": {}, "step": 41}, 2)
    with pytest.raises(CheckpointError, match=r"'restart_chain' attribute is 'a.h5', not a list"):
        _check_restart_attrs("c.h5", {"config": {}, "step": 42, "restart_chain": "a.h5"}, 2)


@pytest.mark.parametrize("level, name", [("meso", "E/u"), ("meso", "hist"), ("micro", "u")])
def test_a_checkpoint_changed_after_writing_is_refused_by_its_checksum(tmp_path, level, name):
    """Bytes of a checkpoint overwritten with 0x7f (a user's audit) were read as
    values of about 1.4e306, finite and positive, so the NaN and sign checks let
    them through and the restart ran on with wrong activity."""
    import shutil

    _, _, _, ckpt = split_run(OPEN_1D, tmp_path, level)
    damaged = str(tmp_path / "damaged.h5")
    shutil.copy(ckpt, damaged)
    damage(damaged, name)
    with pytest.raises(CheckpointError, match=rf"^--restart {damaged}: damaged checkpoint, the dataset "
                                              rf"'{name}' fails its checksum \(its bytes changed after it "
                                              rf"was written\)$"):
        meshfield.run(with_run(OPEN_1D, level=level), comm=MPI.COMM_SELF, restart=damaged)


def test_cli_refuses_a_damaged_checkpoint_with_exit_2_and_writes_nothing(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[run]\nt_end = 20.0\ndt = 0.5\nseed = 3\n[lattice]\nshape = [3]\n'
                   '[populations.E]\nN = 200\nmu = 20.0\n')
    ckpt = str(tmp_path / "a.ckpt.h5")
    assert main(["run", str(cfg), "-q", "-o", str(tmp_path / "a.h5"), "--set", "run.t_end=8",
                 "--checkpoint", ckpt]) == 0
    damage(ckpt, "E/u")
    capsys.readouterr()
    before = sorted(os.listdir(tmp_path))
    assert main(["run", str(cfg), "-q", "-o", str(tmp_path / "rx.h5"), "--restart", ckpt,
                 "--checkpoint", str(tmp_path / "rx.ckpt.h5")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"meshfield: error: --restart {ckpt}: damaged checkpoint, the dataset 'E/u' fails "
                     f"its checksum (its bytes changed after it was written)"]
    assert sorted(os.listdir(tmp_path)) == before


@pytest.mark.parametrize("level", ["meso", "micro"])
def test_a_checkpoint_from_before_the_checksums_restarts_bitwise(tmp_path, level):
    """Checkpoints written before the checksums hold contiguous, unfiltered
    datasets; they restart as before."""
    whole, first, _, ckpt = split_run(OPEN_1D, tmp_path, level)
    without_checksums(ckpt)
    second = meshfield.run(with_run(OPEN_1D, level=level), comm=MPI.COMM_SELF, restart=ckpt)
    n1 = len(first.times)
    assert np.array_equal(second.A, whole.A[n1:])
    assert np.array_equal(second.Abar, whole.Abar[n1:])
