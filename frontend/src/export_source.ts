// The plugin's routes answered from the data inlined in an exported HTML file
// (tb_gradflow/export/bundle.py writes it): the same JSON bodies the HTTP routes send.
import type { DataSource, RouteParams } from "./api";
import { RouteError } from "./api";
import { sampleLayers } from "./heatmap_model";
import type { CutPointJson, GradState, GraphResponse, HistoryResponse, LayersResponse, RunsResponse, WireNorm } from "./types";

type Structure = Omit<GraphResponse, "step" | "loss" | "ops" | "variables" | "starved_variables" | "zero_variables" | "nonfinite_variables"> & {
  ops: Omit<GraphResponse["ops"], "state" | "norm" | "presence">;
  variables: Omit<GraphResponse["variables"], "state" | "norm" | "presence">;
  cut_points: CutPointJson[];
};

interface BlobRef {
  blob: number;
}

interface VersionData {
  structure: Structure;
  rows: number;
  losses: (number | string | null)[];
  op_states: BlobRef;
  op_norm_digits: BlobRef;
  op_norm_exponents: BlobRef;
  variable_states: BlobRef;
  variable_norm_digits: BlobRef;
  variable_norm_exponents: BlobRef;
  op_presence: BlobRef;
  variable_presence: BlobRef;
  /** issue 17, by op index, only for graphs that have them: counted units, and per step row the
   * dead units and loops' iteration norms */
  units?: Record<string, number>;
  unit_rows?: { dead_units: Record<string, number>; iteration_norms: Record<string, WireNorm[]> }[];
}

interface SeriesData {
  versions: VersionData[];
  steps: number[];
  where: [number, number][];
  diagnosis: unknown;
  /** the `layers` route's body (less run and tag) over the file's steps */
  layers: Omit<LayersResponse, "run" | "tag">;
}

export interface ExportPayload {
  format: number;
  state_names: GradState[];
  /** the routes' JSON value of each presence code (null: unknown) */
  presence_values: (number | null)[];
  /** a norm whose exponent is `norm_special_exponent` reads as norm_specials[its digits] */
  norm_specials: WireNorm[];
  norm_special_exponent: number;
  runs: RunsResponse;
  series: Record<string, Record<string, SeriesData>>;
  initial: { run: string; tag: string; step: number | null; compare: string | null };
  blob_sizes: number[];
  /** Filled by readPayload from the bytes after the JSON. */
  blobs: Uint8Array<ArrayBuffer>[];
}

