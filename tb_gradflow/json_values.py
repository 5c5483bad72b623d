"""How values are written in JSON, once for every reader: the routes, the export, the CLI.

JSON has no NaN or Inf, so a nonfinite number is spelled as a string ("nan", "inf", "-inf").
"""

from __future__ import annotations

import math

import numpy as np

# Significant digits of norms in JSON: float32 holds about 7, a stored op norm about 2 (4.4 %).
NORM_DIGITS = 6


def json_float(value: float | None) -> float | str | None:
    """`value` as JSON allows it: None and finite numbers as they are, NaN and Inf as strings."""
    if value is None or math.isfinite(value):
        return value
    return str(value)


def significant_digits(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(mantissa, exponent, finite nonzero, exact) of 1-D float64 `x`: for each finite nonzero
    value, its NORM_DIGITS significant digits m and exponent e, the JSON value being the double
    nearest m * 10**e. `exact` marks those whose power of ten is exact in float64 (one rounding).
    """
    ok = np.isfinite(x) & (x != 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = (NORM_DIGITS - 1) - np.floor(np.log10(np.abs(np.where(ok, x, 1.0)))).astype(
            np.int64
        )
    exact = ok & (shift >= 0) & (shift <= 22)
    mantissa = np.zeros(x.shape, np.float64)
    mantissa[exact] = np.round(x[exact] * np.power(10.0, shift[exact]))
    exponent = np.where(ok, -shift, 0)
    for i in np.flatnonzero(ok & ~exact).tolist():  # norms above 1e5 or below 1e-17: rare
        digits, _, power = f"{x[i]:.{NORM_DIGITS - 1}e}".partition("e")
        mantissa[i], exponent[i] = int(digits.replace(".", "")), int(power) - (NORM_DIGITS - 1)
    return mantissa, exponent, ok, exact


def rounded_norms(norms: np.ndarray) -> np.ndarray:
    """Finite nonzero norms rounded to NORM_DIGITS significant digits, as float64 values whose
    shortest repr is that short: a third of the JSON that float32-to-float64 repr gives."""
    x = np.asarray(norms, np.float64).ravel()
    mantissa, exponent, ok, exact = significant_digits(x)
    out = x.copy()
    out[exact] = mantissa[exact] / np.power(10.0, -exponent[exact])
    for i in np.flatnonzero(ok & ~exact).tolist():
        out[i] = float(f"{x[i]:.{NORM_DIGITS}g}")
    return out.reshape(np.shape(norms))
