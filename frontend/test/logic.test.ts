import assert from "node:assert/strict";
import { test } from "node:test";
import { chartPoints } from "../src/chart";
import { magnitudeFraction, magnitudeScale } from "../src/colors";
import { formatNorm, listNames } from "../src/format";
import { alignNames, barLength, layerFlags, layerRows } from "../src/layers_model";
import { axisFraction, decadeTicks, logAxis, unionRange } from "../src/log_axis";
import { buildModel, parseNorm } from "../src/model";
import { fitText, nodeLines, nodeSize } from "../src/node_text";
import { matchingOps, search } from "../src/search";
import { fitTransform, visibleRect, zoomAround } from "../src/viewport";
import { brokenVae, graph } from "./fixture";

test("norms: wire values, formatting and the log scale", () => {
  assert.equal(parseNorm("inf"), Infinity);
  assert.ok(Number.isNaN(parseNorm("nan")));
  assert.equal(parseNorm(null), null);
  assert.equal(formatNorm(0.000123), "1.23e-4");
  assert.equal(formatNorm(2.5), "2.5");
  assert.equal(formatNorm(null), "—");
  assert.equal(formatNorm(Infinity), "Inf");
  const s = magnitudeScale([0.001, 10, null, 0, NaN, Infinity])!;
  assert.deepEqual(s, { lo: -3, hi: 1 });
  assert.equal(magnitudeFraction(0.1, s), 0.5);
  assert.equal(listNames(["a", "b", "c"], 2), "a, b, … (1 more)");
});

test("layers come in depth order with log-scale bars, none marked by a zero-length bar", () => {
  const m = buildModel(
    graph(
      [
        { name: "x" },
        { name: "d2/r", reads: ["d2/kernel"] },
        { name: "d1/r", reads: ["d1/kernel", "d1/bias"] },
        { name: "d1/mm", inputs: ["x", "d1/r"] },
        { name: "d2/mm", inputs: ["d1/mm", "d2/r"] },
      ],
      [
        { name: "d2/kernel", norm: 100 },
        { name: "d1/kernel", norm: 0.01 },
        { name: "d1/bias", state: "none" },
      ],
    ),
  );
  const rows = layerRows(m);
  assert.deepEqual(rows.map((r) => r.layer), ["d1", "d2"]);
  // an absolute axis over a served range: the same bar length whatever the step's own range
  const axis = logAxis([0.001, 100]);
  assert.deepEqual(axis, { lo: -3, hi: 2 });
  const [kernel, bias] = rows[0].variables;
  assert.equal(barLength(bias.bar!, axis), 0);
  assert.equal(barLength(kernel.bar!, axis), 0.2); // 0.01 is one decade of five above 1e-3
  assert.equal(barLength(rows[1].variables[0].bar!, axis), 1);
});

test("log axes: whole decades, ticks, ranges of two runs", () => {
  assert.deepEqual(unionRange([1.6e-6, 9.8], null, [0.088, 14.7]), [1.6e-6, 14.7]);
  const axis = logAxis([1.6e-6, 14.7])!;
  assert.deepEqual(axis, { lo: -6, hi: 2 });
  assert.deepEqual(decadeTicks(axis), [-6, -4, -2, 0, 2]);
  assert.deepEqual(decadeTicks({ lo: 0, hi: 1 }), [0, 1]);
  assert.equal(axisFraction(1, axis), 0.75);
  assert.equal(logAxis(null), null);
});

test("a layer orders of magnitude below or above its neighbours is called out", () => {
  const bar = (norm: number) => ({ name: "x", label: "x", state: "flowing" as const, norm });
  const rows = [1, 0.8, 1e-5, 0.5, 0.7, 900, 0.6].map((n, i) => ({ layer: `l${i}`, depth: i, variables: [{ bar: bar(n), other: null }] }));
  const flags = layerFlags(rows, (v) => v.bar);
  assert.deepEqual([...flags.keys()], ["l2", "l5"]);
  assert.equal(flags.get("l2")!.flag, "vanishing");
  assert.equal(flags.get("l5")!.flag, "exploding");
  // a steady decay of one decade per layer is not an outlier
  const decay = [1, 0.1, 0.01, 0.001].map((n, i) => ({ layer: `d${i}`, depth: i, variables: [{ bar: bar(n), other: null }] }));
  assert.equal(layerFlags(decay, (v) => v.bar).size, 0);
});

test("a layer's level is its L2 norm: an attention key bias's rounding noise flags nothing", () => {
  // Norms of a Keras MultiHeadAttention block after an Embedding, from tb_gradflow.analyze: the
  // key bias's gradient is zero in exact arithmetic and 7.9e-11 in float32.
  const bar = (norm: number) => ({ name: "x", label: "x", state: "flowing" as const, norm });
  const layer = (name: string, ...norms: number[]) => ({ layer: name, depth: 0, variables: norms.map((n) => ({ bar: bar(n), other: null })) });
  const rows = [
    layer("embedding", 3.43), layer("query", 9.73e-5, 1.61e-3), layer("key", 9.47e-5, 7.85e-11),
    layer("value", 0.315, 3.12), layer("attention_output", 0.298, 2.76), layer("dense", 0.319, 0.0813),
  ];
  assert.equal(layerFlags(rows, (v) => v.bar).size, 0);
  // the same layer with its kernel's gradient gone as well is called out
  rows[2] = layer("key", 7.85e-11, 7.85e-11);
  assert.equal(layerFlags(rows, (v) => v.bar).get("key")?.flag, "vanishing");
  // an end layer is called out against every other layer, not against the two nearest alone
  const first = [layer("in", 1e-7), layer("a", 1), layer("b", 0.5), layer("c", 2)];
  assert.equal(layerFlags(first, (v) => v.bar).get("in")?.flag, "vanishing");
  first[3] = layer("c", 1e-6);
  assert.equal(layerFlags(first, (v) => v.bar).size, 0);
  // large norms do not overflow the sum of squares
  const big = [layer("a", 1), layer("b", 1e200, 1e200), layer("c", 1)];
  assert.ok(Math.abs(layerFlags(big, (v) => v.bar).get("b")!.decades - (200 + Math.log10(Math.SQRT2))) < 1e-9);
});