function bytes(b64: string): Uint8Array<ArrayBuffer> {
  const text = atob(b64);
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

/** Items-major byte planes (bundle.byte_planes) back to one array per item, over the steps. */
function unplane(planes: Uint8Array<ArrayBuffer>, width: number): Uint8Array<ArrayBuffer> {
  const n = planes.length / width;
  const out = new Uint8Array(planes.length);
  for (let p = 0; p < width; p++) {
    const base = p * n;
    for (let i = 0; i < n; i++) out[i * width + p] = planes[base + i];
  }
  return out;
}

/** Norms as the routes write them, from their digits and powers of ten (bundle.py): the number
 * nearest digits × 10^exponent, which is what parsing the route's JSON gives. */
class Norms {
  private readonly digits: Int32Array;
  private readonly exponents: Int8Array;

  constructor(digits: Uint8Array<ArrayBuffer>, exponents: Uint8Array<ArrayBuffer>, private readonly payload: ExportPayload) {
    this.digits = new Int32Array(digits.buffer);
    this.exponents = new Int8Array(exponents.buffer);
  }

  at(i: number): WireNorm {
    const e = this.exponents[i];
    return e === this.payload.norm_special_exponent ? this.payload.norm_specials[this.digits[i]] : Number(`${this.digits[i]}e${e}`);
  }
}

/** A decoded version: value (step row r, item i) at [i * rows + r]. */
class Values {
  readonly opStates: Uint8Array;
  readonly opNorms: Norms;
  readonly varStates: Uint8Array;
  readonly varNorms: Norms;
  readonly opPresence: Uint8Array;
  readonly varPresence: Uint8Array;
  private opIndex: Map<string, number> | null = null;
  private varIndex: Map<string, number> | null = null;

  constructor(readonly data: VersionData, payload: ExportPayload) {
    const blobs = payload.blobs;
    const norms = (digits: BlobRef, exponents: BlobRef) => new Norms(unplane(blobs[digits.blob], 4), unplane(blobs[exponents.blob], 1), payload);
    this.opStates = unplane(blobs[data.op_states.blob], 1);
    this.opNorms = norms(data.op_norm_digits, data.op_norm_exponents);
    this.varStates = unplane(blobs[data.variable_states.blob], 1);
    this.varNorms = norms(data.variable_norm_digits, data.variable_norm_exponents);
    this.opPresence = unplane(blobs[data.op_presence.blob], 1);
    this.varPresence = unplane(blobs[data.variable_presence.blob], 1);
  }

  index(kind: "op" | "variable", name: string): number | undefined {
    if (kind === "op") {
      this.opIndex ??= new Map(this.data.structure.ops.name.map((n, i) => [n, i]));
      return this.opIndex.get(name);
    }
    this.varIndex ??= new Map(this.data.structure.variables.name.map((n, i) => [n, i]));
    return this.varIndex.get(name);
  }
}

export class InlineSource implements DataSource {
  private readonly decoded = new Map<VersionData, Values>();

  constructor(private readonly payload: ExportPayload) {}

  get(route: string, params: RouteParams): Promise<unknown> {
    // a RouteError thrown while answering rejects the promise, as an HTTP route's answer would
    return new Promise((resolve) => resolve(this.answer(route, params)));
  }

  private answer(route: string, params: RouteParams): unknown {
    if (route === "runs") return this.payload.runs;
    const run = String(params.run ?? "");
    const tag = String(params.tag ?? "");
    const series = this.payload.series[run]?.[tag];
    if (!series) throw new RouteError(404, `no run ${JSON.stringify(run)} with tag ${JSON.stringify(tag)} in this file`);
    if (route === "diagnosis") return series.diagnosis;
    if (route === "layers") return sampleLayers({ ...series.layers, run, tag }, Number(params.columns ?? series.layers.steps.length));
    if (route === "graph") return this.graph(run, tag, series, params.step);
    if (route === "history") {
      const kind = params.op !== undefined ? "op" : "variable";
      return this.history(run, tag, series, kind, String(params[kind] ?? ""));
    }
    throw new RouteError(404, `no route ${route} in an exported file`);
  }

  private values(v: VersionData): Values {
    let d = this.decoded.get(v);
    if (!d) {
      d = new Values(v, this.payload);
      this.decoded.set(v, d);
    }
    return d;
  }

  private graph(run: string, tag: string, series: SeriesData, stepParam: string | number | undefined): GraphResponse {
    const step = stepParam === undefined ? series.steps[series.steps.length - 1] : Number(stepParam);
    const k = series.steps.indexOf(step);
    if (k < 0) throw new RouteError(404, `step ${step} is not logged (steps ${series.steps[0]} to ${series.steps[series.steps.length - 1]})`);
    const [vi, row] = series.where[k];
    const data = series.versions[vi];
    const v = this.values(data);
    const names = this.payload.state_names;
    const presenceOf = this.payload.presence_values;
    const column = (states: Uint8Array, norms: Norms, presences: Uint8Array, count: number) => {
      const state: GradState[] = [];
      const norm: WireNorm[] = [];
      const presence: (number | null)[] = [];
      for (let i = 0; i < count; i++) {
        const at = i * data.rows + row;
        const s = names[states[at]];
        state.push(s);
        norm.push(norms.at(at));
        presence.push(presenceOf[presences[at]]);
      }
      return { state, norm, presence };
    };
    const s = data.structure;
    const ops = column(v.opStates, v.opNorms, v.opPresence, s.ops.name.length);
    const vars = column(v.varStates, v.varNorms, v.varPresence, s.variables.name.length);
    const namesIn = (state: GradState) => s.variables.name.filter((_, i) => vars.state[i] === state);
    const spread = <T>(byOp: Record<string, T> | undefined): (T | null)[] => s.ops.name.map((_, i) => byOp?.[i] ?? null);
    const unitRow = data.unit_rows?.[row];
    const units = { units: spread(data.units), dead_units: spread(unitRow?.dead_units), iteration_norms: spread(unitRow?.iteration_norms) };
    return {
      ...s,
      run,
      tag,
      step,
      loss: data.losses[row] as number | null,
      ops: { ...s.ops, ...ops, ...units },
      variables: { ...s.variables, ...vars },
      starved_variables: namesIn("none"),
      zero_variables: namesIn("zero"),
      nonfinite_variables: namesIn("nonfinite"),
    };
  }

  private history(run: string, tag: string, series: SeriesData, kind: "op" | "variable", name: string): HistoryResponse {
    const steps: number[] = [];
    const states: GradState[] = [];
    const norms: WireNorm[] = [];
    const presences: (number | null)[] = [];
    series.steps.forEach((step, k) => {
      const [vi, row] = series.where[k];
      const data = series.versions[vi];
      const v = this.values(data);
      const i = v.index(kind, name);
      if (i === undefined) return;
      const at = i * data.rows + row;
      const s = this.payload.state_names[kind === "op" ? v.opStates[at] : v.varStates[at]];
      steps.push(step);
      states.push(s);
      norms.push((kind === "op" ? v.opNorms : v.varNorms).at(at));
      presences.push(this.payload.presence_values[kind === "op" ? v.opPresence[at] : v.varPresence[at]]);
    });
    if (steps.length === 0) throw new RouteError(404, `no ${kind} named ${JSON.stringify(name)} in run ${JSON.stringify(run)}, tag ${JSON.stringify(tag)}`);
    return { run, tag, [kind]: name, steps, states, norms, presences };
  }
}

/** The payload of the page, in <script id="gradflow-data">: base64 of gzip of a 4-byte JSON
 * length, the JSON, then the blobs it lists (bundle.encode). */
export async function readPayload(doc: Document): Promise<ExportPayload> {
  const text = doc.getElementById("gradflow-data")?.textContent?.trim() ?? "";
  const stream = new Blob([bytes(text)]).stream().pipeThrough(new DecompressionStream("gzip"));
  const body = new Uint8Array(await new Response(stream).arrayBuffer());
  const length = new DataView(body.buffer).getUint32(0, true);
  const payload = JSON.parse(new TextDecoder().decode(body.subarray(4, 4 + length))) as ExportPayload;
  payload.blobs = [];
  let at = 4 + length;
  for (const size of payload.blob_sizes) {
    payload.blobs.push(body.slice(at, at + size));
    at += size;
  }
  return payload;
}
