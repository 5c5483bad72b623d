import assert from "node:assert/strict";
import { test } from "node:test";
import { buildHierarchy } from "../src/hierarchy";
import { buildModel } from "../src/model";
import { overviewEntries } from "../src/overview";
import { graph } from "./fixture";
import type { OpSpec } from "./fixture";

test("the overview descends to a level with enough groups and keeps cut points on the way", () => {
  const ops: OpSpec[] = [{ name: "x", state: "none" }];
  // listed from the loss back, as a capture lists them; each block reads the one before
  for (let b = 7; b >= 0; b--) {
    const before = b === 0 ? "x" : `lm/block_${b - 1}/dense/MatMul`;
    ops.push({ name: `lm/block_${b}/attention/MatMul`, inputs: [before], state: b < 4 ? "none" : "flowing" });
    ops.push({ name: `lm/block_${b}/dense/MatMul`, inputs: [`lm/block_${b}/attention/MatMul`], state: b < 4 ? "none" : "flowing" });
  }
  const spec: OpSpec[] = [...ops, { name: "lm/PyFunc", type: "PyFunc", inputs: ["lm/block_7/dense/MatMul"], cause: "numpy_function", starves: ["w"] }, { name: "loss", inputs: ["lm/PyFunc"] }];
  const model = buildModel(graph(spec, [{ name: "w", state: "none" }]));
  const entries = overviewEntries(buildHierarchy(model.ops), model.ops);
  const labels = entries.map((e) => (e.kind === "group" ? e.group.id : `op:${model.ops[e.op].name}`));
  assert.deepEqual(labels.filter((l) => l.startsWith("lm/block_")).length, 8);
  assert.ok(labels.includes("op:lm/PyFunc"));
  assert.deepEqual(labels.slice(0, 2), ["lm/block_0", "lm/block_1"]); // inputs first
  assert.equal(labels[labels.length - 1], "op:lm/PyFunc");
});
