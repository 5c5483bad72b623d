"""One `analyze()` result as HTML: a page (`Report.to_html`) and a notebook cell (`_repr_html_`).

The page is the exported tab with one run and one step. The notebook cell puts the diagnosis in
plain HTML first (readable even where scripts do not run, as on GitHub's notebook viewer) and the
same page below it in an iframe's `srcdoc`, so that its script, styles and ids cannot clash with
the notebook's or with another report's. Every name is escaped: text, never markup.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable

import numpy as np

from tb_gradflow import vocabulary as V
from tb_gradflow.export import bundle
from tb_gradflow.export.html import page
from tb_gradflow.format import presence as P
from tb_gradflow.proto import gradflow_pb2
from tb_gradflow.reading.reader import TagSeries, VersionValues
from tb_gradflow.report import OpRecord, Report, VariableRecord
from tb_gradflow.story import story

RUN = "analyze"
TAG = "gradflow"
_LIST_SHOWN = 12


def _graph_from_report(report: Report) -> gradflow_pb2.Graph:
    """A Graph rebuilt from the report alone (one made by hand, or unpickled): no call structure
    or shapes, which only the traced graph knows."""
    graph = gradflow_pb2.Graph(
        graph_id=report.graph_id or "report",
        loss_op=len(report.ops) - 1,
        fallback_reason=report.fallback_reason,
    )
    index = {op.name: i for i, op in enumerate(report.ops)}
    var_index = {name: i for i, name in enumerate(report.variables)}
    cuts = {c.op_name: c for c in report.cut_points}
    for op in report.ops:
        cut = cuts.get(op.name)
        graph.ops.add(
            name=op.name,
            type=op.type,
            inputs=[index[n] for n in op.inputs if n in index],
            source=op.source,
            cause=V.CAUSE_CODE.get(op.cause, 0),
            cause_detail=cut.detail if cut else "",
            starved_variables=[var_index[v] for v in cut.starved_variables if v in var_index]
            if cut
            else [],
            parent=-1,
            measured=op.measured,
            presence_at_input=op.presence_at_input,
        )
    for name, var in report.variables.items():
        graph.variables.add(name=name, shape=var.shape, sparse_gradient=var.sparse_gradient)
    return graph


def _norm(norm: float | None) -> float:
    return math.nan if norm is None else norm


def _presence_codes(records: Iterable[OpRecord | VariableRecord]) -> np.ndarray:
    """One row of presence codes (format/presence.py), 0 where the report does not know."""
    return P.to_codes(np.array([[_norm(r.presence) for r in records]], np.float64))


def report_series(report: Report) -> TagSeries:
    """The report as a one-step series, the shape the exporter reads."""
    graph = report.graph or _graph_from_report(report)
    step = report.step if report.step is not None else 0
    values = VersionValues(
        graph=graph,
        steps=np.array([step], np.int64),
        op_states=np.array([[V.STATE_CODE[o.state] for o in report.ops]], np.uint8),
        op_norms=np.array([[_norm(o.norm) for o in report.ops]], np.float32),
        variable_states=np.array(
            [[V.STATE_CODE[v.state] for v in report.variables.values()]], np.uint8
        ),
        variable_norms=np.array([[_norm(v.norm) for v in report.variables.values()]], np.float32),
        losses=np.array([_norm(report.loss)], np.float32),
        wall_times=np.zeros(1),
        op_presence=_presence_codes(report.ops),
        variable_presence=_presence_codes(report.variables.values()),
    )
    return TagSeries(RUN, TAG, "", {graph.graph_id: values}, [step], {step: (graph.graph_id, 0)})


def report_page(report: Report, title: str = "analyze") -> str:
    """The whole exported page for this report."""
    series = {(RUN, TAG): report_series(report)}
    data = bundle.payload(series, {"run": RUN, "tag": TAG, "step": None, "compare": None})
    # The report's own sentences: a report of no step is shown at step 0, but not told "at step 0".
    data["series"][RUN][TAG]["diagnosis"]["story"] = story(report)
    return page(data, title)


def _names(names: list[str]) -> str:
    shown = ", ".join(f"<code>{html.escape(n)}</code>" for n in names[:_LIST_SHOWN])
    more = len(names) - _LIST_SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


def _sentence(sentence: dict, style: str = "") -> str:
    names = f": {_names(sentence['names'])}" if sentence["names"] else ""
    return f"<p{style}>{html.escape(sentence['text'])}{names}</p>"


_TONE = {
    "cut": ' style="color:#b00020;font-weight:bold"',
    "warn": ' style="color:#8a5a00;font-weight:bold"',
    "ok": ' style="color:#1b7f3b;font-weight:bold"',
}


def diagnosis_html(report: Report) -> str:
    """`tb_gradflow.story`'s sentences as HTML: verdict, each cut (what, where, what it starves,
    the fix), harmless blockers, notes. Escaped throughout."""
    e = html.escape
    told = story(report)
    head = "gradflow" + ("" if report.step is None else f" at step {report.step}")
    parts = [
        f"<p><b>{head}</b>: {len(report.ops)} ops on the loss path, "
        f"{len(report.variables)} trainable variables</p>",
        _sentence(told["headline"], _TONE[told["tone"]]),
    ]
    items = []
    for cut in told["cuts"]:
        detail = f"<br>{e(cut['detail'])}" if cut["detail"] else ""
        items.append(
            f"<li><b>{e(cut['op_type'])}</b> <code>{e(cut['op_name'])}</code>: "
            f"{e(cut['text'])}{detail}"
            f"<br>starves: {_names(cut['starved_variables'])}<br><i>hint: {e(cut['hint'])}</i></li>"
        )
    if items:
        parts.append(f'<ol class="gradflow-cuts">{"".join(items)}</ol>')
    if told["harmless_summary"]:
        parts.append(
            f"<p>{e(told['harmless_summary'])}: "
            f"{_names([c['op_name'] for c in told['harmless']])}</p>"
        )
    parts += [_sentence(n) for n in told["notes"]]
    return f'<div class="gradflow-diagnosis">{"".join(parts)}</div>'


def notebook_html(report: Report, height: int = 620) -> str:
    """What a notebook shows for a report: the diagnosis, then the interactive graph."""
    frame = (
        '<iframe class="gradflow-graph" sandbox="allow-scripts" '
        f'srcdoc="{html.escape(report_page(report), quote=True)}" '
        f'style="width:100%;height:{height}px;border:1px solid #ccc" '
        'title="Gradient Flow graph"></iframe>'
    )
    return diagnosis_html(report) + frame
