"""Small numerical building blocks shared by the kernels.

:func:`vexp` is an exponential that LLVM can vectorize: the libm ``exp`` that
``math.exp`` calls is opaque to the loop vectorizer (PyPI's llvmlite has no SVML),
and two exponentials per cohort and step are the whole cost of the mesoscopic model.

Method: ``exp(x) = 2**k * exp(r)`` with ``k = round(x / ln 2)`` and
``r = x - k ln 2`` in ``[-ln2/2, ln2/2]`` (Cody-Waite split of ln 2), ``exp(r)``
by its Taylor polynomial of degree 12 (truncation error < 3e-16 relative) and
``2**k`` from a table. Relative error below 5e-14 for ``-700 < x < 700``
(tested against ``math.exp``; kernels compiled with ``fastmath`` may
reassociate the reduction, which costs a few ulp). Arguments are clamped to
``[-700, 700]``: hazards below ``exp(-700)`` are zero for every purpose here.
"""

from __future__ import annotations

import types as pytypes

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

__all__ = ["serial_twin", "vexp", "VEXP_MAX_REL_ERROR"]

_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e+00
#: documented (and tested) accuracy bound
VEXP_MAX_REL_ERROR = 5e-14

_C2 = 1.0 / 2.0
_C3 = 1.0 / 6.0
_C4 = 1.0 / 24.0
_C5 = 1.0 / 120.0
_C6 = 1.0 / 720.0
_C7 = 1.0 / 5040.0
_C8 = 1.0 / 40320.0
_C9 = 1.0 / 362880.0
_C10 = 1.0 / 3628800.0
_C11 = 1.0 / 39916800.0
_C12 = 1.0 / 479001600.0


@intrinsic
def _pow2_int(typingctx, k):
    """``2.0**k`` for an int64 ``-1022 <= k <= 1023``, built from its IEEE-754 bits."""
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        biased = builder.add(args[0], ir.Constant(ir.IntType(64), 1023))
        bits = builder.shl(biased, ir.Constant(ir.IntType(64), 52))
        return builder.bitcast(bits, ir.DoubleType())

    return sig, codegen


@njit(cache=True, inline="always")
def vexp(x):
    """``exp(x)`` for float64 ``x``, vectorizable (see module docstring)."""
    x = min(max(x, -700.0), 700.0)
    k = np.floor(x * _INV_LN2 + 0.5)
    r = (x - k * _LN2_HI) - k * _LN2_LO
    p = _C12
    p = p * r + _C11
    p = p * r + _C10
    p = p * r + _C9
    p = p * r + _C8
    p = p * r + _C7
    p = p * r + _C6
    p = p * r + _C5
    p = p * r + _C4
    p = p * r + _C3
    p = p * r + _C2
    p = p * r + 1.0
    p = p * r + 1.0
    return p * _pow2_int(np.int64(k))


def serial_twin(kernel, name: str):
    """``kernel`` (a ``parallel=True`` numba function) compiled without the thread
    pool, under its own name.

    A block with fewer sites than threads cannot use the pool, and starting it
    costs more than one site's work: on one site (V2, blocks of d_min steps) the
    pool made the mesoscopic run about 1.2x slower with one thread and 1.6x with
    two, and the microscopic one 3-5x slower with two. The arithmetic per site is
    the same, so the results are bitwise identical. The name matters: numba's
    on-disk cache files are named after the function.
    """
    f = kernel.py_func
    twin = pytypes.FunctionType(f.__code__, f.__globals__, name, f.__defaults__, f.__closure__)
    twin.__qualname__ = name
    twin.__doc__ = f"Serial twin of :func:`{f.__name__}` (same arguments)."
    return njit(cache=True)(twin)
