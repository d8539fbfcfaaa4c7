"""Recorder and result reader on one rank (meshfield/io, docs/results.md).

The MPI twin, tests/test_recorder_mpi.py, reuses ``known_records`` and
``record_run`` from here.
"""

import os
import re
import shutil
from unittest import mock

import h5py

import numpy as np
import pytest

import meshfield
from meshfield.io import Recorder, RecorderError, ResultError, open_result
from meshfield.io.result import WHOLE_READ_ENV, CheckedRecords
from meshfield.parallel import Decomposition

TYPES = ["E", "I"]
CONFIG = {"run": {"level": "meso", "dt": 0.5, "seed": 3},
          "lattice": {"shape": [5, 6], "dx": 0.1},
          "populations": {"E": {"N": 400, "tau_theta": [100.0]}, "I": {"N": 100}}}
META = {"level": "meso", "seed": 3, "dt": 0.5}


class OneRank:
    """Stand-in for meshfield.parallel.Decomposition on a single rank."""

    rank = 0
    size = 1
    is_root = True
    comm = None

    def __init__(self, global_shape):
        self.global_shape = tuple(global_shape)
        self.dims = (1,) * len(global_shape)
        self.local_start = (0,) * len(global_shape)
        self.local_shape = self.global_shape

    def bcast(self, obj, root=0):
        return obj

    root_decides = Decomposition.root_decides  # needs only rank and bcast

    def barrier(self):
        pass

    def allreduce_sum(self, x):
        return x


def known_records(n_records, n_types, global_shape, offset=0.0):
    """A known record array, shape (n_records, n_types, *global_shape).

    Value 10000 r + 1000 t + (flat global site index) + offset: distinct per
    entry and, below 2**24, exact in float32, so round trips compare exactly.
    """
    r, t, site = np.meshgrid(np.arange(n_records), np.arange(n_types),
                             np.arange(np.prod(global_shape)), indexing="ij")
    values = 10000.0 * r + 1000.0 * t + site + offset
    return values.reshape((n_records, n_types, *global_shape))


def record_run(path, decomposition, n_records, offset=0.0, **kwargs):
    """Record ``known_records`` (A) and its negative minus 0.5 (Ā) on every rank.

    Collective. Writes in uneven pieces of 1, 3 and 2 records so that pieces
    straddle buffer boundaries. Returns the global A array.
    """
    A = known_records(n_records, len(TYPES), decomposition.global_shape, offset)
    block = tuple(slice(s, s + n) for s, n in
                  zip(decomposition.local_start, decomposition.local_shape))
    A_local = A[(slice(None), slice(None), *block)]
    recorder = Recorder(path, decomposition, TYPES, n_records, record_interval=0.5,
                        t0=0.5, config=CONFIG, meta=META, **kwargs)
    first = 0
    pieces = [1, 3, 2]
    while first < n_records:
        k = min(pieces[first % 3], n_records - first)
        recorder.write(first, A_local[first:first + k], -A_local[first:first + k] - 0.5)
        first += k
    recorder.close(wall_time=1.25, extra_meta={"steps": 2 * n_records})
    return A


def check_result(path, A, ranks=1):
    """Assert that ``path`` reads back as written by ``record_run``."""
    with open_result(path) as result:
        assert result.A.dtype == np.float32
        np.testing.assert_array_equal(result.A, A)
        np.testing.assert_array_equal(result.Abar, -A - 0.5)
        np.testing.assert_array_equal(result.dataset("A")[2], A[2])
        np.testing.assert_array_equal(result.times, 0.5 + 0.5 * np.arange(len(A)))
        assert result.types == TYPES
        assert result.config == CONFIG
        assert result.shape == A.shape[2:]
        assert (result.dt, result.record_interval) == (0.5, 0.5)
        assert result.path == os.path.abspath(path)
        meta = result.meta
        assert {k: meta[k] for k in META} == META
        assert meta["ranks"] == ranks
        assert meta["n_records"] == len(A)
        assert meta["wall_time"] == 1.25
        assert meta["steps"] == 2 * len(A)
        assert meta["global_shape"] == list(A.shape[2:])
        assert meta["version"] == meshfield.__version__
        for key in ("dims", "t0", "created", "hostname", "command"):
            assert key in meta
    with open_result(path) as result, in_slices():
        for name, want in (("A", A), ("Abar", -A - 0.5)):
            view = result.records(name)
            assert isinstance(view, CheckedRecords) and name not in vars(result)
            assert (view.shape, view.dtype, len(view)) == (A.shape, np.float32, len(A))
            np.testing.assert_array_equal(view[1:3], want[1:3])
            np.testing.assert_array_equal(view[:, 1, -1], want[:, 1, -1])  # across the blocks of a row
            np.testing.assert_array_equal(np.asarray(view), want)


