"""One torch step captured: the recorded forward, one backward pass, the Graph and the Step.

The Graph and Step are the stored protos of the TensorFlow side (format/), built here from the
recording, so that the report, the plugin and the CLI read a torch step as they read any other.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from tb_gradflow import vocabulary as V
from tb_gradflow.format.records import build_report, encode_step_arrays
from tb_gradflow.proto import gradflow_pb2
from tb_gradflow.report import Report
from tb_gradflow.torch import classify, measure, units
from tb_gradflow.torch.params import Parameters, Unsupported, collect
from tb_gradflow.torch.recorder import RecordedOp, Recording, record

FRAMEWORK = "torch"


@dataclasses.dataclass
class Capture:
    """A captured step: its protos, exact values, and the parameters' gradients."""

    graph: gradflow_pb2.Graph
    step: gradflow_pb2.Step
    exact: tuple[np.ndarray, ...]
    parameters: Parameters
    grads: list[torch.Tensor | None]
    loss: torch.Tensor

    def report(self, step_number: int | None = None) -> Report:
        """The same Report as the TensorFlow side, with exact norms (the Step quantizes op
        norms)."""
        return build_report(self.graph, self.step, step_number, checked=False, exact=self.exact)


def loss_tensor(out: Any) -> torch.Tensor:
    """The loss a loss function returns: a tensor, the first of a tuple, or a dict's "loss"."""
    if isinstance(out, dict):
        out = out.get("loss", next(iter(out.values()), None))
    if isinstance(out, (tuple, list)) and out:
        out = out[0]
    if not isinstance(out, torch.Tensor):
        raise TypeError(
            "the loss function must return a tensor (or a tuple or dict holding one), "
            f"got {type(out).__name__}"
        )
    return out


class CaptureError(RuntimeError):
    """The capture failed after the loss ran; `grads_used` says whether the loss's graph is
    spent."""

    def __init__(self, message: str, grads_used: bool):
        super().__init__(message)
        self.grads_used = grads_used


def capture(
    loss_fn: Callable[..., Any],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    parameters: Any = None,
    optimizer: Any = None,
    scaler: Any = None,
) -> Capture:
    """Runs the loss once, recorded, and takes one backward pass (no optimizer step).

    With `optimizer`, its `zero_grad()` comes first. With a `torch.amp.GradScaler`, the pass is
    over the scaled loss, as `scaler.scale(loss).backward()` takes it (the gradients handed back
    are scaled, for `scaler.step`); the report's norms are divided by the scale again. An error
    of `loss_fn` itself propagates; one of the capture raises CaptureError.
    """
    try:
        params = collect(loss_fn, args, kwargs, parameters, optimizer)
        recorder = record(params.module_names)
    except Unsupported:
        raise
    except Exception as e:
        raise CaptureError(f"{type(e).__name__}: {e}", grads_used=False) from e
    if optimizer is not None:
        optimizer.zero_grad()
    with recorder as rec:
        out = loss_fn(*args, **kwargs)
    analysis = None
    try:
        if recorder.mode.error is not None:
            raise recorder.mode.error
        analysis = _Analysis(rec, params, loss_tensor(out), scaler)
        return analysis.run()
    except Exception as e:
        raise CaptureError(
            f"{type(e).__name__}: {e}", grads_used=bool(analysis and analysis.grads_used)
        ) from e


