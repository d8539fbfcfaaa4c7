"""Configuration loading, overrides and validation messages."""

import math

import pytest

from meshfield.config import Config, ConfigError, apply_override, load_config, packaged_config, read_toml


def base():
    return read_toml(packaged_config("default"))


def test_every_packaged_config_loads():
    for path in packaged_config("default").parent.glob("*.toml"):
        cfg = load_config(str(path))
        assert cfg.types


def test_default_is_a_2d_periodic_ei_field():
    cfg = load_config()
    assert cfg.types == ("E", "I")
    assert len(cfg.lattice.shape) == 2 and cfg.lattice.boundary == "periodic"
    assert cfg.run.t_end >= 1000.0


def test_round_trip_through_dict():
    cfg = load_config()
    assert Config.from_dict(cfg.to_dict()) == cfg


def test_overrides_reach_nested_keys_and_array_entries():
    cfg = load_config(None, ["run.t_end=123", "couplings.1.J=0.7", "populations.E.tau_theta=[100.0]",
                             "populations.E.J_theta=[50]", "lattice.shape=[8, 6]", "run.level=micro"])
    assert cfg.run.t_end == 123.0
    assert cfg.couplings[1].J == 0.7
    assert cfg.populations[0].tau_theta == (100.0,)
    assert cfg.lattice.shape == (8, 6)
    assert cfg.run.level == "micro"


@pytest.mark.parametrize("override, words", [
    ("populations.E.tau_m=-3", ["populations.E.tau_m", "-3", "> 0"]),
    ("couplings.0.kernel.shape='mexican'", ["couplings[0].kernel.shape", "mexican", "gaussian"]),
    ("run.level='nano'", ["run.level", "nano", "micro"]),
    ("run.dt=0", ["run.dt", "> 0"]),
    ("record.interval=0.7", ["record.interval", "0.7", "multiple of run.dt"]),
    ("couplings.0.delay.d0=0.1", ["couplings[0].delay.d0", "0.1", "one step"]),
    ("populations.E.N=0", ["populations.E.N", ">= 1"]),
    ("populations.E.J_theta=[1.0]", ["populations.E.J_theta", "one entry per adaptation"]),
    ("run.seed=-1", ["run.seed", ">= 0"]),
    ("lattice.boundary='mirror'", ["lattice.boundary", "periodic", "open"]),
    ("populations.E.tau_mm=3", ["populations.E.tau_mm", "not a known key", "tau_m"]),
    ("couplings.0.source='X'", ["couplings[0].source", "'X'", "'E', 'I'"]),
    ("run.mean_field=1", ["run.mean_field", "true or false"]),
    ("lattice.shape=[2,2,2]", ["lattice.shape", "[n]", "[nx, ny]"]),
])
def test_invalid_values_name_key_value_and_what_is_allowed(override, words):
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    for w in words:
        assert w in str(info.value)


def test_mean_field_only_exists_at_the_meso_level():
    with pytest.raises(ConfigError, match="mean-field limit exists only"):
        load_config(None, ["run.level=micro", "run.mean_field=true"])


def test_malformed_toml_is_reported_with_the_file_name(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[run\nt_end = 3\n")
    with pytest.raises(ConfigError, match="bad.toml.*not valid TOML"):
        load_config(str(bad))


def test_missing_file_and_missing_populations():
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("/no/such/file.toml")
    with pytest.raises(ConfigError, match="populations is missing"):
        Config.from_dict({"run": {}})


def test_duplicate_coupling_pair_is_rejected():
    d = base()
    d["couplings"].append(dict(d["couplings"][0]))
    with pytest.raises(ConfigError, match="repeats target = 'E', source = 'E'"):
        Config.from_dict(d)


def test_kernel_defaults_and_velocity():
    cfg = load_config(None, ["couplings.0.kernel={shape='gaussian', sigma=0.1}", "couplings.0.delay={d0=2.0}"])
    k = cfg.couplings[0].kernel
    assert k.r_max == pytest.approx(0.3)  # 3 sigma by default
    assert math.isinf(cfg.couplings[0].delay.velocity)


def test_stimulus_needs_its_parameters():
    with pytest.raises(ConfigError, match=r"stimuli\[0\].width is missing"):
        load_config(None, ["stimuli=[{kind='pulse', amplitude=1.0, center=[0.1, 0.1]}]"])


def test_override_syntax_error():
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        apply_override({}, "run.t_end")