test("compared runs are aligned by variable name", () => {
  const a = buildModel(brokenVae());
  const fixedResponse = brokenVae();
  fixedResponse.variables.state = ["flowing", "flowing"];
  fixedResponse.variables.norm = [0.02, 0.3];
  const rows = layerRows(a, buildModel(fixedResponse));
  const decoder = rows.find((r) => r.layer === "vae/decoder/dense")!;
  assert.equal(decoder.variables[0].bar!.state, "none");
  assert.equal(decoder.variables[0].other!.state, "flowing");
});

test("regex search finds ops and variables; a bad regex is reported", () => {
  const m = buildModel(brokenVae());
  const r = search("decoder.*kernel", m.ops, m.variables);
  assert.deepEqual(r.hits.map((h) => [h.kind, h.name]), [["variable", "vae/decoder/dense/kernel"]]);
  assert.equal(search("(", m.ops, m.variables).error !== null, true);
  const hits = matchingOps("decoder/dense/kernel", m.ops, m.variables);
  assert.deepEqual([...hits], [m.opIndex.get("vae/decoder/dense/ReadVariableOp")]);
  assert.equal(search("PYFUNC", m.ops, m.variables).total, 1);
});

test("fit shows all of the graph, zoom keeps the point under the cursor", () => {
  const t = fitTransform({ x: 0, y: 0, width: 2000, height: 1000 }, 1000, 500, 0);
  assert.equal(t.k, 0.5);
  const z = zoomAround({ x: 10, y: 20, k: 1 }, 2, 100, 100);
  assert.deepEqual([(100 - z.x) / z.k, (100 - z.y) / z.k], [90, 80]);
  const r = visibleRect({ x: 0, y: 0, k: 2 }, 100, 100, 0);
  assert.deepEqual({ x: r.x + 0, y: r.y + 0, width: r.width, height: r.height }, { x: 0, y: 0, width: 50, height: 50 });
});

test("a cut point's node says so, and node size does not depend on the step's values", () => {
  const m = buildModel(brokenVae());
  const node = { id: "op:7", kind: "op" as const, op: 7, group: null, cluster: null };
  const lines = nodeLines(m, node, undefined);
  assert.equal(lines[0].text, "✂ no gradient: numpy_function");
  const other = brokenVae();
  other.ops.norm[7] = 1.2345e-7;
  assert.deepEqual(nodeSize(nodeLines(buildModel(other), node, undefined)), nodeSize(lines));
  // a name that is the type is not repeated: "ReadVariableOp · ReadVariableOp" said nothing twice
  const read = nodeLines(m, { id: "op:1", kind: "op" as const, op: 1, group: null, cluster: null }, undefined);
  assert.deepEqual(read.map((l) => l.text), ["ReadVariableOp", "1"]);
  assert.equal(lines[2].text, "3");
  const x = nodeLines(m, { id: "op:0", kind: "op" as const, op: 0, group: null, cluster: null }, undefined);
  assert.deepEqual(x.map((l) => l.text), ["x", "Placeholder · no gradient"]);
});

test("long names are cut with an ellipsis to the widest node", () => {
  const long = "a".repeat(200);
  const fitted = fitText(long, 100);
  assert.ok(fitted.endsWith("…") && fitted.length < 30 && fitted.length > 5);
  assert.equal(fitText("short", 100), "short");
});

test("history chart points: log scale, gaps for no gradient", () => {
  const pts = chartPoints({ run: "r", tag: "t", op: "o", steps: [0, 10, 20], states: ["flowing", "none", "flowing"], norms: [0.1, null, 10], presences: [1, null, 1] }, 100, 100, 0);
  assert.deepEqual(pts.map((p) => p.x), [0, 50, 100]);
  assert.equal(pts[0].y, 100);
  assert.ok(Number.isNaN(pts[1].y));
  assert.equal(pts[2].y, 0);
});

test("runs are aligned across Keras' name suffixes, exact names first, then in order", () => {
  const m = alignNames(["vae/dense/kernel", "vae/dense_1/kernel", "vae/conv/bias"], ["vae_1/dense/kernel", "vae_1/dense_1/kernel", "vae/conv/bias", "extra/x"]);
  assert.deepEqual([...m], [
    ["vae/conv/bias", "vae/conv/bias"],
    ["vae_1/dense/kernel", "vae/dense/kernel"],
    ["vae_1/dense_1/kernel", "vae/dense_1/kernel"],
  ]);
});

