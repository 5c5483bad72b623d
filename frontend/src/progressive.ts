// A huge graph loaded group by group (the `graph_groups` route): the top level first, a group's
// members when the user opens it. Parsing 95 MB of `graph` JSON for a 230,000-op graph takes the
// browser many seconds and hundreds of MB; a level is a few KB. Loaded levels are kept within a
// budget: levels of closed groups are released, least recently used first, so memory stays
// bounded however much the user explores. From the loaded levels this builds what the rest of
// the tab draws: a GraphModel of the loaded ops, a Hierarchy whose unloaded groups carry the
// server's counts, and the visible graph with the edges the levels describe.
import type { Group, GroupSummary, Hierarchy } from "./hierarchy";
import { MAX_CHILDREN, ROOT_ID, worseState } from "./hierarchy";
import type { GraphModel, Op } from "./model";
import { opOfColumns } from "./model";
import type { EdgeFlow, VisibleCluster, VisibleEdge, VisibleGraph, VisibleNode } from "./visible";
import { clusterId, groupNodeId, opNodeId } from "./visible";
import type { GradState, GroupsResponse, Story, TagSummary } from "./types";
import { STATES } from "./types";

/** Above this many ops a graph is loaded group by group; at or below, the whole `graph` route
 * (every op at once) as for any ordinary model. */
export const PROGRESSIVE_ABOVE_OPS = 50_000;
/** Members (ops and subgroups) of loaded levels kept beyond those of open groups. */
export const LEVEL_BUDGET = 20_000;

export function loadsProgressively(summary: TagSummary | undefined, above = PROGRESSIVE_ABOVE_OPS): boolean {
  return (summary?.ops ?? 0) > above;
}

/** The groups holding an op, outermost first ("a/b/c/op" -> ["a", "a/b", "a/b/c"]): the levels
 * to load to show it. The route groups by name scope alone. */
export function scopesOf(opName: string): string[] {
  const parts = opName.split("/");
  parts.pop();
  return parts.map((_, i) => parts.slice(0, i + 1).join("/"));
}

export function levelCost(level: GroupsResponse): number {
  return level.ops.index.length + level.groups.name.length;
}

/** Loaded levels by group, least recently used first, within `budget` members apart from the
 * levels the caller pins (the open groups: what is on screen). */
export class LevelCache {
  private readonly levels = new Map<string, GroupsResponse>();
  private members = 0;

  constructor(readonly budget = LEVEL_BUDGET) {}

  /** Members (ops and subgroups) held in all levels. */
  get size(): number {
    return this.members;
  }

  get ids(): string[] {
    return [...this.levels.keys()];
  }

  has(group: string): boolean {
    return this.levels.has(group);
  }

  /** The level of `group`, marked as just used. */
  get(group: string): GroupsResponse | undefined {
    const level = this.levels.get(group);
    if (level) {
      this.levels.delete(group);
      this.levels.set(group, level);
    }
    return level;
  }

  /** The level without marking it used. */
  peek(group: string): GroupsResponse | undefined {
    return this.levels.get(group);
  }

  put(level: GroupsResponse): void {
    const old = this.levels.get(level.group);
    if (old) this.members -= levelCost(old);
    this.levels.delete(level.group);
    this.levels.set(level.group, level);
    this.members += levelCost(level);
  }

  /** Drops unpinned levels, least recently used first, until the rest fits the budget (pinned
   * levels count but are kept); returns the groups dropped. */
  release(pinned: ReadonlySet<string>): string[] {
    const dropped: string[] = [];
    for (const [id, level] of this.levels) {
      if (this.members <= this.budget) break;
      if (id === ROOT_ID || pinned.has(id)) continue;
      this.levels.delete(id);
      this.members -= levelCost(level);
      dropped.push(id);
    }
    return dropped;
  }
}

type Counts = Record<GradState, number>;

/** What the tab draws from the loaded levels (see `buildTree`). */
export interface ProgressiveTree {
  model: GraphModel;
  hierarchy: Hierarchy;
  summaries: Map<string, GroupSummary>;
  /** groups named by a loaded level whose own level is not loaded */
  unloaded: Set<string>;
  /** loaded levels in the tree, with each child number's Group or local op index */
  levels: Array<{ level: GroupsResponse; children: Array<Group | number> }>;
  /** groups of the server (not the chunks the tab adds) */
  real: Set<string>;
  opsTotal: number;
}

function emptyCounts(): Counts {
  return { flowing: 0, zero: 0, none: 0, nonfinite: 0 };
}

function worstOf(c: Counts): GradState {
  let worst: GradState = "flowing";
  for (const s of STATES) if (c[s] > 0) worst = worseState(worst, s);
  return worst;
}

/** "block_2" before "block_10": names compared with their numbers as numbers. */
const natural = new Intl.Collator("en", { numeric: true }).compare;

