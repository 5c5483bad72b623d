import assert from "node:assert/strict";
import { test } from "node:test";
import { buildModel } from "../src/model";
import type { Panes, PaneGraph } from "../src/graph_source";
import { buildHierarchy, ROOT_ID } from "../src/hierarchy";
import type { GraphModel } from "../src/model";
import { buildTree } from "../src/progressive";
import type { Shown } from "../src/shown";
import { colourScaleOf, layersOffText, legendOver, nearestStep, openGroupsOf, paneShown, paneTitle, progressiveNote, redraws, searchScopeText, selectedIndex, shownOf, starvingCuts, statusText, whyOf } from "../src/shown";
import { brokenVae, graph, level, served, storyCut } from "./fixture";
import type { DiagnosisResponse } from "../src/types";
import type { TabState } from "../src/view_state";
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
  assert.match(note, /Compare and the Layers view's bars need every op and are off\.$/);
  assert.match(layersOffText(70000), /this graph has 70,000 ops and is loaded group by group/);
});

test("a pane's open groups: its own list in the view state, else its graph's default without the root", () => {
  assert.deepEqual(openGroupsOf(INITIAL, [["", "vae", "vae/decoder"], null]), [["vae", "vae/decoder"], []]);
  const own = { ...INITIAL, panes: [{ expanded: [] }, { expanded: ["b"] }] as typeof INITIAL.panes };
  assert.deepEqual(openGroupsOf(own, [["", "vae"], ["", "a"]]), [[], ["b"]]);
});

// ---- one Shown value per render ----------------------------------------------------------------

const always = () => true;
const VAE_CUT = storyCut("vae/PyFunc", ["vae/decoder/dense/kernel"]);

function told(run: string, ranges: [number, number] | null = [0.01, 10]): DiagnosisResponse {
  return { ...served([VAE_CUT]), norm_range: { ops: ranges, variables: [0.001, 1] } } as DiagnosisResponse;
}

function whole(model: GraphModel, diagnosis: DiagnosisResponse | null, defaultOpen = [ROOT_ID, "vae"]): PaneGraph {
  return { model, hierarchy: buildHierarchy(model.ops), diagnosis, defaultOpen, levels: null };
}

const at = (state: Partial<TabState>): TabState => ({ ...INITIAL, run: "run", tag: "gradflow", ...state });
const panesOf = (main: PaneGraph, other: PaneGraph | null = null): Panes => ({ main, other, current: always });
const named = (m: GraphModel, xs: Iterable<number>) => [...xs].map((i) => m.ops[i].name);

