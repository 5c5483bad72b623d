import assert from "node:assert/strict";
import { test } from "node:test";
import { buildHierarchy } from "../src/hierarchy";
import { cellColour, cellText, columnOf, columnsFor, columnsForRows, columnsShared, fillRuns, heatmapModel, labelEvery, MAX_CELLS, rowHeight, rowLabel, sampleIndices, sampleLayers, sharedRange } from "../src/heatmap_model";
import { buildModel, variableDepths } from "../src/model";
import { cardTitles, groupNorm, overviewEntries } from "../src/overview";
import type { LayersResponse } from "../src/types";
import { graph } from "./fixture";
import type { OpSpec } from "./fixture";

const body: LayersResponse = {
  run: "r", tag: "t", steps: [0, 10, 20], count: 3, range: [1e-4, 1],
  layers: [
    { name: "dense", variables: ["dense/kernel"], states: ["flowing", "zero", "nonfinite"], norms: [1e-4, 0, "inf"] },
    { name: "head", variables: ["head/kernel"], states: ["flowing", "none", null], norms: [1, null, null] },
  ],
};

test("cells: flowing ones coloured on the run's scale, the others marked and uncoloured", () => {
  const m = heatmapModel(body);
  assert.deepEqual(m.rows.map((r) => r.layer), ["dense", "head"]);
  const [small, zero, bad] = m.rows[0].cells;
  const [large, none, absent] = m.rows[1].cells;
  assert.notEqual(small.colour, null);
  assert.notEqual(small.colour, large.colour); // ends of the ramp differ
  assert.equal(small.colour, cellColour("flowing", 1e-4, m.scale));
  assert.deepEqual([zero.colour, bad.colour, none.colour, absent.colour], [null, null, null, null]);
  assert.deepEqual([zero.state, bad.state, none.state, absent.state], ["zero", "nonfinite", "none", "absent"]);
  assert.equal(bad.norm, Infinity);
  assert.equal(cellText("dense", small, String), "dense · step 0 · |grad| 0.0001");
  assert.match(cellText("head", none, String), /no gradient/);
});

test("columns fit the width; rows get thinner with many layers but stay visible", () => {
  assert.equal(columnsFor(1000), 250);
  assert.equal(columnsFor(1), 1);
  assert.equal(rowHeight(12, 340), 18);
  assert.equal(rowHeight(107, 340), 3);
  assert.equal(rowHeight(1000, 340), 1);
  assert.equal(labelEvery(18), 1);
  assert.equal(labelEvery(3), 4); // ResNet50's 107 layers: a name every fourth row
  assert.equal(columnsForRows(275, 13), 275);
  assert.equal(columnsForRows(275, 500), 80); // 40,000 cells at most
  assert.equal(rowLabel("block_12/multi_head_attention/query"), "block_12/…/query");
  assert.equal(rowLabel("dense_3"), "dense_3");
});

test("sampling keeps the first and last step, evenly spaced, as the route samples", () => {
  assert.deepEqual(sampleIndices(5, 10), [0, 1, 2, 3, 4]);
  assert.deepEqual(sampleIndices(10, 4), [0, 3, 6, 9]);
  assert.deepEqual(sampleIndices(7, 3), [0, 3, 6]);
  const few = sampleLayers(body, 2);
  assert.deepEqual(few.steps, [0, 20]);
  assert.deepEqual(few.layers[0].norms, [1e-4, "inf"]);
  assert.equal(columnOf([0, 10, 20], 15), 1);
  assert.equal(columnOf([0, 10, 20], 20), 2);
  assert.equal(columnOf([0, 10, 20], -5), 0);
});

test("overview titles drop the prefix every card shares and read whole", () => {
  assert.deepEqual(cardTitles(["resnet_1/conv5_block1_out", "resnet_1/conv2_block1_1_conv"]), ["conv5_block1_out", "conv2_block1_1_conv"]);
  assert.deepEqual(cardTitles(["m/a/x", "m/a/y", "m/b"]), ["a/x", "a/y", "b"]);
  assert.deepEqual(cardTitles(["only/one"]), ["only/one"]);
  assert.deepEqual(cardTitles(["m/a", "m"]), ["m/a", "m"]); // a name that is the prefix keeps itself
  // the loss's scope beside the model's: each top scope loses its own shared prefix
  assert.deepEqual(cardTitles(["resnet50_1/conv1_conv_1", "resnet50_1/predictions_1", "sparse_categorical_crossentropy"]), ["conv1_conv_1", "predictions_1", "sparse_categorical_crossentropy"]);
});

