import assert from "node:assert/strict";
import { test } from "node:test";
import { ancestors, MAX_CHILDREN, ROOT_ID } from "../src/hierarchy";
import { buildTree, countedFlow, LevelCache, levelCost, loadsProgressively, PROGRESSIVE_ABOVE_OPS, ProgressiveLoader, scopesOf, visibleTree } from "../src/progressive";
import type { GroupsResponse, Story } from "../src/types";
import { level, type Spec } from "./fixture";

// x -> a/b/m1 -> a/b/m2 -> a/PyFunc (cut) -> c/n -> loss; "a" is starved above the cut
const SPECS: Spec[] = [
  { name: "x", state: "none" },
  { name: "a/b/m1", inputs: ["x"], state: "none" },
  { name: "a/b/m2", inputs: ["a/b/m1"], state: "none" },
  { name: "a/PyFunc", inputs: ["a/b/m2"], cause: "numpy_function" },
  { name: "c/n", inputs: ["a/PyFunc"] },
  { name: "c/k", inputs: ["c/n"] },
  { name: "loss", inputs: ["c/k"] },
];
const STORY = { tone: "cut", headline: { text: "", names: [] }, cuts: [{ op_name: "a/PyFunc" }], harmless: [], harmless_summary: null, harmless_hints: [], notes: [] } as unknown as Story;

function levelsOf(specs: Spec[], groups: string[]): (g: string) => GroupsResponse | undefined {
  const m = new Map(groups.map((g) => [g, level(specs, g)]));
  return (g) => m.get(g);
}

test("the threshold reads the op count of `runs`, and an op's scopes are its name's prefixes", () => {
  const tag = { steps: [0, 1] as [number, number], count: 2, graph_versions: 1, description: "" };
  assert.equal(loadsProgressively({ ...tag, ops: PROGRESSIVE_ABOVE_OPS }), false);
  assert.equal(loadsProgressively({ ...tag, ops: PROGRESSIVE_ABOVE_OPS + 1 }), true);
  assert.equal(loadsProgressively(undefined), false);
  assert.deepEqual(scopesOf("a/b/c/op"), ["a", "a/b", "a/b/c"]);
  assert.deepEqual(scopesOf("loss"), []);
});

test("the top level alone: closed groups with the route's counts, edges between them by their states", () => {
  const tree = buildTree(levelsOf(SPECS, [""]), STORY)!;
  assert.deepEqual(tree.model.ops.map((o) => o.name), ["x", "loss"]);
  assert.deepEqual([...tree.unloaded].sort(), ["a", "c"]);
  assert.equal(tree.hierarchy.groups.get("a")!.size, 3);
  const a = tree.summaries.get("a")!;
  assert.deepEqual(a.counts, { flowing: 1, zero: 0, none: 2, nonfinite: 0 });
  assert.equal(a.worst, "none");
  assert.equal(a.cuts.length, 1); // the story's starving cut inside "a"
  const v = visibleTree(tree, new Set([ROOT_ID]));
  assert.deepEqual(v.nodes.map((n) => n.id).sort(), ["g:a", "g:c", "op:0", "op:1"]);
  const flow = Object.fromEntries(v.edges.map((e) => [e.id, e.pairs.length ? "pairs" : e.flow]));
  // x has no gradient: its edge into "a" is dead; a (its PyFunc gets one) feeds c: flowing
  assert.deepEqual(flow, { "g:c>op:1": "flowing", "g:a>g:c": "flowing", "op:0>g:a": "dead" });
});

test("an open group's level brings its ops; edges between loaded ops are real op pairs", () => {
  const tree = buildTree(levelsOf(SPECS, ["", "a", "c"]), STORY)!;
  assert.deepEqual([...tree.unloaded], ["a/b"]);
  const open = visibleTree(tree, new Set([ROOT_ID, "a", "c"]));
  const ids = open.edges.map((e) => e.id).sort();
  const pyfunc = tree.model.opIndex.get("a/PyFunc")!;
  const n = tree.model.opIndex.get("c/n")!;
  assert.ok(ids.includes(`op:${pyfunc}>op:${n}`), ids.join());
  assert.deepEqual(open.edges.find((e) => e.id === `op:${pyfunc}>op:${n}`)!.pairs, [[pyfunc, n]]);
  // "a/b" is not loaded: a closed node inside the open box of "a", feeding the cut
  assert.ok(ids.includes(`g:a/b>op:${pyfunc}`), ids.join());
  assert.equal(open.nodes.find((x) => x.id === "g:a/b")!.cluster, "c:a");
  // an edge from the top level into an open group ends at its box
  assert.ok(ids.includes("op:0>c:a"), ids.join());
  // closing "a" again draws its loaded ops as the group node
  const closed = visibleTree(tree, new Set([ROOT_ID, "c"]));
  assert.equal(closed.nodeOfOp[pyfunc], "g:a");
});

