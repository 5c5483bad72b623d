// The JSON of the plugin's routes (docs/routes.md), and the states and causes they speak.

export type GradState = "flowing" | "zero" | "none" | "nonfinite";
export const STATES: readonly GradState[] = ["flowing", "zero", "none", "nonfinite"];

export type Cause =
  | "numpy_function"
  | "stop_gradient"
  | "integer_cast"
  | "non_differentiable"
  | "custom_gradient"
  | "integer_variable"
  | "detach"
  | "numpy";

/** A norm as the routes send it: a number, null (no gradient / not measured), or "inf" / "nan". */
export type WireNorm = number | null | "inf" | "nan";

export interface TagSummary {
  steps: [number, number];
  count: number;
  graph_versions: number;
  description: string;
  /** ops in the graph version of the last step (decides progressive loading) */
  ops: number;
  /** present when the server holds only a sample of the logged steps: why, and what to do */
  sampled?: string;
}

export type RunsResponse = Record<string, Record<string, TagSummary>>;

export interface CutPointJson {
  op: number;
  op_name: string;
  op_type: string;
  cause: Cause;
  source: string;
  detail: string;
  starved_variables: string[];
  parallel_cuts: string[];
  library_source: string | null;
}

/** What `graph` and `graph_groups` both say about the step and graph version they answer for. */
export interface GraphHead {
  run: string;
  tag: string;
  step: number;
  steps: [number, number];
  count: number;
  graph_id: string;
  graph_version: number;
  graph_versions: number;
  /** present when the server holds only a sample of the logged steps */
  sampled?: string;
}

export interface GraphResponse extends GraphHead {
  loss: number | null;
  fallback_reason: string | null;
  ops: {
    name: string[];
    type: string[];
    scope: string[];
    inputs: number[][];
    variable_inputs: number[][];
    parent: number[];
    shape: string[][];
    dtype: string[][];
    source: string[];
    state: GradState[];
    norm: WireNorm[];
    measured: boolean[];
    cause: (Cause | null)[];
    cause_detail: string[];
    starved: number[][];
    /** fraction of the gradient's elements nonzero and finite (within 1/254); null unknown */
    presence: (number | null)[];
    /** a gating op (ReLU, clip, tf.where): its presence is the share of what arrives that it passes back to its input */
    presence_at_input: boolean[];
    /** issue 17: a ReLU-family gate's units (last axis) and how many are dead; null otherwise */
    units?: (number | null)[];
    dead_units?: (number | null)[];
    /** issue 17: a loop's norm at each iteration, first first; null for other ops */
    iteration_norms?: (WireNorm[] | null)[];
  };
  variables: {
    name: string[];
    /** the variable's layer (name scope, or a torch parameter's module path), by the server's rule */
    layer: string[];
    shape: string[];
    state: GradState[];
    norm: WireNorm[];
    presence: (number | null)[];
    /** its gradient is IndexedSlices (embedding, gather): untouched rows get none, normally */
    sparse_gradient: boolean[];
  };
  cut_points: CutPointJson[];
  starved_variables: string[];
  zero_variables: string[];
  nonfinite_variables: string[];
}

/** `layers`: each layer's gradient norm (L2 over its variables') at up to `columns` logged steps. */
export interface LayersResponse {
  run: string;
  tag: string;
  /** the steps shown, one column each: every logged step, or an even sample of them */
  steps: number[];
  /** how many steps are logged in all */
  count: number;
  /** smallest and largest flowing layer norm over every logged step: the colour scale */
  range: [number, number] | null;
  /** inputs first */
  layers: { name: string; variables: string[]; states: (GradState | null)[]; norms: WireNorm[] }[];
}

export interface HistoryResponse {
  run: string;
  tag: string;
  op?: string;
  variable?: string;
  steps: number[];
  states: GradState[];
  norms: WireNorm[];
  presences: (number | null)[];
  /** present when the server holds only a sample of the logged steps */
  sampled?: string;
}

/** Data the tab cannot show in full (route `notices`). */
export interface Notice {
  kind: "sampled" | "unreadable_name";
  run: string;
  tag: string;
  text: string;
}

export interface NoticesResponse {
  notices: Notice[];
}

/** A sentence of the diagnosis and the names it is about (served whole; the tab may shorten the list). */
export interface Sentence {
  text: string;
  names: string[];
}

/** One cut point as the diagnosis tells it (tb_gradflow/story.py). */
export interface StoryCut extends Omit<CutPointJson, "op"> {
  /** "tf.numpy_function at vae.py:42 has no gradient" */
  text: string;
  /** how to fix it */
  hint: string;
  /** what reaches it from the loss */
  arriving: string;
  /** "nothing passes back through it to its inputs" */
  blocked: string;
  blocked_inputs: string[];
}

export type Tone = "ok" | "cut" | "warn";

export interface Story {
  tone: Tone;
  headline: Sentence;
  cuts: StoryCut[];
  harmless: StoryCut[];
  harmless_summary: string | null;
  harmless_hints: { cause: Cause; hint: string }[];
  notes: (Sentence & { kind: "fallback" | "unused" | "zero" | "nonfinite" | "dead_gate" | "sparse_variable" | "few_rows" | "reads_nothing" | "frozen" | "summed_loss" | "dead_units" | "mask" | "loop_vanishing" | "loop_exploding"; hint?: string })[];
}

export interface DiagnosisResponse {
  step: number;
  steps: number[];
  last_step: number;
  ops: number;
  variables: Record<string, { state: GradState; norm: WireNorm; presence: number | null; sparse_gradient: boolean }>;
  cut_points: Omit<CutPointJson, "op" | "detail">[];
  /** presence of each op where known, and whether it is at the op's input (a gate) or output */
  op_presence: Record<string, { presence: number; presence_of: "input" | "output" }>;
  starved_variables: string[];
  story: Story;
  /** [smallest, largest] flowing norm over every logged step; null when none */
  norm_range: { ops: [number, number] | null; variables: [number, number] | null };
  first_nonfinite_step: number | null;
  version_changes: { step: number; graph_version: number }[];
  /** issue 17: every ReLU-family gate whose units are counted, and every loop's iteration norms */
  dead_units: Record<string, { units: number; dead_units: number | null; since: number | null; layer: string | null }>;
  iteration_norms: Record<string, WireNorm[]>;
  /** issue 16: variables the loss reads that Keras does not train (listed apart) */
  frozen_variables?: string[];
}

/** One name-scope group of the graph (`graph_groups` route): its subgroups with counts, its own
 * ops in the `graph` route's columns, and the edges between these children. Children are numbered
 * subgroups first (0..G-1), then own ops (G..G+K-1). */
export interface GroupsResponse extends GraphHead {
  group: string;
  ops_total: number;
  ops_in_group: number;
  groups: {
    name: string[];
    ops: number[];
    states: Record<GradState, number[]>;
    cut_points: number[];
    /** per subgroup: child numbers feeding it */
    inputs: number[][];
  };
  ops: GraphResponse["ops"] & {
    /** op index in the whole graph (what `inputs` and `parent` refer to) */
    index: number[];
    /** per op: the child number of each input, -1 outside the group */
    input_children: number[][];
  };
}
