"""psd: per-bin S_err and band SE (log_band_average/validation_bands, as compare uses them) vs the
scatter over replicas; bias against the true spectrum; false failures of the band rule (3 SE, and 3 SE or 20 %)."""
import sys
import numpy as np
from scipy import stats
from common import ar1, ratio_report, exceed_rate
from meshfield.analysis import psd
from meshfield.analysis.spectra import validation_bands

R = int(sys.argv[1]) if len(sys.argv) > 1 else 400
dt = 1.0
rng = np.random.default_rng(2)
L = 1000  # 1-s segments at 1 ms
for label, tau, n_sites in (("white", None, 1), ("AR1 tau=10ms", 10.0, 1), ("AR1 tau=10ms, 4 indep sites", 10.0, 4)):
    for n_seg in (2, 4, 10, 40):
        n_time = n_seg * L
        def make():
            if tau is None:
                return rng.standard_normal((n_time, R, n_sites))
            return ar1(rng, n_time, (R, n_sites), tau)
        A, B = make(), make()
        pa, pb = psd(A, dt, segment_ms=1000.0, per_site=False), psd(B, dt, segment_ms=1000.0, per_site=False)
        f = pa.freqs
        # true two-sided density of the sampled process, Hz, and the exact expectation of a boxcar periodogram
        dts = dt * 1e-3
        if tau is None:
            S_true = np.full(f.size, dts)
            S_exp = S_true.copy()
        else:
            a = np.exp(-dt / tau)
            S_true = dts * (1 - a * a) / np.abs(1 - a * np.exp(-2j * np.pi * f * dts)) ** 2
            m = np.arange(-(L - 1), L)
            c = a ** np.abs(m)
            S_exp = dts / L * np.real(np.exp(-2j * np.pi * np.outer(np.arange(f.size), m) / L) @ ((L - np.abs(m)) * c))
        sel = np.array([1, 2, 10, 100, 499])
        rb = ratio_report(pa.S_err[sel], pa.S[sel] / S_exp[sel, None])  # per-bin: pooled over bins after scaling
        # scale SEs the same way
        rb = ratio_report((pa.S_err[sel] / S_exp[sel, None]).T, (pa.S[sel] / S_exp[sel, None]).T)
        bias_true = (pa.S[sel].mean(axis=1) / S_true[sel] - 1)
        ba, _ = validation_bands(pa, dt)
        bb, _ = validation_bands(pb, dt, f_min=1.0)
        print(f"--- {label}, {n_seg} segments of 1 s ({n_seg*n_sites} segment-sites), R={R}")
        print(f"  bins 1,2,10,100,499 Hz: per-bin SD of S/E[S] = {pa.S[sel].std(axis=1, ddof=1) / S_exp[sel]}")
        print("  per-bin S_err pooled (each bin's own SD): " + " ".join(
            f"{ratio_report(pa.S_err[i], pa.S[i])['rms_se_over_sd']:.3f}" for i in sel)
            + f"  (MC ±{1/np.sqrt(2*R)*np.sqrt(2):.3f}ish)")
        print(f"  mean S / true S - 1 at those bins: {np.round(bias_true, 4)} ; mean S / exact boxcar expectation - 1: "
              f"{np.round(pa.S[sel].mean(axis=1) / S_exp[sel] - 1, 4)} (MC ±{np.round(pa.S[sel].std(axis=1)/S_exp[sel]/np.sqrt(R), 4)})")
        for i in range(ba.value.shape[0]):
            r = ratio_report(ba.se[i], ba.value[i])
            p3, e3 = exceed_rate(ba.value[i] - bb.value[i], np.hypot(ba.se[i], bb.se[i]))
            d = np.abs(bb.value[i] - ba.value[i])
            fail = (d > 3 * np.hypot(ba.se[i], bb.se[i])) & (d > 0.2 * np.abs(ba.value[i]))
            nu = n_seg - 1
            print(f"  band {ba.f_lo[i]:7.3g}-{ba.f_hi[i]:7.3g} Hz ({ba.n_bins[i]:3d} bins): RMS(SE)/SD={r['rms_se_over_sd']:.3f}"
                  f"±{r['mc']:.3f} mean(SE)/SD={r['mean_se_over_sd']:.3f}  3SE-only fail {p3:.4f}±{e3:.4f}"
                  f" (t_{2*nu}: {2*stats.t.sf(3, 2*nu):.4f})  rule (3SE or 20%) fail {fail.mean():.4f}")
