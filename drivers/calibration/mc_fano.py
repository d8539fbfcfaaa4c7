"""fano_factor: bias and SE for Poisson and binomial counts, and for a Poisson count with a slowly varying
(AR(1)) rate, with few and many windows per block."""
import sys
import numpy as np
from common import ar1, ratio_report
from meshfield.analysis import fano_factor

R = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
rng = np.random.default_rng(4)
N, dt = 100, 1.0
rate = 10.0  # Hz: 1 spike per ms per population of 100 on average
for label in ("poisson", "binomial p=0.5"):
    for n_time, n_blocks, win in ((40, 10, 2.0), (80, 10, 2.0), (400, 10, 2.0), (4000, 10, 10.0), (2000, 2, 10.0)):
        if label == "poisson":
            counts = rng.poisson(rate * N * dt * 1e-3, (n_time, R))
            counts[:, np.flatnonzero((counts.reshape(n_blocks, -1, R).sum(axis=1) == 0).any(axis=0))] += 0  # (NaN replicas dropped below)
            F = 1.0
        else:
            counts = rng.binomial(N, 0.5, (n_time, R))
            F = 0.5
        A = counts / (N * dt * 1e-3)
        ff = fano_factor(A, [win], N=[N] * R, record_interval=dt, n_blocks=n_blocks)
        per_block = n_time // n_blocks / int(win / dt)
        ok = np.isfinite(ff.fano[0]); rr = ratio_report(ff.se[0][ok], ff.fano[0][ok], F)
        print(f"{label:15s} {n_time:5d} samples, {n_blocks:2d} blocks, window {win:g} ms ({per_block:.0f} windows/block): "
              f"fano bias {rr['bias']:+.4f}±{rr['bias_mc']:.4f} (SD {rr['sd']:.4f}), RMS(SE)/SD={rr['rms_se_over_sd']:.3f}±{rr['mc']:.3f}"
              f"  1-1/n would give {-(1/per_block) * F:+.4f}")
# doubly stochastic: rate 10 Hz * (1 + 0.3 x), x AR(1) tau = 50 ms; windows of 10 ms
tau = 50.0
for n_time, n_blocks in ((2000, 10), (20000, 10), (200000, 10)):
    x = ar1(rng, n_time, (R,), tau)
    lam = np.clip(rate * (1 + 0.3 * x), 0, None) * N * dt * 1e-3
    counts = rng.poisson(lam)
    A = counts / (N * dt * 1e-3)
    ff = fano_factor(A, [10.0], N=[N] * R, record_interval=dt, n_blocks=n_blocks)
    rr = ratio_report(ff.se[0], ff.fano[0])
    print(f"cox tau=50ms {n_time:6d} samples, {n_blocks} blocks ({n_time//n_blocks//10} windows/block, block {n_time/n_blocks/tau:.0f} tau): "
          f"fano {ff.fano[0].mean():.4f}±{rr['sd']/np.sqrt(R):.4f}, RMS(SE)/SD={rr['rms_se_over_sd']:.3f}±{rr['mc']:.3f}")