/** Builds the loaded part of the graph: levels are read through `levelOf` from the top level
 * down through every loaded subgroup; a group whose level is missing stays a closed node with the
 * server's counts. The story tells which cut points in a group starve variables. */
export function buildTree(levelOf: (group: string) => GroupsResponse | undefined, story: Story | null): ProgressiveTree | null {
  const top = levelOf(ROOT_ID);
  if (!top) return null;
  const ops: Op[] = [];
  const globalToLocal = new Map<number, number>();
  const rawInputs: number[][] = [];
  const groups = new Map<string, Group>();
  const summaries = new Map<string, GroupSummary>();
  const unloaded = new Set<string>();
  const real = new Set<string>();
  const levels: ProgressiveTree["levels"] = [];
  const opGroup: Group[] = [];
  const starving = (story?.cuts ?? []).map((c) => c.op_name);
  const cutsUnder = (id: string): string[] => starving.filter((n) => n.startsWith(`${id}/`));

  const root: Group = { id: ROOT_ID, label: ROOT_ID, parent: null, groups: [], ops: [], callOp: -1, size: top.ops_total, depth: 0, layer: null };
  groups.set(ROOT_ID, root);

  const visit = (group: Group, level: GroupsResponse): void => {
    const children: Array<Group | number> = [];
    const g = level.groups;
    g.name.forEach((name, k) => {
      const child: Group = { id: name, label: group.id ? name.slice(group.id.length + 1) : name, parent: group, groups: [], ops: [], callOp: -1, size: g.ops[k], depth: group.depth + 1, layer: null };
      const counts = emptyCounts();
      for (const s of STATES) counts[s] = g.states[s]?.[k] ?? 0;
      const cuts = cutsUnder(name);
      summaries.set(name, { worst: worstOf(counts), counts, cuts: cuts.map(() => -1), blockers: new Array<number>(Math.max(0, g.cut_points[k] - cuts.length)).fill(-1), maxNorm: null });
      groups.set(name, child);
      real.add(name);
      group.groups.push(child);
      children.push(child);
    });
    const c = level.ops;
    c.index.forEach((global, k) => {
      const local = ops.length;
      globalToLocal.set(global, local);
      const op = opOfColumns(c, k, local);
      rawInputs.push(op.inputs);
      op.parent = -1; // the route groups by name scope alone; a body op's call op may not be loaded
      ops.push(op);
      opGroup[local] = group;
      group.ops.push(local);
      children.push(local);
    });
    levels.push({ level, children });
    for (const child of group.groups) {
      const inner = levelOf(child.id);
      if (inner) visit(child, inner);
      else unloaded.add(child.id);
    }
  };
  visit(root, top);

  for (const op of ops) {
    op.inputs = rawInputs[op.index].map((j) => globalToLocal.get(j)).filter((j): j is number => j !== undefined);
    for (const j of op.inputs) ops[j].outputs.push(op.index);
  }
  // loaded groups: their largest flowing norm among loaded ops (unloaded ones have none)
  const maxNorm = (g: Group): number | null => {
    let m: number | null = null;
    for (const i of g.ops) if (ops[i].state === "flowing" && ops[i].norm !== null && Number.isFinite(ops[i].norm)) m = Math.max(m ?? 0, ops[i].norm);
    for (const child of g.groups) {
      const x = maxNorm(child);
      if (x !== null) m = Math.max(m ?? 0, x);
      const s = summaries.get(child.id);
      if (s) s.maxNorm = x;
    }
    return m;
  };
  maxNorm(root);
  chunkAll(root, groups, summaries, ops, opGroup);
  const model: GraphModel = {
    run: top.run,
    tag: top.tag,
    step: top.step,
    graphId: top.graph_id,
    graphVersion: top.graph_version,
    graphVersions: top.graph_versions,
    loss: null,
    fallbackReason: null,
    ops,
    variables: [],
    opIndex: new Map(ops.map((op) => [op.name, op.index])),
  };
  return { model, hierarchy: { root, groups, opGroup }, summaries, unloaded, levels, real, opsTotal: top.ops_total };
}

/** Splits every group with more than MAX_CHILDREN members into chunks of that many (subgroups
 * in natural name order, then ops in graph order), so no open group draws an unbounded number
 * of nodes; chunks get summaries summed from their members. */