class _Analysis:
    """The loss path of a recording, its cuts and its values."""

    def __init__(self, rec: Recording, params: Parameters, loss: torch.Tensor, scaler: Any = None):
        self.rec, self.params, self.loss, self.scaler = rec, params, loss, scaler
        self.var_index = {id(p): i for i, (_, p) in enumerate(params.trained)}
        self.causes = {i: c for i, op in enumerate(rec.ops) if (c := classify.cut_cause(op))}
        classify.detach_for_numpy(rec.ops, self.causes)
        self.grads_used = False
        self._readers: collections.Counter[int] | None = None
        self._tables: set[int] | None = None

    def run(self) -> Capture:
        rec, loss = self.rec, self.loss
        loss_op = rec.producer.get(id(loss), -1)
        on_path = self._closure([loss_op] if loss_op >= 0 else [])
        self._dead_outputs_read(on_path)
        targets = self._targets(on_path)
        watches = {i: w for i in on_path if (w := self._watch(i)) is not None}
        scalar = loss if loss.numel() == 1 else loss.sum()
        n_vars = len(self.params.trained)
        self.grads_used = True
        differentiated = scalar if scalar.dim() == 0 else scalar.reshape(())
        scaled = self.scaler is not None and differentiated.requires_grad
        if scaled:
            differentiated = self.scaler.scale(differentiated)
        gate_ops = {i for i in on_path if classify.is_gate(self.rec.ops[i])}
        # A gate's presence is what it passes back (the gradient at its input) over what arrives
        # (the gradient at its output): both are counted.
        counted_at = gate_ops | {j for i in gate_ops for j in self.rec.ops[i].inputs}
        counted = [i in counted_at for i, _ in targets]
        written = {
            i: measure.watch_written(node, i in counted_at)
            for i, node in self._written_over(on_path, targets).items()
        }
        try:
            grads, reduced = measure.measured_pass(
                differentiated, [p for _, p in self.params.trained], [t for _, t in targets], counted
            )
        finally:
            for _, handle in [*watches.values(), *written.values()]:
                handle.remove()
        # Ops whose output an in-place write overwrote: measured where the write passed back.
        ran = [(i, seen) for i, (seen, _) in written.items() if seen.ran]
        measured: list[tuple[int, torch.Tensor | None]] = [*targets, *((i, None) for i, _ in ran)]
        values = measure.values(
            [*grads, *reduced, *(seen.reduced for _, seen in ran)],
            [True] * n_vars + counted + [seen.counted for _, seen in ran],
        )
        if scaled:
            values.norms /= float(self.scaler.get_scale())
        self._judge_functions(watches)
        var_codes = values.codes[:n_vars]
        extra = [
            i
            for i, (c, _) in self.causes.items()
            if i not in on_path and c == V.NUMPY and self._starved(i, var_codes)
        ]
        kept = sorted(on_path | self._closure(extra))
        graph, exact, dead = self._graph(kept, loss_op, measured, values, watches, n_vars)
        step = encode_step_arrays(
            graph.graph_id,
            exact[0],
            exact[1].astype(np.float32),
            exact[2],
            exact[3],
            float(scalar.item()),
            exact[4],
            exact[5],
            dead_units=dead,
        )
        return Capture(graph, step, exact, self.params, grads, loss)

    def _written_over(
        self, on_path: set[int], targets: list[tuple[int, torch.Tensor]]
    ) -> dict[int, Any]:
        """Ops of the path whose output a later op wrote in place (a BatchNorm before
        `ReLU(inplace=True)`): their tensor now holds the write, so its gradient cannot be
        asked for; each maps to the node of the first write, which passes that gradient back."""
        targeted = {i for i, _ in targets}
        found: dict[int, Any] = {}
        for j in sorted(on_path):
            write = self.rec.ops[j]
            if write.write_node is None:
                continue
            buffer = write.outputs[0]
            for i in write.inputs:
                unasked = i not in targeted and i not in found and i not in self.causes
                if unasked and any(t is buffer for t in self.rec.ops[i].outputs):
                    found[i] = write.write_node
        return found

    def _dead_outputs_read(self, on_path: set[int]) -> None:
        """An op with outputs of both kinds (topk, max, sort: values and indices) is a cut when
        the loss path reads one of its outputs that carries no gradient."""
        for j in on_path:
            reader = self.rec.ops[j]
            for i in reader.inputs:
                op = self.rec.ops[i]
                if i in self.causes or not op.gives_grad or op.custom_function:
                    continue
                if any(id(t) in op.dead_outputs for t in reader.input_tensors):
                    self.causes[i] = (
                        V.NON_DIFFERENTIABLE,
                        f"{op.type}'s {classify.dead_output_words(op)} carry no gradient",
                    )

    def _closure(self, starts: list[int]) -> set[int]:
        seen: set[int] = set()
        todo = list(starts)
        while todo:
            i = todo.pop()
            if i not in seen:
                seen.add(i)
                todo.extend(self.rec.ops[i].inputs)
        return seen

    def _targets(self, on_path: set[int]) -> list[tuple[int, torch.Tensor]]:
        """(op, its output tensor) for each op whose gradient can be asked for: one output that
        requires grad, made by this op and not written in place since.
        """
        out = []
        for i in sorted(on_path):
            t = self._output(i)
            if t is not None:
                out.append((i, t))
        return out

    def _output(self, i: int) -> torch.Tensor | None:
        rec = self.rec
        for t in rec.ops[i].outputs:
            if (
                t.requires_grad
                and t.grad_fn is not None
                and rec.producer.get(id(t)) == i
                and not t.is_inference()
                and rec.versions.get(id(t)) == t._version
                and id(t) not in self.var_index
            ):
                return t
        return None

    def _watch(self, i: int) -> tuple[measure.NodeWatch, Any] | None:
        op = self.rec.ops[i]
        if not (op.custom_function or (classify.is_gate(op) and not self._sole_reader(i))):
            return None
        t = self._output(i)
        return None if t is None else measure.watch(t)

    def _sole_reader(self, i: int) -> bool:
        """Whether op `i` has one input op and is the only recorded op reading its output."""
        op = self.rec.ops[i]
        if len(op.inputs) != 1:
            return False
        if self._readers is None:
            self._readers = collections.Counter(j for o in self.rec.ops for j in set(o.inputs))
        return self._readers[op.inputs[0]] == 1

    def _judge_functions(self, watches: dict[int, tuple[measure.NodeWatch, Any]]) -> None:
        """A custom Function that got a gradient and passed back None for an input that requires
        grad is a cut (custom_gradient).
        """
        for i, (seen, _) in watches.items():
            op = self.rec.ops[i]
            if not (op.custom_function and seen.arrived):
                continue
            dropped = [
                k
                for k, (g, t) in enumerate(zip(seen.passed_back, op.input_tensors, strict=False))
                if g is None and t.requires_grad
            ]
            if dropped:
                self.causes[i] = (
                    V.CUSTOM_GRADIENT,
                    f"{op.type}.backward returns None for input {dropped[0]}",
                )

    def _upstream_vars(self, i: int) -> list[int]:
        found: list[int] = []
        for j in sorted(self._closure([i])):
            for t in self.rec.ops[j].input_tensors:
                k = self.var_index.get(id(t))
                if k is not None and k not in found:
                    found.append(k)
        return found

    def _starved(self, i: int, var_codes: np.ndarray) -> list[int]:
        return [k for k in self._upstream_vars(i) if var_codes[k] == V.STATE_CODE[V.NONE]]

    def _graph(
        self,
        kept: list[int],
        loss_op: int,
        targets: Sequence[tuple[int, torch.Tensor | None]],
        values: measure.Values,
        watches: dict[int, tuple[measure.NodeWatch, Any]],
        n_vars: int,
    ) -> tuple[gradflow_pb2.Graph, tuple[np.ndarray, ...], list[int]]:
        """The graph version (content-keyed), the exact values of its ops and variables, and
        the dead units of each op with units, in op order."""
        position = {i: k for k, i in enumerate(kept)}
        var_index = self.var_index
        target_row = {i: n_vars + r for r, (i, _) in enumerate(targets)}
        widths, dead = self._units(kept, target_row, values)
        # Who reads each op on the path: asked of cuts only, so built only when there are any.
        readers = _path_readers(self.rec.ops, kept) if any(i in self.causes for i in kept) else {}
        var_codes = values.codes[:n_vars]
        # Lists, made arrays at the end (numpy item assignment is the slower way).
        op_codes = [0] * len(kept)
        op_norms = [math.nan] * len(kept)
        op_presence = [math.nan] * len(kept)
        all_codes, all_norms, all_presence = (
            values.codes.tolist(),
            values.norms.tolist(),
            values.presence.tolist(),
        )
        fields = []
        for k, i in enumerate(kept):
            op = self.rec.ops[i]
            row = target_row.get(i)
            if row is not None:
                op_codes[k], op_norms[k], op_presence[k] = (
                    all_codes[row],
                    all_norms[row],
                    all_presence[row],
                )
            gate = classify.is_gate(op)
            if gate:
                op_presence[k] = self._gate_presence(op, watches.get(i), target_row, values, row)
            cause, detail = self.causes.get(i, (None, ""))
            starved = tuple(self._starved(i, var_codes)) if cause else ()
            if cause and not starved and self._where_condition(i, readers):
                detail = V.WHERE_CONDITION_DETAIL
            if cause and row is None:
                # What reaches a cut from the loss: the state of the nearest measured ops that
                # read what it made (its own output carries no gradient to measure).
                op_codes[k] = V.STATE_CODE[self._arriving(i, readers, target_row, values)]
            fields.append(
                (
                    op.scope,
                    op.type,
                    tuple([position[j] for j in op.inputs if j in position]),
                    tuple(
                        dict.fromkeys(
                            [var_index[id(t)] for t in op.input_tensors if id(t) in var_index]
                        )
                    ),
                    tuple([_shape_text(t.shape) for t in op.outputs]),
                    tuple([_dtype_text(t.dtype) for t in op.outputs]),
                    op.source,
                    op.library_source,
                    V.CAUSE_CODE[cause],
                    detail,
                    starved,
                    # measured: its own value, or known to carry nothing (not a cut's borrowed one)
                    row is not None or not (op.gives_grad or cause),
                    gate,
                    widths.get(i, 0),
                )
            )
        looked_up = self._looked_up(kept)
        key = (
            tuple(
                [
                    (n, _shape(p), _dtype(p), k in looked_up)
                    for k, (n, p) in enumerate(self.params.trained)
                ]
            ),
            tuple([(n, _shape(p), _dtype(p)) for n, p in self.params.frozen]),
            position.get(loss_op, -1),
            tuple(fields),
            _shape(self.loss) if self.loss.dim() else "",  # a non-scalar loss is summed
        )
        exact = (
            np.array(op_codes, np.uint8),
            np.array(op_norms),
            var_codes,
            values.norms[:n_vars],
            np.array(op_presence),
            values.presence[:n_vars],
        )
        return _graph_of(key), exact, dead

    def _units(
        self, kept: list[int], target_row: dict[int, int], values: measure.Values
    ) -> tuple[dict[int, int], list[int]]:
        """Per ReLU-family op a gradient reaches whose output is unchanged since: its number
        of units (torch/units.py), and, in op order, how many of them are dead."""
        widths: dict[int, int] = {}
        outputs: list[torch.Tensor] = []
        axes: list[int] = []
        none = V.STATE_CODE[V.NONE]
        for i in kept:
            op = self.rec.ops[i]
            row = target_row.get(i)
            if not op.off_passes_nothing or row is None or values.codes[row] == none:
                continue
            out = op.outputs[0]
            if out.dim() == 0 or self.rec.versions.get(id(out)) != out._version:
                continue
            axis = units.unit_axis(out.dim(), self._producer_types(i))
            if out.shape[axis] > 0:
                widths[i] = int(out.shape[axis])
                outputs.append(out)
                axes.append(axis)
        return widths, units.dead_counts(outputs, axes)

    def _where_condition(self, i: int, readers_of: dict[int, list[int]]) -> bool:
        """Whether op `i` makes only booleans, read on the loss path only as the condition of
        `torch.where` (capture/cuts.py's rule): a choice of branch, through which no gradient
        flows in any case."""
        op = self.rec.ops[i]
        made = {id(t) for t in op.outputs}
        if not made or any(t.dtype != torch.bool for t in op.outputs):
            return False
        readers = [self.rec.ops[j] for j in readers_of.get(i, [])]
        return bool(readers) and all(
            r.type == "where" and id(r.input_tensors[0]) in made
            and not any(id(t) in made for t in r.input_tensors[1:])
            for r in readers
        )

    def _producer_types(self, i: int) -> list[str]:
        """The types of the ops up the first-input chain from op `i`, nearest first."""
        types: list[str] = []
        op = self.rec.ops[i]
        while op.inputs and len(types) < units.LOOK_UP:
            op = self.rec.ops[op.inputs[0]]
            types.append(op.type)
        return types

    def _arriving(
        self, i: int, readers: dict[int, list[int]], target_row: dict[int, int], values: measure.Values
    ) -> str:
        states, todo, seen = [], list(readers.get(i, [])), set()
        while todo:
            j = todo.pop()
            if j in seen:
                continue
            seen.add(j)
            if j in target_row:
                states.append(V.STATES[values.codes[target_row[j]]])
            else:
                todo.extend(readers.get(j, []))
        return V.combined_state(states)


    def _looked_up(self, kept: list[int]) -> set[int]:
        """Parameters an embedding looks rows up in: rows the batch does not touch get no
        gradient, which is normal (the `sparse_gradient` of the TensorFlow side)."""
        if self._tables is None:
            self._tables = {
                self.var_index[id(t)]
                for i in kept
                if self.rec.ops[i].type in classify.LOOKUPS
                for t in self.rec.ops[i].input_tensors
                if id(t) in self.var_index
            }
        return self._tables

    def _gate_presence(
        self,
        op: RecordedOp,
        watch: tuple[measure.NodeWatch, Any] | None,
        target_row: dict[int, int],
        values: measure.Values,
        own_row: int | None,
    ) -> float:
        """The share of what arrives at a gate's output that it passes back to its input (as
        capture/gates.py counts it for TensorFlow): the gradient at its input's producer when
        the gate is that tensor's only reader (measured already) over the one at its output,
        else what its node hook saw on both sides. Against all elements where the shapes differ.
        """
        if watch is None and len(op.inputs) == 1 and target_row.get(op.inputs[0]) is not None:
            passed = float(values.presence[target_row[op.inputs[0]]])
            arriving = float(values.presence[own_row]) if own_row is not None else math.nan
            shapes = {tuple(t.shape) for t in op.input_tensors if t.requires_grad}
            same = bool(op.outputs) and shapes == {tuple(op.outputs[0].shape)}
        elif watch is not None and watch[0].arrived:
            given, received = _first(watch[0].passed_back), watch[0].received
            passed = measure.presence_of(given)
            arriving = measure.presence_of(received)
            same = given is not None and received is not None and given.shape == received.shape
        else:
            return float("nan")
        return min(passed / arriving, 1.0) if same and arriving > 0 else passed


