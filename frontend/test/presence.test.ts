// The presence marks of issue 11: which ops are dead gates, and how fractions are spelled.
import assert from "node:assert/strict";
import { test } from "node:test";
import { buildModel } from "../src/model";
import { groupHasDeadGate, isDeadGate, percent, presenceText } from "../src/presence";
import { graph } from "./fixture";

test("presence: a dead gate is marked, percentages never round to none or all", () => {
  const m = buildModel(graph([
    { name: "d/MatMul", type: "MatMul", presence: 1 },
    { name: "d/Relu", type: "Relu", inputs: ["d/MatMul"], presence: 0.08 },
    { name: "e/Relu", type: "Relu", inputs: ["d/Relu"], presence: 0.5 },
  ]));
  assert.equal(isDeadGate(m.ops[1]), true);
  assert.equal(isDeadGate(m.ops[2]), false);
  assert.equal(isDeadGate(m.ops[0]), false);
  assert.equal(presenceText(m.ops[1]), "8 % of what arrives passed back to its input");
  assert.equal(percent(0.001), "under 1 %");
  assert.equal(percent(0.999), "over 99 %");
  assert.equal(percent(1), "100 %");
  const group = { id: "d", ops: [0, 1], groups: [] };
  assert.equal(groupHasDeadGate(group, m.ops), true);
  assert.equal(groupHasDeadGate({ id: "e", ops: [2], groups: [] }, m.ops), false);
});
