// What the tab shows, as one value: `shownOf(view state, loaded panes, ...)` is a pure function
// giving the `Shown` of a render (the status line, the banner, each pane's selection, focus, open
// groups, search matches and marked path, the one colour scale and its legend, the details, the
// layers view, the group-by-group notes), each part with a key; `redraws` compares the keys of two
// Shown values to say which parts a render must redraw. No DOM here, so that node tests it
// (test/shown.test.ts); App.render only applies it.
import type { MagnitudeScale } from "./colors";
import { magnitudeScale, scaleOfRange } from "./colors";
import type { Told } from "./diagnosis";
import { cutNamed, tieToGraph } from "./diagnosis";
import type { Panes, PaneGraph } from "./graph_source";
import type { GroupSummary } from "./hierarchy";
import { ROOT_ID } from "./hierarchy";
import { unionRange } from "./log_axis";
import type { GraphModel } from "./model";
import { cutsStarving, pathThroughCut, starvedRegion } from "./paths";
import { PROGRESSIVE_ABOVE_OPS, visibleTree } from "./progressive";
import { matchingOps } from "./search";
import type { DiagnosisResponse, StoryCut } from "./types";
import type { VisibleGraph } from "./visible";
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
    "an edge into an open group ends at its box; Compare and the Layers view's bars need every op and are off."
  );
}

/** What the layers view says instead of its bars for a graph loaded group by group (the heatmap
 * above them has its own route, which serves any graph). */
export function layersOffText(opsTotal: number): string {
  return `The bars of each variable need every op and variable; this graph has ${opsTotal.toLocaleString("en")} ops and is loaded group by group. Open groups in the Graph view instead.`;
}

/** Each pane's open groups besides the root: its own list in the view state, else its graph's
 * default (`defaults[i]`; none while the pane has no graph). */
export function openGroupsOf(state: TabState, defaults: readonly [readonly string[] | null, readonly string[] | null]): [string[], string[]] {
  const of = (i: 0 | 1): string[] => state.panes[i].expanded ?? defaults[i]?.filter((g) => g !== ROOT_ID) ?? [];
  return [of(0), of(1)];
}

/** The note under the search hits of a graph loaded group by group; null for a whole graph. */
export function searchScopeText(main: PaneGraph): string | null {
  const levels = main.levels;
  if (!levels) return null;
  return `Searched the ${main.model.ops.length.toLocaleString("en")} loaded ops of ${levels.opsTotal.toLocaleString("en")}: open a group to search inside it.`;
}

/** What a part of Shown was made from: equal keys (element by element, by identity) mean the
 * part drawn before still stands. */
export type Key = readonly unknown[];

export function sameKey(a: Key | undefined, b: Key): boolean {
  return !!a && a.length === b.length && a.every((x, i) => x === b[i]);
}

/** What a render is computed from. */
export interface ShownInput {
  readonly state: TabState;
  readonly panes: Panes;
  /** the diagnosis at the last step: the first NaN step and the graph-version changes */
  readonly timeline: DiagnosisResponse | null;
}

/** What one pane draws. */
export interface PaneView extends PaneShown {
  readonly graph: PaneGraph;
  /** Compare's title over the pane ("" without Compare) */
  readonly title: string;
  readonly matches: ReadonlySet<number>;
  /** the selected starved op's path to the loss, a selected cut's region (the run's pane only) */
  readonly path: ReadonlySet<number>;
  readonly region: ReadonlySet<number>;
  /** a graph loaded group by group: what is drawn of its loaded levels, and its groups' counts */
  readonly given?: { visible: VisibleGraph; summaries: Map<string, GroupSummary> };
  /** the search this pane's matches are of */
  readonly query: string;
}

export interface BannerShown {
  readonly key: Key;
  /** the run's story tied to its graph; null while its diagnosis is computed */
  readonly told: Told | null;
  readonly other: { run: string; told: Told } | null;
  readonly run: string;
  readonly firstBad: number | null;
  readonly frozen: readonly string[] | undefined;
  /** a cut whose op is not loaded (a graph loaded group by group) is still a link */
  readonly reveals: boolean;
}

export interface LegendShown {
  readonly key: Key;
  readonly scale: MagnitudeScale | null;
  readonly over: string;
  readonly mode: TabState["scale"];
}

export interface DetailsShown {
  readonly key: Key;
  readonly model: GraphModel;
  /** the selected op of the run's graph, or -1: the panel is hidden */
  readonly index: number;
  readonly cut: StoryCut | undefined;
  readonly starvedBy: number[];
  readonly region: number;
  readonly versionChanges: readonly { step: number; graph_version: number }[];
  /** what the details cannot know of a graph loaded group by group; null for a whole graph */
  readonly note: string | null;
}

/** The layers view (null while the graph view is shown): its bars' range, or the text shown
 * instead of the bars; the heatmap above them is shown for every graph. */
export interface LayersShown {
  readonly off: string | null;
  readonly range: [number, number] | null;
  readonly frozen: readonly string[] | undefined;
}

