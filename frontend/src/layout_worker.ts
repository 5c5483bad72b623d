// The layout worker: a same-origin script (layout_worker.js next to index.js), or a blob: worker
// in an exported file. Its protocol is layout_protocol.ts; its queue, layout_queue.ts.
import { runLayout } from "./layout_engine";
import type { FromWorker, ToWorker } from "./layout_protocol";
import { LayoutQueue } from "./layout_queue";

const scope = self as unknown as { onmessage: ((e: MessageEvent<ToWorker>) => void) | null; postMessage(m: FromWorker): void };
const queue = new LayoutQueue(runLayout, (m) => scope.postMessage(m), (next) => setTimeout(next, 0));
scope.onmessage = (event) => queue.receive(event.data);
