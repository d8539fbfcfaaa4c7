"""dwell_times on a symmetric random telegraph signal: bias and SE of the mean dwell; false failures of
compare's dwell rule (|d| <= 25 % of A, >= 30 switches each) for two independent samples of the same process."""
import sys
import numpy as np
from common import ratio_report
from meshfield.analysis import dwell_times

R = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
rng = np.random.default_rng(5)
dt = 1.0
p_leave = 0.01  # mean dwell 100 ms
mean_true = dt / p_leave


def telegraph(n_time):
    flips = rng.random(n_time) < p_leave
    state = np.where(np.cumsum(flips) % 2 == 0, 1.0, -1.0)
    return state + 0.1 * rng.standard_normal(n_time)


for switches in (30, 60, 120, 300, 1000):
    n_time = int(switches * mean_true)
    means, ses, ns, downs = [], [], [], []
    for _ in range(2 * R):
        d = dwell_times(telegraph(n_time), dt, -0.5, 0.5)
        means.append(d.mean_up); ses.append(d.se_up); ns.append(d.n_switches); downs.append(d.mean_down)
    means, ses, ns, downs = np.array(means), np.array(ses), np.array(ns), np.array(downs)
    # the geometric dwell (samples) has mean 1/p: in ms 100; its mean dwell is exactly dt/p_leave
    rr = ratio_report(ses[:R], means[:R], mean_true)
    a, b = means[:R], means[R:]
    rel = np.abs(b - a) > 0.25 * np.abs(a)
    rel_down = np.abs(downs[R:] - downs[:R]) > 0.25 * np.abs(downs[:R])
    rule = rel | rel_down | (ns[:R] < 30) | (ns[R:] < 30)
    z3 = np.abs(b - a) > 3 * np.hypot(ses[:R], ses[R:])
    print(f"T = {switches:4d} mean dwells ({ns.mean():.0f} switches on average): mean_up bias {rr['bias']:+.2f}±{rr['bias_mc']:.2f} ms"
          f" ({100*rr['bias']/mean_true:+.1f} %; SD {rr['sd']:.1f}), RMS(se_up)/SD={rr['rms_se_over_sd']:.3f}±{rr['mc']:.3f}, "
          f"25 %-rule alone fails {rel.mean():.3f}, whole dwell check (up, down, 30 switches) {rule.mean():.3f}; a 3-SE rule would fail {z3.mean():.4f}")
