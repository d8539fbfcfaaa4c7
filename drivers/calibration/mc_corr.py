"""correlation_vs_distance: r_err vs the scatter of r over replicas; bias against the known r(d)."""
import sys
import numpy as np
from scipy import stats
from common import ar1, ratio_report, exceed_rate
from meshfield.analysis import correlation_vs_distance

R = int(sys.argv[1]) if len(sys.argv) > 1 else 400
tau = 10.0
rng = np.random.default_rng(3)
for lattice in ((16,), (4, 4)):
    n_sites = int(np.prod(lattice))
    for mult, n_blocks in ((20, 20), (100, 20), (400, 20), (2000, 20), (400, 5), (2000, 5)):
        n_time = int(mult * tau)
        def make():
            x = ar1(rng, n_time, (R,) + lattice, tau)
            axes = range(2, 2 + len(lattice))
            return 5 + x + sum(np.roll(x, s, axis=a) for a in axes for s in (1, -1))
        A, B = make(), make()
        ca = correlation_vs_distance(A, 0.1, "periodic", max_distance=2)
        ca = correlation_vs_distance(A, 0.1, "periodic", max_distance=2, n_blocks=n_blocks)
        cb = correlation_vs_distance(B, 0.1, "periodic", max_distance=2, n_blocks=n_blocks)
        # exact r for a neighbour sum of iid fields: overlap count / (1 + 2 ndim)
        k = 1 + 2 * len(lattice)
        print(f"--- lattice {lattice}, T={mult} tau, {n_blocks} blocks (block {mult/n_blocks:.0f} tau), R={R}")
        for j, d in enumerate(ca.distances):
            if d == 0:
                continue
            # the exact correlation of the neighbour sum at distance d
            if len(lattice) == 1:
                r_true = {1: 2 / 3, 2: 1 / 3}[int(round(d))]
            else:
                r_true = {1.0: 2 / 5, 1.414: 2 / 5, 2.0: 1 / 5}[round(d, 3)]
            rr = ratio_report(ca.r_err[:, j], ca.r[:, j], r_true)
            p, pe = exceed_rate(ca.r[:, j] - cb.r[:, j], np.hypot(ca.r_err[:, j], cb.r_err[:, j]))
            rule = np.abs(ca.r[:, j] - cb.r[:, j])
            rule = (rule > 3 * np.hypot(ca.r_err[:, j], cb.r_err[:, j])) & (rule > 0.05)
            print(f"  d={d:.3g}: r_true={r_true:.3f} bias={rr['bias']:+.4f}±{rr['bias_mc']:.4f} SD={rr['sd']:.4f} "
                  f"RMS(SE)/SD={rr['rms_se_over_sd']:.3f}±{rr['mc']:.3f} mean(SE)/SD={rr['mean_se_over_sd']:.3f} "
                  f"3SE fail {p:.4f}±{pe:.4f} (t_{2*(n_blocks-1)} {2*stats.t.sf(3, 2*(n_blocks-1)):.4f}) rule fail {rule.mean():.4f}")
