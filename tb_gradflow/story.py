"""The diagnosis in sentences: the one wording that the CLI prints and the tab shows.

`story(report)` is JSON (the plugin's `diagnosis` route and `tb-gradflow report --json` carry it);
`story_lines(report)` is the CLI's text of the same sentences. Names stay in lists beside the
sentences, so a reader can shorten, group or link them without rewording anything.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

from tb_gradflow import vocabulary as V
from tb_gradflow.layer_norms import gate_layer
from tb_gradflow.report import CutPoint, Report

# Blocking ops that starve nothing (batch norm's StopGradients, masks) listed one line each, up to:
HARMLESS_SHOWN = 10


def plural(n: int, word: str) -> str:
    """A count with its noun, so that the story never says "1 variables"."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _verb(n: int, one: str, many: str) -> str:
    return one if n == 1 else many


def describe_cut(cut: CutPoint) -> str:
    """What the cut is, where, and its effect: "tf.numpy_function at m.py:4 has no gradient"."""
    if cut.cause == V.NON_DIFFERENTIABLE:
        what = f"{cut.op_type} (non-differentiable)"
    else:
        what = V.CAUSE_WORDS.get(cut.cause, cut.op_type)
    where = f" at {cut.source}" if cut.source else ""
    if not cut.starved_variables:
        effect = " blocks the gradient but starves nothing: another path carries it"
    elif cut.cause in (V.STOP_GRADIENT, V.DETACH):
        effect = " stops the gradient (often on purpose)"
    else:
        effect = " has no gradient"
    return f"{what}{where}{effect}"


def _sentence(text: str, names: list[str] | None = None) -> dict[str, Any]:
    return {"text": text, "names": names or []}


def _cut_json(cut: CutPoint, ops_by_name: dict[str, Any], eager: bool = False) -> dict[str, Any]:
    op = ops_by_name.get(cut.op_name)
    state = op.state if op is not None else V.NONE
    inputs = list(op.inputs) if op is not None else []
    return {
        **cut.to_dict(),
        "detail": cut.detail,
        "text": describe_cut(cut),
        "hint": cut.hint,
        # what the cut point is: what arrives from the loss, and where nothing goes on to
        "arriving": V.ARRIVING_UNRECORDED if eager else V.ARRIVING[state],
        "blocked": "nothing passes back through it to its inputs" if inputs else "it has no inputs",
        "blocked_inputs": inputs,
    }


def _headline(report: Report, starving: list[CutPoint]) -> tuple[str, dict[str, Any]]:
    """The verdict; a model the loss reaches that is entirely frozen is said in the same sentence
    (a frozen teacher beside a trainable student), so that nobody misses what was left out."""
    tone, sentence = _verdict(report, starving)
    models = list(report.frozen_models)
    if report.reads_nothing or not models:
        return tone, sentence
    clause = V.FROZEN_MODELS_CLAUSE.format(
        models=("model " if len(models) == 1 else "models ") + ", ".join(f"`{m}`" for m in models),
        verb=_verb(len(models), "is", "are"),
        count=plural(len(report.frozen_variables), "frozen variable"),
    )
    return tone, _sentence(f"{sentence['text']}; {clause}", [*sentence["names"], *models])


def _verdict(report: Report, starving: list[CutPoint]) -> tuple[str, dict[str, Any]]:
    starved = report.starved_variables
    if report.reads_nothing:
        if report.frozen_variables and not report.unread_models:
            models = ", ".join(f"`{m}`" for m in report.frozen_models)
            text = V.ALL_FROZEN_HEADLINE.format(models=f" ({models})" if models else "")
            return "cut", _sentence(text, list(report.frozen_models))
        return "cut", _sentence(V.READS_NOTHING_HEADLINE)
    if starving:
        by_cut = list(dict.fromkeys(v for c in starving for v in c.starved_variables))
        text = (
            f"{plural(len(starving), 'cut point')} {_verb(len(starving), 'starves', 'starve')} "
            f"{plural(len(by_cut), 'trainable variable')}"
        )
        return "cut", _sentence(text, by_cut)
    if starved:
        text = f"{plural(len(starved), 'trainable variable')} {_verb(len(starved), 'gets', 'get')} no gradient"
        return "cut", _sentence(text, starved)
    if report.variables_in(V.NONFINITE) or report.variables_in(V.ZERO):
        return "warn", _sentence("Gradient reaches every trainable variable, but not all of it is usable")
    if _warned_gates(report) or [v for v in thin_variables(report) if not v.sparse_gradient]:
        return "warn", _sentence("Gradient reaches every trainable variable, but little of it passes some layers")
    loops = _loop_notes(report)
    if loops:
        words = " or ".join(dict.fromkeys(_LOOP_WORDS[n["kind"]] for n in loops))
        names = [name for n in loops for name in n["names"]]
        text = f"Gradient reaches every trainable variable, but it {words} through {plural(len(loops), 'loop')}"
        return "warn", _sentence(text, names)
    return "ok", _sentence("Gradient reaches every trainable variable")


