// The tab: toolbar, banner, graph (or layers) view, details panel; loads data, keeps the view
// state and mirrors it into the URL.
import { api, RouteError } from "./api";
import { renderBanner } from "./banner_view";
import { cutNamed, tieToGraph } from "./diagnosis";
import { unionRange } from "./log_axis";
import type { MagnitudeScale } from "./colors";
import { magnitudeColor, magnitudeScale, scaleOfRange } from "./colors";
import type { HistoryState } from "./details";
import { renderDetails } from "./details";
import { clear, el, setText } from "./dom";
import { formatNorm } from "./format";
import { GraphView } from "./graph_view";
import type { Hierarchy } from "./hierarchy";
import { ancestors, buildHierarchy, defaultExpansion, ROOT_ID } from "./hierarchy";
import { listenForReloads, readHash, watchDarkMode, writeHash } from "./host";
import { LayoutClient } from "./layout_client";
import { renderLayers } from "./layers_view";
import type { GraphModel } from "./model";
import { buildModel } from "./model";
import { matchingOps, search } from "./search";
import { CSS } from "./styles";
import type { DiagnosisResponse, GraphResponse, RunsResponse } from "./types";
import type { ViewState } from "./url_state";
import { readViewState, writeViewState } from "./url_state";

interface Pane {
  view: GraphView;
  element: HTMLElement;
  title: HTMLElement;
  legend: HTMLDetailsElement;
  model: GraphModel | null;
  /** the diagnosis route at the pane's step: the story and the all-steps range */
  diagnosis: DiagnosisResponse | null;
  hierarchy: Hierarchy | null;
  expanded: Set<string>;
  expandedIsDefault: boolean;
}

const STEP_DEBOUNCE_MS = 90;

