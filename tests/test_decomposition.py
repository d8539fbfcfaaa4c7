"""Serial tests of the decomposition: pure block math, grid and halo rules, and
the halo and spike exchanges on one rank (``MPI.COMM_SELF``), which go through
the same code as on many ranks (tests/test_halo.py)."""

import numpy as np
import pytest
from mpi4py import MPI

from meshfield.parallel import (
    Decomposition,
    DecompositionError,
    block_range,
    check_halo,
    exchange_spikes,
    process_grid,
    processes_on_node,
)
from test_halo import HALO_CASES, _case_id, assert_halo_exchange, assert_spike_exchange


# -- block_range ---------------------------------------------------------------

@pytest.mark.parametrize("n", [0, 1, 2, 5, 7, 16, 31, 32, 100, 1001])
@pytest.mark.parametrize("parts", [1, 2, 3, 4, 5, 7, 8, 16, 33])
def test_block_range_tiles_the_axis(n, parts):
    ranges = [block_range(n, parts, i) for i in range(parts)]
    assert ranges[0][0] == 0
    assert ranges[-1][1] == n
    for (_, stop), (start, _) in zip(ranges, ranges[1:]):
        assert stop == start
    sizes = [stop - start for start, stop in ranges]
    assert max(sizes) - min(sizes) <= 1
    # The larger blocks come first.
    assert sizes == sorted(sizes, reverse=True)


def test_block_range_uneven_example():
    assert [block_range(10, 4, i) for i in range(4)] == [(0, 3), (3, 6), (6, 8), (8, 10)]


@pytest.mark.parametrize("n, parts, index", [(5, 0, 0), (5, 2, 2), (5, 2, -1), (-1, 2, 0)])
def test_block_range_rejects_bad_arguments(n, parts, index):
    with pytest.raises(DecompositionError):
        block_range(n, parts, index)


# -- process_grid ----------------------------------------------------------------

def test_process_grid_balanced_default():
    assert process_grid(4, (32, 32)) == (2, 2)
    assert process_grid(6, (32, 32)) == (3, 2)
    assert process_grid(3, (7,)) == (3,)
    assert process_grid(1, (4, 4)) == (1, 1)


def test_process_grid_explicit_dims():
    assert process_grid(4, (10, 7), (1, 4)) == (1, 4)
    assert process_grid(4, (10, 7), (4, 0)) == (4, 1)
    assert process_grid(6, (10, 7), (0, 3)) == (2, 3)


def test_too_many_ranks_message_1d():
    with pytest.raises(DecompositionError) as error:
        process_grid(5, (4,))
    message = str(error.value)
    assert "more ranks (5) than sites (4): " in message
    assert "shape (4,)" in message
    assert "at most 4 ranks" in message


def test_too_many_ranks_message_suggests_a_valid_grid():
    # (2, 2) leaves empty blocks along the short axis
    with pytest.raises(DecompositionError, match=r"more ranks \(2\) than sites \(1\) along axis 1.*use --dims 4,1\)"):
        process_grid(4, (40, 1), (2, 2))


def test_default_grid_fits_the_lattice_and_halo_when_compute_dims_does_not():
    """Compute_dims's balanced grid ignores the lattice: (2, 2) on 40 x 1 and (3, 1)
    on 5 x 13 with halo 2 used to be refused although (4, 1) and (1, 3) fit."""
    assert process_grid(4, (40, 1)) == (4, 1)
    assert process_grid(3, (5, 13), halo_width=2) == (1, 3)
    assert process_grid(3, (5, 13)) == (3, 1)  # Compute_dims's grid where it fits
    assert process_grid(4, (32, 32), halo_width=6) == (2, 2)


