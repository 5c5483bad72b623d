// One graph pane: its view, title, controls and legend, and what it shows (model and
// hierarchy). The run's pane and Compare's pane are the same kind of thing.
import { magnitudeColor } from "./colors";
import type { MagnitudeScale } from "./colors";
import { clear, el } from "./dom";
import { formatNorm } from "./format";
import { GraphView } from "./graph_view";
import type { GraphViewEvents } from "./graph_view";
import type { Hierarchy } from "./hierarchy";
import type { LayoutClient } from "./layout_client";
import type { GraphModel } from "./model";
import { renderOverview } from "./overview";

export interface Pane {
  view: GraphView;
  element: HTMLElement;
  title: HTMLElement;
  legend: HTMLDetailsElement;
  /** the overview level: top groups as readable cards (hidden unless asked for) */
  overview: HTMLElement;
  overviewButton: HTMLButtonElement;
  actions: PaneActions;
  model: GraphModel | null;
  /** the colour scale the pane was last drawn with (the overview's cards use it too) */
  scale?: MagnitudeScale | null;
  hierarchy: Hierarchy | null;
}

export interface PaneActions extends GraphViewEvents {
  collapseAll(): void;
  /** open this group (and those above it) in the graph and show it */
  openGroup(id: string): void;
  /** select this op and show it */
  revealOp(op: number): void;
}

export function makePane(layoutClient: LayoutClient, label: string, actions: PaneActions): Pane {
  const view = new GraphView(layoutClient, actions, label);
  const pane: Pane = {
    view,
    element: el("div", { class: "gf-pane" }),
    title: el("div", { class: "gf-pane-title" }),
    legend: el("details", { class: "gf-legend", "aria-label": "legend" }),
    overview: el("div", { class: "gf-overview", hidden: true }),
    actions,
    overviewButton: el("button", { type: "button", class: "gf-overview-toggle", "aria-pressed": "false", title: "overview: the model's top groups, readable at any size (o)" }, "Overview"),
    model: null,
    hierarchy: null,
  };
  const button = (text: string, title: string, action: () => void): HTMLButtonElement => {
    const b = el("button", { type: "button", "aria-label": title, title }, text);
    b.addEventListener("click", action);
    return b;
  };
  pane.overviewButton.addEventListener("click", () => showOverview(pane, pane.overview.hidden === true));
  const controls = el(
    "div",
    { class: "gf-controls" },
    pane.overviewButton,
    button("Fit", "fit the graph to the view (0)", () => view.fit()),
    button("+", "zoom in (+)", () => view.zoomBy(1.25)),
    button("−", "zoom out (-)", () => view.zoomBy(0.8)),
    button("Collapse all", "collapse every group", () => actions.collapseAll()),
  );
  view.element.append(pane.overview, controls, pane.legend);
  pane.element.append(pane.title, view.element);
  return pane;
}

/** The legend: one line (the colour ramp and its range), the rest opens on click. */
export function renderLegend(pane: Pane, scale: MagnitudeScale | null, over: string, mode: "all" | "step"): void {
  const ramp = el("span", { class: "gf-swatch", "data-kind": "ramp" });
  ramp.style.background = `linear-gradient(to right, ${magnitudeColor(0)}, ${magnitudeColor(0.5)}, ${magnitudeColor(1)})`;
  const open = pane.legend.open;
  pane.scale = scale;
  clear(pane.legend);
  const item = (kind: string, text: string): Node[] => [el("span", { class: "gf-swatch", "data-kind": kind }), el("span", {}, text)];
  const range = scale ? `|grad| ${formatNorm(10 ** scale.lo)} … ${formatNorm(10 ** scale.hi)}` : "flowing";
  pane.legend.append(
    el("summary", { title: "legend" }, ramp, " ", el("span", { "data-field": "range", "data-scale": mode }, range), el("span", { class: "gf-muted" }, ` (log, ${over})`)),
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

/** Shows (or hides) the overview of the pane's graph at its current step. */
export function showOverview(pane: Pane, open: boolean): void {
  pane.overview.hidden = !open;
  pane.overviewButton.setAttribute("aria-pressed", String(open));
  if (!open || !pane.model || !pane.hierarchy) return;
  const close = (): void => showOverview(pane, false);
  renderOverview(
    pane.overview,
    pane.hierarchy,
    pane.model.ops,
    pane.view.groupSummaries,
    (id) => (close(), pane.actions.openGroup(id)),
    (op) => (close(), pane.actions.revealOp(op)),
    pane.scale ?? null,
  );
}
