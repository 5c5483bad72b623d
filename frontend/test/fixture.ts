// Builds route-shaped graph responses for the unit tests.
import type { Cause, DiagnosisResponse, GradState, GraphResponse, GroupsResponse, StoryCut, WireNorm } from "../src/types";
import { STATES } from "../src/types";

export interface OpSpec {
  name: string;
  type?: string;
  inputs?: string[];
  state?: GradState;
  norm?: WireNorm;
  cause?: Cause;
  parent?: string;
  reads?: string[];
  starves?: string[];
  source?: string;
  presence?: number | null;
  gate?: boolean;
}

export interface VarSpec {
  name: string;
  state?: GradState;
  norm?: WireNorm;
}

export function graph(ops: OpSpec[], variables: VarSpec[] = [], extra: Partial<GraphResponse> = {}): GraphResponse {
  const index = new Map(ops.map((o, i) => [o.name, i]));
  const vindex = new Map(variables.map((v, i) => [v.name, i]));
  const vstate = variables.map((v) => v.state ?? "flowing");
  const cuts = ops
    .map((o, i) => ({ o, i }))
    .filter(({ o }) => o.cause)
    .map(({ o, i }) => ({
      op: i,
      op_name: o.name,
      op_type: o.type ?? "Op",
      cause: o.cause!,
      source: o.source ?? "model.py:1",
      detail: "",
      starved_variables: o.starves ?? [],
      parallel_cuts: [],
      library_source: null,
    }));
  return {
    run: "run",
    tag: "gradflow",
    step: 5,
    steps: [0, 5],
    count: 2,
    graph_id: "g1",
    graph_version: 1,
    graph_versions: 1,
    loss: 1,
    fallback_reason: null,
    ops: {
      name: ops.map((o) => o.name),
      type: ops.map((o) => o.type ?? "Op"),
      scope: ops.map((o) => o.name.split("/").slice(0, -1).join("/")),
      inputs: ops.map((o) => (o.inputs ?? []).map((n) => index.get(n)!)),
      variable_inputs: ops.map((o) => (o.reads ?? []).map((n) => vindex.get(n)!)),
      parent: ops.map((o) => (o.parent ? index.get(o.parent)! : -1)),
      shape: ops.map(() => ["2x3"]),
      dtype: ops.map(() => ["float32"]),
      source: ops.map((o) => o.source ?? "model.py:1"),
      state: ops.map((o) => o.state ?? "flowing"),
      norm: ops.map((o) => (o.norm === undefined ? ((o.state ?? "flowing") === "none" ? null : 1) : o.norm)),
      measured: ops.map(() => true),
      cause: ops.map((o) => o.cause ?? null),
      cause_detail: ops.map(() => ""),
      starved: ops.map((o) => (o.starves ?? []).map((n) => vindex.get(n)!)),
      presence: ops.map((o) => (o.presence === undefined ? ((o.state ?? "flowing") === "flowing" ? 1 : null) : o.presence)),
      presence_at_input: ops.map((o) => o.gate ?? o.type === "Relu"),
      units: ops.map(() => null),
      dead_units: ops.map(() => null),
      iteration_norms: ops.map(() => null),
    },
    variables: {
      name: variables.map((v) => v.name),
      layer: variables.map((v) => (v.name.includes("/") ? v.name.slice(0, v.name.lastIndexOf("/")) : v.name)),
      shape: variables.map(() => "3"),
      state: vstate,
      norm: variables.map((v, i) => (v.norm === undefined ? (vstate[i] === "none" ? null : 1) : v.norm)),
      presence: variables.map((_, i) => (vstate[i] === "flowing" ? 1 : null)),
      sparse_gradient: variables.map(() => false),
    },
    cut_points: cuts,
    starved_variables: variables.filter((_, i) => vstate[i] === "none").map((v) => v.name),
    zero_variables: variables.filter((_, i) => vstate[i] === "zero").map((v) => v.name),
    nonfinite_variables: variables.filter((_, i) => vstate[i] === "nonfinite").map((v) => v.name),
    ...extra,
  };
}

/** The shape of the demo's broken VAE: encoder -> sample -> decoder -> numpy_function -> loss. */
export function brokenVae(): GraphResponse {
  return graph(
    [
      { name: "x", type: "Placeholder", state: "none" },
      { name: "vae/encoder/dense/ReadVariableOp", type: "ReadVariableOp", reads: ["vae/encoder/dense/kernel"] },
      { name: "vae/encoder/dense/MatMul", type: "MatMul", inputs: ["x", "vae/encoder/dense/ReadVariableOp"], norm: 0.5 },
      { name: "vae/encoder/dense/Relu", type: "Relu", inputs: ["vae/encoder/dense/MatMul"], norm: 0.25 },
      { name: "vae/decoder/dense/ReadVariableOp", type: "ReadVariableOp", state: "none", reads: ["vae/decoder/dense/kernel"] },
      { name: "vae/decoder/dense/MatMul", type: "MatMul", state: "none", inputs: ["vae/encoder/dense/Relu", "vae/decoder/dense/ReadVariableOp"] },
      { name: "vae/decoder/dense/Sigmoid", type: "Sigmoid", state: "none", inputs: ["vae/decoder/dense/MatMul"] },
      { name: "vae/PyFunc", type: "PyFunc", cause: "numpy_function", inputs: ["vae/decoder/dense/Sigmoid"], starves: ["vae/decoder/dense/kernel"], source: "vae.py:42", norm: 3 },
      { name: "Square", type: "Square", inputs: ["vae/PyFunc"], norm: 2 },
      { name: "loss", type: "Mean", inputs: ["Square", "vae/encoder/dense/Relu"], norm: 1 },
    ],
    [
      { name: "vae/encoder/dense/kernel", norm: 0.01 },
      { name: "vae/decoder/dense/kernel", state: "none" },
    ],
  );
}

