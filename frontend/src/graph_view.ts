// The op graph: an SVG with pan and zoom, laid out by the worker, drawn only where it is on
// screen. Structure (graph version + open groups) decides the layout; a step's values only
// restyle what is drawn.
import type { MagnitudeScale } from "./colors";
import { groupHasDeadGate, presenceBar, presenceText } from "./presence";
import { magnitudeColor, magnitudeFraction, magnitudeTextColor } from "./colors";
import { setText, svg } from "./dom";
import type { Group, GroupSummary, Hierarchy } from "./hierarchy";
import { summarizeGroups } from "./hierarchy";
import type { LayoutClient } from "./layout_client";
import type { Box, LayoutResult } from "./layout_protocol";
import type { GraphModel, Op } from "./model";
import { edgeFlow, groupNodeId, opNodeId, visibleGraph } from "./visible";
import type { VisibleEdge, VisibleGraph, VisibleNode } from "./visible";
import { fitText, groupName, groupTitle, LABEL_PX, nodeLines, nodeSize } from "./node_text";
import type { MiniItem } from "./minimap";
import { Minimap } from "./minimap";
import type { Rect, Transform } from "./viewport";
import { intersects, Viewport, visibleRect } from "./viewport";

export interface GraphViewEvents {
  selectOp(index: number): void;
  toggleGroup(groupId: string): void;
  /** the user panned or zoomed (linked panes follow) */
  viewChanged?(t: Transform): void;
}

export interface GraphInput {
  model: GraphModel;
  hierarchy: Hierarchy;
  expanded: ReadonlySet<string>;
  selected: number;
  matches: ReadonlySet<number>;
  /** A group whose on-screen position should stay put across a relayout (the one clicked). */
  anchor?: string;
  /** Where the first view looks when the whole graph is too small to read: this op (a cut). */
  focus?: number;
  /** The colour scale of flowing norms, shared by the panes (log10 of the range's ends). */
  scale: MagnitudeScale | null;
  /** Ops to mark: the path from a starved op through its cut to the loss, a cut's starved region. */
  path?: ReadonlySet<number>;
  region?: ReadonlySet<number>;
  /** A graph loaded group by group (progressive.ts) brings what is drawn and the groups' counts
   * itself: its groups are not all made of loaded ops. */
  given?: { visible: VisibleGraph; summaries: Map<string, GroupSummary> };
}

/** Labels are drawn only where they are at least this tall on screen (level of detail). */
const MIN_LABEL_PX = 7;
/** Below this zoom a fitted graph shows no labels: the first view centres on the focus op
 * instead, at a zoom where labels are drawn (a 17-op model fitted at 0.6 showed none). */
const READABLE_ZOOM = MIN_LABEL_PX / LABEL_PX;

interface Item {
  id: string;
  kind: "node" | "cluster" | "edge";
  bounds: Rect;
  node?: VisibleNode;
  group?: Group;
  edge?: VisibleEdge;
  points?: Array<{ x: number; y: number }>;
  box?: Box;
}

let instances = 0;

export class GraphView {
  readonly element: HTMLDivElement;
  private readonly svgRoot: SVGSVGElement;
  private readonly world: SVGGElement;
  private readonly layers: { clusters: SVGGElement; edges: SVGGElement; nodes: SVGGElement };
  private readonly markerId: string;
  private input: GraphInput | null = null;
  private summaries = new Map<string, GroupSummary>();
  private scale: MagnitudeScale | null = null;
  private visible: VisibleGraph | null = null;
  private layout: LayoutResult | null = null;
  private layoutKey = "";
  private generation = 0;
  private items: Item[] = [];
  private itemById = new Map<string, Item>();
  private drawn = new Map<string, SVGGElement | SVGPathElement>();
  /** pan and zoom; this class only draws what it shows */
  readonly viewport: Viewport;
  readonly minimap: Minimap;
  private fitted = false;
  private cullQueued = false;

