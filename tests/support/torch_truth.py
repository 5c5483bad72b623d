"""Autograd's own answer for torch tests: `torch.autograd.grad(loss, params, allow_unused=True)`.

None is `none`, all zeros `zero`, any NaN or Inf `nonfinite`, else `flowing`: what the report of
`tb_gradflow.torch` must say of each parameter.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch


def state_of(grad: torch.Tensor | None) -> str:
    if grad is None:
        return "none"
    if not bool(torch.isfinite(grad).all()):
        return "nonfinite"
    return "zero" if not bool(grad.any()) else "flowing"


def truth(
    loss_fn: Callable[..., Any], args: tuple, named: list[tuple[str, torch.Tensor]], seed: int = 0
) -> dict[str, str]:
    """Each named parameter's state by plain autograd, from a forward of its own."""
    torch.manual_seed(seed)
    loss = loss_fn(*args)
    params = [p for _, p in named]
    if not loss.requires_grad:
        return {n: "none" for n, _ in named}
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return {n: state_of(g) for (n, _), g in zip(named, grads, strict=True)}


def line_of(path: str, marker: str) -> str:
    """`file.py:N` of the one line of `path` ending in the comment `# marker`, as a report's
    source ends.
    """
    with open(path, encoding="utf-8") as f:
        hits = [i for i, line in enumerate(f, 1) if line.rstrip().endswith(f"# {marker}")]
    assert len(hits) == 1, f"marker {marker!r} found {len(hits)} times"
    return f"{os.path.basename(path)}:{hits[0]}"
