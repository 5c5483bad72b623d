// Sends layout requests to the worker. Each caller (a pane's graph view) has at most one job
// that matters: a new request cancels the caller's previous one, which then resolves to null
// (the worker drops it if it has not started).
import type { FromWorker, LayoutProgress, LayoutRequest, LayoutResult, ToWorker } from "./layout_protocol";

interface Waiting {
  caller: string;
  resolve: (r: LayoutResult | null) => void;
  reject: (e: Error) => void;
  progress?: (p: LayoutProgress) => void;
}

export class LayoutClient {
  private worker: Worker;
  private nextId = 1;
  private readonly waiting = new Map<number, Waiting>();
  private readonly latest = new Map<string, number>();

  constructor(workerUrl: URL) {
    this.worker = new Worker(workerUrl);
    this.worker.onmessage = (event: MessageEvent<FromWorker>) => this.receive(event.data);
    this.worker.onerror = (event) => {
      const error = new Error(`layout worker failed to load or crashed: ${event.message || workerUrl.href}`);
      for (const w of this.waiting.values()) w.reject(error);
      this.waiting.clear();
    };
  }

  /** Lays out `request` for `caller`; null when a newer request of the same caller superseded
   * it. `progress` hears when the job is queued and started. */
  layout(request: Omit<LayoutRequest, "id">, caller: string, progress?: (p: LayoutProgress) => void): Promise<LayoutResult | null> {
    const id = this.nextId++;
    const previous = this.latest.get(caller);
    this.latest.set(caller, id);
    if (previous !== undefined && this.waiting.has(previous)) {
      this.post({ kind: "cancel", ids: [previous] });
      this.settle(previous, null); // superseded, whether or not the worker has started it
    }
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { caller, resolve, reject, progress });
      this.post({ kind: "layout", request: { ...request, id } });
    });
  }

  private post(message: ToWorker): void {
    this.worker.postMessage(message);
  }

  private settle(id: number, result: LayoutResult | null): void {
    const w = this.waiting.get(id);
    if (!w) return;
    this.waiting.delete(id);
    if (this.latest.get(w.caller) === id) this.latest.delete(w.caller);
    w.resolve(result);
  }

  private receive(message: FromWorker): void {
    const w = this.waiting.get(message.id);
    if (!w) return; // settled already (superseded)
    switch (message.kind) {
      case "queued":
      case "started":
        w.progress?.(message);
        return;
      case "done":
        this.settle(message.id, message.result);
        return;
      case "cancelled":
        this.settle(message.id, null);
        return;
      case "failed":
        this.waiting.delete(message.id);
        if (this.latest.get(w.caller) === message.id) this.latest.delete(w.caller);
        w.reject(new Error(`layout failed: ${message.error}`));
        return;
    }
  }
}
