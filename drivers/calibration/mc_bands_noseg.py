"""log_band_average without segments (bins taken as independent): band SE vs scatter, boxcar and Hann; and the
per-site S_site_err of psd."""
import numpy as np
from common import ratio_report
from meshfield.analysis import psd, log_band_average
R = 400
rng = np.random.default_rng(10)
x = rng.standard_normal((10_000, R, 2))
for window in ("boxcar", "hann"):
    p = psd(x, 1.0, segment_ms=1000.0, window=window)
    b = log_band_average(p.freqs, p.S, p.S_err, f_min=1.0, n_bands=8)
    bs = log_band_average(p)
    print(window, "no segments:", " ".join(f"{ratio_report(b.se[i], b.value[i])['rms_se_over_sd']:.2f}" for i in range(8)))
    print(window, "segments:   ", " ".join(f"{ratio_report(bs.se[i], bs.value[i])['rms_se_over_sd']:.2f}" for i in range(8)))
    site = [ratio_report(p.S_site_err[k, :, 0], p.S_site[k, :, 0])["rms_se_over_sd"] for k in (3, 50, 300)]
    print(window, "S_site_err at 3, 50, 300 Hz:", np.round(site, 3))
