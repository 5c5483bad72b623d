import assert from "node:assert/strict";
import { test } from "node:test";
import { clearLayoutCache, CLUSTER_PAD, runLayout } from "../src/layout_engine";
import type { LayoutRequest } from "../src/layout_protocol";

const request: LayoutRequest = {
  id: 1,
  clusters: [
    { id: "c:a", cluster: null },
    { id: "c:a/b", cluster: "c:a" },
  ],
  nodes: [
    { id: "in", width: 80, height: 30, cluster: null },
    { id: "a1", width: 80, height: 30, cluster: "c:a" },
    { id: "b1", width: 100, height: 30, cluster: "c:a/b" },
    { id: "b2", width: 100, height: 30, cluster: "c:a/b" },
    { id: "out", width: 80, height: 30, cluster: null },
  ],
  edges: [
    { id: "in>a1", from: "in", to: "a1" },
    { id: "a1>b1", from: "a1", to: "b1" },
    { id: "b1>b2", from: "b1", to: "b2" },
    { id: "b2>out", from: "b2", to: "out" },
  ],
};

const inside = (inner: { x: number; y: number; width: number; height: number }, outer: typeof inner): boolean =>
  inner.x - inner.width / 2 >= outer.x - outer.width / 2 - 0.01 &&
  inner.x + inner.width / 2 <= outer.x + outer.width / 2 + 0.01 &&
  inner.y - inner.height / 2 >= outer.y - outer.height / 2 + CLUSTER_PAD.top - 0.01 &&
  inner.y + inner.height / 2 <= outer.y + outer.height / 2 + 0.01;

test("groups are laid out inside their boxes, top to bottom, with routed edges", () => {
  clearLayoutCache();
  const r = runLayout(request);
  const b = r.boxes;
  assert.ok(inside(b["b1"], b["c:a/b"]) && inside(b["b2"], b["c:a/b"]));
  assert.ok(inside(b["a1"], b["c:a"]) && inside(b["c:a/b"], b["c:a"]));
  assert.ok(!inside(b["in"], b["c:a"]) && !inside(b["out"], b["c:a"]));
  assert.ok(b["in"].y < b["a1"].y && b["a1"].y < b["b1"].y && b["b1"].y < b["b2"].y && b["b2"].y < b["out"].y);
  for (const e of request.edges) assert.ok((r.edges[e.id]?.length ?? 0) >= 2, e.id);
  // an edge that leaves a group starts at its real source, not at the group's border
  const route = r.edges["b2>out"];
  assert.deepEqual(route[0], { x: b["b2"].x, y: b["b2"].y + b["b2"].height / 2 });
  assert.ok(r.width > 0 && r.height > 0);
});

test("a group's layout is reused when only another group changes", () => {
  clearLayoutCache();
  const first = runLayout(request);
  const bigger = { ...request, nodes: request.nodes.map((n) => (n.id === "out" ? { ...n, width: 300 } : n)) };
  const second = runLayout(bigger);
  const rel = (r: typeof first, id: string) => ({ x: r.boxes[id].x - r.boxes["c:a/b"].x, y: r.boxes[id].y - r.boxes["c:a/b"].y });
  assert.deepEqual(rel(second, "b1"), rel(first, "b1"));
  assert.equal(second.boxes["out"].width, 300);
});
