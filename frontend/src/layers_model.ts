// The layers view's data: variables grouped by Keras layer (or name scope), in depth order, with
// a log-scale bar length per gradient norm.
import type { LogAxis } from "./log_axis";
import { axisFraction } from "./log_axis";
import type { GraphModel } from "./model";
import { variableDepths } from "./model";
import type { GradState } from "./types";

export interface VariableBar {
  name: string;
  label: string;
  state: GradState;
  norm: number | null;
  /** Fraction of the gradient's elements nonzero and finite; null unknown. */
  presence?: number | null;
  sparseGradient?: boolean;
}

export interface LayerRow {
  layer: string;
  depth: number;
  /** One entry per variable; `other` is the same variable in the compared run, if any. */
  variables: Array<{ bar: VariableBar | null; other: VariableBar | null }>;
}

/** A variable's bar, its depth from the inputs, its order in the graph and its layer (the
 * server's grouping: name scope, or a torch parameter's module path). */
interface Placed {
  bar: VariableBar;
  depth: number;
  order: number;
  layer: string;
}

function bars(model: GraphModel): Map<string, Placed> {
  const depths = variableDepths(model.ops, model.variables);
  const out = new Map<string, Placed>();
  for (const v of model.variables) {
    const d = depths[v.index];
    const layer = v.layer;
    out.set(v.name, {
      layer,
      bar: { name: v.name, label: v.name === layer ? v.name : v.name.slice(layer.length + 1), state: v.state, norm: v.norm, presence: v.presence, sparseGradient: v.sparseGradient },
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
  const theirs = new Map<string, Placed>();
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
    const layer = (a ?? b)!.layer;
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

/** Bar length as a fraction of the full width, on an absolute log axis (the same at every step
 * and for both runs); 0 for no gradient, a sliver at least for the smallest norms. */
export function barLength(bar: VariableBar, axis: LogAxis | null): number {
  if (bar.state !== "flowing" || bar.norm === null || !axis) return 0;
  return Math.max(0.01, axisFraction(bar.norm, axis));
}

/** A layer this many decades below (or above) its neighbours is called out. */
export const OUTLIER_DECADES = 2;

export interface LayerFlag {
  flag: "vanishing" | "exploding";
  /** log10 of the layer's typical norm minus its neighbours' */
  decades: number;
}

/** The log10 of a layer's gradient norm, the L2 norm over its variables' flowing norms (the
 * heatmap's rule), or null without one. Not a median of the variables' logs: an attention
 * layer's key bias gets a gradient that is zero in exact arithmetic (softmax ignores what is
 * added to every key alike) and about 1e-10 in float32, which pulled the key layer's median
 * five decades under its kernel's and called a healthy layer vanishing. */
function layerLevel(bars: readonly (VariableBar | null)[]): number | null {
  const norms = bars.filter((b): b is VariableBar => !!b && b.state === "flowing" && b.norm !== null && b.norm > 0 && Number.isFinite(b.norm)).map((b) => b.norm!);
  if (!norms.length) return null;
  const top = Math.max(...norms); // scaled, so that squares of large norms do not overflow
  return Math.log10(top) + 0.5 * Math.log10(norms.reduce((s, n) => s + (n / top) ** 2, 0));
}

/** Layers whose gradient is orders of magnitude off their neighbours': below (vanishing) or
 * above (exploding) the nearest layer with a gradient on each side, both of them. The first or
 * last layer has one side only, and there it is called out only against every other layer (two
 * at least): the layers after an Embedding that feeds attention are its query and key, whose
 * gradients at initialization are three decades under the value path's, and the two nearest
 * alone called that Embedding exploding. A steady decay
 * through depth is not called out; a step of OUTLIER_DECADES against both neighbours is. `pick`
 * chooses the run's bar of a variable. */
export function layerFlags(rows: readonly LayerRow[], pick: (v: LayerRow["variables"][number]) => VariableBar | null): Map<string, LayerFlag> {
  const level = rows.map((r) => layerLevel(r.variables.map(pick)));
  const out = new Map<string, LayerFlag>();
  level.forEach((mine, i) => {
    if (mine === null) return;
    const before = level.slice(0, i).reverse().filter((x): x is number => x !== null);
    const after = level.slice(i + 1).filter((x): x is number => x !== null);
    // the nearest on each side; at an end, every other layer (see the docstring)
    const near = before.length && after.length ? [before[0], after[0]] : [...before, ...after];
    if (near.length < 2) return;
    const diffs = near.map((x) => mine - x);
    const decades = diffs.reduce((a, b) => (Math.abs(a) < Math.abs(b) ? a : b)); // the smaller step
    if (diffs.every((d) => d <= -OUTLIER_DECADES)) out.set(rows[i].layer, { flag: "vanishing", decades });
    else if (diffs.every((d) => d >= OUTLIER_DECADES)) out.set(rows[i].layer, { flag: "exploding", decades });
  });
  return out;
}
