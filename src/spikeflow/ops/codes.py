"""Integer codes shared by the surrogate-gradient functions and every kernel (CPU, CUDA, reference).

=========  ====  =====  ========================================================
name       code  param  surrogate derivative ``d(z)`` (see ``functional/surrogate.py``)
=========  ====  =====  ========================================================
sigmoid    0     alpha  ``alpha * sig(alpha z) * (1 - sig(alpha z))``
atan       1     alpha  ``(alpha / 2) / (1 + (pi/2 alpha z)^2)``
rectangle  2     width  ``1/width`` if ``|z| < width/2`` else 0
gaussian   3     sigma  ``exp(-z^2 / (2 sigma^2)) / (sqrt(2 pi) sigma)``
triangle   4     width  ``max(0, width - |z|) / width^2``
=========  ====  =====  ========================================================
"""
from __future__ import annotations

__all__ = ["SIGMOID", "ATAN", "RECTANGLE", "GAUSSIAN", "TRIANGLE", "CODES", "NAMES"]

SIGMOID, ATAN, RECTANGLE, GAUSSIAN, TRIANGLE = 0, 1, 2, 3, 4
CODES = {"sigmoid": SIGMOID, "atan": ATAN, "rectangle": RECTANGLE, "gaussian": GAUSSIAN,
         "triangle": TRIANGLE}
NAMES = {code: name for name, code in CODES.items()}