def in_slices():
    """Within: every result's records are read in slices (``Result.records``)."""
    return mock.patch.dict(os.environ, {WHOLE_READ_ENV: "0"})


def leftovers(folder):
    return sorted(os.listdir(folder))


@pytest.mark.parametrize("shape", [(7,), (5, 6)])
@pytest.mark.parametrize("flush_every", [None, 4])
def test_round_trip(tmp_path, shape, flush_every):
    path = tmp_path / "out.h5"
    A = record_run(path, OneRank(shape), 11, flush_every=flush_every)
    check_result(path, A)
    assert leftovers(tmp_path) == ["out.h5", "out.h5.blocks"]


def test_plain_h5py_reads_global_arrays(tmp_path):
    path = tmp_path / "out.h5"
    A = record_run(path, OneRank((5, 6)), 4)
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["A"][...], A)
        assert f["meta"].attrs["dt"] == 0.5
        assert list(f.attrs["types"]) == TYPES


def test_refuses_to_overwrite_unless_asked(tmp_path):
    path = tmp_path / "out.h5"
    A = record_run(path, OneRank((7,)), 3)
    with pytest.raises(RecorderError, match=f"{path}.*exists.*overwrite=True"):
        Recorder(path, OneRank((7,)), TYPES, 3, 0.5, 0.5, CONFIG, META)
    check_result(path, A)
    A_new = record_run(path, OneRank((7,)), 5, offset=7.0, overwrite=True)
    check_result(path, A_new)
    assert leftovers(tmp_path) == ["out.h5", "out.h5.blocks"]


@pytest.mark.parametrize("what", ["text", "hdf5", "blocks file"])
def test_overwrite_replaces_only_a_result(tmp_path, what):
    """--overwrite replaced whatever was at the path: a user's HDF5 file, a text
    file (the run's own TOML, named conf.h5), or a regular file named like the
    block folder. They are refused, and left as they were."""
    path = tmp_path / "out.h5"
    if what == "text":
        path.write_text("[run]\nt_end = 5\n")
        match = "out.h5: the file exists and is not a meshfield result"
    elif what == "hdf5":
        with h5py.File(path, "w") as f:
            f["data"] = np.arange(3)
        match = "out.h5: the file exists and is not a meshfield result"
    else:
        (tmp_path / "out.h5.blocks").write_text("precious")
        match = r"out.h5.blocks exists and is not a result's block folder"
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(RecorderError, match=match + r".*\(--overwrite replaces only a result\)"):
        Recorder(path, OneRank((7,)), TYPES, 3, 0.5, 0.5, CONFIG, META, overwrite=True)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_refuses_orphan_block_folder(tmp_path):
    os.mkdir(tmp_path / "out.h5.blocks")
    with pytest.raises(RecorderError, match="out.h5.blocks exists"):
        Recorder(tmp_path / "out.h5", OneRank((7,)), TYPES, 3, 0.5, 0.5, CONFIG, META)


