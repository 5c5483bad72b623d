import assert from "node:assert/strict";
import { test } from "node:test";
import { parseHash, readViewState, writeViewState } from "../src/url_state";

test("view state round-trips through TensorBoard's hash and keeps its keys", () => {
  const hash = "#gradflow&smoothing=0.6";
  const out = writeViewState(hash, { run: "a/b run", tag: "gradflow", step: 12, op: "x/y&z=1", expanded: ["vae", "vae/enc,oder"], view: "layers", q: "dense.*kernel" });
  assert.ok(out.startsWith("gradflow&"));
  assert.equal(parseHash(out).get("smoothing"), "0.6");
  assert.deepEqual(readViewState(`#${out}`), { run: "a/b run", tag: "gradflow", step: 12, op: "x/y&z=1", expanded: ["vae", "vae/enc,oder"], view: "layers", q: "dense.*kernel" });
});

test("old keys of ours are replaced, garbage is ignored", () => {
  const out = writeViewState("#gradflow&p.gradflow.op=old&p.gradflow.step=3", { run: "r" });
  assert.deepEqual(readViewState(out), { run: "r" });
  assert.deepEqual(readViewState("#gradflow&p.gradflow.step=abc&p.gradflow.view=evil&%E0%A4%A=1"), {});
});
