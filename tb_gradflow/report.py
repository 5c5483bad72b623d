"""The report: what analyze() returns, what summaries store and what the CLI prints.

Built from a graph version (structure, cut points) and one step's values; pure Python so that the
reader can rebuild the same report from a logdir without TensorFlow.
"""
from __future__ import annotations

import collections.abc
import dataclasses
import math
from typing import Any, Callable, Iterator

from tb_gradflow import vocabulary as V


@dataclasses.dataclass(slots=True)
class VariableRecord:
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
    # A gating op (ReLU, clip, tf.where): `presence` is that of the gradient it passes back to
    # its input, not of the one arriving at its output (which a dead ReLU still gets in full).
    presence_at_input: bool = False

    @property
    def presence_of(self) -> str:
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
        if self._records is None:
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

    __hash__ = None  # type: ignore[assignment] - unhashable, like the dict it stands for

    def __reduce__(self):
        return dict, (self._all(),)


@dataclasses.dataclass(frozen=True)
class CutPoint:
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
        return V.HINTS[self.cause]

    @property
    def source_path(self) -> str:
        """The absolute `path:LINE` of `source` here ("" if not found): see `_source_path`."""
        return _source_path(self.source)

    def to_dict(self) -> dict[str, Any]:
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


def _json_norm(norm: float | None) -> float | str | None:
    """JSON has no NaN/Inf; a nonfinite norm is spelled as a string."""
    if norm is None or math.isfinite(norm):
        return norm
    return str(norm)


@dataclasses.dataclass(frozen=True)
class Report:
    variables: "dict[str, VariableRecord] | VariableRecords"
    ops: "tuple[OpRecord, ...] | OpRecords"
    cut_points: tuple[CutPoint, ...]
    step: int | None = None
    loss: float | None = None
    graph_id: str = ""
    # Why op-level detail is missing (eager fallback); empty when the graph was traced.
    fallback_reason: str = ""
    # Some op on the loss path computes in float16: an all-zero gradient may be underflow.
    computes_in_float16: bool = False
    # Variables the loss reads that Keras does not train (frozen layers or models): left out of
    # `variables`, never starved or blamed, listed so that a user sees what was left out.
    frozen_variables: tuple[str, ...] = ()
    # Names by which the loss reaches Keras models that are entirely frozen.
    frozen_models: tuple[str, ...] = ()
    # Names by which the loss refers to Keras models whose variables it never reads.
    unread_models: tuple[str, ...] = ()
    # The loss's shape when it is not a scalar (its sum is differentiated); "" for a scalar.
    loss_shape: str = ""

    @property
    def reads_nothing(self) -> bool:
        """The loss reads no trainable variable: nothing would train (Keras' "No gradients
        provided for any variable")."""
        return not self.variables

    @property
    def starved_variables(self) -> list[str]:
        return [n for n, v in self.variables.items() if v.state == V.NONE]

    def variables_in(self, state: str) -> list[str]:
        return [n for n, v in self.variables.items() if v.state == state]

    @property
    def starving_cut_points(self) -> list[CutPoint]:
        return [c for c in self.cut_points if c.starved_variables]

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "loss": _json_norm(self.loss),
            "graph_id": self.graph_id,
            "fallback_reason": self.fallback_reason or None,
            "variables": {
                n: {"state": v.state, "norm": _json_norm(v.norm), "presence": v.presence,
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
                    "norm": _json_norm(o.norm),
                    "source": o.source,
                    "cause": o.cause,
                    "measured": o.measured,
                    "presence": o.presence,
                    "presence_of": o.presence_of,
                }
                for o in self.ops
            ],
        }

    def __str__(self) -> str:
        return format_diagnosis(self)

    # ---- sharing: HTML and notebooks (tb_gradflow/export/report_html.py) ----

    def to_html(self) -> str:
        """A self-contained page with this diagnosis in the interactive graph: no server, no network."""
        from tb_gradflow.export.report_html import report_page

        return report_page(self)

    def save_html(self, path: str) -> None:
        """Writes `to_html()` to `path`, to attach to an issue or open from disk."""
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.to_html())

    def _repr_html_(self) -> str:
        """Jupyter: the diagnosis, then the interactive graph."""
        from tb_gradflow.export.report_html import notebook_html

        return notebook_html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's text display: the report's words, not the dataclass fields."""
        printer.text("Report(...)" if cycle else str(self))


def format_diagnosis(report: Report) -> str:
    """Plain words a person can act on: each cut, where it is, what it starves, how to fix it.

    The sentences are `tb_gradflow.story`'s, which the plugin serves to the tab too.
    """
    from tb_gradflow.story import story_lines  # story builds on this module's Report

    return "\n".join(story_lines(report))
