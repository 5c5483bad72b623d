import assert from "node:assert/strict";
import { test } from "node:test";
import { cutNamed, groupByLayer, tieToGraph } from "../src/diagnosis";
import { buildModel } from "../src/model";
import { brokenVae, storyCut as cut, served } from "./fixture";

test("the served story is tied to the ops of the graph by name", () => {
  const model = buildModel(brokenVae());
  const told = tieToGraph(served([cut("vae/PyFunc", ["vae/decoder/dense/kernel"]), cut("not/in/graph", ["x"])]), model);
  assert.deepEqual(told.cutOps, [model.opIndex.get("vae/PyFunc"), -1]);
  assert.equal(cutNamed(told.story, "vae/PyFunc")?.hint, "rewrite it");
  assert.equal(cutNamed(told.story, "vae/decoder/MatMul"), undefined);
});

test("long name lists group by layer in first-seen order", () => {
  assert.deepEqual(groupByLayer(["a/b/kernel", "c/kernel", "a/b/bias", "top"]), [
    ["a/b", ["a/b/kernel", "a/b/bias"]],
    ["c", ["c/kernel"]],
    ["", ["top"]],
  ]);
});