def test_overwrite_keeps_a_block_folder_with_foreign_files(tmp_path):
    """--overwrite replaces a result's block folder as a whole, so a folder of that
    name holding anything but rank block files is refused, and left as it was."""
    folder = tmp_path / "out.h5.blocks"
    os.mkdir(folder)
    (folder / "rank00000.h5").write_bytes(b"")
    (folder / "keep.txt").write_text("mine")
    with pytest.raises(RecorderError, match=r"out\.h5\.blocks holds files that are not result blocks \(keep\.txt\)"):
        Recorder(tmp_path / "out.h5", OneRank((7,)), TYPES, 3, 0.5, 0.5, CONFIG, META, overwrite=True)
    assert sorted(p.name for p in folder.iterdir()) == ["keep.txt", "rank00000.h5"]
    assert leftovers(tmp_path) == ["out.h5.blocks"]


def test_refuses_a_folder_as_output(tmp_path):
    with pytest.raises(RecorderError, match="is a folder"):
        Recorder(tmp_path, OneRank((7,)), TYPES, 3, 0.5, 0.5, CONFIG, META, overwrite=True)


def test_missing_parent_folder(tmp_path):
    missing = tmp_path / "no" / "such"
    with pytest.raises(RecorderError, match=f"folder {missing} does not exist"):
        Recorder(missing / "out.h5", OneRank((7,)), TYPES, 3, 0.5, 0.5, CONFIG, META)
    assert leftovers(tmp_path) == []


def test_abort_leaves_nothing(tmp_path):
    path = tmp_path / "out.h5"
    recorder = Recorder(path, OneRank((7,)), TYPES, 5, 0.5, 0.5, CONFIG, META,
                        flush_every=2)
    recorder.write(0, np.ones((3, 2, 7)), np.ones((3, 2, 7)))
    assert len(leftovers(tmp_path)) == 1
    recorder.abort()
    recorder.abort()
    assert leftovers(tmp_path) == []
    with pytest.raises(RecorderError, match="aborted"):
        recorder.write(3, np.ones((1, 2, 7)), np.ones((1, 2, 7)))


def test_error_in_with_block_keeps_old_result(tmp_path):
    path = tmp_path / "out.h5"
    A = record_run(path, OneRank((7,)), 3)
    with pytest.raises(ZeroDivisionError):
        with Recorder(path, OneRank((7,)), TYPES, 3, 0.5, 0.5, CONFIG, META,
                      overwrite=True) as recorder:
            recorder.write(0, np.ones((1, 2, 7)), np.ones((1, 2, 7)))
            1 / 0
    check_result(path, A)
    assert leftovers(tmp_path) == ["out.h5", "out.h5.blocks"]


def test_close_with_missing_records_discards_output(tmp_path):
    recorder = Recorder(tmp_path / "out.h5", OneRank((7,)), TYPES, 5, 0.5, 0.5, CONFIG, META)
    recorder.write(0, np.ones((4, 2, 7)), np.ones((4, 2, 7)))
    with pytest.raises(RecorderError, match="wrote 4 of n_records = 5"):
        recorder.close(wall_time=1.0)
    assert leftovers(tmp_path) == []


def test_write_checks_order_and_shapes(tmp_path):
    with Recorder(tmp_path / "out.h5", OneRank((5, 6)), TYPES, 3, 0.5, 0.5, CONFIG,
                  META) as recorder:
        ones = np.ones((2, 2, 5, 6))
        with pytest.raises(RecorderError, match="expected first_record = 0, got 1"):
            recorder.write(1, ones, ones)
        with pytest.raises(RecorderError, match=r"A_block has shape \(2, 2, 6, 5\)"):
            recorder.write(0, np.ones((2, 2, 6, 5)), ones)
        with pytest.raises(RecorderError, match="Abar_block holds 1"):
            recorder.write(0, ones, ones[:1])
        recorder.write(0, ones, ones)
        with pytest.raises(RecorderError, match="exceed n_records = 3"):
            recorder.write(2, ones, ones)


