"""Dead units of ReLU-family ops, the torch side of capture/units.py (issue 17).

A unit is one channel: the last axis of a Linear's output or of a [batch, time, features]
sequence, and axis 1 of a convolution's (torch lays channels first). It is dead when the op
is off there for every example of the batch: its output is zero there and it passes nothing
back. Only ops whose gradient is zero wherever their output is zero are counted, so that the
output alone tells it: `relu`, `hardtanh` with a lower bound of 0 (what `relu6` runs) and
`leaky_relu` with a slope of 0. A leaky ReLU with a slope, or an ELU, outputs zero only at
x = 0 and still passes a gradient back there: its units never die, and are not counted (the
TensorFlow side counts them, always 0 dead).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

# The op's argument that must be 0 for its off side to pass nothing back: (position after the
# input, keyword, default). relu has none.
_FLAT_WHEN_ZERO = {
    "relu": None,
    "relu_": None,
    "relu6": None,
    "hardtanh": (1, "min_val", -1.0),
    "hardtanh_": (1, "min_val", -1.0),
    "leaky_relu": (1, "negative_slope", 0.01),
    "leaky_relu_": (1, "negative_slope", 0.01),
}
# Producers that make a channels-first rank-3 tensor ([batch, channels, length]), looked for a
# few ops up from a rank-3 ReLU (through its batch norm, say).
_CHANNELS_FIRST = frozenset({"conv1d", "conv_transpose1d", "convolution", "_convolution"})
LOOK_UP = 3


def off_passes_nothing(name: str, args: Sequence[Any], kwargs: dict[str, Any]) -> bool:
    """Whether a call of `name` with these arguments is a ReLU-family op whose gradient is zero
    wherever its output is zero (recorded with the op: its arguments are gone afterwards)."""
    if name not in _FLAT_WHEN_ZERO:
        return False
    argument = _FLAT_WHEN_ZERO[name]
    if argument is None:
        return True
    position, keyword, default = argument
    value = args[position] if len(args) > position else kwargs.get(keyword, default)
    try:
        return float(value) == 0.0
    except (TypeError, ValueError):
        return False


def unit_axis(rank: int, producer_types: Sequence[str]) -> int:
    """The axis of the units of a ReLU output of `rank`, given the types of the ops up to
    LOOK_UP steps up from it (nearest first)."""
    if rank <= 2:
        return rank - 1
    if rank >= 4 or any(t in _CHANNELS_FIRST for t in producer_types):
        return 1
    return rank - 1


def dead_counts(outputs: Sequence[torch.Tensor], axes: Sequence[int]) -> list[int]:
    """Per output, how many indices along its unit axis are zero for every example. These ops
    output nothing below zero, so a unit is off where its maximum is zero: one reduction per
    output, over views (no copy of a convolution's activations), in the output's own dtype
    (bfloat16 under autocast), and the rest in numpy (after a backward pass a torch call costs
    several times a numpy one)."""
    counts = []
    for out, axis in zip(outputs, axes, strict=True):
        maxima = _unit_maxima(out.detach(), axis)
        if maxima.dtype not in (torch.float32, torch.float64):
            maxima = maxima.float()
        counts.append(int(np.count_nonzero(maxima.numpy() == 0)))
    return counts


def _unit_maxima(out: torch.Tensor, axis: int) -> torch.Tensor:
    """The maximum of `out` at each index of `axis`, over every other axis: reduced over the
    contiguous inner axes first (a view), then over the outer ones."""
    if out.dim() == 1:
        return out
    inner = out.flatten(axis + 1).amax(axis + 1) if axis + 1 < out.dim() else out
    return inner.flatten(0, axis - 1).amax(0) if axis > 0 else inner
