import { readFileSync } from "node:fs";
import { buildHierarchy, defaultExpansion, summarizeGroups } from "../src/hierarchy";
import { runLayout } from "../src/layout_engine";
import { buildModel } from "../src/model";
import { nodeLines, nodeSize } from "../src/node_text";
import { visibleGraph } from "../src/visible";

for (const file of process.argv.slice(2)) {
  let t = performance.now();
  const lap = (what: string) => { const n = performance.now(); console.log(`${what}: ${(n - t).toFixed(0)} ms`); t = n; };
  const m = buildModel(JSON.parse(readFileSync(file, "utf8")));
  lap("model");
  const h = buildHierarchy(m.ops);
  lap("hierarchy");
  const s = summarizeGroups(h, m.ops);
  const open = defaultExpansion(h, m.response.cut_points.map((c) => c.op));
  lap(`summaries+expansion (${open.size} open: ${[...open].slice(0, 5).join(",")})`);
  const go = (expanded: Set<string>) => {
    const v = visibleGraph(m.ops, h, expanded);
    lap(`visible ${v.nodes.length} nodes ${v.clusters.length} clusters ${v.edges.length} edges`);
    const r = runLayout({ id: 1, nodes: v.nodes.map((n) => ({ id: n.id, ...nodeSize(nodeLines(m, n, s.get(n.group?.id ?? ""))), cluster: n.cluster })), clusters: v.clusters.map((c) => ({ id: c.id, cluster: c.cluster })), edges: v.edges });
    lap(`layout (${r.millis} ms inside)`);
    return v;
  };
  const v = go(open);
  const g = v.nodes.find((n) => n.kind === "group");
  if (g) go(new Set([...open, g.group!.id]));
}

// flat vs compound
{
  const m = buildModel(JSON.parse(readFileSync(process.argv[2], "utf8")));
  const h = buildHierarchy(m.ops);
  const s = summarizeGroups(h, m.ops);
  const open = defaultExpansion(h, []);
  const v = visibleGraph(m.ops, h, open);
  const nodes = v.nodes.map((n) => ({ id: n.id, ...nodeSize(nodeLines(m, n, s.get(n.group?.id ?? ""))), cluster: null }));
  const t0 = performance.now();
  runLayout({ id: 1, nodes, clusters: [], edges: v.edges });
  console.log(`flat layout of ${nodes.length}: ${(performance.now() - t0).toFixed(0)} ms`);
}
