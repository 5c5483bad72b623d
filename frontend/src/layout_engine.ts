// Runs dagre (top to bottom, clusters for open groups) on a layout request. Used by the worker.
import dagre from "@dagrejs/dagre";
import type { Box, LayoutRequest, LayoutResult } from "./layout_protocol";

export function runLayout(request: LayoutRequest): LayoutResult {
  const started = Date.now();
  const g = new dagre.graphlib.Graph({ compound: true, multigraph: false });
  g.setGraph({ rankdir: "TB", nodesep: 18, ranksep: 34, edgesep: 8, marginx: 24, marginy: 24 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const c of request.clusters) g.setNode(c.id, { paddingTop: 22 });
  for (const n of request.nodes) g.setNode(n.id, { width: n.width, height: n.height });
  for (const c of request.clusters) if (c.cluster) g.setParent(c.id, c.cluster);
  for (const n of request.nodes) if (n.cluster) g.setParent(n.id, n.cluster);
  for (const e of request.edges) g.setEdge(e.from, e.to);
  dagre.layout(g);
  const boxes: Record<string, Box> = {};
  for (const id of g.nodes()) {
    const n = g.node(id) as { x: number; y: number; width: number; height: number } | undefined;
    if (n && Number.isFinite(n.x)) boxes[id] = { x: n.x, y: n.y, width: n.width, height: n.height };
  }
  const edges: LayoutResult["edges"] = {};
  for (const e of request.edges) {
    const laid = g.edge(e.from, e.to) as { points?: Array<{ x: number; y: number }> } | undefined;
    if (laid?.points) edges[e.id] = laid.points.map((p) => ({ x: p.x, y: p.y }));
  }
  const graph = g.graph() as { width?: number; height?: number };
  return { id: request.id, boxes, edges, width: graph.width ?? 0, height: graph.height ?? 0, millis: Date.now() - started };
}
