"""Mean and variance of activity per type, with batch-means standard errors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._record import as_record

DEFAULT_BLOCKS = 20


@dataclass(frozen=True)
class MeanVar:
    """Mean and variance of the activity per type.

    Attributes
    ----------
    mean : ndarray, shape (n_types,)
        Time- and site-averaged activity, Hz.
    mean_se : ndarray, shape (n_types,)
        Standard error of ``mean`` from batch means (Hz).
    var : ndarray, shape (n_types,)
        Temporal variance of one site's activity, averaged over sites, Hz^2
        (for a single site simply the variance of A).
    var_se : ndarray, shape (n_types,)
        Standard error of ``var`` from the same blocks, Hz^2.
    n_blocks : int
        Number of blocks.
    block_ms : float
        Block duration, ms.
    types : tuple of str
        Type names.
    """

    mean: np.ndarray
    mean_se: np.ndarray
    var: np.ndarray
    var_se: np.ndarray
    n_blocks: int
    block_ms: float
    types: tuple


def mean_var(
    A,
    record_interval: float | None = None,
    discard: float = 0.0,
    n_blocks: int = DEFAULT_BLOCKS,
) -> MeanVar:
    """Mean and variance of the activity per type with batch-means standard errors.

    The record after ``discard`` is split into ``n_blocks`` contiguous blocks of
    equal length (the remainder at the end is left out). Block means of the
    activity, and block means of ``(A(x, t) - mean_x)^2`` with the per-site
    mean over the whole record, are treated as independent samples; the
    standard errors are their standard deviations over ``sqrt(n_blocks)``.

    Block length: the blocks are independent only if each is much longer than
    the correlation time of the activity (for bistable switching: several mean
    dwell times). The default of 20 blocks makes the relative uncertainty of the
    standard error itself about ``1/sqrt(2*19) = 16 %`` and suits records that
    are at least ~20 times longer than the slowest correlation time; for
    shorter records choose fewer, longer blocks.

    Parameters
    ----------
    A : array, shape (n_time, n_types, *lattice) or (n_time,), or a result
        Activity in Hz.
    record_interval : float, optional
        Sampling interval in ms (needed for arrays when ``discard > 0``, and
        for ``block_ms``).
    discard : float
        Initial transient to drop, ms.
    n_blocks : int
        Number of blocks (>= 2).

    Returns
    -------
    MeanVar
    """
    record = as_record(A, record_interval, discard)
    length, blocks = record.blocks(n_blocks)
    shape = (length, record.n_types, record.n_sites)
    sums = np.empty((len(blocks), record.n_types, record.n_sites))
    for b, (i0, i1) in enumerate(blocks):
        sums[b] = record.read(i0, i1).reshape(shape).sum(axis=0)
    site_mean = sums.sum(axis=0) / (length * len(blocks))
    block_mean = sums.mean(axis=2) / length
    # A second pass sums (A - m)^2 with the per-site mean m of the whole record:
    # sum A^2 - 2 m sum A + length m^2 cancels catastrophically (and can turn
    # negative) when the fluctuations are small against the mean.
    block_var = np.empty((len(blocks), record.n_types))
    for b, (i0, i1) in enumerate(blocks):
        x = record.read(i0, i1).reshape(shape) - site_mean
        block_var[b] = (x**2).sum(axis=0).mean(axis=1) / length
    root_n = np.sqrt(len(blocks))
    block_ms = length * record.record_interval if record.record_interval is not None else float("nan")
    return MeanVar(
        mean=block_mean.mean(axis=0),
        mean_se=block_mean.std(axis=0, ddof=1) / root_n,
        var=block_var.mean(axis=0),
        var_se=block_var.std(axis=0, ddof=1) / root_n,
        n_blocks=len(blocks),
        block_ms=block_ms,
        types=record.types,
    )
