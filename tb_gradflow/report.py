"""The report: what analyze() returns, what summaries store and what the CLI prints.

Built from a graph version (structure, cut points) and one step's values; pure Python so that the
reader can rebuild the same report from a logdir without TensorFlow. This is the bottom record
type: it imports no other layer. How a report is told (`str`, `to_html`, `_repr_html_`) is bound
from above by `present_with` (docs/architecture.md), so that the story and the export may build
on this module without it importing them.
"""
from __future__ import annotations

import collections.abc
import dataclasses
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from tb_gradflow import vocabulary as V
from tb_gradflow.json_values import json_float

if TYPE_CHECKING:
    from tb_gradflow.proto import gradflow_pb2


@dataclasses.dataclass(slots=True)
class VariableRecord:
    """One trainable variable's gradient at the report's step.

    Attributes:
        name: The variable's name, as the framework gives it (`dense/kernel`).
        state: Its gradient state, one of `vocabulary.STATES` ("flowing", "zero", "none",
            "nonfinite").
        norm: The gradient's L2 norm (exact); None when there is no gradient. A nonfinite
            gradient keeps its NaN or Inf.
        shape: The variable's shape as text ("3x2"), "" when unknown.
        presence: Fraction of the gradient's elements that are nonzero and finite, within
            1/254; None when unknown.
        sparse_gradient: The gradient arrives as IndexedSlices (embedding, gather): rows the
            batch does not touch get none, which is normal.
    """

    name: str
    state: str
    norm: float | None
    shape: str = ""
    # Fraction of the gradient's elements that are nonzero and finite; None when unknown.
    presence: float | None = None
    # The gradient arrives as IndexedSlices (embedding, gather): untouched rows get none.
    sparse_gradient: bool = False


@dataclasses.dataclass(slots=True)
class OpRecord:
    """One op on the path from the trainable variables to the loss, at the report's step.

    Attributes:
        name: The op's name in the traced graph.
        type: The op's type ("MatMul", "PyFunc").
        state: The state of the gradient arriving at its output (`vocabulary.STATES`).
        norm: That gradient's L2 norm (op norms are logged within 4.4 %); None when there is
            none or it was not measured.
        source: The user's line that made the op ("model.py:12"), "" when unknown.
        inputs: Names of the ops it reads, on the loss path.
        cause: Why the op blocks the gradient (`vocabulary.CAUSES`), None for an op that
            passes it.
        measured: False for ops whose gradient was not measured (their state is inferred).
        presence: Fraction of elements nonzero and finite; None when unknown.
        presence_at_input: For a gating op (ReLU, clip, tf.where), `presence` is the share of
            the nonzero elements arriving at its output that it passes back to its input.
    """

    name: str
    type: str
    state: str
    norm: float | None
    source: str
    inputs: tuple[str, ...] = ()
    cause: str | None = None
    measured: bool = True
    # Fraction of elements nonzero and finite; None when unknown (not measured, no gradient).
    presence: float | None = None
    # A gating op (ReLU, clip, tf.where): `presence` is the share of what arrives at its output
    # that it passes back to its input (a dead ReLU still gets a full gradient at its output).
    presence_at_input: bool = False
    # A ReLU-family gate (issue 17): its units (the last axis) and how many are off for every
    # example of the batch (output zero, no gradient passed back: capture/units.py); None for
    # other ops.
    units: int | None = None
    dead_units: int | None = None
    # A loop: per iteration, the norm of the gradient of the float state it carries out
    # (first iteration first); None for other ops.
    iteration_norms: tuple[float, ...] | None = None

    @property
    def presence_of(self) -> str:
        """Which gradient `presence` is of: "input" (gating ops) or "output"."""
        return "input" if self.presence_at_input else "output"

    @property
    def source_path(self) -> str:
        """The absolute `path:LINE` of `source` here ("" if not found): see `_source_path`."""
        return _source_path(self.source)


class _MadeOnFirstUse:
    """Records made by `make` on first use: a logging step builds a report every call, and on a
    5,000-op model making each record cost more than the rest of the step's host work, while
    training loops rarely read them."""

    __slots__ = ("_make", "_records")

    def __init__(self, make: Callable[[], Any]):
        self._make: Callable[[], Any] | None = make
        self._records: Any = None

    def _all(self) -> Any:
        if self._make is not None:
            self._records, self._make = self._make(), None
        return self._records

    def __len__(self) -> int:
        return len(self._all())

    def __iter__(self) -> Iterator[Any]:
        return iter(self._all())

    def __repr__(self) -> str:
        return repr(self._all())