test("a level with more members than a group may draw is split into chunks in natural order", () => {
  const specs: Spec[] = Array.from({ length: 450 }, (_, i) => ({ name: `block_${i}/op`, inputs: i ? [`block_${i - 1}/op`] : [] }));
  const tree = buildTree(levelsOf(specs, [""]), null)!;
  const chunks = tree.hierarchy.root.groups;
  assert.equal(chunks.length, Math.ceil(450 / MAX_CHILDREN));
  assert.deepEqual(chunks.map((c) => c.label), ["block_0 … block_199", "block_200 … block_399", "block_400 … block_449"]);
  assert.deepEqual(chunks.map((c) => c.size), [200, 200, 50]);
  assert.equal(tree.summaries.get(chunks[0].id)!.counts.flowing, 200);
  const block_5 = tree.hierarchy.groups.get("block_5")!;
  assert.deepEqual(ancestors(block_5).map((g) => g.id), [chunks[0].id, "block_5"]);
  const v = visibleTree(tree, new Set([ROOT_ID]));
  assert.deepEqual(v.nodes.map((x) => x.id), chunks.map((c) => `g:${c.id}`));
  // the chain crosses from one chunk to the next
  assert.deepEqual(v.edges.map((e) => e.id).sort(), [`g:${chunks[0].id}>g:${chunks[1].id}`, `g:${chunks[1].id}>g:${chunks[2].id}`]);
  const inside = visibleTree(tree, new Set([ROOT_ID, chunks[1].id]));
  assert.equal(inside.nodes.filter((x) => x.cluster === `c:${chunks[1].id}`).length, 200);
});

test("the cache keeps open levels and releases closed ones beyond the budget, least recently used first", () => {
  const specs: Spec[] = ["p", "q", "r"].flatMap((g) => Array.from({ length: 10 }, (_, i) => ({ name: `${g}/op${i}` })));
  const cache = new LevelCache(25);
  for (const g of ["", "p", "q", "r"]) cache.put(level(specs, g));
  assert.equal(levelCost(level(specs, "p")), 10);
  assert.equal(cache.size, 3 + 30);
  cache.get("p"); // p used last: q goes first
  assert.deepEqual(cache.release(new Set(["r"])), ["q"]);
  assert.deepEqual(cache.ids.sort(), ["", "p", "r"]);
  assert.equal(cache.size, 23);
  // pinned levels stay even over the budget
  const small = new LevelCache(5);
  for (const g of ["", "p", "q"]) small.put(level(specs, g));
  assert.deepEqual(small.release(new Set(["p", "q"])), []);
  assert.equal(small.size, 23);
});

test("the loader fetches open groups level by level, skips unknown groups, and starts afresh on a new step", async () => {
  const asked: string[] = [];
  const fetch = async (_run: string, _tag: string, step: number, group: string): Promise<GroupsResponse> => {
    asked.push(`${step}:${group}`);
    return level(SPECS, group, step);
  };
  const loader = new ProgressiveLoader(fetch, 1000, (e) => (e as { status?: number }).status === 404);
  let tree = await loader.load("r", "t", 1, new Set(["a/b"]), [], STORY);
  assert.deepEqual(asked, ["1:", "1:a", "1:a/b"]);
  assert.ok(tree!.model.opIndex.has("a/b/m1"));
  tree = await loader.load("r", "t", 1, new Set(["a/b", "gone"]), [], STORY);
  assert.equal(asked.length, 3); // loaded already; "gone" is named by no level
  // an op to show: its scopes load although no group is open
  asked.length = 0;
  tree = await loader.load("r", "t", 1, new Set(), ["c"], STORY);
  assert.deepEqual(asked, ["1:c"]);
  assert.ok(tree!.model.opIndex.has("c/n"));
  asked.length = 0;
  tree = await loader.load("r", "t", 2, new Set(["a"]), [], STORY);
  assert.deepEqual(asked, ["2:", "2:a"]);
  assert.equal(tree!.model.step, 2);
  assert.equal(tree!.model.opIndex.has("c/n"), false);
});

test("the loader releases closed groups once the budget is exceeded", async () => {
  const specs: Spec[] = Array.from({ length: 8 }, (_, g) => Array.from({ length: 10 }, (_, i) => ({ name: `g${g}/op${i}` }))).flat();
  const loader = new ProgressiveLoader(async (_r, _t, step, group) => level(specs, group, step), 30);
  for (let g = 0; g < 8; g++) await loader.load("r", "t", 1, new Set([`g${g}`]), [], null);
  // each step opened one group and closed the previous: at most the budget stays loaded
  assert.ok(loader.levels.size <= 30, String(loader.levels.size));
  assert.ok(loader.levels.has("g7"));
  assert.equal(loader.levels.has("g0"), false);
  assert.equal(loader.fetched, 9);
});

test("edge flow from counts: gradient passes only where both ends get one", () => {
  const c = (flowing: number, none: number, zero = 0) => ({ flowing, none, zero, nonfinite: 0 });
  assert.equal(countedFlow(c(1, 0), c(2, 3)), "flowing");
  assert.equal(countedFlow(c(0, 4), c(2, 0)), "dead");
  assert.equal(countedFlow(c(0, 0, 1), c(2, 0)), "zero");
  assert.equal(countedFlow(undefined, c(1, 0)), "dead");
});
