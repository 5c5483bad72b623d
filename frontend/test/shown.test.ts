import assert from "node:assert/strict";
import { test } from "node:test";
import { buildModel } from "../src/model";
import { colourScaleOf, legendOver, nearestStep, paneShown, selectedIndex, starvingCuts, whyOf } from "../src/shown";
import { brokenVae, graph } from "./fixture";
import type { DiagnosisResponse } from "../src/types";

const names = (m: ReturnType<typeof buildModel>, xs: number[]) => xs.map((i) => m.ops[i].name);

test("a starved op's why: the cut that starves it and its path through the cut to the loss", () => {
  const m = buildModel(brokenVae());
  const why = whyOf(m, "vae/decoder/dense/ReadVariableOp");
  assert.deepEqual(names(m, why.starvedBy), ["vae/PyFunc"]);
  assert.deepEqual(names(m, why.path), ["vae/decoder/dense/ReadVariableOp", "vae/decoder/dense/MatMul", "vae/decoder/dense/Sigmoid", "vae/PyFunc", "Square", "loss"]);
  assert.deepEqual(why.region, []);
});

test("a selected cut's why is its starved region; a flowing op, no op or an unknown name has none", () => {
  const m = buildModel(brokenVae());
  const cut = whyOf(m, "vae/PyFunc");
  assert.deepEqual(names(m, cut.region), ["vae/decoder/dense/ReadVariableOp", "vae/decoder/dense/MatMul", "vae/decoder/dense/Sigmoid"]);
  assert.deepEqual(cut.starvedBy, []);
  const empty = { starvedBy: [], path: [], region: [] };
  assert.deepEqual(whyOf(m, "Square"), empty);
  assert.deepEqual(whyOf(m, null), empty);
  assert.deepEqual(whyOf(m, "not/an/op"), empty);
  assert.deepEqual(whyOf(null, "Square"), empty);
});

test("a pane shows its selection, focuses it (else the first starving cut), and opens the root and its groups", () => {
  const m = buildModel(brokenVae());
  const cut = m.opIndex.get("vae/PyFunc")!;
  assert.deepEqual(starvingCuts(m), [cut]);
  const none = paneShown(m, null, ["vae"]);
  assert.equal(none.selected, -1);
  assert.equal(none.focus, cut);
  assert.deepEqual([...none.expanded], ["", "vae"]);
  const sq = m.opIndex.get("Square")!;
  assert.deepEqual({ ...paneShown(m, "Square", []), expanded: null }, { selected: sq, focus: sq, expanded: null });
  // a name the compared run's graph does not have selects nothing there
  assert.equal(paneShown(m, "elsewhere", []).selected, -1);
  assert.equal(selectedIndex(m, "Square"), sq);
  // a graph without a starving cut has no focus
  assert.equal(paneShown(buildModel(graph([{ name: "loss" }])), null, []).focus, undefined);
});

test("one colour scale: over all steps from the diagnoses' ranges of both panes, or this step's flowing norms", () => {
  const m = buildModel(brokenVae());
  const told = (ops: [number, number] | null) => ({ norm_range: { ops, variables: null } }) as unknown as DiagnosisResponse;
  const all = colourScaleOf("all", [{ model: m, diagnosis: told([0.01, 10]) }, { model: m, diagnosis: told([0.001, 1]) }]);
  assert.deepEqual(all, { lo: -3, hi: 1 });
  assert.equal(colourScaleOf("all", [{ model: m, diagnosis: null }]), null);
  // this step: flowing ops only (norms 0.5 .. 3 here; the starved ops' norms do not count)
  const step = colourScaleOf("step", [{ model: m, diagnosis: told([0.001, 1000]) }])!;
  assert.ok(Math.abs(step.lo - Math.log10(0.25)) < 1e-12 && Math.abs(step.hi - Math.log10(3)) < 1e-12, JSON.stringify(step));
  assert.equal(legendOver("all", false), "all steps");
  assert.equal(legendOver("all", true), "all steps, both runs");
  assert.equal(legendOver("step", true), "this step only");
});

test("a link's step the run no longer logs moves to the nearest logged step", () => {
  assert.equal(nearestStep([0, 10, 20], 14), 10);
  assert.equal(nearestStep([0, 10, 20], 16), 20);
  assert.equal(nearestStep([0, 10, 20], 99), 20);
  assert.equal(nearestStep([], 5), null);
});
