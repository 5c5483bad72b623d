import assert from "node:assert/strict";
import { test } from "node:test";
import type { FromWorker, LayoutRequest, LayoutResult } from "../src/layout_protocol";
import { LayoutQueue } from "../src/layout_queue";

const request = (id: number): LayoutRequest => ({ id, nodes: [{ id: "a", width: 1, height: 1, cluster: null }], clusters: [], edges: [] });
const result = (r: LayoutRequest): LayoutResult => ({ id: r.id, boxes: {}, edges: {}, width: 0, height: 0, millis: 0 });

/** A queue whose tasks run only when the test says (the worker's setTimeout). */
function harness(run: (r: LayoutRequest) => LayoutResult = result) {
  const sent: FromWorker[] = [];
  const tasks: (() => void)[] = [];
  const queue = new LayoutQueue(run, (m) => sent.push(m), (next) => tasks.push(next));
  const drain = () => {
    while (tasks.length) tasks.shift()!();
  };
  return { sent, queue, drain };
}

test("jobs run one per task, in order, each queued, started and done", () => {
  const { sent, queue, drain } = harness();
  queue.receive({ kind: "layout", request: request(1) });
  queue.receive({ kind: "layout", request: request(2) });
  assert.deepEqual(sent, [{ kind: "queued", id: 1, ahead: 0 }, { kind: "queued", id: 2, ahead: 1 }]);
  drain();
  assert.deepEqual(sent.slice(2).map((m) => [m.kind, m.id]), [["started", 1], ["done", 1], ["started", 2], ["done", 2]]);
});

test("a cancel drops queued jobs before they start; a job already done is not touched", () => {
  const ran: number[] = [];
  const { sent, queue, drain } = harness((r) => (ran.push(r.id), result(r)));
  queue.receive({ kind: "layout", request: request(1) });
  drain();
  for (const id of [2, 3, 4]) queue.receive({ kind: "layout", request: request(id) });
  queue.receive({ kind: "cancel", ids: [1, 2, 3] });
  drain();
  assert.deepEqual(ran, [1, 4]);
  assert.deepEqual(sent.filter((m) => m.kind === "cancelled").map((m) => m.id), [2, 3]);
});

test("a failing layout is reported and the queue goes on", () => {
  const { sent, queue, drain } = harness((r) => {
    if (r.id === 1) throw new Error("boom");
    return result(r);
  });
  queue.receive({ kind: "layout", request: request(1) });
  queue.receive({ kind: "layout", request: request(2) });
  drain();
  assert.deepEqual(sent.find((m) => m.kind === "failed"), { kind: "failed", id: 1, error: "Error: boom" });
  assert.ok(sent.some((m) => m.kind === "done" && m.id === 2));
});
