import assert from "node:assert/strict";
import { test } from "node:test";
import { diagnose } from "../src/diagnosis";
import { buildModel } from "../src/model";
import { brokenVae, graph } from "./fixture";

test("the headline names the cut point count and the starved variables", () => {
  const d = diagnose(buildModel(brokenVae()));
  assert.equal(d.tone, "cut");
  assert.equal(d.headline, "1 cut point starves 1 trainable variable: vae/decoder/dense/kernel");
  assert.equal(d.cuts.length, 1);
  assert.equal(d.cuts[0].opName, "vae/PyFunc");
  assert.equal(d.cuts[0].text, "tf.numpy_function at vae.py:42 has no gradient");
});

test("all is well, or zero and nonfinite are called out", () => {
  const ok = diagnose(buildModel(graph([{ name: "a" }], [{ name: "w" }])));
  assert.equal(ok.tone, "ok");
  assert.equal(ok.headline, "Gradient reaches every trainable variable");
  const warn = diagnose(buildModel(graph([{ name: "a" }], [{ name: "w", state: "zero", norm: 0 }, { name: "v", state: "nonfinite", norm: "nan" }])));
  assert.equal(warn.tone, "warn");
  assert.match(warn.notes.join("\n"), /NaN or Inf gradient: v/);
  assert.match(warn.notes.join("\n"), /all-zero gradient at this step: w/);
});

test("a blocking op that starves nothing says so", () => {
  const d = diagnose(buildModel(graph([{ name: "c", type: "Cast", cause: "integer_cast", source: "m.py:3" }], [{ name: "w" }])));
  assert.equal(d.tone, "ok");
  assert.equal(d.cuts.length, 0);
  assert.equal(d.harmless[0].text, "a cast to an integer type at m.py:3 blocks the gradient but starves nothing: another path carries it");
});

test("blocking ops that starve nothing are kept apart from the cut points", () => {
  const ops = [
    { name: "a" },
    ...Array.from({ length: 5 }, (_, i) => ({ name: `bn${i}/StopGradient`, type: "StopGradient", cause: "stop_gradient" as const })),
  ];
  const d = diagnose(buildModel(graph(ops, [{ name: "w" }])));
  assert.equal(d.cuts.length, 0);
  assert.equal(d.harmless.length, 5);
  assert.equal(d.headline, "Gradient reaches every trainable variable");
});
