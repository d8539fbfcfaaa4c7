"""The mesoscopic level: quasi-renewal population equation per site and type (MODEL.md §4)."""

from .model import MesoModel, adaptation_kernel, history_length, theta_tilde

__all__ = ["MesoModel", "history_length", "adaptation_kernel", "theta_tilde"]
