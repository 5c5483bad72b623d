import assert from "node:assert/strict";
import { test } from "node:test";
import { buildModel } from "../src/model";
import { colourScaleOf, layersOffText, legendOver, nearestStep, NOTHING_DRAWN, openGroupsOf, paneShown, paneTitle, progressiveNote, redraws, selectedIndex, starvingCuts, statusText, whyOf } from "../src/shown";
import { brokenVae, graph } from "./fixture";
import type { DiagnosisResponse } from "../src/types";
import { INITIAL } from "../src/view_state";

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

test("the texts around the panes: status, Compare's titles, the group-by-group notes", () => {
  const m = buildModel(brokenVae());
  assert.equal(statusText(m), "");
  const fallback = buildModel(graph([], [{ name: "w" }], { fallback_reason: "eager mode" }));
  assert.equal(statusText(fallback), "No op graph at this step. eager mode");
  assert.equal(statusText(buildModel(graph([]))), "No op graph at this step. ");
  assert.equal(paneTitle(m, false), "");
  assert.equal(paneTitle(m, true), "run · step 5");
  const note = progressiveNote(1234567, 4321);
  assert.match(note, /^This graph has 1,234,567 ops, so it is loaded group by group \(above 50,000 ops\): 4,321 ops loaded\./);
  assert.match(note, /Compare and the Layers view need every op and are off\.$/);
  assert.match(layersOffText(70000), /this graph has 70,000 ops and is loaded group by group/);
});

test("a render redraws the banner on new data, the details on a new selection, the legend on a new scale", () => {
  const m = buildModel(brokenVae());
  const drawn = { model: m, other: null, selected: null, scale: { lo: -2, hi: 1 } };
  assert.deepEqual(redraws(NOTHING_DRAWN, drawn), { data: true, selection: true, scale: true });
  assert.deepEqual(redraws(drawn, { ...drawn, scale: { lo: -2, hi: 1 } }), { data: false, selection: false, scale: false });
  assert.deepEqual(redraws(drawn, { ...drawn, selected: "Square" }), { data: false, selection: true, scale: false });
  assert.deepEqual(redraws(drawn, { ...drawn, scale: { lo: -3, hi: 1 } }), { data: false, selection: false, scale: true });
  assert.deepEqual(redraws(drawn, { ...drawn, other: buildModel(brokenVae()) }), { data: true, selection: true, scale: false });
  assert.deepEqual(redraws(drawn, { ...drawn, model: buildModel(brokenVae()) }).data, true);
});

test("a pane's open groups: its own list in the view state, else its graph's default without the root", () => {
  assert.deepEqual(openGroupsOf(INITIAL, [["", "vae", "vae/decoder"], null]), [["vae", "vae/decoder"], []]);
  const own = { ...INITIAL, panes: [{ expanded: [] }, { expanded: ["b"] }] as typeof INITIAL.panes };
  assert.deepEqual(openGroupsOf(own, [["", "vae"], ["", "a"]]), [[], ["b"]]);
});
