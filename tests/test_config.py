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


def test_threshold_jumps_must_be_finite():
    """J_theta / tau_theta beyond double precision made the meso kernel's firing
    probabilities NaN: a RandomArgumentError traceback mid-run."""
    with pytest.raises(ConfigError, match=r"populations.E.J_theta = \[1e\+300\] is invalid: the threshold jumps "
                                          r"per spike J_theta / tau_theta \(tau_theta = \[1e-10\]\) must sum to a finite"):
        load_config(None, ["populations.E.J_theta=[1e300]", "populations.E.tau_theta=[1e-10]"])
    load_config(None, ["populations.E.J_theta=[1e300]", "populations.E.tau_theta=[1.0]"])


def test_facilitation_beyond_the_quasi_renewal_thresholds_range_is_refused_at_the_meso_level():
    """Negative J_theta / tau_theta beyond 700 delta_u overflowed exp(-eps_theta/delta_u)
    in the meso model: NaN probabilities and a SystemError traceback mid-run."""
    tau = ["populations.E.tau_theta=[100.0, 50.0]", "populations.E.delta_u=2.0"]
    # -(-100000/100 - 20000/50) = 1400 = 700 * 2.0: the largest allowed; 30000 more is not
    load_config(None, tau + ["populations.E.J_theta=[-100000.0, -20000.0]"])
    with pytest.raises(ConfigError) as info:
        load_config(None, tau + ["populations.E.J_theta=[-100000.0, -50000.0]"])
    for w in ("populations.E.J_theta = [-100000.0, -50000.0]", "sum to 2000 mV", "at most 700 delta_u = 1400 mV"):
        assert w in str(info.value)
    # positive jumps (adaptation) do not count, terms of equal tau_theta act as one,
    # and the micro level has no such threshold
    load_config(None, tau + ["populations.E.J_theta=[-100000.0, 1e6]"])
    load_config(None, ["populations.E.tau_theta=[10.0, 10.0]", "populations.E.J_theta=[20000.0, -20000.0]"])
    load_config(None, tau + ["populations.E.J_theta=[-1e300, 0.0]", "run.level=micro"])


def test_a_refractory_period_beyond_the_step_counter_is_refused_at_the_micro_level():
    """An OverflowError traceback building the neuron parameters (the meso level
    refuses it by the history length, tests/test_meso.py)."""
    with pytest.raises(ConfigError) as info:
        load_config(None, ["run.level=micro", "populations.I.t_ref=1e300"])
    for w in ("populations.I.t_ref = 1e+300", "2e+300 steps of run.dt = 0.5 ms", "2**48 - 1"):
        assert w in str(info.value)


def test_mean_field_only_exists_at_the_meso_level():
    with pytest.raises(ConfigError, match="mean-field limit exists only"):
        load_config(None, ["run.level=micro", "run.mean_field=true"])


