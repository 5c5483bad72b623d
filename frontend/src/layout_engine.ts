// Lays out the drawn graph with dagre, one open group at a time: each group's direct members
// (ops, collapsed groups, and open subgroups as boxes of their own laid-out size) form a small
// flat graph, laid out top to bottom; groups are then nested by offset. Flat layouts are several
// times faster than dagre's compound mode, and each group's layout is cached by its content, so
// expanding a group re-lays out only that group and the groups around it.
import dagre from "@dagrejs/dagre";
import { ObstacleGrid, routeAround } from "./edge_routing";
import type { Box, LayoutRequest, LayoutResult } from "./layout_protocol";

interface Point {
  x: number;
  y: number;
}

/** One group's layout in its own coordinates (top-left of its box at 0,0). */
interface Local {
  width: number;
  height: number;
  centres: Map<string, Point>;
  /** Edge routes between members, keyed "from\0to". */
  routes: Map<string, Point[]>;
}

export const CLUSTER_PAD = { top: 26, side: 12, bottom: 12 };
const ROOT_MARGIN = 24;
/** Above this many members, dagre's cheaper rankers and one ordering pass keep layout fast. */
const FAST_ABOVE = 60;
const FASTEST_ABOVE = 150;
const CACHE_LIMIT = 2000;

const cache = new Map<string, Local>();

/** Where edges leave (bottom) and enter (top) a group: routing helpers, never drawn. */
const IN_PORT = "\u0002in";
const OUT_PORT = "\u0002out";

export function clearLayoutCache(): void {
  cache.clear();
}

function layoutMembers(members: string[], sizes: Map<string, { width: number; height: number }>, edges: Set<string>, root: boolean): Local {
  const g = new dagre.graphlib.Graph();
  const fast = members.length > FAST_ABOVE;
  g.setGraph({ rankdir: "TB", nodesep: 18, ranksep: 34, edgesep: 8, marginx: 0, marginy: 0, ranker: members.length > FASTEST_ABOVE ? "longest-path" : fast ? "tight-tree" : "network-simplex" });
  g.setDefaultEdgeLabel(() => ({}));
  for (const id of members) g.setNode(id, { ...sizes.get(id)! });
  for (const port of [IN_PORT, OUT_PORT]) {
    if ([...edges].some((key) => key.startsWith(port + "\u0000") || key.endsWith("\u0000" + port))) g.setNode(port, { width: 1, height: 1 });
  }
  for (const key of edges) {
    const [a, b] = key.split("\u0000");
    g.setEdge(a, b);
  }
  dagre.layout(g, fast ? { disableOptimalOrderHeuristic: true } : {});
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  for (const id of members) {
    const n = g.node(id) as { x: number; y: number; width: number; height: number };
    x0 = Math.min(x0, n.x - n.width / 2);
    y0 = Math.min(y0, n.y - n.height / 2);
    x1 = Math.max(x1, n.x + n.width / 2);
    y1 = Math.max(y1, n.y + n.height / 2);
  }
  if (!Number.isFinite(x0)) x0 = y0 = x1 = y1 = 0;
  const left = root ? ROOT_MARGIN : CLUSTER_PAD.side;
  const top = root ? ROOT_MARGIN : CLUSTER_PAD.top;
  const dx = left - x0;
  const dy = top - y0;
  const centres = new Map<string, Point>();
  for (const id of members) {
    const n = g.node(id) as Point;
    centres.set(id, { x: n.x + dx, y: n.y + dy });
  }
  const routes = new Map<string, Point[]>();
  const width = x1 - x0 + left + (root ? ROOT_MARGIN : CLUSTER_PAD.side);
  const height = y1 - y0 + top + (root ? ROOT_MARGIN : CLUSTER_PAD.bottom);
  for (const key of edges) {
    const [a, b] = key.split("\u0000");
    const e = g.edge(a, b) as { points?: Point[] } | undefined;
    // ports sit a rank outside the members: pull their ends onto the group's border
    if (e?.points) routes.set(key, e.points.map((p) => ({ x: p.x + dx, y: Math.min(height, Math.max(0, p.y + dy)) })));
  }
  return { width, height, centres, routes };
}