  constructor(private readonly layoutClient: LayoutClient, private readonly events: GraphViewEvents, label: string) {
    this.markerId = `gf-arrow-${++instances}`;
    this.element = document.createElement("div");
    this.element.className = "gf-graph";
    this.world = svg("g", { class: "gf-world" });
    this.layers = {
      clusters: svg("g", { class: "gf-clusters" }),
      edges: svg("g", { class: "gf-edges" }),
      nodes: svg("g", { class: "gf-nodes" }),
    };
    this.world.append(this.layers.clusters, this.layers.edges, this.layers.nodes);
    this.svgRoot = svg(
      "svg",
      { class: "gf-svg", tabindex: 0, role: "application", "aria-label": label },
      svg(
        "defs",
        {},
        svg(
          "marker",
          { id: this.markerId, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
          svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "gf-arrowhead" }),
        ),
      ),
      this.world,
    );
    this.element.append(this.svgRoot);
    this.viewport = new Viewport(this.svgRoot, (immediate, byUser) => this.applyTransform(immediate, byUser));
    this.viewport.keep = () => this.selectedPoint();
    this.minimap = new Minimap((x, y) => this.viewport.centreOn(x, y, this.transform.k, false, true));
    this.element.append(this.minimap.element);
    this.bindEvents();
  }

  get currentTransform(): Transform {
    return this.viewport.transform;
  }

  private get transform(): Transform {
    return this.viewport.transform;
  }

  /** Where the selected op is drawn (graph coordinates), if it is. */
  private selectedPoint(): { x: number; y: number } | null {
    const i = this.input?.selected ?? -1;
    const nodeId = i >= 0 ? this.visible?.nodeOfOp[i] : undefined;
    const box = nodeId ? this.itemById.get(nodeId)?.box : undefined;
    return box ? { x: box.x, y: box.y } : null;
  }

  /** Draws `input`; resolves once it is on screen. Relayouts only when the structure changed. */
  async show(input: GraphInput): Promise<void> {
    const previous = this.input;
    this.input = input;
    if (input.given) this.summaries = input.given.summaries;
    else if (previous?.model !== input.model || previous.hierarchy !== input.hierarchy) {
      this.summaries = summarizeGroups(input.hierarchy, input.model.ops);
    }
    this.scale = input.scale;
    const key = `${input.model.graphId}|${[...input.expanded].sort().join("\u0000")}`;
    if (key === this.layoutKey && this.layout && previous?.hierarchy === input.hierarchy) {
      this.restyle();
      if (previous?.model !== input.model) this.drawMinimap();
      return;
    }
    const generation = ++this.generation;
    const visible = input.given?.visible ?? visibleGraph(input.model.ops, input.hierarchy, input.expanded);
    const sized = visible.nodes.map((n) => {
      const size = nodeSize(nodeLines(input.model, n, this.summaries.get(n.group?.id ?? "")));
      return { id: n.id, width: size.width, height: size.height, cluster: n.cluster };
    });
    const anchorBefore = input.anchor ? this.screenBoxOfGroup(input.anchor) : null;
    const layout = await this.layoutClient.layout(
      {
        nodes: sized,
        clusters: visible.clusters.map((c) => ({ id: c.id, cluster: c.cluster })),
        edges: visible.edges.map((e) => ({ id: e.id, from: e.from, to: e.to })),
      },
      this.markerId, // one caller per view: its newer layout cancels the older one
      (progress) => (this.element.dataset.layout = progress.kind),
    );
    if (layout === null || generation !== this.generation) return; // a newer show() superseded this one
    this.element.dataset.layout = "done";
    this.visible = visible;
    this.layout = layout;
    this.layoutKey = key;
    this.buildItems();
    this.keepMovableNodes();
    this.restyle();
    this.drawMinimap();
    const vp = this.viewport;
    vp.content = { x: 0, y: 0, width: layout.width, height: layout.height };
    if (!this.fitted) {
      this.fitted = true;
      vp.noteSize();
      vp.fit();
      if (vp.transform.k < READABLE_ZOOM) this.firstView(input.focus ?? -1);
    } else if (anchorBefore && input.anchor) {
      const after = this.graphBoxOfGroup(input.anchor);
      if (after) {
        // keep the clicked group's top-left corner where it was on screen
        const k = vp.transform.k;
        vp.set({ k, x: anchorBefore.x - (after.x - after.width / 2) * k, y: anchorBefore.y - (after.y - after.height / 2) * k }, true);
        // a big open box's corner may lie off screen: then show the collapsed node itself
        const { width, height } = vp.size();
        const t = vp.transform;
        const onScreen = intersects({ x: -t.x / t.k, y: -t.y / t.k, width: width / t.k, height: height / t.k }, { x: after.x - after.width / 2, y: after.y - after.height / 2, width: after.width, height: after.height });
        if (!onScreen) vp.centreOn(after.x, after.y, k);
      }
    }
    this.applyTransform(true, false);
  }

  fit(): void {
    this.viewport.fit(true);
  }

  /** Zooms to a readable scale around the focus op, or the top of the graph. */
  private firstView(focus: number): void {
    const nodeId = focus >= 0 ? this.visible?.nodeOfOp[focus] : undefined;
    const box = nodeId ? this.itemById.get(nodeId)?.box : undefined;
    const k = READABLE_ZOOM + 0.15;
    if (box) this.viewport.centreOn(box.x, box.y, k, false);
    else this.viewport.set({ k, x: this.viewport.size().width / 2 - ((this.layout?.width ?? 0) / 2) * k, y: 20 });
  }

  zoomBy(factor: number): void {
    this.viewport.zoomBy(factor, true);
  }

  panBy(dx: number, dy: number): void {
    this.viewport.panBy(dx, dy, true);
  }

  /** Follows another pane (linked Compare): no viewChanged back. */
  setTransform(t: Transform): void {
    this.viewport.set(t, false, false);
  }

  /** Centres the view on an op (or the collapsed group that shows it). */
  centreOnOp(index: number): boolean {
    const nodeId = this.visible?.nodeOfOp[index];
    const item = nodeId ? this.itemById.get(nodeId) : undefined;
    if (!item?.box) return false;
    this.viewport.centreOn(item.box.x, item.box.y, Math.max(this.transform.k, 0.8));
    return true;
  }

  /** Shows a group: its node, or the top of its open box. */
  centreOnGroup(id: string): boolean {
    const box = this.graphBoxOfGroup(id);
    if (!box) return false;
    const k = Math.max(this.transform.k, 0.8);
    const { height } = this.viewport.size();
    const top = box.y - box.height / 2;
    this.viewport.centreOn(box.x, box.height * k > height ? top + height / 2 / k - 20 / k : box.y, k, true, true);
    return true;
  }

  /** Moves keyboard focus to the drawn node of an op, if it is drawn. */
  focusOp(index: number): void {
    const nodeId = this.visible?.nodeOfOp[index];
    const node = nodeId ? this.drawn.get(nodeId) : undefined;
    (node)?.focus({ preventScroll: true });
  }

  /** Group summaries of the shown step (for the overview). */
  get groupSummaries(): ReadonlyMap<string, GroupSummary> {
    return this.summaries;
  }

  private drawMinimap(): void {
    const input = this.input;
    if (!input || !this.layout) return;
    const kinds: MiniItem[] = [];
    for (const item of this.items) {
      if (item.kind === "edge") continue;
      if (item.kind === "cluster") {
        kinds.push({ bounds: item.bounds, kind: "cluster" });
        continue;
      }
      const n = item.node!;
      if (n.kind === "op") {
        const op = input.model.ops[n.op];
        kinds.push({ bounds: item.bounds, kind: op.cause && op.starved.length ? "cut" : op.state });
      } else {
        const sum = this.summaries.get(n.group!.id);
        kinds.push({ bounds: item.bounds, kind: sum?.cuts.length ? "cut" : sum && sum.counts.none === n.group!.size ? "none" : (sum?.worst ?? "none") });
      }
    }
    const css = getComputedStyle(this.element);
    const v = (name: string): string => css.getPropertyValue(name).trim() || "#888";
    const colours: Record<MiniItem["kind"], string> = {
      flowing: v("--gf-flow-edge"),
      zero: v("--gf-zero"),
      none: v("--gf-none-stroke"),
      nonfinite: v("--gf-nonfinite"),
      cut: v("--gf-cut"),
      cluster: v("--gf-border"),
    };
    this.minimap.draw(kinds, { x: 0, y: 0, width: this.layout.width, height: this.layout.height }, (k) => colours[k]);
    this.minimap.showView(this.transform, this.viewport.size());
  }

  get layoutMillis(): number {
    return this.layout?.millis ?? 0;
  }

  get drawnCount(): number {
    return this.drawn.size;
  }

  // ---- items and culling ---------------------------------------------------------------------

  private buildItems(): void {
    const layout = this.layout!;
    const visible = this.visible!;
    const items: Item[] = [];
    const boundsOf = (b: Box): Rect => ({ x: b.x - b.width / 2, y: b.y - b.height / 2, width: b.width, height: b.height });
    for (const c of visible.clusters) {
      const box = layout.boxes[c.id];
      if (box) items.push({ id: c.id, kind: "cluster", bounds: boundsOf(box), group: c.group, box });
    }
    for (const n of visible.nodes) {
      const box = layout.boxes[n.id];
      if (box) items.push({ id: n.id, kind: "node", bounds: boundsOf(box), node: n, box });
    }
    for (const e of visible.edges) {
      const points = layout.edges[e.id];
      if (!points || points.length === 0) continue;
      let x0 = Infinity;
      let y0 = Infinity;
      let x1 = -Infinity;
      let y1 = -Infinity;
      for (const p of points) {
        x0 = Math.min(x0, p.x);
        y0 = Math.min(y0, p.y);
        x1 = Math.max(x1, p.x);
        y1 = Math.max(y1, p.y);
      }
      items.push({ id: `e:${e.id}`, kind: "edge", bounds: { x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1 }, edge: e, points });
    }
    this.items = items;
    this.itemById = new Map(items.map((i) => [i.id, i]));
  }

  /** After a relayout: nodes that still exist with the same size are moved, the rest redrawn. */
  private keepMovableNodes(): void {
    for (const [id, node] of this.drawn) {
      const item = this.itemById.get(id);
      const same = item?.kind === "node" && (node).dataset.size === `${item.bounds.width}x${item.bounds.height}`;
      if (same) {
        node.setAttribute("transform", `translate(${item.bounds.x.toFixed(1)},${item.bounds.y.toFixed(1)})`);
        continue;
      }
      if (item?.kind === "edge") {
        node.setAttribute("d", pathOf(item.points!));
        continue;
      }
      node.remove();
      this.drawn.delete(id);
    }
  }

  private cull(): void {
    if (!this.input) return;
    const { width, height } = this.viewport.size();
    const area = visibleRect(this.transform, width, height, 0.5);
    const keep = new Set<string>();
    for (const item of this.items) {
      if (!intersects(area, item.bounds)) continue;
      keep.add(item.id);
      if (!this.drawn.has(item.id)) this.drawItem(item);
    }
    for (const [id, node] of this.drawn) {
      if (!keep.has(id)) {
        node.remove();
        this.drawn.delete(id);
      }
    }
    this.element.dataset.drawn = String(this.drawn.size);
  }

  private restyle(): void {
    for (const [id, node] of this.drawn) {
      const item = this.itemById.get(id);
      if (item) this.paint(item, node);
    }
  }

  // ---- drawing ---------------------------------------------------------------------------------

  private drawItem(item: Item): void {
    let node: SVGGElement | SVGPathElement;
    if (item.kind === "edge") {
      node = svg("path", { class: "gf-edge", d: pathOf(item.points!), "marker-end": `url(#${this.markerId})` });
      this.layers.edges.appendChild(node);
    } else if (item.kind === "cluster") {
      node = this.drawCluster(item);
      this.layers.clusters.appendChild(node);
    } else {
      node = this.drawNode(item);
      this.layers.nodes.appendChild(node);
    }
    this.paint(item, node);
    this.drawn.set(item.id, node);
  }

  private drawCluster(item: Item): SVGGElement {
    const b = item.bounds;
    const group = item.group!;
    const header = svg(
      "g",
      { class: "gf-cluster-header", "data-action": "collapse", "data-group": group.id, tabindex: 0, role: "button" },
      svg("rect", { x: b.x, y: b.y, width: b.width, height: 20, rx: 6 }),
      svg("text", { x: b.x + 8, y: b.y + 14 }, fitText(`▾ ${groupName(group)}`, b.width - 16, true)),
      svg("title", {}, groupTitle(group)),
    );
    header.setAttribute("aria-label", `collapse group ${group.id}`);
    return svg(
      "g",
      { class: "gf-cluster", "data-group": group.id, "data-expanded": "true" },
      svg("rect", { class: "gf-cluster-box", x: b.x, y: b.y, width: b.width, height: b.height, rx: 8 }),
      header,
    );
  }

  private drawNode(item: Item): SVGGElement {
    const b = { x: 0, y: 0, width: item.bounds.width, height: item.bounds.height };
    const n = item.node!;
    const input = this.input!;
    const g = svg("g", { class: n.kind === "op" ? "gf-node gf-op" : "gf-node gf-group", "data-node-id": n.id, tabindex: 0, role: "button" });
    if (n.kind === "op") {
      const op = input.model.ops[n.op];
      g.setAttribute("data-op-name", op.name);
      g.setAttribute("data-op-type", op.type);
      if (op.cause) {
        g.setAttribute("data-cut", op.cause);
        if (op.starved.length === 0) g.setAttribute("data-harmless", "true");
        g.append(svg("polygon", { class: "gf-shape", points: octagon(b) }));
      } else {
        g.append(svg("rect", { class: "gf-shape", x: b.x, y: b.y, width: b.width, height: b.height, rx: 4 }));
      }
    } else {
      const group = n.group!;
      g.setAttribute("data-group", group.id);
      g.setAttribute("data-expanded", "false");
      g.append(
        svg("rect", { class: "gf-shape-back", x: b.x + 4, y: b.y + 4, width: b.width, height: b.height, rx: 8 }),
        svg("rect", { class: "gf-shape", x: b.x, y: b.y, width: b.width, height: b.height, rx: 8 }),
      );
    }
    const lines = nodeLines(input.model, n, this.summaries.get(n.group?.id ?? ""));
    lines.forEach((line, k) => {
      g.append(svg("text", { class: `gf-line gf-line-${line.kind}`, x: b.x + b.width / 2, y: b.y + 15 + k * 14, "text-anchor": "middle" }, line.text));
    });
    g.append(svg("title", {}, ""));
    g.setAttribute("transform", `translate(${item.bounds.x.toFixed(1)},${item.bounds.y.toFixed(1)})`);
    g.dataset.size = `${b.width}x${b.height}`;
    return g;
  }

  /** Sets everything that depends on the step's values (and selection / search). */
  private paint(item: Item, node: SVGGElement | SVGPathElement): void {
    const input = this.input!;
    const ops = input.model.ops;
    if (item.kind === "edge") {
      node.setAttribute("data-flow", edgeFlow(ops, item.edge!));
      const path = input.path;
      toggleAttr(node, "data-path", !!path && path.size > 0 && item.edge!.pairs.some(([a, b]) => path.has(a) && path.has(b)));
      return;
    }
    if (item.kind === "cluster") {
      const s = this.summaries.get(item.group!.id);
      node.setAttribute("data-state", s?.worst ?? "none");
      if (s?.cuts.length) node.setAttribute("data-has-cut", String(s.cuts.length));
      else node.removeAttribute("data-has-cut");
      return;
    }
    const n = item.node!;
    const shape = node.querySelector<SVGElement>(".gf-shape");
    const texts = node.querySelectorAll<SVGTextElement>("text");
    const lines = nodeLines(input.model, n, this.summaries.get(n.group?.id ?? ""));
    lines.forEach((line, k) => texts[k] && setText(texts[k], line.text));
    const title = node.querySelector("title");
    if (n.kind === "op") {
      const op = ops[n.op];
      node.setAttribute("data-state", op.state);
      node.setAttribute("aria-label", `${op.name}, ${op.type}, ${op.state}${op.cause ? `, cut point: ${op.cause}` : ""}`);
      const presence = presenceText(op);
      if (title) setText(title, `${op.name}\n${op.type} · ${op.state}${presence ? `\npresence: ${presence}` : ""}${op.source ? `\n${op.source}` : ""}`);
      this.colourFlowing(op, node, shape, texts);
      const [w, h] = (node.dataset.size ?? "0x0").split("x").map(Number);
      presenceBar(node, op, w, h);
      toggleAttr(node, "data-selected", n.op === input.selected);
      toggleAttr(node, "data-match", input.matches.has(n.op));
      toggleAttr(node, "data-path", !!input.path?.has(n.op));
      toggleAttr(node, "data-region", !!input.region?.has(n.op));
    } else {
      const group = n.group!;
      const s = this.summaries.get(group.id);
      node.setAttribute("data-state", s?.worst ?? "none");
      toggleAttr(node, "data-starved", !!s && s.counts.none === group.size);
      toggleAttr(node, "data-dead-gate", groupHasDeadGate(group, ops));
      if (s?.cuts.length) node.setAttribute("data-has-cut", String(s.cuts.length));
      else node.removeAttribute("data-has-cut");
      node.setAttribute("aria-label", `group ${group.id}, ${group.size} ops, worst state ${s?.worst ?? "none"}${s?.cuts.length ? `, holds ${s.cuts.length} cut point(s)` : ""}; press Enter to expand`);
      if (title) setText(title, `${groupTitle(group)}\n${group.size} ops · worst state: ${s?.worst ?? "none"}`);
      if (s?.worst === "flowing" && s.maxNorm !== null && this.scale && shape) {
        const t = magnitudeFraction(s.maxNorm, this.scale);
        shape.style.fill = magnitudeColor(t);
        texts.forEach((x) => (x.style.fill = magnitudeTextColor(t)));
      } else {
        if (shape) shape.style.fill = "";
        texts.forEach((x) => (x.style.fill = ""));
      }
      let selectedInside = false;
      let matchInside = false;
      if (input.selected >= 0 && this.visible?.nodeOfOp[input.selected] === n.id) selectedInside = true;
      for (const i of input.matches) if (this.visible?.nodeOfOp[i] === n.id) matchInside = true;
      toggleAttr(node, "data-selected", selectedInside);
      toggleAttr(node, "data-match", matchInside);
      let pathInside = false;
      let regionInside = false;
      for (const i of input.path ?? []) if (this.visible?.nodeOfOp[i] === n.id) pathInside = true;
      for (const i of input.region ?? []) if (this.visible?.nodeOfOp[i] === n.id) regionInside = true;
      toggleAttr(node, "data-path", pathInside);
      toggleAttr(node, "data-region", regionInside);
    }
  }

  private colourFlowing(op: Op, node: Element, shape: SVGElement | null, texts: NodeListOf<SVGTextElement>): void {
    if (!shape) return;
    if (op.state === "flowing" && !op.cause && op.norm !== null && this.scale) {
      const t = magnitudeFraction(op.norm, this.scale);
      shape.style.fill = magnitudeColor(t);
      node.setAttribute("data-shade", t.toFixed(4)); // test hook: the position on the colour scale
      texts.forEach((x) => (x.style.fill = magnitudeTextColor(t)));
    } else {
      node.removeAttribute("data-shade");
      shape.style.fill = "";
      texts.forEach((x) => (x.style.fill = ""));
    }
  }

  // ---- transform and events -------------------------------------------------------------------

  private applyTransform(immediate: boolean, byUser: boolean): void {
    const t = this.transform;
    this.world.setAttribute("transform", `translate(${t.x.toFixed(1)},${t.y.toFixed(1)}) scale(${t.k.toFixed(4)})`);
    this.element.dataset.lod = t.k * LABEL_PX >= MIN_LABEL_PX ? "full" : "none";
    this.minimap.showView(t, this.viewport.size());
    this.element.dataset.zoom = t.k.toFixed(3);
    if (immediate) this.cull();
    else if (!this.cullQueued) {
      this.cullQueued = true;
      requestAnimationFrame(() => {
        this.cullQueued = false;
        this.cull();
      });
    }
    if (byUser) this.events.viewChanged?.(t);
  }

  private screenBoxOfGroup(groupId: string): { x: number; y: number } | null {
    const b = this.graphBoxOfGroup(groupId);
    if (!b) return null;
    const t = this.transform;
    return { x: (b.x - b.width / 2) * t.k + t.x, y: (b.y - b.height / 2) * t.k + t.y };
  }

  private graphBoxOfGroup(groupId: string): Box | null {
    return this.itemById.get(groupNodeId(groupId))?.box ?? this.itemById.get(`c:${groupId}`)?.box ?? null;
  }

  /** Clicks and Enter on nodes and group headers; pan and zoom are the viewport's. */
  private bindEvents(): void {
    const s = this.svgRoot;
    s.addEventListener("click", (e) => {
      if (this.viewport.suppressClick) {
        this.viewport.suppressClick = false;
        return;
      }
      this.activate(e.target as Element);
    });
    s.addEventListener("keydown", (e) => {
      const target = e.target as Element;
      if ((e.key === "Enter" || e.key === " ") && target !== s) {
        e.preventDefault();
        this.activate(target);
      }
    });
  }

  private activate(target: Element): void {
    const collapse = target.closest("[data-action=collapse]");
    if (collapse) {
      this.events.toggleGroup(collapse.getAttribute("data-group") ?? "");
      return;
    }
    const node = target.closest("[data-node-id]");
    if (!node) return;
    const id = node.getAttribute("data-node-id") ?? "";
    if (id.startsWith("op:")) this.events.selectOp(Number(id.slice(3)));
    else if (id.startsWith("g:")) this.events.toggleGroup(id.slice(2));
  }
}

function toggleAttr(node: Element, name: string, on: boolean): void {
  if (on) node.setAttribute(name, "true");
  else node.removeAttribute(name);
}

function pathOf(points: Array<{ x: number; y: number }>): string {
  return points.map((p, i) => `${i ? "L" : "M"}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(" ");
}

function octagon(b: Rect): string {
  const c = Math.min(10, b.height / 3);
  const { x, y, width: w, height: h } = b;
  return [
    [x + c, y],
    [x + w - c, y],
    [x + w, y + c],
    [x + w, y + h - c],
    [x + w - c, y + h],
    [x + c, y + h],
    [x, y + h - c],
    [x, y + c],
  ]
    .map(([px, py]) => `${px.toFixed(1)},${py.toFixed(1)}`)
    .join(" ");
}

export { opNodeId };
