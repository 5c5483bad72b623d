"""How values are written in JSON, once for every reader: the routes, the export, the CLI.

JSON has no NaN or Inf, so a nonfinite number is spelled as a string ("nan", "inf", "-inf").
"""

from __future__ import annotations

import math


def json_float(value: float | None) -> float | str | None:
    """`value` as JSON allows it: None and finite numbers as they are, NaN and Inf as strings."""
    if value is None or math.isfinite(value):
        return value
    return str(value)