def _percent(fraction: float) -> str:
    """"92 %"; never "0 %" or "100 %" for a fraction strictly between none and all."""
    pct = 100 * fraction
    if 0 < pct < 1:
        return "under 1 %"
    if 99 < pct < 100:
        return "over 99 %"
    return f"{round(pct)} %"


def _at_step(report: Report) -> str:
    return "" if report.step is None else f" at step {report.step:,}"


def dead_gates(report: Report) -> list[Any]:
    """Gating ops that a gradient reaches but that pass back less than the threshold."""
    return [
        op for op in report.ops
        if op.presence_at_input and op.state == V.FLOWING and op.presence is not None
        and op.presence < V.PRESENCE_GATE_THRESHOLD
    ]


def thin_variables(report: Report) -> list[Any]:
    """Flowing variables whose gradient reaches fewer elements than the threshold."""
    return [
        v for v in report.variables.values()
        if v.state == V.FLOWING and v.presence is not None and v.presence < V.PRESENCE_VARIABLE_THRESHOLD
    ]


# Dead gates told one sentence each, up to this many; the rest in one sentence.
GATES_SHOWN = 10
# tf.where / torch.where passing little back is a mask by design (attention, a [CLS] pooler), not
# dead units; how each is named in the mask sentence.
_MASKS = {"Select": "tf.where mask", "SelectV2": "tf.where mask", "where": "torch.where mask"}


def dead_unit_ops(report: Report) -> list[Any]:
    """ReLU-family gates with more than V.DEAD_UNITS_THRESHOLD of their units dead."""
    return [
        op for op in report.ops
        if op.units and op.dead_units is not None and op.dead_units > V.DEAD_UNITS_THRESHOLD * op.units
    ]


def gate_layers(report: Report, names: set[str] | None = None) -> dict[str, str]:
    """The layer of each gate whose units are counted (only those in `names`, if given), by op
    name (layer_norms.gate_layer); none when the report has no graph."""
    graph = report.graph
    if graph is None or len(graph.ops) != len(report.ops):
        return {}
    return {
        op.name: gate_layer(graph, i)
        for i, op in enumerate(report.ops) if op.units and (names is None or op.name in names)
    }


def _warned_gates(report: Report) -> bool:
    """Whether gates make the story a warning: dead units, or a gate (not a tf.where mask)
    passing back little."""
    gates = [op for op in dead_gates(report) if op.type not in _MASKS]
    return bool(gates or dead_unit_ops(report))


_LOOP_WORDS = {V.LOOP_VANISHING: "vanishes", V.LOOP_EXPLODING: "explodes"}


def _dead_unit_notes(report: Report) -> list[dict[str, Any]]:
    """One sentence per layer with many dead units, saying since when when the steps before
    are known ("conv3_block2_out: 41 of 128 units dead since step 1,200")."""
    notes = []
    told = dead_unit_ops(report)[:GATES_SHOWN]
    layers = gate_layers(report, {op.name for op in told})
    for op in told:
        since = report.dead_since.get(op.name)
        when = f" since step {since:,}" if since is not None else _at_step(report)
        layer = layers.get(op.name)
        named = op.name if layer is None or op.name.startswith(layer + "/") else f"{op.name} (layer {layer})"
        text = (f"{named}: {op.dead_units:,} of {op.units:,} units dead{when} (over "
                f"{_percent(V.DEAD_UNITS_THRESHOLD)} dead is called out: the layer works at under half its width)")
        notes.append({"kind": V.DEAD_UNITS, **_sentence(text, [op.name]), "hint": V.DEAD_UNITS_HINT})
    return notes


