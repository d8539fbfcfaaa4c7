"""Independent simulators that meshfield is compared against ("peers").

A peer is never a dependency of the engine: each peer module imports its
simulator lazily inside the functions that need it, so ``import
meshfield.peers.nest`` works without NEST installed. See docs/peers.md.

Modules
-------
nest
    NEST's ``gif_pop_psc_exp`` (mesoscopic) and ``gif_psc_exp`` (microscopic)
    models, built from a meshfield configuration by the translation of
    MODEL.md section 8.
"""
