// The layers x steps heatmap's data (issue 17): the `layers` route's body as cells with a colour
// on the run's log scale, how many columns fit a width, and how tall a row may be. Pure: tested in
// node (test/heatmap.test.ts); heatmap.ts draws it.
import type { MagnitudeScale } from "./colors";
import { magnitudeColor, magnitudeFraction, scaleOfRange } from "./colors";
import { unionRange } from "./log_axis";
import { parseNorm } from "./model";
import type { GradState, LayersResponse } from "./types";

/** A cell's state: a gradient state, or "absent" where the layer is not in that step's graph. */
export type CellState = GradState | "absent";

export interface HeatCell {
  step: number;
  state: CellState;
  /** the layer's norm; null for none or absent; Infinity or NaN when nonfinite */
  norm: number | null;
  /** the fill on the magnitude ramp for a flowing cell; null for a marked one */
  colour: string | null;
}

export interface HeatRow {
  layer: string;
  variables: string[];
  cells: HeatCell[];
}

export interface HeatmapModel {
  run: string;
  tag: string;
  steps: number[];
  /** logged steps in all (more than `steps.length` when sampled) */
  count: number;
  scale: MagnitudeScale | null;
  rows: HeatRow[];
}

/** Narrowest cell, in CSS pixels: narrower columns would hide what a column says. */
export const MIN_CELL_PX = 4;
/** Row heights: names are drawn at LABEL_ROW_PX and above; never taller than MAX_ROW_PX. */
export const MAX_ROW_PX = 18;
export const LABEL_ROW_PX = 11;
export const MIN_ROW_PX = 1;
/** At most this many cells are drawn (a 500-layer model gets fewer columns): each is an element. */
export const MAX_CELLS = 40_000;

/** How many step columns a `width` in pixels holds (at least one). */
export function columnsFor(width: number): number {
  return Math.max(1, Math.floor(width / MIN_CELL_PX));
}

/** Row height for `rows` layers in at most `height` pixels, between MIN_ROW_PX and MAX_ROW_PX. */
export function rowHeight(rows: number, height: number): number {
  if (rows <= 0) return MAX_ROW_PX;
  return Math.max(MIN_ROW_PX, Math.min(MAX_ROW_PX, Math.floor(height / rows)));
}

/** Columns to draw for `rows` layers when `columns` fit the width: no more than MAX_CELLS cells. */
export function columnsForRows(columns: number, rows: number): number {
  return Math.max(2, Math.min(columns, Math.floor(MAX_CELLS / Math.max(1, rows))));
}

/** A row label at most `max` characters: the first and last parts of a long scope with "…"
 * between ("block_12/…/query"), so that the layer's own name stays readable. */
export function rowLabel(name: string, max = 26): string {
  if (name.length <= max) return name;
  const parts = name.split("/");
  const last = parts[parts.length - 1];
  const head = parts.length > 2 ? `${parts[0]}/…/` : "…";
  const short = head + last;
  return short.length <= max ? short : `…${name.slice(name.length - max + 1)}`;
}

/** Every how many rows of height `h` a layer name fits (1: every row). */
export function labelEvery(h: number): number {
  return Math.max(1, Math.ceil(LABEL_ROW_PX / Math.max(1, h)));
}

/** A cell's fill: the magnitude ramp of the graph's flowing ops, on the run's scale; null for a
 * state that is marked instead (none, zero, nonfinite, absent) or a flowing cell with no norm. */
export function cellColour(state: CellState, norm: number | null, scale: MagnitudeScale | null): string | null {
  if (state !== "flowing" || norm === null || !(norm > 0) || !Number.isFinite(norm)) return null;
  return magnitudeColor(scale ? magnitudeFraction(norm, scale) : 0.5);
}

/** The route's body as rows of cells, in its order (inputs first), coloured on `range`: the run's
 * own, or in Compare both runs' together (`sharedRange`), so that a colour means one norm. */
