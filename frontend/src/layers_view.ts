// The layers view: the "gradient flow" plot, one row per layer in depth order, bars on an
// absolute log axis (the run's range over all logged steps, one axis for both runs in Compare),
// layers orders of magnitude off their neighbours called out.
import { el } from "./dom";
import { percent } from "./presence";
import { formatNorm } from "./format";
import { barLength, layerFlags, layerRows } from "./layers_model";
import type { LayerFlag, LayerRow, VariableBar } from "./layers_model";
import { decadeLabel, decadeTicks, logAxis } from "./log_axis";
import type { LogAxis } from "./log_axis";
import type { GraphModel } from "./model";

function axisRow(axis: LogAxis): HTMLElement {
  const track = el("div", { class: "gf-axis-track", "data-field": "axis" });
  for (const d of decadeTicks(axis)) {
    const edge = d === axis.lo ? "start" : d === axis.hi ? "end" : undefined;
    const tick = el("span", { class: "gf-tick", "data-decade": d, "data-edge": edge }, decadeLabel(d));
    tick.style.left = `${(((d - axis.lo) / (axis.hi - axis.lo)) * 100).toFixed(2)}%`;
    track.append(tick);
  }
  return el(
    "div",
    { class: "gf-axis-row", "aria-hidden": "true" },
    el("div", { class: "gf-muted" }, "layer"),
    el("div", { class: "gf-axis-var" }, el("span", {}), el("div", { class: "gf-axis-bar" }, track, el("span", { class: "gf-muted gf-axis-label", "data-field": "axis-label" }, "|grad| (log)"))),
  );
}

function flagText(f: LayerFlag, run: string): string {
  const times = `10^${Math.round(Math.abs(f.decades))}×`;
  return `⚠ ${run}: ${f.flag}, about ${times} ${f.flag === "vanishing" ? "below" : "above"} its neighbours`;
}

/** Rows built before the view's first paint (more than a laptop screen holds); the others are
 * attached ROWS_PER_TASK at a time after it, so that 500 layers paint as fast as 50. */
const FIRST_ROWS = 60;
const ROWS_PER_TASK = 120;

/** Renders the bar list of `model` (and `other`, compared) into `container`, after the heatmap
 * it keeps. Resolves when every row is attached (`data-complete` on the table); stops early when
 * a newer render replaced the table. */
export async function renderLayers(
  container: HTMLElement,
  model: GraphModel,
  other: GraphModel | null,
  range: [number, number] | null,
  onVariable: (name: string) => void,
): Promise<void> {
  // the heatmap above the list stays: it keeps its cells between renders
  for (const child of [...container.children]) if (child.getAttribute("data-field") !== "heatmap") child.remove();
  const rows = layerRows(model, other);
  const axis = logAxis(range);
  container.append(listHead(model, other, axis));
  if (rows.length === 0) container.append(el("p", { class: "gf-muted" }, "No trainable variables."));
  const table = el("div", { class: "gf-layers-table", role: "list", "data-rows": rows.length });
  if (axis) {
    table.append(axisRow(axis));
    table.style.setProperty("--gf-decades", String(axis.hi - axis.lo));
  }
  const mine = layerFlags(rows, (v) => v.bar);
  const theirs = other ? layerFlags(rows, (v) => v.other) : new Map<string, LayerFlag>();
  const runs = { mine: model.run, theirs: other?.run ?? null };
  const build = (from: number, to: number): DocumentFragment => {
    const part = document.createDocumentFragment();
    for (const row of rows.slice(from, to)) part.append(layerElement(row, runs, axis, mine.get(row.layer), theirs.get(row.layer), onVariable));
    return part;
  };
  table.append(build(0, FIRST_ROWS));
  container.append(table);
  await attachRest(table, rows.length, build);
}

function listHead(model: GraphModel, other: GraphModel | null, axis: LogAxis | null): HTMLElement {
  const what = axis ? `log axis ${formatNorm(10 ** axis.lo)} … ${formatNorm(10 ** axis.hi)}, the same at every step${other ? " and for both runs" : ""}` : "no finite gradient";
  return el(
    "div",
    { class: "gf-layers-head" },
    el("strong", {}, `Gradient norm of each layer's variables at step ${model.step}`),
    el("span", { class: "gf-muted", "data-field": "axis-range" }, ` (${what}; inputs first)`),
    other ? el("span", { class: "gf-muted" }, ` · upper bar: ${model.run} (step ${model.step}), lower bar: ${other.run} (step ${other.step})`) : null,
  );
}