@pytest.mark.parametrize("kwargs, match", [
    ({"meta": {"level": "meso", "seed": 3}}, "meta lacks the key 'dt'"),
    ({"meta": {**META, "ranks": 2}}, r"meta\['ranks'\] is set by the recorder"),
    ({"meta": {**META, "note": None}}, r"meta\['note'\] = None cannot be stored"),
    ({"config": {"run": {"t_end": object()}}}, "config cannot be stored as JSON"),
    ({"types": ["E", "E"]}, "types = \\['E', 'E'\\]"),
    ({"n_records": 0}, "n_records = 0"),
    ({"record_interval": -1.0}, "record_interval = -1.0"),
    ({"flush_every": 0}, "flush_every = 0"),
])
def test_invalid_arguments(tmp_path, kwargs, match):
    arguments = {"types": TYPES, "n_records": 3, "record_interval": 0.5, "t0": 0.0,
                 "config": CONFIG, "meta": META, **kwargs}
    with pytest.raises(RecorderError, match=match):
        Recorder(tmp_path / "out.h5", OneRank((7,)), **arguments)
    assert leftovers(tmp_path) == []


def test_invalid_extra_meta_keeps_recorder_open(tmp_path):
    recorder = Recorder(tmp_path / "out.h5", OneRank((7,)), TYPES, 1, 0.5, 0.5, CONFIG, META)
    recorder.write(0, np.ones((1, 2, 7)), np.ones((1, 2, 7)))
    with pytest.raises(RecorderError, match=r"extra_meta\['x'\] = \{\}"):
        recorder.close(wall_time=1.0, extra_meta={"x": {}})
    recorder.close(wall_time=1.0, extra_meta={"x": [1, 2]})
    with open_result(tmp_path / "out.h5") as result:
        assert result.meta["x"] == [1, 2]


def test_extra_datasets(tmp_path):
    path = tmp_path / "out.h5"
    recorder = Recorder(path, OneRank((7,)), TYPES, 1, 0.5, 0.5, CONFIG, META)
    recorder.write(0, np.ones((1, 2, 7)), np.ones((1, 2, 7)))
    spikes = np.array([(0.5, 3), (1.5, 9)], dtype=[("t", "f8"), ("neuron", "i8")])
    recorder.write_extra("spikes", spikes, attrs={"units": "ms"})
    with pytest.raises(RecorderError, match="already written"):
        recorder.write_extra("spikes", spikes)
    with pytest.raises(RecorderError, match="without '/'"):
        recorder.write_extra("a/b", spikes)
    recorder.close(wall_time=1.0)
    with open_result(path) as result:
        assert result.extra_names == ["spikes"]
        extra = result.extra("spikes")
        assert list(extra) == [0]
        np.testing.assert_array_equal(extra[0], spikes)
        with pytest.raises(ResultError, match="no extra dataset 'rates'"):
            result.extra("rates")



def test_appended_extra_datasets_grow_in_the_block_file(tmp_path):
    """``append_extra`` writes rows as they come (the micro level's spike trains
    and voltages, which grow with the run, are not held in memory to the end)."""
    path = tmp_path / "out.h5"
    recorder = Recorder(path, OneRank((7,)), TYPES, 1, 0.5, 0.5, CONFIG, META)
    recorder.write(0, np.ones((1, 2, 7)), np.ones((1, 2, 7)))
    recorder.append_extra("spikes", np.zeros((0, 4), np.int64), attrs={"columns": ["a", "b", "c", "d"]})
    rows = np.arange(40, dtype=np.int64).reshape(10, 4)
    recorder.append_extra("spikes", rows[:3])
    recorder.append_extra("spikes", rows[3:3])  # no rows: nothing changes
    recorder.append_extra("spikes", rows[3:], attrs={"ignored": 1})  # attributes of the first call stay
    recorder.append_extra("never", np.zeros((0, 2, 3)))  # created, stays empty
    with pytest.raises(RecorderError, match=r"rows of shape \(3,\) and dtype int64 cannot extend rows of "
                                            r"shape \(4,\) and dtype int64"):
        recorder.append_extra("spikes", np.zeros((1, 3), np.int64))
    with pytest.raises(RecorderError, match="dtype float64 cannot extend"):
        recorder.append_extra("spikes", np.zeros((1, 4)))
    with pytest.raises(RecorderError, match="no empty trailing axis, got shape \\(\\)"):
        recorder.append_extra("scalar", np.float64(1.0))
    with pytest.raises(RecorderError, match="already written"):
        recorder.write_extra("spikes", rows)
    recorder.write_extra("fixed", rows)
    with pytest.raises(RecorderError, match="already written"):
        recorder.append_extra("fixed", rows)
    recorder.close(wall_time=1.0)
    with h5py.File(tmp_path / "out.h5.blocks" / "rank00000.h5", "r") as f:
        spikes = f["extra/spikes"]
        assert spikes.maxshape == (None, 4) and spikes.fletcher32 and spikes.chunks[1:] == (4,)
        assert [str(c) for c in spikes.attrs["columns"]] == ["a", "b", "c", "d"] and list(spikes.attrs) == ["columns"]
    with open_result(path) as result:
        np.testing.assert_array_equal(result.extra("spikes")[0], rows)
        assert result.extra("never")[0].shape == (0, 2, 3)

