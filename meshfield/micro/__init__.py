"""The microscopic level: the spiking GLIF network the mesoscopic field approximates
(MODEL.md §2, §3, §7), distributed over the same blocks as the mesoscopic level."""

from .connectivity import BlockGeometry, Connectivity, build_connectivity
from .model import MicroModel
from .neurons import IDENT_TYPE_STRIDE, NeuronLayout, NeuronParameters, NeuronState, neuron_parameters

__all__ = ["MicroModel", "BlockGeometry", "Connectivity", "build_connectivity", "NeuronLayout",
           "NeuronParameters", "NeuronState", "neuron_parameters", "IDENT_TYPE_STRIDE"]