test("a whole graph's Shown: its pane, default groups, selection and its path, matches, banner and details", () => {
  const m = buildModel(brokenVae());
  const selected = "vae/decoder/dense/ReadVariableOp";
  const shown = shownOf({ state: at({ selected, query: "Sigmoid" }), panes: panesOf(whole(m, told("run"))), timeline: null }, null);
  assert.equal(shown.panes.length, 1);
  const pane = shown.panes[0];
  assert.equal(pane.title, "");
  assert.deepEqual([...pane.expanded], [ROOT_ID, "vae"]);
  assert.equal(pane.selected, m.opIndex.get(selected));
  assert.equal(pane.focus, m.opIndex.get(selected));
  assert.deepEqual(named(m, pane.matches), ["vae/decoder/dense/Sigmoid"]);
  assert.deepEqual(named(m, pane.path), [selected, "vae/decoder/dense/MatMul", "vae/decoder/dense/Sigmoid", "vae/PyFunc", "Square", "loss"]);
  assert.equal(pane.given, undefined);
  assert.equal(shown.status, "");
  assert.deepEqual(shown.compare, { disabled: false, title: "" });
  assert.equal(shown.progress, null);
  assert.deepEqual(shown.banner.told!.cutOps, [m.opIndex.get("vae/PyFunc")]);
  assert.equal(shown.banner.other, null);
  assert.equal(shown.banner.reveals, false);
  assert.deepEqual(shown.legend.scale, { lo: -2, hi: 1 });
  assert.equal(shown.legend.over, "all steps");
  assert.equal(shown.details.index, m.opIndex.get(selected));
  assert.deepEqual(named(m, shown.details.starvedBy), ["vae/PyFunc"]);
  assert.equal(shown.details.cut, undefined);
  assert.equal(shown.details.note, null);
  assert.equal(shown.layers, null);
  // the cut selected: its details carry the story's entry and its region's size
  const cut = shownOf({ state: at({ selected: "vae/PyFunc" }), panes: panesOf(whole(m, told("run"))), timeline: null }, shown);
  assert.equal(cut.details.cut?.op_name, "vae/PyFunc");
  assert.equal(cut.details.region, 3);
  assert.deepEqual(named(m, cut.panes[0].region), ["vae/decoder/dense/ReadVariableOp", "vae/decoder/dense/MatMul", "vae/decoder/dense/Sigmoid"]);
  // nothing selected: no details; the first view looks at the starving cut; the layers view has bars
  const layers = shownOf({ state: at({ view: "layers", panes: [{ expanded: [] }, { expanded: null }] }), panes: panesOf(whole(m, told("run"))), timeline: null }, null);
  assert.equal(layers.details.index, -1);
  assert.equal(layers.panes[0].focus, m.opIndex.get("vae/PyFunc"));
  assert.deepEqual([...layers.panes[0].expanded], [ROOT_ID]);
  assert.deepEqual(layers.layers, { off: null, range: [0.001, 1], frozen: undefined });
});

test("Compare's Shown: two titled panes, the path in the run's pane only, one scale, both headlines", () => {
  const m = buildModel(brokenVae());
  const o = buildModel({ ...brokenVae(), run: "other" });
  const shown = shownOf({ state: at({ compare: "other", selected: "vae/decoder/dense/ReadVariableOp" }), panes: panesOf(whole(m, told("run", [0.01, 1])), whole(o, told("other", [0.1, 100]))), timeline: null }, null);
  assert.deepEqual(shown.panes.map((p) => p.title), ["run · step 5", "other · step 5"]);
  assert.equal(shown.panes[1].selected, o.opIndex.get("vae/decoder/dense/ReadVariableOp"));
  assert.ok(shown.panes[0].path.size > 0);
  assert.equal(shown.panes[1].path.size, 0);
  assert.deepEqual(shown.legend.scale, { lo: -2, hi: 2 });
  assert.equal(shown.legend.over, "all steps, both runs");
  assert.equal(shown.banner.other?.run, "other");
});

/** A graph of `specs` loaded group by group with these levels loaded. */
function byGroups(groups: string[], diagnosis: DiagnosisResponse | null): PaneGraph {
  const specs = [
    { name: "x", state: "none" as const },
    { name: "a/b/m1", inputs: ["x"], state: "none" as const },
    { name: "a/PyFunc", inputs: ["a/b/m1"], cause: "numpy_function" as const },
    { name: "c/n", inputs: ["a/PyFunc"] },
    { name: "loss", inputs: ["c/n"] },
  ];
  const levels = new Map(groups.map((g) => [g, level(specs, g)]));
  const tree = buildTree((g) => levels.get(g), diagnosis?.story ?? null)!;
  return { model: tree.model, hierarchy: tree.hierarchy, diagnosis, defaultOpen: [ROOT_ID], levels: tree };
}

