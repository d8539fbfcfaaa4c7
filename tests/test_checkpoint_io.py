"""Checkpoint files on one rank (meshfield/io/checkpoint.py).

The MPI twin, tests/test_checkpoint_io_mpi.py, reuses ``site_values`` from here.
"""

import json
import os

import h5py
import numpy as np
import pytest
from mpi4py import MPI

from meshfield.io._hdf5 import CHUNK_BYTES
from meshfield.io.checkpoint import (
    FORMAT,
    VERSION,
    CheckpointError,
    _check_summaries,
    _chunks,
    check_checkpoint_target,
    read_checkpoint,
    read_checkpoint_attrs,
    write_checkpoint,
)
from meshfield.parallel import Decomposition

SHAPE = (7, 5)
ATTRS = {"level": "meso", "step": 1200, "t": 600.0, "mean_field": False,
         "config": {"run": {"dt": 0.5, "seed": 3}, "types": ["E", "I"]},
         "tau_theta": [100.0, 1000.0]}


def site_values(global_shape):
    """Known state arrays over the whole lattice, each a function of the global site.

    With s the C-order flat site index: ``y[..., k] = s + 0.25 k`` (float64, one
    trailing axis), ``meso/m[..., a, b] = 100 s + 10 a + b`` (int64, two trailing
    axes), ``meso/flag = (s % 3 == 0)`` (bool), ``count = -s`` (int32, none).
    """
    site = np.arange(np.prod(global_shape)).reshape(global_shape)
    return {
        "y": site[..., None] + 0.25 * np.arange(3),
        "meso/m": (100 * site[..., None, None] + 10 * np.arange(2)[:, None]
                   + np.arange(4)).astype(np.int64),
        "meso/flag": site % 3 == 0,
        "count": (-site).astype(np.int32),
    }


def damage(path, name, site=(), value=0x7f, count=8):
    """Overwrite ``count`` bytes of the stored values of dataset ``name`` with
    ``value``, as a user's audit did (0x7f bytes make a float64 of about 1.4e306:
    finite and positive), bypassing HDF5: at the start of the chunk that holds the
    lattice site ``site`` (its first site by default), or, in a contiguous
    dataset (a checkpoint from before the checksums), at that site's first value.
    Returns the file offset."""
    with h5py.File(path, "r") as f:
        dataset = f[name]
        index = tuple(site) + (0,) * (dataset.ndim - len(site))
        if dataset.chunks is None:
            offset = dataset.id.get_offset() + int(np.ravel_multi_index(index, dataset.shape)) * \
                dataset.dtype.itemsize
        else:
            corner = tuple(i - i % c for i, c in zip(index, dataset.chunks))
            offset = dataset.id.get_chunk_info_by_coord(corner).byte_offset
    with open(path, "r+b") as file:
        file.seek(offset)
        before = file.read(count)
        file.seek(offset)
        file.write(bytes([value]) * count)
    assert before != bytes([value]) * count
    return offset


def without_checksums(path):
    """Rewrite every dataset of the checkpoint at ``path`` contiguous and
    unfiltered, as checkpoints were written before the checksums; attributes kept."""
    with h5py.File(path, "r+") as f:
        for name in json.loads(f.attrs["names"]):
            data = f[name][()]
            del f[name]
            f.create_dataset(name, data=data)
            assert f[name].chunks is None and not f[name].fletcher32


def block_of(arrays, decomposition):
    return {name: value[decomposition.local_slices] for name, value in arrays.items()}


@pytest.fixture
def decompose():
    """Build Decompositions of COMM_SELF (open boundary, no halo); freed afterwards."""
    made = []

    def make(global_shape=SHAPE):
        made.append(Decomposition(MPI.COMM_SELF, global_shape, periodic=False, halo_width=0))
        return made[-1]

    yield make
    for decomposition in made:
        decomposition.free()


def write_known(path, decomposition, offset=0, **kwargs):
    arrays = site_values(decomposition.global_shape)
    arrays["y"] = arrays["y"] + offset
    return write_checkpoint(path, decomposition, block_of(arrays, decomposition), ATTRS,
                            **kwargs), arrays


