// Presence: the fraction of a gradient's elements that are nonzero and finite (issue 11). On the
// graph a bar along the node's bottom edge, full width for 1, so that a dead ReLU reads at the
// overview; in the details a row and a strip of its history; in the layers view a note per bar.
import { el, svg } from "./dom";
import type { Op } from "./model";
import type { HistoryResponse } from "./types";

/** Below this, a gating op that receives a gradient is called out (vocabulary.PRESENCE_GATE_THRESHOLD). */
export const DEAD_GATE_THRESHOLD = 0.1;

export function percent(p: number): string {
  const pct = 100 * p;
  if (pct > 0 && pct < 1) return "under 1 %";
  if (pct > 99 && pct < 100) return "over 99 %";
  return `${Math.round(pct)} %`;
}

/** A gating op that a gradient reaches but that passes back almost none of it. */
export function isDeadGate(op: Op): boolean {
  return op.presenceAtInput && op.state === "flowing" && op.presence !== null && op.presence < DEAD_GATE_THRESHOLD;
}

/** "8 % of what arrives passed back to its input" / "100 % at its output" / null when unknown. */
export function presenceText(op: Op): string | null {
  if (op.presence === null) return null;
  return `${percent(op.presence)} ${op.presenceAtInput ? "of what arrives passed back to its input" : "of its gradient's elements"}`;
}

/** The bar along a node's bottom edge, width = presence, with test hooks on the node. */
export function presenceBar(node: SVGGElement, op: Op, width: number, height: number): void {
  node.querySelector(".gf-presence")?.remove();
  node.removeAttribute("data-presence");
  node.removeAttribute("data-dead-gate");
  if (op.presence === null) return;
  node.setAttribute("data-presence", op.presence.toFixed(4));
  if (isDeadGate(op)) node.setAttribute("data-dead-gate", "true");
  if (op.presence >= 1) return; // a full gradient needs no mark
  node.append(
    svg("g", { class: "gf-presence", "aria-hidden": "true" },
      svg("rect", { class: "gf-presence-track", x: 2, y: height - 6, width: width - 4, height: 4, rx: 2 }),
      svg("rect", { class: "gf-presence-fill", x: 2, y: height - 6, width: Math.max(0, (width - 4) * op.presence), height: 4, rx: 2 })),
  );
}

/** The presence of one op or variable across steps, a strip of cells (darker = more present). */
export function presenceHistory(h: HistoryResponse): HTMLElement | null {
  const values = h.presences ?? [];
  if (!values.some((p) => p !== null)) return null;
  const strip = el("div", { class: "gf-presence-strip", "data-field": "presence-history" });
  values.forEach((p, i) => {
    const cell = el("span", { class: "gf-presence-cell", "data-step": String(h.steps[i]), title: `step ${h.steps[i]}: ${p === null ? "unknown" : percent(p)}` });
    if (p !== null) cell.style.opacity = String(0.15 + 0.85 * p);
    else cell.dataset.unknown = "true";
    strip.append(cell);
  });
  const known = values.filter((p): p is number => p !== null);
  return el("div", {}, strip, el("div", { class: "gf-muted" }, `from ${percent(Math.min(...known))} to ${percent(Math.max(...known))} over ${values.length} steps`));
}

const groupMemo = new WeakMap<readonly Op[], Map<string, boolean>>();

/** A group as the server and the hierarchy both give it: enough to look for a dead gate. */
interface GroupLike {
  id: string;
  ops: number[];
  groups: GroupLike[];
}

/** Whether a collapsed group holds a dead gate, so that the overview shows it too. */
export function groupHasDeadGate(group: GroupLike, ops: readonly Op[]): boolean {
  let memo = groupMemo.get(ops);
  if (!memo) groupMemo.set(ops, (memo = new Map<string, boolean>()));
  const known = memo.get(group.id);
  if (known !== undefined) return known;
  const found = group.ops.some((i) => ops[i] !== undefined && isDeadGate(ops[i])) || group.groups.some((g) => groupHasDeadGate(g, ops));
  memo.set(group.id, found);
  return found;
}