def test_no_fitting_grid_names_the_nearest_rank_counts_that_fit():
    """The hint used to ignore the halo (suggesting a grid that then failed) and to
    say 'use at most 12 ranks' to a request for 5 ranks on 4 x 3."""
    with pytest.raises(DecompositionError) as error:
        process_grid(5, (4, 3))
    assert str(error.value).endswith(
        "(no process grid of 5 ranks fits the lattice (4, 3) with every block at least one site; "
        "4 ranks (--dims 4,1) or 6 ranks (--dims 2,3) would fit; at most 12 ranks fit, with --dims 4,3)")
    with pytest.raises(DecompositionError) as error:
        process_grid(5, (4, 9), halo_width=2)
    assert ("every block at least 2 sites (the halo) wide where an axis is split; 4 ranks (--dims 1,4) "
            "or 6 ranks (--dims 2,3) would fit; at most 8 ranks fit, with --dims 2,4)") in str(error.value)
    with pytest.raises(DecompositionError, match=r"at most 6 ranks fit, with --dims 6\)$"):
        process_grid(14, (13,), halo_width=2)


@pytest.mark.parametrize(
    "size, shape, dims, match",
    [
        (4, (10, 7), (3, 1), "does not fit 4 ranks"),
        (4, (10, 7), (3, 0), "does not fit 4 ranks"),
        (4, (10, 7), (4,), "has 1 entries"),
        (4, (10, 7), (-1, -4), "positive rank counts"),
        (4, (10, 7), (1, 8), "does not fit"),
        (8, (10, 7), (1, 8), r"more ranks \(8\) than sites \(7\) along axis 1"),
        (0, (10,), None, "number of ranks"),
        (2, (), None, "at least one axis"),
        (2, (4, 0), None, "at least one axis"),
    ],
)
def test_process_grid_errors(size, shape, dims, match):
    with pytest.raises(DecompositionError, match=match):
        process_grid(size, shape, dims)


# -- halo rules --------------------------------------------------------------------

def test_check_halo_periodic_lattice_too_small():
    check_halo((5,), (1,), True, 2)
    # the halo of a periodic axis on one rank is a copy of the block's own layers;
    # that no stencil wraps onto itself is the kernel's check (per axis)
    check_halo((6,), (1,), True, 3)
    check_halo((13, 3), (1, 1), True, 3)
    with pytest.raises(DecompositionError, match=r"lattice too small for the halo: the halo is 3 sites wide on "
                                                 r"every axis .* periodic axis 1 .* has only 2 site\(s\)"):
        check_halo((13, 2), (1, 1), True, 3)
    # An open axis has no wrap-around, so any width is fine on one rank.
    check_halo((2,), (1,), False, 5)


def test_check_halo_wider_than_block():
    check_halo((12,), (4,), False, 3)
    with pytest.raises(DecompositionError, match=r"halo width 3 exceeds the smallest block along axis 0 \(2 sites"):
        check_halo((11,), (4,), False, 3)
    with pytest.raises(DecompositionError, match=r"use --dims 1,4\)"):
        check_halo((8, 20), (4, 1), False, 3)


@pytest.mark.parametrize("h", [-1, 1.5])
def test_check_halo_rejects_bad_width(h):
    with pytest.raises(DecompositionError, match="halo_width"):
        check_halo((8,), (1,), False, h)


def test_decomposition_validates_before_communicating():
    with pytest.raises(DecompositionError, match="lattice too small"):
        Decomposition(MPI.COMM_SELF, (1, 9), True, 2)


# -- one rank -----------------------------------------------------------------------

def test_single_rank_attributes():
    d = Decomposition(MPI.COMM_SELF, (9, 5), False, 2)
    assert (d.rank, d.size, d.ndim, d.dims, d.coords) == (0, 1, 2, (1, 1), (0, 0))
    assert d.local_start == (0, 0) and d.local_shape == (9, 5)
    assert d.local_slices == (slice(0, 9), slice(0, 5))
    assert d.with_halo_shape == (13, 9)
    assert d.interior == (slice(2, 11), slice(2, 7))
    assert d.neighbours == ((MPI.PROC_NULL,) * 2,) * 2
    assert d.at_lower_boundary == (True, True) and d.at_upper_boundary == (True, True)
    assert d.is_root
    d.free()

    d = Decomposition(MPI.COMM_SELF, (9, 5), True, 2)
    assert d.neighbours == ((0, 0), (0, 0))
    assert d.at_lower_boundary == (False, False) and d.at_upper_boundary == (False, False)
    d.free()


