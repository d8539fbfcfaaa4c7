"""Exact expectation of the boxcar periodogram (mean removed, 1-s segments at 1 ms) of an AR(1) with tau = 10 ms
against its true spectrum: the leakage bias, no Monte Carlo."""
import numpy as np
L, dt, dts = 1000, 1.0, 1e-3
for tau in (10.0, 50.0):
    a = np.exp(-dt / tau)
    m = np.arange(-(L - 1), L)
    f = np.fft.rfftfreq(L, dts)
    S_true = dts * (1 - a * a) / np.abs(1 - a * np.exp(-2j * np.pi * f * dts)) ** 2
    S_exp = dts / L * np.real(np.exp(-2j * np.pi * np.outer(np.arange(f.size), m) / L) @ ((L - np.abs(m)) * a ** np.abs(m)))
    for fi in (1, 2, 10, 100, 250, 499, 500):
        print(f"tau {tau:g} ms, f = {fi} Hz: E[S]/S - 1 = {S_exp[fi]/S_true[fi]-1:+.4f}")
