// The tab's elements, made and laid out once: the toolbar's controls, the notices, the banner, the
// group-by-group note, the panes, the layers view, the details panel and the status line; what a
// Shown value (shown.ts) sets around the panes; and the DOM-only parts of the toolbar: filling a
// select, mirroring the view state into the controls, the search box's keys and its list of hits.
// What the controls change is App's (app.ts).
import { clear, el, setText } from "./dom";
import type { Op, Variable } from "./model";
import type { SearchHit } from "./search";
import { search } from "./search";
import { CSS } from "./styles";
import type { Shown } from "./shown";
import { renderEmpty } from "./toolbar_view";
import type { TabState } from "./view_state";

/** Every element the tab writes to. */
export interface TabElements {
  run: HTMLSelectElement;
  tag: HTMLSelectElement;
  slider: HTMLInputElement;
  marks: HTMLElement;
  stepLabel: HTMLOutputElement;
  compare: HTMLSelectElement;
  linked: HTMLInputElement;
  scaleStep: HTMLInputElement;
  graphTab: HTMLButtonElement;
  layersTab: HTMLButtonElement;
  search: HTMLInputElement;
  results: HTMLElement;
  banner: HTMLElement;
  notices: HTMLElement;
  progressive: HTMLElement;
  panes: HTMLElement;
  layers: HTMLElement;
  details: HTMLElement;
  status: HTMLElement;
}

/** The tab's elements, and `#gf-root` holding them in their places; the stylesheet in the head. */
export function buildTab(): { root: HTMLElement; ui: TabElements } {
  document.head.append(el("style", {}, CSS));
  const ui: TabElements = {
    run: el("select", { id: "gf-run", "aria-label": "run" }),
    tag: el("select", { id: "gf-tag", "aria-label": "tag" }),
    slider: el("input", { id: "gf-step", type: "range", min: 0, max: 0, step: 1, value: 0, "aria-label": "step" }),
    marks: el("div", { id: "gf-step-marks", class: "gf-step-marks", "aria-hidden": "true" }),
    stepLabel: el("output", { id: "gf-step-label", for: "gf-step" }),
    compare: el("select", { id: "gf-compare", "aria-label": "compare with run" }),
    linked: el("input", { id: "gf-linked", type: "checkbox", checked: true, title: "pan, zoom and open groups in both panes together" }),
    scaleStep: el("input", { id: "gf-scale-step", type: "checkbox", title: "colour by this step's range instead of the range over all logged steps" }),
    graphTab: el("button", { type: "button", id: "gf-view-graph", "aria-pressed": "true" }, "Graph"),
    layersTab: el("button", { type: "button", id: "gf-view-layers", "aria-pressed": "false" }, "Layers"),
    search: el("input", { id: "gf-search", type: "search", placeholder: "Search ops or variables (regex)  /", "aria-label": "search ops or variables by regular expression", autocomplete: "off" }),
    results: el("div", { id: "gf-search-results", class: "gf-search-results", role: "listbox", hidden: true }),
    banner: el("section", { id: "gf-banner", role: "status", "aria-live": "polite" }),
    notices: el("section", { id: "gf-notices", class: "gf-note", role: "status", hidden: true }),
    progressive: el("div", { id: "gf-progressive", class: "gf-note gf-progressive", hidden: true }),
    panes: el("div", { id: "gf-panes", class: "gf-panes" }),
    layers: el("div", { id: "gf-layers", class: "gf-layers", hidden: true }),
    details: el("aside", { id: "gf-details", "aria-label": "details of the selected op", hidden: true }),
    status: el("div", { id: "gf-status", class: "gf-status" }, "Loading…"),
  };
  const root = el(
    "div",
    { id: "gf-root", class: "gf", "data-status": "loading" },
    el(
      "div",
      { class: "gf-toolbar", role: "toolbar" },
      el("label", {}, "Run", ui.run),
      el("label", {}, "Tag", ui.tag),
      el("label", { class: "gf-step-control" }, "Step", el("span", { class: "gf-slider" }, ui.slider, ui.marks), ui.stepLabel),
      el("label", {}, "Compare with", ui.compare),
      el("label", { class: "gf-linked", hidden: true }, ui.linked, "linked"),
      el("label", {}, ui.scaleStep, "this step only"),
      el("div", { class: "gf-tabs", role: "group", "aria-label": "view" }, ui.graphTab, " ", ui.layersTab),
      el("div", { class: "gf-search" }, ui.search, ui.results),
    ),
    ui.notices,
    ui.banner,
    ui.progressive,
    el("div", { class: "gf-body" }, el("div", { class: "gf-main" }, ui.panes, ui.layers, ui.status), ui.details),
  );
  return { root, ui };
}

