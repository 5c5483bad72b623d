// The details panel of the selected op.
import { nameList } from "./banner_view";
import { renderChart } from "./chart";
import { clear, el } from "./dom";
import { formatNorm, notMeasuredText } from "./format";
import type { GraphModel } from "./model";
import { STATE_LABEL } from "./colors";
import { presenceHistory, presenceText } from "./presence";
import { deadUnitsText, loopSection } from "./loop_units";
import type { HistoryResponse, StoryCut } from "./types";

export type HistoryState = { kind: "loading" } | { kind: "ready"; data: HistoryResponse } | { kind: "error"; message: string };

const MAX_LINKS = 40;

export function renderDetails(
  container: HTMLElement,
  model: GraphModel,
  index: number,
  history: HistoryState,
  onSelect: (index: number) => void,
  onClose: () => void,
  cut?: StoryCut,
  why?: { starvedBy: number[]; region: number },
  versionChanges: readonly { step: number; graph_version: number }[] = [],
): void {
  clear(container);
  const op = model.ops[index];
  if (!op) return;
  container.dataset.selectedOp = op.name;
  const close = el("button", { class: "gf-close", type: "button", "aria-label": "close details" }, "×");
  close.addEventListener("click", onClose);
  const row = (label: string, field: string, ...value: (Node | string | null)[]): HTMLElement =>
    el("div", { class: "gf-row" }, el("dt", {}, label), el("dd", { "data-field": field }, ...value));
  const opLinks = (indices: number[]): HTMLElement => {
    if (indices.length === 0) return el("span", { class: "gf-muted" }, "none");
    const list = el("ul", { class: "gf-links" });
    for (const i of indices.slice(0, MAX_LINKS)) {
      const other = model.ops[i];
      const b = el("button", { type: "button", class: "gf-op-link", "data-op-link": other.name, "data-state": other.state }, other.name);
      b.addEventListener("click", () => onSelect(i));
      list.append(el("li", {}, b));
    }
    if (indices.length > MAX_LINKS) list.append(el("li", { class: "gf-muted" }, `… ${indices.length - MAX_LINKS} more`));
    return list;
  };
  const dl = el(
    "dl",
    {},
    row("Type", "type", op.type),
    // a cut point's own gradient is what arrives from the loss; what it is, is the cut
    row("State", "state", cut ? el("span", { class: "gf-badge", "data-state": "cut" }, "✂ cut point") : el("span", { class: "gf-badge", "data-state": op.state }, STATE_LABEL[op.state])),
    row("Gradient norm", "norm", op.measured ? formatNorm(op.norm) : `${formatNorm(op.norm)} (${notMeasuredText(op.parent, Boolean(model.fallbackReason))})`),
    row("Presence", "presence", presenceText(op) ?? (op.measured ? "unknown" : notMeasuredText(op.parent, Boolean(model.fallbackReason)))),
    ...(deadUnitsText(op) ? [row("Dead units", "dead-units", deadUnitsText(op))] : []),
    row("Source", "source", op.source || "unknown"),
    row("Output", "output", op.shapes.map((s, i) => `${op.dtypes[i] ?? ""}[${s}]`).join(", ") || "—"),
  );
  if (op.cause) {
    const starved = op.starved.map((i) => model.variables[i]?.name ?? String(i));
    dl.append(row("Cut point", "cause", el("span", { class: "gf-cut-text" }, `✂ ${op.cause}${op.causeDetail ? `: ${op.causeDetail}` : ""}`)));
    if (cut) {
      const arriving = op.state === "flowing" || op.state === "nonfinite" ? `${cut.arriving} (norm ${formatNorm(op.norm)})` : cut.arriving;
      const inputs = cut.blocked_inputs.map((name) => model.opIndex.get(name)).filter((i): i is number => i !== undefined);
      dl.append(
        row("Reaching it", "arriving", arriving),
        row("Passes back", "blocked", el("span", {}, cut.blocked, inputs.length ? ":" : ""), inputs.length ? opLinks(inputs) : null),
      );
    }
    dl.append(row("Starves", "starved", starved.length ? nameList(starved) : "nothing (another path carries the gradient)"));
    if (cut) dl.append(row("Fix", "hint", cut.hint));
  }
  if (why && op.state === "none" && !op.cause) {
    dl.append(
      why.starvedBy.length
        ? row("Starved by", "starved-by", opLinks(why.starvedBy), el("div", { class: "gf-muted" }, "its path through the cut to the loss is highlighted"))
        : row("Starved by", "starved-by", "no cut point: it does not reach the loss"),
    );
  }
  if (why && op.cause) dl.append(row("Starved region", "region", `${why.region} op${why.region === 1 ? "" : "s"} upstream get no gradient through it (outlined in red)`));
  if (op.variableInputs.length) {
    dl.append(row("Reads", "variables", op.variableInputs.map((i) => model.variables[i]?.name ?? String(i)).join(", ")));
  }
  const chart = el("div", { class: "gf-history", "data-field": "history" });
  if (history.kind === "loading") chart.append(el("span", { class: "gf-muted" }, "loading history…"));
  else if (history.kind === "error") chart.append(el("span", { class: "gf-error" }, history.message));
  else chart.append(renderChart(history.data, model.step, versionChanges), el("div", { class: "gf-muted", "data-field": "history-steps" }, `${history.data.steps.length} logged steps`, history.data.sampled ? ` (${history.data.sampled})` : ""));
  container.append(
    el("header", {}, el("h2", { "data-field": "short-name" }, op.name.split("/").pop() ?? op.name), close),
    el("div", { class: "gf-fullname", "data-field": "name" }, op.name),
    dl,
    ...loopSection(op),
    el("h3", {}, "Gradient norm across steps"),
    chart,
    ...(history.kind === "ready" && presenceHistory(history.data) ? [el("h3", {}, "Presence across steps"), presenceHistory(history.data)!] : []),
    el("h3", {}, `Inputs (${op.inputs.length})`),
    opLinks(op.inputs),
    el("h3", {}, `Outputs (${op.outputs.length})`),
    opLinks(op.outputs),
  );
}