# Graph versions by content: an unchanged loss path reuses its sealed proto (and its id) instead
# of building and hashing it again at every step.
_GRAPHS_KEPT = 8
_graphs: collections.OrderedDict[tuple, gradflow_pb2.Graph] = collections.OrderedDict()


def _graph_of(key: tuple) -> gradflow_pb2.Graph:
    graph = _graphs.get(key)
    if graph is None:
        graph = _graphs[key] = _build_graph(key)
        while len(_graphs) > _GRAPHS_KEPT:
            _graphs.popitem(last=False)
    else:
        _graphs.move_to_end(key)
    return graph


def _build_graph(key: tuple) -> gradflow_pb2.Graph:
    trained, frozen, loss_op, fields, loss_shape = key
    graph = gradflow_pb2.Graph(loss_op=loss_op, framework=FRAMEWORK, loss_shape=loss_shape)
    for name, shape, dtype, sparse in trained:
        graph.variables.add(name=name, shape=shape, dtype=dtype, sparse_gradient=sparse)
    for name, shape, dtype in frozen:
        graph.frozen_variables.add(name=name, shape=shape, dtype=dtype)
    names: dict[str, int] = {}
    for (
        scope,
        op_type,
        inputs,
        var_inputs,
        shapes,
        dtypes,
        source,
        library,
        cause,
        detail,
        starved,
        measured,
        gate,
        width,
    ) in fields:
        graph.ops.add(
            name=_unique(f"{scope}/{op_type}", names),
            type=op_type,
            inputs=inputs,
            variable_inputs=var_inputs,
            output_shapes=shapes,
            output_dtypes=dtypes,
            source=source,
            library_source=library,
            cause=cause,
            cause_detail=detail,
            starved_variables=starved,
            parent=-1,
            measured=measured,
            presence_at_input=gate,
            units=width,
        )
    _parallel(graph)
    _seal(graph)
    return graph


