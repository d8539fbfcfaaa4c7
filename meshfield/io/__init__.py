"""Input and output: the HDF5 recorder and the result reader (docs/results.md)."""

from meshfield.io.recorder import Recorder, RecorderError
from meshfield.io.result import Result, ResultError, open_result

__all__ = ["Recorder", "RecorderError", "Result", "ResultError", "open_result"]