/** The toggles and the search box as the view state has them. */
export function syncControls(ui: TabElements, s: TabState): void {
  ui.search.value = s.query;
  ui.scaleStep.checked = s.scale === "step";
  ui.linked.checked = s.linked;
  (ui.linked.parentElement as HTMLElement).hidden = !s.compare;
}

/** Options `values` (kept when they are the same, so a reload does not close an open list). */
export function fillSelect(select: HTMLSelectElement, values: string[], current: string, label: (v: string) => string = (v) => v): void {
  const same = select.options.length === values.length && values.every((v, i) => select.options[i].value === v);
  if (!same) {
    clear(select);
    for (const v of values) select.append(el("option", { value: v }, label(v)));
  }
  select.value = current;
}

/** The search box's keys: Enter runs the search and opens the first hit, ↓ walks the hits,
 * Escape closes them; `/` anywhere focuses the box; Escape elsewhere calls `onEscape`. */
export function bindSearchKeys(ui: TabElements, runSearch: () => void, onEscape: () => void): void {
  ui.search.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      runSearch();
      ui.results.querySelector("button")?.click();
    } else if (e.key === "ArrowDown") {
      e.preventDefault();
      ui.results.querySelector("button")?.focus();
    } else if (e.key === "Escape") {
      ui.results.hidden = true;
    }
  });
  ui.results.addEventListener("keydown", (e) => {
    const current = document.activeElement as HTMLElement | null;
    if (e.key === "ArrowDown") (current?.nextElementSibling as HTMLElement | null)?.focus();
    else if (e.key === "ArrowUp") ((current?.previousElementSibling as HTMLElement | null) ?? ui.search).focus();
    else if (e.key === "Escape") {
      ui.results.hidden = true;
      ui.search.focus();
    } else return;
    e.preventDefault();
  });
  document.addEventListener("keydown", (e) => {
    const typing = e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement;
    if (e.key === "/" && !typing) {
      e.preventDefault();
      ui.search.focus();
    } else if (e.key === "Escape" && !typing) {
      onEscape();
    }
  });
}

/** The hits of searching `query` in `ops` and `variables` under the box (names as text), what was
 * not listed, and `scope`: what the search covered when that is not every op. */
export function renderHits(results: HTMLElement, query: string, of: { ops: readonly Op[]; variables: readonly Variable[] }, scope: string | null, onHit: (hit: SearchHit) => void): void {
  clear(results);
  results.hidden = false;
  const result = search(query, of.ops, of.variables, 50);
  if (result.error) results.append(el("div", { class: "gf-error", role: "alert" }, `Invalid regex: ${result.error}`));
  else if (result.total === 0) results.append(el("div", { class: "gf-muted" }, "No match"));
  for (const hit of result.hits) {
    const b = el("button", { type: "button", role: "option", "data-hit": hit.name, "data-kind": hit.kind }, el("span", { class: "gf-kind" }, hit.kind), hit.name);
    b.addEventListener("click", () => {
      results.hidden = true;
      onHit(hit);
    });
    results.append(b);
  }
  if (result.total > result.hits.length) results.append(el("div", { class: "gf-muted" }, `… ${result.total - result.hits.length} more`));
  if (scope) results.append(el("div", { class: "gf-muted", "data-field": "search-scope" }, scope));
}

/** The parts of `shown` around the panes: the status line, Compare's select, the group-by-group
 * note, which view is shown. */
export function showAround(ui: TabElements, shown: Shown): void {
  setText(ui.status, shown.status);
  ui.compare.disabled = shown.compare.disabled;
  ui.compare.title = shown.compare.title;
  ui.progressive.hidden = !shown.progress;
  if (shown.progress) {
    ui.progressive.dataset.loadedOps = String(shown.progress.loadedOps);
    setText(ui.progressive, shown.progress.text);
  }
  ui.graphTab.setAttribute("aria-pressed", String(shown.view === "graph"));
  ui.layersTab.setAttribute("aria-pressed", String(shown.view === "layers"));
  ui.panes.hidden = shown.view !== "graph";
  ui.layers.hidden = shown.view !== "layers";
}

/** An error instead of the graph (the route's message). */
export function showError(root: HTMLElement, ui: TabElements, e: unknown): void {
  root.dataset.status = "error";
  setText(ui.status, e instanceof Error ? e.message : String(e));
}

/** A logdir without gradflow data: how to log some, instead of dead controls. */
export function showEmpty(root: HTMLElement, ui: TabElements): void {
  root.dataset.status = "empty";
  root.dataset.empty = "true";
  clear(ui.status);
  ui.status.append(renderEmpty());
}