def assert_arrays_equal(found, expected):
    assert list(found) == list(expected)
    for name, value in expected.items():
        assert found[name].dtype == value.dtype, name
        np.testing.assert_array_equal(found[name], value, err_msg=name)


def test_round_trip(tmp_path, decompose):
    decomposition = decompose()
    written, arrays = write_known(tmp_path / "ck.h5", decomposition)
    assert written == str(tmp_path / "ck.h5")
    assert os.listdir(tmp_path) == ["ck.h5"]
    found, attrs = read_checkpoint(tmp_path / "ck.h5")
    assert_arrays_equal(found, arrays)
    assert found["meso/m"].shape == (*SHAPE, 2, 4)
    blocks, _ = read_checkpoint(tmp_path / "ck.h5", decomposition)
    assert_arrays_equal(blocks, arrays)
    expected_attrs = {**ATTRS, "format": FORMAT, "version": VERSION, "global_shape": [7, 5],
                      "names": ["y", "meso/m", "meso/flag", "count"], "ranks": 1,
                      "dims": [1, 1]}
    assert attrs == expected_attrs
    assert read_checkpoint_attrs(tmp_path / "ck.h5") == expected_attrs
    assert type(attrs["step"]) is int and type(attrs["mean_field"]) is bool
    with h5py.File(tmp_path / "ck.h5", "r") as f:
        assert isinstance(f["meso"], h5py.Group)
        assert json.loads(f.attrs["config"]) == ATTRS["config"]


def test_values_are_bitwise_exact(tmp_path, decompose):
    decomposition = decompose((4,))
    values = np.array([0.1, np.nextafter(1.0, 2.0), -0.0, np.inf])
    write_checkpoint(tmp_path / "ck.h5", decomposition, {"u": values},
                     {"dt": 0.1, "big": 2 ** 70, "none": None, "pair": (1, 2)})
    found, attrs = read_checkpoint(tmp_path / "ck.h5")
    assert found["u"].tobytes() == values.tobytes()
    assert (attrs["dt"], attrs["big"], attrs["none"], attrs["pair"]) == (0.1, 2 ** 70, None,
                                                                         [1, 2])


def test_target_checks(tmp_path):
    path = tmp_path / "ck.h5"
    assert check_checkpoint_target(path) == str(path)
    path.write_text("old")
    with pytest.raises(CheckpointError, match=f"{path} exists.*--overwrite"):
        check_checkpoint_target(path)
    # --overwrite replaces a checkpoint, not a file of the user's
    with pytest.raises(CheckpointError, match="exists and is not a meshfield checkpoint"):
        check_checkpoint_target(path, overwrite=True)
    assert path.read_text() == "old"
    with pytest.raises(CheckpointError, match=f"folder {tmp_path / 'missing'} does not exist"):
        check_checkpoint_target(tmp_path / "missing" / "ck.h5")
    with pytest.raises(CheckpointError, match=f"{tmp_path}: it is a folder"):
        check_checkpoint_target(tmp_path)


def test_refuses_to_overwrite_then_replaces(tmp_path, decompose):
    decomposition = decompose()
    path = tmp_path / "ck.h5"
    write_known(path, decomposition)
    with pytest.raises(CheckpointError, match=f"{path} exists.*--overwrite"):
        write_known(path, decomposition, offset=1)
    assert read_checkpoint(path)[0]["y"][0, 0, 0] == 0.0
    _, arrays = write_known(path, decomposition, offset=1, overwrite=True)
    assert_arrays_equal(read_checkpoint(path)[0], arrays)
    assert os.listdir(tmp_path) == ["ck.h5"]


