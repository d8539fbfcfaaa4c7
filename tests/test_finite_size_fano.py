"""Short version of drivers/finite_size_fano.py: the spike-count Fano factors of V1's
uncoupled populations at both levels (4 sites, 4 s; the driver runs 8 sites, 40 s).

Expected from the driver's run (docs/validation_v1356.md): F = 0.99-1.01 at 0.5 ms
(binomial counts of a 24 Hz population), 0.70-0.75 (plain) and 0.87-0.90
(adapting) at 10 ms, 0.13-0.14 (plain) at 100 ms. Here the standard errors are
about sqrt(20) = 4.5 times the driver's (0.01 at 0.5 ms, 0.03 at 10 ms, 0.02 at
100 ms), so the bounds below are 4 or more of them wide.
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "drivers"))

import finite_size_fano  # noqa: E402


def test_fano_factors_of_both_levels():
    data, _ = finite_size_fano.compute(sites=4, t_sim=4000.0, nest=False)
    w = list(data["windows_ms"])
    assert data["types"] == ["plain", "adapting"] and w[0] == 0.5 and w[3] == 10.0 and w[-1] == 100.0
    for level in ("micro", "meso"):
        F = np.asarray(data["fano"][level])
        assert np.all(np.abs(F[0] - 1.0) < 0.05), (level, F[0])
        assert 0.6 < F[3, 0] < 0.87 and 0.76 < F[3, 1] < 1.0, (level, F[3])
        assert 0.04 < F[-1, 0] < 0.25, (level, F[-1])
        # counts become more regular with longer windows (refractoriness)
        assert np.all(np.diff(F[:, 0]) < 0.05), (level, F[:, 0])
