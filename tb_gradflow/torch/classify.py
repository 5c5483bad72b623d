"""Why a recorded torch op cuts the gradient: the torch side of the cause vocabulary.

A forward op is a cut when it reads a tensor that requires grad and gives back nothing that
does. What it is decides the cause; a custom `autograd.Function` is judged on the backward side
instead (capture.py), since only its backward says whether it returns None for an input.
"""

from __future__ import annotations

import torch

from tb_gradflow import vocabulary as V
from tb_gradflow.torch.recorder import LEAVES_TORCH, RecordedOp

DETACHING = frozenset({"detach", "detach_", "data"})
# Casts: what they give back is an integer or bool tensor, and that is all they do.
CASTS = frozenset(
    {"long", "int", "short", "char", "byte", "bool", "to", "type", "type_as", "new_tensor"}
)
# Row lookups: the table's rows the batch does not look up get no gradient.
LOOKUPS = frozenset({"embedding", "embedding_bag"})
# Gating ops: presence told at their input, as for Relu and Select on the TensorFlow side.
GATES = frozenset({"relu", "relu_", "relu6", "hardtanh", "clamp", "clip", "where", "threshold"})


def cut_cause(op: RecordedOp) -> tuple[str, str] | None:
    """(cause, detail) when `op` cuts the gradient on the forward side, else None."""
    if op.custom_function or not op.reads_grad or op.gives_grad:
        return None
    name = op.type
    if name in DETACHING:
        return V.DETACH, f"Tensor.{name}" + ("" if name == "data" else "()")
    if op.inference:
        return V.DETACH, f"{name} inside torch.inference_mode()"
    if not op.grad_enabled:
        return V.DETACH, f"{name} inside torch.no_grad()"
    if name in LEAVES_TORCH:
        return V.NUMPY, f"Tensor.{name}() leaves autograd; what is built from it has no history"
    if name in CASTS and _integer_outputs(op):
        return V.INTEGER_CAST, op.detail
    if name == "tensor" or name == "as_tensor":
        return V.NUMPY, f"torch.{name}() copies the values of tensors, not their history"
    return V.NON_DIFFERENTIABLE, op.detail or f"{name} has no gradient"


def _integer_outputs(op: RecordedOp) -> bool:
    return any(not (t.is_floating_point() or t.is_complex()) for t in op.outputs)


def dead_output_words(op: RecordedOp) -> str:
    """What the outputs without gradient of a mixed op are: "indices" for integer ones."""
    dead = [t for t in op.outputs if id(t) in op.dead_outputs]
    return "indices" if dead and not any(t.is_floating_point() for t in dead) else "outputs"


def is_gate(op: RecordedOp) -> bool:
    """Whether presence is told at the op's input (a ReLU passes back only where it was open)."""
    return op.type in GATES and any(isinstance(t, torch.Tensor) for t in op.input_tensors)


# Ops between a detach and .numpy() that only move or copy the values.
_MOVES = frozenset(
    {"cpu", "to", "clone", "contiguous", "float", "double", "squeeze", "view", "reshape"}
)


def detach_for_numpy(ops: list[RecordedOp], causes: dict[int, tuple[str, str]]) -> None:
    """A detach whose value goes on (through .cpu() and such) into .numpy(), .tolist() or
    .item() is the first half of a NumPy round trip: told as `numpy`, since `.numpy()` refuses a
    tensor that requires grad and so forces the detach."""
    readers: dict[int, list[int]] = {}
    for j, op in enumerate(ops):
        for i in op.inputs:
            readers.setdefault(i, []).append(j)
    for i, (cause, _) in list(causes.items()):
        if cause != V.DETACH or ops[i].type not in DETACHING:
            continue
        todo, seen = list(readers.get(i, [])), set()
        while todo:
            j = todo.pop()
            if j in seen:
                continue
            seen.add(j)
            if ops[j].type in LEAVES_TORCH:
                causes[i] = (
                    V.NUMPY,
                    f"Tensor.{ops[i].type}() then .{ops[j].type}(): the value "
                    "leaves autograd; what is built from it has no history",
                )
                break
            if ops[j].type in _MOVES:
                todo.extend(readers.get(j, []))
