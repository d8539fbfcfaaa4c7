"""The command line: results, exit status, one-line errors, nothing half-written."""

import errno
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import meshfield

TINY = ["--set", "run.t_end=20", "--set", "lattice.shape=[6,6]", "--set", "stimuli=[]",
        "--set", "couplings.0.kernel={shape='gaussian', sigma=0.1, r_max=0.2}",
        "--set", "couplings.1.kernel={shape='gaussian', sigma=0.1, r_max=0.2}",
        "--set", "couplings.2.kernel={shape='gaussian', sigma=0.1, r_max=0.2}",
        "--set", "couplings.3.kernel={shape='gaussian', sigma=0.1, r_max=0.2}"]


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "meshfield.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def test_run_writes_a_result_that_reads_back(tmp_path):
    out = tmp_path / "r.h5"
    p = cli("run", *TINY, "-o", str(out))
    assert p.returncode == 0, p.stderr
    assert "[meshfield] done" in p.stdout
    with meshfield.open_result(out) as res:
        assert res.A.shape == (20, 2, 6, 6)
        assert res.A.dtype == np.float32
        assert res.types == ["E", "I"]
        assert res.config["run"]["t_end"] == 20.0
        assert res.meta["seed"] == 1 and res.meta["ranks"] == 1
        np.testing.assert_array_equal(res.times, np.arange(20) * 1.0)


def test_existing_result_is_not_overwritten_without_flag(tmp_path):
    out = tmp_path / "r.h5"
    assert cli("run", *TINY, "-o", str(out), "-q").returncode == 0
    before = out.stat().st_mtime_ns
    p = cli("run", *TINY, "-o", str(out), "-q")
    assert p.returncode == 2
    assert "exists" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert out.stat().st_mtime_ns == before
    assert cli("run", *TINY, "-o", str(out), "-q", "--overwrite").returncode == 0


@pytest.mark.parametrize("args, words", [
    (["--set", "populations.E.tau_m=-1"], ["populations.E.tau_m", "-1", "> 0"]),
    (["--set", "couplings.0.kernel.shape='mexican'"], ["couplings[0].kernel.shape", "mexican"]),
    (["--set", "lattice.shape=[4,4]"], ["too large for the lattice"]),
    (["/no/such.toml"], ["does not exist"]),
    # NaN firing probabilities from an absurd escape rate were a SystemError traceback mid-run
    (["--set", "populations.E.c=1e308"], ["left the range of double precision", "populations.E.c = 1e+308"]),
])
def test_bad_input_gives_one_line_exit_2_and_writes_nothing(tmp_path, args, words):
    p = cli("run", *args, "-o", str(tmp_path / "x.h5"), cwd=tmp_path)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("meshfield: error:")
    for w in words:
        assert w in lines[0]
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("args, words", [
    (["-o", "out/"], ["-o 'out/' names a folder", "out/run.h5"]),
    # a trailing slip after a file name: the suggestion is the file, not a folder in it
    (["-o", "r.h5/"], ["-o 'r.h5/' names a folder", "give a file name, e.g. r.h5"]),
    (["-o", "field.toml"], ["-o 'field.toml'", ".h5 or .hdf5"]),
    (["-o", "r.h5", "--checkpoint", "r.ckpt"], ["--checkpoint 'r.ckpt'", ".h5 or .hdf5"]),
    (["-o", "r.h5", "--dims", "2,x"], ["--dims '2,x'", "e.g. 2,2"]),
])
def test_bad_output_options_give_one_line_exit_2_and_write_nothing(tmp_path, args, words):
    (tmp_path / "out").mkdir()
    (tmp_path / "field.toml").write_text("# a configuration that -o must not replace\n")
    p = cli("run", *TINY, "-q", "--overwrite", *args, cwd=tmp_path)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("meshfield: error:"), p.stderr
    for w in words:
        assert w in lines[0]
    assert "r.h5/run.h5" not in lines[0]
    assert sorted(os.listdir(tmp_path)) == ["field.toml", "out"] and os.listdir(tmp_path / "out") == []
    assert (tmp_path / "field.toml").read_text().startswith("# a configuration")


def test_missing_output_folder(tmp_path):
    p = cli("run", *TINY, "-o", str(tmp_path / "nope" / "x.h5"))
    assert p.returncode == 2 and "output folder" in p.stderr


def test_run_too_large_for_the_node_is_refused_before_building(tmp_path):
    """A 60 000 x 60 000 meso lattice (about 28 TiB of cohort state) ends with one
    line naming the need and the memory per rank, before anything is built or
    written; so does a micro network of 4 million neurons per population."""
    toml = tmp_path / "big.toml"
    toml.write_text("[run]\nt_end = 20\n[lattice]\nshape = [60000, 60000]\n"
                    "[populations.E]\nN = 100\nmu = 20.0\n")
    p = cli("run", str(toml), "-o", str(tmp_path / "big.h5"))
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "the meso model needs about" in lines[0]
    assert "GiB of memory per rank on this node" in lines[0] and "meshfield info -n RANKS" in lines[0]
    need = float(lines[0].split("needs about ")[1].split(" GiB")[0].replace(",", ""))
    # 3.6e9 sites x (5 arrays x K x 8 bytes + 64), K = 5 tau_m + t_ref (automatic),
    # plus the record buffers and the float64 arrays of a block of the run's 40 steps
    assert 2.0e4 < need < 4.0e4
    assert lines[0].endswith("or run.cohort_dtype = 'float32', which halves the cohort state")
    p = cli("run", str(toml), "--set", "run.cohort_dtype=float32", "-o", str(tmp_path / "big.h5"))
    assert p.returncode == 2 and "cohort_dtype" not in p.stderr  # already halved: no such hint
    half = float(p.stderr.split("needs about ")[1].split(" GiB")[0].replace(",", ""))
    # K = 208; the record buffers (20 records of A and Abar, float32) are not halved, nor
    # the block's 6 float64 rows (counts, expectations and drive of the time loop and the kernel)
    buffers = 2 * 20 * 60000**2 * 4 / 2**30 + 8 * 40 * 6 * 60000**2 / 2**30
    assert half == pytest.approx((need - buffers) * (5 * 208 * 4 + 64) / (5 * 208 * 8 + 64) + buffers, rel=1e-3)
    p = cli("run", "v3_field", "--set", "populations.E.N=4000000", "--level", "micro",
            "-o", str(tmp_path / "m.h5"))
    assert p.returncode == 2 and "the micro model needs about" in p.stderr and "cohort_dtype" not in p.stderr
    assert p.stderr.strip().endswith("or a smaller lattice, N, C")  # no history K at the micro level
    # a meso model that is mostly spike-count history: the delays are named, not N, C or the cohorts
    p = cli("run", "--set", "couplings.1.delay.velocity=1e-9", "-o", str(tmp_path / "d.h5"))
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip().endswith(
        "or shorter delays: most of it is the spike-count history that the longest delay needs "
        "(800000002 steps = 4e+08 ms, couplings[1].delay)"), p.stderr
    assert "cohort_dtype" not in p.stderr and "N, C" not in p.stderr
    assert sorted(os.listdir(tmp_path)) == ["big.toml"]


