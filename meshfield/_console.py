"""Log lines that survive a closed reader.

Kept free of numba and of the simulation modules, so that the progress lines of
``meshfield analyze``, ``compare`` and ``steady`` cost no import (numba alone
adds about 55 MiB and 0.4 s to a process).
"""

from __future__ import annotations

import os
import sys
from contextlib import suppress


def emit(text: str, stream=None) -> None:
    """Print a log line; a closed reader (``meshfield run ... | head``, a killed
    ``tee``) silences the log instead of failing the run. The stream's file
    descriptor then points to /dev/null, so later writes and the flush at exit
    succeed quietly."""
    stream = stream or sys.stdout
    try:
        print(text, file=stream, flush=True)
    except BrokenPipeError:
        silence(stream)


def silence(stream) -> None:
    """Point the file descriptor of ``stream`` (whose reader went away) to /dev/null,
    so that later writes and the flush at interpreter exit succeed quietly."""
    with suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
