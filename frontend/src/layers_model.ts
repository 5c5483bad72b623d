// The layers view's data: variables grouped by Keras layer (or name scope), in depth order, with
// a log-scale bar length per gradient norm.
import type { MagnitudeScale } from "./colors";
import { magnitudeFraction, magnitudeScale } from "./colors";
import type { GraphModel } from "./model";
import { variableDepths } from "./model";
import type { GradState } from "./types";

export interface VariableBar {
  name: string;
  label: string;
  state: GradState;
  norm: number | null;
}

export interface LayerRow {
  layer: string;
  depth: number;
  /** One entry per variable; `other` is the same variable in the compared run, if any. */
  variables: Array<{ bar: VariableBar | null; other: VariableBar | null }>;
}

export function layerOf(variable: string): string {
  const i = variable.lastIndexOf("/");
  return i > 0 ? variable.slice(0, i) : variable;
}

function bars(model: GraphModel): Map<string, { bar: VariableBar; depth: number; order: number }> {
  const depths = variableDepths(model.ops, model.variables);
  const out = new Map<string, { bar: VariableBar; depth: number; order: number }>();
  for (const v of model.variables) {
    const d = depths[v.index];
    const layer = layerOf(v.name);
    out.set(v.name, {
      bar: { name: v.name, label: v.name === layer ? v.name : v.name.slice(layer.length + 1), state: v.state, norm: v.norm },
      depth: d,
      order: v.index,
    });
  }
  return out;
}

/** A name without Keras' uniquifying suffixes ("vae_1/dense_2/kernel" -> "vae/dense/kernel"). */
export function baseName(name: string): string {
  return name
    .split("/")
    .map((part) => part.replace(/_\d+$/, ""))
    .join("/");
}

/** Pairs the names of two runs of the same model: exact matches first, then names that differ
 * only by Keras' "_N" suffixes (a second model built in one process is "model_1"), in order. */
export function alignNames(mine: readonly string[], theirs: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  const mineSet = new Set(mine);
  for (const n of theirs) if (mineSet.has(n)) out.set(n, n);
  const taken = new Set(out.values());
  const queues = new Map<string, string[]>();
  for (const n of mine) {
    if (taken.has(n)) continue;
    const key = baseName(n);
    queues.set(key, [...(queues.get(key) ?? []), n]);
  }
  for (const n of theirs) {
    if (out.has(n)) continue;
    const match = queues.get(baseName(n))?.shift();
    if (match !== undefined) out.set(n, match);
  }
  return out;
}

/** Rows of one model, or of two aligned by variable name for a comparison. */
export function layerRows(model: GraphModel, other: GraphModel | null = null): LayerRow[] {
  const mine = bars(model);
  const theirs = new Map<string, { bar: VariableBar; depth: number; order: number }>();
  if (other) {
    const theirBars = bars(other);
    const aligned = alignNames([...mine.keys()], [...theirBars.keys()]);
    for (const [name, b] of theirBars) theirs.set(aligned.get(name) ?? name, b);
  }
  const names = [...mine.keys(), ...[...theirs.keys()].filter((n) => !mine.has(n))];
  const rows = new Map<string, LayerRow & { order: number }>();
  for (const name of names) {
    const a = mine.get(name);
    const b = theirs.get(name);
    const depth = Math.min(a?.depth ?? Infinity, b?.depth ?? Infinity);
    const order = a ? a.order : 1e9 + (b?.order ?? 0);
    const layer = layerOf(name);
    let row = rows.get(layer);
    if (!row) {
      row = { layer, depth, order, variables: [] };
      rows.set(layer, row);
    }
    row.depth = Math.min(row.depth, depth);
    row.order = Math.min(row.order, order);
    row.variables.push({ bar: a?.bar ?? null, other: b?.bar ?? null });
  }
  return [...rows.values()]
    .sort((x, y) => (x.depth === y.depth ? x.order - y.order : x.depth - y.depth))
    .map(({ layer, depth, variables }) => ({ layer, depth, variables }));
}

export function barScale(rows: readonly LayerRow[]): MagnitudeScale | null {
  const norms: Array<number | null> = [];
  for (const r of rows) for (const v of r.variables) norms.push(v.bar?.norm ?? null, v.other?.norm ?? null);
  return magnitudeScale(norms);
}

/** Bar length as a fraction of the full width: log scale, a visible minimum for tiny norms. */
export function barLength(bar: VariableBar, scale: MagnitudeScale | null): number {
  if (bar.state !== "flowing" || bar.norm === null || !scale) return 0;
  return 0.06 + 0.94 * magnitudeFraction(bar.norm, scale);
}
