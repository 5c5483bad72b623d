import assert from "node:assert/strict";
import { test } from "node:test";
import { notMeasuredText } from "../src/format";
import { frozenLine } from "../src/frozen_view";

test("no frozen variables: no line at all", () => {
  assert.equal(frozenLine(undefined), null);
  assert.equal(frozenLine(null), null);
  assert.equal(frozenLine([]), null);
});

test("frozen variables: a count and the names by layer, as plain strings", () => {
  const line = frozenLine(["base/conv/kernel", "base/conv/bias", "base/bn/gamma", "<img src=x>", "base/conv/kernel"]);
  assert.equal(line?.summary, "Frozen (not trained): 4 variables");
  assert.deepEqual(line?.groups, [
    ["base/conv", ["kernel", "bias"]],
    ["base/bn", ["gamma"]],
    ["", ["<img src=x>"]],
  ]);
  assert.equal(frozenLine(["teacher/proj/bias"])?.summary, "Frozen (not trained): 1 variable");
});

test("an op without a norm says why: a body, the eager fallback, or plainly not measured", () => {
  assert.equal(notMeasuredText(3, false), "not measured inside a body");
  assert.equal(notMeasuredText(-1, true), "not recorded in the eager fallback");
  assert.equal(notMeasuredText(3, true), "not recorded in the eager fallback");
  assert.equal(notMeasuredText(-1, false), "not measured");
});
