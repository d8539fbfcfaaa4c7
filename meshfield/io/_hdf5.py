"""What the result reader and the checkpoint reader share about HDF5's errors."""

from __future__ import annotations

import h5py

#: What h5py raises for a file or object it cannot read (damaged, truncated,
#: missing): OSError (a dataset's fletcher32 checksum, a chunk index, a missing
#: file), KeyError (an object header whose checksum fails) or RuntimeError
#: (damaged attribute storage).
READ_ERRORS = (OSError, KeyError, RuntimeError)


def hdf5_text(exc: BaseException) -> str:
    """HDF5's message on one line, without the quotes KeyError adds."""
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    return " ".join(text.split()) or type(exc).__name__


def fails_checksum(dataset, exc: BaseException) -> bool:
    """Whether ``exc``, raised reading ``dataset``, is a fletcher32 checksum that
    does not match the bytes read. meshfield writes no other filter, so a filter
    failure of a dataset that has fletcher32 is that (HDF5 says "filter returned
    failure during read")."""
    return isinstance(dataset, h5py.Dataset) and dataset.fletcher32 and "filter" in str(exc)
