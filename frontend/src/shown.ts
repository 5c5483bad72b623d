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
import { PROGRESSIVE_ABOVE_OPS } from "./progressive";
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

/** The status line under the panes: empty, or why a step has no op graph (an eager fallback
 * logs variables only). */
export function statusText(model: GraphModel): string {
  return model.ops.length ? "" : `No op graph at this step. ${model.fallbackReason ?? ""}`;
}

/** A pane's title: the run and step of each pane while Compare shows two, else nothing. */
export function paneTitle(model: GraphModel, compared: boolean): string {
  return compared ? `${model.run} · step ${model.step}` : "";
}

/** The note over a graph loaded group by group: how many of its ops are loaded, what that limits. */
export function progressiveNote(opsTotal: number, loaded: number): string {
  return (
    `This graph has ${opsTotal.toLocaleString("en")} ops, so it is loaded group by group (above ${PROGRESSIVE_ABOVE_OPS.toLocaleString("en")} ops): ` +
    `${loaded.toLocaleString("en")} ops loaded. Search, inputs and outputs, and the path of a starved op cover loaded groups only; ` +
    "an edge into an open group ends at its box; Compare and the Layers view need every op and are off."
  );
}

/** What the layers view says instead of itself for a graph loaded group by group. */
export function layersOffText(opsTotal: number): string {
  return `The layers view needs every op and variable; this graph has ${opsTotal.toLocaleString("en")} ops and is loaded group by group. Open groups in the Graph view instead.`;
}

/** What the last render drew: the panes' models, the selection, the colour scale. */
export interface Drawn {
  readonly model: GraphModel | null;
  readonly other: GraphModel | null;
  readonly selected: string | null;
  readonly scale: MagnitudeScale | null;
}

export const NOTHING_DRAWN: Drawn = { model: null, other: null, selected: null, scale: null };

/** What a render must redraw beyond the panes: the banner, legends and overviews on new data,
 * the details on new data or a new selection, the legends on a new scale. */
export function redraws(before: Drawn, now: Drawn): { data: boolean; selection: boolean; scale: boolean } {
  const data = before.model !== now.model || before.other !== now.other;
  return { data, selection: data || before.selected !== now.selected, scale: before.scale?.lo !== now.scale?.lo || before.scale?.hi !== now.scale?.hi };
}

/** Each pane's open groups besides the root: its own list in the view state, else its graph's
 * default (`defaults[i]`; none while the pane has no graph). */
export function openGroupsOf(state: TabState, defaults: readonly [readonly string[] | null, readonly string[] | null]): [string[], string[]] {
  const of = (i: 0 | 1): string[] => state.panes[i].expanded ?? defaults[i]?.filter((g) => g !== ROOT_ID) ?? [];
  return [of(0), of(1)];
}
