"""Numba building blocks shared by the fused neuron kernels: a vectorisable ``exp`` and the
surrogate derivatives over one block of neurons.

LLVM vectorises a loop only when every call in it has a vector version; numba has no vector
``exp`` without Intel SVML, so ``expneg`` computes ``exp(y)``, ``y <= 0``, from ``+ - * floor``
and integer ops only: range reduction ``y = k ln2 + r``, a polynomial in Estrin form (degree 12 in
float64, 6 in float32), times ``2^k`` written directly as exponent bits into a scratch row viewed
as integers. Relative error < 1e-15 in float64 and < 3e-7 in float32 down to the smallest normal
number. Every constant comes from a typed array (:func:`consts`) so float32 kernels never
promote to float64.

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
from numba import njit

from spikeflow.functional.surrogate import ATAN, GAUSSIAN, RECTANGLE, SIGMOID

__all__ = ["consts", "exp_parts", "expneg", "scratch", "surrogate_block", "ONE", "ZERO", "HALF"]

# indices into consts()
LOG2E, LN2HI, LN2LO, HALF, ONE, ZERO, YMIN, PI_HALF, INV_SQRT_2PI, IS_F64 = range(10)
_POLY = 10  # 13 coefficients 1/k!, k = 0..12


@lru_cache(maxsize=None)
def _consts(dtype_name: str) -> np.ndarray:
    f64 = dtype_name == "float64"
    values = [1 / math.log(2), 0.693145751953125, 1.42860682030941723212e-6, 0.5, 1.0, 0.0,
              (-1022 if f64 else -126) * math.log(2), math.pi / 2, 1 / math.sqrt(2 * math.pi),
              float(f64)]
    values += [1 / math.factorial(k) for k in range(13)]
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


@njit(cache=True, nogil=True, error_model="numpy")
def exp_parts(y, n, c, p, tmp):  # pragma: no cover - compiled
    """``exp(y[i]) = p[i] * tmp[i]`` for ``ymin <= y[i] <= 0`` (``ymin`` = ln of the smallest normal
    number: -1022 ln 2 in float64, -126 ln 2 in float32; below it the product is ``exp(ymin)``
    instead of a smaller number), ``i < n``.

    ``tmp`` receives the bits of ``2^k`` (read it as floats). ``p`` and ``tmp`` must not alias ``y``
    (LLVM then falls back to a branchy scalar loop, ~40x slower). Callers fuse the product into
    their next loop.
    """
    log2e = c[LOG2E]
    ln2hi = c[LN2HI]
    ln2lo = c[LN2LO]
    half = c[HALF]
    ymin = c[YMIN]
    c0, c1, c2, c3 = c[_POLY], c[_POLY + 1], c[_POLY + 2], c[_POLY + 3]
    c4, c5, c6, c7 = c[_POLY + 4], c[_POLY + 5], c[_POLY + 6], c[_POLY + 7]
    c8, c9, c10, c11 = c[_POLY + 8], c[_POLY + 9], c[_POLY + 10], c[_POLY + 11]
    c12 = c[_POLY + 12]
    if c[IS_F64] != 0:  # degree-12 polynomial, 2^k from the float64 exponent bits
        bits = tmp.view(np.int64)
        for i in range(n):
            yc = max(y[i], ymin)
            k = np.floor(yc * log2e + half)
            r = (yc - k * ln2hi) - k * ln2lo
            r2 = r * r
            r4 = r2 * r2
            q0 = (c0 + c1 * r) + (c2 + c3 * r) * r2
            q1 = (c4 + c5 * r) + (c6 + c7 * r) * r2
            q2 = (c8 + c9 * r) + (c10 + c11 * r) * r2
            p[i] = (q0 + q1 * r4) + (q2 + c12 * r4) * (r4 * r4)
            bits[i] = (np.int64(np.int32(k)) + 1023) << 52
    else:  # float32: degree 6 is enough; 2^k from the float32 exponent bits
        bits32 = tmp.view(np.int32)
        for i in range(n):
            yc = max(y[i], ymin)
            k = np.floor(yc * log2e + half)
            r = (yc - k * ln2hi) - k * ln2lo
            r2 = r * r
            q0 = (c0 + c1 * r) + (c2 + c3 * r) * r2
            q1 = (c4 + c5 * r) + c6 * r2
            p[i] = q0 + q1 * (r2 * r2)
            bits32[i] = (np.int32(k) + 127) << 23


@njit(cache=True, nogil=True, error_model="numpy")
def expneg(y, n, c, out, tmp):  # pragma: no cover - compiled
    """``out[i] = exp(y[i])`` for ``y[i] <= 0``, ``i < n``; 0 below the smallest normal number."""
    exp_parts(y, n, c, out, tmp)
    ymin = c[YMIN]
    zero = c[ZERO]
    for i in range(n):
        out[i] = (out[i] * tmp[i]) if y[i] >= ymin else zero


@njit(cache=True, nogil=True, error_model="numpy")
def surrogate_block(ht, thr, n, code, a, c, z, e, sg, dp):  # pragma: no cover - compiled
    """Surrogate derivative ``sg = dS/dz`` and ``dp = dF/da`` at ``z = ht - thr`` for ``i < n``.

    ``code``/``a`` as in :mod:`spikeflow.functional.surrogate`; ``z``, ``e`` are scratch buffers.
    """
    half = c[HALF]
    one = c[ONE]
    zero = c[ZERO]
    if code == SIGMOID:  # d = a e / (1 + e)^2 with e = exp(-|a z|) = sg * dp after exp_parts
        for i in range(n):
            zi = ht[i] - thr
            z[i] = zi
            e[i] = -abs(a * zi)
        exp_parts(e, n, c, sg, dp)
        for i in range(n):
            ee = sg[i] * dp[i]
            q = one + ee
            d = ee / (q * q)
            sg[i] = a * d
            dp[i] = z[i] * d
        return
    if code == GAUSSIAN:  # d = exp(-z^2 / (2 a^2)) / (sqrt(2 pi) a)
        k = -half / (a * a)
        inv = c[INV_SQRT_2PI] / a
        for i in range(n):
            zi = ht[i] - thr
            z[i] = zi
            e[i] = (zi * zi) * k
        exp_parts(e, n, c, sg, dp)
        for i in range(n):
            d = (sg[i] * dp[i]) * inv
            sg[i] = d
            dp[i] = -(z[i] / a) * d
        return
    for i in range(n):
        z[i] = ht[i] - thr
    if code == ATAN:
        w0 = c[PI_HALF] * a
        ah = a * half
        for i in range(n):
            w = w0 * z[i]
            den = one + w * w
            sg[i] = ah / den
            dp[i] = (z[i] * half) / den
    elif code == RECTANGLE:
        hw = a * half
        inv = one / a
        for i in range(n):
            inside = abs(z[i]) < hw
            sg[i] = inv if inside else zero
            dp[i] = -(z[i] * inv) * inv if inside else zero
    else:  # TRIANGLE
        inv2 = one / (a * a)
        for i in range(n):
            r = a - abs(z[i])
            d = (r if r > zero else zero) * inv2
            sg[i] = d
            dp[i] = -(z[i] / a) * d