export class App {
  readonly root: HTMLElement;
  private runs: RunsResponse = {};
  private run = "";
  private tag = "";
  private steps: number[] = [];
  /** null: follow the latest step. */
  private step: number | null = null;
  private selected: string | null = null;
  private compare: string | null = null;
  private view: "graph" | "layers" = "graph";
  private query = "";
  /** "all": one colour scale over every logged step of both runs (the default); "step": this step's range */
  private scaleMode: "all" | "step" = "all";
  private readonly hierarchies = new Map<string, Hierarchy>();
  private readonly histories = new Map<string, HistoryState>();
  private readonly layoutClient: LayoutClient;
  private readonly main: Pane;
  private other: Pane | null = null;
  private renderSeq = 0;
  private renderedData: { model: GraphModel | null; other: GraphModel | null; selected: string | null; scale: MagnitudeScale | null } = { model: null, other: null, selected: null, scale: null };
  private stepTimer: number | undefined;
  private loadSeq = 0;
  private readonly ui: {
    run: HTMLSelectElement;
    tag: HTMLSelectElement;
    slider: HTMLInputElement;
    stepLabel: HTMLOutputElement;
    compare: HTMLSelectElement;
    scaleStep: HTMLInputElement;
    graphTab: HTMLButtonElement;
    layersTab: HTMLButtonElement;
    search: HTMLInputElement;
    results: HTMLElement;
    banner: HTMLElement;
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
      stepLabel: el("output", { id: "gf-step-label", for: "gf-step" }),
      compare: el("select", { id: "gf-compare", "aria-label": "compare with run" }),
      scaleStep: el("input", { id: "gf-scale-step", type: "checkbox", title: "colour by this step's range instead of the range over all logged steps" }),
      graphTab: el("button", { type: "button", id: "gf-view-graph", "aria-pressed": "true" }, "Graph"),
      layersTab: el("button", { type: "button", id: "gf-view-layers", "aria-pressed": "false" }, "Layers"),
      search: el("input", { id: "gf-search", type: "search", placeholder: "Search ops or variables (regex)  /", "aria-label": "search ops or variables by regular expression", autocomplete: "off" }),
      results: el("div", { id: "gf-search-results", class: "gf-search-results", role: "listbox", hidden: true }),
      banner: el("section", { id: "gf-banner", role: "status", "aria-live": "polite" }),
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
        el("label", {}, "Step", this.ui.slider, this.ui.stepLabel),
        el("label", {}, "Compare with", this.ui.compare),
        el("label", {}, this.ui.scaleStep, "this step only"),
        el("div", { class: "gf-tabs", role: "group", "aria-label": "view" }, this.ui.graphTab, " ", this.ui.layersTab),
        el("div", { class: "gf-search" }, this.ui.search, this.ui.results),
      ),
      this.ui.banner,
      el("div", { class: "gf-body" }, el("div", { class: "gf-main" }, this.ui.panes, this.ui.layers, this.ui.status), this.ui.details),
    );
    host.appendChild(this.root);
    this.main = this.makePane("op graph");
    this.ui.panes.append(this.main.element);
    this.bindToolbar();
  }

  async start(): Promise<void> {
    watchDarkMode((dark) => (this.root.dataset.theme = dark ? "dark" : "light"));
    const url = readViewState(readHash());
    this.applyUrlState(url);
    listenForReloads(() => {
      this.histories.clear();
      void this.loadAll();
    });
    await this.loadAll();
  }

  // ---- loading ---------------------------------------------------------------------------------

  private applyUrlState(url: ViewState): void {
    this.run = url.run ?? "";
    this.tag = url.tag ?? "";
    this.step = url.step ?? null;
    this.selected = url.op ?? null;
    this.compare = url.compare ?? null;
    this.view = url.view ?? "graph";
    this.query = url.q ?? "";
    this.scaleMode = url.scale === "step" ? "step" : "all";
    this.ui.scaleStep.checked = this.scaleMode === "step";
    this.ui.search.value = this.query;
    if (url.expanded) {
      this.main.expanded = new Set([ROOT_ID, ...url.expanded]);
      this.main.expandedIsDefault = false;
    }
  }

  private async loadRuns(): Promise<void> {
    this.runs = await api.runs();
    const runs = Object.keys(this.runs).sort();
    if (runs.length === 0) throw new Error("No gradflow data in this logdir. Log some with tb_gradflow.summary.gradflow(...).");
    if (!this.runs[this.run]) this.run = runs.find((r) => Object.keys(this.runs[r]).length) ?? runs[0];
    const tags = Object.keys(this.runs[this.run]).sort();
    if (!this.runs[this.run][this.tag]) this.tag = tags[0];
    if (this.compare && !this.runs[this.compare]?.[this.tag]) this.compare = null;
    fillSelect(this.ui.run, runs, this.run);
    fillSelect(this.ui.tag, tags, this.tag);
    const others = runs.filter((r) => r !== this.run && this.runs[r][this.tag]);
    fillSelect(this.ui.compare, ["", ...others], this.compare ?? "", (r) => (r ? r : "— none —"));
  }

  private async loadSteps(): Promise<void> {
    const d = await api.diagnosis(this.run, this.tag);
    this.steps = d.steps;
    if (this.step !== null && !this.steps.includes(this.step)) this.step = nearestStep(this.steps, this.step);
    this.syncSlider();
  }

  private syncSlider(): void {
    const s = this.ui.slider;
    s.max = String(Math.max(0, this.steps.length - 1));
    const step = this.currentStep();
    s.value = String(Math.max(0, this.steps.indexOf(step)));
    setText(this.ui.stepLabel, `${step}${this.step === null ? " (latest)" : ""} · ${this.steps.length} logged`);
    s.setAttribute("aria-valuetext", `step ${step}`);
  }

  private currentStep(): number {
    return this.step ?? this.steps[this.steps.length - 1] ?? 0;
  }

  /** Fetches the graph(s) of the current run, tag and step and renders them. */
  private async loadGraphs(anchor?: string): Promise<void> {
    const seq = ++this.loadSeq;
    const step = this.currentStep();
    const [mine, mineTold, theirs] = await Promise.all([
      api.graph(this.run, this.tag, step),
      api.diagnosis(this.run, this.tag, step),
      this.compare ? this.fetchCompared(this.compare, step) : Promise.resolve(null),
    ]);
    if (seq !== this.loadSeq) return; // a newer request is in flight
    this.setPaneModel(this.main, buildModel(mine), mineTold);
    if (theirs) {
      if (!this.other) {
        this.other = this.makePane(`op graph of ${this.compare}`);
        this.ui.panes.append(this.other.element);
      }
      this.setPaneModel(this.other, buildModel(theirs[0]), theirs[1]);
    } else if (this.other) {
      this.other.element.remove();
      this.other = null;
    }
    await this.render(anchor);
  }

  private async fetchCompared(run: string, step: number): Promise<[GraphResponse, DiagnosisResponse]> {
    let g: GraphResponse;
    try {
      g = await api.graph(run, this.tag, step);
    } catch (e) {
      if (!(e instanceof RouteError && e.status === 404)) throw e;
      g = await api.graph(run, this.tag); // no such step there: its last
    }
    return [g, await api.diagnosis(run, this.tag, g.step)];
  }

  private setPaneModel(pane: Pane, model: GraphModel, diagnosis: DiagnosisResponse): void {
    const key = `${model.run}\u0000${model.tag}\u0000${model.graphId}`;
    let h = this.hierarchies.get(key);
    if (!h) {
      h = buildHierarchy(model.ops);
      this.hierarchies.set(key, h);
    }
    if (pane.expandedIsDefault && pane.hierarchy !== h) {
      pane.expanded = defaultExpansion(h, starvingCuts(model));
    }
    pane.model = model;
    pane.diagnosis = diagnosis;
    pane.hierarchy = h;
  }

  /** Runs, then the steps of the chosen run and tag, then its graph(s): on start, reload and
   * a change of run or tag. Errors are shown in the tab. */
  private async loadAll(): Promise<void> {
    try {
      await this.loadRuns();
      await this.loadSteps();
      await this.loadGraphs();
    } catch (e) {
      this.showError(e);
    }
  }

  // ---- rendering ---------------------------------------------------------------------------------

  private async render(anchor?: string): Promise<void> {
    const model = this.main.model;
    if (!model) return;
    this.root.dataset.status = "rendering";
    // an eager fallback logs variables only: say why there is no graph
    setText(this.ui.status, model.ops.length ? "" : `No op graph at this step. ${model.fallbackReason ?? ""}`);
    this.syncSlider();
    // the banner, legends and details depend only on the data and the selection: redraw on change
    const dataChanged = this.renderedData.model !== model || this.renderedData.other !== (this.other?.model ?? null);
    const selectionChanged = dataChanged || this.renderedData.selected !== this.selected;
    const told = tieToGraph(this.main.diagnosis!, model);
    const otherTold = this.other?.model && this.other.diagnosis ? { run: this.other.model.run, told: tieToGraph(this.other.diagnosis, this.other.model) } : null;
    if (dataChanged) renderBanner(this.ui.banner, told, otherTold, model.run, (op) => this.selectOp(op, true), this.main.diagnosis!.first_nonfinite_step);
    this.ui.graphTab.setAttribute("aria-pressed", String(this.view === "graph"));
    this.ui.layersTab.setAttribute("aria-pressed", String(this.view === "layers"));
    this.ui.panes.hidden = this.view !== "graph";
    this.ui.layers.hidden = this.view !== "layers";
    if (this.view === "layers") {
      const range = unionRange(this.main.diagnosis!.norm_range.variables, this.other?.diagnosis?.norm_range.variables);
      renderLayers(this.ui.layers, model, this.other?.model ?? null, range, (name) => this.selectVariable(name));
    }
    const selectedIndex = this.selectedIndex();
    const matches = this.matchesFor(model);
    const panes = this.other ? [this.main, this.other] : [this.main];
    const scale = this.colourScale(panes);
    const scaleChanged = this.renderedData.scale?.lo !== scale?.lo || this.renderedData.scale?.hi !== scale?.hi;
    await Promise.all(
      panes.map((pane) => {
        setText(pane.title, this.other ? `${pane.model!.run} · step ${pane.model!.step}` : "");
        if (dataChanged || scaleChanged) this.renderLegend(pane, scale);
        const m = pane.model!;
        const sel = pane === this.main ? selectedIndex : this.selected ? (m.opIndex.get(this.selected) ?? -1) : -1;
        const paneMatches = pane === this.main ? matches : this.matchesFor(m);
        const focus = sel >= 0 ? sel : starvingCuts(m)[0];
        return pane.view.show({ model: m, hierarchy: pane.hierarchy!, expanded: pane.expanded, selected: sel, matches: paneMatches, anchor, focus, scale });
      }),
    );
    if (selectionChanged) this.renderDetailsPanel();
    this.renderedData = { model, other: this.other?.model ?? null, selected: this.selected, scale };
    this.writeUrl();
    await nextPaint();
    this.root.dataset.status = "ready";
    this.root.dataset.run = model.run;
    this.root.dataset.step = String(model.step);
    this.root.dataset.layoutMs = String(this.main.view.layoutMillis);
    this.root.dataset.renderSeq = String(++this.renderSeq);
    if (!this.root.dataset.firstPaintMs) this.root.dataset.firstPaintMs = performance.now().toFixed(0);
  }

  private matchCache: { model: GraphModel | null; query: string; matches: Set<number> } = { model: null, query: "", matches: new Set() };

  /** Ops matching the search (cached: a toggle or a pan must not rescan 20,000 names). */
  private matchesFor(model: GraphModel): Set<number> {
    if (this.matchCache.model !== model || this.matchCache.query !== this.query) {
      this.matchCache = { model, query: this.query, matches: matchingOps(this.query, model.ops, model.variables) };
    }
    return this.matchCache.matches;
  }

  /** One colour scale for every pane: the runs' range over all logged steps, or (toggle) this step's. */
  private colourScale(panes: Pane[]): MagnitudeScale | null {
    if (this.scaleMode === "all") return scaleOfRange(unionRange(...panes.map((p) => p.diagnosis?.norm_range.ops)));
    return magnitudeScale(panes.flatMap((p) => p.model!.ops.map((op) => (op.state === "flowing" ? op.norm : null))));
  }

  private renderLegend(pane: Pane, scale: MagnitudeScale | null): void {
    const ramp = el("span", { class: "gf-swatch", "data-kind": "ramp" });
    ramp.style.background = `linear-gradient(to right, ${magnitudeColor(0)}, ${magnitudeColor(0.5)}, ${magnitudeColor(1)})`;
    const open = pane.legend.open;
    clear(pane.legend);
    const item = (kind: string, text: string): Node[] => [el("span", { class: "gf-swatch", "data-kind": kind }), el("span", {}, text)];
    const range = scale ? `${formatNorm(10 ** scale.lo)} … ${formatNorm(10 ** scale.hi)}` : "";
    const over = this.scaleMode === "all" ? (this.other ? "all steps, both runs" : "all steps") : "this step only";
    pane.legend.append(
      el("summary", { title: "legend" }, ramp, " ", el("span", { "data-field": "range", "data-scale": this.scaleMode }, scale ? `|grad| ${range}` : "flowing"), el("span", { class: "gf-muted" }, ` (log, ${over})`)),
      el(
        "div",
        { class: "gf-legend-items" },
        ...item("zero", "zero gradient"),
        ...item("none", "no gradient (starved, dimmed)"),
        ...item("nonfinite", "NaN / Inf gradient"),
        ...item("cut", "cut point (✂ cause)"),
        ...item("live", "edge carries gradient"),
        ...item("dead", "edge carries none"),
      ),
    );
    pane.legend.open = open;
  }

  private selectedIndex(): number {
    const m = this.main.model;
    if (!m || !this.selected) return -1;
    return m.opIndex.get(this.selected) ?? -1;
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
    renderDetails(this.ui.details, m, index, history, (i) => this.selectOp(i, true), () => this.clearSelection(), cut);
  }

  private historyArrived(key: string, state: HistoryState): void {
    this.histories.set(key, state);
    const m = this.main.model;
    const index = this.selectedIndex();
    if (m && index >= 0 && key === `${m.run}\u0000${m.tag}\u0000${m.ops[index].name}`) this.renderDetailsPanel();
  }

  private writeUrl(): void {
    const state: ViewState = { run: this.run, tag: this.tag };
    if (this.step !== null) state.step = this.step;
    if (this.selected) state.op = this.selected;
    if (!this.main.expandedIsDefault) state.expanded = [...this.main.expanded].filter((g) => g !== ROOT_ID).sort();
    if (this.compare) state.compare = this.compare;
    if (this.view !== "graph") state.view = this.view;
    if (this.query) state.q = this.query;
    if (this.scaleMode === "step") state.scale = "step";
    try {
      writeHash(writeViewState(readHash(), state));
    } catch {
      // the URL is a convenience; never let it break the tab
    }
  }

  private showError(e: unknown): void {
    this.root.dataset.status = "error";
    setText(this.ui.status, errorText(e));
  }

  // ---- interaction -------------------------------------------------------------------------------

  private makePane(label: string): Pane {
    const pane: Pane = {
      view: new GraphView(this.layoutClient, {
        selectOp: (i) => (pane === this.main ? this.selectOp(i, false) : this.selectByName(pane.model?.ops[i]?.name ?? "")),
        toggleGroup: (id) => this.toggleGroup(pane, id),
      }, label),
      element: el("div", { class: "gf-pane" }),
      title: el("div", { class: "gf-pane-title" }),
      legend: el("details", { class: "gf-legend", "aria-label": "legend" }),
      model: null,
      diagnosis: null,
      hierarchy: null,
      expanded: new Set([ROOT_ID]),
      expandedIsDefault: true,
    };
    const button = (text: string, label: string, action: () => void): HTMLButtonElement => {
      const b = el("button", { type: "button", "aria-label": label, title: label }, text);
      b.addEventListener("click", action);
      return b;
    };
    const controls = el(
      "div",
      { class: "gf-controls" },
      button("Fit", "fit the graph to the view (0)", () => pane.view.fit()),
      button("+", "zoom in (+)", () => pane.view.zoomBy(1.25)),
      button("−", "zoom out (-)", () => pane.view.zoomBy(0.8)),
      button("Collapse all", "collapse every group", () => this.collapseAll(pane)),
    );
    pane.view.element.append(controls, pane.legend);
    pane.element.append(pane.title, pane.view.element);
    return pane;
  }

  private selectOp(index: number, reveal: boolean): void {
    const m = this.main.model;
    if (!m || !m.ops[index]) return;
    this.selected = m.ops[index].name;
    if (this.view !== "graph" && reveal) this.view = "graph";
    if (reveal) {
      const h = this.main.hierarchy!;
      const before = this.main.expanded.size;
      for (const g of ancestors(h.opGroup[index])) this.main.expanded.add(g.id);
      if (this.main.expanded.size !== before) this.main.expandedIsDefault = false;
    }
    void this.render().then(() => {
      if (reveal) {
        this.main.view.centreOnOp(index);
        this.main.view.focusOp(index);
      }
    });
  }

  private selectByName(name: string): void {
    const i = this.main.model?.opIndex.get(name);
    if (i !== undefined) this.selectOp(i, true);
  }

  private selectVariable(name: string): void {
    const m = this.main.model;
    const v = m?.variables.find((x) => x.name === name);
    if (v && v.readers.length) this.selectOp(v.readers[0], true);
  }

  private clearSelection(): void {
    this.selected = null;
    void this.render();
  }

  private toggleGroup(pane: Pane, id: string): void {
    if (id === ROOT_ID) return;
    if (pane.expanded.has(id)) {
      for (const g of [...pane.expanded]) if (g === id || g.startsWith(`${id}/`)) pane.expanded.delete(g);
    } else pane.expanded.add(id);
    pane.expandedIsDefault = false;
    void this.render(id);
  }

  private collapseAll(pane: Pane): void {
    pane.expanded = new Set([ROOT_ID]);
    pane.expandedIsDefault = false;
    void this.render();
  }

  private bindToolbar(): void {
    const ui = this.ui;
    const guarded = (f: () => Promise<void>) => () => void f().catch((e) => this.showError(e));
    ui.run.addEventListener("change", () => {
      this.run = ui.run.value;
      if (!this.runs[this.run][this.tag]) this.tag = Object.keys(this.runs[this.run]).sort()[0];
      if (this.compare === this.run) this.compare = null;
      void this.loadAll();
    });
    ui.tag.addEventListener("change", () => {
      this.tag = ui.tag.value;
      void this.loadAll();
    });
    ui.compare.addEventListener("change", guarded(async () => {
      this.compare = ui.compare.value || null;
      await this.loadGraphs();
    }));
    ui.slider.addEventListener("input", () => {
      const i = Number(ui.slider.value);
      const step = this.steps[i];
      if (step === undefined) return;
      this.step = i === this.steps.length - 1 ? null : step;
      setText(ui.stepLabel, `${step} · ${this.steps.length} logged`);
      window.clearTimeout(this.stepTimer);
      this.stepTimer = window.setTimeout(guarded(() => this.loadGraphs()), STEP_DEBOUNCE_MS);
    });
    ui.scaleStep.addEventListener("change", () => {
      this.scaleMode = ui.scaleStep.checked ? "step" : "all";
      void this.render();
    });
    ui.graphTab.addEventListener("click", () => this.setView("graph"));
    ui.layersTab.addEventListener("click", () => this.setView("layers"));
    let searchTimer: number | undefined;
    ui.search.addEventListener("input", () => {
      window.clearTimeout(searchTimer);
      searchTimer = window.setTimeout(() => this.runSearch(), 150);
    });
    ui.search.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        this.runSearch();
        (ui.results.querySelector("button") as HTMLButtonElement | null)?.click();
      } else if (e.key === "ArrowDown") {
        e.preventDefault();
        (ui.results.querySelector("button") as HTMLButtonElement | null)?.focus();
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
      } else if (e.key === "Escape" && !typing && this.selected) {
        this.clearSelection();
      }
    });
  }

  private setView(view: "graph" | "layers"): void {
    this.view = view;
    void this.render();
  }

  private runSearch(): void {
    const ui = this.ui;
    this.query = ui.search.value;
    const m = this.main.model;
    clear(ui.results);
    if (!m || !this.query) {
      ui.results.hidden = true;
      void this.render();
      return;
    }
    const result = search(this.query, m.ops, m.variables, 50);
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
    void this.render();
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

function nearestStep(steps: number[], step: number): number | null {
  if (steps.length === 0) return null;
  let best = steps[0];
  for (const s of steps) if (Math.abs(s - step) < Math.abs(best - step)) best = s;
  return best;
}

/** Ops of the cut points that starve variables (the ones worth opening groups for). */
function starvingCuts(model: GraphModel): number[] {
  return model.response.cut_points.filter((c) => c.starved_variables.length > 0).map((c) => c.op);
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function nextPaint(): Promise<void> {
  return new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
}
