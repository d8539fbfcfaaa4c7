"""Short version of validation study V6, part 1 (drivers/v6_numerics.py): dt -> 0.

The rank-invariance part of V6 is tested by tests/test_invariance_mpi.py.
Single uncoupled population without adaptation (the ``plain`` type of
v1_single.toml), where both levels' discrete theories are exact.
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "drivers"))

import _validation as val  # noqa: E402
import v6_numerics as v6  # noqa: E402


def plain(N=None):
    d = val.load(v6.SINGLE).to_dict()
    d["populations"] = {"plain": d["populations"]["plain"]}
    if N is not None:
        d["populations"]["plain"]["N"] = N
    return d


def test_mean_field_converges_at_first_order():
    """Mean field at dt = 0.5, 0.25, 0.1 ms: equal to the discrete theory at each dt
    (round-off), and its error against the continuous theory falls like dt
    (observed order between 0.8 and 1.2)."""
    mf = v6.mean_field_convergence(plain(), v6.DTS, t_end=1500.0, window=500.0)
    assert all(r["passed_discrete"] for r in mf["rows"])
    errors = np.array([r["error_vs_continuous"][0] for r in mf["rows"]])
    assert np.all(np.abs(errors) < 0.01)
    assert np.all(np.diff(np.abs(errors)) < 0)
    for order in mf["order"][0]:
        assert 0.8 < order < 1.2


def test_finite_size_levels_converge_together():
    """N = 400, 6 s per level at dt = 0.5 and 0.1 ms. The micro-meso difference of the
    mean rate equals the difference of the two discrete theories (hazard rules)
    within 3 combined batch-means SE at both steps, and that predicted difference
    shrinks about fivefold from dt = 0.5 to 0.1 ms (first order)."""
    fs = v6.finite_size_convergence(plain(N=400), (0.5, 0.1), t_sim=6000.0, discard=500.0, seed=4)
    rows = fs["rows"]
    for r in rows:
        d = r["meso_minus_micro"][0]
        assert abs(d - r["predicted_meso_minus_micro"][0]) <= 3 * r["meso_minus_micro_se"][0], r
        # each level is within 3 SE + 1 % of the continuous theory
        for level in ("micro", "meso"):
            err = abs(r[level]["mean"][0] - r["continuous"][0])
            assert err <= 3 * r[level]["se"][0] + 0.01 * r["continuous"][0]
    ratio = rows[0]["predicted_meso_minus_micro"][0] / rows[1]["predicted_meso_minus_micro"][0]
    assert 3.5 < ratio < 6.5