class OpRecords(_MadeOnFirstUse, collections.abc.Sequence):
    """A report's ops, made on first use. Compares, hashes and pickles as the tuple it holds."""

    __slots__ = ()

    def __init__(self, make: Callable[[], tuple[OpRecord, ...]]):
        super().__init__(lambda: tuple(make()))

    def __getitem__(self, index):
        return self._all()[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (OpRecords, tuple)):
            return self._all() == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._all())

    def __reduce__(self):
        return tuple, (self._all(),)


class VariableRecords(_MadeOnFirstUse, collections.abc.Mapping):
    """A report's variables by name, made on first use. Compares and pickles as the dict it
    holds."""

    __slots__ = ()

    def __getitem__(self, name: str) -> VariableRecord:
        return self._all()[name]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, collections.abc.Mapping):
            return self._all() == dict(other.items())
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # unhashable, like the dict it stands for

    def __reduce__(self):
        return dict, (self._all(),)


@dataclasses.dataclass(frozen=True)
class CutPoint:
    """An op that blocks the gradient, where it was made and what it starves.

    Attributes:
        op_name: The blocking op's name.
        op_type: Its type ("PyFunc", "StopGradient").
        cause: Why it blocks (`vocabulary.CAUSES`); `hint` says how to fix it.
        source: The user's line that made it ("model.py:12").
        starved_variables: Trainable variables that get no gradient because of it; empty for a
            harmless blocker (another path carries the gradient).
        detail: More words on the cause, when the capture knows them.
        parallel_cuts: Other cut points starving some of the same variables: each alone would
            feed them.
        library_source: The library frame that made the op, when `source` is the user's line
            calling into it.
    """

    op_name: str
    op_type: str
    cause: str
    source: str
    starved_variables: tuple[str, ...]
    detail: str = ""
    # Other cut points starving some of the same variables: each alone would feed them.
    parallel_cuts: tuple[str, ...] = ()
    # The library frame that made the op, when `source` is the user's line calling into it.
    library_source: str = ""

    @property
    def hint(self) -> str:
        """How to fix a cut of this cause, in one sentence; a detail the capture knows more of
        (tf.nn.moments' StopGradient: none needed) has its own (vocabulary.DETAIL_HINTS)."""
        return V.DETAIL_HINTS.get(self.detail, V.HINTS[self.cause])

    @property
    def source_path(self) -> str:
        """The absolute `path:LINE` of `source` here ("" if not found): see `_source_path`."""
        return _source_path(self.source)

    def to_dict(self) -> dict[str, Any]:
        """The cut point as JSON (the `diagnosis` route and `--json` carry it)."""
        return {
            "op_name": self.op_name,
            "op_type": self.op_type,
            "cause": self.cause,
            "source": self.source,
            "starved_variables": list(self.starved_variables),
            "parallel_cuts": list(self.parallel_cuts),
            "library_source": self.library_source or None,
        }


def _source_path(source: str) -> str:
    """For local "open in editor" use, never shown by default: sources are stored relative to
    their git repository's root (they travel with the logdir); this is the file on this machine."""
    from tb_gradflow.capture.sources import absolute_source  # free of TensorFlow

    return absolute_source(source)


