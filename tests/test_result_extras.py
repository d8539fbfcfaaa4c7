"""The micro level's recorded spike trains and membrane potentials as read back by
``Result.spikes()`` and ``Result.voltage()`` (docs/results.md): global layout,
times, and their agreement with each other and with the records."""

import h5py
import numpy as np
import pytest

import meshfield
from meshfield.config import Config
from meshfield.io import ResultError, open_result
from test_micro_model import config_dict

U_RESET = 0.0  # meshfield's default u_reset of both types in config_dict


def micro(tmp_path, name="r.h5", t_end=40.0, **kw):
    d = config_dict(spikes_per_site=30, voltage_neurons=5)
    d["run"]["t_end"] = t_end
    meshfield.run(Config.from_dict(d), output=tmp_path / name, **kw)
    return open_result(tmp_path / name)


def test_spikes_and_voltage_have_the_global_layout_and_agree(tmp_path):
    with micro(tmp_path) as r:
        spikes = r.spikes()
        times, u = r.voltage()
        A, dt, shape = r.A, r.dt, r.shape
    assert spikes.dtype == np.int64 and spikes.shape[1] == 4
    assert np.array_equal(spikes, spikes[np.lexsort(spikes.T[::-1])])
    # all neurons of both types are recorded (30 >= N), so the spikes are the records:
    # per record (2 steps) and type, spikes / (N * 1 ms) summed over sites
    counts = np.zeros((len(A), 2) + shape)
    for step, site, kind, _ in spikes:
        counts[(step // 2, kind) + np.unravel_index(site, shape)] += 1
    n = np.array([30, 10]).reshape(1, 2, 1, 1)
    assert np.allclose(counts / n / 1e-3, A, rtol=1e-6)
    # 80 steps of u of neurons 0..4 at the end of each step, times in ms
    assert u.shape == (80, 2) + shape + (5,)
    assert np.array_equal(times, (np.arange(80) + 1) * dt)
    # a neuron that fired in a step ends it at the reset potential
    fired = spikes[spikes[:, 3] < 5]
    assert len(fired) > 20
    for step, site, kind, i in fired:
        assert u[(step, kind) + np.unravel_index(site, shape) + (i,)] == U_RESET
    # type I has 10 neurons per site: all 5 recorded are numbers
    assert np.isfinite(u).all()


def test_voltage_times_after_a_restart_start_at_the_checkpoint(tmp_path):
    micro(tmp_path, "a.h5", t_end=20.0, checkpoint=tmp_path / "c.h5").close()
    with micro(tmp_path, "b.h5", t_end=40.0, restart=tmp_path / "c.h5") as b, micro(tmp_path, "w.h5") as whole:
        times, u = b.voltage()
        times_w, u_w = whole.voltage()
        spikes_b, spikes_w = b.spikes(), whole.spikes()
    assert np.array_equal(times, times_w[40:]) and np.array_equal(u, u_w[40:])
    assert np.array_equal(spikes_b, spikes_w[spikes_w[:, 0] >= 40])


def test_meso_result_names_what_is_missing(tmp_path):
    d = config_dict()
    d["run"].update(level="meso", t_end=5.0)
    meshfield.run(Config.from_dict(d), output=tmp_path / "m.h5")
    with open_result(tmp_path / "m.h5") as r:
        with pytest.raises(ResultError, match=r"no spike trains \(level 'meso', record.spikes_per_site = 0\)"):
            r.spikes()
        with pytest.raises(ResultError, match=r"no membrane potentials .*--set record.voltage_neurons=K"):
            r.voltage()


def test_a_changed_byte_in_the_spike_trains_fails_its_checksum(tmp_path):
    """Recorded spikes and voltages carry HDF5's fletcher32 checksum, as the records do."""
    micro(tmp_path).close()
    block = tmp_path / "r.h5.blocks" / "rank00000.h5"
    with h5py.File(block, "r") as f:
        assert f["extra/spikes"].fletcher32 and f["extra/voltage"].fletcher32
        info = f["extra/spikes"].id.get_chunk_info(0)
    with open(block, "r+b") as fh:
        fh.seek(info.byte_offset + 8)
        fh.write(b"\x7f" * 4)
    with open_result(tmp_path / "r.h5") as r, pytest.raises(ResultError) as error:
        r.spikes()
    assert str(error.value) == (f"{tmp_path / 'r.h5'}: cannot read extra dataset 'spikes' of rank00000 (block file "
                                f"r.h5.blocks/rank00000.h5): it fails its checksum (its bytes changed after it "
                                f"was written); the result is damaged (copy it again together with its block "
                                f"folder, or rerun)")


def test_spikes_and_voltage_reach_the_block_file_during_the_run(tmp_path, monkeypatch):
    """They are appended whenever EXTRA_FLUSH_BYTES have gathered, not held to the
    end of the run (a run recording the voltage of many neurons ran out of
    memory): flushed after every block, the result is the same."""
    from meshfield import simulation
    from meshfield.io import Recorder
    calls = []
    append = Recorder.append_extra

    def counted(self, name, array, attrs=None):
        calls.append((name, len(array)))
        return append(self, name, array, attrs)

    with micro(tmp_path, "whole.h5") as r:
        whole = r.spikes(), r.voltage()
    monkeypatch.setattr(Recorder, "append_extra", counted)
    monkeypatch.setattr(simulation, "EXTRA_FLUSH_BYTES", 1)
    with micro(tmp_path, "pieces.h5") as r:
        pieces = r.spikes(), r.voltage()
    np.testing.assert_array_equal(pieces[0], whole[0])
    np.testing.assert_array_equal(pieces[1][0], whole[1][0])
    np.testing.assert_array_equal(pieces[1][1], whole[1][1])
    # one empty call creates the spikes, then one call per block of d_min steps
    voltage_rows = [n for name, n in calls if name == "voltage"]
    assert calls[0] == ("spikes", 0) and sum(voltage_rows) == 80 and len(voltage_rows) == 80 // max(voltage_rows)
    assert len(voltage_rows) > 1
