"""psd band SE when the 1-s segments are not long against the correlation time: a random telegraph signal
with mean dwell 200 ms and 1 s (correlation time half the mean dwell), 20 segments of 1 s."""
import numpy as np
from common import ratio_report
from meshfield.analysis import psd
from meshfield.analysis.spectra import validation_bands

R = 400
rng = np.random.default_rng(8)
for dwell in (50.0, 200.0, 1000.0):
    n_time = 20_000
    flips = rng.random((n_time, R)) < 1.0 / dwell
    x = np.where(np.cumsum(flips, axis=0) % 2 == 0, 1.0, -1.0) + 0.3 * rng.standard_normal((n_time, R))
    p = psd(x, 1.0, segment_ms=1000.0, per_site=False)
    b, _ = validation_bands(p, 1.0)
    print(f"telegraph, mean dwell {dwell:g} ms (correlation time {dwell/2:g} ms), 20 segments of 1 s:")
    for i in range(4):
        r = ratio_report(b.se[i], b.value[i])
        print(f"   band {b.f_lo[i]:.3g}-{b.f_hi[i]:.3g} Hz: RMS(SE)/SD={r['rms_se_over_sd']:.3f}±{r['mc']:.3f}")