function chunkAll(g: Group, groups: Map<string, Group>, summaries: Map<string, GroupSummary>, ops: readonly Op[], opGroup: Group[]): void {
  for (const child of g.groups) chunkAll(child, groups, summaries, ops, opGroup);
  type Member = { group?: Group; op?: number };
  let members: Member[] = [...[...g.groups].sort((a, b) => natural(a.id, b.id)).map((group) => ({ group })), ...g.ops.map((op) => ({ op }))];
  let round = 0;
  while (members.length > MAX_CHILDREN) {
    round++;
    const parts: Member[] = [];
    for (let k = 0; k < members.length; k += MAX_CHILDREN) {
      const slice = members.slice(k, k + MAX_CHILDREN);
      const label = (m: Member): string => (m.group ? m.group.label : ops[m.op!].name.split("/").pop()!);
      const id = `${g.id}/…${round > 1 ? `${round}.` : ""}${parts.length + 1}`;
      const part: Group = { id, label: `${label(slice[0])} … ${label(slice[slice.length - 1])}`, parent: g, groups: [], ops: [], callOp: -1, size: 0, depth: g.depth + 1, layer: null };
      const counts = emptyCounts();
      const sum: GroupSummary = { worst: "flowing", counts, cuts: [], blockers: [], maxNorm: null };
      for (const m of slice) {
        if (m.group) {
          m.group.parent = part;
          part.groups.push(m.group);
          part.size += m.group.size;
          const s = summaries.get(m.group.id);
          if (s) {
            for (const st of STATES) counts[st] += s.counts[st];
            sum.cuts.push(...s.cuts);
            sum.blockers.push(...s.blockers);
            if (s.maxNorm !== null) sum.maxNorm = Math.max(sum.maxNorm ?? 0, s.maxNorm);
          }
        } else {
          const op = ops[m.op!];
          part.ops.push(op.index);
          opGroup[op.index] = part;
          part.size += 1;
          counts[op.state]++;
          if (op.cause) (op.starved.length ? sum.cuts : sum.blockers).push(op.index);
          if (op.state === "flowing" && op.norm !== null && Number.isFinite(op.norm)) sum.maxNorm = Math.max(sum.maxNorm ?? 0, op.norm);
        }
      }
      sum.worst = worstOf(counts);
      summaries.set(id, sum);
      groups.set(id, part);
      parts.push({ group: part });
    }
    members = parts;
  }
  if (round === 0) return;
  g.groups = members.map((m) => m.group!);
  g.ops = [];
  const depth = (x: Group, d: number): void => {
    x.depth = d;
    for (const c of x.groups) depth(c, d + 1);
  };
  for (const c of g.groups) depth(c, g.depth + 1);
}

/** Whether a group is drawn open: the root, and open groups whose members are known (a real group
 * whose level is still loading is drawn closed). */
function isOpen(tree: ProgressiveTree, g: Group, expanded: ReadonlySet<string>): boolean {
  if (g.id === ROOT_ID) return true;
  if (!expanded.has(g.id)) return false;
  return !tree.unloaded.has(g.id);
}

/** What is drawn of the loaded tree for a set of open groups. Edges: between loaded ops (by
 * their inputs), and the edges each loaded level names between its children, drawn onto the node
 * or open box that shows each child; an edge with no loaded op pair gets its flow from the
 * gradient states counted at both ends. */
export function visibleTree(tree: ProgressiveTree, expanded: ReadonlySet<string>): VisibleGraph {
  const nodes: VisibleNode[] = [];
  const clusters: VisibleCluster[] = [];
  const drawnOfGroup = new Map<Group, string>();
  const ops = tree.model.ops;
  const nodeOfOp: string[] = new Array<string>(ops.length);
  const countsOf = new Map<string, Counts>();

  const hide = (g: Group, node: string): void => {
    drawnOfGroup.set(g, node);
    for (const i of g.ops) nodeOfOp[i] = node;
    for (const c of g.groups) hide(c, node);
  };
  const walk = (g: Group, cluster: string | null): void => {
    for (const c of g.groups) {
      const counts = tree.summaries.get(c.id)?.counts ?? emptyCounts();
      if (isOpen(tree, c, expanded)) {
        const id = clusterId(c.id);
        clusters.push({ id, group: c, cluster });
        drawnOfGroup.set(c, id);
        countsOf.set(id, counts);
        walk(c, id);
      } else {
        const id = groupNodeId(c.id);
        nodes.push({ id, kind: "group", op: -1, group: c, cluster });
        countsOf.set(id, counts);
        hide(c, id);
      }
    }
    for (const i of g.ops) {
      const id = opNodeId(i);
      nodes.push({ id, kind: "op", op: i, group: null, cluster });
      nodeOfOp[i] = id;
      const counts = emptyCounts();
      counts[ops[i].state]++;
      countsOf.set(id, counts);
    }
  };
  drawnOfGroup.set(tree.hierarchy.root, "");
  walk(tree.hierarchy.root, null);

  const edges = new Map<string, VisibleEdge>();
  const edge = (from: string, to: string): VisibleEdge | null => {
    if (!from || !to || from === to) return null;
    const id = `${from}>${to}`;
    let e = edges.get(id);
    if (!e) edges.set(id, (e = { id, from, to, pairs: [] }));
    return e;
  };
  for (const op of ops) for (const j of op.inputs) edge(nodeOfOp[j], nodeOfOp[op.index])?.pairs.push([j, op.index]);
  const drawnOf = (child: Group | number): string => (typeof child === "number" ? nodeOfOp[child] : (drawnOfGroup.get(child) ?? ""));
  for (const { level, children } of tree.levels) {
    const g = level.groups.name.length;
    level.groups.inputs.forEach((sources, k) => {
      for (const s of sources) edge(drawnOf(children[s]), drawnOf(children[k]));
    });
    level.ops.input_children.forEach((sources, k) => {
      for (const s of sources) if (s >= 0 && s < g) edge(drawnOf(children[s]), drawnOf(children[g + k]));
    });
  }
  for (const e of edges.values()) {
    if (e.pairs.length) continue;
    const to = e.to.startsWith("op:") ? ops[Number(e.to.slice(3))] : null;
    e.flow = to?.cause ? "dead" : countedFlow(countsOf.get(e.from), countsOf.get(e.to));
  }
  return { nodes, clusters, edges: [...edges.values()], nodeOfOp };
}

