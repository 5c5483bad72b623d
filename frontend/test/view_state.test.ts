import assert from "node:assert/strict";
import { test } from "node:test";
import { readViewState, writeViewState } from "../src/url_state";
import * as S from "../src/view_state";

const base: S.TabState = { ...S.INITIAL, run: "broken", tag: "gradflow" };

test("the state goes through the URL and back unchanged", () => {
  const s: S.TabState = { ...base, step: 3, selected: "a/PyFunc", compare: "fixed", view: "layers", query: "Py", scale: "step", linked: false, panes: [{ expanded: ["a", "a/b"] }, { expanded: null }] };
  const back = S.fromUrl(readViewState(writeViewState("#gradflow", S.toUrl(s))));
  assert.deepEqual(back, s);
  assert.ok(S.sameView(back, s));
  assert.deepEqual(S.fromUrl(readViewState("#gradflow")), S.INITIAL);
});

test("transitions are pure and say what they need", () => {
  const frozen = Object.freeze({ ...base, panes: Object.freeze([{ expanded: null }, { expanded: null }]) as unknown as [S.PaneState, S.PaneState] });
  const stepped = S.setStep(frozen, [1, 2, 3], 1);
  assert.equal(stepped.step, 2);
  assert.equal(S.setStep(frozen, [1, 2, 3], 2).step, null); // the last step follows the latest
  assert.equal(S.needs(frozen, stepped), "graphs");
  assert.equal(S.needs(frozen, S.setRun(frozen, "fixed", ["gradflow"])), "all");
  assert.equal(S.needs(frozen, S.setView(frozen, "layers")), "render");
  assert.equal(frozen.step, null);
});

test("opening and closing groups, alone or in linked panes", () => {
  const current: [string[], string[]] = [["a"], ["a"]];
  const alone = S.toggleGroup(base, 0, "a/b", current);
  assert.deepEqual(alone.panes[0].expanded, ["a", "a/b"]);
  assert.equal(alone.panes[1].expanded, null); // no compare: the other pane is untouched
  const compared = { ...base, compare: "fixed" };
  const both = S.toggleGroup(compared, 1, "a/b", current);
  assert.deepEqual(both.panes.map((p) => p.expanded), [["a", "a/b"], ["a", "a/b"]]);
  const closed = S.toggleGroup(both, 0, "a", [["a", "a/b"], ["a", "a/b"]]);
  assert.deepEqual(closed.panes.map((p) => p.expanded), [[], []]); // closing a closes what is inside
  const unlinked = S.toggleGroup(S.setLinked(compared, false), 1, "x", current);
  assert.deepEqual(unlinked.panes.map((p) => p.expanded), [null, ["a", "x"]]);
});

test("selecting with reveal opens the op's groups and shows the graph", () => {
  const s = S.selectOp({ ...base, view: "layers" }, "a/b/op", ["a", "a/b"], [["a"], []]);
  assert.equal(s.selected, "a/b/op");
  assert.equal(s.view, "graph");
  assert.deepEqual(s.panes[0].expanded, ["a", "a/b"]);
  const quiet = S.selectOp(base, "x", null, [[], []]);
  assert.equal(quiet.panes[0].expanded, null);
  assert.equal(S.clearSelection(s).selected, null);
});

test("on the logdir's runs: a gone run gives way to the first with data, a missing tag to the run's first, Compare without the tag to none", () => {
  const runs = { a: {}, b: { t2: 1, t1: 1 }, c: { t1: 1 } };
  const s = { ...S.INITIAL, run: "gone", tag: "t9", compare: "c" };
  assert.deepEqual(S.onRuns(s, runs), { ...s, run: "b", tag: "t1", compare: "c" });
  assert.deepEqual(S.onRuns({ ...s, run: "b", tag: "t2" }, runs), { ...s, run: "b", tag: "t2", compare: null });
  const kept = { ...s, run: "c", tag: "t1", compare: "b" };
  assert.equal(S.onRuns(kept, runs), kept);
});
