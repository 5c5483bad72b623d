// The overview level: the model's top groups as cards large enough to read at any model size,
// each with its worst state, its starved share and its cut points; a click opens the group in
// the graph. The level is the first one below the root with enough groups to say something.
import { clear, el } from "./dom";
import type { Group, GroupSummary, Hierarchy } from "./hierarchy";
import type { MagnitudeScale } from "./colors";
import { magnitudeColor, magnitudeFraction, magnitudeTextColor } from "./colors";
import { formatNorm } from "./format";
import type { Op } from "./model";
import { dataDepths } from "./model";

export type OverviewEntry = { kind: "group"; group: Group } | { kind: "op"; op: number };

/** What the overview shows: descend from the root through levels with fewer than `minGroups`
 * groups (a model's single top scope), at most `max` cards, inputs first. Cut points that sit
 * directly in a group the descent passed through become cards of their own, so none is lost. */
export function overviewEntries(h: Hierarchy, ops: readonly Op[], minGroups = 6, max = 300): OverviewEntry[] {
  const isCut = (i: number): boolean => !!ops[i]?.cause && ops[i].starved.length > 0;
  let level: Group[] = h.root.groups;
  const cutOps: number[] = h.root.ops.filter(isCut);
  while (level.length > 0 && level.length < minGroups) {
    const next: Group[] = [];
    for (const g of level) {
      if (g.groups.length) {
        next.push(...g.groups);
        cutOps.push(...g.ops.filter(isCut));
      } else next.push(g);
    }
    if (next.length === level.length) break;
    level = next;
  }
  // inputs first: by the median data-flow depth of a group's ops (op indices follow no order).
  // Variable reads have no inputs: counted as inputs they would pull the last block to the
  // front, so only ops that depend on the data count (all ops for a group without any).
  const depth = opDepths(ops);
  const data = dataDepths(ops);
  const key = new Map<Group, number>();
  const keyOf = (g: Group): number => {
    let m = key.get(g);
    if (m === undefined) {
      const all = groupMembers(g);
      const onData = all.map((i) => data[i]).filter((d) => d >= 0);
      const ds = (onData.length ? onData : all.map((i) => depth[i])).sort((x, y) => x - y);
      m = ds.length ? ds[ds.length >> 1] : 0;
      key.set(g, m);
    }
    return m;
  };
  const entries: Array<[number, OverviewEntry]> = [
    ...level.map((group): [number, OverviewEntry] => [keyOf(group), { kind: "group", group }]),
    ...cutOps.map((op): [number, OverviewEntry] => [data[op] >= 0 ? data[op] : depth[op], { kind: "op", op }]),
  ];
  return entries.sort((a, b) => a[0] - b[0]).slice(0, max).map(([, e]) => e);
}

/** Every op under a group, its subgroups' included. */
export function groupMembers(g: Group): number[] {
  return [...g.ops, ...g.groups.flatMap(groupMembers)];
}

/** The titles of cards: each name less the scope it shares with the other cards under the same
 * top scope ("resnet_1/conv5_block3_out" reads "conv5_block3_out" when the other cards sit in
 * "resnet_1/" too), so that no title is cut off at a common prefix. A name alone under its top
 * scope (the loss's) and a name that is the whole prefix stay as they are. */
export function cardTitles(names: readonly string[]): string[] {
  const parts = names.map((n) => n.split("/"));
  const byTop = new Map<string, number[]>();
  parts.forEach((p, i) => byTop.set(p[0], [...(byTop.get(p[0]) ?? []), i]));
  const common = new Array<number>(names.length).fill(0);
  for (const members of byTop.values()) {
    if (members.length < 2) continue;
    const first = parts[members[0]];
    let k = 0;
    while (k < first.length - 1 && members.every((i) => k < parts[i].length - 1 && parts[i][k] === first[k])) k++;
    for (const i of members) common[i] = k;
  }
  return parts.map((p, i) => p.slice(common[i]).join("/"));
}

/** A title as text with a line-break opportunity after each "_" and "/" (<wbr>), so that a long
 * name wraps between its words rather than inside them; its text stays the same. */
function breakable(title: string): Node[] {
  const out: Node[] = [];
  for (const piece of title.split(/(?<=[_/])/)) out.push(document.createTextNode(piece), document.createElement("wbr"));
  return out;
}

/** A group's gradient norm for its card: the median of its flowing ops' norms, so that the card
 * has the colour its typical op has in the graph; null when none of its ops has a norm. */
