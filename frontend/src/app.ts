// The tab: toolbar, banner, graph panes (or layers), details panel. The view is one serializable
// TabState (view_state.ts) changed only by its pure transitions through `update`, which then loads
// or renders what the change needs and mirrors the state into the URL. Graphs and diagnoses come
// from pane_loader.ts, which drops a late response to an older load; what to show is shown.ts's.
import { api, RouteError } from "./api";
import { renderBanner, renderPendingBanner } from "./banner_view";
import { renderFrozen } from "./frozen_view";
import { loadNotices, renderNotices } from "./notices_view";
import { cutNamed, tieToGraph } from "./diagnosis";
import type { HistoryState } from "./details";
import { renderDetails } from "./details";
import { clear, el, setText } from "./dom";
import { ancestors, defaultExpansion, ROOT_ID } from "./hierarchy";
import { listenForReloads, readHash, watchDarkMode, watchHash, writeHash } from "./host";
import { Latest, type Ticket } from "./latest";
import { LayoutClient } from "./layout_client";
import { showLayers } from "./layers_panel";
import { Heatmap } from "./heatmap";
import { unionRange } from "./log_axis";
import type { GraphModel } from "./model";
import type { Pane } from "./pane";
import { makePane, renderLegend, showOverview } from "./pane";
import type { ProgressiveTree } from "./progressive";
import { loadsProgressively, ProgressiveLoader, scopesOf, visibleTree } from "./progressive";
import type { Loaded } from "./pane_loader";
import { PaneLoader } from "./pane_loader";
import { matchingOps, search } from "./search";
import type { Drawn, Why } from "./shown";
import { colourScaleOf, layersOffText, legendOver, nearestStep, NOTHING_DRAWN, openGroupsOf, paneShown, paneTitle, progressiveNote, redraws, selectedIndex, starvingCuts, statusText, whyOf } from "./shown";
import { renderEmpty, renderSlider } from "./toolbar_view";
import { CSS } from "./styles";
import type { DiagnosisResponse, RunsResponse } from "./types";
import { PREFIX, readViewState, writeViewState } from "./url_state";
import * as S from "./view_state";
import type { TabState } from "./view_state";

const STEP_DEBOUNCE_MS = 90;

export class App {
  readonly root: HTMLElement;
  private state: TabState = S.INITIAL;
  private runs: RunsResponse = {};
  private steps: number[] = [];
  /** the diagnosis at the last step: the all-steps facts (first NaN step, version changes) */
  private timeline: DiagnosisResponse | null = null;
  private readonly histories = new Map<string, HistoryState>();
  private readonly layoutClient: LayoutClient;
  // ---- issue 17: the layers x steps heatmap of the layers view (heatmap.ts) ----
  private readonly heatmap = new Heatmap((step, _layer, variables) => {
    void this.update(S.setStep(this.state, this.steps, this.steps.indexOf(nearestStep(this.steps, step) ?? step))).then(() => this.selectVariable(variables[0] ?? ""));
  });
  private readonly main: Pane;
  private other: Pane | null = null;
  private otherIsNew = false;
  private renderSeq = 0;
  private drawn: Drawn = NOTHING_DRAWN;
  private stepTimer: number | undefined;
  /** graph loads (pane_loader.ts), and whole reloads (runs, steps, graphs): the newest of each applies */
  private readonly loads = new PaneLoader(api);
  private readonly reloads = new Latest();
  /** a huge graph's levels (progressive.ts); null while the graph is loaded whole */
  private progressive: ProgressiveLoader | null = null;
  private tree: ProgressiveTree | null = null;
  private readonly ui: {
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
  };

