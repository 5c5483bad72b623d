// The graph of one step as the tab uses it: ops and variables as records, with parsed norms and
// the output lists the routes leave implicit.
import type { Cause, GradState, GraphResponse, WireNorm } from "./types";

export interface Op {
  index: number;
  name: string;
  type: string;
  source: string;
  state: GradState;
  /** L2 norm; null when there is none or it was not measured; Infinity or NaN when nonfinite. */
  norm: number | null;
  measured: boolean;
  cause: Cause | null;
  causeDetail: string;
  inputs: number[];
  outputs: number[];
  variableInputs: number[];
  parent: number;
  shapes: string[];
  dtypes: string[];
  starved: number[];
  /** Fraction of gradient elements nonzero and finite; null unknown. */
  presence: number | null;
  /** A gating op: `presence` is the share of what arrives that it passes back to its input. */
  presenceAtInput: boolean;
  /** A ReLU-family gate: its units and how many are dead for the whole batch (issue 17). */
  units?: number | null;
  deadUnits?: number | null;
  /** A loop: the norm at each iteration, first first (issue 17). */
  iterationNorms?: (number | null)[] | null;
}

export interface Variable {
  index: number;
  name: string;
  /** its layer, as the server groups it (the Layers view's rows, the heatmap's) */
  layer: string;
  shape: string;
  state: GradState;
  norm: number | null;
  presence: number | null;
  sparseGradient: boolean;
  /** Ops that read this variable directly. */
  readers: number[];
}

export interface GraphModel {
  run: string;
  tag: string;
  step: number;
  graphId: string;
  graphVersion: number;
  graphVersions: number;
  loss: number | null;
  fallbackReason: string | null;
  ops: Op[];
  variables: Variable[];
  opIndex: Map<string, number>;
}

export function parseNorm(norm: WireNorm | undefined): number | null {
  if (norm === null || norm === undefined) return null;
  if (norm === "inf") return Infinity;
  if (norm === "nan") return NaN;
  return typeof norm === "number" ? norm : null;
}

/** Op `k` of route columns (`graph` or `graph_groups`) as op number `index` of a model; its
 * inputs (indices of the route) and parent are the caller's to map. */
export function opOfColumns(c: GraphResponse["ops"], k: number, index: number): Op {
  return {
    index,
    name: c.name[k],
    type: c.type[k] ?? "",
    source: c.source[k] ?? "",
    state: c.state[k] ?? "none",
    norm: parseNorm(c.norm[k]),
    measured: c.measured[k] ?? false,
    cause: c.cause[k] ?? null,
    causeDetail: c.cause_detail[k] ?? "",
    inputs: c.inputs[k] ?? [],
    outputs: [],
    variableInputs: c.variable_inputs[k] ?? [],
    parent: c.parent[k] ?? -1,
    shapes: c.shape[k] ?? [],
    dtypes: c.dtype[k] ?? [],
    starved: c.starved[k] ?? [],
    presence: c.presence?.[k] ?? null,
    presenceAtInput: c.presence_at_input?.[k] ?? false,
    units: c.units?.[k] ?? null,
    deadUnits: c.dead_units?.[k] ?? null,
    iterationNorms: c.iteration_norms?.[k]?.map(parseNorm) ?? null,
  };
}

export function buildModel(g: GraphResponse): GraphModel {
  const c = g.ops;
  const n = c.name.length;
  const ops: Op[] = new Array<Op>(n);
  for (let i = 0; i < n; i++) {
    ops[i] = opOfColumns(c, i, i);
    ops[i].inputs = ops[i].inputs.filter((j) => j >= 0 && j < n);
  }
  for (const op of ops) for (const j of op.inputs) ops[j].outputs.push(op.index);
  const v = g.variables;
  const variables: Variable[] = v.name.map((name, i) => ({
    index: i,
    name,
    layer: v.layer?.[i] ?? name,
    shape: v.shape[i] ?? "",
    state: v.state[i] ?? "none",
    norm: parseNorm(v.norm[i]),
    presence: v.presence?.[i] ?? null,
    sparseGradient: v.sparse_gradient?.[i] ?? false,
    readers: [],
  }));
  for (const op of ops) for (const j of op.variableInputs) variables[j]?.readers.push(op.index);
  return {
    run: g.run,
    tag: g.tag,
    step: g.step,
    graphId: g.graph_id,
    graphVersion: g.graph_version,
    graphVersions: g.graph_versions,
    loss: g.loss,
    fallbackReason: g.fallback_reason,
    ops,
    variables,
    opIndex: new Map(ops.map((op) => [op.name, op.index])),
  };
}

/** Depth of each op: the length of the longest input chain that leads to it (Kahn's order). */
export function opDepths(ops: readonly Op[]): Int32Array {
  const depth = new Int32Array(ops.length);
  const waiting = new Int32Array(ops.length);
  const queue: number[] = [];
  for (const op of ops) {
    waiting[op.index] = op.inputs.length;
    if (op.inputs.length === 0) queue.push(op.index);
  }
  for (let head = 0; head < queue.length; head++) {
    const i = queue[head];
    for (const o of ops[i].outputs) {
      depth[o] = Math.max(depth[o], depth[i] + 1);
      if (--waiting[o] === 0) queue.push(o);
    }
  }
  return depth; // ops on a cycle (never in a real graph) keep a partial depth
}

/** Each op's distance from the graph's data inputs; -1 for an op that depends on variables only
 * (a variable read and what computes from it alone), so that reads do not count as inputs. */
export function dataDepths(ops: readonly Op[]): Int32Array {
  const dataDepth = new Int32Array(ops.length).fill(-1);
  const depth = opDepths(ops);
  const order = [...ops.keys()].sort((a, b) => depth[a] - depth[b]);
  for (const i of order) {
    const op = ops[i];
    if (op.inputs.length === 0) {
      dataDepth[i] = op.variableInputs.length ? -1 : 0;
      continue;
    }
    let d = -1;
    for (const j of op.inputs) if (dataDepth[j] >= 0) d = Math.max(d, dataDepth[j] + 1);
    dataDepth[i] = d;
  }
  return dataDepth;
}

/** How deep in the network each variable is used: the depth, counted from the graph's data
 * inputs, of the first ops downstream of its reads that also depend on data. Variable reads
 * themselves (and their Reshape/Squeeze chains) have no data depth, so they do not count. */
export function variableDepths(ops: readonly Op[], variables: readonly Variable[]): number[] {
  const dataDepth = dataDepths(ops);
  // the nearest data depth at or below each op, consumers first: one pass for every variable
  // (a walk per variable from its reads was quadratic on a long chain of variable-only ops)
  const depth = opDepths(ops);
  const order = [...ops.keys()].sort((a, b) => depth[b] - depth[a]);
  const below = new Float64Array(ops.length).fill(Infinity);
  for (const i of order) {
    if (dataDepth[i] >= 0) below[i] = dataDepth[i];
    else for (const o of ops[i].outputs) below[i] = Math.min(below[i], below[o]);
  }
  return variables.map((v) => v.readers.reduce((best, r) => Math.min(best, below[r]), Infinity));
}