def test_moved_pair_reads_from_other_working_directory(tmp_path, monkeypatch):
    written = tmp_path / "written"
    moved = tmp_path / "moved"
    decoy = tmp_path / "decoy"
    for folder in (written, moved, decoy):
        folder.mkdir()
    A = record_run(written / "out.h5", OneRank((5, 6)), 4)
    # A different result of the same name in the working directory must not be
    # picked up by the relative source paths.
    record_run(decoy / "out.h5", OneRank((5, 6)), 4, offset=1.0)
    for name in ("out.h5", "out.h5.blocks"):
        shutil.move(written / name, moved / name)
    monkeypatch.chdir(decoy)
    check_result(moved / "out.h5", A)
    check_result(os.path.join("..", "moved", "out.h5"), A)
    os.rename(moved / "out.h5", moved / "renamed.h5")
    check_result(moved / "renamed.h5", A)


def test_missing_block_folder_is_reported(tmp_path):
    path = tmp_path / "out.h5"
    record_run(path, OneRank((7,)), 2)
    shutil.rmtree(tmp_path / "out.h5.blocks")
    with pytest.raises(ResultError, match="block files missing.*out.h5.blocks/rank00000.h5"):
        open_result(path)


@pytest.mark.parametrize("path", [None, 5, ""])
def test_a_path_that_is_no_file_name_is_refused_by_name(path):
    """None and 5 gave bare TypeErrors, "" the message that the working folder is a folder."""
    with pytest.raises(ResultError, match=rf"path = {path!r}: expected the name of a result file"):
        open_result(path)


def test_a_result_opens_by_a_bytes_path(tmp_path):
    path = tmp_path / "out.h5"
    A = record_run(path, OneRank((7,)), 2)
    with open_result(os.fsencode(path)) as result:
        np.testing.assert_array_equal(result.A, A)


def test_not_a_result(tmp_path):
    with pytest.raises(ResultError, match="no such result file"):
        open_result(tmp_path / "absent.h5")
    with pytest.raises(ResultError, match="a folder, not a result file$"):
        open_result(tmp_path)
    path = tmp_path / "out.h5"
    record_run(path, OneRank((7,)), 2)
    with pytest.raises(ResultError, match=r"out.h5.blocks: a folder, not a result file; it is the block folder "
                                          r"of .*out.h5: open that file"):
        open_result(tmp_path / "out.h5.blocks")
    text = tmp_path / "notes.h5"
    text.write_text("hello")
    with pytest.raises(ResultError, match="not an HDF5 file"):
        open_result(text)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["A"] = np.zeros(3)
    with pytest.raises(ResultError, match="not a meshfield result"):
        open_result(other)