def _loop_notes(report: Report) -> list[dict[str, Any]]:
    """A loop whose first iteration's gradient norm is under V.LOOP_VANISHING_RATIO of its
    last's (vanishing), or over its inverse (exploding)."""
    notes = []
    for op in report.ops:
        norms = op.iteration_norms
        if not norms or len(norms) < 2 or not all(math.isfinite(n) for n in (norms[0], norms[-1])):
            continue
        first, last = norms[0], norms[-1]
        if last > 0 and first < V.LOOP_VANISHING_RATIO * last:
            kind, hint = V.LOOP_VANISHING, V.LOOP_VANISHING_HINT
        elif first > 0 and last < V.LOOP_VANISHING_RATIO * first:
            kind, hint = V.LOOP_EXPLODING, V.LOOP_EXPLODING_HINT
        else:
            continue
        words = _LOOP_WORDS[kind]
        text = (f"{op.name}: the gradient {words} through the loop's {len(norms):,} iterations"
                f"{_at_step(report)} (first {first:.3g}, last {last:.3g}; told beyond a factor of "
                f"{1 / V.LOOP_VANISHING_RATIO:,.0f})")
        notes.append({"kind": kind, **_sentence(text, [op.name]), "hint": hint})
    return notes


def _presence_notes(report: Report) -> list[dict[str, Any]]:
    """Partial presence that matters: dead gates and thin variables; sparse rows told as normal."""
    notes = []
    counted = {op.name for op in dead_unit_ops(report)}
    gates = [op for op in dead_gates(report) if op.type not in _MASKS and op.name not in counted]
    masks = [op for op in dead_gates(report) if op.type in _MASKS]
    for op in gates[:GATES_SHOWN]:
        words = V.GATE_WORDS.get(op.type, "gated")
        text = f"{op.name}: {_percent(1 - op.presence)} of units pass no gradient{_at_step(report)} ({words})"
        notes.append({"kind": V.DEAD_GATE, **_sentence(text, [op.name]), "hint": V.DEAD_GATE_HINT})
    if len(gates) > GATES_SHOWN:
        rest = [op.name for op in gates[GATES_SHOWN:]]
        text = f"{plural(len(rest), 'more gating op')} {_verb(len(rest), 'passes', 'pass')} back under " \
               f"{_percent(V.PRESENCE_GATE_THRESHOLD)} of the gradient{_at_step(report)}"
        notes.append({"kind": V.DEAD_GATE, **_sentence(text, rest), "hint": V.DEAD_GATE_HINT})
    if masks:
        noun = _MASKS[masks[0].type]
        text = (f"{plural(len(masks), noun)} {_verb(len(masks), 'passes', 'pass')} back under "
                f"{_percent(V.PRESENCE_GATE_THRESHOLD)} of the gradient{_at_step(report)}: normal for an "
                "attention mask or a pooler that keeps one position")
        notes.append({"kind": V.MASK, **_sentence(text, [op.name for op in masks])})
    thin = thin_variables(report)
    dense = [v.name for v in thin if not v.sparse_gradient]
    if dense:
        text = (
            f"{plural(len(dense), 'variable')} {_verb(len(dense), 'gets', 'get')} a gradient in under "
            f"{_percent(V.PRESENCE_VARIABLE_THRESHOLD)} of {_verb(len(dense), 'its', 'their')} "
            f"elements{_at_step(report)}"
        )
        notes.append({"kind": V.SPARSE_VARIABLE, **_sentence(text, dense)})
    for v in thin:
        if v.sparse_gradient:
            touched = f"the batch touches {_percent(v.presence)} of its rows{_at_step(report)}"
            text = f"{v.name}: {touched}, {V.FEW_ROWS_NORMAL}"
            notes.append({"kind": V.FEW_ROWS, **_sentence(text, [v.name])})
    return notes


def _reads_nothing_notes(report: Report) -> list[dict[str, Any]]:
    """Why a loss may read no trainable variable, the models it names but never calls first."""
    if not report.reads_nothing:
        return []
    notes = []
    for model in report.unread_models:
        text = f"the loss refers to model `{model}` but never calls it"
        notes.append({"kind": V.READS_NOTHING, **_sentence(text, [model])})
    if not (report.frozen_variables and not report.unread_models):
        causes = "; or ".join(V.READS_NOTHING_CAUSES)
        notes.append({"kind": V.READS_NOTHING, **_sentence(f"likely causes: {causes}")})
    return notes


def _left_out_notes(report: Report) -> list[dict[str, Any]]:
    """What the report leaves out on purpose (frozen variables) and how the loss was taken."""
    notes = []
    frozen = list(report.frozen_variables)
    if frozen:
        text = f"{plural(len(frozen), 'frozen variable')} {V.FROZEN_NOTE}"
        notes.append({"kind": V.FROZEN, **_sentence(text, frozen)})
    if report.loss_shape:
        text = f"the loss has shape {report.loss_shape}, not a scalar: {V.SUMMED_LOSS_NOTE}"
        notes.append({"kind": V.SUMMED_LOSS, **_sentence(text)})
    return notes


