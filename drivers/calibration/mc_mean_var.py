"""mean_var: batch-means SE of mean and var vs the scatter over replicas (AR(1), tau = 10 samples).
Replicas are the 'types' of one record, so one call analyses them all."""
import sys
import numpy as np
from scipy import stats
from common import ar1, ratio_report, fmt, exceed_rate
from meshfield.analysis import mean_var

tau = 10.0
R = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
rng = np.random.default_rng(1)
print(f"AR(1) tau={tau} samples, unit variance, mean 5; R={R} replicas")
for mult in (20, 50, 100, 400, 1000):
    n_time = int(mult * tau)
    for n_blocks in (20, 10, 5):
        A = 5.0 + ar1(rng, n_time, (R,), tau)
        A2 = 5.0 + ar1(rng, n_time, (R,), tau)
        m, m2 = mean_var(A, 1.0, n_blocks=n_blocks), mean_var(A2, 1.0, n_blocks=n_blocks)
        L = n_time // n_blocks
        rm = ratio_report(m.mean_se, m.mean, 5.0)
        rv = ratio_report(m.var_se, m.var, 1.0)
        # 3-SE rule for two independent replicas (mean only, SE rule alone) and the t prediction
        p, pe = exceed_rate(m.mean - m2.mean, np.hypot(m.mean_se, m2.mean_se))
        pv, pve = exceed_rate(m.var - m2.var, np.hypot(m.var_se, m2.var_se))
        nu = 2 * (n_blocks - 1)  # Welch dof for equal SEs
        pt = 2 * stats.t.sf(3, nu)
        print(f"T={mult:5d} tau, {n_blocks:2d} blocks (L={L/tau:.1f} tau): "
              f"mean {fmt('', rm)[43:]}\n{'':36s}var  {fmt('', rv)[43:]}\n"
              f"{'':36s}3SE false fail: mean {p:.4f}±{pe:.4f}  var {pv:.4f}±{pve:.4f}  (t_{nu}: {pt:.4f}, normal 0.0027)")