@pytest.mark.parametrize("case", HALO_CASES, ids=_case_id)
def test_halo_exchange_single_rank(case):
    assert_halo_exchange(MPI.COMM_SELF, *case)


def test_halo_exchange_single_rank_float64_contiguous():
    d = Decomposition(MPI.COMM_SELF, (6,), True, 2)
    arr = np.zeros(d.with_halo_shape)
    arr[d.interior] = np.arange(6.0)
    d.exchange(arr)
    np.testing.assert_array_equal(arr, [4, 5, 0, 1, 2, 3, 4, 5, 0, 1])
    assert d.bytes_sent == 0
    d.free()


def test_zero_halo_width_is_a_no_op():
    d = Decomposition(MPI.COMM_SELF, (3, 3), True, 0)
    arr = np.arange(9.0).reshape(3, 3)
    d.exchange(arr)
    np.testing.assert_array_equal(arr, np.arange(9.0).reshape(3, 3))
    d.free()


def test_exchange_rejects_wrong_shape():
    d = Decomposition(MPI.COMM_SELF, (6, 6), True, 1)
    with pytest.raises(ValueError, match=r"with_halo_shape \(8, 8\)"):
        d.exchange(np.zeros((2, 6, 6)))
    with pytest.raises(ValueError, match="with_halo_shape"):
        d.exchange(np.zeros(8))
    d.free()


def test_global_site_index():
    d = Decomposition(MPI.COMM_SELF, (3, 4), False, 1)
    np.testing.assert_array_equal(d.global_site_index(), np.arange(12).reshape(3, 4))
    index = d.global_site_index_with_halo()
    assert index.dtype == np.int64 and index.shape == (5, 6)
    np.testing.assert_array_equal(index[1:-1, 1:-1], np.arange(12).reshape(3, 4))
    assert np.all(index[0] == -1) and np.all(index[:, -1] == -1)
    d.free()

    d = Decomposition(MPI.COMM_SELF, (3, 4), True, 1)
    index = d.global_site_index_with_halo()
    assert index[0, 0] == 11  # the corner wraps to site (2, 3)
    np.testing.assert_array_equal(index[-1, 1:-1], [0, 1, 2, 3])
    d.free()


def test_collective_helpers_on_one_rank():
    d = Decomposition(MPI.COMM_SELF, (4,), True, 1)
    assert d.allreduce_sum(3) == 3
    assert d.allreduce_max(2.5) == 2.5
    x = np.array([1.0, -2.0])
    np.testing.assert_array_equal(d.allreduce_sum(x), x)
    np.testing.assert_array_equal(d.allreduce_max(x), x)
    assert d.bcast({"a": 1}) == {"a": 1}
    d.barrier()
    d.free()


@pytest.mark.parametrize(
    "shape, periodic, h",
    [((7,), True, 2), ((7,), False, 2), ((10, 7), True, 3), ((9, 5), False, 2)],
)
def test_spike_exchange_single_rank(shape, periodic, h):
    assert_spike_exchange(MPI.COMM_SELF, shape, periodic, h)


def test_spike_exchange_single_rank_example():
    # Sites 0..4 of a periodic ring with h = 1: the halo cells mirror sites 4 and 0.
    d = Decomposition(MPI.COMM_SELF, (5,), True, 1)
    records = np.array([[4, 0, 9, 3], [2, 1, 1, 1], [0, 1, 7, 2]])
    halo, cells = exchange_spikes(d, records)
    np.testing.assert_array_equal(halo, [[0, 1, 7, 2], [4, 0, 9, 3]])
    np.testing.assert_array_equal(cells, [6, 0])
    d.free()


def test_spike_exchange_refuses_a_lattice_beyond_63_bits_of_positions():
    # 3 axes of 2**21 sites need 22 bits each for x + halo_width: beyond 63 bits
    # (a configuration's lattice, 1-D or 2-D with at most 2**32 sites, needs at most 38)
    d = Decomposition(MPI.COMM_SELF, (2**21,) * 3, False, 1)
    with pytest.raises(ValueError, match="63 bits"):
        exchange_spikes(d, np.zeros((0, 3), dtype=np.int64))
    d.free()
    d = Decomposition(MPI.COMM_SELF, (2**20,) * 3, False, 1)  # 21 bits each
    halo, cells = exchange_spikes(d, np.array([[5, 1, 2]]))
    assert halo.shape == (0, 3) and cells.shape == (0,)
    d.free()


