"""Numba building blocks shared by the fused neuron kernels: a vectorisable ``exp`` and the
surrogate derivatives, as scalar functions that the kernels call inside their loops over a block.

LLVM vectorises a loop only when every call in it has a vector version; numba has no vector
``exp`` without Intel SVML, so :func:`exp_neg` computes ``exp(y)``, ``y <= 0``, from ``+ - *
floor`` and integer ops only: range reduction ``y = k ln2 + r``, a polynomial in Horner form
(float64: Taylor, degree 12; float32: a degree-5 minimax fit, see ``F32_POLY``), times ``2^k``
made by writing ``k`` into the exponent bits (:func:`pow2`, a bit cast, so the whole ``exp`` is
straight-line code that LLVM inlines and vectorises inside the caller's loop: no extra pass over
scratch rows). Relative error < 1e-15 in float64 and < 3e-7 in float32 down to the smallest
normal number. Horner rather than Estrin form: with the backward's fused multiply-add
(:data:`GRAD_MATH`) each Horner step is one instruction, the fewest in all (together 19% faster
LIF backward on one thread; Horner without FMA made no difference). Every constant comes from a
typed array (:func:`consts`) so float32 kernels never promote to float64; kernels copy them into a
tuple of scalars (:func:`sur_consts`) before a loop, since a load from an array inside the loop
might alias the loop's stores and block vectorisation.

The surrogate code is a run-time argument of :func:`surrogate`; the kernels branch on it outside
their loops (:func:`surrogate` is called with a constant per loop copy), so each loop body is
straight-line code.

Loops over a block use 1-D row views (``x[t, lo:hi]``) so numba knows they are contiguous; a loop
over a block never stores conditionally (masked stores are slow on AMD CPUs), it selects values.
Scratch rows come from :func:`scratch`, whose rows are staggered by one cache line: blocks of 4 KiB
at the same offset modulo 4096 all map to the same L1 set, and a loop touching ten of them thrashes
the 8-way L1 (measured: 3.5x slower backward).
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

from spikeflow._numba_cache import ensure_numba_cache
from spikeflow.ops.codes import ATAN, GAUSSIAN, RECTANGLE, SIGMOID, TRIANGLE

ensure_numba_cache()  # before any kernel is defined: every neuron kernel module imports this one

__all__ = ["GRAD_MATH", "consts", "expneg", "exp_neg", "pow2", "scratch", "sur_consts", "surrogate",
           "surrogate_block", "ONE", "ZERO", "HALF"]

# fastmath flags of the backward loops (gradient arithmetic only; the forward, whose spikes must
# equal the reference loop's bit for bit, has none): fused multiply-add. Measured: LIF backward
# 19% faster on one thread (the sigmoid surrogate's polynomial and chain rule are mul+add pairs);
# gradients move at the rounding level (float64: ~1e-16 relative).
GRAD_MATH = {"contract"}

# indices into consts()
LOG2E, LN2HI, LN2LO, HALF, ONE, ZERO, YMIN, PI_HALF, INV_SQRT_2PI, IS_F64 = range(10)
_POLY = 10  # 13 polynomial coefficients, constant term first

# float32 exp(r) on [-ln2/2, ln2/2]: 1 + a degree-5 fit minimising the relative error (iteratively
# reweighted least squares on 4000 Chebyshev points, numpy; the constant term is held at 1 so that
# exp(0) == 1 exactly); max relative error 1.7e-7 including the float32 Horner evaluation (Taylor
# of degree 5: 2.4e-6; of degree 6: 1.2e-7).
F32_POLY = (1.0, 0.9999997019767761, 0.4999915063381195, 0.1666763573884964, 0.04189793020486832,
            0.008290314115583897)


@lru_cache(maxsize=None)
def _consts(dtype_name: str) -> np.ndarray:
    f64 = dtype_name == "float64"
    values = [1 / math.log(2), 0.693145751953125, 1.42860682030941723212e-6, 0.5, 1.0, 0.0,
              (-1022 if f64 else -126) * math.log(2), math.pi / 2, 1 / math.sqrt(2 * math.pi),
              float(f64)]
    values += [1 / math.factorial(k) for k in range(13)] if f64 else [*F32_POLY, *[0.0] * 7]
    out = np.array(values, dtype=dtype_name)
    out.setflags(write=False)
    return out


def consts(dtype: np.dtype) -> np.ndarray:
    """The typed constants array the kernels read (cached per dtype, read-only)."""
    return _consts(np.dtype(dtype).name)


_PAD = 16  # elements added to each scratch row: 64 B (float32) or 128 B (float64)


@njit(cache=True, nogil=True, error_model="numpy")
def scratch(rows, bs, dtype):  # pragma: no cover - compiled
    """``[rows, bs + pad]`` work array; use ``out[r, :bs]`` (rows start in different L1 sets)."""
    return np.empty((rows, bs + _PAD), dtype)


@intrinsic
def pow2(typingctx, k):  # pragma: no cover - compiled
    """``2^k`` for an integral float ``k`` in the normal exponent range of its type (float32 or
    float64): the biased exponent shifted into place and bit cast, vectorisable unlike ``ldexp``."""
    if k not in (types.float32, types.float64):
        return None
    width, bias, shift = (64, 1023, 52) if k == types.float64 else (32, 127, 23)

    def codegen(context, builder, signature, args):
        int_t = context.get_value_type(types.int64 if width == 64 else types.int32)
        e = builder.add(builder.fptosi(args[0], int_t), int_t(bias))
        return builder.bitcast(builder.shl(e, int_t(shift)), context.get_value_type(k))

    return k(k), codegen


@intrinsic
def is_float64(typingctx, x):  # pragma: no cover - compiled
    """Compile-time constant: whether ``x`` is a float64 (selects the polynomial degree)."""
    def codegen(context, builder, signature, args):
        return context.get_constant(types.boolean, x == types.float64)

    return types.boolean(x), codegen


@njit(cache=True, nogil=True, error_model="numpy")
def sur_consts(c):  # pragma: no cover - compiled
    """The constants of :func:`exp_neg` and :func:`surrogate` as a tuple of scalars."""
    return (c[LOG2E], c[LN2HI], c[LN2LO], c[HALF], c[ONE], c[ZERO], c[YMIN], c[PI_HALF],
            c[INV_SQRT_2PI], c[_POLY], c[_POLY + 1], c[_POLY + 2], c[_POLY + 3], c[_POLY + 4],
            c[_POLY + 5], c[_POLY + 6], c[_POLY + 7], c[_POLY + 8], c[_POLY + 9], c[_POLY + 10],
            c[_POLY + 11], c[_POLY + 12])


@njit(cache=True, nogil=True, error_model="numpy", fastmath=GRAD_MATH)
def exp_neg(y, k):  # pragma: no cover - compiled
    """``exp(y)`` for ``y <= 0`` (0 below the smallest normal number); ``k`` from :func:`sur_consts`."""
    ymin = k[6]
    yc = max(y, ymin)
    m = np.floor(yc * k[0] + k[3])
    r = (yc - m * k[1]) - m * k[2]
    if is_float64(y):  # degree 12
        p = k[21] * r + k[20]
        p = p * r + k[19]
        p = p * r + k[18]
        p = p * r + k[17]
        p = p * r + k[16]
        p = p * r + k[15]
        p = p * r + k[14]
        p = p * r + k[13]
    else:  # float32: degree 5
        p = k[14] * r + k[13]
    p = p * r + k[12]
    p = p * r + k[11]
    p = p * r + k[10]
    p = p * r + k[9]
    return (p * pow2(m)) if y >= ymin else k[5]


@njit(cache=True, nogil=True, error_model="numpy", fastmath=GRAD_MATH)
def expneg(y, n, c, out, tmp):  # pragma: no cover - compiled
    """``out[i] = exp(y[i])`` for ``y[i] <= 0``, ``i < n``; 0 below the smallest normal number
    (``tmp`` is unused, kept for the call signature)."""
    k = sur_consts(c)
    for i in range(n):
        out[i] = exp_neg(y[i], k)


@njit(cache=True, nogil=True, error_model="numpy", fastmath=GRAD_MATH)
def surrogate(z, code, a, k):  # pragma: no cover - compiled
    """``(dS/dz, dF/da)`` of surrogate ``code`` with parameter ``a`` at ``z = H - thr``
    (formulas of :mod:`spikeflow.functional.surrogate`); ``k`` from :func:`sur_consts`."""
    half, one, zero = k[3], k[4], k[5]
    if code == SIGMOID:  # d = a e / (1 + e)^2 with e = exp(-|a z|)
        ee = exp_neg(-abs(a * z), k)
        q = one + ee
        d = ee / (q * q)
        return a * d, z * d
    if code == GAUSSIAN:  # d = exp(-z^2 / (2 a^2)) / (sqrt(2 pi) a)
        d = exp_neg((z * z) * (-half / (a * a)), k) * (k[8] / a)
        return d, -(z / a) * d
    if code == ATAN:
        w = (k[7] * a) * z
        den = one + w * w
        return (a * half) / den, (z * half) / den
    if code == RECTANGLE:
        inv = one / a
        inside = abs(z) < a * half
        return (inv if inside else zero), (-(z * inv) * inv if inside else zero)
    inv2 = one / (a * a)  # TRIANGLE
    r = a - abs(z)
    d = (r if r > zero else zero) * inv2
    return d, -(z / a) * d


@njit(cache=True, nogil=True, error_model="numpy", fastmath=GRAD_MATH)
def surrogate_block(ht, thr, n, code, a, c, z, e, sg, dp):  # pragma: no cover - compiled
    """``sg[i], dp[i] = surrogate(ht[i] - thr)`` for ``i < n`` (``z``, ``e`` unused)."""
    k = sur_consts(c)
    if code == SIGMOID:  # one loop per code: straight-line bodies (see the module docstring)
        for i in range(n):
            sg[i], dp[i] = surrogate(ht[i] - thr, SIGMOID, a, k)
    elif code == GAUSSIAN:
        for i in range(n):
            sg[i], dp[i] = surrogate(ht[i] - thr, GAUSSIAN, a, k)
    elif code == ATAN:
        for i in range(n):
            sg[i], dp[i] = surrogate(ht[i] - thr, ATAN, a, k)
    elif code == RECTANGLE:
        for i in range(n):
            sg[i], dp[i] = surrogate(ht[i] - thr, RECTANGLE, a, k)
    else:
        for i in range(n):
            sg[i], dp[i] = surrogate(ht[i] - thr, TRIANGLE, a, k)