test("a graph loaded group by group: Compare off, its notes, what is drawn of its levels, the heatmap kept in the layers view", () => {
  const pending = shownOf({ state: at({}), panes: panesOf(byGroups([ROOT_ID], null)), timeline: null }, null);
  assert.equal(pending.banner.told, null); // the diagnosis is coming: the banner says so
  assert.deepEqual(pending.compare, { disabled: true, title: "Compare needs every op of both graphs: not available for a graph loaded group by group" });
  assert.deepEqual(pending.progress, { text: progressiveNote(5, 2), loadedOps: 2 });
  assert.deepEqual(pending.panes[0].given!.visible.nodes.map((n) => n.group?.id ?? n.op), ["a", "c", 0, 1]);
  const open = byGroups([ROOT_ID, "a"], served([storyCut("a/PyFunc", ["w"])]));
  const shown = shownOf({ state: at({ view: "layers", selected: "a/PyFunc", panes: [{ expanded: ["a"] }, { expanded: null }] }), panes: panesOf(open), timeline: null }, pending);
  assert.equal(shown.banner.reveals, true);
  assert.ok(shown.panes[0].given!.visible.clusters.some((c) => c.group.id === "a"));
  assert.equal(shown.details.cut?.op_name, "a/PyFunc");
  assert.match(shown.details.note!, /loaded ops only/);
  assert.equal(shown.layers!.off, layersOffText(5));
  assert.match(searchScopeText(open)!, /^Searched the 3 loaded ops of 5: open a group/);
  assert.equal(searchScopeText(whole(buildModel(brokenVae()), null)), null);
});

test("a render redraws only the parts whose keys changed, and reuses the why and matches it can", () => {
  const m = buildModel(brokenVae());
  const panes = panesOf(whole(m, told("run")));
  const state = at({ selected: "vae/decoder/dense/ReadVariableOp", query: "dense" });
  const first = shownOf({ state, panes, timeline: null }, null);
  const none = { banner: false, legend: false, details: false, overview: false };
  assert.deepEqual(redraws(null, first), { banner: true, legend: true, details: true, overview: true });
  const again = shownOf({ state, panes, timeline: null }, first);
  assert.deepEqual(redraws(first, again), none);
  assert.equal(again.why.why, first.why.why);
  assert.equal(again.panes[0].matches, first.panes[0].matches);
  // a toggle of a group: the panes only
  const toggled = shownOf({ state: { ...state, panes: [{ expanded: [] }, { expanded: null }] }, panes, timeline: null }, again);
  assert.deepEqual(redraws(again, toggled), none);
  // a new selection: the details; a new scale: the legends; a new query: new matches, nothing else
  const sel = shownOf({ state: { ...state, selected: "Square" }, panes, timeline: null }, again);
  assert.deepEqual(redraws(again, sel), { ...none, details: true });
  assert.notEqual(sel.why.why, again.why.why);
  assert.deepEqual(redraws(again, shownOf({ state: { ...state, scale: "step" }, panes, timeline: null }, again)), { ...none, legend: true });
  const query = shownOf({ state: { ...state, query: "Square" }, panes, timeline: null }, again);
  assert.deepEqual(redraws(again, query), none);
  assert.deepEqual(named(m, query.panes[0].matches), ["Square"]);
  // new data (a new step's graph): everything; the timeline's first NaN step: the banner and details
  assert.deepEqual(redraws(again, shownOf({ state, panes: panesOf(whole(buildModel(brokenVae()), told("run"))), timeline: null }, again)), { banner: true, legend: true, details: true, overview: true });
  const timeline = { ...told("run"), first_nonfinite_step: 3 } as DiagnosisResponse;
  assert.deepEqual(redraws(again, shownOf({ state, panes, timeline }, again)), { ...none, banner: true, details: true });
});

test("a Compare load that lands while a render draws: the next render redraws the banner for it", () => {
  // The render applying `drawing` records it when it draws the banner. Before, the record was
  // completed after the panes were drawn from the panes then current, so a compared graph that
  // had landed meanwhile counted as drawn and its headline never reached the banner.
  const m = buildModel(brokenVae());
  const main = whole(m, told("run"));
  const drawing: Shown = shownOf({ state: at({}), panes: panesOf(main), timeline: null }, null);
  const other = whole(buildModel({ ...brokenVae(), run: "other" }), told("other"));
  const next = shownOf({ state: at({ compare: "other" }), panes: panesOf(main, other), timeline: null }, drawing);
  assert.equal(redraws(drawing, next).banner, true);
  assert.equal(next.banner.other?.run, "other");
});
