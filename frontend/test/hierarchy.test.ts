import assert from "node:assert/strict";
import { test } from "node:test";
import { ancestors, buildHierarchy, defaultExpansion, MAX_CHILDREN, ROOT_ID, summarizeGroups } from "../src/hierarchy";
import { buildModel, opDepths } from "../src/model";
import { brokenVae, graph } from "./fixture";

test("ops are grouped by name scope, and the groups nest", () => {
  const m = buildModel(brokenVae());
  const h = buildHierarchy(m.ops);
  assert.deepEqual(h.root.groups.map((g) => g.id), ["vae"]);
  const vae = h.groups.get("vae")!;
  assert.deepEqual(vae.groups.map((g) => g.id).sort(), ["vae/decoder/dense", "vae/encoder/dense"]);
  assert.equal(h.opGroup[m.opIndex.get("vae/PyFunc")!].id, "vae");
  assert.equal(h.opGroup[m.opIndex.get("loss")!].id, ROOT_ID);
  assert.equal(vae.size, 7);
  // "vae/encoder" held only one group: the chain is folded into "vae/encoder/dense", labelled relative to "vae"
  assert.equal(h.groups.get("vae/encoder/dense")!.label, "encoder/dense");
});

test("a scope holding a single op is not a group", () => {
  const m = buildModel(graph([{ name: "a/b/ReadVariableOp" }, { name: "a/b" }, { name: "a/c", inputs: ["a/b"] }]));
  const h = buildHierarchy(m.ops);
  assert.equal(h.groups.has("a/b"), false);
  assert.equal(h.opGroup[0].id, "a");
});

test("ops of a function body live in their call op's group, with the call op", () => {
  const m = buildModel(
    graph([
      { name: "x" },
      { name: "StatefulPartitionedCall", inputs: ["x"] },
      { name: "StatefulPartitionedCall/inner/PyFunc", parent: "StatefulPartitionedCall", cause: "numpy_function" },
      { name: "StatefulPartitionedCall/inner/mul", parent: "StatefulPartitionedCall" },
      { name: "while/body/mul", parent: "loop" },
      { name: "loop", inputs: ["StatefulPartitionedCall"] },
    ]),
  );
  const h = buildHierarchy(m.ops);
  const call = h.groups.get("StatefulPartitionedCall")!;
  assert.equal(call.callOp, 1);
  assert.ok(call.ops.includes(1));
  assert.equal(h.opGroup[2].id, "StatefulPartitionedCall/inner");
  // a body op whose name does not start with its call op's is still placed under it
  assert.equal(h.opGroup[4].parent?.id === "loop" || h.opGroup[4].id === "loop", true);
});

test("a group with too many children is split into chunks", () => {
  const n = MAX_CHILDREN * 3 + 5;
  const ops = Array.from({ length: n }, (_, i) => ({ name: `big/op${i}`, inputs: i ? [`big/op${i - 1}`] : [] }));
  const h = buildHierarchy(buildModel(graph(ops)).ops);
  const big = h.groups.get("big")!;
  assert.equal(big.groups.length, 4);
  assert.equal(big.ops.length, 0);
  assert.ok(big.groups.every((g) => g.ops.length <= MAX_CHILDREN));
  assert.equal(big.size, n);
  assert.deepEqual(ancestors(h.opGroup[n - 1]).map((g) => g.id), ["big", "big/…4"]);
});

test("a group's summary carries its worst state and its cut points", () => {
  const m = buildModel(brokenVae());
  const h = buildHierarchy(m.ops);
  const s = summarizeGroups(h, m.ops);
  assert.equal(s.get("vae/encoder/dense")!.worst, "flowing");
  assert.equal(s.get("vae/decoder/dense")!.worst, "none");
  assert.deepEqual(s.get("vae")!.cuts, [m.opIndex.get("vae/PyFunc")]);
  assert.equal(s.get("vae/encoder/dense")!.maxNorm, 1);
  assert.equal(s.get(ROOT_ID)!.counts.none, 4);
});

test("default expansion opens the groups that hold cut points, within the budget", () => {
  const m = buildModel(brokenVae());
  const h = buildHierarchy(m.ops);
  const open = defaultExpansion(h, [m.opIndex.get("vae/PyFunc")!], 6);
  assert.ok(open.has("vae"));
  assert.ok(!open.has("vae/encoder/dense"));
  const all = defaultExpansion(h, [], 100);
  assert.ok(all.has("vae/encoder/dense") && all.has("vae/decoder/dense"));
});

test("op depth follows the longest input chain", () => {
  const m = buildModel(brokenVae());
  const d = opDepths(m.ops);
  assert.equal(d[m.opIndex.get("x")!], 0);
  assert.equal(d[m.opIndex.get("vae/encoder/dense/MatMul")!], 1);
  assert.equal(d[m.opIndex.get("loss")!], 7);
});
