"""Shared helpers of the Monte Carlo calibration of the analysis standard errors (docs/analysis.md)."""
import numpy as np
from scipy import stats
from scipy.signal import lfilter


def ar1(rng, n_time, shape, tau, dt=1.0):
    """Stationary AR(1) (sampled OU) of unit variance, correlation exp(-|lag| dt / tau), along axis 0."""
    a = np.exp(-dt / tau)
    e = rng.standard_normal((n_time,) + tuple(shape))
    e[0] /= np.sqrt(1 - a * a)  # stationary start: x0 ~ N(0, 1)
    return lfilter([np.sqrt(1 - a * a)], [1, -a], e, axis=0)


def ratio_report(se, est, truth=None):
    """RMS(SE)/SD(est) and mean(SE)/SD(est) with the MC uncertainty of the SD,
    the bias of est (in units of its SD/sqrt(R))."""
    se, est = np.asarray(se, float).ravel(), np.asarray(est, float).ravel()
    R = est.size
    sd = est.std(ddof=1)
    rms = np.sqrt(np.mean(se**2))
    # relative MC error of the ratio: SD of an SD ~ sqrt((kurt - 1)/(4R)) (kurtosis from the sample)
    k = stats.kurtosis(est, fisher=False)
    rel = np.sqrt(max(k - 1, 0.0) / (4 * R) + np.var(se**2) / (4 * R * np.mean(se**2) ** 2))
    out = dict(R=R, sd=sd, rms_se_over_sd=rms / sd, mean_se_over_sd=se.mean() / sd, mc=rel * rms / sd)
    if truth is not None:
        out["bias"] = est.mean() - truth
        out["bias_mc"] = sd / np.sqrt(R)
    return out


def fmt(name, d):
    s = f"{name:42s} R={d['R']:5d} RMS(SE)/SD={d['rms_se_over_sd']:.3f}±{d['mc']:.3f} mean(SE)/SD={d['mean_se_over_sd']:.3f}"
    if "bias" in d:
        s += f" bias={d['bias']:+.4g}±{d['bias_mc']:.2g} (SD {d['sd']:.4g})"
    return s


def exceed_rate(diff, se_comb, factor=3.0):
    x = np.abs(np.asarray(diff)) > factor * np.asarray(se_comb)
    p = x.mean()
    return p, np.sqrt(max(p * (1 - p), 1e-12) / x.size)