@dataclasses.dataclass(frozen=True)
class Report:
    """Where the gradient of one step flows, stops and starves: what `analyze()` returns.

    `str(report)` is the diagnosis in words (what the CLI prints); `to_html()` and, in Jupyter,
    the cell's display add the interactive graph. Reports compare by their values, not by the
    graph they were built from.

    Attributes:
        variables: Each trainable variable's record, by name.
        ops: The ops on the loss path, in graph order.
        cut_points: The ops that block the gradient, with what they starve.
        step: The training step logged, None for a report of no step (`analyze`).
        loss: The loss at that step, None when unknown.
        graph_id: The graph version's id (a digest of its structure).
        fallback_reason: Why op-level detail is missing (eager fallback); "" when the graph was
            traced.
        computes_in_float16: Some op on the loss path computes in float16: an all-zero
            gradient may be underflow.
        graph: The Graph proto the report was built from (call structure, shapes), None for a
            report made by hand; not compared.
    """

    variables: dict[str, VariableRecord] | VariableRecords
    ops: tuple[OpRecord, ...] | OpRecords
    cut_points: tuple[CutPoint, ...]
    step: int | None = None
    loss: float | None = None
    graph_id: str = ""
    fallback_reason: str = ""
    computes_in_float16: bool = False
    # Op name -> the first logged step of its current streak of dead units at or above
    # V.DEAD_UNITS_THRESHOLD (filled by a reader from the steps before; empty otherwise).
    dead_since: dict[str, int] = dataclasses.field(default_factory=dict)
    # Variables the loss reads that Keras does not train (frozen layers or models): left out of
    # `variables`, never starved or blamed, listed so that a user sees what was left out.
    frozen_variables: tuple[str, ...] = ()
    # Names by which the loss reaches Keras models that are entirely frozen.
    frozen_models: tuple[str, ...] = ()
    # Names by which the loss refers to Keras models whose variables it never reads.
    unread_models: tuple[str, ...] = ()
    # The loss's shape when it is not a scalar (its sum is differentiated); "" for a scalar.
    loss_shape: str = ""
    graph: gradflow_pb2.Graph | None = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def reads_nothing(self) -> bool:
        """The loss reads no trainable variable: nothing would train (Keras' "No gradients
        provided for any variable")."""
        return not self.variables

    @property
    def starved_variables(self) -> list[str]:
        """Names of the variables that get no gradient at all."""
        return [n for n, v in self.variables.items() if v.state == V.NONE]

    def variables_in(self, state: str) -> list[str]:
        """Names of the variables whose gradient is in `state` (`vocabulary.STATES`)."""
        return [n for n, v in self.variables.items() if v.state == state]

    @property
    def starving_cut_points(self) -> list[CutPoint]:
        """The cut points that starve some variable (harmless blockers left out)."""
        return [c for c in self.cut_points if c.starved_variables]

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON: NaN and Inf norms spelled as strings, as in every route."""
        return {
            "step": self.step,
            "loss": json_float(self.loss),
            "graph_id": self.graph_id,
            "fallback_reason": self.fallback_reason or None,
            "variables": {
                n: {"state": v.state, "norm": json_float(v.norm), "presence": v.presence,
                    "sparse_gradient": v.sparse_gradient}
                for n, v in self.variables.items()
            },
            "starved_variables": self.starved_variables,
            "frozen_variables": list(self.frozen_variables),
            "frozen_models": list(self.frozen_models),
            "unread_models": list(self.unread_models),
            "loss_shape": self.loss_shape or None,
            "cut_points": [c.to_dict() for c in self.cut_points],
            "ops": [
                {
                    "name": o.name,
                    "type": o.type,
                    "state": o.state,
                    "norm": json_float(o.norm),
                    "source": o.source,
                    "cause": o.cause,
                    "measured": o.measured,
                    "presence": o.presence,
                    "presence_of": o.presence_of,
                    "units": o.units,
                    "dead_units": o.dead_units,
                    "iteration_norms": None if o.iteration_norms is None else [
                        json_float(n) for n in o.iteration_norms
                    ],
                }
                for o in self.ops
            ],
        }

    def __str__(self) -> str:
        return _presenter().text(self)

    # ---- sharing: HTML and notebooks (tb_gradflow/export/report_html.py) ----

    def to_html(self) -> str:
        """A self-contained page with this diagnosis in the interactive graph: no server, no
        network."""
        return _presenter().page(self)

    def save_html(self, path: str) -> None:
        """Writes `to_html()` to `path`, to attach to an issue or open from disk."""
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.to_html())

    def _repr_html_(self) -> str:
        """Jupyter: the diagnosis, then the interactive graph."""
        return _presenter().notebook(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's text display: the report's words, not the dataclass fields."""
        printer.text("Report(...)" if cycle else str(self))


class Presenter(Protocol):
    """How reports are told: bound once by the package (`tb_gradflow/presenting.py`)."""

    def text(self, report: Report) -> str:
        """The diagnosis in words: `str(report)`."""

    def page(self, report: Report) -> str:
        """The self-contained HTML page: `report.to_html()`."""

    def notebook(self, report: Report) -> str:
        """A notebook cell's HTML: `report._repr_html_()`."""


_bound: list[Presenter] = []


def present_with(presenter: Presenter) -> None:
    """Makes `presenter` tell every report: the story and the export sit above this module, so
    the package binds them here rather than this module importing them."""
    _bound[:] = [presenter]


def _presenter() -> Presenter:
    if not _bound:
        raise RuntimeError("no presenter bound: import tb_gradflow (its __init__ binds one)")
    return _bound[0]
