// The tab's view state: one serializable value (what the URL holds, plus each pane's open groups)
// and the pure transitions that change it. The app only ever replaces its state with the result
// of one of these and then loads or renders what changed; node tests cover them (test/).
import type { ViewState as UrlState } from "./url_state";

export interface PaneState {
  /** Open groups (root excluded); null: the default expansion of the pane's graph. */
  expanded: string[] | null;
}

export interface TabState {
  run: string;
  tag: string;
  /** null: follow the latest step */
  step: number | null;
  /** the selected op's name */
  selected: string | null;
  compare: string | null;
  view: "graph" | "layers";
  query: string;
  /** colour scale: over all logged steps (default) or this step only */
  scale: "all" | "step";
  /** panes[0] the run, panes[1] the compared run */
  panes: [PaneState, PaneState];
  /** In Compare, panning, zooming and opening groups in one pane does the same in the other. */
  linked: boolean;
}

export const INITIAL: TabState = {
  run: "",
  tag: "",
  step: null,
  selected: null,
  compare: null,
  view: "graph",
  query: "",
  scale: "all",
  panes: [{ expanded: null }, { expanded: null }],
  linked: true,
};

export function fromUrl(url: UrlState): TabState {
  const expanded = url.expanded ? [...url.expanded] : null;
  return {
    ...INITIAL,
    run: url.run ?? "",
    tag: url.tag ?? "",
    step: url.step ?? null,
    selected: url.op ?? null,
    compare: url.compare ?? null,
    view: url.view ?? "graph",
    query: url.q ?? "",
    scale: url.scale === "step" ? "step" : "all",
    panes: [{ expanded }, { expanded: null }],
    linked: url.unlinked !== true,
  };
}

export function toUrl(s: TabState): UrlState {
  const url: UrlState = { run: s.run, tag: s.tag };
  if (s.step !== null) url.step = s.step;
  if (s.selected) url.op = s.selected;
  if (s.panes[0].expanded !== null) url.expanded = [...s.panes[0].expanded].sort();
  if (s.compare) url.compare = s.compare;
  if (s.view !== "graph") url.view = s.view;
  if (s.query) url.q = s.query;
  if (s.scale === "step") url.scale = "step";
  if (!s.linked) url.unlinked = true;
  return url;
}

/** Whether two states say the same view (a pasted URL that changes nothing is ignored). */
export function sameView(a: TabState, b: TabState): boolean {
  return JSON.stringify(toUrl(a)) === JSON.stringify(toUrl(b));
}

const withPane = (s: TabState, pane: 0 | 1, p: PaneState): [PaneState, PaneState] => (pane === 0 ? [p, s.panes[1]] : [s.panes[0], p]);

/** The panes a change of pane `pane` applies to: both when linked in Compare. */
function targets(s: TabState, pane: 0 | 1): Array<0 | 1> {
  return s.linked && s.compare ? [0, 1] : [pane];
}

/** Opens or closes group `id` (closing also closes the groups inside it). `current` is each
 * pane's open set now (the default expansion when its state is null). */
export function toggleGroup(s: TabState, pane: 0 | 1, id: string, current: readonly [readonly string[], readonly string[]]): TabState {
  const open = !current[pane].includes(id);
  let panes = s.panes;
  for (const p of targets(s, pane)) {
    const mine = current[p].filter((g) => g !== id && !g.startsWith(`${id}/`));
    panes = withPane({ ...s, panes }, p, { expanded: open ? [...mine, id] : mine });
  }
  return { ...s, panes };
}

export function collapseAll(s: TabState, pane: 0 | 1): TabState {
  let panes = s.panes;
  for (const p of targets(s, pane)) panes = withPane({ ...s, panes }, p, { expanded: [] });
  return { ...s, panes };
}

/** Selects an op; `reveal` lists the groups to open so that it is drawn (in every linked pane). */
export function selectOp(s: TabState, name: string, reveal: readonly string[] | null, current: readonly [readonly string[], readonly string[]]): TabState {
  let next: TabState = { ...s, selected: name };
  if (reveal) {
    if (next.view !== "graph") next = { ...next, view: "graph" };
    for (const p of targets(s, 0)) {
      const missing = reveal.filter((g) => !current[p].includes(g));
      if (missing.length) next = { ...next, panes: withPane(next, p, { expanded: [...current[p], ...missing] }) };
    }
  }
  return next;
}

/** Opens groups (a group and those above it) in every linked pane. */
export function openGroups(s: TabState, pane: 0 | 1, ids: readonly string[], current: readonly [readonly string[], readonly string[]]): TabState {
  let next = s;
  for (const p of targets(s, pane)) {
    const missing = ids.filter((g) => !current[p].includes(g));
    if (missing.length) next = { ...next, panes: withPane(next, p, { expanded: [...current[p], ...missing] }) };
  }
  return next.view === "graph" ? next : { ...next, view: "graph" };
}

export function clearSelection(s: TabState): TabState {
  return { ...s, selected: null };
}

/** A step of the slider; the last step means "follow the latest". */
export function setStep(s: TabState, steps: readonly number[], index: number): TabState {
  const step = steps[index];
  if (step === undefined) return s;
  return { ...s, step: index === steps.length - 1 ? null : step };
}

/** Another run: its tag if it has ours, else its first; compare dropped if it is the run. */
export function setRun(s: TabState, run: string, tagsOfRun: readonly string[]): TabState {
  const tag = tagsOfRun.includes(s.tag) ? s.tag : ([...tagsOfRun].sort()[0] ?? "");
  return { ...s, run, tag, compare: s.compare === run ? null : s.compare, panes: [{ expanded: null }, { expanded: null }] };
}

export function setTag(s: TabState, tag: string): TabState {
  return { ...s, tag, panes: [{ expanded: null }, { expanded: null }] };
}

export function setCompare(s: TabState, run: string | null): TabState {
  return { ...s, compare: run, panes: [s.panes[0], { expanded: s.linked ? s.panes[0].expanded : null }] };
}

export function setView(s: TabState, view: "graph" | "layers"): TabState {
  return { ...s, view };
}

export function setQuery(s: TabState, query: string): TabState {
  return { ...s, query };
}

export function setScale(s: TabState, scale: "all" | "step"): TabState {
  return { ...s, scale };
}

export function setLinked(s: TabState, linked: boolean): TabState {
  return { ...s, linked, panes: linked ? [s.panes[0], { expanded: s.panes[0].expanded }] : s.panes };
}

/** The state on a logdir's runs (sorted names, each run's tags): a run that is gone gives way to
 * the first run with data, a tag the run lacks to its first, a compared run without the tag to
 * none. */
export function onRuns(s: TabState, runs: Readonly<Record<string, Readonly<Record<string, unknown>>>>): TabState {
  const names = Object.keys(runs).sort();
  let next = s;
  if (!runs[next.run]) next = { ...next, run: names.find((r) => Object.keys(runs[r]).length) ?? names[0] };
  const tags = Object.keys(runs[next.run]).sort();
  if (!runs[next.run][next.tag]) next = { ...next, tag: tags[0] };
  if (next.compare && !runs[next.compare]?.[next.tag]) next = { ...next, compare: null };
  return next;
}

/** What a change needs: new runs/steps ("all"), new graphs ("graphs") or only a redraw ("render"). */
export function needs(before: TabState, after: TabState): "all" | "graphs" | "render" {
  if (before.run !== after.run || before.tag !== after.tag) return "all";
  if (before.step !== after.step || before.compare !== after.compare) return "graphs";
  return "render";
}
