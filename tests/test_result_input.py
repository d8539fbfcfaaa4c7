"""Bad results and options given to `meshfield plot` and `meshfield compare`.

Project rule for bad input (docs/cli.md, "Exit status and bad input"): one line
naming the file or option, the value and what is allowed; exit status 2; no
traceback; nothing written or overwritten.
"""

import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

import meshfield
from meshfield.analysis import CompareInputError, compare_results
from meshfield.config import load_config
from meshfield.io import ResultError, open_result

ONE_TYPE_TOML = """
[run]
level = "meso"
t_end = 300.0
dt = 0.5
seed = 1

[lattice]
shape = [3]
dx = 0.1
boundary = "periodic"

[populations.plain]
N = 500
mu = 24.0
tau_m = 20.0
t_ref = 4.0
u_reset = 0.0
u_th = 15.0
c = 10.0
delta_u = 2.5
tau_s = 3.0

[record]
interval = 1.0
"""

#: a comparison of 300 ms records that runs to the end (bands from 10 Hz)
SHORT_COMPARE = ["--discard", "0", "--segment-ms", "100"]


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "meshfield.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def one_error_line(p, prefix, words):
    """Exit status 2, no traceback, one stderr line starting with ``prefix`` that
    holds every one of ``words``; return the line."""
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(prefix), p.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def run_result(path, config="v3_field", sets=()):
    result = meshfield.run(load_config(config, ["run.t_end=300", *sets]), output=str(path))
    result.close()
    return path


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Two small two-type results (seeds 1 and 2) and a one-type result on 3 sites."""
    folder = tmp_path_factory.mktemp("results")
    (folder / "one.toml").write_text(ONE_TYPE_TOML)
    return {
        "a": run_result(folder / "a.h5"),
        "b": run_result(folder / "b.h5", sets=["run.seed=2"]),
        "one": run_result(folder / "one.h5", str(folder / "one.toml")),
    }


def copy_result(source, folder):
    """Copy a result (master and block folder) into ``folder``; return the new master."""
    target = folder / source.name
    shutil.copy2(source, target)
    shutil.copytree(f"{source}.blocks", f"{target}.blocks")
    return target


def fake_result(path, **attrs):
    """An HDF5 file with root attributes only (the format and a version)."""
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "meshfield-result"
        for key, value in attrs.items():
            f.attrs[key] = value
    return path


def plot_and_compare(target, reference, cwd):
    """`plot TARGET` (over an earlier figure) and `compare REFERENCE TARGET`
    (with a figure); return both processes after checking nothing was written."""
    old = cwd / "p.png"
    old.write_bytes(b"earlier figure")
    before = sorted(os.listdir(cwd))
    plot = cli("plot", str(target), "-o", "p.png", "--psd", "psd.png", cwd=cwd)
    compare = cli("compare", str(reference), str(target), "--figure", "c.png", cwd=cwd)
    assert compare.stdout == ""
    assert sorted(os.listdir(cwd)) == before and old.read_bytes() == b"earlier figure"
    return plot, compare


# ----------------------------------------------------------------- 1: datasets missing


def test_result_without_datasets_is_bad_input(tmp_path, results):
    fake = fake_result(tmp_path / "fake.h5", format_version=1)
    words = [str(fake), "missing dataset 'A'", "dataset 'times'", "group 'meta'", "attribute 'types'"]
    plot, compare = plot_and_compare(fake, results["a"], tmp_path)
    one_error_line(plot, "meshfield: error:", words)
    one_error_line(compare, "meshfield compare: unusable input:", words)


def test_inconsistent_shapes_are_reported_on_opening(tmp_path):
    path = fake_result(tmp_path / "shapes.h5", format_version=1, types=np.array(["E", "I"], dtype=h5py.string_dtype()),
                       config_json="{}")
    with h5py.File(path, "a") as f:
        f["A"] = np.zeros((4, 2, 3), dtype=np.float32)
        f["Abar"] = np.zeros((4, 3, 3), dtype=np.float32)
        f["times"] = np.arange(5.0)
        f.create_group("meta").attrs.update({"dt": 0.5, "record_interval": 1.0})
    with pytest.raises(ResultError) as error:
        open_result(path)
    message = str(error.value)
    assert str(path) in message
    assert "dataset 'Abar' has shape (4, 3, 3)" in message and "dataset 'times' has shape (5,)" in message
    with h5py.File(path, "a") as f:
        del f["Abar"], f["times"]
        f["Abar"] = np.zeros((4, 2, 3), dtype=np.float32)
        f["times"] = np.arange(4.0)
    with open_result(path) as result:  # now complete (plain datasets are read too)
        assert result.A.shape == (4, 2, 3) and result.types == ["E", "I"]


# ----------------------------------------------------------------- 2: format_version


@pytest.mark.parametrize("version, shown", [("one", "'one'"), (0, "0"), (1.5, "1.5")])
def test_malformed_format_version_names_file_attribute_and_value(tmp_path, results, version, shown):
    fake = fake_result(tmp_path / "fake.h5", format_version=version)
    words = [str(fake), "attribute 'format_version'", f"= {shown}", "whole number 1"]
    plot, compare = plot_and_compare(fake, results["a"], tmp_path)
    one_error_line(plot, "meshfield: error:", words)
    one_error_line(compare, "meshfield compare: unusable input:", words)


def test_missing_and_newer_format_version(tmp_path):
    with pytest.raises(ResultError, match="attribute 'format_version' is missing"):
        open_result(fake_result(tmp_path / "none.h5"))
    with pytest.raises(ResultError, match="version 2 is newer"):
        open_result(fake_result(tmp_path / "new.h5", format_version=2))


# ----------------------------------------------------------------- 3: damaged block files


@pytest.mark.parametrize("damage", ["truncated", "junk"])
def test_damaged_block_file_is_bad_input(tmp_path, results, damage):
    copy = copy_result(results["a"], tmp_path)
    block = tmp_path / "a.h5.blocks" / "rank00000.h5"
    original = block.read_bytes()
    block.write_bytes(original[:3000] if damage == "truncated" else bytes(range(256)) * 100)
    words = [str(copy), "block file a.h5.blocks/rank00000.h5", "not a readable HDF5 file"]
    plot, compare = plot_and_compare(copy, results["a"], tmp_path)
    one_error_line(plot, "meshfield: error:", words)
    one_error_line(compare, "meshfield compare: unusable input:", words)


def test_block_file_damaged_after_opening_is_reported_when_read(tmp_path, results):
    """Records are read on first access: a read error then names the result and the block file."""
    copy = copy_result(results["a"], tmp_path)
    block = tmp_path / "a.h5.blocks" / "rank00000.h5"
    with open_result(copy) as result:
        block.write_bytes(block.read_bytes()[:3000])
        for name in ("A", "Abar"):
            with pytest.raises(ResultError) as error:
                getattr(result, name)
            message = str(error.value)
            assert str(copy) in message and f"dataset {name!r}" in message
            assert "a.h5.blocks/rank00000.h5" in message and "\n" not in message


def test_block_file_without_its_dataset(tmp_path, results):
    copy = copy_result(results["a"], tmp_path)
    with h5py.File(tmp_path / "a.h5.blocks" / "rank00000.h5", "a") as f:
        del f["Abar"]
    with pytest.raises(ResultError, match="a.h5.blocks/rank00000.h5: it has no dataset 'Abar'"):
        open_result(copy)



def damage_chunk(path, dataset_name, chunk=0, offset=16):
    """Overwrite 4 bytes inside a chunk of a dataset, as a bad disk or a copy
    error would; return the values that chunk held."""
    with h5py.File(path, "r") as f:
        dataset = f[dataset_name]
        info = dataset.id.get_chunk_info(chunk)
        before = dataset[()]
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset + offset)
        fh.write(b"\x7f\x7f\x7f\x7f")
    return before


def test_records_and_times_carry_checksums(results):
    """The record datasets of every block file and the master's times have
    HDF5's fletcher32 filter (they had none: a changed byte was read as a value)."""
    with h5py.File(results["a"], "r") as f:
        assert f["times"].fletcher32
    with h5py.File(f"{results['a']}.blocks/rank00000.h5", "r") as f:
        assert f["A"].fletcher32 and f["Abar"].fletcher32


