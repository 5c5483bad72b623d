// What is drawn for a set of expanded groups: each op is shown either itself or as its outermost
// collapsed group; expanded groups are drawn as boxes around their members; edges between ops
// are merged onto the nodes that represent them.
import type { Group, Hierarchy } from "./hierarchy";
import { ROOT_ID } from "./hierarchy";
import type { Op } from "./model";

export interface VisibleNode {
  id: string;
  kind: "op" | "group";
  op: number; // -1 for groups
  group: Group | null; // null for ops
  cluster: string | null; // id of the enclosing expanded group's cluster
}

export interface VisibleCluster {
  id: string;
  group: Group;
  cluster: string | null;
}

export interface VisibleEdge {
  id: string;
  from: string;
  to: string;
  /** The op edges (producer, consumer) this drawn edge stands for. */
  pairs: Array<[number, number]>;
  /** The flow of an edge with no loaded op pair (a graph loaded group by group, progressive.ts). */
  flow?: EdgeFlow;
}

export interface VisibleGraph {
  nodes: VisibleNode[];
  clusters: VisibleCluster[];
  edges: VisibleEdge[];
  /** Drawn node id of each op. */
  nodeOfOp: string[];
}

export const opNodeId = (i: number): string => `op:${i}`;
export const groupNodeId = (id: string): string => `g:${id}`;
export const clusterId = (id: string): string => `c:${id}`;

export function isExpanded(g: Group, expanded: ReadonlySet<string>): boolean {
  return g.id === ROOT_ID || expanded.has(g.id);
}

/** The outermost collapsed group at or above g, or null when g and all above it are open. */
function collapsedAncestor(g: Group, expanded: ReadonlySet<string>, memo: Map<Group, Group | null>): Group | null {
  const known = memo.get(g);
  if (known !== undefined) return known;
  let result: Group | null = null;
  if (g.parent) {
    result = collapsedAncestor(g.parent, expanded, memo) ?? (isExpanded(g, expanded) ? null : g);
  }
  memo.set(g, result);
  return result;
}

export function visibleGraph(ops: readonly Op[], h: Hierarchy, expanded: ReadonlySet<string>): VisibleGraph {
  const memo = new Map<Group, Group | null>();
  const nodes: VisibleNode[] = [];
  const clusters: VisibleCluster[] = [];
  const seenGroups = new Set<Group>();
  const clusterOf = (g: Group): string | null => (g.id === ROOT_ID ? null : clusterId(g.id));

  const addClusters = (g: Group): void => {
    // open groups from g up to the root, each once
    for (let p: Group | null = g; p && p.id !== ROOT_ID && !seenGroups.has(p); p = p.parent) {
      seenGroups.add(p);
      clusters.push({ id: clusterId(p.id), group: p, cluster: p.parent ? clusterOf(p.parent) : null });
    }
  };

  const nodeOfOp: string[] = new Array<string>(ops.length);
  for (const op of ops) {
    const home = h.opGroup[op.index];
    const collapsed = collapsedAncestor(home, expanded, memo);
    if (collapsed) {
      nodeOfOp[op.index] = groupNodeId(collapsed.id);
      if (!seenGroups.has(collapsed)) {
        seenGroups.add(collapsed);
        const parent = collapsed.parent!;
        nodes.push({ id: groupNodeId(collapsed.id), kind: "group", op: -1, group: collapsed, cluster: clusterOf(parent) });
        addClusters(parent);
      }
    } else {
      nodeOfOp[op.index] = opNodeId(op.index);
      nodes.push({ id: opNodeId(op.index), kind: "op", op: op.index, group: null, cluster: clusterOf(home) });
      addClusters(home);
    }
  }

  const edgeMap = new Map<string, VisibleEdge>();
  for (const op of ops) {
    const to = nodeOfOp[op.index];
    for (const j of op.inputs) {
      const from = nodeOfOp[j];
      if (from === to) continue;
      const id = `${from}>${to}`;
      let e = edgeMap.get(id);
      if (!e) {
        e = { id, from, to, pairs: [] };
        edgeMap.set(id, e);
      }
      e.pairs.push([j, op.index]);
    }
  }
  return { nodes, clusters, edges: [...edgeMap.values()], nodeOfOp };
}

export type EdgeFlow = "flowing" | "zero" | "nonfinite" | "dead";

/** Whether gradient travels back along an op edge: the consumer has a gradient and passes it on
 * (it is not a cut), and the producer receives one. */
export function pairFlow(ops: readonly Op[], from: number, to: number): EdgeFlow {
  const src = ops[from];
  const dst = ops[to];
  if (dst.cause || dst.state === "none" || src.state === "none") return "dead";
  return src.state;
}

export function edgeFlow(ops: readonly Op[], e: VisibleEdge): EdgeFlow {
  if (e.flow) return e.flow;
  let best: EdgeFlow = "dead";
  for (const [a, b] of e.pairs) {
    const f = pairFlow(ops, a, b);
    if (f === "flowing") return f;
    if (f !== "dead") best = f;
  }
  return best;
}
