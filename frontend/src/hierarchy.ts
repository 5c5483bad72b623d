// Groups ops by name scope into a tree, as the Graphs dashboard does: "a/b/op" lives in group
// "a/b" inside group "a". Ops inside a function, loop or cond body (parent >= 0) live in the group
// of their call op, which holds the call op itself too. Trivial groups are folded away and huge
// ones are split into chunks, so that no expansion ever shows an unbounded number of children.
import type { Op } from "./model";
import type { GradState } from "./types";

export const ROOT_ID = "";
/** A group with more direct children than this is split into chunks of this size. */
export const MAX_CHILDREN = 200;

export interface Group {
  id: string;
  label: string;
  parent: Group | null;
  groups: Group[];
  ops: number[];
  /** The function / While / If op whose body this group is, or -1. */
  callOp: number;
  /** Ops in this group and all groups below it. */
  size: number;
  depth: number;
  /** The one layer whose variables the ops under this group read (as the Layers view names
   * it), or null: none, or several. */
  layer: string | null;
}

export interface Hierarchy {
  root: Group;
  groups: Map<string, Group>;
  /** The innermost group of each op. */
  opGroup: Group[];
}

function newGroup(id: string, parent: Group | null): Group {
  return { id, label: id, parent, groups: [], ops: [], callOp: -1, size: 0, depth: 0, layer: null };
}

/** The scope path of an op as segments, with body ops placed under their call op. */
export function scopePath(ops: readonly Op[], i: number): string[] {
  const op = ops[i];
  const parts = op.name.split("/").filter((s) => s.length > 0);
  parts.pop();
  if (op.parent >= 0 && op.parent < ops.length && op.parent !== i) {
    const callName = ops[op.parent].name;
    if (!op.name.startsWith(callName + "/")) return [...callName.split("/").filter((s) => s), ...parts];
  }
  return parts;
}

/** `variableLayers[v]` is variable v's layer (Variable.layer): each group gets the layer its ops
 * read, if one (Group.layer). */
export function buildHierarchy(ops: readonly Op[], variableLayers: readonly string[] = []): Hierarchy {
  const root = newGroup(ROOT_ID, null);
  const groups = new Map<string, Group>([[ROOT_ID, root]]);
  const isCall = new Uint8Array(ops.length);
  for (const op of ops) if (op.parent >= 0 && op.parent < ops.length && op.parent !== op.index) isCall[op.parent] = 1;

  const ensure = (segments: string[]): Group => {
    let g = root;
    let id = "";
    for (const seg of segments) {
      id = id ? `${id}/${seg}` : seg;
      let child = groups.get(id);
      if (!child) {
        child = newGroup(id, g);
        groups.set(id, child);
        g.groups.push(child);
      }
      g = child;
    }
    return g;
  };

  const opGroup: Group[] = new Array<Group>(ops.length);
  for (const op of ops) {
    const path = scopePath(ops, op.index);
    let g: Group;
    if (isCall[op.index]) {
      g = ensure([...path, op.name.split("/").pop() || op.name]);
      g.callOp = op.index;
    } else g = ensure(path);
    g.ops.push(op.index);
    opGroup[op.index] = g;
  }
  fold(root, opGroup);
  chunk(root, groups, opGroup);
  groups.clear();
  finish(root, groups, 0);
  readLayer(root, ops, variableLayers);
  return { root, groups, opGroup };
}

const SEVERAL = "\u0000several";

/** Sets `layer` on `g` and the groups below it; returns the layer read under `g` (null: none,
 * SEVERAL: more than one). */
function readLayer(g: Group, ops: readonly Op[], layers: readonly string[]): string | null {
  let found: string | null = null;
  const meet = (layer: string | null): void => {
    if (layer !== null && found !== SEVERAL) found = found === null || found === layer ? layer : SEVERAL;
  };
  for (const child of g.groups) meet(readLayer(child, ops, layers));
  for (const i of g.ops) for (const v of ops[i].variableInputs) meet(layers[v] ?? null);
  g.layer = found === SEVERAL ? null : found;
  return found;
}

/** The layer to show beside a group's name: its layer when the name says another (a traced
 * Keras 3 model puts layer `dense_1`'s ops under the scope `dense_1_2`), else null. Compared by
 * last name segment, so that `encoder/0` and a torch layer `encoder.0` agree. */
export function layerBeside(g: Group): string | null {
  if (g.layer === null) return null;
  const last = (name: string): string => name.split(/[/.]/).filter((s) => s).pop() ?? name;
  return last(g.layer) === last(g.label) ? null : g.layer;
}

/** Dissolves groups of fewer than two ops and chains of single-child groups. */
function fold(g: Group, opGroup: Group[]): number {
  let size = g.ops.length;
  for (const child of [...g.groups]) size += fold(child, opGroup);
  g.size = size;
  const parent = g.parent;
  if (!parent || g.callOp >= 0) return size;
  const single = size < 2;
  const chain = g.ops.length === 0 && g.groups.length === 1;
  if (!single && !chain) return size;
  parent.groups.splice(parent.groups.indexOf(g), 1);
  for (const i of g.ops) {
    parent.ops.push(i);
    opGroup[i] = parent;
  }
  for (const child of g.groups) {
    child.parent = parent;
    parent.groups.push(child);
  }
  return size;
}

