"""One backward pass over the parameters and the recorded tensors, and what it gave.

`torch.autograd.grad(loss, parameters + tensors, allow_unused=True)` is the truth the report
states: None is `none`, all zeros `zero`, any NaN or Inf `nonfinite`. Node hooks on gating ops
and custom Functions see what those pass back to their inputs in the same pass.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch

from tb_gradflow import vocabulary as V

_NONE, _FLOWING, _ZERO, _NONFINITE = (
    V.STATE_CODE[s] for s in (V.NONE, V.FLOWING, V.ZERO, V.NONFINITE)
)


@dataclasses.dataclass
class Values:
    """Per gradient: a state code, an L2 norm (NaN for none) and presence (NaN unknown)."""

    codes: np.ndarray
    norms: np.ndarray
    presence: np.ndarray


@dataclasses.dataclass
class NodeWatch:
    """What a gating op or a custom Function passed back in the pass (hook results)."""

    arrived: bool = False
    passed_back: list[torch.Tensor | None] = dataclasses.field(default_factory=list)
    # What arrived at the node's first output (a gate's presence is counted against it).
    received: torch.Tensor | None = None


def watch(tensor: torch.Tensor) -> tuple[NodeWatch, Any] | None:
    """A hook on the autograd node that made `tensor`: what reaches it and what it passes back."""
    node = tensor.grad_fn
    if node is None:
        return None
    seen = NodeWatch()

    def hook(
        grad_inputs: Sequence[torch.Tensor | None], grad_outputs: Sequence[torch.Tensor | None]
    ) -> None:
        seen.arrived = any(g is not None for g in grad_outputs)
        seen.passed_back = list(grad_inputs)
        seen.received = grad_outputs[0] if grad_outputs else None

    return seen, node.register_hook(hook)


@dataclasses.dataclass
class WrittenWatch:
    """The gradient of a buffer before an in-place write, reduced as the write's node passes it
    back (`reduced`), if that node ran in the pass (`ran`)."""

    counted: bool
    ran: bool = False
    reduced: Reduced | torch.Tensor | None = None


def watch_written(node: Any, counted: bool) -> tuple[WrittenWatch, Any]:
    """A hook on the node an in-place write made: the gradient it passes back to its first
    input, reduced where it arrives (as large activation gradients are: `measured_pass`)."""
    seen = WrittenWatch(counted)

    def hook(
        grad_inputs: Sequence[torch.Tensor | None], grad_outputs: Sequence[torch.Tensor | None]
    ) -> None:
        seen.ran = True
        g = grad_inputs[0] if grad_inputs else None
        if g is not None:
            out: list[Any] = [None]
            _reducer(out, 0, counted)(g)
            seen.reduced = out[0]

    return seen, node.register_hook(hook)


def gradients(loss: torch.Tensor, inputs: list[torch.Tensor]) -> list[torch.Tensor | None]:
    """D loss / d inputs, None for inputs the loss does not reach (all of them when the loss has
    no history, as after `loss.requires_grad = True`).
    """
    if not inputs or not loss.requires_grad:
        return [None] * len(inputs)
    return list(torch.autograd.grad(loss, inputs, allow_unused=True))


# From this size on, a tensor's gradient is reduced by a hook as it arrives rather than held to
# the end of the pass (bench/overhead.py --torch: the CNN's 256 KB to 2 MB activation gradients).
HOOKED_BYTES = 256 * 1024


class Reduced(NamedTuple):
    """A gradient's L2 norm and nonzero count (0-dim tensors on its device), taken as it arrives
    in the pass; the gradient itself only when a value may be NaN or Inf (those need it again).
    A tuple: one is made per gradient per logged step."""

    norm: torch.Tensor
    nonzero: torch.Tensor | None
    numel: int
    grad: torch.Tensor | None


def measured_pass(
    loss: torch.Tensor,
    parameters: list[torch.Tensor],
    tensors: list[torch.Tensor],
    counted: Sequence[bool],
) -> tuple[list[torch.Tensor | None], list[Reduced | torch.Tensor | None]]:
    """One backward pass: the parameters' gradients, and for each of `tensors` what `values`
    needs of its gradient (None where `torch.autograd.grad` would give None).

    The same pass as `gradients(loss, parameters + tensors)`, cheaper: a gradient the pass
    computes on its way to a parameter is reduced by a hook where it arrives and then freed, as
    `backward()` frees it, instead of being held to the end (on CPU, ten held activation
    gradients of a small CNN cost as much as a third of its backward pass, in fresh pages). Only
    the tensors below which no parameter lies are asked for as inputs, so that the pass still
    computes their gradients. Small gradients are asked for too: below `HOOKED_BYTES`, a hook
    costs more than holding one (a small MLP's are 128 KB).
    """
    reduced: list[Reduced | torch.Tensor | None] = [None] * len(tensors)
    if not loss.requires_grad or not (parameters or tensors):
        return [None] * len(parameters), reduced
    large = [t.numel() * t.element_size() >= HOOKED_BYTES for t in tensors]
    above = _above_parameters(loss, parameters) if any(large) else set()
    asked, handles = [], []
    try:
        for k, t in enumerate(tensors):
            if large[k] and t.grad_fn in above:
                handles.append(t.register_hook(_reducer(reduced, k, counted[k])))
            else:
                asked.append(k)
        grads = gradients(loss, parameters + [tensors[k] for k in asked])
    finally:
        for handle in handles:
            handle.remove()
    for k, g in zip(asked, grads[len(parameters) :], strict=True):
        reduced[k] = g
    return grads[: len(parameters)], reduced


def _reducer(out: list[Any], k: int, counted: bool) -> Callable[[torch.Tensor], None]:
    def hook(g: torch.Tensor) -> None:
        try:
            out[k] = reduce(g, counted)
        except Exception:  # noqa: BLE001 - never fail the pass: hold the gradient instead
            out[k] = g

    return hook


def reduce(g: torch.Tensor, counted: bool) -> Reduced:
    """`g`'s norm (and nonzero count when `counted`), keeping `g` only when the norm is not
    finite (off the CPU always: checking there would wait for the device)."""
    dense = _dense(g)
    norm = torch._foreach_norm([dense])[0]
    keep = dense.device.type != "cpu" or not math.isfinite(norm.item())
    return Reduced(
        norm, _nonzero_count(dense) if counted else None, dense.numel(), dense if keep else None
    )


def _above_parameters(loss: torch.Tensor, parameters: list[torch.Tensor]) -> set[Any]:
    """The autograd nodes below `loss` from which one of `parameters` is reached: the nodes a
    pass over the parameters runs (and so whose tensor hooks fire)."""
    leaf_ids = {id(p) for p in parameters if p.grad_fn is None}
    inner = {p.grad_fn for p in parameters if p.grad_fn is not None}
    above: dict[Any, bool] = {}
    below: dict[Any, list[Any]] = {}
    stack = [loss.grad_fn] if loss.grad_fn is not None else []
    while stack:  # depth first, without recursion (an unrolled RNN is deep)
        node = stack[-1]
        if node in above:
            stack.pop()
            continue
        nexts = below.get(node)
        if nexts is None:
            nexts = below[node] = [n for n, _ in node.next_functions if n is not None]
            pending = [n for n in nexts if n not in above]
            if pending:
                stack.extend(pending)
                continue
        stack.pop()
        above[node] = (
            node in inner
            or id(getattr(node, "variable", None)) in leaf_ids
            or any(above[n] for n in nexts)
        )
    return {node for node, reaches in above.items() if reaches}


def values(
    grads: Sequence[Reduced | torch.Tensor | None], counted: Sequence[bool] | None = None
) -> Values:
    """States, norms and presence of gradients, read from the device in one transfer.

    Every gradient gets its L2 norm; those `counted` says (default: all) also get their nonzero
    count, hence presence and an exact zero state. Counting is the costlier reduction, so the
    capture counts parameters and the inputs of gates, whose presence the story tells, and leaves
    the other ops' presence unknown (their zero state then rests on a norm of exactly 0).
    A gradient reduced already (`Reduced`) keeps its own count or lack of one."""
    n = len(grads)
    # Python lists, made arrays at the end: a numpy item assignment costs more than the rest of
    # a value's handling here.
    codes = [_NONE] * n
    norms = [math.nan] * n
    presence = [math.nan] * n
    present = _reduced(grads, counted)
    if not present:
        return _arrays(codes, norms, presence)
    # Fused L2 norms, nonzero counts, then one transfer.
    counts = [r.nonzero for _, r in present if r.nonzero is not None]
    numbers = _stacked([r.norm for _, r in present] + counts).tolist()
    c = len(present)
    for j, (i, r) in enumerate(present):
        norm, size = numbers[j], max(r.numel, 1)
        count: float | None = None
        if r.nonzero is not None:
            count, c = numbers[c], c + 1
        if not math.isfinite(norm) and r.grad is not None:
            g = r.grad
            finite = torch.isfinite(g)
            if bool(finite.all()):  # a float32 norm that overflowed
                norm = float(torch.linalg.vector_norm(g.to(torch.float64)))
            else:
                codes[i], norms[i] = _NONFINITE, norm
                presence[i] = float((finite & (g != 0)).sum()) / size
                continue
        codes[i] = _ZERO if (norm == 0 if count is None else count == 0) else _FLOWING
        norms[i] = norm
        if count is not None:
            presence[i] = count / size
    return _arrays(codes, norms, presence)


def _arrays(codes: list[int], norms: list[float], presence: list[float]) -> Values:
    return Values(np.array(codes, np.uint8), np.array(norms), np.array(presence))


def _reduced(
    grads: Sequence[Reduced | torch.Tensor | None], counted: Sequence[bool] | None
) -> list[tuple[int, Reduced]]:
    """(index, Reduced) of each gradient present; the tensors among them reduced together (one
    fused norm)."""
    out: list[tuple[int, Reduced]] = []
    tensors: list[tuple[int, torch.Tensor]] = []
    for i, g in enumerate(grads):
        if isinstance(g, Reduced):
            out.append((i, g))
        elif g is not None:
            tensors.append((i, _dense(g)))
    if tensors:
        fused = torch._foreach_norm([g for _, g in tensors])
        out += [
            (i, Reduced(norm, _nonzero_count(g) if counted is None or counted[i] else None,
                        g.numel(), g))
            for (i, g), norm in zip(tensors, fused, strict=True)
        ]
        if len(out) > len(tensors):  # some reduced in the pass: back in the gradients' order
            out.sort(key=lambda item: item[0])
    return out


def _nonzero_count(g: torch.Tensor) -> torch.Tensor:
    """How many elements of `g` are nonzero, as a float scalar (NaN when one is NaN).

    The sum of |sign(x)|: on CPU 3x (dense) to 20x (a half-zero ReLU gradient) faster than
    `count_nonzero` or `_foreach_norm(..., 0)`, whose per-element branch mispredicts (2.4 ms
    against 0.12 ms for a 32x16x32x32 ReLU gradient, one thread). Summed in float32 at least (a
    float16 sum rounds above 2048 and overflows above 65504): 0 exactly when all are zero,
    within 1e-7 relative otherwise.
    """
    dtype = torch.float64 if g.dtype == torch.float64 else torch.float32
    return g.sign().abs_().sum(dtype=dtype)


def _stacked(scalars: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per-tensor results as one vector, for one transfer: as they are when of one dtype (float32
    values are exact as Python floats), else as float64 (gradients of mixed dtypes give mixed
    dtypes)."""
    if all(x.dtype == scalars[0].dtype for x in scalars):
        return torch.stack(list(scalars))
    return torch.stack([x.to(torch.float64) for x in scalars])


def _dense(g: torch.Tensor) -> torch.Tensor:
    if g.is_sparse:
        g = g.coalesce().values()
    return g.abs() if g.is_complex() else g


def presence_of(g: torch.Tensor | None) -> float:
    """The fraction of `g`'s elements that are nonzero and finite (NaN for no gradient)."""
    if g is None:
        return math.nan
    g = _dense(g)
    count = float(_nonzero_count(g))
    if count != 0 and not bool(torch.isfinite(g).all()):
        count = int((torch.isfinite(g) & (g != 0)).sum())
    return count / max(g.numel(), 1)
