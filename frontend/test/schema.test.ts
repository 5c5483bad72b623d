// types.ts against the one route schema (tb_gradflow/plugin/route_schema.json), which the Python
// tests check the served bodies against: bodies typed by types.ts must conform to it, and carry
// exactly its keys.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { test } from "node:test";
import type { DiagnosisResponse, GroupsResponse, HistoryResponse, LayersResponse, NoticesResponse, RunsResponse } from "../src/types";
import { brokenVae, served, storyCut } from "./fixture";

type Schema = { [key: string]: any };
// From the package directory `npm test` runs in, not from the compiled test's URL: node_modules
// may be a symlink to another checkout's (a git worktree), whose schema is not this one.
const SCHEMA: Schema = JSON.parse(readFileSync(resolve(process.cwd(), "../tb_gradflow/plugin/route_schema.json"), "utf8"));

const TYPES: Record<string, (v: unknown) => boolean> = {
  object: (v) => typeof v === "object" && v !== null && !Array.isArray(v),
  array: Array.isArray,
  string: (v) => typeof v === "string",
  integer: Number.isInteger,
  number: (v) => typeof v === "number",
  boolean: (v) => typeof v === "boolean",
  null: (v) => v === null,
};

/** Where `value` breaks `schema` (the JSON Schema keywords the route schema uses). */
function errors(value: any, schema: Schema, path = "$"): string[] {
  if (schema.$ref) return errors(value, SCHEMA.$defs[schema.$ref.split("/").pop()], path);
  if (schema.anyOf) return schema.anyOf.some((s: Schema) => errors(value, s, path).length === 0) ? [] : [`${path}: no anyOf branch`];
  if (schema.enum && !schema.enum.includes(value)) return [`${path}: ${JSON.stringify(value)} not in enum`];
  if (schema.type) {
    const types: string[] = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (!types.some((t) => TYPES[t](value))) return [`${path}: not ${types.join("|")}`];
  }
  const out: string[] = [];
  if (Array.isArray(value)) {
    if (value.length < (schema.minItems ?? 0) || value.length > (schema.maxItems ?? Infinity)) out.push(`${path}: ${value.length} items`);
    if (schema.items) value.forEach((v, i) => out.push(...errors(v, schema.items, `${path}[${i}]`)));
  } else if (TYPES.object(value)) {
    const props: Schema = schema.properties ?? {};
    for (const k of schema.required ?? []) if (!(k in value)) out.push(`${path}: missing ${k}`);
    for (const [k, v] of Object.entries(value)) {
      if (k in props) out.push(...errors(v, props[k], `${path}.${k}`));
      else if (schema.additionalProperties === false) out.push(`${path}: unexpected ${k}`);
      else if (TYPES.object(schema.additionalProperties)) out.push(...errors(v, schema.additionalProperties, `${path}.${k}`));
    }
  }
  return out;
}

test("a graph typed by types.ts is what the schema describes, key for key", () => {
  const g = brokenVae();
  assert.deepEqual(errors(g, SCHEMA.routes.graph), []);
  assert.deepEqual(Object.keys(g).sort(), [...SCHEMA.routes.graph.required].sort());
  assert.deepEqual(Object.keys(g.ops).sort(), [...SCHEMA.routes.graph.properties.ops.required].sort());
  assert.deepEqual(Object.keys(g.cut_points[0]).sort(), [...SCHEMA.$defs.cut_point.required].sort());
});

