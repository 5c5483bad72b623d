// The layers x steps heatmap at the top of the layers view (issue 17): one row per layer (inputs
// first), one column per logged step (sampled to the width), each cell coloured by the layer's
// gradient norm on the run's log scale; none, zero and NaN/Inf cells marked. Hover names layer,
// step and value; a click picks that step and layer. Cells carry data-layer, data-step and
// data-norm. Fetches the `layers` route itself and keeps the element between renders, so that a
// step change only moves the current-step mark. In Compare, the compared run's grid is drawn below
// the run's, each labelled, both on the union of the two runs' ranges.
import { api } from "./api";
import { clear, el, setText } from "./dom";
import { formatNorm } from "./format";
import type { HeatCell, HeatmapModel } from "./heatmap_model";
import { cellText, columnOf, columnsFor, columnsShared, fillRuns, heatmapModel, LABEL_ROW_PX, labelEvery, rowHeight, rowLabel, sampleLayers, sharedRange } from "./heatmap_model";
import type { GraphModel } from "./model";
import { cardTitles } from "./overview";

/** Height the rows may take before they get thinner (px). */
const MAX_ROWS_PX = 340;
/** Width of the layer-name column (px). */
const NAME_PX = 150;

export const HEATMAP_CSS = `
.gf-heatmap { margin: 0 0 14px; position: relative; }
.gf-hm-head { display: flex; gap: 12px; align-items: baseline; flex-wrap: wrap; margin-bottom: 4px; }
.gf-hm-key { display: inline-flex; gap: 10px; font-size: 11px; color: var(--gf-muted); align-items: center; }
.gf-hm-key i { display: inline-block; width: 10px; height: 10px; vertical-align: -1px; margin-right: 3px; }
.gf-hm-ramp { width: 60px !important; }
.gf-hm-body { display: grid; grid-template-columns: ${NAME_PX}px 1fr; }
.gf-hm-names { font-size: 11px; overflow: hidden; }
.gf-hm-name { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; padding-right: 6px; text-align: right; }
.gf-hm-name[data-selected] { font-weight: 600; }
.gf-hm-name[data-thin] { overflow: visible; font-size: 10px; }
.gf-hm-grid { position: relative; cursor: crosshair; }
.gf-hm-canvas { position: absolute; left: 0; top: 0; width: 100%; height: 100%; }
.gf-hm-row { display: flex; position: relative; }
.gf-hm-row[data-selected] { outline: 1px solid var(--gf-fg); z-index: 1; position: relative; }
.gf-hm-cell { flex: 1 1 0; min-width: 0; }
.gf-hm-key i[data-state=none] { background: repeating-linear-gradient(135deg, var(--gf-none-stroke) 0 1px, var(--gf-none) 1px 4px) fixed; }
.gf-hm-key i[data-state=zero] { background: var(--gf-zero); }
.gf-hm-key i[data-state=nonfinite] { background: var(--gf-nonfinite); box-shadow: inset 0 0 0 1px var(--gf-cut); }
.gf-hm-now { position: absolute; z-index: 2; top: -3px; bottom: -3px; border-left: 2px solid var(--gf-cut); pointer-events: none; }
.gf-hm-run + .gf-hm-run { margin-top: 8px; }
.gf-hm-run-label { font-size: 11px; font-weight: 600; margin: 2px 0 2px ${NAME_PX}px; }
.gf-hm-steps { display: flex; justify-content: space-between; font-size: 10px; color: var(--gf-muted); margin-left: ${NAME_PX}px; }
.gf-layer[data-selected] { outline: 2px solid var(--gf-fg); outline-offset: -2px; }
.gf-hm-tip { position: absolute; pointer-events: none; background: var(--gf-panel); border: 1px solid var(--gf-border); padding: 2px 6px; font-size: 11px; white-space: nowrap; z-index: 3; }
`;

/** How many layers (rows) a model's variables make. */
export function layerCount(model: GraphModel): number {
  return new Set(model.variables.map((v) => v.layer)).size;
}

