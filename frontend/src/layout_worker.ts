// The layout worker: a same-origin script (layout_worker.js next to index.js).
import { runLayout } from "./layout_engine";
import type { LayoutRequest, LayoutResult } from "./layout_protocol";

const scope = self as unknown as { onmessage: ((e: MessageEvent<LayoutRequest>) => void) | null; postMessage(m: LayoutResult): void };
scope.onmessage = (event) => {
  const request = event.data;
  try {
    scope.postMessage(runLayout(request));
  } catch (e) {
    scope.postMessage({ id: request.id, boxes: {}, edges: {}, width: 0, height: 0, millis: 0, error: String(e) });
  }
};
