import assert from "node:assert/strict";
import { test } from "node:test";
import { cutNamed, groupByLayer, tieToGraph } from "../src/diagnosis";
import { buildModel } from "../src/model";
import type { DiagnosisResponse, StoryCut } from "../src/types";
import { brokenVae } from "./fixture";

const cut = (op_name: string, starved: string[]): StoryCut => ({
  op_name,
  op_type: "PyFunc",
  cause: "numpy_function",
  source: "vae.py:42",
  detail: "",
  starved_variables: starved,
  text: "tf.numpy_function at vae.py:42 has no gradient",
  hint: "rewrite it",
  arriving: "the gradient from the loss reaches it",
  blocked: "nothing passes back through it to its inputs",
  blocked_inputs: [],
});

function served(cuts: StoryCut[], harmless: StoryCut[] = []): DiagnosisResponse {
  return {
    step: 1, steps: [1], last_step: 1, ops: 3,
    story: { tone: "cut", headline: { text: "1 cut point starves 1 trainable variable", names: ["vae/decoder/dense/kernel"] }, cuts, harmless, harmless_summary: null, harmless_hints: [], notes: [] },
    norm_range: { ops: null, variables: null }, first_nonfinite_step: null, version_changes: [],
  };
}

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
