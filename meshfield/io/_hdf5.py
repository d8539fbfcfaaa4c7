"""What the result and checkpoint code share about HDF5: chunk size and errors."""

from __future__ import annotations

import h5py

#: Target size of one HDF5 chunk of a result's or a checkpoint's dataset: it fits
#: HDF5's default 1 MiB chunk cache, and is large enough for efficient I/O and
#: for the chunk index and the 4-byte fletcher32 checksum per chunk to cost nothing.
CHUNK_BYTES = 1 << 20

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
