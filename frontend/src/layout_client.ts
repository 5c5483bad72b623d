// Sends layout requests to the worker; only the latest request of a caller matters.
import type { LayoutRequest, LayoutResult } from "./layout_protocol";

export class LayoutClient {
  private worker: Worker;
  private nextId = 1;
  private waiting = new Map<number, { resolve: (r: LayoutResult) => void; reject: (e: Error) => void }>();

  constructor(workerUrl: URL) {
    this.worker = new Worker(workerUrl);
    this.worker.onmessage = (event: MessageEvent<LayoutResult>) => {
      const w = this.waiting.get(event.data.id);
      if (!w) return;
      this.waiting.delete(event.data.id);
      if (event.data.error) w.reject(new Error(`layout failed: ${event.data.error}`));
      else w.resolve(event.data);
    };
    this.worker.onerror = (event) => {
      const error = new Error(`layout worker failed to load or crashed: ${event.message || workerUrl.href}`);
      for (const w of this.waiting.values()) w.reject(error);
      this.waiting.clear();
    };
  }

  layout(request: Omit<LayoutRequest, "id">): Promise<LayoutResult> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ ...request, id });
    });
  }
}