/** Splits a group with too many direct children into consecutive chunks (by first op). */
function chunk(g: Group, groups: Map<string, Group>, opGroup: Group[]): void {
  for (const child of g.groups) chunk(child, groups, opGroup);
  const members: Array<{ first: number; op?: number; group?: Group }> = [
    ...g.ops.map((op) => ({ first: op, op })),
    ...g.groups.map((group) => ({ first: firstOp(group), group })),
  ];
  if (members.length <= MAX_CHILDREN) return;
  members.sort((a, b) => a.first - b.first);
  const level: Group[] = [];
  for (let k = 0; k < members.length; k += MAX_CHILDREN) {
    const part = newGroup(`${g.id}/…${level.length + 1}`, g);
    for (const m of members.slice(k, k + MAX_CHILDREN)) {
      if (m.op !== undefined) {
        part.ops.push(m.op);
        opGroup[m.op] = part;
      } else if (m.group) {
        m.group.parent = part;
        part.groups.push(m.group);
      }
    }
    level.push(part);
  }
  g.ops = [];
  g.groups = level;
  if (level.length > MAX_CHILDREN) chunk(g, groups, opGroup); // still too many: chunk the chunks
}

function firstOp(g: Group): number {
  let m = g.ops.length ? Math.min(...g.ops) : Infinity;
  for (const c of g.groups) m = Math.min(m, firstOp(c));
  return m;
}

function finish(g: Group, groups: Map<string, Group>, depth: number): number {
  groups.set(g.id, g);
  g.depth = depth;
  const parentId = g.parent?.id ?? "";
  g.label = g.parent && parentId && g.id.startsWith(parentId + "/") ? g.id.slice(parentId.length + 1) : g.id;
  let size = g.ops.length;
  for (const child of g.groups) size += finish(child, groups, depth + 1);
  g.size = size;
  return size;
}

export function ancestors(g: Group): Group[] {
  const out: Group[] = [];
  for (let p: Group | null = g; p && p.parent; p = p.parent) out.push(p);
  return out.reverse();
}

// ---- Aggregates over a step's values -----------------------------------------------------------

const SEVERITY: Record<GradState, number> = { flowing: 0, zero: 1, none: 2, nonfinite: 3 };

export function worseState(a: GradState, b: GradState): GradState {
  return SEVERITY[b] > SEVERITY[a] ? b : a;
}

export interface GroupSummary {
  worst: GradState;
  counts: Record<GradState, number>;
  /** Cut points inside that starve variables. */
  cuts: number[];
  /** Blocking ops inside that starve nothing (another path carries the gradient). */
  blockers: number[];
  maxNorm: number | null;
}

export function summarizeGroups(h: Hierarchy, ops: readonly Op[]): Map<string, GroupSummary> {
  const out = new Map<string, GroupSummary>();
  const visit = (g: Group): GroupSummary => {
    const s: GroupSummary = { worst: "flowing", counts: { flowing: 0, zero: 0, none: 0, nonfinite: 0 }, cuts: [], blockers: [], maxNorm: null };
    for (const i of g.ops) {
      const op = ops[i];
      s.counts[op.state]++;
      s.worst = worseState(s.worst, op.state);
      if (op.cause) (op.starved.length ? s.cuts : s.blockers).push(i);
      if (op.state === "flowing" && op.norm !== null && Number.isFinite(op.norm)) s.maxNorm = Math.max(s.maxNorm ?? 0, op.norm);
    }
    for (const child of g.groups) {
      const c = visit(child);
      for (const k of Object.keys(c.counts) as GradState[]) s.counts[k] += c.counts[k];
      s.worst = worseState(s.worst, c.worst);
      s.cuts.push(...c.cuts);
      s.blockers.push(...c.blockers);
      if (c.maxNorm !== null) s.maxNorm = Math.max(s.maxNorm ?? 0, c.maxNorm);
    }
    out.set(g.id, s);
    return s;
  };
  visit(h.root);
  return out;
}

// ---- Which groups start expanded ---------------------------------------------------------------

/** Expands groups breadth first while the number of drawn nodes stays within budget; the groups
 * that hold cut points are opened first, so cut points are on screen from the start. */
export function defaultExpansion(h: Hierarchy, cutOps: readonly number[], budget = 250): Set<string> {
  const expanded = new Set<string>([ROOT_ID]);
  let shown = h.root.ops.length + h.root.groups.length; // the root is always open
  const open = (g: Group): boolean => {
    if (expanded.has(g.id)) return true;
    const adds = g.ops.length + g.groups.length - 1;
    if (shown + adds > budget) return false;
    expanded.add(g.id);
    shown += adds;
    return true;
  };
  for (const i of cutOps) {
    for (const g of ancestors(h.opGroup[i])) if (!open(g)) break;
  }
  let level: Group[] = [h.root];
  while (level.length) {
    const next: Group[] = [];
    for (const g of level) {
      if (!expanded.has(g.id)) continue;
      for (const child of [...g.groups].sort((a, b) => a.size - b.size)) {
        if (open(child)) next.push(child);
      }
    }
    level = next;
  }
  return expanded;
}
