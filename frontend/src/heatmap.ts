// The layers x steps heatmap at the top of the layers view (issue 17): one row per layer (inputs
// first), one column per logged step (sampled to the width), each cell coloured by the layer's
// gradient norm on the run's log scale; none, zero and NaN/Inf cells marked. Hover names layer,
// step and value; a click picks that step and layer. Cells carry data-layer, data-step and
// data-norm. Fetches the `layers` route itself and keeps the element between renders, so that a
// step change only moves the current-step mark.
import { api } from "./api";
import { clear, el, setText } from "./dom";
import { formatNorm } from "./format";
import type { HeatCell, HeatmapModel } from "./heatmap_model";
import { cellText, columnOf, columnsFor, columnsForRows, heatmapModel, LABEL_ROW_PX, labelEvery, rowHeight, rowLabel, sampleLayers } from "./heatmap_model";
import { layerOf } from "./layers_model";
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
.gf-hm-steps { display: flex; justify-content: space-between; font-size: 10px; color: var(--gf-muted); margin-left: ${NAME_PX}px; }
.gf-layer[data-selected] { outline: 2px solid var(--gf-fg); outline-offset: -2px; }
.gf-hm-tip { position: absolute; pointer-events: none; background: var(--gf-panel); border: 1px solid var(--gf-border); padding: 2px 6px; font-size: 11px; white-space: nowrap; z-index: 3; }
`;

/** How many layers (rows) a model's variables make. */
export function layerCount(model: GraphModel): number {
  return new Set(model.variables.map((v) => layerOf(v.name))).size;
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
  m.rows.forEach((row, i) => {
    const y = i * rowPx;
    row.cells.forEach((cell, c) => {
      const fill = cell.colour ?? fills[cell.state];
      if (!fill) return; // absent: nothing
      ctx.fillStyle = fill;
      ctx.fillRect(xs[c], y, xs[c + 1] - xs[c], rowPx);
      if (cell.state === "nonfinite" && rowPx >= 4) {
        ctx.strokeStyle = colour("--gf-cut");
        ctx.strokeRect(xs[c] + 0.5, y + 0.5, xs[c + 1] - xs[c] - 1, rowPx - 1);
      }
    });
  });
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

export interface HeatmapView {
  run: string;
  tag: string;
  /** the step the tab shows */
  step: number;
  /** the last logged step: a reload that logs more steps fetches again */
  lastStep: number;
  /** how many layers the step's graph has: with many, fewer columns are asked for */
  layers: number;
}

/** A click on a cell: that step and that layer (with its variables). */
export type PickCell = (step: number, layer: string, variables: string[]) => void;

export class Heatmap {
  readonly element: HTMLElement;
  private readonly head = el("div", { class: "gf-hm-head" });
  private readonly body = el("div", { class: "gf-hm-body" });
  private readonly stepsAxis = el("div", { class: "gf-hm-steps" });
  private readonly tip = el("div", { class: "gf-hm-tip", hidden: true });
  private model: HeatmapModel | null = null;
  private key = "";
  private grid: HTMLElement | null = null;
  private now: HTMLElement | null = null;
  private view: HeatmapView | null = null;
  /** the layer last clicked, outlined here and in the layers view's list */
  private picked: string | null = null;
  private rowPx = 1;
  private themeWatched = false;

  constructor(private readonly onPick: PickCell) {
    document.head.append(el("style", { "data-for": "gf-heatmap" }, HEATMAP_CSS));
    this.element = el("section", { class: "gf-heatmap", "data-field": "heatmap", "aria-label": "gradient norm of each layer over the logged steps" }, this.head, this.body, this.stepsAxis, this.tip);
  }

  /** Shows `view` in `container` (first child): fetches the route when run, tag, width or the
   * logged steps changed, else only moves the marks. */
  async show(container: HTMLElement, view: HeatmapView): Promise<void> {
    if (this.element.parentElement !== container || container.firstChild !== this.element) container.prepend(this.element);
    this.view = view;
    this.followTheme(container);
    const fit = columnsFor(Math.max(40, (container.clientWidth || 800) - NAME_PX - 24));
    const columns = columnsForRows(fit, view.layers);
    const key = JSON.stringify([view.run, view.tag, view.lastStep, columns]);
    if (key !== this.key) {
      this.key = key;
      this.element.dataset.status = "loading";
      this.element.dataset.started = String(performance.now());
      delete this.element.dataset.painted;
      try {
        const body = await api.layers(view.run, view.tag, columns);
        if (this.key !== key) return;
        // many layers: fewer columns, so that the cells stay few enough to paint at once
        this.model = heatmapModel(sampleLayers(body, columnsForRows(columns, body.layers.length)));
        this.paint();
        await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
        if (this.key !== key) return;
        this.element.dataset.painted = String(performance.now()); // the frame with the heatmap is drawn
        await this.attachCells(key);
        if (this.key !== key) return;
      } catch (e) {
        if (this.key !== key) return;
        this.model = null;
        clear(this.body);
        setText(this.head, `Layers over training: ${e instanceof Error ? e.message : String(e)}`);
      }
      this.element.dataset.status = "ready";
    }
    this.mark();
  }

  private paint(): void {
    const m = this.model!;
    clear(this.head);
    clear(this.body);
    clear(this.stepsAxis);
    const sampled = m.steps.length < m.count ? `, ${m.steps.length} of ${m.count} steps evenly sampled` : "";
    const scale = m.scale ? `log scale ${formatNorm(10 ** m.scale.lo)} … ${formatNorm(10 ** m.scale.hi)} over all steps` : "no finite gradient";
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
    if (m.rows.length === 0) {
      this.body.append(el("p", { class: "gf-muted" }, "No trainable variables."));
      return;
    }
    const h = rowHeight(m.rows.length, MAX_ROWS_PX);
    this.rowPx = h;
    const names = el("div", { class: "gf-hm-names", "aria-hidden": "true" });
    const grid = el("div", { class: "gf-hm-grid", role: "grid", "aria-rowcount": m.rows.length });
    grid.style.height = `${h * m.rows.length}px`;
    const every = labelEvery(h);
    const labels = cardTitles(m.rows.map((r) => r.layer)).map((t) => rowLabel(t));
    const canvas = el("canvas", { class: "gf-hm-canvas", "aria-hidden": "true" });
    grid.append(canvas);
    m.rows.forEach((row, i) => {
      // thin rows: a name on every few rows, drawn over the unnamed ones below it
      const name = el("div", { class: "gf-hm-name", title: row.layer, "data-layer": row.layer, "data-thin": h < LABEL_ROW_PX ? "" : null }, i % every === 0 ? labels[i] : "");
      name.style.height = `${h}px`;
      name.style.lineHeight = `${Math.max(h, LABEL_ROW_PX)}px`;
      names.append(name);
      const line = el("div", { class: "gf-hm-row", role: "row", "data-layer": row.layer });
      line.style.height = `${h}px`;
      grid.append(line);
    });
    this.now = el("div", { class: "gf-hm-now", "data-field": "heatmap-now" });
    grid.append(this.now);
    grid.addEventListener("mousemove", (e) => this.hover(e));
    grid.addEventListener("mouseleave", () => (this.tip.hidden = true));
    grid.addEventListener("click", (e) => this.click(e));
    this.grid = grid;
    this.body.append(names, grid);
    this.stepsAxis.append(el("span", {}, `step ${m.steps[0]}`), el("span", {}, `step ${m.steps[m.steps.length - 1]}`));
    drawCells(canvas, m, h, grid.clientWidth, this.element);
  }

  /** Repaints the canvas when the tab's theme (dark mode) changes: its colours are the theme's. */
  private followTheme(container: HTMLElement): void {
    const root = container.closest<HTMLElement>("#gf-root");
    if (this.themeWatched || !root) return;
    this.themeWatched = true;
    new MutationObserver(() => {
      const canvas = this.grid?.querySelector("canvas");
      if (this.model && this.grid && canvas) drawCells(canvas, this.model, this.rowPx, this.grid.clientWidth, this.element);
    }).observe(root, { attributes: true, attributeFilter: ["data-theme"] });
  }

  /** The cells as elements over the painted canvas, a few thousand per task so that the page
   * stays responsive: what hover, tests and assistive technology read (`data-layer`,
   * `data-step`, `data-norm`, `data-state`; `data-fill` the colour painted below). */
  private async attachCells(key: string): Promise<void> {
    const m = this.model!;
    const lines = this.grid ? [...this.grid.querySelectorAll<HTMLElement>(".gf-hm-row")] : [];
    let done = 0;
    for (let i = 0; i < lines.length; i++) {
      const row = m.rows[i];
      for (const cell of row.cells) lines[i].append(cellElement(row.layer, cell));
      done += row.cells.length;
      if (done >= CELLS_PER_TASK) {
        done = 0;
        await new Promise((resolve) => setTimeout(resolve, 0));
        if (this.key !== key) return;
      }
    }
  }

  /** The row and cell under the pointer, from its position (cells may not be attached yet). */
  private cellAt(e: MouseEvent): { layer: string; cell: HeatCell } | null {
    const m = this.model;
    if (!m || !this.grid || m.steps.length === 0) return null;
    const box = this.grid.getBoundingClientRect();
    const c = Math.floor(((e.clientX - box.left) / box.width) * m.steps.length);
    const row = m.rows[Math.floor((e.clientY - box.top) / this.rowPx)];
    const cell = row?.cells[c];
    return row && cell ? { layer: row.layer, cell } : null;
  }

  private hover(e: MouseEvent): void {
    const hit = this.cellAt(e);
    if (!hit) {
      this.tip.hidden = true;
      return;
    }
    setText(this.tip, cellText(hit.layer, hit.cell, formatNorm));
    const box = this.element.getBoundingClientRect();
    const x = e.clientX - box.left;
    this.tip.style.left = `${Math.min(x + 12, box.width - 260)}px`;
    this.tip.style.top = `${e.clientY - box.top + 14}px`;
    this.tip.hidden = false;
  }

  private click(e: MouseEvent): void {
    const hit = this.cellAt(e);
    if (!hit || !this.view) return;
    const row = this.model!.rows.find((r) => r.layer === hit.layer)!;
    this.picked = hit.layer;
    this.mark();
    this.onPick(hit.cell.step, hit.layer, row.variables);
  }

  /** The current step's column and the picked layer's row. */
  private mark(): void {
    const m = this.model;
    if (!m || !this.grid || !this.now || !this.view) return;
    const c = columnOf(m.steps, this.view.step);
    this.now.style.left = `calc(${((c + 0.5) / m.steps.length) * 100}% - 1px)`;
    this.now.dataset.step = String(m.steps[c]);
    const container = this.element.parentElement;
    const rows = [...this.body.querySelectorAll<HTMLElement>(".gf-hm-row, .gf-hm-name"), ...(container?.querySelectorAll<HTMLElement>(".gf-layer") ?? [])];
    for (const row of rows) row.toggleAttribute("data-selected", row.dataset.layer === this.picked);
  }
}