def test_spike_records_must_be_2d():
    d = Decomposition(MPI.COMM_SELF, (5,), True, 1)
    with pytest.raises(ValueError, match="2-D array"):
        exchange_spikes(d, np.array([1, 2, 3]))
    d.free()


def test_too_many_ranks_is_refused_without_enumerating_them():
    """A prime rank count far above the sites is refused at once, with the usual message."""
    import time
    start = time.perf_counter()
    with pytest.raises(DecompositionError) as error:
        process_grid(1000000007, (16, 16))
    assert time.perf_counter() - start < 5.0
    message = str(error.value)
    assert "more ranks (1000000007) than sites (256): " in message
    assert "at most 256 ranks fit, with --dims 16,16" in message
    # beyond a C int (MPI.Compute_dims): still a DecompositionError, not an OverflowError
    with pytest.raises(DecompositionError, match=r"more ranks \(3000000000\) than sites \(256\).*at most 256"):
        process_grid(3000000000, (16, 16))
    with pytest.raises(DecompositionError, match="at most 2\\*\\*31 - 1 ranks"):
        process_grid(3000000000, (65536, 65536))


def test_rank_counts_near_the_mpi_limit_get_a_grid_or_a_message_not_a_crash():
    """MPICH's Compute_dims died with SIGFPE for 2**31 - 1 ranks (a prime); meshfield
    info -n 2147483647 ended with status 136."""
    with pytest.raises(DecompositionError, match=r"more ranks \(2147483647\) than sites \(65536\) along "
                                                 r"axis 0.*no process grid of 2147483647 ranks fits"):
        process_grid(2147483647, (65536, 65536))
    with pytest.raises(DecompositionError, match=r"more ranks \(2147483647\) than sites \(65536\)"):
        process_grid(2147483647, (256, 256))
    assert process_grid(2**30, (2**15, 2**15)) == (2**15, 2**15)


def test_factorizations_list_every_ordered_factorization():
    from meshfield.parallel.decomposition import _factorizations

    def by_enumeration(size, ndim):
        if ndim == 1:
            return [(size,)]
        return [(p, *rest) for p in range(1, size + 1) if size % p == 0
                for rest in by_enumeration(size // p, ndim - 1)]

    for size in range(1, 200):
        for ndim in (1, 2, 3):
            assert list(_factorizations(size, ndim)) == by_enumeration(size, ndim)


@pytest.mark.parametrize("environ, expected", [
    ({}, 1),
    ({"MPI_LOCALNRANKS": "4"}, 4),                 # MPICH's Hydra
    ({"OMPI_COMM_WORLD_LOCAL_SIZE": "3"}, 3),      # Open MPI
    ({"MPI_LOCALNRANKS": ""}, 1),
    ({"MPI_LOCALNRANKS": "x"}, 1),
    ({"MPI_LOCALNRANKS": "0"}, 1),
])
def test_processes_on_node_counts_the_jobs_other_processes_from_the_launcher(environ, expected):
    # COMM_SELF sees one rank; the launcher's count of the job's processes on the
    # node is what shares the cores with it
    assert processes_on_node(MPI.COMM_SELF, environ) == expected


def test_the_decisions_mark_their_failures_as_every_ranks():
    # meshfield.run frees its communicators after such a failure only
    from meshfield._agreed import is_agreed

    d = Decomposition(MPI.COMM_SELF, (4,), False, 0)

    def refuse():
        raise KeyError("no")

    for decide in (d.root_decides, d.all_decide):
        with pytest.raises(KeyError) as raised:
            decide(refuse, ValueError)
        assert is_agreed(raised.value)
    assert decide(lambda: 3, ValueError) == 3
    assert not is_agreed(KeyError("no"))
    d.free()
