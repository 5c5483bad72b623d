// The tab: toolbar, banner, graph panes (or layers), details panel. The view is one serializable
// TabState (view_state.ts) changed only by its pure transitions through `update`, which then loads
// or renders what the change needs and mirrors the state into the URL. The graphs come from a
// GraphSource (graph_source.ts: whole, or group by group), chosen by the run's size; what to show
// is one `Shown` value (shown.ts), which `render` applies.
import { api } from "./api";
import { showBanner } from "./banner_view";
import { loadNotices, renderNotices } from "./notices_view";
import { DetailsPanel } from "./details_panel";
import { clear, el, setText } from "./dom";
import type { GraphRequest, GraphSource, Panes } from "./graph_source";
import { GraphSources } from "./graph_source";
import { ancestors, ROOT_ID } from "./hierarchy";
import { listenForReloads, readHash, watchDarkMode, watchHash, writeHash } from "./host";
import { Latest } from "./latest";
import { LayoutClient } from "./layout_client";
import { heatmapRun, showLayers } from "./layers_panel";
import { Heatmap } from "./heatmap";
import type { Pane } from "./pane";
import { makePane, renderLegend, showOverview } from "./pane";
import type { LayersShown, Shown } from "./shown";
import { nearestStep, openGroupsOf, redraws, sameKey, searchScopeText, selectedIndex, shownOf } from "./shown";
import { renderSlider } from "./toolbar_view";
import type { TabElements } from "./tab_view";
import { bindSearchKeys, buildTab, fillSelect, renderHits, showAround, showEmpty, showError, syncControls } from "./tab_view";
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
  private readonly layoutClient: LayoutClient;
  // ---- issue 17: the layers x steps heatmap of the layers view (heatmap.ts) ----
  private readonly heatmap = new Heatmap((step, _layer, variables) => {
    void this.update(S.setStep(this.state, this.steps, this.steps.indexOf(nearestStep(this.steps, step) ?? step))).then(() => this.selectVariable(variables[0] ?? ""));
  });
  private readonly main: Pane;
  private other: Pane | null = null;
  private otherIsNew = false;
  private renderSeq = 0;
  private stepTimer: number | undefined;
  /** the graphs' two sources over one load guard, and whole reloads (runs, steps, graphs): the
   * newest load of each kind applies */
  private readonly sources = new GraphSources(api);
  private readonly loads = this.sources.loader;
  private readonly reloads = new Latest();
  /** where the shown graphs come from (chosen by the run's size), and what it loaded last */
  private source: GraphSource = this.sources.whole;
  private loaded: Panes | null = null;
  /** what the last render applied: the next one redraws only the parts whose keys changed */
  private shown: Shown | null = null;
  private readonly ui: TabElements;
  private readonly details: DetailsPanel;

  constructor(host: HTMLElement, workerUrl: URL) {
    this.layoutClient = new LayoutClient(workerUrl);
    ({ root: this.root, ui: this.ui } = buildTab());
    this.details = new DetailsPanel(this.ui.details, api.opHistory, { select: (i) => this.selectOp(i, true), close: () => this.clearSelection() });
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
      this.details.forget();
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
    syncControls(this.ui, this.state);
  }

  // ---- loading ---------------------------------------------------------------------------------

  private async loadRuns(): Promise<boolean> {
    this.runs = await api.runs();
    void loadNotices().then((notices) => renderNotices(this.ui.notices, notices));
    const runs = Object.keys(this.runs).sort();
    if (runs.length === 0) return false;
    const s = (this.state = S.onRuns(this.state, this.runs));
    fillSelect(this.ui.run, runs, s.run);
    fillSelect(this.ui.tag, Object.keys(this.runs[s.run]).sort(), s.tag);
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

  /** What the view state asks of a graph source at `step` (default: the shown step). */
  private request(step = this.currentStep()): GraphRequest {
    const s = this.state;
    return { run: s.run, tag: s.tag, step, compare: s.compare, open: s.panes[0].expanded ?? [], selected: s.selected };
  }

  private sourceOfRun(): GraphSource {
    return this.sources.of(this.runs[this.state.run]?.[this.state.tag], api.servesGroups());
  }

  /** Fetches the graph(s) and diagnoses of the current run, tag and step and renders them. */
  private async loadGraphs(anchor?: string): Promise<void> {
    const source = this.sourceOfRun();
    const panes = await source.load(this.loads.begin(), this.request());
    if (!panes) return; // a newer request is in flight
    this.source = source;
    this.loaded = panes;
    await this.render(anchor);
  }

  /** At the latest step, what the source can paint before the steps' diagnosis is asked for
   * (a huge graph's top level: on a first request the diagnosis takes the server seconds, and
   * the banner says it is coming). */
  private async paintEarly(): Promise<void> {
    const summary = this.runs[this.state.run]?.[this.state.tag];
    if (this.state.step !== null || !summary) return;
    const source = this.sourceOfRun();
    const last = summary.steps[1];
    const panes = await source.early(this.loads.begin(), this.request(last));
    if (!panes) return;
    this.steps = [last]; // until the diagnosis lists every step
    this.timeline = null;
    this.source = source;
    this.loaded = panes;
    await this.render();
  }

  /** Runs, then the steps of the chosen run and tag, then its graph(s): on start, reload, a
   * change of run or tag and a pasted link. A newer call supersedes an older one. */
  private async loadAll(): Promise<void> {
    const current = this.reloads.begin();
    try {
      if (!(await this.loadRuns())) {
        showEmpty(this.root, this.ui);
        return;
      }
      if (!current()) return;
      await this.paintEarly();
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
    return openGroupsOf(this.state, [this.loaded?.main.defaultOpen ?? null, this.loaded?.other?.defaultOpen ?? null]);
  }

  /** The panes as the view state needs them (a graph loaded group by group loads the levels of
   * its open groups), then what they show, applied. */
  private async render(anchor?: string): Promise<void> {
    const asked = this.loaded;
    if (!asked) return;
    const panes = await this.source.follow(this.request(), asked);
    if (!panes || panes.current !== this.loaded?.current) return; // a newer load replaced them
    this.loaded = panes;
    await this.apply(shownOf({ state: this.state, panes, timeline: this.timeline }, this.shown), anchor);
  }

  /** Applies `shown` to the DOM: every part whose key changed since the last render, and the panes. */
  private async apply(shown: Shown, anchor?: string): Promise<void> {
    const redraw = redraws(this.shown, shown);
    // recorded now, with the parts drawn below: a load that lands while the panes draw is new to the next render
    this.shown = shown;
    this.root.dataset.status = "rendering";
    this.syncSlider();
    const panes = this.placePanes(shown);
    showAround(this.ui, shown);
    if (redraw.banner) showBanner(this.ui.banner, shown.banner, (op) => this.selectOp(op, true), (name) => this.revealName(name));
    if (shown.layers) this.applyLayers(shown.layers, shown);
    if (redraw.details) this.details.show(shown.details);
    const { scale, over, mode } = shown.legend;
    await Promise.all(
      panes.map((pane, i) => {
        const p = shown.panes[i];
        setText(pane.title, p.title);
        if (redraw.legend) renderLegend(pane, scale, over, mode);
        return pane.view.show({ model: p.graph.model, hierarchy: p.graph.hierarchy, expanded: p.expanded, selected: p.selected, matches: p.matches, anchor, focus: p.focus, scale, path: p.path, region: p.region, given: p.given });
      }),
    );
    if (this.otherIsNew && this.other) {
      // a new linked pane starts where the run's pane looks
      this.otherIsNew = false;
      if (this.state.linked) this.other.view.setTransform(this.main.view.currentTransform);
    }
    // the overviews read the groups the views just summed; a newer render with other data draws its own
    if (redraw.overview && sameKey(this.shown.overview, shown.overview)) for (const pane of panes) if (pane.overview.hidden !== true) showOverview(pane, true);
    this.writeUrl();
    await nextPaint();
    const model = shown.panes[0].graph.model;
    this.root.dataset.status = "ready";
    this.root.dataset.run = model.run;
    this.root.dataset.step = String(model.step);
    this.root.dataset.layoutMs = String(this.main.view.layoutMillis);
    this.root.dataset.renderSeq = String(++this.renderSeq);
    if (!this.root.dataset.firstPaintMs) this.root.dataset.firstPaintMs = performance.now().toFixed(0);
  }

  /** The run's pane, and Compare's (made or removed as `shown` has it), holding their graphs. */
  private placePanes(shown: Shown): Pane[] {
    const other = shown.panes[1];
    if (other && !this.other) {
      this.other = this.newPane(1, `op graph of ${other.graph.model.run}`);
      this.ui.panes.append(this.other.element);
      this.otherIsNew = true;
    } else if (!other && this.other) {
      this.other.element.remove();
      this.other = null;
    }
    const panes = this.other ? [this.main, this.other] : [this.main];
    panes.forEach((pane, i) => {
      pane.model = shown.panes[i].graph.model;
      pane.hierarchy = shown.panes[i].graph.hierarchy;
    });
    return panes;
  }

  private applyLayers(layers: LayersShown, shown: Shown): void {
    const model = shown.panes[0].graph.model;
    const lastStep = (run: string): number | undefined => (run === model.run ? this.steps[this.steps.length - 1] : this.runs[run]?.[model.tag]?.steps[1]);
    if (layers.off === null) {
      const other = shown.panes[1]?.graph.model ?? null;
      showLayers(this.ui.layers, this.heatmap, { model, other, range: layers.range, frozen: layers.frozen, lastStep, onVariable: (name) => this.selectVariable(name) });
      return;
    }
    // group by group: the heatmap (its route serves any graph) above a line saying why no bars
    clear(this.ui.layers);
    this.ui.layers.append(el("p", { class: "gf-muted", "data-field": "layers-off" }, layers.off));
    void this.heatmap.show(this.ui.layers, { ...heatmapRun(model, lastStep(model.run)), tag: model.tag, other: null });
  }

  private selectedIndex(): number {
    return selectedIndex(this.main.model, this.state.selected);
  }

  private writeUrl(): void {
    try {
      writeHash(writeViewState(readHash(), S.toUrl(this.state)));
    } catch {
      // the URL is a convenience; never let it break the tab
    }
  }

  private showError(e: unknown): void {
    showError(this.root, this.ui, e);
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
    else if (this.source.partial) this.revealName(name);
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
    bindSearchKeys(ui, () => this.runSearch(), () => this.state.selected && this.clearSelection());
  }

  private runSearch(): void {
    const query = this.ui.search.value;
    const m = this.main.model;
    if (!m || !query) {
      clear(this.ui.results);
      this.ui.results.hidden = true;
    } else {
      const scope = this.loaded ? searchScopeText(this.loaded.main) : null;
      renderHits(this.ui.results, query, m, scope, (hit) => (hit.kind === "op" ? this.selectOp(hit.index, true) : this.selectVariable(hit.name)));
    }
    void this.update(S.setQuery(this.state, query));
  }
}

function nextPaint(): Promise<void> {
  return new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
}