@pytest.mark.parametrize("name", ["A", "Abar"])
def test_a_changed_byte_in_the_records_fails_its_checksum(tmp_path, results, name):
    copy = copy_result(results["a"], tmp_path)
    damage_chunk(tmp_path / "a.h5.blocks" / "rank00000.h5", name)
    expected = (f"{copy}: cannot read dataset {name!r}: block file a.h5.blocks/rank00000.h5: its dataset "
                f"{name!r} fails its checksum (its bytes changed after it was written); the result is damaged")
    with open_result(copy) as result, pytest.raises(ResultError) as error:
        getattr(result, name)
    assert str(error.value).startswith(expected), str(error.value)
    with open_result(copy) as result, pytest.raises(ResultError, match="fails its checksum"):
        result.records(name)
    if name == "A":
        words = [str(copy), "rank00000.h5: its dataset 'A' fails its checksum"]
        one_error_line(cli("plot", str(copy), "-o", "p.png", cwd=tmp_path), "meshfield: error:", words)
        one_error_line(cli("compare", str(results["a"]), str(copy), *SHORT_COMPARE, cwd=tmp_path),
                       "meshfield compare: unusable input:", words)
        assert not (tmp_path / "p.png").exists()


def test_a_changed_byte_in_the_times_fails_its_checksum(tmp_path, results):
    copy = copy_result(results["a"], tmp_path)
    damage_chunk(copy, "times")
    with pytest.raises(ResultError, match=f"^{copy}: damaged result, its dataset 'times' fails its checksum "
                                          r"\(its bytes changed after it was written\)"):
        open_result(copy)