export function heatmapModel(body: LayersResponse, range: readonly [number, number] | null = body.range): HeatmapModel {
  const scale = scaleOfRange(range);
  const rows = body.layers.map((l) => ({
    layer: l.name,
    variables: l.variables,
    cells: body.steps.map((step, c) => {
      const state: CellState = l.states[c] ?? "absent";
      const norm = state === "absent" ? null : parseNorm(l.norms[c]);
      return { step, state, norm, colour: cellColour(state, norm, scale) };
    }),
  }));
  return { run: body.run, tag: body.tag, steps: body.steps, count: body.count, scale, rows };
}

/** Neighbouring cells of one row painted alike: [row, first column, the column after the last]. */
export type CellRun = [number, number, number];

/** The cells to paint, grouped by fill: a flowing cell's colour, else its state when `marked`
 * holds it (none, zero, nonfinite); neighbours in a row with the same fill make one run, so that
 * tens of thousands of cells take a few thousand rects. Absent cells, and flowing ones without a
 * colour, are left out. */
export function fillRuns(m: HeatmapModel, marked: ReadonlySet<string>): Map<string, CellRun[]> {
  const out = new Map<string, CellRun[]>();
  m.rows.forEach((row, i) => {
    const fill = (c: number): string | null => row.cells[c].colour ?? (marked.has(row.cells[c].state) ? row.cells[c].state : null);
    for (let c = 0; c < row.cells.length; ) {
      const key = fill(c);
      let end = c + 1;
      while (end < row.cells.length && fill(end) === key) end++;
      if (key !== null) (out.get(key) ?? out.set(key, []).get(key)!).push([i, c, end]);
      c = end;
    }
  });
  return out;
}

/** One colour scale for the heatmaps of compared runs: the union of their ranges. */
export function sharedRange(bodies: readonly LayersResponse[]): [number, number] | null {
  return unionRange(...bodies.map((b) => b.range));
}

/** Columns per heatmap when heatmaps of `rows[i]` layers share the cell budget (MAX_CELLS in all). */
export function columnsShared(columns: number, rows: readonly number[]): number {
  return columnsForRows(columns, rows.reduce((a, b) => a + b, 0));
}

/** The column showing `step`: its own, else the nearest shown step before it (else the first). */
export function columnOf(steps: readonly number[], step: number): number {
  let lo = 0;
  let hi = steps.length - 1;
  if (hi < 0) return -1;
  if (step < steps[0]) return 0;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (steps[mid] <= step) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** What hovering a cell says: layer, step and value. */
export function cellText(layer: string, cell: HeatCell, formatNorm: (n: number) => string): string {
  const value =
    cell.state === "flowing" && cell.norm !== null ? `|grad| ${formatNorm(cell.norm)}`
    : cell.state === "zero" ? "zero gradient"
    : cell.state === "none" ? "no gradient"
    : cell.state === "absent" ? "not in this step's graph"
    : `NaN / Inf (${cell.norm === null ? "?" : formatNorm(cell.norm)})`;
  return `${layer} · step ${cell.step} · ${value}`;
}

/** Indices of `columns` evenly spaced items of `n`, first and last included (all when fewer):
 * layer_series._sample's choice, so an exported file shows the columns the route would. */
export function sampleIndices(n: number, columns: number): number[] {
  if (n <= columns) return [...Array(n).keys()];
  if (columns <= 1) return [n - 1];
  const picked = new Set<number>();
  for (let i = 0; i < columns; i++) picked.add(Math.floor((i * (n - 1)) / (columns - 1) + 0.5));
  return [...picked].sort((a, b) => a - b);
}

/** A `layers` body cut down to `columns` of its steps (an exported file holds one body). */
export function sampleLayers(body: LayersResponse, columns: number): LayersResponse {
  const keep = sampleIndices(body.steps.length, columns);
  if (keep.length === body.steps.length) return body;
  return {
    ...body,
    steps: keep.map((i) => body.steps[i]),
    layers: body.layers.map((l) => ({ ...l, states: keep.map((i) => l.states[i]), norms: keep.map((i) => l.norms[i]) })),
  };
}