/** The flow of an edge between two drawn things known only by their state counts: gradient
 * passes if both ends hold ops that get one. */
export function countedFlow(from: Counts | undefined, to: Counts | undefined): EdgeFlow {
  const gets = (c: Counts | undefined): boolean => !!c && c.flowing + c.zero + c.nonfinite > 0;
  if (!gets(from) || !gets(to)) return "dead";
  if (from!.flowing > 0 && to!.flowing > 0) return "flowing";
  if (from!.nonfinite > 0 || to!.nonfinite > 0) return "nonfinite";
  return "zero";
}

export type FetchLevel = (run: string, tag: string, step: number, group: string) => Promise<GroupsResponse>;

/** Loads and keeps the levels of one run, tag and step (a new step starts afresh: the values
 * differ) and builds the tree from them. A group that the route does not know (404: a stale
 * link) is remembered and skipped; any other error is thrown. */
export class ProgressiveLoader {
  private cache: LevelCache;
  private key = "";
  private readonly missing = new Set<string>();
  private readonly inflight = new Map<string, Promise<void>>();
  private tree: ProgressiveTree | null = null;
  private story: Story | null = null;
  private dirty = true;
  /** Levels fetched since this loader was made (a test and the bench read it). */
  fetched = 0;

  constructor(private readonly fetchLevel: FetchLevel, private readonly budget = LEVEL_BUDGET, private readonly isNotFound: (e: unknown) => boolean = () => false) {
    this.cache = new LevelCache(budget);
  }

  get levels(): LevelCache {
    return this.cache;
  }

  /** Loads the top level, then in rounds every group of `open` and `extra` that a loaded level
   * names (so nested open groups load level by level), then releases closed groups' levels
   * beyond the budget. `open` and `extra` (the scopes of an op to show) and the groups above
   * them stay loaded. Null when a newer call for another step superseded this one. */
  async load(run: string, tag: string, step: number, open: ReadonlySet<string>, extra: readonly string[], story: Story | null): Promise<ProgressiveTree | null> {
    const key = `${run}\u0000${tag}\u0000${step}`;
    if (key !== this.key) {
      this.key = key;
      this.cache = new LevelCache(this.budget);
      this.missing.clear();
      this.inflight.clear();
      this.dirty = true;
    }
    const cache = this.cache;
    const one = (group: string): Promise<void> => {
      let p = this.inflight.get(group);
      if (!p) {
        p = this.fetchLevel(run, tag, step, group).then(
          (level) => {
            if (this.cache !== cache) return;
            cache.put(level);
            this.fetched++;
            this.dirty = true;
          },
          (e: unknown) => {
            if (!this.isNotFound(e)) throw e;
            this.missing.add(group);
          },
        ).finally(() => this.inflight.delete(group));
        this.inflight.set(group, p);
      }
      return p;
    };
    const wanted = new Set<string>();
    for (const g of [...open, ...extra]) for (const s of [...scopesOf(g), g]) if (s) wanted.add(s);
    if (!cache.has(ROOT_ID)) await one(ROOT_ID);
    for (;;) {
      if (this.cache !== cache) return null;
      const named = new Set<string>();
      for (const id of cache.ids) for (const n of cache.peek(id)!.groups.name) named.add(n);
      const todo = [...wanted].filter((g) => named.has(g) && !cache.has(g) && !this.missing.has(g));
      if (!todo.length) break;
      await Promise.all(todo.map(one));
    }
    for (const g of wanted) cache.get(g);
    if (cache.release(wanted).length) this.dirty = true;
    if (this.dirty || !this.tree || story !== this.story) {
      this.tree = buildTree((id) => cache.peek(id), story);
      this.story = story;
      this.dirty = false;
    }
    return this.tree;
  }
}