/** A diagnosis route body with these cuts (the sentences are placeholders). */
export const storyCut = (op_name: string, starved: string[]): StoryCut => ({
  op_name,
  op_type: "PyFunc",
  cause: "numpy_function",
  source: "vae.py:42",
  detail: "",
  starved_variables: starved,
  parallel_cuts: [],
  library_source: null,
  text: "tf.numpy_function at vae.py:42 has no gradient",
  hint: "rewrite it",
  arriving: "the gradient from the loss reaches it",
  blocked: "nothing passes back through it to its inputs",
  blocked_inputs: [],
});

export function served(cuts: StoryCut[], harmless: StoryCut[] = []): DiagnosisResponse {
  return {
    step: 1, steps: [1], last_step: 1, ops: 3, variables: {}, cut_points: [], starved_variables: [], op_presence: {},
    story: { tone: "cut", headline: { text: "1 cut point starves 1 trainable variable", names: ["vae/decoder/dense/kernel"] }, cuts, harmless, harmless_summary: null, harmless_hints: [], notes: [] },
    norm_range: { ops: null, variables: null }, first_nonfinite_step: null, version_changes: [],
    dead_units: {}, iteration_norms: {},
  };
}

export interface Spec {
  name: string;
  inputs?: string[];
  state?: GradState;
  cause?: Cause;
}

/** What the `graph_groups` route answers for `group` of a graph of `specs` (the route's rules,
 * tb_gradflow/plugin/groups.py: groups by name scope, children numbered subgroups then ops). */
export function level(specs: Spec[], group: string, step = 1): GroupsResponse {
  const index = new Map(specs.map((s, i) => [s.name, i]));
  const scope = (s: Spec): string => s.name.split("/").slice(0, -1).join("/");
  const inside = specs.map((s, i) => ({ s, i })).filter(({ s }) => !group || s.name.startsWith(`${group}/`));
  if (group && !inside.length) throw Object.assign(new Error(`no group ${group}`), { status: 404 });
  const start = group ? group.length + 1 : 0;
  const childOf = (s: Spec): string | null => (scope(s) === group ? null : (group ? `${group}/` : "") + scope(s).slice(start).split("/")[0]);
  const names = [...new Set(inside.map(({ s }) => childOf(s)).filter((n): n is string => n !== null))].sort();
  const direct = inside.filter(({ s }) => childOf(s) === null);
  const number = new Map<number, number>();
  for (const { s, i } of inside) number.set(i, childOf(s) === null ? names.length + direct.findIndex((d) => d.i === i) : names.indexOf(childOf(s)!));
  const states = Object.fromEntries(STATES.map((st) => [st, names.map((n) => inside.filter(({ s }) => childOf(s) === n && (s.state ?? "flowing") === st).length)])) as Record<GradState, number[]>;
  const inputsOf = (s: Spec): number[] => (s.inputs ?? []).map((n) => index.get(n)!);
  const groupInputs = names.map((_, k) => {
    const feeding = new Set<number>();
    for (const { s } of inside) if (number.get(index.get(s.name)!) === k) for (const j of inputsOf(s)) if (number.has(j) && number.get(j) !== k) feeding.add(number.get(j)!);
    return [...feeding].sort((a, b) => a - b);
  });
  const ds = direct.map(({ s }) => s);
  return {
    run: "r", tag: "t", step, steps: [0, step], count: 2, graph_id: "g", graph_version: 1, graph_versions: 1, group,
    ops_total: specs.length, ops_in_group: inside.length,
    groups: { name: names, ops: names.map((n) => inside.filter(({ s }) => childOf(s) === n).length), states, cut_points: names.map((n) => inside.filter(({ s }) => childOf(s) === n && s.cause).length), inputs: groupInputs },
    ops: {
      index: direct.map(({ i }) => i), name: ds.map((s) => s.name), type: ds.map(() => "Op"), scope: ds.map(scope),
      inputs: ds.map(inputsOf), variable_inputs: ds.map(() => []), parent: ds.map(() => -1), shape: ds.map(() => []), dtype: ds.map(() => []),
      source: ds.map(() => ""), state: ds.map((s) => s.state ?? "flowing"), norm: ds.map(() => 1), measured: ds.map(() => true),
      cause: ds.map((s) => s.cause ?? null), cause_detail: ds.map(() => ""), starved: ds.map((s) => (s.cause ? [0] : [])),
      presence: ds.map(() => null), presence_at_input: ds.map(() => false),
      input_children: ds.map((s) => inputsOf(s).map((j) => number.get(j) ?? -1)),
    },
  };
}