def test_missing_folder_and_folder_target(tmp_path, decompose):
    missing = tmp_path / "missing"
    with pytest.raises(CheckpointError, match=f"the folder {missing} does not exist"):
        write_known(missing / "ck.h5", decompose())
    (tmp_path / "dir").mkdir()
    with pytest.raises(CheckpointError, match=f"{tmp_path / 'dir'}: it is a folder"):
        write_known(tmp_path / "dir", decompose(), overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["dir"]
    assert os.listdir(tmp_path / "dir") == []


def test_failed_write_keeps_the_old_checkpoint(tmp_path, decompose, monkeypatch):
    decomposition = decompose()
    path = tmp_path / "ck.h5"
    _, old = write_known(path, decomposition)
    original = h5py.Dataset.__setitem__
    calls = []

    def fail_on_second(self, key, value):
        calls.append(self.name)
        if len(calls) == 2:
            raise OSError("No space left on device")
        original(self, key, value)

    monkeypatch.setattr(h5py.Dataset, "__setitem__", fail_on_second)
    with pytest.raises(CheckpointError, match=f"writing the checkpoint {path} failed: "
                                              f"OSError: No space left"):
        write_known(path, decomposition, offset=1, overwrite=True)
    monkeypatch.undo()
    assert calls == ["/y", "/meso/m"]
    assert_arrays_equal(read_checkpoint(path)[0], old)
    assert os.listdir(tmp_path) == ["ck.h5"]


@pytest.mark.parametrize("arrays, expected", [
    ({"y": np.zeros((7, 4))}, r"array 'y' has shape \(7, 4\); its leading axes must equal "
                              r"this rank's local_shape \(7, 5\)"),
    ({"s": np.array([["a"] * 5] * 7)}, r"array 's' has dtype <U1; allowed are bool"),
    ({"r": [[1.0, 2.0], [3.0]]}, r"ValueError: .*inhomogeneous"),
    ({"/y": np.zeros(SHAPE)}, r"array name '/y'"),
    ({"a//b": np.zeros(SHAPE)}, r"array name 'a//b'"),
    ({"a": np.zeros(SHAPE), "a/b": np.zeros(SHAPE)}, r"array names 'a' and 'a/b' clash"),
])
def test_invalid_arrays(tmp_path, decompose, arrays, expected):
    with pytest.raises(CheckpointError, match=f"cannot write the checkpoint {tmp_path}/ck.h5: "
                                              f"rank 0: {expected}"):
        write_checkpoint(tmp_path / "ck.h5", decompose(), arrays, {})
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("attrs, expected", [
    ({"names": ["x"]}, r"attrs\['names'\] is set by the checkpoint writer"),
    ({"f": lambda: 0}, r"attrs\['f'\] = .* cannot be stored"),
    ({"a/b": 1}, r"attrs key 'a/b'"),
])
def test_invalid_attrs(tmp_path, decompose, attrs, expected):
    with pytest.raises(CheckpointError, match=expected):
        write_checkpoint(tmp_path / "ck.h5", decompose(), {"y": np.zeros(SHAPE)}, attrs)
    assert os.listdir(tmp_path) == []


def summary(start, extent, specs, shape=(7,)):
    return (shape, start, extent, specs, None)


def test_mismatched_trailing_shapes_and_dtypes_between_ranks():
    # What the root sees after gathering from three ranks of a 7-site lattice.
    good = [("y", (2,), "<f8"), ("n", (), "<i8")]
    wide = [("n", (), "<i8"), ("y", (3,), "<f8")]
    summaries = [summary((0,), (3,), good), summary((3,), (2,), wide),
                 summary((5,), (2,), good)]
    with pytest.raises(CheckpointError, match=r"array 'y' must have the same trailing shape "
                       r"and dtype on every rank, got trailing shape \(2,\) dtype float64 on "
                       r"ranks 0, 2 and trailing shape \(3,\) dtype float64 on rank 1"):
        _check_summaries(summaries)
    summaries[1] = summary((3,), (2,), [("y", (2,), "<f4"), ("n", (), "<i8")])
    with pytest.raises(CheckpointError, match=r"array 'y' .* dtype float32 on rank 1"):
        _check_summaries(summaries)
    summaries[1] = summary((3,), (2,), good[:1])
    with pytest.raises(CheckpointError, match=r"rank 0 has \['n', 'y'\], rank 1 has \['y'\]"):
        _check_summaries(summaries)
    summaries[1] = summary((3,), (1,), good)
    with pytest.raises(CheckpointError, match=r"do not tile the lattice \(7,\)"):
        _check_summaries(summaries)
    summaries[1] = summary((3,), (2,), good[::-1])
    assert _check_summaries(summaries) == [("y", (2,), np.dtype("<f8")),
                                           ("n", (), np.dtype("<i8"))]


def test_reading_what_is_not_a_checkpoint(tmp_path):
    missing = tmp_path / "missing.h5"
    with pytest.raises(CheckpointError, match=f"{missing}: no such checkpoint file"):
        read_checkpoint_attrs(missing)
    with pytest.raises(CheckpointError, match=f"{tmp_path}: is a folder"):
        read_checkpoint(tmp_path)
    text = tmp_path / "text.h5"
    text.write_text("not hdf5")
    with pytest.raises(CheckpointError, match=f"{text}: not an HDF5 file"):
        read_checkpoint_attrs(text)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.attrs["format"] = "meshfield-result"
    with pytest.raises(CheckpointError, match=f"{other}: not a meshfield checkpoint .*"
                                              f"'meshfield-result'"):
        read_checkpoint(other)


def test_version_from_the_future(tmp_path, decompose):
    path = tmp_path / "ck.h5"
    write_known(path, decompose())
    with h5py.File(path, "r+") as f:
        f.attrs["version"] = VERSION + 1
    with pytest.raises(CheckpointError, match=f"{path}: checkpoint version {VERSION + 1} is "
                                              f"newer than this meshfield reads"):
        read_checkpoint_attrs(path)
    with pytest.raises(CheckpointError, match="newer"):
        read_checkpoint(path)


def test_global_shape_mismatch_on_read(tmp_path, decompose):
    path = tmp_path / "ck.h5"
    write_known(path, decompose())
    with pytest.raises(CheckpointError, match=rf"{path}: the checkpoint holds a lattice of "
                       rf"shape \(7, 5\), this run's lattice has shape \(5, 7\)"):
        read_checkpoint(path, decompose((5, 7)))



def test_read_into_given_arrays(tmp_path, decompose):
    """``into``: a restart reads the state into the model's own arrays, so that it
    holds the state once, not twice. An array of the block's shape that is
    C-contiguous and writeable receives the values (converted to its dtype) and is
    returned itself; any other (wrong shape, not contiguous, another kind) is left
    alone and the values come in a new array."""
    decomposition = decompose()
    _, arrays = write_known(tmp_path / "ck.h5", decomposition)
    into = {"y": np.full((*SHAPE, 3), -1.0),
            "meso/m": np.zeros((*SHAPE, 2, 4), np.int32),  # integers into narrower integers
            "meso/flag": np.zeros((*SHAPE, 1), bool),       # wrong shape
            "count": np.zeros((SHAPE[1], SHAPE[0]), np.int32).T}  # not C-contiguous
    found, _ = read_checkpoint(tmp_path / "ck.h5", decomposition, into=into)
    assert found["y"] is into["y"] and found["meso/m"] is into["meso/m"]
    assert found["meso/flag"] is not into["meso/flag"] and found["count"] is not into["count"]
    assert not into["meso/flag"].any() and not into["count"].any()
    for name, value in arrays.items():
        np.testing.assert_array_equal(found[name], value, err_msg=name)
    # a float array does not take integers (nor the other way round)
    found, _ = read_checkpoint(tmp_path / "ck.h5", decomposition, into={"count": np.zeros(SHAPE)})
    assert found["count"].dtype == np.int32

def test_damaged_checkpoint(tmp_path, decompose):
    path = tmp_path / "ck.h5"
    write_known(path, decompose())
    with h5py.File(path, "r+") as f:
        del f["meso/m"]
    with pytest.raises(CheckpointError, match=f"{path}: damaged checkpoint, the dataset "
                                              f"'meso/m' is missing"):
        read_checkpoint(path)


def test_datasets_are_chunked_with_checksums(tmp_path, decompose):
    """Every dataset with values has HDF5's fletcher32 filter (checkpoints were
    contiguous and unchecked: a changed byte was read as a valid value); an empty
    one stores no bytes and stays contiguous."""
    decomposition = decompose()
    arrays = {**site_values(SHAPE), "none": np.zeros((*SHAPE, 0))}
    write_checkpoint(tmp_path / "ck.h5", decomposition, block_of(arrays, decomposition), ATTRS)
    with h5py.File(tmp_path / "ck.h5", "r") as f:
        for name, value in arrays.items():
            if value.size:
                assert f[name].fletcher32 and f[name].chunks == value.shape, name
            else:
                assert f[name].chunks is None and not f[name].fletcher32
    assert_arrays_equal(read_checkpoint(tmp_path / "ck.h5")[0], arrays)


@pytest.mark.parametrize("shape, block, itemsize, expected", [
    ((16, 16, 208), (16, 16), 8, (16, 16, 208)),    # default meso E/u on 1 rank: 0.4 MiB, one chunk
    ((64, 64, 208), (64, 64), 8, (16, 32, 208)),    # 6.5 MiB: the longest lattice axis halved
    ((64, 64, 208), (16, 16), 8, (16, 16, 208)),    # 16 ranks: one chunk per block
    ((64, 64, 208), (21, 32), 8, (21, 16, 208)),    # 3 x 2 ranks (22 + 21 + 21 rows)
    ((32, 32, 2772), (32, 32), 8, (4, 8, 2772)),    # bench_meso E/u: 22 KiB per site
    ((7, 5), (7, 5), 4, (7, 5)),
    ((1000,), (1000,), 8, (1000,)),
    ((3, 300_000), (3,), 8, (1, 75_000)),          # one site beyond 1 MiB: the trailing axis split too
    ((16, 16, 0), (16, 16), 8, None),               # no elements, no chunks
])
def test_chunks_hold_whole_sites_up_to_1_mib_within_a_block(shape, block, itemsize, expected):
    chunk = _chunks(shape, block, itemsize)
    assert chunk == expected
    if chunk is not None:
        assert np.prod(chunk) * itemsize <= CHUNK_BYTES


@pytest.mark.parametrize("name", ["y", "meso/m", "meso/flag", "count"])
def test_a_changed_byte_fails_the_checksum(tmp_path, decompose, name):
    """Bytes overwritten after writing were read as values (0x7f bytes: 1.4e306,
    finite and positive, so no value check saw them); now the read names the
    file and the dataset. The attributes are still readable."""
    decomposition = decompose()
    path = tmp_path / "ck.h5"
    _, arrays = write_known(path, decomposition)
    damage(path, name, site=(3, 2))
    said = rf"^{path}: damaged checkpoint, the dataset '{name}' fails its checksum \(its bytes changed"
    with pytest.raises(CheckpointError, match=said):
        read_checkpoint(path)
    with pytest.raises(CheckpointError, match=said):
        read_checkpoint(path, decomposition)
    assert read_checkpoint_attrs(path)["step"] == ATTRS["step"]


def test_a_damaged_object_header_is_refused_by_name(tmp_path, decompose):
    """HDF5's own checksums cover its metadata (the 1.10 format): a dataset whose
    object header has a changed byte was reported as missing."""
    path = tmp_path / "ck.h5"
    write_known(path, decompose())
    with h5py.File(path, "r") as f:
        header = h5py.h5o.get_info(f["meso/m"].id).addr
    with open(path, "r+b") as file:
        file.seek(header + 8)
        byte = file.read(1)
        file.seek(header + 8)
        file.write(bytes([byte[0] ^ 0xff]))
    with pytest.raises(CheckpointError, match=rf"^{path}: damaged checkpoint, the dataset 'meso/m' "
                                              rf"cannot be read \(.*checksum"):
        read_checkpoint(path)


def test_a_checkpoint_without_checksums_is_read(tmp_path, decompose):
    """Checkpoints written before the checksums (contiguous datasets) are read
    as before."""
    decomposition = decompose()
    path = tmp_path / "ck.h5"
    _, arrays = write_known(path, decomposition)
    without_checksums(path)
    assert_arrays_equal(read_checkpoint(path)[0], arrays)
    assert_arrays_equal(read_checkpoint(path, decomposition)[0], arrays)