test("diagnosis, history and runs typed by types.ts conform too", () => {
  const d: DiagnosisResponse = {
    ...served([storyCut("vae/PyFunc", ["w"])]),
    variables: { w: { state: "none", norm: null, presence: null, sparse_gradient: false } },
    cut_points: [{ op_name: "vae/PyFunc", op_type: "PyFunc", cause: "numpy_function", source: "vae.py:42", starved_variables: ["w"], parallel_cuts: [], library_source: null }],
    starved_variables: ["w"],
  };
  d.norm_range.ops = [0.1, 2];
  d.story.notes.push({ kind: "unused", text: "1 variable is not used by the loss at all", names: ["u"] });
  assert.deepEqual(errors(d, SCHEMA.routes.diagnosis), []);
  assert.deepEqual(Object.keys(d).sort(), [...SCHEMA.routes.diagnosis.required].sort());
  assert.deepEqual(Object.keys(d.story.cuts[0]).sort(), [...SCHEMA.$defs.story_cut.required].sort());
  const h: HistoryResponse = { run: "r", tag: "t", op: "a", steps: [1, 2], states: ["flowing", "nonfinite"], norms: [0.5, "nan"], presences: [0.5, null] };
  assert.deepEqual(errors(h, SCHEMA.routes.history), []);
  const runs: RunsResponse = { r: { t: { steps: [0, 5], count: 2, graph_versions: 1, description: "", ops: 7 } } };
  assert.deepEqual(errors(runs, SCHEMA.routes.runs), []);
  const sampled = "sampled: 2 steps of a run logged from step 0 to 5";
  assert.deepEqual(errors({ r: { t: { ...runs.r.t, sampled } } } satisfies RunsResponse, SCHEMA.routes.runs), []);
  assert.deepEqual(errors({ ...h, sampled } satisfies HistoryResponse, SCHEMA.routes.history), []);
  const notices: NoticesResponse = { notices: [{ kind: "unreadable_name", run: 'lr="0.1"', tag: "gradflow", text: "missing" }] };
  assert.deepEqual(errors(notices, SCHEMA.routes.notices), []);
  assert.notDeepEqual(errors({ notices: [{ ...notices.notices[0], kind: "other" }] }, SCHEMA.routes.notices), []);
  assert.notDeepEqual(errors({ ...h, states: ["sideways"] }, SCHEMA.routes.history), []);
});

test("a layers body typed by types.ts conforms, key for key", () => {
  const l: LayersResponse = {
    run: "r", tag: "t", steps: [0, 5], count: 9, range: [1e-5, 2],
    layers: [{ name: "dense", variables: ["dense/kernel", "dense/bias"], states: ["flowing", null], norms: [0.5, null] }],
  };
  assert.deepEqual(errors(l, SCHEMA.routes.layers), []);
  assert.deepEqual(Object.keys(l).sort(), [...SCHEMA.routes.layers.required].sort());
  assert.deepEqual(Object.keys(l.layers[0]).sort(), [...SCHEMA.routes.layers.properties.layers.items.required].sort());
  assert.notDeepEqual(errors({ ...l, layers: [{ ...l.layers[0], states: ["sideways"] }] }, SCHEMA.routes.layers), []);
});

test("a graph_groups level typed by types.ts is what the schema describes, key for key", () => {
  const g = brokenVae();
  const level: GroupsResponse = {
    run: g.run, tag: g.tag, step: g.step, steps: g.steps, count: g.count, graph_id: g.graph_id, graph_version: 1, graph_versions: 1,
    group: "", ops_total: g.ops.name.length, ops_in_group: g.ops.name.length,
    groups: { name: ["vae"], ops: [7], states: { flowing: [3], zero: [0], none: [4], nonfinite: [0] }, cut_points: [1], inputs: [[1]] },
    ops: { ...g.ops, index: g.ops.name.map((_, i) => i), input_children: g.ops.inputs.map((ins) => ins.map(() => -1)) },
  };
  const schema = SCHEMA.routes.graph_groups;
  assert.deepEqual(errors(level, schema), []);
  assert.deepEqual(Object.keys(level).sort(), [...schema.required].sort());
  assert.deepEqual(Object.keys(level.ops).sort(), [...schema.properties.ops.required].sort());
  assert.deepEqual(Object.keys(level.groups).sort(), [...schema.properties.groups.required].sort());
  assert.notDeepEqual(errors({ ...level, groups: { ...level.groups, states: { flowing: [1] } } }, schema), []);
});
