import assert from "node:assert/strict";
import { test } from "node:test";
import { RouteError } from "../src/api";
import type { GraphRequest } from "../src/graph_source";
import { GraphSources, GroupByGroup, WholeGraph } from "../src/graph_source";
import { defaultExpansion, ROOT_ID } from "../src/hierarchy";
import { PaneLoader } from "../src/pane_loader";
import type { GraphRoutes } from "../src/pane_loader";
import { PROGRESSIVE_ABOVE_OPS } from "../src/progressive";
import type { DiagnosisResponse, GraphResponse, TagSummary } from "../src/types";
import { brokenVae, level, served, storyCut } from "./fixture";
import type { Spec } from "./fixture";

const SPECS: Spec[] = [
  { name: "x", state: "none" },
  { name: "a/b/m1", inputs: ["x"], state: "none" },
  { name: "a/PyFunc", inputs: ["a/b/m1"], cause: "numpy_function" },
  { name: "c/n", inputs: ["a/PyFunc"] },
  { name: "loss", inputs: ["c/n"] },
];

/** Routes of one run ("run", steps 1 and 2, and "other" at step 1 only); every request logged. */
function routes() {
  const asked: string[] = [];
  const r: GraphRoutes = {
    graph(run, _tag, step) {
      asked.push(`graph ${run} ${step ?? "last"}`);
      if (run === "other" && step === 2) return Promise.reject(new RouteError(404, "no step 2"));
      return Promise.resolve({ ...brokenVae(), run, step: step ?? 1 } as GraphResponse);
    },
    diagnosis(run, _tag, step) {
      asked.push(`diagnosis ${run} ${step ?? "last"}`);
      return Promise.resolve({ ...served([storyCut("vae/PyFunc", ["vae/decoder/dense/kernel"])]), step } as DiagnosisResponse);
    },
  };
  const fetchLevel = (_run: string, _tag: string, step: number, group: string) => {
    asked.push(`level ${group || "(top)"} ${step}`);
    return Promise.resolve(level(SPECS, group, step));
  };
  return { r, asked, fetchLevel };
}

const at = (extra: Partial<GraphRequest> = {}): GraphRequest => ({ run: "run", tag: "t", step: 1, compare: null, open: [], selected: null, ...extra });

test("a whole graph: each pane loaded at once with its default groups, kept for later steps of the graph", async () => {
  const { r, asked } = routes();
  const loader = new PaneLoader(r);
  const source = new WholeGraph(loader);
  assert.equal(await source.early(), null); // nothing to paint before the diagnosis
  const one = (await source.load(loader.begin(), at({ compare: "other" })))!;
  const cut = one.main.model.opIndex.get("vae/PyFunc")!;
  assert.deepEqual(new Set(one.main.defaultOpen), defaultExpansion(one.main.hierarchy, [cut]));
  assert.ok(one.main.defaultOpen.includes("vae"));
  assert.equal(one.main.levels, null);
  assert.equal(one.other?.model.run, "other");
  assert.ok(Object.isFrozen(one) && Object.isFrozen(one.main));
  const two = (await source.load(loader.begin(), at({ step: 2, compare: "other" })))!;
  assert.equal(two.main.defaultOpen, one.main.defaultOpen); // the same graph keeps its groups
  assert.equal(two.other?.model.step, 1); // Compare's run lacks step 2: its last
  assert.equal(await source.follow(at({ open: ["vae"] }), two), two);
  assert.equal(one.current(), false);
  assert.equal(two.current(), true);
  assert.ok(asked.includes("graph other 2") && asked.includes("graph other last"));
  assert.equal(source.partial, false);
});

test("group by group: the top level first, then the levels of the open groups and the selected op", async () => {
  const { r, asked, fetchLevel } = routes();
  const loader = new PaneLoader(r);
  const source = new GroupByGroup(loader, r, fetchLevel, (e) => e instanceof RouteError);
  const early = (await source.early(loader.begin(), at()))!;
  assert.deepEqual(asked, ["level (top) 1"]);
  assert.equal(early.main.diagnosis, null);
  assert.equal(early.other, null);
  assert.deepEqual(early.main.defaultOpen, [ROOT_ID]);
  const loaded = (await source.load(loader.begin(), at({ compare: "other" })))!;
  assert.equal(early.current(), false);
  assert.equal(loaded.main.diagnosis?.story.cuts[0].op_name, "vae/PyFunc");
  assert.equal(loaded.other, null); // Compare is not offered
  assert.deepEqual(asked, ["level (top) 1", "diagnosis run 1"]);
  // the story ties the levels' cut points (a new tree); then the same request gives the same panes
  const told = (await source.follow(at(), loaded))!;
  assert.notEqual(told, loaded);
  assert.equal(await source.follow(at(), told), told);
  // opening a group and selecting an op inside another loads their levels
  const followed = (await source.follow(at({ open: ["a"], selected: "c/n" }), told))!;
  assert.deepEqual(asked.slice(2).sort(), ["level a 1", "level c 1"]);
  assert.equal(followed.current, loaded.current);
  assert.equal(followed.main.diagnosis, loaded.main.diagnosis);
  assert.ok(followed.main.model.opIndex.has("a/PyFunc") && followed.main.model.opIndex.has("c/n"));
  assert.equal(followed.main.levels?.opsTotal, 5);
  assert.equal(source.partial, true);
});

test("the source is chosen by the graph's size, group by group only where the server serves levels", () => {
  const { r, fetchLevel } = routes();
  const sources = new GraphSources({ ...r, graphGroups: fetchLevel });
  const summary = (ops: number): TagSummary => ({ steps: [0, 1], count: 2, graph_versions: 1, description: "", ops });
  assert.equal(sources.of(summary(PROGRESSIVE_ABOVE_OPS + 1), true), sources.groups);
  assert.equal(sources.of(summary(PROGRESSIVE_ABOVE_OPS + 1), false), sources.whole);
  assert.equal(sources.of(summary(PROGRESSIVE_ABOVE_OPS), true), sources.whole);
  assert.equal(sources.of(undefined, true), sources.whole);
});

test("group by group: a group the route does not know (a stale link) is skipped, not an error", async () => {
  const { r, fetchLevel } = routes();
  const missing = (run: string, tag: string, step: number, group: string) => (group === "c" ? Promise.reject(new RouteError(404, "no group c")) : fetchLevel(run, tag, step, group));
  const sources = new GraphSources({ ...r, graphGroups: missing });
  const loaded = (await sources.groups.load(sources.loader.begin(), at()))!;
  const followed = (await sources.groups.follow(at({ open: ["c", "a"] }), loaded))!;
  assert.ok(followed.main.model.opIndex.has("a/PyFunc"));
  assert.ok(!followed.main.model.opIndex.has("c/n"));
  assert.ok(followed.main.levels?.unloaded.has("c"));
});
