import assert from "node:assert/strict";
import { test } from "node:test";
import { buildModel } from "../src/model";
import { cutsStarving, pathThroughCut, starvedRegion } from "../src/paths";
import { brokenVae } from "./fixture";

test("a starved op names the cut that starves it and the path through it to the loss", () => {
  const m = buildModel(brokenVae());
  const idx = (n: string) => m.opIndex.get(n)!;
  const read = idx("vae/decoder/dense/ReadVariableOp");
  assert.deepEqual(cutsStarving(m, read), [idx("vae/PyFunc")]);
  const path = pathThroughCut(m, read, idx("vae/PyFunc")).map((i) => m.ops[i].name);
  assert.deepEqual(path, ["vae/decoder/dense/ReadVariableOp", "vae/decoder/dense/MatMul", "vae/decoder/dense/Sigmoid", "vae/PyFunc", "Square", "loss"]);
  // an op with another way to the loss is not starved by the cut
  assert.deepEqual(cutsStarving(m, idx("Square")), []);
});

test("a cut's starved region: the ops upstream of it without a gradient", () => {
  const m = buildModel(brokenVae());
  const region = starvedRegion(m, m.opIndex.get("vae/PyFunc")!).map((i) => m.ops[i].name);
  assert.deepEqual(region, ["vae/decoder/dense/ReadVariableOp", "vae/decoder/dense/MatMul", "vae/decoder/dense/Sigmoid"]);
});