/** Cells attached per task after the paint. */
const CELLS_PER_TASK = 4000;

function cellElement(layer: string, cell: HeatCell): HTMLElement {
  const div = document.createElement("div");
  div.className = "gf-hm-cell";
  div.setAttribute("data-layer", layer);
  div.setAttribute("data-step", String(cell.step));
  div.setAttribute("data-state", cell.state);
  div.setAttribute("data-norm", cell.norm === null ? "" : String(cell.norm));
  if (cell.colour) div.setAttribute("data-fill", cell.colour);
  return div;
}

/** Paints every cell on `canvas` (the grid's size): the ramp colour of a flowing cell; a hatch,
 * amber or purple (outlined red) for none, zero and NaN/Inf, in the tab's colours. */
function drawCells(canvas: HTMLCanvasElement, m: HeatmapModel, rowPx: number, width: number, styled: HTMLElement): void {
  const dpr = window.devicePixelRatio || 1;
  const height = rowPx * m.rows.length;
  canvas.width = Math.max(1, Math.round(width * dpr));
  canvas.height = Math.max(1, Math.round(height * dpr));
  const ctx = canvas.getContext("2d");
  if (!ctx) return;
  ctx.scale(dpr, dpr);
  const css = getComputedStyle(styled);
  const colour = (name: string): string => css.getPropertyValue(name).trim() || "#888";
  const hatch = hatchPattern(ctx, colour("--gf-none"), colour("--gf-none-stroke"));
  const fills: Record<string, string | CanvasPattern> = { none: hatch ?? colour("--gf-none"), zero: colour("--gf-zero"), nonfinite: colour("--gf-nonfinite") };
  const n = m.steps.length;
  const xs = Array.from({ length: n + 1 }, (_, c) => Math.round((c * width) / n));
  // one fillStyle per colour, neighbours of one colour in one rect: far fewer calls than cells
  const runs = fillRuns(m, new Set(Object.keys(fills)));
  for (const [key, list] of runs) {
    ctx.fillStyle = fills[key] ?? key;
    for (const [i, from, to] of list) ctx.fillRect(xs[from], i * rowPx, xs[to] - xs[from], rowPx);
  }
  if (rowPx < 4) return;
  ctx.strokeStyle = colour("--gf-cut");
  for (const [i, from, to] of runs.get("nonfinite") ?? []) {
    for (let c = from; c < to; c++) ctx.strokeRect(xs[c] + 0.5, i * rowPx + 0.5, xs[c + 1] - xs[c] - 1, rowPx - 1);
  }
}

function hatchPattern(ctx: CanvasRenderingContext2D, background: string, stroke: string): CanvasPattern | null {
  const tile = document.createElement("canvas");
  tile.width = tile.height = 4;
  const t = tile.getContext("2d");
  if (!t) return null;
  t.fillStyle = background;
  t.fillRect(0, 0, 4, 4);
  t.strokeStyle = stroke;
  t.beginPath();
  t.moveTo(0, 4);
  t.lineTo(4, 0);
  t.stroke();
  return ctx.createPattern(tile, "repeat");
}

/** One run's place in the heatmap: the step the tab shows of it, its last logged step (a reload
 * that logs more fetches again) and how many layers its graph has (many: fewer columns). */
export interface HeatmapRun {
  run: string;
  step: number;
  lastStep: number;
  layers: number;
}

export interface HeatmapView extends HeatmapRun {
  tag: string;
  /** the compared run (Compare), drawn below the run on the same colour scale; null for none */
  other?: HeatmapRun | null;
}

/** A click on a cell: that step (of the clicked run: the tab takes the run's nearest) and that
 * layer (with the run's variables of it). */
export type PickCell = (step: number, layer: string, variables: string[]) => void;

interface Hit {
  layer: string;
  variables: string[];
  cell: HeatCell;
}

/** One run's rows: layer names, the painted canvas with one row element per layer (the cell
 * elements attached later) and the step axis; labelled with the run when two are shown. */
