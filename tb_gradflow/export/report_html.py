"""One `analyze()` result as HTML: a page (`Report.to_html`) and a notebook cell (`_repr_html_`).

The page is the exported tab with one run and one step. The notebook cell puts the diagnosis in
plain HTML first (readable even where scripts do not run, as on GitHub's notebook viewer) and the
same page below it in an iframe's `srcdoc`, so that its script, styles and ids cannot clash with
the notebook's or with another report's. Every name is escaped: text, never markup.
"""
from __future__ import annotations

import html
import math

import numpy as np

from tb_gradflow import vocabulary as V
from tb_gradflow.export.html import page
from tb_gradflow.export import bundle
from tb_gradflow.format.records import graph_of
from tb_gradflow.proto import gradflow_pb2
from tb_gradflow.reading.reader import TagSeries, VersionValues
from tb_gradflow.report import Report

RUN = "analyze"
TAG = "gradflow"
_LIST_SHOWN = 12


def _graph_from_report(report: Report) -> gradflow_pb2.Graph:
    """A Graph rebuilt from the report alone (one made by hand, or unpickled): no call structure
    or shapes, which only the traced graph knows."""
    graph = gradflow_pb2.Graph(graph_id=report.graph_id or "report", loss_op=len(report.ops) - 1,
                               fallback_reason=report.fallback_reason)
    index = {op.name: i for i, op in enumerate(report.ops)}
    var_index = {name: i for i, name in enumerate(report.variables)}
    cuts = {c.op_name: c for c in report.cut_points}
    for op in report.ops:
        cut = cuts.get(op.name)
        graph.ops.add(
            name=op.name, type=op.type, inputs=[index[n] for n in op.inputs if n in index], source=op.source,
            cause=V.CAUSE_CODE.get(op.cause, 0), cause_detail=cut.detail if cut else "",
            starved_variables=[var_index[v] for v in cut.starved_variables if v in var_index] if cut else [],
            parent=-1, measured=op.measured,
        )
    for name, var in report.variables.items():
        graph.variables.add(name=name, shape=var.shape)
    return graph


def _norm(norm: float | None) -> float:
    return math.nan if norm is None else norm


def report_series(report: Report) -> TagSeries:
    """The report as a one-step series, the shape the exporter reads."""
    graph = graph_of(report) or _graph_from_report(report)
    step = report.step if report.step is not None else 0
    values = VersionValues(
        graph=graph,
        steps=np.array([step], np.int64),
        op_states=np.array([[V.STATE_CODE[o.state] for o in report.ops]], np.uint8),
        op_norms=np.array([[_norm(o.norm) for o in report.ops]], np.float32),
        variable_states=np.array([[V.STATE_CODE[v.state] for v in report.variables.values()]], np.uint8),
        variable_norms=np.array([[_norm(v.norm) for v in report.variables.values()]], np.float32),
        losses=np.array([_norm(report.loss)], np.float32),
        wall_times=np.zeros(1),
    )
    return TagSeries(RUN, TAG, "", {graph.graph_id: values}, [step], {step: (graph.graph_id, 0)})


def report_page(report: Report, title: str = "analyze") -> str:
    """The whole exported page for this report."""
    series = {(RUN, TAG): report_series(report)}
    return page(bundle.payload(series, {"run": RUN, "tag": TAG, "step": None, "compare": None}), title)


def _names(names: tuple[str, ...] | list[str]) -> str:
    shown = ", ".join(f"<code>{html.escape(n)}</code>" for n in names[:_LIST_SHOWN])
    more = len(names) - _LIST_SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


def diagnosis_html(report: Report) -> str:
    """The diagnosis in plain HTML: verdict, each cut (cause, line, what it starves, the fix)."""
    e = html.escape
    starved = report.starved_variables
    n_vars = len(report.variables)
    parts = [f"<p><b>gradflow{'' if report.step is None else f' at step {report.step}'}</b>: "
             f"{len(report.ops)} ops on the loss path, {n_vars} trainable variables</p>"]
    if report.fallback_reason:
        parts.append(f"<p>Op-level detail unavailable: {e(report.fallback_reason)}</p>")
    if starved:
        parts.append(f"<p style=\"color:#b00020\"><b>{len(starved)} of {n_vars} trainable variables get no "
                     f"gradient</b>: {_names(starved)}</p>")
    else:
        parts.append("<p style=\"color:#1b7f3b\"><b>Gradient reaches every trainable variable.</b></p>")
    items = []
    for cut in report.starving_cut_points:
        detail = f"<br>{e(cut.detail)}" if cut.detail else ""
        items.append(
            f"<li><b>{e(cut.op_type)}</b> <code>{e(cut.op_name)}</code> ({e(cut.cause)}) at "
            f"<code>{e(cut.source or '?')}</code>{detail}<br>starves: {_names(cut.starved_variables)}"
            f"<br><i>hint: {e(cut.hint)}</i></li>"
        )
    if items:
        parts.append(f"<ol class=\"gradflow-cuts\">{''.join(items)}</ol>")
    harmless = [c for c in report.cut_points if not c.starved_variables]
    if harmless:
        parts.append(f"<p>{len(harmless)} blocking op(s) starve nothing (another path carries the gradient): "
                     f"{_names([c.op_name for c in harmless])}</p>")
    return f"<div class=\"gradflow-diagnosis\">{''.join(parts)}</div>"


def notebook_html(report: Report, height: int = 620) -> str:
    """What a notebook shows for a report: the diagnosis, then the interactive graph."""
    frame = (f"<iframe class=\"gradflow-graph\" sandbox=\"allow-scripts\" srcdoc=\"{html.escape(report_page(report), quote=True)}\" "
             f"style=\"width:100%;height:{height}px;border:1px solid #ccc\" title=\"Gradient Flow graph\"></iframe>")
    return diagnosis_html(report) + frame
