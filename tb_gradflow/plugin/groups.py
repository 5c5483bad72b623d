"""A large graph one name-scope group at a time, for the `graph_groups` route.

The `graph` route sends every op: 95 MB of JSON for a 230,000-op graph, which no browser should
parse at first paint. `graph_groups` sends one group's children instead: its subgroups with op
counts, gradient-state counts and cut counts, its own ops in the `graph` route's columns, and the
edges between those children. The tab opens the top level first and a group when the user does.
Everything structural is computed once per graph version and group, and cached with the series.
"""
from __future__ import annotations

import bisect
import dataclasses

import numpy as np

from tb_gradflow import vocabulary as V
from tb_gradflow.plugin.params import not_found
from tb_gradflow.proto import gradflow_pb2
from tb_gradflow.route_json import op_columns


@dataclasses.dataclass
class GroupIndex:
    """Ops sorted by scope, so that a group's ops are one contiguous range."""

    scopes: list[str]  # per op (global index): its name up to the last "/"
    keys: list[str]  # sorted: scope + "/"
    order: np.ndarray  # op indices in the order of `keys`
    inputs: list[list[int]]
    causes: np.ndarray  # uint8 per op, 0 when not a cut point

    @classmethod
    def of(cls, graph: gradflow_pb2.Graph) -> GroupIndex:
        """The index of `graph`'s ops by scope (once per graph version)."""
        ops = list(graph.ops)
        scopes = [op.name.rpartition("/")[0] for op in ops]
        keyed = sorted((scope + "/", i) for i, scope in enumerate(scopes))
        return cls(
            scopes=scopes,
            keys=[k for k, _ in keyed],
            order=np.array([i for _, i in keyed], np.int64),
            inputs=[op.inputs[:] for op in ops],
            causes=np.array([op.cause for op in ops], np.uint8),
        )

    def subtree(self, group: str) -> np.ndarray:
        """Global indices of the ops inside `group` ("" is the whole graph), by scope order."""
        if not group:
            return self.order
        prefix = group + "/"
        lo = bisect.bisect_left(self.keys, prefix)
        hi = bisect.bisect_left(self.keys, prefix[:-1] + "0")  # "0" sorts right after "/"
        return self.order[lo:hi]


@dataclasses.dataclass
class GroupLayout:
    """The step-independent part of one group's answer."""

    group_names: list[str]
    direct_ops: list[int]
    child_of_op: np.ndarray  # per op of the subtree (aligned with `subtree`): child number
    subtree: np.ndarray
    group_inputs: list[list[int]]  # per child group: child numbers feeding it
    op_input_children: list[list[int]]  # per direct op: child number of each input, -1 outside
    op_fields: dict[str, list]
    cut_counts: list[int]


def group_layout(index: GroupIndex, graph: gradflow_pb2.Graph, group: str) -> GroupLayout:
    """The structure of one group (its child groups, own ops and the edges between them); 404 for
    a group with no ops."""
    subtree = index.subtree(group)
    if group and not len(subtree):
        raise not_found(f"no group {group!r} in this graph")
    start = len(group) + 1 if group else 0
    child_name: list[str | None] = []
    for i in subtree.tolist():
        scope = index.scopes[i]
        if scope == group:
            child_name.append(None)  # an op of the group itself
        else:
            head = scope[start:].split("/", 1)[0]
            child_name.append(f"{group}/{head}" if group else head)
    group_names = sorted({n for n in child_name if n is not None})
    number = {name: k for k, name in enumerate(group_names)}
    direct_ops = [i for i, n in zip(subtree.tolist(), child_name, strict=False) if n is None]
    for k, op in enumerate(direct_ops):
        number[op] = len(group_names) + k
    child_of_op = np.array(
        [number[n] if n is not None else number[i]
         for i, n in zip(subtree.tolist(), child_name, strict=False)],
        np.int64,
    )
    child_of = dict(zip(subtree.tolist(), child_of_op.tolist(), strict=False))
    group_edges: list[set[int]] = [set() for _ in group_names]
    for i, child in child_of.items():
        if child >= len(group_names):
            continue
        for j in index.inputs[i]:
            source = child_of.get(j)
            if source is not None and source != child:
                group_edges[child].add(source)
    cut_counts = np.bincount(child_of_op[index.causes[subtree] > 0], minlength=len(group_names) + len(direct_ops))
    return GroupLayout(
        group_names=group_names,
        direct_ops=direct_ops,
        child_of_op=child_of_op,
        subtree=subtree,
        group_inputs=[sorted(edges) for edges in group_edges],
        op_input_children=[[child_of.get(j, -1) for j in index.inputs[i]] for i in direct_ops],
        op_fields=op_columns(graph, direct_ops),
        cut_counts=cut_counts[: len(group_names)].tolist(),
    )


def group_state_counts(layout: GroupLayout, op_codes: np.ndarray) -> dict[str, list[int]]:
    """Per child group, how many of its ops are in each gradient state at this step."""
    n = len(layout.group_names)
    in_groups = layout.child_of_op < n
    codes = op_codes[layout.subtree][in_groups]
    children = layout.child_of_op[in_groups]
    return {
        state: np.bincount(children[codes == V.STATE_CODE[state]], minlength=n).tolist()
        for state in V.STATES
    }