class RunGrid {
  readonly element: HTMLElement;
  readonly grid: HTMLElement;
  private readonly now = el("div", { class: "gf-hm-now", "data-field": "heatmap-now" });
  private readonly canvas = el("canvas", { class: "gf-hm-canvas", "aria-hidden": "true" });
  private readonly rowPx: number;

  constructor(readonly model: HeatmapModel, labelled: boolean, maxRowsPx: number) {
    const m = model;
    this.rowPx = rowHeight(m.rows.length, maxRowsPx);
    const h = this.rowPx;
    const names = el("div", { class: "gf-hm-names", "aria-hidden": "true" });
    this.grid = el("div", { class: "gf-hm-grid", role: "grid", "aria-rowcount": m.rows.length, "aria-label": `${m.run}: layers over steps` });
    this.grid.style.height = `${h * m.rows.length}px`;
    const every = labelEvery(h);
    const labels = cardTitles(m.rows.map((r) => r.layer)).map((t) => rowLabel(t));
    const nameRows = document.createDocumentFragment();
    const lines = document.createDocumentFragment();
    m.rows.forEach((row, i) => {
      // thin rows: a name on every few rows, drawn over the unnamed ones below it
      const name = el("div", { class: "gf-hm-name", title: row.layer, "data-layer": row.layer, "data-thin": h < LABEL_ROW_PX ? "" : null }, i % every === 0 ? labels[i] : "");
      name.style.height = `${h}px`;
      name.style.lineHeight = `${Math.max(h, LABEL_ROW_PX)}px`;
      nameRows.append(name);
      const line = el("div", { class: "gf-hm-row", role: "row", "data-layer": row.layer });
      line.style.height = `${h}px`;
      lines.append(line);
    });
    names.append(nameRows);
    this.grid.append(this.canvas, lines, this.now);
    const steps = m.steps.length ? el("div", { class: "gf-hm-steps" }, el("span", {}, `step ${m.steps[0]}`), el("span", {}, `step ${m.steps[m.steps.length - 1]}`)) : null;
    const body = m.rows.length ? el("div", { class: "gf-hm-body" }, names, this.grid) : el("p", { class: "gf-muted" }, "No trainable variables.");
    const title = labelled ? el("div", { class: "gf-hm-run-label", "data-field": "heatmap-run" }, m.run) : null;
    this.element = el("div", { class: "gf-hm-run", "data-run": m.run }, title, body, steps);
  }

  /** Paints the cells at the grid's width (`width`, read once for every grid). */
  draw(width: number, styled: HTMLElement): void {
    if (this.model.rows.length) drawCells(this.canvas, this.model, this.rowPx, width, styled);
  }

  /** The cells as elements over the painted canvas, a few thousand per task so that the page
   * stays responsive: what hover, tests and assistive technology read (`data-layer`,
   * `data-step`, `data-norm`, `data-state`; `data-fill` the colour painted below). Stops when
   * `current` turns false (a newer heatmap is coming). */
  async attachCells(current: () => boolean): Promise<void> {
    const m = this.model;
    const lines = [...this.grid.querySelectorAll<HTMLElement>(".gf-hm-row")];
    let done = 0;
    for (let i = 0; i < lines.length; i++) {
      const row = m.rows[i];
      const cells = document.createDocumentFragment();
      for (const cell of row.cells) cells.append(cellElement(row.layer, cell));
      lines[i].append(cells);
      done += row.cells.length;
      if (done >= CELLS_PER_TASK) {
        done = 0;
        await new Promise((resolve) => setTimeout(resolve, 0));
        if (!current()) return;
      }
    }
  }

  /** The row and cell under the pointer, from its position (cells may not be attached yet). */
  cellAt(e: MouseEvent): Hit | null {
    const m = this.model;
    if (m.steps.length === 0) return null;
    const box = this.grid.getBoundingClientRect();
    const c = Math.floor(((e.clientX - box.left) / box.width) * m.steps.length);
    const row = m.rows[Math.floor((e.clientY - box.top) / this.rowPx)];
    const cell = row?.cells[c];
    return row && cell ? { layer: row.layer, variables: row.variables, cell } : null;
  }