export function groupNorm(g: Group, ops: readonly Op[]): number | null {
  const norms = groupMembers(g)
    .map((i) => ops[i])
    .filter((op) => op && op.state === "flowing" && op.norm !== null && op.norm > 0 && Number.isFinite(op.norm))
    .map((op) => op.norm!)
    .sort((a, b) => a - b);
  return norms.length ? norms[norms.length >> 1] : null;
}

/** Each op's longest path from a graph input (0 for inputs); an op on a cycle counts once. */
export function opDepths(ops: readonly Op[]): number[] {
  const depth = new Array<number>(ops.length).fill(-1);
  const state = new Uint8Array(ops.length); // 0 new, 1 on the stack, 2 done
  for (let start = 0; start < ops.length; start++) {
    if (state[start]) continue;
    const stack: Array<[number, number]> = [[start, 0]];
    state[start] = 1;
    while (stack.length) {
      const top = stack[stack.length - 1];
      const op = ops[top[0]];
      if (top[1] < op.inputs.length) {
        const j = op.inputs[top[1]++];
        if (state[j] === 0) {
          state[j] = 1;
          stack.push([j, 0]);
        }
        continue;
      }
      let d = 0;
      for (const j of op.inputs) if (state[j] === 2) d = Math.max(d, depth[j] + 1);
      depth[top[0]] = d;
      state[top[0]] = 2;
      stack.pop();
    }
  }
  return depth;
}

export function renderOverview(
  container: HTMLElement,
  h: Hierarchy,
  ops: readonly Op[],
  summaries: ReadonlyMap<string, GroupSummary>,
  onOpen: (group: string) => void,
  onOp: (op: number) => void,
  scale: MagnitudeScale | null = null,
): void {
  clear(container);
  const entries = overviewEntries(h, ops);
  const titles = cardTitles(entries.map((e) => (e.kind === "group" ? e.group.id : ops[e.op].name)));
  const grid = el("div", { class: "gf-ov-grid", role: "list" });
  entries.forEach((entry, k) => {
    if (entry.kind === "op") {
      const op = ops[entry.op];
      const card = el(
        "button",
        { type: "button", class: "gf-ov-group", role: "listitem", title: op.name, "data-op": op.name, "data-cut": op.cause, "data-state": op.state, "data-has-cut": "1" },
        el("span", { class: "gf-ov-name" }, ...breakable(`✂ ${titles[k]}`)),
        el("span", { class: "gf-ov-meta" }, op.type),
        el("span", { class: "gf-ov-cut" }, `cut point: ${op.cause}, starves ${op.starved.length}`),
      );
      card.addEventListener("click", () => onOp(entry.op));
      grid.append(card);
      return;
    }
    const g = entry.group;
    const s = summaries.get(g.id);
    const starved = s ? s.counts.none / Math.max(1, g.size) : 0;
    const norm = groupNorm(g, ops);
    const card = el(
      "button",
      {
        type: "button",
        class: "gf-ov-group",
        role: "listitem",
        title: `${g.id}\n${g.size} ops · worst state ${s?.worst ?? "none"}`,
        "data-group": g.id,
        "data-state": s?.worst ?? "none",
        "data-has-cut": s?.cuts.length ? String(s.cuts.length) : null,
        "data-starved": starved >= 1 ? "true" : starved > 0 ? "part" : null,
        "data-norm": norm,
      },
      el("span", { class: "gf-ov-name" }, ...breakable(titles[k])),
      el("span", { class: "gf-ov-meta" }, `${g.size} ops${norm !== null ? ` · |grad| ${formatNorm(norm)}` : ""}${starved > 0 ? ` · ${Math.round(starved * 100)}% no gradient` : ""}`),
      s?.cuts.length ? el("span", { class: "gf-ov-cut" }, `✂ ${s.cuts.map((i) => ops[i]?.type ?? "").join(", ")}`) : null,
    );
    const bar = el("span", { class: "gf-ov-bar" });
    bar.style.setProperty("--starved", `${(starved * 100).toFixed(1)}%`);
    card.append(bar);
    if (norm !== null && starved < 1) {
      // the card's fill is its norm on the run's scale, the colour its typical op has in the graph
      const t = scale ? magnitudeFraction(norm, scale) : 0.5;
      card.style.background = magnitudeColor(t);
      card.style.color = magnitudeTextColor(t);
      card.dataset.fill = t.toFixed(3);
    }
    card.addEventListener("click", () => onOpen(g.id));
    grid.append(card);
  });
  container.append(
    el("div", { class: "gf-ov-head" }, el("strong", {}, "Overview"), el("span", { class: "gf-muted" }, ` · ${entries.length} groups and cut points, inputs first; click one to open it in the graph`)),
    grid,
  );
}
