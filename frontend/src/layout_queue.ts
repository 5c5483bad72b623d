// The layout worker's queue: jobs run one at a time, each in its own task, so that a cancel
// message arriving while one job runs drops the stale jobs queued behind it before they start.
import type { FromWorker, LayoutRequest, LayoutResult, ToWorker } from "./layout_protocol";

export class LayoutQueue {
  private readonly queue: LayoutRequest[] = [];
  private scheduled = false;

  /**
   * @param run lays out one request (layout_engine.runLayout in the worker)
   * @param post sends a message to the tab
   * @param schedule runs a callback in a later task (setTimeout in the worker)
   */
  constructor(
    private readonly run: (request: LayoutRequest) => LayoutResult,
    private readonly post: (message: FromWorker) => void,
    private readonly schedule: (next: () => void) => void,
  ) {}

  receive(message: ToWorker): void {
    if (message.kind === "cancel") {
      const ids = new Set(message.ids);
      const dropped = this.queue.filter((r) => ids.has(r.id));
      this.queue.splice(0, this.queue.length, ...this.queue.filter((r) => !ids.has(r.id)));
      for (const r of dropped) this.post({ kind: "cancelled", id: r.id });
      return;
    }
    this.queue.push(message.request);
    this.post({ kind: "queued", id: message.request.id, ahead: this.queue.length - 1 });
    this.pump();
  }

  private pump(): void {
    if (this.scheduled || this.queue.length === 0) return;
    this.scheduled = true;
    this.schedule(() => {
      this.scheduled = false;
      const request = this.queue.shift();
      if (request) this.runOne(request);
      this.pump();
    });
  }

  private runOne(request: LayoutRequest): void {
    this.post({ kind: "started", id: request.id, nodes: request.nodes.length });
    try {
      this.post({ kind: "done", id: request.id, result: this.run(request) });
    } catch (e) {
      this.post({ kind: "failed", id: request.id, error: String(e) });
    }
  }
}