def _path_readers(ops: list[RecordedOp], kept: list[int]) -> dict[int, list[int]]:
    """Per op, the ops of the loss path (`kept`) that read it."""
    readers: dict[int, list[int]] = {}
    for j in kept:
        for src in ops[j].inputs:
            readers.setdefault(src, []).append(j)
    return readers


def _first(grads: list[torch.Tensor | None]) -> torch.Tensor | None:
    return next((g for g in grads if g is not None), None)


def _unique(name: str, names: dict[str, int]) -> str:
    count = names.get(name, 0)
    names[name] = count + 1
    return name if count == 0 else f"{name}_{count}"


def _shape(t: torch.Tensor) -> str:
    return _shape_text(t.shape)


@functools.lru_cache(maxsize=1024)
def _shape_text(shape: torch.Size) -> str:
    """`128x256`, or `scalar` (the same few shapes at every step: formatted once)."""
    return "x".join(str(d) for d in shape) or "scalar"


def _dtype(t: torch.Tensor) -> str:
    return _dtype_text(t.dtype)


@functools.lru_cache(maxsize=64)
def _dtype_text(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def _parallel(graph: gradflow_pb2.Graph) -> None:
    """Each cut's other cuts that starve some of the same parameters."""
    cuts = [(k, set(op.starved_variables)) for k, op in enumerate(graph.ops) if op.cause]
    for k, starved in cuts:
        graph.ops[k].parallel_cuts.extend(j for j, other in cuts if j != k and starved & other)


def _seal(graph: gradflow_pb2.Graph) -> None:
    """The graph's id: a hash of its content, so an unchanged loss reuses its stored graph."""
    graph.graph_id = hashlib.sha256(graph.SerializeToString(deterministic=True)).hexdigest()[:16]
