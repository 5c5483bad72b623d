// What the tab shows, as pure functions of the view state (view_state.ts) and what is loaded (a
// pane's graph model and diagnosis): the selected op's "why" (the cuts that starve it, its path,
// a cut's starved region), the one colour scale of every pane, and each pane's selection, focus
// and open groups. No DOM here, so that node tests them (test/shown.test.ts); app.ts applies them.
import type { MagnitudeScale } from "./colors";
import { magnitudeScale, scaleOfRange } from "./colors";
import { ROOT_ID } from "./hierarchy";
import { unionRange } from "./log_axis";
import type { GraphModel } from "./model";
import { cutsStarving, pathThroughCut, starvedRegion } from "./paths";
import type { DiagnosisResponse } from "./types";
import type { TabState } from "./view_state";

/** Why the selected op looks as it does: the cuts that starve it and its path through the first
 * to the loss, or for a selected cut, the ops it starves. Op indices of the run's model. */
export interface Why {
  starvedBy: number[];
  path: number[];
  region: number[];
}

/** One pane's loaded data, as the colour scale needs it. */
export interface PaneData {
  model: GraphModel;
  diagnosis: DiagnosisResponse | null;
}

/** What one pane shows of its model: the selected op (or -1), the op a first view centres on,
 * and the groups drawn open (the root always). */
export interface PaneShown {
  selected: number;
  focus: number | undefined;
  expanded: Set<string>;
}

/** The index of the op named `selected` in `model`, or -1 (none selected, or not in this graph). */
export function selectedIndex(model: GraphModel | null, selected: string | null): number {
  if (!model || !selected) return -1;
  return model.opIndex.get(selected) ?? -1;
}

/** The "why" of the selected op: a cut's starved region, or a starved op's cuts and path. */
export function whyOf(model: GraphModel | null, selected: string | null): Why {
  const i = selectedIndex(model, selected);
  if (!model || i < 0) return { starvedBy: [], path: [], region: [] };
  const op = model.ops[i];
  if (op.cause) return { starvedBy: [], path: [], region: starvedRegion(model, i) };
  if (op.state !== "none") return { starvedBy: [], path: [], region: [] };
  const cuts = cutsStarving(model, i);
  return { starvedBy: cuts, path: cuts.length ? pathThroughCut(model, i, cuts[0]) : [], region: [] };
}

/** Ops of the cut points that starve variables (the ones worth opening groups for). */
export function starvingCuts(model: GraphModel): number[] {
  return model.ops.filter((op) => op.cause && op.starved.length > 0).map((op) => op.index);
}

/** One colour scale for every pane: the runs' range over all logged steps, or this step's. */
export function colourScaleOf(mode: TabState["scale"], panes: readonly PaneData[]): MagnitudeScale | null {
  if (mode === "all") return scaleOfRange(unionRange(...panes.map((p) => p.diagnosis?.norm_range.ops)));
  return magnitudeScale(panes.flatMap((p) => p.model.ops.map((op) => (op.state === "flowing" ? op.norm : null))));
}

/** What the legend says its range covers. */
export function legendOver(mode: TabState["scale"], compared: boolean): string {
  if (mode !== "all") return "this step only";
  return compared ? "all steps, both runs" : "all steps";
}

/** A pane's selection, focus and open groups (`open`: its open groups besides the root). */
export function paneShown(model: GraphModel, selected: string | null, open: readonly string[]): PaneShown {
  const sel = selectedIndex(model, selected);
  return { selected: sel, focus: sel >= 0 ? sel : starvingCuts(model)[0], expanded: new Set([ROOT_ID, ...open]) };
}

/** The logged step nearest to `step` (a link's step the run no longer has), or null if none. */
export function nearestStep(steps: readonly number[], step: number): number | null {
  if (steps.length === 0) return null;
  let best = steps[0];
  for (const s of steps) if (Math.abs(s - step) < Math.abs(best - step)) best = s;
  return best;
}
