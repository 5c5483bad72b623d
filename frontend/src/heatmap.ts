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
.gf-hm-row { display: flex; }
.gf-hm-row[data-selected] { outline: 1px solid var(--gf-fg); z-index: 1; position: relative; }
.gf-hm-cell { flex: 1 1 0; min-width: 0; }
.gf-hm-cell[data-state=none], .gf-hm-key i[data-state=none] { background: repeating-linear-gradient(135deg, var(--gf-none-stroke) 0 1px, var(--gf-none) 1px 4px) fixed; }
.gf-hm-cell[data-state=zero], .gf-hm-key i[data-state=zero] { background: var(--gf-zero); }
.gf-hm-cell[data-state=nonfinite], .gf-hm-key i[data-state=nonfinite] { background: var(--gf-nonfinite); box-shadow: inset 0 0 0 1px var(--gf-cut); }
.gf-hm-cell[data-state=absent] { background: transparent; }
.gf-hm-now { position: absolute; top: -3px; bottom: -3px; border-left: 2px solid var(--gf-cut); pointer-events: none; }
.gf-hm-steps { display: flex; justify-content: space-between; font-size: 10px; color: var(--gf-muted); margin-left: ${NAME_PX}px; }
.gf-layer[data-selected] { outline: 2px solid var(--gf-fg); outline-offset: -2px; }
.gf-hm-tip { position: absolute; pointer-events: none; background: var(--gf-panel); border: 1px solid var(--gf-border); padding: 2px 6px; font-size: 11px; white-space: nowrap; z-index: 3; }
`;

export interface HeatmapView {
  run: string;
  tag: string;
  /** the step the tab shows */
  step: number;
  /** the last logged step: a reload that logs more steps fetches again */
  lastStep: number;
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

  constructor(private readonly onPick: PickCell) {
    document.head.append(el("style", { "data-for": "gf-heatmap" }, HEATMAP_CSS));
    this.element = el("section", { class: "gf-heatmap", "data-field": "heatmap", "aria-label": "gradient norm of each layer over the logged steps" }, this.head, this.body, this.stepsAxis, this.tip);
  }

  /** Shows `view` in `container` (first child): fetches the route when run, tag, width or the
   * logged steps changed, else only moves the marks. */
  async show(container: HTMLElement, view: HeatmapView): Promise<void> {
    if (this.element.parentElement !== container || container.firstChild !== this.element) container.prepend(this.element);
    this.view = view;
    const columns = columnsFor(Math.max(40, (container.clientWidth || 800) - NAME_PX - 24));
    const key = JSON.stringify([view.run, view.tag, view.lastStep, columns]);
    if (key !== this.key) {
      this.key = key;
      this.element.dataset.status = "loading";
      try {
        const body = await api.layers(view.run, view.tag, columns);
        if (this.key !== key) return;
        // many layers: fewer columns, so that the cells stay few enough to paint at once
        this.model = heatmapModel(sampleLayers(body, columnsForRows(columns, body.layers.length)));
        this.paint();
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
    const names = el("div", { class: "gf-hm-names", "aria-hidden": "true" });
    const grid = el("div", { class: "gf-hm-grid", role: "grid" });
    const every = labelEvery(h);
    const labels = cardTitles(m.rows.map((r) => r.layer)).map((t) => rowLabel(t));
    m.rows.forEach((row, i) => {
      // thin rows: a name on every few rows, drawn over the unnamed ones below it
      const name = el("div", { class: "gf-hm-name", title: row.layer, "data-layer": row.layer, "data-thin": h < LABEL_ROW_PX ? "" : null }, i % every === 0 ? labels[i] : "");
      name.style.height = `${h}px`;
      name.style.lineHeight = `${Math.max(h, LABEL_ROW_PX)}px`;
      names.append(name);
      const line = el("div", { class: "gf-hm-row", role: "row", "data-layer": row.layer });
      line.style.height = `${h}px`;
      for (const cell of row.cells) line.append(this.cell(row.layer, cell));
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
  }

  private cell(layer: string, cell: HeatCell): HTMLElement {
    const norm = cell.norm === null ? "" : String(cell.norm);
    const div = el("div", { class: "gf-hm-cell", role: "gridcell", "data-layer": layer, "data-step": cell.step, "data-state": cell.state, "data-norm": norm });
    if (cell.colour) div.style.background = cell.colour;
    return div;
  }

  private cellFor(target: EventTarget | null): { layer: string; cell: HeatCell } | null {
    const div = target instanceof HTMLElement ? target.closest<HTMLElement>(".gf-hm-cell") : null;
    if (!div || !this.model) return null;
    const row = this.model.rows.find((r) => r.layer === div.dataset.layer);
    const step = Number(div.dataset.step);
    const cell = row?.cells[columnOf(this.model.steps, step)];
    return row && cell ? { layer: row.layer, cell } : null;
  }

  private hover(e: MouseEvent): void {
    const hit = this.cellFor(e.target);
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
    const hit = this.cellFor(e.target);
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