def _notes(report: Report) -> list[dict[str, Any]]:
    notes = []
    if report.fallback_reason:
        notes.append({"kind": "fallback", **_sentence(f"op-level detail unavailable: {report.fallback_reason}")})
    notes += _reads_nothing_notes(report) + _left_out_notes(report)
    cut_starved = {v for c in report.cut_points for v in c.starved_variables}
    unused = [v for v in report.starved_variables if v not in cut_starved]
    if unused and not report.fallback_reason:
        text = f"{plural(len(unused), 'variable')} {_verb(len(unused), 'is', 'are')} not used by the loss at all"
        notes.append({"kind": "unused", **_sentence(text, unused)})
    for state, words in ((V.NONFINITE, "a NaN or Inf gradient"), (V.ZERO, "an all-zero gradient")):
        names = report.variables_in(state)
        if names:
            text = f"{plural(len(names), 'variable')} {_verb(len(names), 'has', 'have')} {words}"
            why = _zero_reason(report) if state == V.ZERO else _nonfinite_reason(report)
            notes.append({"kind": state, **_sentence(text, names), **({"hint": why} if why else {})})
    return notes + _dead_unit_notes(report) + _presence_notes(report) + _loop_notes(report)


def _zero_reason(report: Report) -> str:
    """Why variables get all zeros, when an op whose derivative is zero (torch.round) is on the
    loss path: the first such op, in words."""
    for op in report.ops:
        if op.type in V.ZERO_GRADIENT_OPS and op.state != V.NONE:
            return V.ZERO_GRADIENT_REASON.format(op=f"{op.type} '{op.name}'", source=op.source or "?")
    return ""


def nonfinite_origins(report: Report) -> list[Any]:
    """Measured ops with a finite gradient at their output and a NaN or Inf one at an input: one
    of their own backwards made the NaN, so that is where to look, not at the variables it
    reaches. Ops with a singular derivative among them are named alone when there are any."""
    by_name = {op.name: op for op in report.ops}

    def bad(name: str) -> bool:
        op = by_name.get(name)
        return op is not None and op.measured and op.state == V.NONFINITE

    origins = [op for op in report.ops
               if op.measured and op.state in (V.FLOWING, V.ZERO) and any(bad(i) for i in op.inputs)]
    # A tensor's gradient sums all its consumers': when one of them is an op with a singular
    # derivative (sqrt at 0), the others beside it (a Sum on the same tensor) are innocent.
    singular = [op for op in origins if op.type.lower() in V.SINGULAR_DERIVATIVE_OPS]
    return singular or origins


def _nonfinite_reason(report: Report) -> str:
    """Where NaN/Inf gradients start, in words: the first few origin ops with their lines."""
    origins = nonfinite_origins(report)[: V.NONFINITE_ORIGINS_SHOWN]
    if not origins:
        return ""
    ops = ", ".join(f"{op.type} '{op.name}' at {op.source or '?'}" for op in origins)
    return V.NONFINITE_ORIGIN_REASON.format(ops=ops)


def story(report: Report) -> dict[str, Any]:
    """The diagnosis of one step as sentences plus the names they are about.

    `tone` is "cut" (something is starved), "warn" (zero or NaN/Inf gradients) or "ok". Cuts that
    starve variables come first, each with its fix hint; blocking ops that starve nothing are
    kept apart (`harmless`), so fifty batch-norm StopGradients do not bury the one real cut.
    """
    starving = report.starving_cut_points
    tone, headline = _headline(report, starving)
    ops_by_name = {op.name: op for op in report.ops}
    harmless = [c for c in report.cut_points if not c.starved_variables]
    many = len(harmless) != 1
    return {
        "tone": tone,
        "headline": headline,
        "cuts": [_cut_json(c, ops_by_name, bool(report.fallback_reason)) for c in starving],
        "harmless": [_cut_json(c, ops_by_name, bool(report.fallback_reason)) for c in harmless],
        "harmless_summary": (
            f"{plural(len(harmless), 'blocking op')} starve{'' if many else 's'} nothing: "
            "another path still carries the gradient"
            if harmless
            else None
        ),
        "harmless_hints": [{"cause": c, "hint": h} for c, h in dict.fromkeys((c.cause, c.hint) for c in harmless)],
        "notes": _notes(report),
    }