def test_large_config_round_trips(tmp_path):
    # Beyond the 64 KiB that the oldest HDF5 attribute storage allows.
    config = {**CONFIG, "stimuli": {"values": [0.1 * i for i in range(20000)]}}
    recorder = Recorder(tmp_path / "out.h5", OneRank((7,)), TYPES, 1, 0.5, 0.5, config, META)
    recorder.write(0, np.ones((1, 2, 7)), np.ones((1, 2, 7)))
    recorder.close(wall_time=1.0)
    with open_result(tmp_path / "out.h5") as result:
        assert result.config == config


FULL_DISK = ("Can't decrement id ref count (file write failed: time = now, filename = 'x', file descriptor = 18, "
             "errno = 28, error message = 'No space left on device', buf = 0x0, total write size = 9)")

def run_on_a_full_disk(tmp_path, method, args, timeout):
    """``meshfield run ARGS -o tmp_path/r.h5 -q`` in a fresh interpreter whose h5py
    ``File.<method>`` (close or flush) fails with HDF5's no-space message on the
    block files; returns the exit status and the lines on stderr."""
    import subprocess
    import sys

    script = f"""
import sys, h5py
import meshfield.cli
original = h5py.File.{method}
def failing(self):
    if 'blocks.tmp' in self.filename:
        raise RuntimeError({FULL_DISK!r})
    return original(self)
h5py.File.{method} = failing
sys.exit(meshfield.cli.main(['run', *{list(args)!r}, '-o', sys.argv[1], '-q']))
"""
    p = subprocess.run([sys.executable, "-c", script, str(tmp_path / "r.h5")], capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stderr.strip().splitlines()


def test_a_full_disk_stops_the_run_at_the_first_chunk_of_records(tmp_path):
    """The packaged default writes 2000 records in chunks of 256: a disk that is
    full from the start stops the run at the first chunk (t <= 256 ms), not after
    computing to t_end."""
    code, lines = run_on_a_full_disk(tmp_path, "flush", ["--set", "run.t_end=2000"], timeout=300)
    assert code == 2, lines
    assert len(lines) == 1, lines
    found = re.search(r"cannot write the block file \S+rank00000\.h5 at t = (\d+) ms: "
                      r"No space left on device; the output is discarded$", lines[0])
    assert found, lines[0]
    assert 200 <= int(found.group(1)) <= 256  # the first chunk, not t_end = 2000 ms
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_at_the_end_is_one_line_and_exit_2_with_nothing_left(tmp_path):
    """HDF5 reports a full disk (or quota) when the block file is closed; it used to
    end in h5py tracebacks and a segfault (exit 139) when HDF5 retried at exit."""
    code, lines = run_on_a_full_disk(tmp_path, "close", ["bistable_pair", "--set", "run.t_end=20"], timeout=120)
    assert code == 2, lines
    assert len(lines) == 1 and "cannot write the block file" in lines[0]
    assert lines[0].endswith("No space left on device; the output is discarded")
    assert list(tmp_path.iterdir()) == []


def test_a_later_run_to_the_same_name_is_not_read_under_the_old_metadata(tmp_path):
    """HDF5 opens the block files by name when A is read: an open result whose
    block folder a later --overwrite run replaced must refuse to read, not
    return the new run's numbers under its own times and metadata."""
    path = tmp_path / "out.h5"
    A = record_run(path, OneRank((5, 6)), 4)
    read_before = open_result(path)
    np.testing.assert_array_equal(read_before.A, A)
    unread = open_result(path)
    record_run(path, OneRank((5, 6)), 4, offset=1.0, overwrite=True)
    with pytest.raises(ResultError, match="rank00000.h5 belongs to another run .*--overwrite"):
        unread.A
    with pytest.raises(ResultError, match="belongs to another run"):
        unread.Abar
    np.testing.assert_array_equal(read_before.A, A)     # read before the replacement: still its own
    for result in (read_before, unread):
        result.close()
    check_result(path, A + 1.0)


def test_a_renamed_master_refuses_the_blocks_of_a_later_run(tmp_path):
    """Renaming only the master keeps it pointing at OUT.h5.blocks; a later run
    written to OUT.h5 with --overwrite replaces those blocks."""
    A = record_run(tmp_path / "a.h5", OneRank((7,)), 3)
    os.rename(tmp_path / "a.h5", tmp_path / "keep.h5")
    check_result(tmp_path / "keep.h5", A)
    record_run(tmp_path / "a.h5", OneRank((7,)), 3, offset=5.0, overwrite=True)
    with pytest.raises(ResultError, match="keep.h5: block file a.h5.blocks/rank00000.h5 belongs to another run"):
        open_result(tmp_path / "keep.h5")
    check_result(tmp_path / "a.h5", A + 5.0)


def test_a_block_file_under_another_ranks_name_is_refused(tmp_path):
    path = tmp_path / "out.h5"
    record_run(path, OneRank((7,)), 2)
    with h5py.File(tmp_path / "out.h5.blocks" / "rank00000.h5", "r+") as block:
        block.attrs["rank"] = 1                    # as if rank 1's file were copied over rank 0's
    with pytest.raises(ResultError, match="rank00000.h5: it holds rank 1's block, which belongs in rank00001.h5"):
        open_result(path)


def test_blocks_lost_after_opening_are_reported_on_read_not_read_as_nan(tmp_path):
    """With check_blocks=False (meshfield.run on ranks other than the root) the
    checks happen at the first read, where HDF5 would fill a missing block
    with NaN."""
    path = tmp_path / "out.h5"
    record_run(path, OneRank((7,)), 2)
    for check_blocks in (True, False):
        result = open_result(path, check_blocks=check_blocks)
        shutil.move(tmp_path / "out.h5.blocks", tmp_path / "elsewhere")
        with pytest.raises(ResultError, match="block files missing beside it"):
            result.A
        shutil.move(tmp_path / "elsewhere", tmp_path / "out.h5.blocks")
        result.close()
    shutil.rmtree(tmp_path / "out.h5.blocks")
    open_result(path, check_blocks=False).close()
    with pytest.raises(ResultError, match="block files missing beside it"):
        open_result(path)


@pytest.mark.parametrize("name", ["run_50%.h5", "mu22%.h5", "q%b.h5", "a%%b.h5", "%s%d.h5"])
def test_percent_in_the_output_name(tmp_path, name):
    """HDF5 reads '%' in a virtual source's file name as a format character;
    the recorder escapes it, so the data is read back (not NaN, no error)."""
    A = record_run(tmp_path / name, OneRank((5, 6)), 3)
    check_result(tmp_path / name, A)
    with h5py.File(tmp_path / name, "r") as f:        # plain h5py too
        np.testing.assert_array_equal(f["A"][...], A)


def test_nothing_is_written_into_a_block_folder(tmp_path):
    """A result or a checkpoint inside a result's block folder (or over one of
    its block files) would corrupt that result, --overwrite or not."""
    from meshfield.io.checkpoint import CheckpointError, check_checkpoint_target
    A = record_run(tmp_path / "out.h5", OneRank((7,)), 3)
    blocks = tmp_path / "out.h5.blocks"
    for target in (blocks / "rank00000.h5", blocks / "new.h5"):
        with pytest.raises(RecorderError, match=f"lies in {blocks}, the block folder of another result"):
            record_run(target, OneRank((7,)), 3, overwrite=True)
        with pytest.raises(CheckpointError, match=f"lies in {blocks}, the block folder of a result"):
            check_checkpoint_target(target, overwrite=True)
    assert leftovers(blocks) == ["rank00000.h5"]
    check_result(tmp_path / "out.h5", A)
    # a folder of the user's whose name merely ends in .blocks is no block folder
    mine = tmp_path / "my.blocks"
    mine.mkdir()
    check_result(mine / "x.h5", record_run(mine / "x.h5", OneRank((7,)), 3))
    assert check_checkpoint_target(mine / "c.h5") == str(mine / "c.h5")


# ------------------------------------------------------ records read in slices


def test_records_reads_a_small_result_whole_and_a_large_one_in_slices(tmp_path):
    path = tmp_path / "out.h5"
    A = record_run(path, OneRank((5, 6)), 4)
    nbytes = A.size * 4
    for mib, sliced in ((str(nbytes / 2**20), False), (str(0.999 * nbytes / 2**20), True), ("", False)):
        with open_result(path) as result, mock.patch.dict(os.environ, {WHOLE_READ_ENV: mib}):
            records = result.records("A")
            assert isinstance(records, CheckedRecords) == sliced, mib
            if sliced:
                assert result.records("A") is records  # made once per result
            else:  # the array read whole, behind a view that cannot change it
                assert records.base is result.A and not records.flags.writeable
                with pytest.raises(ValueError, match="read-only"):
                    records[0] = 0.0
            np.testing.assert_array_equal(records[:], A)
    with open_result(path) as result, in_slices():
        whole = result.A
        assert result.records("A").base is whole  # once read whole, the array serves
        assert whole.flags.writeable  # the attribute itself stays the user's to change


@pytest.mark.parametrize("value", ["-1", "lots", "nan", "inf"])
def test_a_bad_whole_read_limit_names_the_variable(tmp_path, value):
    path = tmp_path / "out.h5"
    record_run(path, OneRank((7,)), 2)
    with open_result(path) as result, mock.patch.dict(os.environ, {WHOLE_READ_ENV: value}):
        with pytest.raises(ResultError, match=rf"{WHOLE_READ_ENV} = '{value}': must be a size in MiB, "
                                              r"a number >= 0"):
            result.records("A")
        with pytest.raises(ResultError, match="no record 'times'.*allowed are A, Abar"):
            result.records("times")


def test_records_in_slices_are_checked_like_A(tmp_path):
    """A view is made only from this run's block files, and refuses to read on
    once they were replaced (a later --overwrite run) or rewritten in place."""
    path = tmp_path / "out.h5"
    A = record_run(path, OneRank((5, 6)), 4)
    with in_slices():
        made_before, unread = open_result(path), open_result(path)
        view = made_before.records("A")
        np.testing.assert_array_equal(view[2:], A[2:])
        record_run(path, OneRank((5, 6)), 4, offset=1.0, overwrite=True)
        with pytest.raises(ResultError, match=rf"{path}: block file out.h5.blocks/rank00000.h5 changed while "
                                              r"the result was being read .*--overwrite\); open the result again"):
            view[2:]
        with pytest.raises(ResultError, match="rank00000.h5 belongs to another run .*--overwrite"):
            unread.records("Abar")
        made_before.close()
        for read in (lambda: view[0], lambda: made_before.records("A"), lambda: np.asarray(view)):
            with pytest.raises(ResultError, match="the result is closed"):
                read()
        unread.close()
    with open_result(path) as result, in_slices():
        with pytest.raises(ValueError, match="reading it makes a copy"):
            np.asarray(result.records("A"), copy=False)


def test_a_block_rewritten_in_place_is_not_read_as_zeros(tmp_path):
    """HDF5 reads past the end of a block file cut short under it as zeros."""
    path = tmp_path / "out.h5"
    record_run(path, OneRank((64, 64)), 600)  # chunks larger than HDF5's chunk cache
    block = tmp_path / "out.h5.blocks" / "rank00000.h5"
    with open_result(path) as result, in_slices():
        view = result.records("A")
        with open(block, "r+b") as f:  # the same file, cut short (as by cp over it)
            f.truncate(4000)
        with pytest.raises(ResultError, match="block file out.h5.blocks/rank00000.h5 changed while"):
            view[300:]


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc, where nothing can be created")
def test_an_unwritable_folder_is_named_with_the_result():
    """The message named only the internal temporary (out.h5.blocks.tmp-PID-...)."""
    with pytest.raises(RecorderError, match=r"^cannot write the result /proc/out\.h5: its temporary block "
                                            r"folder cannot be created in /proc \(.+\)$"):
        Recorder("/proc/out.h5", OneRank((7,)), TYPES, 3, 0.5, 0.5, CONFIG, META)
