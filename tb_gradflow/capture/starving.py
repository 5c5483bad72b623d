"""Which variables a cut point starves: the counterfactual of letting that one op pass.

A blocking op starves a variable when the variable gets no gradient today and would get one if
this op alone passed the gradient to its blocked inputs. That is a reachability question over the
recorded loss path: walk back from the op's blocked inputs through the ops no gradient reaches
today. A reached op is where the walk stops: what lies behind it already gets the gradient, or is
cut off by a blocking op of its own. So the StopGradient inside every LayerNormalization behind
one argmax starves nothing, and the argmax starves the router.

Ops the walk passes are walked through whatever they are: behind a cut no gradient reaches
anything, so a second blocking op there is not reached and is no cut point (a chain of two cuts
names the one nearest the loss). Cut points that starve the same variable are parallel: each
alone would feed it, and the variable starves only because all of them block; each names the
others. Cost: one walk per blocking op, over the unreached part of the path only.
"""
from __future__ import annotations

from collections.abc import Sequence

from tb_gradflow.capture.loss_path import PathOp
from tb_gradflow.capture.registry_hook import OpKey, op_key

# Where a tensor comes from, as the walk follows it: (producer index on the path or -1, variable or -1).
Source = tuple[int, int]


def body_roots(ops: Sequence[PathOp], index: dict[OpKey, int]) -> dict[int, list[Source]]:
    """For each call op: where each of its bodies' results comes from."""
    roots: dict[int, list[Source]] = {}
    for q, p in enumerate(ops):
        sources: list[Source] = []
        for body in p.bodies:
            graph = body.graph
            inputs = {t.ref(): k for k, t in enumerate(graph.inputs)}
            for t in graph.outputs[: len(p.op.outputs)]:
                k = inputs.get(t.ref())
                if k is None:
                    sources.append((index.get(op_key(t.op), -1), -1))
                elif body.input_offset + k < len(p.input_producers):
                    j = body.input_offset + k  # a result passed straight through from an input
                    sources.append((p.input_producers[j], p.input_variables[j]))
        if sources:
            roots[q] = sources
    return roots


def _upstream(p: PathOp, q: int, roots: dict[int, list[Source]]) -> list[Source]:
    """Where the values of op `q` come from: its bodies' results for a call op, else its inputs."""
    if q in roots:
        return roots[q]
    return list(zip(p.input_producers, p.input_variables, strict=False))


def starved_by(
    ops: Sequence[PathOp],
    reached: Sequence[bool],
    blocked: dict[int, list[int]],
    starving_candidates: Sequence[bool],
    roots: dict[int, list[Source]],
) -> dict[int, list[int]]:
    """For each blocking op (index -> its blocked inputs): the variables it alone starves.

    `starving_candidates[v]` says variable v gets no gradient today.
    """
    result: dict[int, list[int]] = {}
    for c, inputs in blocked.items():
        p = ops[c]
        found: set[int] = set(p.hidden_variables)
        stack: list[Source] = [(p.input_producers[i], p.input_variables[i]) for i in inputs]
        seen: set[int] = set()
        while stack:
            producer, variable = stack.pop()
            if variable >= 0:
                found.add(variable)
            if producer < 0 or producer in seen or reached[producer]:
                continue
            seen.add(producer)
            found.update(ops[producer].hidden_variables)
            stack.extend(_upstream(ops[producer], producer, roots))
        result[c] = sorted(v for v in found if starving_candidates[v])
    return result


def parallel_cuts(starved: dict[int, list[int]]) -> dict[int, list[int]]:
    """For each cut point, the other cut points that starve some of the same variables."""
    by_variable: dict[int, list[int]] = {}
    for c, variables in starved.items():
        for v in variables:
            by_variable.setdefault(v, []).append(c)
    result: dict[int, list[int]] = {}
    for c, variables in starved.items():
        others = {d for v in variables for d in by_variable[v] if d != c}
        result[c] = sorted(others)
    return result