  /** Marks the column of `step` (the run's shown step) and the row of `picked`. */
  mark(step: number, picked: string | null): void {
    const m = this.model;
    if (m.steps.length === 0) return;
    const c = columnOf(m.steps, step);
    this.now.style.left = `calc(${((c + 0.5) / m.steps.length) * 100}% - 1px)`;
    this.now.dataset.step = String(m.steps[c]);
    for (const row of this.element.querySelectorAll<HTMLElement>(".gf-hm-row, .gf-hm-name")) row.toggleAttribute("data-selected", row.dataset.layer === picked);
  }
}

export class Heatmap {
  readonly element: HTMLElement;
  private readonly head = el("div", { class: "gf-hm-head" });
  private readonly runs = el("div", { class: "gf-hm-runs" });
  private readonly tip = el("div", { class: "gf-hm-tip", hidden: true });
  private grids: RunGrid[] = [];
  private key = "";
  private view: HeatmapView | null = null;
  /** the layer last clicked, outlined here and in the layers view's list */
  private picked: string | null = null;
  private themeWatched = false;

  constructor(private readonly onPick: PickCell) {
    document.head.append(el("style", { "data-for": "gf-heatmap" }, HEATMAP_CSS));
    this.element = el("section", { class: "gf-heatmap", "data-field": "heatmap", "aria-label": "gradient norm of each layer over the logged steps" }, this.head, this.runs, this.tip);
    this.runs.addEventListener("mousemove", (e) => this.hover(e));
    this.runs.addEventListener("mouseleave", () => (this.tip.hidden = true));
    this.runs.addEventListener("click", (e) => this.click(e));
  }

  /** The layer last picked by a click on a cell (the layers view outlines its row too). */
  get pickedLayer(): string | null {
    return this.picked;
  }

  /** Shows `view` in `container` (first child): fetches the route when a run, the tag, the width
   * or the logged steps changed, else only moves the marks. */
  async show(container: HTMLElement, view: HeatmapView): Promise<void> {
    if (this.element.parentElement !== container || container.firstChild !== this.element) container.prepend(this.element);
    this.view = view;
    this.followTheme(container);
    const shown = view.other ? [view, view.other] : [view];
    const fit = columnsFor(Math.max(40, (container.clientWidth || 800) - NAME_PX - 24));
    const columns = columnsShared(fit, shown.map((r) => r.layers));
    const key = JSON.stringify([view.tag, columns, ...shown.map((r) => [r.run, r.lastStep])]);
    if (key !== this.key) {
      this.key = key;
      const current = (): boolean => this.key === key;
      this.element.dataset.status = "loading";
      this.element.dataset.started = String(performance.now());
      delete this.element.dataset.painted;
      try {
        const bodies = await Promise.all(shown.map((r) => api.layers(r.run, view.tag, columns)));
        if (!current()) return;
        // one scale for both runs; many layers: fewer columns, so that the cells stay few enough
        const range = bodies.length > 1 ? sharedRange(bodies) : bodies[0].range;
        const cut = columnsShared(columns, bodies.map((b) => b.layers.length));
        this.paint(bodies.map((b) => heatmapModel(sampleLayers(b, cut), range)));
        await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
        if (!current()) return;
        this.element.dataset.painted = String(performance.now()); // the frame with the heatmap is drawn
        for (const grid of this.grids) await grid.attachCells(current);
        if (!current()) return;
      } catch (e) {
        if (!current()) return;
        this.grids = [];
        clear(this.runs);
        setText(this.head, `Layers over training: ${e instanceof Error ? e.message : String(e)}`);
      }
      this.element.dataset.status = "ready";
    }
    this.mark();
  }