def test_memory_check_counts_records_kept_in_memory(monkeypatch):
    """Without an output file the records of the whole lattice stay in memory; the
    check counts them and says how to avoid them."""
    import meshfield.simulation as sim
    config = meshfield.load_config(meshfield.config.packaged_config("default"), ["run.t_end=2000"])
    n_records = config.n_records * len(config.types) * int(np.prod(config.lattice.shape))
    monkeypatch.setattr(sim, "node_memory_bytes", lambda: 2 * 4 * n_records)  # the records alone
    with pytest.raises(meshfield.config.ConfigError, match=r"records kept in memory .*-o OUT\.h5"):
        meshfield.run(config)



def test_memory_check_counts_the_record_buffers(monkeypatch, tmp_path):
    """Each rank gathers up to 256 records of A and Abar of its block (float32)
    before writing them; on a large block that is a third of the meso state, and
    neither info nor the check counted it."""
    import meshfield.simulation as sim
    config = meshfield.load_config(meshfield.config.packaged_config("default"),
                                   ["lattice.shape=[64, 64]", "run.t_end=300"])
    buffers = 2 * 256 * 2 * 64 * 64 * 4
    assert sim.record_buffer_bytes(config, 64 * 64) == buffers
    short = meshfield.load_config(meshfield.config.packaged_config("default"), ["run.t_end=100"])
    assert sim.record_buffer_bytes(short, 10) == 2 * 100 * 2 * 10 * 4  # a run of 100 records buffers 100
    from meshfield.coupling import build_stencils
    from meshfield.meso.model import resources
    stencils = build_stencils(config)
    state = resources(config, stencils, (64, 64), 5)["memory_bytes"]
    # memory for the state but not the buffers: refused, the buffers named in the need
    monkeypatch.setattr(sim, "node_memory_bytes", lambda: state + buffers // 2)
    with pytest.raises(meshfield.config.ConfigError, match="the meso model needs about"):
        meshfield.run(config, output=str(tmp_path / "r.h5"))
    assert os.listdir(tmp_path) == []
    p = cli("info", "default", "--set", "lattice.shape=[64, 64]", "--set", "run.t_end=300")
    assert ("plus 16.0 MiB of record buffers (up to 256 records of A and Abar) and about 250 MiB per rank "
            "for Python, numba, MPI and h5py") in p.stdout


def test_memory_check_and_info_count_the_arrays_of_a_block(monkeypatch, tmp_path):
    """The time loop advances the meso model d_min steps at a time, and the spike
    counts, expectations, drives and stencil inputs of such a block are (d_min,
    sites) rows of float64: 15 for the default's two types and four stencils.
    Neither info nor the check counted them; with 200 ms delays a 64 x 64 block
    peaked 333 MiB above the interpreter where info printed 166 MiB, without
    couplings (blocks of 64 steps) 73 MiB where it printed 56 MiB."""
    import meshfield.simulation as sim
    from meshfield.coupling import build_stencils
    from meshfield.meso.model import resources
    delays = [f"couplings.{i}.delay.d0=20" for i in range(4)]  # d_min = 40 steps
    config = meshfield.load_config(meshfield.config.packaged_config("default"), ["run.t_end=40"] + delays)
    stencils = build_stencils(config)
    sizes = resources(config, stencils, (16, 16), 5)
    block = 8 * 40 * 256 * (3 * 2 + 4 + 2 + 3)
    assert sizes["block_steps"] == 40 and sizes["block_bytes"] == block
    assert sizes["peak_bytes"] == sizes["memory_bytes"] + block
    # a run shorter than a block fills only its steps; without couplings the blocks are 64 steps
    short = meshfield.load_config(meshfield.config.packaged_config("default"), ["run.t_end=10"] + delays)
    assert resources(short, stencils, (16, 16), 5)["block_bytes"] == block // 2
    alone = meshfield.load_config(meshfield.config.packaged_config("default"),
                                  [f"couplings.{i}.C=0" for i in range(4)])
    assert resources(alone, (), (16, 16), 0)["block_bytes"] == 8 * 64 * 256 * (3 * 2 + 3)
    # memory for the state, the history and the record buffers but not the block: refused
    buffers = sim.record_buffer_bytes(config, 256)
    monkeypatch.setattr(sim, "node_memory_bytes", lambda: sizes["memory_bytes"] + buffers + block // 2)
    with pytest.raises(meshfield.config.ConfigError, match="the meso model needs about"):
        meshfield.run(config, output=str(tmp_path / "r.h5"))
    assert os.listdir(tmp_path) == []
    p = cli("info", "--set", "run.t_end=40", *(a for d in delays for a in ("--set", d)))
    assert p.returncode == 0, p.stderr
    assert f"+ {block / 2**20:.2f} MiB of arrays for a block of 40 step(s)" in p.stdout


def test_memory_refusal_names_what_dominates_and_tells_the_sizes_apart(monkeypatch, tmp_path):
    """With 200 ms delays the arrays of a 400-step block are most of a 64 x 64 meso model:
    the refusal asks for shorter delays and names the shortest. Sizes below 1 GiB
    are in MiB, and as many decimals as tell need and memory apart."""
    import meshfield.simulation as sim
    config = meshfield.load_config(meshfield.config.packaged_config("default"),
                                   ["run.t_end=400", "lattice.shape=[64, 64]"]
                                   + [f"couplings.{i}.delay.d0=200" for i in range(4)])
    from meshfield.coupling import build_stencils
    from meshfield.meso.model import resources
    sizes = resources(config, build_stencils(config), (64, 64), 5)
    assert sizes["block_steps"] == 400 and sizes["block_bytes"] > sizes["state_bytes"] + sizes["history_bytes"]
    monkeypatch.setattr(sim, "node_memory_bytes", lambda: sizes["peak_bytes"] // 2)
    with pytest.raises(meshfield.config.ConfigError) as err:
        meshfield.run(config, output=str(tmp_path / "r.h5"))
    message = str(err.value)
    assert message.endswith("or shorter delays: most of it is the arrays of one block of 400 steps = 200 ms, "
                            "the shortest delay (couplings[0].delay), which the time loop advances at once")
    assert " MiB on the largest of the 1 rank(s)" in message and " MiB of memory per rank" in message
    assert sim._distinct_sizes(5.952 * 2**30, 5.951 * 2**30) == ("5.952 GiB", "5.951 GiB")
    assert sim._distinct_sizes(0.31 * 2**30, 0.3 * 2**30) == ("317.4 MiB", "307.2 MiB")
    assert sim._distinct_sizes(45302.5 * 2**30, 23.5 * 2**30) == ("45,302.5 GiB", "23.5 GiB")


def test_malformed_toml(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[lattice]\nshape = [3,\n")
    p = cli("info", str(bad))
    assert p.returncode == 2 and "not valid TOML" in p.stderr


def test_info_reports_the_resolved_model():
    p = cli("info", "-n", "4")
    assert p.returncode == 0, p.stderr
    for words in ("K = 208 steps", "halo width", "d_min = 2 steps", "process grid for 4 rank(s): (2, 2)",
                  "memory per rank", "offsets"):
        assert words in p.stdout


def test_plot_centres_each_site_on_its_position():
    # pixels of sites 0 .. n-1 centred on 0, dx, .., (n-1) dx, as in the line plots
    from meshfield.plot import _site_extent
    assert _site_extent((3, 2), 0.1) == pytest.approx((-0.05, 0.25, -0.05, 0.15))


def test_plot_default_snapshot_skips_the_onset():
    # the largest spatial variance is an onset front at 50 ms, the pattern after
    # 200 ms is weaker but peaks at 700 ms: the snapshot shows the pattern
    from meshfield.plot import _default_snapshot
    times = np.arange(0.0, 1000.0, 10.0)
    A = np.ones((100, 2, 4, 4))
    A[5, :, 0, 0] = 50.0
    A[70, :, 1, 1] = 5.0
    assert _default_snapshot(A, times, [0, 1]) == 70
    from meshfield.plot import _lattice_moments
    means, spatial_var = _lattice_moments(A)  # the overview's one pass gives the same
    assert _default_snapshot(A, times, [0, 1], spatial_var) == 70 and means[5, 0] == A[5, 0].mean()
    assert _default_snapshot(A[:15], times[:15], [0]) == 5  # shorter than 200 ms: all of it
    assert _default_snapshot(A[:, :, :1, :1], times, [0]) == 99  # one site: the last record


def test_plot_writes_png(tmp_path):
    out = tmp_path / "r.h5"
    assert cli("run", *TINY, "-o", str(out), "-q").returncode == 0
    p = cli("plot", str(out), "-o", str(tmp_path / "r.png"))
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"


@pytest.fixture(scope="module")
def tiny_result(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny") / "r.h5"
    p = cli("run", *TINY, "-o", str(out), "-q")
    assert p.returncode == 0, p.stderr
    return out


def test_plot_and_analysis_read_a_large_result_in_slices(tmp_path, monkeypatch):
    """Above $MESHFIELD_READ_WHOLE_MIB (here 0) the figures and statistics never
    read A or Abar whole, so a long record need not fit in memory; each per-record
    statistic (one record per slice here) and the summary equal those of the
    array read whole."""
    import meshfield.plot as plot
    from meshfield.analysis import summarize
    from meshfield.io import open_result
    from meshfield.io.result import WHOLE_READ_ENV, Result

    result = tmp_path / "r.h5"
    assert cli("run", *TINY, "--set", "run.t_end=400", "-o", str(result), "-q").returncode == 0
    with open_result(result) as res:
        A = np.asarray(res.A, dtype=np.float64)
        expected = summarize(res, discard=100).to_dict()
    whole = []
    read = Result._read_record
    monkeypatch.setattr(Result, "_read_record", lambda self, name: whole.append(name) or read(self, name))
    monkeypatch.setattr(plot, "_SLICE_BYTES", 1)
    monkeypatch.setenv(WHOLE_READ_ENV, "0")
    with open_result(result) as res:
        means = plot._lattice_means(res.records("A"))
        plot.overview(res, tmp_path / "o.png")
        plot.plot_psd(res, tmp_path / "p.png", discard=0.0)
        calls = []
        plot.animate(res, tmp_path / "a.gif", every=100, progress=lambda done, total: calls.append((done, total)))
        assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]  # 400 records, every 100th
        assert summarize(res, discard=100).to_dict() == expected
        assert "A" not in vars(res) and "Abar" not in vars(res)  # never cached whole
    assert whole == []
    np.testing.assert_allclose(means, A.reshape(len(A), 2, -1).mean(axis=2), rtol=1e-12)
    assert all((tmp_path / name).read_bytes()[:3] in (b"\x89PN", b"GIF") for name in ("o.png", "p.png", "a.gif"))


@pytest.mark.parametrize("args, words", [
    (["-o", "nope/x.png"], ["-o", "nope/x.png", "does not exist"]),
    (["-o", "x.foo"], ["-o", "'.foo'", "allowed:", ".png", ".pdf"]),
    (["--animate", "x.avi"], ["--animate", "'.avi'", "allowed: .gif, .mp4"]),
    (["--time", "500"], ["--time", "500", "covers 0 to 20 ms"]),
    (["--every", "0", "--animate", "y.gif"], ["--every", "0", ">= 1"]),
    (["--psd", "psd.png"], ["--psd", "discarding 200.0 ms"]),
])
def test_plot_bad_input_gives_one_line_exit_2_and_writes_nothing(tmp_path, tiny_result, args, words):
    """Checked before anything is drawn: a figure of an earlier call stays as it was."""
    old = tmp_path / "x.png"
    old.write_bytes(b"earlier figure")
    p = cli("plot", str(tiny_result), *(["-o", "x.png"] if "-o" not in args else []), *args, cwd=tmp_path)
    assert p.returncode == 2, p.stdout
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("meshfield: error:"), p.stderr
    for w in words:
        assert w in lines[0]
    assert sorted(os.listdir(tmp_path)) == ["x.png"] and old.read_bytes() == b"earlier figure"


def test_plot_raster_of_recorded_spike_trains(tmp_path, tiny_result):
    """A micro result with spike trains gets a raster; a result without them, or
    a raster path equal to another figure's, is refused before anything is drawn."""
    micro = tmp_path / "m.h5"
    p = cli("run", *TINY, "--level", "micro", "--set", "record.spikes_per_site=3", "-o", str(micro), "-q")
    assert p.returncode == 0, p.stderr
    p = cli("plot", str(micro), "--raster", str(tmp_path / "raster.png"))
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "raster.png").read_bytes()[:4] == b"\x89PNG"
    for args, words in ((["--raster", "r.png"], ["no spike trains", "record.spikes_per_site=K"]),
                        (["-o", "r.png", "--raster", "r.png"], ["--raster 'r.png' is also the file of -o"])):
        source = tiny_result if "-o" not in args else micro
        p = cli("plot", str(source), *args, cwd=tmp_path)
        assert p.returncode == 2 and all(w in p.stderr for w in words), p.stderr
        assert not (tmp_path / "r.png").exists()


@pytest.mark.parametrize("args, words", [
    (["--bistable", "1,2"], ["--bistable '1,2'", "LOW,HIGH,WINDOW_MS"]),
    (["--figure", "nope/c.png"], ["--figure", "does not exist"]),
    ([], ["20 ms remain after discarding the first 0 ms (--discard); the PSD bands need two segments of "
          "--segment-ms 1000 ms (2000 ms). Run longer, discard less (--discard), or use shorter segments "
          "(--segment-ms), whose bands then start at their lowest frequency"]),
    (["--discard", "0", "--segment-ms", "-1"], ["--segment-ms -1.0: must be a positive duration in ms"]),
    (["--discard", "-5"], ["--discard -5.0: must be a non-negative time in ms"]),
    (["--segment-ms", "5", "--blocks", "1"], ["--blocks 1: must be a whole number >= 2"]),
    (["--segment-ms", "5", "--blocks", "500"], ["--blocks 500 is more than the"]),
])
def test_compare_bad_input_gives_one_line_exit_2(tmp_path, tiny_result, args, words):
    p = cli("compare", str(tiny_result), str(tiny_result), "--discard", "0", *args, cwd=tmp_path)
    assert p.returncode == 2 and p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("meshfield compare: unusable input:"), p.stderr
    for w in words:
        assert w in lines[0]
    assert os.listdir(tmp_path) == []


def test_micro_run_records_spike_trains_consistent_with_voltage_and_activity(tmp_path):
    """The sampled neurons' spikes sit in the recorded spike table, their membrane
    potential is u_reset in the step of each spike, and no table entry is outside
    the run or the sampled neurons."""
    out = tmp_path / "m.h5"
    p = cli("run", "bench_micro", "--set", "run.t_end=30", "--set", "record.spikes_per_site=4",
            "--set", "record.voltage_neurons=4", "--set", "record.interval=0.5", "-o", str(out), "-q")
    assert p.returncode == 0, p.stderr
    with meshfield.open_result(out) as res:
        spikes = res.extra("spikes")[0]
        u = res.extra("voltage")[0]  # [step, type, x, y, neuron]
        assert len(spikes) > 20
        steps, site, typ, neuron = spikes.T
        assert steps.min() >= 0 and steps.max() < 60 and neuron.max() < 4
        x, y = np.unravel_index(site, res.shape)
        u_reset = [res.config["populations"][t]["u_reset"] for t in res.types]
        np.testing.assert_array_equal(u[steps, typ, x, y, neuron], np.take(u_reset, typ))
        # each record's count of all spikes bounds the sampled neurons' spikes at that site
        N = np.array([res.config["populations"][t]["N"] for t in res.types])
        counts = np.rint(res.A * N[None, :, None, None] * 0.5e-3).astype(int)
        sampled = np.zeros_like(counts)
        np.add.at(sampled, (steps, typ, x, y), 1)
        assert np.all(sampled <= counts)


def test_compare_exit_status_follows_the_acceptance_rules(tmp_path):
    """Same configuration, different seeds: every quantity passes (exit 0). Mean
    drive 2 mV higher: the mean rate moves by far more than 3 SE and 5 % (exit 1),
    and the report names it. A file that is not a result: exit 2."""
    base = ["run", "v1_single", "--set", "run.t_end=12000", "--set", "record.interval=1.0", "-q"]
    paths = {}
    for name, extra in (("a", ["--set", "run.seed=1"]), ("b", ["--set", "run.seed=2"]),
                        ("c", ["--set", "run.seed=3", "--set", "populations.plain.mu=26.0",
                                      "--set", "populations.adapting.mu=26.0"])):
        paths[name] = tmp_path / f"{name}.h5"
        p = cli(*base, *extra, "-o", str(paths[name]))
        assert p.returncode == 0, p.stderr
    same = cli("compare", str(paths["a"]), str(paths["b"]), "--discard", "1000", "--blocks", "10")
    assert same.returncode == 0, same.stdout
    assert "blocks=10, block_ms=1100/1100" in same.stdout
    differ = cli("compare", str(paths["a"]), str(paths["c"]), "--discard", "1000",
                 "--figure", str(tmp_path / "cmp.png"))
    assert differ.returncode == 1
    assert any("mean" in line and "FAIL" in line.upper() for line in differ.stdout.splitlines())
    assert (tmp_path / "cmp.png").exists()
    junk = tmp_path / "junk.h5"
    junk.write_text("not hdf5")
    bad = cli("compare", str(paths["a"]), str(junk))
    assert bad.returncode == 2 and "unusable input" in bad.stderr


def test_cgroup_memory_limit_of_a_batch_job(tmp_path):
    """The job's own cgroup and its ancestors are read, v2 and v1: the smallest
    numeric limit applies, "max" means none."""
    from meshfield.simulation import cgroup_memory_limit
    job = tmp_path / "system.slice" / "slurmstepd.scope" / "job_7"
    job.mkdir(parents=True)
    (job / "memory.max").write_text("4294967296\n")                     # --mem=4G
    (job.parent / "memory.max").write_text("max\n")
    assert cgroup_memory_limit("0::/system.slice/slurmstepd.scope/job_7\n", str(tmp_path)) == 2**32
    (job.parent.parent / "memory.max").write_text(f"{2**31}\n")        # a tighter ancestor
    assert cgroup_memory_limit("0::/system.slice/slurmstepd.scope/job_7\n", str(tmp_path)) == 2**31
    v1 = tmp_path / "memory" / "slurm" / "uid_1" / "job_7"
    v1.mkdir(parents=True)
    (v1 / "memory.limit_in_bytes").write_text(f"{3 * 2**30}\n")
    text = "4:memory:/slurm/uid_1/job_7\n3:cpuset:/\n"
    assert cgroup_memory_limit(text, str(tmp_path)) == 3 * 2**30
    assert cgroup_memory_limit("4:memory:/elsewhere\n", str(tmp_path / "none")) is None


def test_a_stimulus_after_the_end_is_warned_about_and_listed_by_info(tmp_path):
    """The packaged default's pulse starts at 500 ms; a 20-ms run never reaches it."""
    i = TINY.index("stimuli=[]")
    with_pulse = TINY[:i - 1] + TINY[i + 1:]          # TINY without its "--set stimuli=[]"
    p = cli("run", *with_pulse, "-o", str(tmp_path / "r.h5"))
    assert p.returncode == 0, p.stderr
    assert ("meshfield run: warning: stimuli[0] (pulse) starts at 500 ms, at or after the end of the run "
            "(run.t_end = 20 ms): it never acts") in p.stderr
    # bad input gets its one error line alone: the warnings come once the run's checks have passed
    again = cli("run", *with_pulse, "-o", str(tmp_path / "r.h5"))
    assert again.returncode == 2 and len(again.stderr.strip().splitlines()) == 1, again.stderr
    assert "exists" in again.stderr and "warning" not in again.stderr
    info = cli("info", *with_pulse)
    assert "[0] pulse on E, amplitude 6 mV, from step 1000 (500 ms): after the end of the run, never acts" \
        in info.stdout
    info = cli("info")
    assert "[0] pulse on E, amplitude 6 mV, from step 1000 (500 ms) to step 1199 (until 600 ms)" in info.stdout


def test_settings_that_do_nothing_are_warned_about():
    """Legal but probably not meant (user audit): they used to pass in silence."""
    from meshfield.cli import config_warnings

    def warned(*overrides):
        return config_warnings(meshfield.load_config("default", list(overrides)))

    assert warned() == []
    assert warned("couplings.1.C=0", "couplings.2.J=0") == [
        "couplings[1] (E -> I) has C = 0: it is left out", "couplings[2] (I -> E) has J = 0: it is left out"]
    assert warned("couplings.0.kernel.r_max=0.09", "couplings.3.kernel={shape='tophat', radius=0.05}") == [
        "couplings[0].kernel (gaussian, sigma = 0.15 mm, r_max = 0.09 mm) reaches no site but the target's own at "
        "lattice.dx = 0.1 mm: it acts as a delta kernel",
        "couplings[3].kernel (tophat, radius = 0.05 mm, r_max = 0.05 mm) reaches no site but the target's own at "
        "lattice.dx = 0.1 mm: it acts as a delta kernel"]
    # a radius below dx within a wider r_max: the message names the radius, the length at fault
    assert warned("couplings.3.kernel={shape='tophat', radius=0.05, r_max=0.4}") == [
        "couplings[3].kernel (tophat, radius = 0.05 mm, r_max = 0.4 mm) reaches no site but the target's own at "
        "lattice.dx = 0.1 mm: it acts as a delta kernel"]
    assert warned("couplings.0.kernel.r_max=0.1") == []  # reaches the four nearest neighbours
    assert warned("couplings.0.kernel={shape='delta'}", "couplings.1.kernel={shape='custom', weights=[[0, 0, 1.0]]}") == []
    assert warned("record.spikes_per_site=3", "record.voltage_neurons=2") == [
        "record.spikes_per_site = 3 is ignored at the meso level, which has no single neurons (it records A and "
        "Abar only)",
        "record.voltage_neurons = 2 is ignored at the meso level, which has no single neurons (it records A and "
        "Abar only)"]
    assert warned("record.spikes_per_site=3", "run.level=micro") == []


def test_plot_never_writes_over_its_result(tmp_path):
    """A master file may have any name; one ending in .png must not be replaced by its figure."""
    out = tmp_path / "r.h5"
    assert cli("run", *TINY, "-o", str(out)).returncode == 0
    renamed = tmp_path / "r.png"
    out.rename(renamed)
    before = renamed.read_bytes()
    for extra in ([], ["-o", str(renamed)], ["--psd", str(renamed)]):
        p = cli("plot", str(renamed), *extra)
        assert p.returncode == 2, p.stderr
        assert "is also the file of the result" in p.stderr
    assert renamed.read_bytes() == before
    with meshfield.open_result(renamed) as res:
        assert res.A.shape == (20, 2, 6, 6)


def test_compare_and_analyze_never_write_over_their_results(tmp_path):
    """As for plot: a master file may have any name, so one ending in .png (compare's
    --figure) or .json (analyze's --json) must not be replaced by the output."""
    out = tmp_path / "r.h5"
    assert cli("run", *TINY, "--set", "run.t_end=200", "-o", str(out)).returncode == 0  # long enough for both
    for name, command in (("r.png", ["compare", "r.png", "r.png", "--segment-ms", "100", "--figure"]),
                          ("r.json", ["analyze", "r.json", "--json"])):
        renamed = tmp_path / name
        out.rename(renamed)
        before = renamed.read_bytes()
        for target in (name, f"./{name}"):
            p = cli(*command, target, "--discard", "0", "--blocks", "2", "-q", cwd=tmp_path)
            assert p.returncode == 2 and p.stdout == "", p.stdout
            assert p.stderr == (f"meshfield {command[0]}: unusable input: {command[-1]} {target!r} is also the "
                                f"file of the result {name!r}; give each output its own file, other than the "
                                f"results\n")
        assert renamed.read_bytes() == before
        with meshfield.open_result(renamed) as res:
            assert res.A.shape == (200, 2, 6, 6)
        renamed.rename(out)


def test_a_figure_name_too_long_for_its_hidden_twin_is_refused_before_drawing(tmp_path):
    """A figure is drawn into '.NAME.partial-PID.SUFFIX' first; a legal name whose twin
    exceeds the file system's 255 bytes gave a traceback and status 1 after the drawing
    (compare: after its table, as if a quantity had failed; plot: after the figures
    before it were written). It is refused like any unwritable path: one line, status 2,
    nothing written."""
    out = tmp_path / "r.h5"
    assert cli("run", *TINY, "--set", "run.t_end=200", "-o", str(out)).returncode == 0
    long_png, long_gif = "b" * 248 + ".png", "c" * 248 + ".gif"
    for command, option, name in ((["plot", "r.h5", "-o"], "-o", long_png),
                                  (["plot", "r.h5", "-o", "ok.png", "--animate"], "--animate", long_gif),
                                  (["compare", "r.h5", "r.h5", "--segment-ms", "100", "--figure"], "--figure",
                                   long_png)):
        before = sorted(tmp_path.iterdir())
        p = cli(*command, name, "-q", cwd=tmp_path)
        assert p.returncode == 2 and p.stdout == "", p.stderr
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1, p.stderr
        prefix = "meshfield compare: unusable input: " if command[0] == "compare" else "meshfield: error: "
        assert lines[0].startswith(f"{prefix}{option} {name!r}: the name is too long: the figure is drawn "
                                   f"into the hidden file '.{name[:-4]}.partial-"), lines[0]
        assert "longer than the 255 bytes a file name may have there; use a name of at most" in lines[0]
        hidden = lines[0].split("hidden file '", 1)[1].split("'", 1)[0]
        assert hidden.startswith(f".{name[:-4]}.partial-") and hidden.endswith(name[-4:]) and len(hidden) > 255
        assert lines[0].endswith(f"use a name of at most {255 - (len(hidden) - len(name))} bytes")
        assert sorted(tmp_path.iterdir()) == before
    # a name that leaves room for its twin is written
    fits = "d" * 235 + ".png"
    p = cli("plot", "r.h5", "-o", fits, "-q", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / fits).read_bytes()[:4] == b"\x89PNG"


def test_a_figure_or_json_the_system_fails_to_write_gives_one_line_and_status_2(tmp_path, monkeypatch, capsys):
    """A write can fail after every check passed (a full disk, a quota). plot and
    compare --figure gave a traceback and status 1 (compare: after its table, as if a
    quantity had failed); now each says so in one line naming the file and the reason,
    with status 2, and leaves nothing behind, as analyze --json already did."""
    from meshfield import cli as cli_module
    for name, seed in (("r.h5", "1"), ("s.h5", "2")):
        p = cli("run", *TINY, "--set", "run.t_end=200", "--set", f"run.seed={seed}", "-o", name, "-q",
                cwd=tmp_path)
        assert p.returncode == 0, p.stderr

    def full_disk(source, target):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(os, "replace", full_disk)
    statistics = ["--segment-ms", "100", "--discard", "0", "--blocks", "2", "-q"]
    reason = os.strerror(errno.ENOSPC)
    for argv, line in (
            (["plot", "r.h5", "-o", "f.png"], f"meshfield: error: cannot write 'f.png': {reason}; nothing was "
                                              "written there"),
            (["compare", "r.h5", "s.h5", *statistics, "--figure", "f.png"],
             f"meshfield compare: cannot write --figure 'f.png': {reason}; nothing was written"),
            (["analyze", "r.h5", *statistics, "--json", "f.json"],
             f"meshfield analyze: cannot write --json 'f.json': {reason}; nothing was written")):
        before = sorted(tmp_path.iterdir())
        status = cli_module.main(argv)
        captured = capsys.readouterr()
        assert status == 2, captured
        assert captured.err.strip().splitlines() == [line]
        assert sorted(tmp_path.iterdir()) == before


def test_info_at_the_micro_level_has_no_history_length():
    """K is meso-only: a micro config that run accepts (K below the refractory steps) passes info."""
    p = cli("info", *TINY, "--set", "run.level=micro", "--set", "populations.E.K=5")
    assert p.returncode == 0, p.stderr
    assert "micro level" in p.stdout and "K =" not in p.stdout
    p = cli("info", *TINY, "--set", "populations.E.K=5")
    assert p.returncode == 2 and "populations.E.K = 5 is invalid" in p.stderr


def test_info_says_when_the_micro_level_exchanges_no_spikes_and_why_it_gives_no_rate(monkeypatch):
    """Without couplings or neighbour ranks info printed "spike traffic per exchange
    (every 0 steps) ... about 0 spikes"; where the theory finds no stationary state
    it gave a figure per Hz without saying why there was no rate to scale it by."""
    from meshfield.cli import describe

    def traffic(config, ranks):
        return describe(config, ranks, None).splitlines()[-1]

    uncoupled = meshfield.load_config("v1_single", ["run.level=micro"])
    assert traffic(uncoupled, 1) == "spike traffic: none (no couplings)"
    coupled = meshfield.load_config("default", ["run.level=micro"])
    assert traffic(coupled, 1) == "spike traffic: none (no neighbour ranks on the process grid (1, 1))"
    two = traffic(coupled, 2)
    assert two.startswith("spike traffic per exchange (every 2 steps), at the mean-field rate 17.2 Hz: about ")
    # where the theory finds no stationary state, info gives its reason
    from meshfield import theory

    def no_state(*args, **kwargs):
        raise theory.TheoryInputError("no stationary state found: (the reason)")

    monkeypatch.setattr(theory, "stationary_rates_network", no_state)
    lines = describe(coupled, 2, None).splitlines()
    assert lines[-3].endswith(" and its spikes not counted (no mean-field rate: no stationary state found: "
                              "(the reason))"), lines[-3]
    assert lines[-1].startswith("spike traffic per exchange (every 2 steps): about "), lines[-1]
    assert lines[-1].endswith(" KiB per rank per Hz of mean rate (no mean-field rate to scale by)"), lines[-1]


def test_info_takes_level_as_run_does_and_python_m_meshfield_is_the_cli():
    by_set = cli("info", *TINY, "--set", "run.level=micro")
    p = subprocess.run([sys.executable, "-m", "meshfield", "info", *TINY, "--set", "run.level=meso",
                        "--level", "micro"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and by_set.returncode == 0, p.stderr + by_set.stderr
    assert p.stdout == by_set.stdout and "micro level" in p.stdout  # --level wins over --set run.level


def test_info_prints_the_steps_actually_simulated():
    """round(t_end / dt) = 101 steps, cut down to 50 whole records of 2 steps."""
    p = cli("info", *TINY, "--set", "run.t_end=50.3")
    assert p.returncode == 0, p.stderr
    assert "dt = 0.5 ms (100 steps)" in p.stdout and "(50 records)" in p.stdout


@pytest.mark.parametrize("args, words", [
    (["--set", "populations.E.tau_theta=[1e9]", "--set", "populations.E.J_theta=[1e9]"],
     ["populations.E.tau_theta", "2772588725 steps", "at most 20000000 steps"]),
    (["--set", "populations.E.tau_m=1e9"], ["populations.E.tau_m", "at most 20000000 steps"]),
    (["-n", "1000000007"], ["more ranks (1000000007) than sites (36)", "at most 9 ranks fit, with --dims 3,3"]),
])
def test_info_refuses_in_one_line(args, words):
    p = cli("info", *TINY, *args)
    assert p.returncode == 2 and p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("meshfield: error:"), p.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])


def test_info_takes_the_process_grid_of_run():
    """info had no --dims, so slurm/run.sbatch refused jobs whose --dims grid fits
    and described the default grid's blocks for jobs that gave one."""
    p = cli("info", "default", "-n", "2", "--dims", "1,2")
    assert p.returncode == 0, p.stderr
    assert "process grid for 2 rank(s): (1, 2), largest block (16, 8) (128 sites)" in p.stdout
    # axis 1 split in 2: two slabs of 5 x (16 + 2 x 5) cells (the periodic axis 0
    # holds its halo already), 2 types, d_min = 2, 8 bytes: 8320 bytes
    assert "communication: <= 8.1 KiB per rank per exchange (260 halo cells sent" in p.stdout
    # the default grid (2, 1): 2 x 5 x 16 cells, what the exchange really sends
    p = cli("info", "default", "-n", "2")
    assert "communication: <= 5.0 KiB per rank per exchange (160 halo cells sent" in p.stdout
    p = cli("info", "default", "-n", "4", "--dims", "4,1")
    assert p.returncode == 2 and "halo width 5 exceeds the smallest block along axis 0" in p.stderr



@pytest.mark.parametrize("frequency, interval, seen", [
    (700.0, 1.0, "a wave at 300 Hz travelling the other way; record.interval < 0.714 ms records it"),
    (-1300.0, 1.0, "a wave at 300 Hz in the same direction; record.interval < 0.385 ms records it"),
    (300.0, 2.0, "a wave at 200 Hz travelling the other way; record.interval < 1.67 ms records it"),
])
def test_a_grating_faster_than_the_records_is_warned_about(frequency, interval, seen):
    """The pattern audit's 700 Hz grating, recorded every 1 ms, was analysed as a
    clean 300 Hz wave going the wrong way, without a word."""
    grating = f"stimuli=[{{kind='grating', amplitude=20.0, wavelength=0.4, frequency={frequency}, types=['E']}}]"
    p = cli("info", "v4_pattern", "--set", grating, "--set", "run.dt=0.1", "--set", f"record.interval={interval}")
    assert p.returncode == 0, p.stderr
    assert p.stderr == (f"meshfield info: warning: stimuli[0].frequency = {frequency:g} Hz is beyond the Nyquist "
                        f"rate of the records ({500 / interval:g} Hz at record.interval = {interval:g} ms): the "
                        f"records alias it, {seen}\n")
    below = grating.replace(f"frequency={frequency}", f"frequency={0.99 * 500 / interval}")
    assert cli("info", "v4_pattern", "--set", below, "--set", "run.dt=0.1", "--set",
               f"record.interval={interval}").stderr == ""

def test_info_and_run_warn_about_settings_that_probably_do_not_do_what_was_meant(tmp_path):
    """A t_ref that is not a whole number of steps was rounded silently, and an
    explicit K far below 5 tau_m + t_ref gave rates 5x too high without a word."""
    sets = ["--set", "populations.plain.t_ref=1.3", "--set", "populations.plain.K=9"]
    p = cli("info", "v1_single", *sets)
    assert p.returncode == 0, p.stderr
    lines = p.stderr.strip().splitlines()
    assert lines == [
        "meshfield info: warning: populations.plain.t_ref = 1.3 ms is not a whole number of steps of "
        "run.dt = 0.5 ms: both levels hold the neuron refractory for 3 step(s) (1.5 ms)",
        "meshfield info: warning: populations.plain.K = 9 steps (4.5 ms) is shorter than 5 tau_m + t_ref "
        "= 101.3 ms, the shortest history the automatic choice allows: neurons older than K steps join "
        "the free pool at its membrane potential, far from their own, and the rates can be far off "
        "(K = 0 chooses automatically)"]
    # K belongs to the meso level: no warning about it at the micro level
    p = cli("info", "v1_single", *sets, "--set", "run.level=micro")
    assert p.returncode == 0 and "K = 9" not in p.stderr and "t_ref = 1.3" in p.stderr
    p = cli("run", "v1_single", *sets, "--set", "run.t_end=5", "-o", str(tmp_path / "r.h5"))
    assert p.returncode == 0 and p.stderr.count("meshfield run: warning:") == 2
    assert cli("info", "v1_single").stderr == ""


def test_info_warns_about_a_constant_delay_that_is_not_a_whole_number_of_steps():
    """d0 = 0.74 ms at dt = 0.5 ms became one step (0.5 ms) without a word, while
    t_ref got a warning; a delay that grows with distance is rounded per offset,
    as documented, and gets none."""
    p = cli("info", "default", "--set", "couplings.1.delay.velocity=inf", "--set", "couplings.1.delay.d0=0.74")
    assert p.returncode == 0, p.stderr
    assert p.stderr.strip().splitlines() == [
        "meshfield info: warning: couplings[1].delay.d0 = 0.74 ms is not a whole number of steps of "
        "run.dt = 0.5 ms: both levels deliver the spikes of E to I after 1 step(s) (0.5 ms)"]
    # a same-site (delta) kernel has the constant delay d0 whatever its velocity
    p = cli("info", "default", "--set", "couplings.1.kernel={shape='delta'}", "--set", "couplings.1.delay.d0=1.3")
    assert "couplings[1].delay.d0 = 1.3 ms" in p.stderr and "after 3 step(s) (1.5 ms)" in p.stderr
    assert cli("info", "default", "--set", "couplings.1.delay.d0=0.74").stderr == ""


def test_analysis_messages_name_the_options():
    from meshfield.analysis import AnalysisInputError
    from meshfield.cli import _OPTION_OF, _in_options
    from meshfield.io import ResultError

    said = _in_options(AnalysisInputError(
        "only 0 samples remain after discarding 500.0 ms of a record of 20 samples; n_blocks = 20 is too many; "
        "use longer segments (segment_ms) or fewer bands (n_bands); my_segment_ms = 3"), _OPTION_OF)
    assert said == ("only 0 samples remain after discarding 500.0 ms (--discard) of a record of 20 samples; "
                    "--blocks 20 is too many; use longer segments (--segment-ms) or fewer bands (--bands); "
                    "my_segment_ms = 3")
    assert _in_options(AnalysisInputError("n_blocks = 20"), ("discard",)) == "n_blocks = 20"  # not an option there
    assert _in_options(ResultError("x/discard = 1.h5: no such result file"), _OPTION_OF) == \
        "x/discard = 1.h5: no such result file"  # only analysis messages


@pytest.mark.parametrize("variable", ["PMI_RANK", "OMPI_COMM_WORLD_RANK", "SLURM_PROCID"])
def test_usage_errors_are_printed_by_the_first_rank_only(variable):
    """Under mpiexec every rank printed argparse's usage and error (and --help)."""
    def usage(rank):
        env = {k: v for k, v in os.environ.items() if k not in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "SLURM_PROCID")}
        return subprocess.run([sys.executable, "-m", "meshfield.cli", "run", "--bogus"], capture_output=True,
                              text=True, env={**env, variable: rank}, timeout=60)
    first, other = usage("0"), usage("1")
    assert first.returncode == other.returncode == 2
    assert "meshfield: error: unrecognized arguments: --bogus" in first.stderr
    assert other.stderr == "" and other.stdout == ""


def test_a_module_that_cannot_be_imported_does_not_hide_the_error(monkeypatch):
    """_input_errors runs inside an except clause: if it raised (numba failing to
    start, say), the command's own error would be replaced and, under mpiexec,
    the other ranks left waiting."""
    from meshfield import cli

    monkeypatch.setitem(sys.modules, "meshfield.plot", None)  # its import now fails
    importable = [entry for entry in cli._INPUT_ERRORS if entry[0] != "plot"]
    assert cli._input_errors()[0] is meshfield.ConfigError and len(cli._input_errors()) == 1 + len(importable)

    def broken(args):
        raise RuntimeError("the command's own error")

    with pytest.raises(RuntimeError, match="the command's own error"):
        cli._guarded(broken, None)


def test_a_segment_restarted_from_a_checkpoint_is_analysed_without_discarding_an_onset(tmp_path):
    """A chain's later segments have no onset transient: analyze, compare and
    plot --psd discarded one by default anyway (500 and 200 ms), so a 600-ms
    segment could not be analysed ("only 0 samples remain"; HPC audit). By default
    they now discard nothing of a restarted segment; --discard still applies,
    and a pair with a run from t = 0 still discards 500 ms of both."""
    from meshfield.analysis._record import onset_discard
    sets = [s for s in TINY if s != "--set" and not s.startswith("run.t_end")]
    first = meshfield.load_config("default", [*sets, "run.t_end=1200"])
    meshfield.run(first, output=str(tmp_path / "s0.h5"), checkpoint=str(tmp_path / "ck.h5")).close()
    meshfield.run(meshfield.load_config("default", [*sets, "run.t_end=1800"]), output=str(tmp_path / "s1.h5"),
                  restart=str(tmp_path / "ck.h5")).close()
    with meshfield.open_result(tmp_path / "s0.h5") as s0, meshfield.open_result(tmp_path / "s1.h5") as s1:
        assert s1.times[0] == 1200.0
        assert (onset_discard(500, s1), onset_discard(500, s0), onset_discard(500, s0, s1)) == (0.0, 500.0, 500.0)
        assert onset_discard(500, np.zeros((3, 1, 1))) == 500.0  # an array: from t = 0
    p = cli("analyze", "s1.h5", cwd=tmp_path)
    assert p.returncode == 0 and "settings: discard_ms=0, analysed_ms=600," in p.stdout, p.stderr
    p = cli("analyze", "s1.h5", "--discard", "100", cwd=tmp_path)
    assert p.returncode == 0 and "settings: discard_ms=100, analysed_ms=500," in p.stdout, p.stderr
    p = cli("compare", "s1.h5", "s1.h5", "--segment-ms", "250", cwd=tmp_path)
    assert p.returncode == 0 and "settings: discard_ms=0," in p.stdout, p.stderr
    p = cli("compare", "s0.h5", "s1.h5", "--segment-ms", "250", cwd=tmp_path)
    assert p.returncode == 2 and "remain after discarding the first 500 ms (--discard)" in p.stderr
    p = cli("plot", "s1.h5", "-o", "s1.png", "--psd", "psd.png", cwd=tmp_path)
    assert p.returncode == 0, p.stderr


def test_micro_memory_check_counts_the_spikes_of_a_block(monkeypatch, tmp_path):
    """The micro level's block arrays and spikes (at twice the theory's stationary
    rate) are counted: a run with memory for the state and the record buffers but
    not for them is refused, and info prints them."""
    import meshfield.simulation as sim
    from meshfield.coupling import build_stencils
    from meshfield.micro.model import mean_field_rate, resources
    sets = ["run.level=micro", "run.t_end=40", "lattice.shape=[12,12]", "populations.E.N=40",
            "populations.I.N=10"] + [f"couplings.{i}.delay.d0=20" for i in range(4)]
    sets += [f"couplings.{i}.C=4" for i in range(4)]
    config = meshfield.load_config(meshfield.config.packaged_config("default"), sets)
    stencils = build_stencils(config)
    rate, _ = mean_field_rate(config)
    sizes = resources(config, stencils, (12, 12), 5, (1, 1), True, rate)
    assert sizes["block_steps"] == 40 and sizes["spike_rate"] == pytest.approx(2 * rate)
    assert sizes["block_arrays_bytes"] == 40 * 144 * 50 + 5 * 8 * 40 * 2 * 144
    assert sizes["spike_bytes"] == math.ceil(48 * 2 * rate * 50 * 144 * 40 * 0.5e-3)
    buffers = sim.record_buffer_bytes(config, 144)
    # room for the build and for the loop's state, buffers and arrays, not for the spikes
    room = max(sizes["peak_bytes"], sizes["memory_bytes"] + buffers + sizes["block_arrays_bytes"])
    assert sizes["memory_bytes"] + buffers + sizes["block_bytes"] > room
    monkeypatch.setattr(sim, "node_memory_bytes", lambda: room)
    with pytest.raises(meshfield.config.ConfigError, match="the micro model needs about"):
        meshfield.run(config, output=str(tmp_path / "r.h5"))
    assert os.listdir(tmp_path) == []
    p = cli("info", *(a for s in sets for a in ("--set", s)))
    assert p.returncode == 0, p.stderr
    assert (f"plus {sizes['block_arrays_bytes'] / 2**20:.2f} MiB of arrays for a block of 40 step(s) and "
            f"{sizes['spike_bytes'] / 2**20:.2f} MiB for its spikes at {2 * rate:.1f} Hz") in p.stdout


def test_records_in_memory_are_held_once():
    """A run without an output file gathers the records of the whole lattice on
    every rank: it held the blocks' copies, the global arrays and the sum's output
    beside its input, about 2.2 times the records; now each rank fills its block
    into the global arrays and the sum is in place. numpy's allocations, traced,
    against the same model run for 2 ms (tracemalloc sees the arrays as
    allocated; zeros not yet written count in full)."""
    import tracemalloc
    uncoupled = ["lattice.shape=[12,12]", "record.interval=0.5"] + [f"couplings.{i}.C=0" for i in range(4)]

    def peak(t_end):
        config = meshfield.load_config(meshfield.config.packaged_config("default"),
                                       uncoupled + [f"run.t_end={t_end}"])
        tracemalloc.start()
        result = meshfield.run(config)
        top = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return top, result

    peak(2)  # (the first run in a process compiles and imports)
    base, _ = peak(2)
    top, result = peak(1500)
    records = 2 * 4 * 3000 * 2 * 144
    assert result.A.shape == (3000, 2, 12, 12) and 2 * result.A.nbytes == records
    # the records once, the record buffers of the run (256 records) and its other
    # arrays; before, 2.6 times the records
    assert top - base < 1.5 * records