test("overview: variable reads at depth 0 do not pull the last block to the front; cards carry a norm", () => {
  const ops: OpSpec[] = [{ name: "x" }];
  let before = "x";
  for (let b = 0; b < 8; b++) {
    // the last block reads many variables: by plain depth its median would be 0
    const reads = Array.from({ length: b === 7 ? 9 : 1 }, (_, k) => ({ name: `m/block_${b}/read_${k}`, type: "ReadVariableOp", reads: [`m/block_${b}/w`], norm: 10 ** -b }));
    ops.push(...reads);
    ops.push({ name: `m/block_${b}/MatMul`, inputs: [before, ...reads.map((r) => r.name)], norm: 10 ** -b });
    before = `m/block_${b}/MatMul`;
  }
  ops.push({ name: "loss", inputs: [before] });
  const model = buildModel(graph(ops, Array.from({ length: 8 }, (_, b) => ({ name: `m/block_${b}/w` }))));
  const h = buildHierarchy(model.ops);
  const groups = overviewEntries(h, model.ops).flatMap((e) => (e.kind === "group" ? [e.group] : []));
  assert.deepEqual(groups.map((g) => g.id), Array.from({ length: 8 }, (_, b) => `m/block_${b}`));
  assert.equal(groupNorm(groups[3], model.ops), 1e-3);
});

test("compare: both runs' heatmaps on the union of their ranges, so that a colour is one norm", () => {
  const other: LayersResponse = { ...body, run: "s", range: [1e-2, 10], layers: [{ name: "dense", variables: ["dense/kernel"], states: ["flowing", "flowing", "flowing"], norms: [1, 1e-2, 10] }] };
  const range = sharedRange([body, other]);
  assert.deepEqual(range, [1e-4, 10]);
  const mine = heatmapModel(body, range);
  const theirs = heatmapModel(other, range);
  // the same norm (1) gets the same colour in both; alone, each run would put it elsewhere
  assert.equal(mine.rows[1].cells[0].colour, theirs.rows[0].cells[0].colour);
  assert.notEqual(heatmapModel(body).rows[1].cells[0].colour, heatmapModel(other).rows[0].cells[0].colour);
  assert.equal(theirs.rows[0].cells[2].colour, cellColour("flowing", 10, mine.scale)); // the top of the shared ramp
  assert.equal(sharedRange([{ ...body, range: null }, { ...other, range: null }]), null);
  // the cell budget is shared: two grids of 250 layers get the columns one of 500 would
  assert.equal(columnsShared(300, [250, 250]), columnsForRows(300, 500));
  assert.ok(columnsShared(300, [250, 250]) * 500 <= MAX_CELLS);
});

test("variable depths on a long chain of variable-only ops: every variable at the first data op", () => {
  // 400 ops computed from variables alone, then one op that also reads the data input
  const ops: OpSpec[] = [{ name: "x" }, { name: "v/read_0", type: "ReadVariableOp", reads: ["v/w_0"] }];
  for (let i = 1; i < 400; i++) ops.push({ name: `v/read_${i}`, type: "ReadVariableOp", reads: [`v/w_${i}`], inputs: [`v/read_${i - 1}`] });
  ops.push({ name: "mix", inputs: ["x", "v/read_399"] }, { name: "loss", inputs: ["mix"] });
  const model = buildModel(graph(ops, Array.from({ length: 400 }, (_, i) => ({ name: `v/w_${i}` }))));
  const depths = variableDepths(model.ops, model.variables);
  assert.deepEqual(new Set(depths), new Set([1]));
});

test("fill runs: neighbours of one fill in one rect, every drawn cell once, absent ones left out", () => {
  const layer: LayersResponse["layers"][number] = { name: "a", variables: ["a/w"], states: ["none", "none", "flowing", "flowing", "zero", null, "nonfinite"], norms: [null, null, 1, 1, 0, null, "nan"] };
  const m = heatmapModel({ run: "r", tag: "t", steps: [0, 1, 2, 3, 4, 5, 6], count: 7, range: [0.1, 10], layers: [layer] });
  const runs = fillRuns(m, new Set(["none", "zero", "nonfinite"]));
  const blue = m.rows[0].cells[2].colour!;
  assert.deepEqual([...runs.entries()], [["none", [[0, 0, 2]]], [blue, [[0, 2, 4]]], ["zero", [[0, 4, 5]]], ["nonfinite", [[0, 6, 7]]]]);
  // unmarked states are not drawn: with none left out, its cells are in no run
  assert.equal(fillRuns(m, new Set(["zero"])).has("none"), false);
});