/** Attaches rows FIRST_ROWS … `count` to `table` after the first paint, a chunk per idle moment,
 * before the frozen rows that renderFrozenLayers put after the trained ones; marks the table
 * complete. Stops when the table is no longer in the page (a newer render replaced it). */
async function attachRest(table: HTMLElement, count: number, build: (from: number, to: number) => DocumentFragment): Promise<void> {
  if (count > FIRST_ROWS) await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
  for (let from = FIRST_ROWS; from < count; from += ROWS_PER_TASK) {
    if (!table.isConnected) return;
    table.insertBefore(build(from, from + ROWS_PER_TASK), table.querySelector(":scope > [data-frozen]"));
    await idle();
  }
  table.dataset.complete = "";
}

/** Resolves when the page is idle (the heatmap's answer and paint go first), or soon anyway. */
function idle(): Promise<void> {
  return new Promise((resolve) => (typeof requestIdleCallback === "function" ? requestIdleCallback(() => resolve(), { timeout: 300 }) : setTimeout(resolve, 0)));
}

interface Runs {
  mine: string;
  /** the compared run; null without Compare */
  theirs: string | null;
}

function barRow(b: VariableBar | null, run: string, axis: LogAxis | null): HTMLElement {
  if (!b) return el("div", { class: "gf-bar-row gf-muted", "data-run": run }, `not in ${run}`);
  const width = barLength(b, axis);
  const fill = el("span", { class: "gf-bar", "data-state": b.state });
  fill.style.width = `${(width * 100).toFixed(1)}%`;
  const value = b.state === "flowing" ? formatNorm(b.norm) : b.state === "none" ? "no gradient" : b.state === "zero" ? "zero" : `nonfinite (${formatNorm(b.norm)})`;
  const present = b.presence != null && b.presence < 1 && b.state === "flowing"
    ? el("span", { class: "gf-bar-presence", "data-presence": b.presence.toFixed(4), title: b.sparseGradient ? "rows the batch does not look up get no gradient: normal for an embedding" : "share of elements that get a gradient" },
      ` · ${percent(b.presence)} ${b.sparseGradient ? "of rows" : "present"}`)
    : null;
  return el("div", { class: "gf-bar-row", "data-run": run, "data-state": b.state, "data-length": width.toFixed(4) }, el("span", { class: "gf-bar-track" }, fill), el("span", { class: "gf-bar-value" }, value, present));
}

/** One layer's row: its name (and flags), each variable with its bar (two in Compare). */
function layerElement(row: LayerRow, runs: Runs, axis: LogAxis | null, mine: LayerFlag | undefined, theirs: LayerFlag | undefined, onVariable: (name: string) => void): HTMLElement {
  const vars = el("div", { class: "gf-layer-vars" });
  for (const v of row.variables) {
    const name = v.bar?.name ?? v.other?.name ?? "";
    const label = v.bar?.label ?? v.other?.label ?? name;
    const button = el("button", { type: "button", class: "gf-var-name", title: name }, label);
    button.addEventListener("click", () => onVariable(name));
    vars.append(
      el(
        "div",
        { class: "gf-var", "data-variable": name, "data-state": v.bar?.state ?? v.other?.state ?? "none" },
        button,
        el("div", { class: "gf-var-bars" }, barRow(v.bar, runs.mine, axis), runs.theirs !== null ? barRow(v.other, runs.theirs, axis) : null),
      ),
    );
  }
  const flags = [mine && flagText(mine, runs.mine), runs.theirs !== null && theirs && flagText(theirs, runs.theirs)].filter(Boolean) as string[];
  const flag = mine?.flag ?? theirs?.flag;
  return el(
    "div",
    { class: "gf-layer", role: "listitem", "data-layer": row.layer, "data-flag": flag },
    el("div", { class: "gf-layer-name", title: row.layer }, row.layer, ...flags.map((t) => el("div", { class: "gf-layer-flag" }, t))),
    vars,
  );
}
