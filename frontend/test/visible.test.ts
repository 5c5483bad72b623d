import assert from "node:assert/strict";
import { test } from "node:test";
import { buildHierarchy, ROOT_ID } from "../src/hierarchy";
import { buildModel } from "../src/model";
import { edgeFlow, pairFlow, visibleGraph } from "../src/visible";
import { brokenVae } from "./fixture";

test("collapsed groups stand for their ops, and edges are merged onto them", () => {
  const m = buildModel(brokenVae());
  const h = buildHierarchy(m.ops);
  const v = visibleGraph(m.ops, h, new Set([ROOT_ID]));
  assert.deepEqual(v.nodes.map((n) => n.id).sort(), ["g:vae", "op:0", "op:8", "op:9"]);
  assert.equal(v.clusters.length, 0);
  const ids = v.edges.map((e) => e.id).sort();
  assert.deepEqual(ids, ["g:vae>op:8", "g:vae>op:9", "op:0>g:vae", "op:8>op:9"]);
});

test("open groups become clusters that hold their members", () => {
  const m = buildModel(brokenVae());
  const h = buildHierarchy(m.ops);
  const v = visibleGraph(m.ops, h, new Set([ROOT_ID, "vae"]));
  assert.deepEqual(v.clusters.map((c) => c.id), ["c:vae"]);
  const pyfunc = v.nodes.find((n) => n.op === m.opIndex.get("vae/PyFunc"))!;
  assert.equal(pyfunc.cluster, "c:vae");
  const encoder = v.nodes.find((n) => n.id === "g:vae/encoder/dense")!;
  assert.equal(encoder.cluster, "c:vae");
});

test("an edge into a cut point or out of a starved op carries no gradient", () => {
  const m = buildModel(brokenVae());
  const i = (n: string) => m.opIndex.get(n)!;
  assert.equal(pairFlow(m.ops, i("vae/decoder/dense/Sigmoid"), i("vae/PyFunc")), "dead");
  assert.equal(pairFlow(m.ops, i("vae/PyFunc"), i("Square")), "flowing");
  assert.equal(pairFlow(m.ops, i("vae/encoder/dense/Relu"), i("vae/decoder/dense/MatMul")), "dead");
  const h = buildHierarchy(m.ops);
  const v = visibleGraph(m.ops, h, new Set([ROOT_ID]));
  assert.equal(edgeFlow(m.ops, v.edges.find((e) => e.id === "g:vae>op:8")!), "flowing");
});