def _plain(text: str) -> str:
    return text


def _all_names(names: Sequence[str], noun: str = "variables") -> str:  # noqa: ARG001 - Telling's signature
    return ", ".join(names)


def _listed_harmless(cuts: list[dict[str, Any]], telling: Telling) -> list[str]:
    lines = [f"    {telling.where(cut)}" for cut in cuts[:HARMLESS_SHOWN]]
    if len(cuts) > HARMLESS_SHOWN:
        lines.append(f"    ... and {len(cuts) - HARMLESS_SHOWN} more (report.cut_points)")
    return lines


@dataclasses.dataclass(frozen=True)
class Telling:
    """How `story_lines` writes the story: every name or a count, harmless blockers listed or
    grouped, untrusted text as it is or escaped, with or without colour. The sentences and their
    order are the story's, whoever tells them (str(report), the CLI's terminal text)."""

    names: Callable[..., str] = _all_names
    harmless: Callable[[list[dict[str, Any]], Telling], list[str]] = _listed_harmless
    text: Callable[[str], str] = _plain
    bad: Callable[[str], str] = _plain
    good: Callable[[str], str] = _plain
    note: Callable[[str], str] = _plain
    dim: Callable[[str], str] = _plain
    bold: Callable[[str], str] = _plain

    def where(self, cut: dict[str, Any]) -> str:
        """Where a cut is, in one line of plain text."""
        t = self.text
        return f"{t(cut['op_type'])} '{t(cut['op_name'])}' ({cut['cause']}) at {t(cut['source']) or '?'}"

    def sentence(self, sentence: dict[str, Any], noun: str = "variables") -> str:
        """A story sentence with the names it does not already say."""
        names = [n for n in sentence["names"] if n not in sentence["text"]]  # not said twice
        text = self.text(sentence["text"])
        return f"{text}: {self.names(names, noun)}" if names else f"{text}."


def story_lines(report: Report, telling: Telling = Telling()) -> list[str]:
    """The text of the story: the same sentences as `story`, told as `telling` says (by default
    plain, every name written out: `str(report)`)."""
    told, t = story(report), telling
    header = "gradflow" if report.step is None else f"gradflow at step {report.step}"
    frozen = f", {len(report.frozen_variables)} frozen" if report.frozen_variables else ""
    lines = [t.bold(f"{header}: {len(report.ops)} ops on the loss path, "
                    f"{len(report.variables)} trainable variables{frozen}")]
    notes = told["notes"]
    lines += [t.note(f"  {t.sentence(n)}") for n in notes if n["kind"] == "fallback"]
    tone = {"cut": t.bad, "warn": t.note}.get(told["tone"], t.good)
    lines.append(tone(f"  {t.sentence(told['headline'])}"))
    for i, cut in enumerate(told["cuts"], 1):
        lines.append(t.bad(f"  cut {i}: ") + t.where(cut))
        if cut.get("library_source"):
            lines.append(f"    made inside a library at {t.text(cut['library_source'])}")
        if cut["detail"]:
            lines.append(f"    {t.text(cut['detail'])}")
        inputs = f": {t.names(cut['blocked_inputs'], 'ops')}" if cut["blocked_inputs"] else ""
        lines.append(f"    {cut['arriving']}; {cut['blocked']}{inputs}")
        lines.append(f"    starves: {t.names(cut['starved_variables'])}")
        if cut.get("parallel_cuts"):
            others = t.names([repr(n) for n in cut["parallel_cuts"]], "cut points")
            lines.append(f"    only together with {others}: each alone would feed what they both starve")
        lines.append(t.dim(f"    hint: {cut['hint']}"))
    if told["harmless_summary"]:
        lines.append(t.note(f"  {told['harmless_summary']}"))
        lines += t.harmless(told["harmless"], t)
        lines += [t.dim(f"    hint ({h['cause']}): {h['hint']}") for h in told["harmless_hints"]]
    hinted: set[str] = set()
    for n in notes:
        if n["kind"] == "fallback":
            continue
        lines.append(t.note(f"  {t.sentence(n)}"))
        if n.get("hint") and n["kind"] not in hinted:
            hinted.add(n["kind"])
            lines.append(t.dim(f"    hint: {n['hint']}"))
        if n["kind"] == V.ZERO and report.computes_in_float16:
            lines.append(t.dim(f"    float16 underflow? {V.FLOAT16_UNDERFLOW_HINT}"))
    return lines