export interface Shown {
  readonly view: TabState["view"];
  /** the status line: empty, or why a step has no op graph */
  readonly status: string;
  readonly compare: { readonly disabled: boolean; readonly title: string };
  /** the note over a graph loaded group by group */
  readonly progress: { readonly text: string; readonly loadedOps: number } | null;
  readonly banner: BannerShown;
  readonly legend: LegendShown;
  readonly panes: readonly PaneView[];
  readonly details: DetailsShown;
  /** the overviews follow new data */
  readonly overview: Key;
  readonly layers: LayersShown | null;
  /** the selected op's why, kept while its key holds (the next render reuses it) */
  readonly why: { readonly key: Key; readonly why: Why };
}

const COMPARE_OFF = "Compare needs every op of both graphs: not available for a graph loaded group by group";
const DETAILS_NOTE = "Loaded group by group: inputs, outputs and the starved path list loaded ops only.";

/** What a render shows for `input`. `before` (the last Shown) lends the parts whose inputs did
 * not change: the selected op's why, and each graph's search matches (a toggle or a pan must not
 * rescan 20,000 names). */
export function shownOf(input: ShownInput, before: Shown | null): Shown {
  const { state: s, panes, timeline } = input;
  const { main, other } = panes;
  const graphs = other ? [main, other] : [main];
  const compared = other !== null;
  const whyKey: Key = [main.model, s.selected];
  const why = before && sameKey(before.why.key, whyKey) ? before.why.why : whyOf(main.model, s.selected);
  const open = openGroupsOf(s, [main.defaultOpen, other?.defaultOpen ?? null]);
  const matchesOf = (model: GraphModel): ReadonlySet<number> =>
    before?.panes.find((p) => p.graph.model === model && p.query === s.query)?.matches ?? matchingOps(s.query, model.ops, model.variables);
  const paneViews = graphs.map((g, i): PaneView => {
    const shown = paneShown(g.model, s.selected, open[i]);
    const mine = i === 0; // the path and the region are the run's: the compared run's ops of the same names may flow
    const given = g.levels ? { visible: visibleTree(g.levels, shown.expanded), summaries: g.levels.summaries } : undefined;
    return { ...shown, graph: g, title: paneTitle(g.model, compared), matches: matchesOf(g.model), path: new Set(mine ? why.path : []), region: new Set(mine ? why.region : []), given, query: s.query };
  });
  const scale = colourScaleOf(s.scale, graphs);
  const firstBad = timeline?.first_nonfinite_step ?? null;
  const data: Key = [main.model, main.diagnosis, other?.model, other?.diagnosis];
  const told = main.diagnosis ? tieToGraph(main.diagnosis, main.model) : null;
  const otherTold = other?.diagnosis ? { run: other.model.run, told: tieToGraph(other.diagnosis, other.model) } : null;
  const index = selectedIndex(main.model, s.selected);
  const levels = main.levels;
  return {
    view: s.view,
    status: statusText(main.model),
    compare: { disabled: !!levels, title: levels ? COMPARE_OFF : "" },
    progress: levels ? { text: progressiveNote(levels.opsTotal, main.model.ops.length), loadedOps: main.model.ops.length } : null,
    banner: { key: [...data, firstBad], told, other: otherTold, run: main.model.run, firstBad, frozen: main.diagnosis?.frozen_variables, reveals: !!levels },
    legend: { key: [...data, scale?.lo, scale?.hi, s.scale, compared], scale, over: legendOver(s.scale, compared), mode: s.scale },
    panes: paneViews,
    details: {
      key: [...data, s.selected, timeline],
      model: main.model,
      index,
      cut: main.diagnosis && index >= 0 ? cutNamed(main.diagnosis.story, main.model.ops[index].name) : undefined,
      starvedBy: why.starvedBy,
      region: why.region.length,
      versionChanges: timeline?.version_changes ?? [],
      note: levels ? DETAILS_NOTE : null,
    },
    overview: data,
    layers:
      s.view !== "layers"
        ? null
        : { off: levels ? layersOffText(levels.opsTotal) : null, range: unionRange(main.diagnosis?.norm_range.variables, other?.diagnosis?.norm_range.variables), frozen: main.diagnosis?.frozen_variables },
    why: { key: whyKey, why },
  };
}

/** Which parts of `now` differ from `before` (what the last render applied; null: nothing yet):
 * the banner on new data or a new first NaN step, the legends on new data or a new scale, the
 * details on new data or a new selection, the overviews on new data. */
export function redraws(before: Shown | null, now: Shown): { banner: boolean; legend: boolean; details: boolean; overview: boolean } {
  return {
    banner: !sameKey(before?.banner.key, now.banner.key),
    legend: !sameKey(before?.legend.key, now.legend.key),
    details: !sameKey(before?.details.key, now.details.key),
    overview: !sameKey(before?.overview, now.overview),
  };
}
