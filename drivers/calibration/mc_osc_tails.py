"""oscillation's frequency_err for a broad AR(2) peak: quantiles of err/SD (heavy tail of the jackknife of a peak bin)."""
import numpy as np
from scipy.signal import lfilter
from meshfield.analysis import oscillation
R = 300
rng = np.random.default_rng(9)
for r, n_seg in ((0.99, 10), (0.99, 40), (0.998, 10), (0.998, 40)):
    w = 2 * np.pi * 20e-3
    e = rng.standard_normal((n_seg * 1000 + 3000, R))
    x = lfilter([1.0], [1.0, -2 * r * np.cos(w), r * r], e, axis=0)[3000:]
    o = oscillation(10 + x + 3 * rng.standard_normal(x.shape), 1.0)
    sd = o.frequency.std(ddof=1)
    q = np.quantile(o.frequency_err / sd, [0.1, 0.5, 0.9, 0.99])
    print(f"AR(2) r={r} (peak FWHM {(1-r)/np.pi*1000:.1f} Hz), {n_seg} segments: SD of f0 {sd:.3f} Hz; "
          f"err/SD quantiles 10/50/90/99 %: {np.round(q, 2)}; mean {np.mean(o.frequency_err)/sd:.2f}, RMS {np.sqrt(np.mean(o.frequency_err**2))/sd:.2f}")
