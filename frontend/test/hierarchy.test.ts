import assert from "node:assert/strict";
import { test } from "node:test";
import { ancestors, buildHierarchy, defaultExpansion, layerBeside, MAX_CHILDREN, ROOT_ID, summarizeGroups } from "../src/hierarchy";
import { groupName } from "../src/node_text";
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

test("a group is told with the layer its ops read when its scope names another (Keras 3 tracing)", () => {
  // Keras 3 traces layer "dense" under the scope "dense_1" and layer "dense_1" under "dense_1_2".
  const m = buildModel(
    graph(
      [
        { name: "x" },
        { name: "sequential_1/dense_1/ReadVariableOp", reads: ["sequential/dense/kernel"] },
        { name: "sequential_1/dense_1/MatMul", inputs: ["x", "sequential_1/dense_1/ReadVariableOp"] },
        { name: "sequential_1/dense_1/Relu", inputs: ["sequential_1/dense_1/MatMul"] },
        { name: "sequential_1/dense_1_2/ReadVariableOp", reads: ["sequential/dense_1/kernel"] },
        { name: "sequential_1/dense_1_2/MatMul", inputs: ["sequential_1/dense_1/Relu", "sequential_1/dense_1_2/ReadVariableOp"] },
        { name: "sequential_1/dropout_1/Mul", inputs: ["sequential_1/dense_1_2/MatMul"] },
        { name: "sequential_1/dropout_1/Mul_1", inputs: ["sequential_1/dropout_1/Mul"] },
        { name: "enc/0/ReadVariableOp", reads: ["enc.0.weight"] },
        { name: "enc/0/linear", inputs: ["x", "enc/0/ReadVariableOp"] },
      ],
      [{ name: "sequential/dense/kernel" }, { name: "sequential/dense_1/kernel" }, { name: "enc.0.weight" }],
    ),
  );
  const layers = ["sequential/dense", "sequential/dense_1", "enc.0"];
  const h = buildHierarchy(m.ops, layers);
  const at = (id: string) => h.groups.get(id)!;
  assert.equal(at("sequential_1/dense_1").layer, "sequential/dense");
  assert.equal(at("sequential_1/dense_1_2").layer, "sequential/dense_1");
  assert.equal(at("sequential_1").layer, null); // two layers under it
  assert.equal(at("sequential_1/dropout_1").layer, null); // reads no variable
  assert.equal(groupName(at("sequential_1/dense_1")), "dense_1 · layer dense");
  assert.equal(groupName(at("sequential_1/dense_1_2")), "dense_1_2 · layer dense_1");
  assert.equal(groupName(at("sequential_1/dropout_1")), "dropout_1");
  // A scope that names its layer already (tf_keras, torch module paths) is left alone.
  assert.equal(at("enc/0").layer, "enc.0");
  assert.equal(layerBeside(at("enc/0")), null);
  // Without the variables' layers, nothing is said.
  assert.equal(buildHierarchy(m.ops).groups.get("sequential_1/dense_1")!.layer, null);
});