export function runLayout(request: LayoutRequest): LayoutResult {
  const started = Date.now();
  const ROOT = "\u0001root";
  const parent = new Map<string, string>();
  const members = new Map<string, string[]>();
  const sizes = new Map<string, { width: number; height: number }>();
  const add = (id: string, cluster: string | null): void => {
    const p = cluster ?? ROOT;
    parent.set(id, p);
    let list = members.get(p);
    if (!list) members.set(p, (list = []));
    list.push(id);
  };
  for (const c of request.clusters) add(c.id, c.cluster);
  for (const n of request.nodes) {
    add(n.id, n.cluster);
    sizes.set(n.id, { width: n.width, height: n.height });
  }
  const chain = (id: string): string[] => {
    const out = [id];
    for (let p = parent.get(id); p && p !== ROOT; p = parent.get(p)) out.push(p);
    return out.reverse();
  };

  // An edge is routed in pieces: inside each group it leaves, from its member to the group's
  // bottom port; in the group where the two ancestries part, between the two members there; and
  // inside each group it enters, from the group's top port to the member.
  const edgesOf = new Map<string, Set<string>>();
  const segmentsOf = new Map<string, Array<{ group: string; key: string }>>();
  const use = (group: string, from: string, to: string): { group: string; key: string } => {
    const key = `${from}\u0000${to}`;
    let set = edgesOf.get(group);
    if (!set) edgesOf.set(group, (set = new Set()));
    set.add(key);
    return { group, key };
  };
  for (const e of request.edges) {
    const a = chain(e.from);
    const b = chain(e.to);
    let i = 0;
    while (i < a.length && i < b.length && a[i] === b[i]) i++;
    if (i >= a.length || i >= b.length) continue; // one end inside the other: not drawn
    const segments = [];
    for (let k = a.length - 1; k > i; k--) segments.push(use(a[k - 1], a[k], OUT_PORT));
    segments.push(use(i === 0 ? ROOT : a[i - 1], a[i], b[i]));
    for (let k = i + 1; k < b.length; k++) segments.push(use(b[k - 1], IN_PORT, b[k]));
    segmentsOf.set(e.id, segments);
  }

  const clusterIds = new Set(request.clusters.map((c) => c.id));
  const locals = new Map<string, Local>();
  const layoutGroup = (group: string): Local => {
    const list = members.get(group) ?? [];
    for (const m of list) {
      if (clusterIds.has(m)) {
        const inner = layoutGroup(m);
        sizes.set(m, { width: inner.width, height: inner.height });
      }
    }
    const edges = edgesOf.get(group) ?? new Set<string>();
    const signature = `${group === ROOT ? "R" : "C"}|${list.map((m) => `${m}:${sizes.get(m)!.width}x${sizes.get(m)!.height}`).join(",")}|${[...edges].sort().join(",")}`;
    let local = cache.get(signature);
    if (!local) {
      local = layoutMembers(list, sizes, edges, group === ROOT);
      if (cache.size > CACHE_LIMIT) cache.clear();
      cache.set(signature, local);
    }
    locals.set(group, local);
    return local;
  };
  const rootLocal = layoutGroup(ROOT);

  const boxes: Record<string, Box> = {};
  const origin = new Map<string, Point>([[ROOT, { x: 0, y: 0 }]]);
  const place = (group: string): void => {
    const local = locals.get(group)!;
    const o = origin.get(group)!;
    for (const m of members.get(group) ?? []) {
      const c = local.centres.get(m)!;
      const size = sizes.get(m)!;
      const box = { x: o.x + c.x, y: o.y + c.y, width: size.width, height: size.height };
      boxes[m] = box;
      if (clusterIds.has(m)) {
        origin.set(m, { x: box.x - box.width / 2, y: box.y - box.height / 2 });
        place(m);
      }
    }
  };
  place(ROOT);

  const edges: LayoutResult["edges"] = {};
  // pieces joined across groups may cut through a node: route those around it
  const grid = new ObstacleGrid(request.nodes.map((n) => ({ id: n.id, ...boxes[n.id] })).filter((o) => o.width !== undefined));
  for (const e of request.edges) {
    const points: Point[] = [];
    for (const seg of segmentsOf.get(e.id) ?? []) {
      const route = locals.get(seg.group)?.routes.get(seg.key);
      const o = origin.get(seg.group)!;
      if (route) for (const p of route) points.push({ x: p.x + o.x, y: p.y + o.y });
    }
    if (points.length >= 2) edges[e.id] = routeAround(points, grid, new Set([e.from, e.to]));
  }
  return { id: request.id, boxes, edges, width: rootLocal.width, height: rootLocal.height, millis: Date.now() - started };
}