  constructor(host: HTMLElement, workerUrl: URL) {
    this.layoutClient = new LayoutClient(workerUrl);
    const style = document.createElement("style");
    style.textContent = CSS;
    document.head.appendChild(style);
    this.ui = {
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
    this.root = el(
      "div",
      { id: "gf-root", class: "gf", "data-status": "loading" },
      el(
        "div",
        { class: "gf-toolbar", role: "toolbar" },
        el("label", {}, "Run", this.ui.run),
        el("label", {}, "Tag", this.ui.tag),
        el("label", { class: "gf-step-control" }, "Step", el("span", { class: "gf-slider" }, this.ui.slider, this.ui.marks), this.ui.stepLabel),
        el("label", {}, "Compare with", this.ui.compare),
        el("label", { class: "gf-linked", hidden: true }, this.ui.linked, "linked"),
        el("label", {}, this.ui.scaleStep, "this step only"),
        el("div", { class: "gf-tabs", role: "group", "aria-label": "view" }, this.ui.graphTab, " ", this.ui.layersTab),
        el("div", { class: "gf-search" }, this.ui.search, this.ui.results),
      ),
      this.ui.notices,
      this.ui.banner,
      this.ui.progressive,
      el("div", { class: "gf-body" }, el("div", { class: "gf-main" }, this.ui.panes, this.ui.layers, this.ui.status), this.ui.details),
    );
    host.appendChild(this.root);
    this.main = this.newPane(0, "op graph");
    this.ui.panes.append(this.main.element);
    this.bindToolbar();
  }

  async start(): Promise<void> {
    watchDarkMode((dark) => (this.root.dataset.theme = dark ? "dark" : "light"));
    this.state = S.fromUrl(readViewState(readHash()));
    this.syncControls();
    listenForReloads(() => {
      this.histories.clear();
      void this.loadAll();
    });
    watchHash(() => this.urlPasted());
    await this.loadAll();
  }

  /** The one way the view changes: a transition's result, then what it needs loaded or drawn. */
  private update(next: TabState, anchor?: string): Promise<void> {
    const need = S.needs(this.state, next);
    this.state = next;
    this.syncControls();
    const work = need === "all" ? this.loadAll() : need === "graphs" ? this.loadGraphs(anchor) : this.render(anchor);
    return work.catch((e) => this.showError(e));
  }

  /** A new link pasted into the address bar of an open tab: apply it. */
  private urlPasted(): void {
    const hash = readHash();
    // TensorBoard's own hash changes (another tab, its keys only) carry none of ours: keep the view
    if (!hash.includes(`&${PREFIX}`)) return;
    const next = S.fromUrl(readViewState(hash));
    if (S.sameView(next, this.state)) return;
    void this.update(next).then(() => {
      const i = this.selectedIndex();
      if (i >= 0) this.main.view.centreOnOp(i);
    });
  }

  private syncControls(): void {
    const s = this.state;
    this.ui.search.value = s.query;
    this.ui.scaleStep.checked = s.scale === "step";
    this.ui.linked.checked = s.linked;
    (this.ui.linked.parentElement as HTMLElement).hidden = !s.compare;
  }

  // ---- loading ---------------------------------------------------------------------------------

  private async loadRuns(): Promise<boolean> {
    this.runs = await api.runs();
    void loadNotices().then((notices) => renderNotices(this.ui.notices, notices));
    const runs = Object.keys(this.runs).sort();
    if (runs.length === 0) return false;
    let s = this.state;
    if (!this.runs[s.run]) s = { ...s, run: runs.find((r) => Object.keys(this.runs[r]).length) ?? runs[0] };
    const tags = Object.keys(this.runs[s.run]).sort();
    if (!this.runs[s.run][s.tag]) s = { ...s, tag: tags[0] };
    if (s.compare && !this.runs[s.compare]?.[s.tag]) s = { ...s, compare: null };
    this.state = s;
    fillSelect(this.ui.run, runs, s.run);
    fillSelect(this.ui.tag, tags, s.tag);
    const others = runs.filter((r) => r !== s.run && this.runs[r][s.tag]);
    fillSelect(this.ui.compare, ["", ...others], s.compare ?? "", (r) => (r ? r : "— none —"));
    this.syncControls();
    return true;
  }

  private async loadSteps(): Promise<void> {
    const d = await api.diagnosis(this.state.run, this.state.tag);
    this.steps = d.steps;
    this.timeline = d;
    const step = this.state.step;
    if (step !== null && !this.steps.includes(step)) this.state = { ...this.state, step: nearestStep(this.steps, step) };
    this.syncSlider();
  }

  private syncSlider(): void {
    const step = this.currentStep();
    renderSlider(this.ui.slider, this.ui.marks, this.ui.stepLabel, this.steps, step, this.state.step === null, this.timeline);
  }

  private currentStep(): number {
    return this.state.step ?? this.steps[this.steps.length - 1] ?? 0;
  }

  /** Fetches the graph(s) and diagnoses of the current run, tag and step and renders them. */
  private async loadGraphs(anchor?: string): Promise<void> {
    const current = this.loads.begin();
    const step = this.currentStep();
    const { run, tag, compare } = this.state;
    if (api.servesGroups() && loadsProgressively(this.runs[run]?.[tag])) return this.loadProgressively(current, anchor);
    this.progressive = null;
    this.tree = null;
    this.ui.progressive.hidden = true;
    this.ui.compare.disabled = false;
    const loaded = await this.loads.whole(current, run, tag, step, compare);
    if (!loaded) return; // a newer request is in flight
    this.applyLoaded(this.main, loaded.main);
    if (loaded.other) {
      if (!this.other) {
        this.other = this.newPane(1, `op graph of ${compare}`);
        this.ui.panes.append(this.other.element);
        this.otherIsNew = true;
      }
      this.applyLoaded(this.other, loaded.other);
    } else if (this.other) {
      this.other.element.remove();
      this.other = null;
    }
    await this.render(anchor);
  }

  /** A huge graph: the diagnosis now, the levels in render (they follow the open groups). */
  private async loadProgressively(current: Ticket, anchor?: string): Promise<void> {
    const { run, tag } = this.state;
    const step = this.currentStep();
    const loader = this.enterProgressive();
    // the top level loads while the diagnosis is computed (both take seconds on a first request)
    const answers = await this.loads.settle(current, Promise.all([api.diagnosis(run, tag, step), loader.load(run, tag, step, new Set(), [], null)]));
    if (!answers) return;
    this.main.diagnosis = answers[0];
    await this.render(anchor);
  }

  /** A huge graph at its latest step: its top level painted before the steps' diagnosis is asked
   * for, which on a first request takes the server seconds (the banner says it is coming). */
  private async paintTopLevelFirst(): Promise<void> {
    const { run, tag, step } = this.state;
    const summary = this.runs[run]?.[tag];
    if (step !== null || !summary || !api.servesGroups() || !loadsProgressively(summary)) return;
    this.loads.begin(); // a graph load still in flight is older than this
    this.enterProgressive();
    this.steps = [summary.steps[1]]; // until the diagnosis lists every step
    this.timeline = null;
    this.main.diagnosis = null;
    await this.render();
  }

  private enterProgressive(): ProgressiveLoader {
    this.ui.compare.disabled = true;
    this.ui.compare.title = "Compare needs every op of both graphs: not available for a graph loaded group by group";
    if (this.other) {
      this.other.element.remove();
      this.other = null;
    }
    return (this.progressive ??= new ProgressiveLoader(api.graphGroups, undefined, (e) => e instanceof RouteError && e.status === 404));
  }

  /** Loads the levels the open groups (and the selected op) need; the pane shows the tree. */
  private async loadLevels(): Promise<boolean> {
    const { run, tag, selected } = this.state;
    const open = new Set(this.state.panes[0].expanded ?? []);
    const tree = await this.progressive!.load(run, tag, this.currentStep(), open, selected ? scopesOf(selected) : [], this.main.diagnosis?.story ?? null);
    if (!tree || !this.progressive) return false;
    if (tree !== this.tree) {
      this.tree = tree;
      this.main.model = tree.model;
      this.main.hierarchy = tree.hierarchy;
      this.main.defaultExpanded = [ROOT_ID];
    }
    const loaded = tree.model.ops.length;
    this.ui.progressive.hidden = false;
    this.ui.progressive.dataset.loadedOps = String(loaded);
    setText(this.ui.progressive, progressiveNote(tree.opsTotal, loaded));
    return true;
  }

  /** Shows a loaded value in a pane; a graph's first load opens its default groups. */
  private applyLoaded(pane: Pane, loaded: Loaded): void {
    if (pane.hierarchy !== loaded.hierarchy) pane.defaultExpanded = [...defaultExpansion(loaded.hierarchy, starvingCuts(loaded.model))];
    pane.model = loaded.model;
    pane.diagnosis = loaded.diagnosis;
    pane.hierarchy = loaded.hierarchy;
  }

  /** Runs, then the steps of the chosen run and tag, then its graph(s): on start, reload, a
   * change of run or tag and a pasted link. A newer call supersedes an older one. */
  private async loadAll(): Promise<void> {
    const current = this.reloads.begin();
    try {
      if (!(await this.loadRuns())) {
        this.showEmpty();
        return;
      }
      if (!current()) return;
      await this.paintTopLevelFirst();
      if (!current()) return;
      await this.loadSteps();
      if (!current()) return;
      await this.loadGraphs();
    } catch (e) {
      if (current()) this.showError(e);
    }
  }

  // ---- rendering ---------------------------------------------------------------------------------

  /** Each pane's open groups: its own list, or its graph's default. */
  private openGroups(): [string[], string[]] {
    return openGroupsOf(this.state, [this.main.defaultExpanded, this.other?.defaultExpanded ?? null]);
  }

  private async render(anchor?: string): Promise<void> {
    if (this.progressive && !(await this.loadLevels())) return;
    const model = this.main.model;
    if (!model) return;
    const s = this.state;
    this.root.dataset.status = "rendering";
    // an eager fallback logs variables only: say why there is no graph
    setText(this.ui.status, statusText(model));
    this.syncSlider();
    // the banner, legends and details depend only on the data and the selection: redraw on change
    const panes = this.other ? [this.main, this.other] : [this.main];
    const scale = colourScaleOf(s.scale, panes.map((p) => ({ model: p.model!, diagnosis: p.diagnosis })));
    const drawn: Drawn = { model, other: this.other?.model ?? null, selected: s.selected, scale };
    const { data: dataChanged, selection: selectionChanged, scale: scaleChanged } = redraws(this.drawn, drawn);
    const otherTold = this.other?.model && this.other.diagnosis ? { run: this.other.model.run, told: tieToGraph(this.other.diagnosis, this.other.model) } : null;
    const reveal = this.progressive ? (name: string) => this.revealName(name) : undefined;
    const told = this.main.diagnosis ? tieToGraph(this.main.diagnosis, model) : null;
    if (dataChanged && told) renderBanner(this.ui.banner, told, otherTold, model.run, (op) => this.selectOp(op, true), this.timeline?.first_nonfinite_step ?? null, reveal);
    if (dataChanged && told) renderFrozen(this.ui.banner, this.main.diagnosis?.frozen_variables);
    else if (dataChanged) renderPendingBanner(this.ui.banner);
    this.ui.graphTab.setAttribute("aria-pressed", String(s.view === "graph"));
    this.ui.layersTab.setAttribute("aria-pressed", String(s.view === "layers"));
    this.ui.panes.hidden = s.view !== "graph";
    this.ui.layers.hidden = s.view !== "layers";
    if (s.view === "layers" && this.tree) {
      clear(this.ui.layers);
      this.ui.layers.append(el("p", { class: "gf-muted", "data-field": "layers-off" }, layersOffText(this.tree.opsTotal)));
    } else if (s.view === "layers") {
      const range = unionRange(this.main.diagnosis!.norm_range.variables, this.other?.diagnosis?.norm_range.variables);
      const lastStep = (run: string): number | undefined => (run === model.run ? this.steps[this.steps.length - 1] : this.runs[run]?.[model.tag]?.steps[1]);
      showLayers(this.ui.layers, this.heatmap, { model, other: this.other?.model ?? null, range, frozen: this.main.diagnosis?.frozen_variables, lastStep, onVariable: (name) => this.selectVariable(name) });
    }
    const open = this.openGroups();
    const why = this.why();
    const over = legendOver(s.scale, this.other !== null);
    await Promise.all(
      panes.map((pane, i) => {
        setText(pane.title, paneTitle(pane.model!, this.other !== null));
        if (dataChanged || scaleChanged) renderLegend(pane, scale, over, s.scale);
        const m = pane.model!;
        const { selected: sel, focus, expanded } = paneShown(m, s.selected, open[i]);
        // the path and the region are the run's: the compared run's ops of the same names may flow
        const mine = pane === this.main;
        const given = mine && this.tree ? { visible: visibleTree(this.tree, expanded), summaries: this.tree.summaries } : undefined;
        return pane.view.show({ model: m, hierarchy: pane.hierarchy!, expanded, selected: sel, matches: this.matchesFor(m), anchor, focus, scale, path: new Set(mine ? why.path : []), region: new Set(mine ? why.region : []), given });
      }),
    );
    if (this.otherIsNew && this.other) {
      // a new linked pane starts where the run's pane looks
      this.otherIsNew = false;
      if (s.linked) this.other.view.setTransform(this.main.view.currentTransform);
    }
    if (selectionChanged) this.renderDetailsPanel();
    if (dataChanged) for (const pane of panes) if (pane.overview.hidden !== true) showOverview(pane, true);
    this.drawn = { ...drawn, other: this.other?.model ?? null };
    this.writeUrl();
    await nextPaint();
    this.root.dataset.status = "ready";
    this.root.dataset.run = model.run;
    this.root.dataset.step = String(model.step);
    this.root.dataset.layoutMs = String(this.main.view.layoutMillis);
    this.root.dataset.renderSeq = String(++this.renderSeq);
    if (!this.root.dataset.firstPaintMs) this.root.dataset.firstPaintMs = performance.now().toFixed(0);
  }

  private whyCache: { model: GraphModel | null; selected: string | null; why: Why } = { model: null, selected: null, why: { starvedBy: [], path: [], region: [] } };

  /** The selected op's why (shown.ts), cached while the model and the selection stay. */
  private why(): Why {
    const m = this.main.model;
    const c = this.whyCache;
    if (c.model === m && c.selected === this.state.selected) return c.why;
    const why = whyOf(m, this.state.selected);
    this.whyCache = { model: m, selected: this.state.selected, why };
    return why;
  }

  private matchCache = new Map<GraphModel, { query: string; matches: Set<number> }>();

  /** Ops matching the search (cached: a toggle or a pan must not rescan 20,000 names). */
  private matchesFor(model: GraphModel): Set<number> {
    const hit = this.matchCache.get(model);
    if (hit && hit.query === this.state.query) return hit.matches;
    if (this.matchCache.size > 4) this.matchCache.clear();
    const matches = matchingOps(this.state.query, model.ops, model.variables);
    this.matchCache.set(model, { query: this.state.query, matches });
    return matches;
  }

  private selectedIndex(): number {
    return selectedIndex(this.main.model, this.state.selected);
  }

  private renderDetailsPanel(): void {
    const m = this.main.model!;
    const index = this.selectedIndex();
    if (index < 0) {
      this.ui.details.hidden = true;
      clear(this.ui.details);
      return;
    }
    this.ui.details.hidden = false;
    const key = `${m.run}\u0000${m.tag}\u0000${m.ops[index].name}`;
    let history = this.histories.get(key);
    if (!history) {
      history = { kind: "loading" };
      this.histories.set(key, history);
      api.opHistory(m.run, m.tag, m.ops[index].name).then(
        (data) => this.historyArrived(key, { kind: "ready", data }),
        (e: unknown) => this.historyArrived(key, { kind: "error", message: errorText(e) }),
      );
    }
    const cut = this.main.diagnosis ? cutNamed(this.main.diagnosis.story, m.ops[index].name) : undefined;
    const why = this.why();
    renderDetails(this.ui.details, m, index, history, (i) => this.selectOp(i, true), () => this.clearSelection(), cut, { starvedBy: why.starvedBy, region: why.region.length }, this.timeline?.version_changes ?? []);
    if (this.tree) this.ui.details.append(el("p", { class: "gf-muted", "data-field": "progressive-note" }, "Loaded group by group: inputs, outputs and the starved path list loaded ops only."));
  }

  private historyArrived(key: string, state: HistoryState): void {
    this.histories.set(key, state);
    const m = this.main.model;
    const index = this.selectedIndex();
    if (m && index >= 0 && key === `${m.run}\u0000${m.tag}\u0000${m.ops[index].name}`) this.renderDetailsPanel();
  }

  private writeUrl(): void {
    try {
      writeHash(writeViewState(readHash(), S.toUrl(this.state)));
    } catch {
      // the URL is a convenience; never let it break the tab
    }
  }

  private showError(e: unknown): void {
    this.root.dataset.status = "error";
    setText(this.ui.status, errorText(e));
  }

  /** A logdir without gradflow data: how to log some, instead of dead controls. */
  private showEmpty(): void {
    this.root.dataset.status = "empty";
    this.root.dataset.empty = "true";
    clear(this.ui.status);
    this.ui.status.append(renderEmpty());
  }

  // ---- interaction -------------------------------------------------------------------------------

  private newPane(index: 0 | 1, label: string): Pane {
    const pane: Pane = makePane(this.layoutClient, label, {
      selectOp: (i) => (index === 0 ? this.selectOp(i, false) : this.selectByName(pane.model?.ops[i]?.name ?? "")),
      toggleGroup: (id) => this.toggleGroup(index, id),
      viewChanged: (t) => {
        // linked Compare: the other pane follows the user's pan and zoom
        const other = index === 0 ? this.other : this.main;
        if (this.state.linked && this.other && other) other.view.setTransform(t);
      },
      collapseAll: () => void this.update(S.collapseAll(this.state, index)),
      revealOp: (i) => this.selectByName(pane.model?.ops[i]?.name ?? ""),
      openGroup: (id) => {
        const g = pane.hierarchy?.groups.get(id);
        if (!g) return;
        const ids = [...ancestors(g).map((a) => a.id)];
        void this.update(S.openGroups(this.state, index, ids, this.openGroups())).then(() => pane.view.centreOnGroup(id));
      },
    });
    return pane;
  }

  private selectOp(index: number, reveal: boolean): void {
    const m = this.main.model;
    if (!m || !m.ops[index]) return;
    const groups = reveal ? ancestors(this.main.hierarchy!.opGroup[index]).map((g) => g.id) : null;
    void this.update(S.selectOp(this.state, m.ops[index].name, groups, this.openGroups())).then(() => {
      if (reveal) {
        this.main.view.centreOnOp(index);
        this.main.view.focusOp(index);
        // linked Compare: the other pane shows the op of the same name, if it has one
        const there = this.other?.model?.opIndex.get(m.ops[index].name);
        if (this.state.linked && there !== undefined) this.other!.view.centreOnOp(there);
      }
    });
  }

  private selectByName(name: string): void {
    const i = this.main.model?.opIndex.get(name);
    if (i !== undefined) this.selectOp(i, true);
    else if (this.progressive) this.revealName(name);
  }

  /** A huge graph's op that may not be loaded yet: select it (which loads its groups' levels),
   * then open those groups and show it. */
  private revealName(name: string): void {
    void this.update(S.selectOp(this.state, name, null, this.openGroups())).then(() => {
      const i = this.main.model?.opIndex.get(name);
      if (i !== undefined) this.selectOp(i, true);
    });
  }

  private selectVariable(name: string): void {
    const v = this.main.model?.variables.find((x) => x.name === name);
    if (v && v.readers.length) this.selectOp(v.readers[0], true);
  }

  private clearSelection(): void {
    void this.update(S.clearSelection(this.state));
  }

  private toggleGroup(pane: 0 | 1, id: string): void {
    if (id === ROOT_ID) return;
    void this.update(S.toggleGroup(this.state, pane, id, this.openGroups()), id);
  }

  private bindToolbar(): void {
    const ui = this.ui;
    ui.run.addEventListener("change", () => void this.update(S.setRun(this.state, ui.run.value, Object.keys(this.runs[ui.run.value] ?? {}))));
    ui.tag.addEventListener("change", () => void this.update(S.setTag(this.state, ui.tag.value)));
    ui.compare.addEventListener("change", () => void this.update(S.setCompare(this.state, ui.compare.value || null)));
    ui.linked.addEventListener("change", () => void this.update(S.setLinked(this.state, ui.linked.checked)));
    ui.slider.addEventListener("input", () => {
      const next = S.setStep(this.state, this.steps, Number(ui.slider.value));
      if (next === this.state) return;
      // the label follows at once; the load waits until the slider rests
      this.state = next;
      renderSlider(ui.slider, ui.marks, ui.stepLabel, this.steps, this.currentStep(), next.step === null, this.timeline);
      window.clearTimeout(this.stepTimer);
      this.stepTimer = window.setTimeout(() => void this.loadGraphs().catch((e) => this.showError(e)), STEP_DEBOUNCE_MS);
    });
    ui.scaleStep.addEventListener("change", () => void this.update(S.setScale(this.state, ui.scaleStep.checked ? "step" : "all")));
    ui.graphTab.addEventListener("click", () => void this.update(S.setView(this.state, "graph")));
    ui.layersTab.addEventListener("click", () => void this.update(S.setView(this.state, "layers")));
    let searchTimer: number | undefined;
    ui.search.addEventListener("input", () => {
      window.clearTimeout(searchTimer);
      searchTimer = window.setTimeout(() => this.runSearch(), 150);
    });
    ui.search.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        this.runSearch();
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
      } else if (e.key === "Escape" && !typing && this.state.selected) {
        this.clearSelection();
      }
    });
  }

  private runSearch(): void {
    const ui = this.ui;
    const query = ui.search.value;
    const m = this.main.model;
    clear(ui.results);
    if (!m || !query) {
      ui.results.hidden = true;
      void this.update(S.setQuery(this.state, query));
      return;
    }
    const result = search(query, m.ops, m.variables, 50);
    ui.results.hidden = false;
    if (result.error) ui.results.append(el("div", { class: "gf-error", role: "alert" }, `Invalid regex: ${result.error}`));
    else if (result.total === 0) ui.results.append(el("div", { class: "gf-muted" }, "No match"));
    for (const hit of result.hits) {
      const b = el("button", { type: "button", role: "option", "data-hit": hit.name, "data-kind": hit.kind }, el("span", { class: "gf-kind" }, hit.kind), hit.name);
      b.addEventListener("click", () => {
        ui.results.hidden = true;
        if (hit.kind === "op") this.selectOp(hit.index, true);
        else this.selectVariable(hit.name);
      });
      ui.results.append(b);
    }
    if (result.total > result.hits.length) ui.results.append(el("div", { class: "gf-muted" }, `… ${result.total - result.hits.length} more`));
    if (this.tree) ui.results.append(el("div", { class: "gf-muted", "data-field": "search-scope" }, `Searched the ${m.ops.length.toLocaleString("en")} loaded ops of ${this.tree.opsTotal.toLocaleString("en")}: open a group to search inside it.`));
    void this.update(S.setQuery(this.state, query));
  }
}

function fillSelect(select: HTMLSelectElement, values: string[], current: string, label: (v: string) => string = (v) => v): void {
  const same = select.options.length === values.length && values.every((v, i) => select.options[i].value === v);
  if (!same) {
    clear(select);
    for (const v of values) select.append(el("option", { value: v }, label(v)));
  }
  select.value = current;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function nextPaint(): Promise<void> {
  return new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
}
