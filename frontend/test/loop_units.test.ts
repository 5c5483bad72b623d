// Issue 17 in the details panel: a loop's iteration chart and trend, a gate's dead units.
import assert from "node:assert/strict";
import { test } from "node:test";
import { buildModel } from "../src/model";
import { deadUnitsText, loopTrend } from "../src/loop_units";
import { graph } from "./fixture";

test("loop trend: vanishing under 1e-3 of the last, exploding over its inverse", () => {
  assert.equal(loopTrend([1e-6, 1e-4, 1e-2]), "vanishing");
  assert.equal(loopTrend([2e-3, 1]), "steady");
  assert.equal(loopTrend([5, 1e-4]), "exploding");
  assert.equal(loopTrend([1]), null);
  assert.equal(loopTrend([null, 1]), null);
});

test("dead units: read from the route's columns and told as a count of units", () => {
  const g = graph([
    { name: "d/MatMul", type: "MatMul" },
    { name: "d/Relu", type: "Relu", inputs: ["d/MatMul"], presence: 0.2 },
  ]);
  g.ops.units = [null, 128];
  g.ops.dead_units = [null, 41];
  g.ops.iteration_norms = [[1, "inf", null], null];
  const m = buildModel(g);
  assert.equal(deadUnitsText(m.ops[1]), "41 of 128 units dead (32 %) for the whole batch");
  assert.equal(deadUnitsText(m.ops[0]), null);
  assert.deepEqual(m.ops[0].iterationNorms, [1, Infinity, null]);
  assert.equal(m.ops[1].iterationNorms, null);
});