def test_results_written_before_the_checksums_are_read_as_before(tmp_path, results):
    """Block datasets without a filter (results of meshfield before the checksums)."""
    copy = copy_result(results["a"], tmp_path)
    with open_result(results["a"]) as result:
        A, Abar, times = result.A.copy(), result.Abar.copy(), result.times.copy()
    with h5py.File(tmp_path / "a.h5.blocks" / "rank00000.h5", "a") as f:
        for name in ("A", "Abar"):
            values, attrs = f[name][()], dict(f[name].attrs)
            del f[name]
            f.create_dataset(name, data=values)
            f[name].attrs.update(attrs)
            assert not f[name].fletcher32
    with h5py.File(copy, "a") as f:
        values, attrs = f["times"][()], dict(f["times"].attrs)
        del f["times"]
        f["times"] = values
        f["times"].attrs.update(attrs)
    with open_result(copy) as result:
        np.testing.assert_array_equal(result.A, A)
        np.testing.assert_array_equal(result.Abar, Abar)
        np.testing.assert_array_equal(result.times, times)

# ----------------------------------------------------------------- 4: --bistable values


@pytest.mark.parametrize("value, problem", [
    ("1,5,-10", "WINDOW_MS = -10 is not positive"),
    ("1,5,0", "WINDOW_MS = 0 is not positive"),
    ("5,1,10", "LOW = 5 is not below HIGH = 1"),
    ("5,5,10", "LOW = 5 is not below HIGH = 5"),
    ("nan,5,10", "not finite"),
    ("1,inf,10", "not finite"),
    ("1,5,x", "three finite numbers"),
])
def test_compare_refuses_bad_bistable_values(tmp_path, results, value, problem):
    p = cli("compare", str(results["a"]), str(results["b"]), *SHORT_COMPARE, "--bistable", value,
            "--figure", "c.png", cwd=tmp_path)
    one_error_line(p, "meshfield compare: unusable input:",
                   [f"--bistable {value!r}", problem, "LOW < HIGH", "WINDOW_MS > 0"])
    assert p.stdout == "" and os.listdir(tmp_path) == []


@pytest.mark.parametrize("bistable, words", [
    (dict(low=1.0, high=5.0, window_ms=-10.0), ["window_ms = -10.0", ">= 0"]),
    (dict(low=5.0, high=1.0), ["low = 5.0, high = 1.0", "low < high"]),
    (dict(low=float("nan"), high=1.0), ["low = nan", "finite"]),
])
def test_compare_results_refuses_bad_bistable_spec(results, bistable, words):
    with open_result(results["a"]) as a, open_result(results["b"]) as b:
        with pytest.raises(CompareInputError) as error:
            compare_results(a, b, discard=0.0, segment_ms=100.0, bistable=bistable)
    for word in words:
        assert word in str(error.value)


# ----------------------------------------------------------------- 5: --bistable on one type


def test_compare_bistable_needs_two_types(tmp_path, results):
    one = str(results["one"])
    p = cli("compare", one, one, *SHORT_COMPARE, "--bistable", "1,5,10", "--figure", "c.png", cwd=tmp_path)
    line = one_error_line(p, "meshfield compare: unusable input:",
                          ["--bistable '1,5,10'", "two population types", one, "['plain']", "3 site(s)"])
    assert "populations" not in line and "(p1, p2)" not in line
    assert p.stdout == "" and os.listdir(tmp_path) == []


# ----------------------------------------------------------------- 6: the same file twice


def test_compare_same_file_warns(tmp_path, results):
    a = copy_result(results["a"], tmp_path)
    os.symlink(a.name, tmp_path / "link.h5")
    for reference, other, cwd in ((str(a), str(a), None),            # the same path twice
                                  (str(a), "link.h5", tmp_path),      # a link to it
                                  ("a.h5", "./a.h5", tmp_path)):      # two spellings
        p = cli("compare", reference, other, *SHORT_COMPARE, cwd=cwd)
        assert p.returncode == 0, p.stdout + p.stderr
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("meshfield compare: warning:"), p.stderr
        assert "same file" in lines[0] and "trivially" in lines[0] and other in lines[0]
        assert "PASS" in p.stdout
    p = cli("compare", str(a), str(results["b"]), *SHORT_COMPARE)
    assert p.returncode in (0, 1) and "same file" not in p.stderr and "Traceback" not in p.stderr


def test_a_link_to_a_result_in_another_folder_reads_its_blocks(tmp_path, results):
    """The block folder lies beside the master file, not beside a link to it."""
    a = copy_result(results["a"], tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(a, elsewhere / "link.h5")
    with meshfield.open_result(elsewhere / "link.h5") as linked, meshfield.open_result(a) as direct:
        np.testing.assert_array_equal(linked.A, direct.A)