def test_malformed_toml_is_reported_with_the_file_name(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[run\nt_end = 3\n")
    with pytest.raises(ConfigError, match="bad.toml.*not valid TOML"):
        load_config(str(bad))


def test_a_missing_configuration_suggests_the_likely_slip(tmp_path, monkeypatch):
    from meshfield.config import PACKAGED

    monkeypatch.chdir(tmp_path)
    (tmp_path / "myf.toml").write_text("")
    with pytest.raises(ConfigError) as err:
        load_config("myf")
    assert str(err.value) == "configuration file 'myf' does not exist; did you mean 'myf.toml'?"
    with pytest.raises(ConfigError) as err:
        load_config("defualt")
    assert str(err.value) == ("configuration file 'defualt' does not exist, nor is it a packaged configuration "
                              f"(available: {', '.join(sorted(PACKAGED))})") and "default, " in str(err.value)
    for name in ("sub/defualt", "nosuch.toml"):  # a path or a file name: no list of packaged names
        with pytest.raises(ConfigError) as err:
            load_config(name)
        assert str(err.value) == f"configuration file {name!r} does not exist"


def test_missing_file_and_missing_populations():
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("/no/such/file.toml")
    with pytest.raises(ConfigError, match="populations is missing"):
        Config.from_dict({"run": {}})


def test_a_type_name_misspelt_in_set_is_named_with_the_types_there_are():
    """--set populations.E.K=9 on a configuration whose types are plain and
    adapting makes a new table E without N and mu: the message lists the types."""
    with pytest.raises(ConfigError) as err:
        load_config("v1_single", ["populations.E.K=9"])
    assert str(err.value) == ("populations.E.N is missing; every population needs N and mu (the configuration's "
                              "types are plain, adapting: is 'E' misspelt?)")
    # a single incomplete type has no others to suggest
    with pytest.raises(ConfigError) as err:
        Config.from_dict({"populations": {"E": {"N": 10}}})
    assert str(err.value) == "populations.E.mu is missing; every population needs N and mu"


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


# --------------------------------------------------------------------------- upper bounds and clear messages


def v3(*overrides):
    """The packaged v3_field configuration with a short run and ``overrides``."""
    return load_config("v3_field", ["run.t_end=300", *overrides])


def assert_config_error(overrides, words, path="v3_field"):
    with pytest.raises(ConfigError) as info:
        load_config(path, ["run.t_end=300", *overrides])
    for w in words:
        assert w in str(info.value), (w, str(info.value))
    return str(info.value)


def test_limits_match_the_engines():
    from meshfield import config, random
    from meshfield.micro.neurons import IDENT_TYPE_STRIDE
    assert config.N_MAX_MESO == random.N_END - 1
    assert config.N_MAX_MICRO == IDENT_TYPE_STRIDE - 1
    assert config.TYPES_MAX_MICRO == random.IDENT_END // IDENT_TYPE_STRIDE
    assert config.COUNTER_MAX == random.STEP_END - 1
    assert config.SITES_MAX == random.SITE_END


@pytest.mark.parametrize("overrides, words", [
    (["populations.E.N=100000000000000000000"],
     ["populations.E.N", "100000000000000000000", "9007199254740991"]),
    (["populations.E.N=100000000000000000000", "run.level=micro"],
     ["populations.E.N", "100000000000000000000", "16777215", "micro"]),
    (["populations.I.N=16777216", "run.level=micro"], ["populations.I.N", "16777216", "16777215"]),
    (["couplings.0.C=100000000000000000000"],
     ["couplings[0].C", "100000000000000000000", "9223372036854775807"]),
    (["couplings.0.C=100000000000000000000", "run.level=micro"],
     ["couplings[0].C", "100000000000000000000", "9223372036854775807"]),
    (["couplings.0.C=200000000000000", "couplings.2.C=200000000000000", "run.level=micro"],
     ["couplings[2].C", "200000000000000", "281474976710655", "'E'"]),
])
def test_population_sizes_and_in_degrees_must_fit_the_engine_integers(overrides, words):
    assert_config_error(overrides, words)


def test_largest_allowed_sizes_are_accepted():
    assert v3("populations.E.N=9007199254740991").population("E").N == 2**53 - 1
    assert v3("populations.E.N=16777215", "run.level=micro").population("E").N == 2**24 - 1
    assert v3("couplings.0.C=9223372036854775807").couplings[0].C == 2**63 - 1


def test_micro_network_size_must_fit_int64():
    # 2**32 sites x 200 types x (2**24 - 1) neurons overflows the int64 neuron ids ...
    d = {"run": {"level": "micro", "t_end": 10.0}, "lattice": {"shape": [65536, 65536]},
         "populations": {f"P{k}": {"N": 2**24 - 1, "mu": 10.0} for k in range(200)}}
    with pytest.raises(ConfigError) as info:
        Config.from_dict(d)
    for w in ("populations.P0.N", "16777215", "int64", "9223372036854775807"):
        assert w in str(info.value)
    # the micro level allows 2**32 / 2**24 = 256 types (32-bit idents)
    d["lattice"]["shape"] = [1]
    d["populations"] = {f"P{k}": {"N": 1, "mu": 10.0} for k in range(257)}
    with pytest.raises(ConfigError, match="at most 256 types"):
        Config.from_dict(d)
    # ... and 2**32 sites x 400 x 2**40 the synapse indices
    assert_config_error(["lattice.shape=[65536, 65536]", "couplings.0.C=1099511627776", "run.level=micro",
                         "couplings.0.kernel={shape='delta'}", "couplings.1.kernel={shape='delta'}",
                         "couplings.2.kernel={shape='delta'}", "couplings.3.kernel={shape='delta'}"],
                        ["couplings[0].C", "1099511627776", "synapses", "9223372036854775807"])


@pytest.mark.parametrize("overrides, words", [
    (["populations.E.K=100000000000000000000"],
     ["populations.E.K", "100000000000000000000", "20000000", "run.dt = 0.5"]),
    (["populations.E.K=30000000"], ["populations.E.K", "30000000", "20000000"]),
    (["lattice.shape=[100000, 100000]"], ["lattice.shape", "[100000, 100000]", "4294967296"]),
    (["run.dt=1e-300"], ["run.t_end", "run.dt", "1e-300", "281474976710655"]),
    (["run.t_end=1e300"], ["run.t_end", "1e+300", "281474976710655"]),
])
def test_history_length_lattice_and_steps_are_bounded(overrides, words):
    assert_config_error(overrides, words)


def test_largest_history_length_is_accepted():
    assert v3("populations.E.K=20000000").population("E").K == 20_000_000


def test_micro_self_coupling_with_offset_zero_needs_two_neurons():
    """Refused (ConfigError) when the connectivity is built, before anything is drawn or written."""
    from mpi4py import MPI

    from meshfield.coupling import build_stencils
    from meshfield.micro import MicroModel
    from meshfield.simulation import make_decomposition

    def build(*overrides):
        cfg = v3("run.t_end=20", "lattice.shape=[3, 3]", "couplings.1.kernel={shape='delta'}",
                 "couplings.2.kernel={shape='delta'}", "couplings.3.kernel={shape='delta'}", *overrides)
        stencils = build_stencils(cfg)
        return MicroModel(cfg, make_decomposition(cfg, MPI.COMM_SELF, stencils=stencils), stencils)

    words = ["couplings[0]", "populations.E.N", "populations.E.N = 1", ">= 2", "micro"]
    for kernel in ("{shape='delta'}", "{shape='gaussian', sigma=0.1, r_max=0.1}"):
        with pytest.raises(ConfigError) as info:
            build("run.level=micro", "populations.E.N=1", f"couplings.0.kernel={kernel}")
        for w in words:
            assert w in str(info.value)
    # a custom kernel without offset 0, or C = 0, are fine
    build("run.level=micro", "populations.E.N=1",
          "couplings.0.kernel={shape='custom', weights=[[1, 0, 1.0], [-1, 0, 1.0]]}")
    build("run.level=micro", "populations.E.N=1", "couplings.0.C=0")


def test_micro_self_coupling_error_reaches_the_cli_as_one_line(tmp_path):
    import subprocess
    import sys
    out = tmp_path / "a.h5"
    p = subprocess.run([sys.executable, "-m", "meshfield.cli", "run", "v3_field", "--set", "run.t_end=20",
                        "--set", "populations.E.N=1", "--set", "couplings.0.kernel={shape='delta'}",
                        "--level", "micro", "-o", str(out)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("meshfield: error: couplings[0]")
    assert "populations.E.N = 1" in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_micro_self_coupling_check_matches_the_connectivity_build():
    """The configuration check catches exactly what build_connectivity refuses."""
    from mpi4py import MPI

    from meshfield.coupling import build_stencils
    from meshfield.micro import MicroModel
    from meshfield.simulation import make_decomposition
    cfg = v3("run.level=micro", "populations.E.N=1", "populations.I.N=2", "lattice.shape=[3, 3]",
             "couplings.0.kernel={shape='custom', weights=[[1, 0, 1.0], [-1, 0, 1.0]]}",
             "couplings.1.kernel={shape='delta'}", "couplings.2.kernel={shape='delta'}",
             "couplings.3.kernel={shape='delta'}")
    stencils = build_stencils(cfg)
    MicroModel(cfg, make_decomposition(cfg, MPI.COMM_SELF, stencils=stencils), stencils)


@pytest.mark.parametrize("override, words", [
    ("run.dt.x=3", ["run.dt.x", "run.dt is a value", "a number", "0.5", "not a table"]),
    ("couplings.0.kernel.shape.x=1",
     ["couplings.0.kernel.shape.x", "couplings.0.kernel.shape is a value", "a string", "not a table"]),
    ("populations.E.N.y.z=1", ["populations.E.N.y.z", "populations.E.N is a value", "an integer", "400"]),
])
def test_override_below_a_value_names_the_key(override, words):
    assert_config_error([override], words)


@pytest.mark.parametrize("override, words", [
    ("=3", ["'=3'", "the key is empty"]),
    (" =3", ["the key is empty"]),
    ("run..t_end=3", ["run..t_end", "empty part"]),
    ("run.=3", ["run.", "empty part"]),
])
def test_override_with_an_empty_key(override, words):
    with pytest.raises(ConfigError) as info:
        apply_override({}, override)
    for w in words:
        assert w in str(info.value)


def test_file_that_is_not_utf8_is_reported_with_the_file_name(tmp_path):
    bad = tmp_path / "bin.toml"
    bad.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ConfigError) as info:
        load_config(str(bad))
    for w in ("bin.toml", "not valid UTF-8 TOML", "0xff"):
        assert w in str(info.value)


@pytest.mark.parametrize("populations, words", [
    ([1], ["populations = [1]", "found an array", "table of tables, one per type"]),
    (3, ["populations = 3", "found an integer", "table of tables, one per type"]),
    ("E", ["populations = 'E'", "found a string"]),
    ({}, ["populations is empty"]),
    ({"": {"N": 10, "mu": 1.0}}, ["populations.''", "type name is empty"]),
])
def test_populations_of_the_wrong_type_or_with_empty_names(populations, words):
    d = base()
    d["populations"] = populations
    with pytest.raises(ConfigError) as info:
        Config.from_dict(d)
    for w in words:
        assert w in str(info.value)
    assert "is missing" not in str(info.value)


@pytest.mark.parametrize("name, words", [
    ("a.b", ["populations.'a.b'", "holds '.'", "ASCII letters, digits, '_' and '-'", "--set"]),
    ("x/y", ["populations.'x/y'", "holds '/'"]),
    (".", ["populations.'.'", "holds '.'"]),
    ("E I", ["populations.'E I'", "holds ' '"]),
    ("E\u03b1", ["holds '\u03b1'"]),
    ("hist", ["populations.'hist'", "is reserved"]),
])
def test_type_names_that_set_paths_or_checkpoints_cannot_hold_are_refused(name, words):
    # before: these passed validation; '.', '/' and 'hist' then failed at the checkpoint
    # write after the whole run, and 'a.b' could not be addressed by --set
    d = base()
    d["populations"] = {name: d["populations"]["E"]}
    d["couplings"], d["stimuli"] = [], []
    with pytest.raises(ConfigError) as info:
        Config.from_dict(d)
    for w in words:
        assert w in str(info.value)


def test_type_names_of_letters_digits_underscores_and_hyphens_are_accepted():
    d = base()
    d["populations"] = {"E_23-b": d["populations"]["E"]}
    d["couplings"], d["stimuli"] = [], []
    assert Config.from_dict(d).types == ("E_23-b",)


def test_empty_type_name_in_a_file_names_populations(tmp_path):
    path = tmp_path / "empty.toml"
    path.write_text('[populations.""]\nN = 10\nmu = 1.0\n')
    with pytest.raises(ConfigError, match=r"populations\.''.*type name is empty"):
        load_config(str(path))


def test_empty_key_name_in_a_table():
    d = base()
    d["run"][""] = 3
    with pytest.raises(ConfigError, match=r"empty key name.*\[run\]"):
        Config.from_dict(d)


def test_a_repeated_custom_offset_is_named_by_its_row():
    """The message used to quote '[[0, 0]]', a value nobody wrote."""
    msg = assert_config_error(["couplings.0.kernel={shape='custom', weights=[[0, 0, 1.0], [1, 0, 0.5], [0, 0, 2.0]]}"],
                              [])
    assert msg == ("couplings[0].kernel.weights[2] = [0, 0, 2.0] is invalid: it repeats the offset [0, 0] "
                   "of weights[0]; each offset may appear once")


def test_a_stimulus_names_each_type_once():
    msg = assert_config_error(["stimuli=[{kind='step', amplitude=3.0, types=['E', 'I', 'E']}]"], [])
    assert msg == ("stimuli[0].types = ['E', 'I', 'E'] is invalid: each type may appear once (a stimulus acts "
                   "once on each type it names; listing a type twice would not double its amplitude)")


def test_kernels_that_are_zero_everywhere_say_why():
    msg = assert_config_error(["couplings.0.kernel={shape='custom', weights=[[0, 0, 0.0], [1, 0, 0]]}"],
                              ["couplings[0].kernel.weights", "[[0, 0, 0.0], [1, 0, 0]]", "all zero"])
    assert "r_max" not in msg
    # a DoG kernel whose surround cancels its centre everywhere: w >= (s_s / s_c)**ndim
    msg = assert_config_error(["couplings.0.kernel={shape='dog', sigma_center=0.1, sigma_surround=0.2, "
                               "surround_weight=4.0}"],
                              ["couplings[0].kernel.surround_weight", "4.0", "< (sigma_surround/sigma_center)**2 = 4"])
    assert "increase r_max" not in msg
    # exactly at the bound in 1-D the two Gaussians leave a rounding residue of
    # 4e-16 at offset 0, which normalization would have made a delta kernel
    assert_config_error(["lattice.shape=[64]", "couplings.0.kernel={shape='dog', sigma_center=0.1, "
                         "sigma_surround=0.3, surround_weight=3.0}"],
                        ["couplings[0].kernel.surround_weight", "3.0", "< (sigma_surround/sigma_center)**1 = 3"])
    from meshfield.coupling import build_stencils
    cfg = v3("couplings.0.kernel={shape='dog', sigma_center=0.1, sigma_surround=0.2, surround_weight=3.9, "
             "r_max=0.3}")
    assert build_stencils(cfg)[0].weights.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("key", ["spikes_per_site", "voltage_neurons"])
def test_recorded_neurons_per_site_are_at_most_the_largest_population(key):
    for level in ("meso", "micro"):
        assert_config_error([f"record.{key}=1000", f"run.level={level}"],
                            [f"record.{key}", "1000", "400", "E: 400, I: 100"])
    # between the smallest and the largest N: all of I and the first neurons of E
    assert getattr(v3(f"record.{key}=400", "run.level=micro").record, key) == 400


def test_step_limit_allows_exactly_2_48_minus_1_steps():
    """The step counter of the random numbers is < 2**48: steps 0 ... 2**48 - 2 are simulated."""
    cfg = load_config(None, [f"run.t_end={(2**48 - 1) * 0.5}", "run.dt=0.5"])
    assert cfg.run.n_steps == 2**48 - 1
    msg = assert_config_error([f"run.t_end={2**47}", "run.dt=0.5"],
                              ["run.t_end", "281474976710656 steps", "at most 2**48 - 1 = 281474976710655"],
                              path="default")
    assert "inf" not in msg


def test_stimulus_types_must_not_be_empty():
    assert_config_error(["stimuli.0.types=[]"],
                        ["stimuli[0].types = [] is invalid", "non-empty list of type names", "'E', 'I'"],
                        path="default")
    assert load_config(None, ["stimuli.0.types=['I']"]).stimuli[0].types == ("I",)


@pytest.mark.parametrize("key", ["couplings.\u00b2", "couplings.\u00b2.J", "couplings.\u0663.J"])
def test_override_index_must_be_ascii_digits(key):
    """'²' and Arabic-Indic digits pass str.isdigit() but are no array index."""
    with pytest.raises(ConfigError, match="index"):
        load_config(None, [f"{key}=5"])


@pytest.mark.parametrize("key, dotted", [("couplings[2].J", "couplings.2.J"),
                                          ("stimuli[0].amplitude", "stimuli.0.amplitude"),
                                          ("couplings[ 1 ].delay.d0", "couplings.1.delay.d0")])
def test_override_with_a_bracketed_index_suggests_the_dotted_key(key, dotted):
    """Messages name list entries as ``couplings[2]``; a user who types that back
    into --set is told the dotted form instead of 'not a known key'."""
    with pytest.raises(ConfigError) as exc:
        load_config(None, [f"{key}=5"])
    assert f"as in {dotted}=5" in str(exc.value)


@pytest.mark.parametrize("key", ["populations[0].N", "couplings[\u0662].J", "couplings[2]J", "couplings.[2].J",
                                 "populations.E.N[0]"])
def test_other_brackets_get_no_suggestion(key):
    """Only couplings[i] and stimuli[i], as messages write them, are rewritten; other
    brackets get the ordinary error, not an invalid suggestion."""
    with pytest.raises(ConfigError) as exc:
        load_config(None, [f"{key}=5"])
    assert "as in" not in str(exc.value)


def test_delay_d0_beyond_the_step_counter_is_refused():
    assert_config_error(["couplings.0.delay.d0=1e300"],
                        ["couplings[0].delay.d0 = 1e+300", "2e+300 steps", "281474976710655"])
    # d0 / dt overflows to inf
    assert_config_error(["run.dt=1e-10", "record.interval=1e-10", "couplings.0.delay.d0=1e300"],
                        ["couplings[0].delay.d0 = 1e+300", "inf steps", "281474976710655"])


def test_integers_beyond_float_and_numpy_scalars():
    """TOML integers have no size limit: one beyond float's range was an
    OverflowError traceback; it is now refused by key, with its size instead of
    its digits. NumPy scalars from a script are numbers like any other (they
    were refused as 'expected an integer' / 'expected a number')."""
    import numpy as np

    msg = assert_config_error(["run.t_end=1" + "0" * 400],
                              ["run.t_end = 100000... (401 digits) is invalid: expected a finite number"])
    assert "0" * 20 not in msg
    assert_config_error(["couplings.0.J=-1" + "0" * 330], ["couplings[0].J = -100000... (331 digits)"])
    d = load_config("v3_field").to_dict()
    d["populations"]["E"]["N"] = np.int64(40)
    d["run"]["dt"] = np.float32(0.25)
    cfg = Config.from_dict(d)
    assert (cfg.population("E").N, cfg.run.dt) == (40, 0.25)
    assert type(cfg.population("E").N) is int and type(cfg.run.dt) is float


def test_numpy_arrays_and_booleans_in_a_dict_are_read_as_toml_lists_and_booleans():
    """A script's np.array([16, 16]) for a shape, an array of adaptation time
    constants or an np.bool_ were refused ('expected a list of numbers', 'expected
    true or false', with a repr like array([100.])); they now load as the lists
    and booleans they stand for, and a wrong one is named as a TOML list."""
    import numpy as np

    plain = load_config("v3_field", ["populations.E.tau_theta=[100.0]", "populations.E.J_theta=[10.0]"])
    d = load_config("v3_field").to_dict()
    d["lattice"]["shape"] = np.array(d["lattice"]["shape"])
    d["populations"]["E"]["tau_theta"] = np.array([100.0])
    d["populations"]["E"]["J_theta"] = np.linspace(10.0, 10.0, 1)
    d["run"]["mean_field"] = np.bool_(False)
    d["run"]["t_end"] = np.array(plain.run.t_end)  # a 0-d array is its value
    assert load_config(d) == plain
    d["lattice"]["shape"] = np.array([4, 4, 2])
    with pytest.raises(ConfigError, match=r"^lattice.shape = \[4, 4, 2\] is invalid: expected \[n\]"):
        load_config(d)
    d["lattice"]["shape"] = plain.lattice.shape
    d["run"]["mean_field"] = np.float64(1.0)
    with pytest.raises(ConfigError, match=r"^run.mean_field = 1.0 is invalid: expected true or false$"):
        load_config(d)


def test_load_config_and_run_take_overrides_for_a_config_and_refuse_malformed_ones(tmp_path):
    """meshfield.run(Config, overrides=...) ignored the overrides and ran the
    Config as it was; a string of overrides was taken character by character,
    and a number among them or a config of the wrong type was a TypeError."""
    import meshfield

    base = load_config("v3_field", ["run.t_end=4"])
    assert load_config(base, ["run.t_end=6"]).run.t_end == 6.0
    assert load_config(base, (a for a in ["run.seed=9"])).run.seed == 9   # any iterable, once
    with pytest.raises(ConfigError, match=r"run.t_end = -1 is invalid"):
        meshfield.run(base, overrides=["run.t_end=-1"])
    result = meshfield.run(base, overrides=["run.t_end=2"])
    assert result.A.shape[0] == 2
    for bad in ("run.t_end=5", [5], 5):
        with pytest.raises(ConfigError, match=r"overrides = .* is invalid: expected a list of 'KEY=VALUE' strings"):
            load_config("v3_field", bad)
    for bad in (123, []):
        with pytest.raises(ConfigError, match=r"configuration .* is invalid: expected a TOML file's path"):
            load_config(bad)


# -- the message forms listed in docs/configuration.md are the messages given ---------

def _docs_message_forms() -> list[str]:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "configuration.md").read_text(encoding="utf-8")
    block = text.split("message forms:", 1)[1].split("```", 2)[1]
    return [line for line in block.splitlines() if line.strip()]


def _message(overrides=(), path=None) -> str:
    from meshfield.coupling import build_stencils

    with pytest.raises(ConfigError) as err:
        build_stencils(load_config(path or "default", list(overrides)))
    return str(err.value)


def test_message_forms_in_the_docs_are_those_the_code_gives(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bin.toml").write_bytes(b"\xff")
    produced = [
        _message(["run.dt=-1"]),
        _message(["run.level=foo"]),
        _message(["run.foo=1"]),
        _message(["populations.E.tau_theta=[100.0]", "populations.E.J_theta=[]"]),
        _message(["couplings.0.kernel={shape='tophat'}"]),
        _message(["populations.E.K=9"], path="v1_single"),
        _message(["couplings.0.delay.d0=0.1"]),
        _message(["record.interval=0.7"]),
        _message(["couplings.0.kernel.r_max=0.9"]),
        _message(["run.level=micro", "populations.E.N=100000000000000000000"]),
        _message(["run.dt.x=3"]),
        _message(path="bin.toml"),
        _message(["run.t_end=1" + "0" * 400]),
    ]
    assert _docs_message_forms() == produced


def test_messages_quote_values_as_toml_writes_them():
    """Not Python's reprs (True, datetime.date(1979, 5, 27)): the user wrote TOML."""
    for override, expected in [
        ("run.seed=true", "run.seed = true is invalid: expected an integer"),
        ("run.t_end=1979-05-27", "run.t_end = 1979-05-27 is invalid: expected a number"),
        ("lattice.shape=[true, 3]", "lattice.shape[0] = true is invalid: expected an integer"),
        ("run.level=foo", "run.level = 'foo' is invalid: allowed: 'meso', 'micro'"),
    ]:
        with pytest.raises(ConfigError) as err:
            load_config("default", [override])
        assert str(err.value) == expected
