"""Input and output: the HDF5 recorder, the result reader (docs/results.md) and
checkpoints (docs/checkpoints.md)."""

from meshfield.io.checkpoint import (CheckpointError, read_checkpoint, read_checkpoint_attrs,
                                     write_checkpoint)
from meshfield.io.recorder import Recorder, RecorderError
from meshfield.io.result import Result, ResultError, open_result

__all__ = ["Recorder", "RecorderError", "Result", "ResultError", "open_result", "CheckpointError",
           "read_checkpoint", "read_checkpoint_attrs", "write_checkpoint"]
