// The details panel as the tab keeps it: the selected op's details (details.ts) from the Shown
// value's `details` part, and each op's history over the steps, fetched once per run, tag and op
// and kept until TensorBoard reloads; a history that arrives redraws the panel if its op is still
// the one shown.
import type { DetailsShown } from "./shown";
import type { HistoryResponse } from "./types";
import type { HistoryState } from "./details";
import { renderDetails } from "./details";
import { clear, el } from "./dom";

/** The op-history route (api.ts's, or another source's). */
export type FetchHistory = (run: string, tag: string, op: string) => Promise<HistoryResponse>;

export interface DetailsActions {
  /** an input or output link: select that op and show it */
  select(op: number): void;
  close(): void;
}

export class DetailsPanel {
  private readonly histories = new Map<string, HistoryState>();
  private shown: DetailsShown | null = null;

  constructor(private readonly container: HTMLElement, private readonly fetchHistory: FetchHistory, private readonly actions: DetailsActions) {}

  /** Shows `d` (hidden when no op is selected). */
  show(d: DetailsShown): void {
    this.shown = d;
    if (d.index < 0) {
      this.container.hidden = true;
      clear(this.container);
      return;
    }
    const m = d.model;
    this.container.hidden = false;
    const key = keyOf(d);
    let history = this.histories.get(key);
    if (!history) {
      history = { kind: "loading" };
      this.histories.set(key, history);
      this.fetchHistory(m.run, m.tag, m.ops[d.index].name).then(
        (data) => this.arrived(key, { kind: "ready", data }),
        (e: unknown) => this.arrived(key, { kind: "error", message: e instanceof Error ? e.message : String(e) }),
      );
    }
    renderDetails(this.container, m, d.index, history, (i) => this.actions.select(i), () => this.actions.close(), d.cut, { starvedBy: d.starvedBy, region: d.region }, d.versionChanges);
    if (d.note) this.container.append(el("p", { class: "gf-muted", "data-field": "progressive-note" }, d.note));
  }

  /** Forgets the histories (the run logged more steps). */
  forget(): void {
    this.histories.clear();
  }

  private arrived(key: string, state: HistoryState): void {
    this.histories.set(key, state);
    if (this.shown && this.shown.index >= 0 && keyOf(this.shown) === key) this.show(this.shown);
  }
}

function keyOf(d: DetailsShown): string {
  return `${d.model.run}\u0000${d.model.tag}\u0000${d.model.ops[d.index].name}`;
}
