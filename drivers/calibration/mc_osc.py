"""oscillation (jackknife over PSD segments) and phase_coherence (jackknife over time blocks) on AR(2)
narrow-band oscillations: reported SE vs the scatter over replicas."""
import sys
import numpy as np
from scipy.signal import lfilter
from common import ratio_report
from meshfield.analysis import oscillation, phase_coherence

R = int(sys.argv[1]) if len(sys.argv) > 1 else 300
rng = np.random.default_rng(6)
dt = 1.0


def ar2(n_time, shape, f0=20.0, r=0.99):
    w = 2 * np.pi * f0 * dt * 1e-3
    e = rng.standard_normal((n_time + 2000,) + shape)
    return lfilter([1.0], [1.0, -2 * r * np.cos(w), r * r], e, axis=0)[2000:]


print("oscillation: AR(2) at 20 Hz, r=0.99 (correlation time 100 ms), plus white noise of SD 3; 1-s segments, Hann")
for n_seg in (4, 10, 40):
    n_time = n_seg * 1000
    A = 10 + ar2(n_time, (R,)) + 3 * rng.standard_normal((n_time, R))
    o = oscillation(A, dt)
    rf = ratio_report(o.frequency_err, o.frequency)
    ra = ratio_report(o.amplitude_err, o.amplitude)
    print(f"  {n_seg:3d} segments: frequency {np.mean(o.frequency):.3f} Hz, SD {rf['sd']:.4f}, RMS(err)/SD={rf['rms_se_over_sd']:.3f}±{rf['mc']:.3f}"
          f" mean(err)/SD={rf['mean_se_over_sd']:.3f}; amplitude {np.mean(o.amplitude):.3f}, SD {ra['sd']:.4f}, "
          f"RMS(err)/SD={ra['rms_se_over_sd']:.3f}±{ra['mc']:.3f} mean(err)/SD={ra['mean_se_over_sd']:.3f}")
print("oscillation: sine 20.3 Hz amplitude 2 with random phase, in white noise SD 3")
for n_seg in (4, 10, 40):
    n_time = n_seg * 1000
    t = np.arange(n_time)[:, None] * dt * 1e-3
    A = 10 + 2 * np.cos(2 * np.pi * 20.3 * t + rng.uniform(0, 2 * np.pi, R)) + 3 * rng.standard_normal((n_time, R))
    o = oscillation(A, dt)
    rf = ratio_report(o.frequency_err, o.frequency, 20.3)
    ra = ratio_report(o.amplitude_err, o.amplitude)
    print(f"  {n_seg:3d} segments: frequency bias {rf['bias']:+.4f}±{rf['bias_mc']:.4f} Hz, SD {rf['sd']:.4f}, RMS(err)/SD={rf['rms_se_over_sd']:.3f}±{rf['mc']:.3f}"
          f"; amplitude {np.mean(o.amplitude):.3f}, SD {ra['sd']:.4f}, RMS(err)/SD={ra['rms_se_over_sd']:.3f}±{ra['mc']:.3f}")

print("phase_coherence: 2 sites (open), each = common AR(2) + own AR(2) (20 Hz, r=0.99), band 14-28 Hz")
for n_time, n_blocks in ((5000, 20), (20000, 20), (20000, 5), (80000, 20)):
    common = ar2(n_time, (R,))
    A = np.stack([common + ar2(n_time, (R,)), common + ar2(n_time, (R,))], axis=-1) + 10
    p = phase_coherence(A, dt, band=(14.0, 28.0), boundary="open", n_blocks=n_blocks)
    rp = ratio_report(p.plv_err, p.plv)
    blk = (n_time - 2 * int(np.ceil(2000 / 14))) / n_blocks
    print(f"  {n_time/1000:4.0f} s, {n_blocks:2d} blocks ({blk:.0f} ms): plv {p.plv.mean():.4f}, SD {rp['sd']:.4f}, "
          f"RMS(err)/SD={rp['rms_se_over_sd']:.3f}±{rp['mc']:.3f} mean(err)/SD={rp['mean_se_over_sd']:.3f}")