  private paint(models: HeatmapModel[]): void {
    clear(this.head);
    clear(this.runs);
    const m = models[0];
    const sampled = m.steps.length < m.count ? `, ${m.steps.length} of ${m.count} steps evenly sampled` : "";
    const both = models.length > 1 ? " for both runs" : "";
    const scale = m.scale ? `log scale ${formatNorm(10 ** m.scale.lo)} … ${formatNorm(10 ** m.scale.hi)} over all steps${both}` : "no finite gradient";
    const ramp = el("i", { class: "gf-hm-ramp" });
    ramp.style.background = "linear-gradient(to right, hsl(175,55%,82%), hsl(225,80%,32%))";
    this.head.append(
      el("strong", {}, "Each layer's gradient norm over training"),
      el("span", { class: "gf-muted", "data-field": "heatmap-range" }, `(inputs first; ${scale}${sampled})`),
      el(
        "span",
        { class: "gf-hm-key" },
        el("span", {}, ramp, "small → large"),
        el("span", {}, el("i", { "data-state": "none" }), "no gradient"),
        el("span", {}, el("i", { "data-state": "zero" }), "zero"),
        el("span", {}, el("i", { "data-state": "nonfinite" }), "NaN / Inf"),
      ),
    );
    // two runs share the height one had, so that the bar list still starts on the first screen
    const rowsPx = MAX_ROWS_PX / models.length;
    this.grids = models.map((model) => new RunGrid(model, models.length > 1, rowsPx));
    this.runs.append(...this.grids.map((g) => g.element));
    this.drawAll();
  }

  /** Paints every grid's canvas: one layout read for all of them. */
  private drawAll(): void {
    const width = this.grids.find((g) => g.model.rows.length)?.grid.clientWidth ?? 0;
    for (const grid of this.grids) grid.draw(width, this.element);
  }

  /** Repaints the canvases when the tab's theme (dark mode) changes: their colours are the theme's. */
  private followTheme(container: HTMLElement): void {
    const root = container.closest<HTMLElement>("#gf-root");
    if (this.themeWatched || !root) return;
    this.themeWatched = true;
    new MutationObserver(() => this.drawAll()).observe(root, { attributes: true, attributeFilter: ["data-theme"] });
  }

  private gridOf(e: MouseEvent): RunGrid | null {
    return this.grids.find((g) => g.grid.contains(e.target as Node)) ?? null;
  }

  private hover(e: MouseEvent): void {
    const hit = this.gridOf(e)?.cellAt(e);
    if (!hit) {
      this.tip.hidden = true;
      return;
    }
    const grid = this.gridOf(e)!;
    const run = this.grids.length > 1 ? `${grid.model.run} · ` : "";
    setText(this.tip, run + cellText(hit.layer, hit.cell, formatNorm));
    const box = this.element.getBoundingClientRect();
    const x = e.clientX - box.left;
    this.tip.style.left = `${Math.min(x + 12, box.width - 260)}px`;
    this.tip.style.top = `${e.clientY - box.top + 14}px`;
    this.tip.hidden = false;
  }

  private click(e: MouseEvent): void {
    const hit = this.gridOf(e)?.cellAt(e);
    if (!hit || !this.view) return;
    this.picked = hit.layer;
    this.mark();
    // a cell of the compared run: the run's own variables of that layer, when it has the layer
    const own = this.grids[0]?.model.rows.find((r) => r.layer === hit.layer);
    this.onPick(hit.cell.step, hit.layer, own?.variables ?? hit.variables);
  }

  /** Each run's current-step column, and the picked layer's row here and in the bar list. */
  private mark(): void {
    const view = this.view;
    if (!view) return;
    this.grids.forEach((g, i) => g.mark(i === 0 ? view.step : (view.other?.step ?? view.step), this.picked));
    markPicked(this.element.parentElement, this.picked);
  }
}

/** Outlines the bar list's row of `layer` (and no other) in `container`. */
export function markPicked(container: ParentNode | null, layer: string | null): void {
  for (const row of container?.querySelectorAll<HTMLElement>(".gf-layer") ?? []) row.toggleAttribute("data-selected", row.dataset.layer === layer);
}
