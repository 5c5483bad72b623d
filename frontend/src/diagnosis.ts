// The plain-words diagnosis of one step, as structured text for the banner.
import { listNames, plural } from "./format";
import type { GraphModel } from "./model";
import type { Cause, CutPointJson } from "./types";

export type Tone = "ok" | "cut" | "warn";

export interface CutLine {
  op: number;
  opName: string;
  /** The op type, e.g. "PyFunc". */
  type: string;
  /** e.g. "tf.numpy_function at demo/vae.py:72 has no gradient" */
  text: string;
  starved: string[];
}

export interface Diagnosis {
  tone: Tone;
  headline: string;
  /** Cut points that starve variables. */
  cuts: CutLine[];
  /** Blocking ops that starve nothing: another path carries the gradient. */
  harmless: CutLine[];
  notes: string[];
}

const WHAT: Record<Cause, string> = {
  numpy_function: "tf.numpy_function",
  stop_gradient: "tf.stop_gradient",
  integer_cast: "a cast to an integer type",
  non_differentiable: "a non-differentiable op",
  custom_gradient: "a tf.custom_gradient",
};

export function describeCut(cut: Pick<CutPointJson, "cause" | "op_type" | "source" | "starved_variables">): string {
  const what = cut.cause === "non_differentiable" ? `${cut.op_type} (non-differentiable)` : (WHAT[cut.cause] ?? cut.op_type);
  const where = cut.source ? ` at ${cut.source}` : "";
  const effect =
    cut.starved_variables.length === 0
      ? " blocks the gradient but starves nothing: another path carries it"
      : cut.cause === "stop_gradient"
        ? " stops the gradient (often on purpose)"
        : " has no gradient";
  return `${what}${where}${effect}`;
}

export function diagnose(model: GraphModel): Diagnosis {
  const g = model.response;
  const starved = g.starved_variables;
  const cuts: CutLine[] = g.cut_points.map((c) => ({
    op: c.op,
    opName: c.op_name,
    type: c.op_type,
    text: describeCut(c),
    starved: c.starved_variables,
  }));
  const notes: string[] = [];
  const starvingCuts = cuts.filter((c) => c.starved.length > 0);
  const byCut = new Set(starvingCuts.flatMap((c) => c.starved));
  const unreached = starved.filter((v) => !byCut.has(v));
  let headline: string;
  let tone: Tone = "ok";
  if (starvingCuts.length > 0) {
    tone = "cut";
    headline = `${plural(starvingCuts.length, "cut point")} ${starvingCuts.length === 1 ? "starves" : "starve"} ${plural(byCut.size, "trainable variable")}: ${listNames([...byCut])}`;
  } else if (starved.length > 0) {
    tone = "cut";
    headline = `${plural(starved.length, "trainable variable")} ${starved.length === 1 ? "gets" : "get"} no gradient: ${listNames(starved)}`;
  } else if (g.nonfinite_variables.length > 0 || g.zero_variables.length > 0) {
    tone = "warn";
    headline = "Gradient reaches every trainable variable, but not all of it is usable";
  } else {
    headline = "Gradient reaches every trainable variable";
  }
  if (starvingCuts.length > 0 && unreached.length > 0) {
    notes.push(`${plural(unreached.length, "variable")} ${unreached.length === 1 ? "does" : "do"} not reach the loss at all: ${listNames(unreached)}`);
  }
  if (g.nonfinite_variables.length > 0) {
    if (tone === "ok") tone = "warn";
    notes.push(`${plural(g.nonfinite_variables.length, "variable")} with a NaN or Inf gradient: ${listNames(g.nonfinite_variables)}`);
  }
  if (g.zero_variables.length > 0) {
    if (tone === "ok") tone = "warn";
    notes.push(`${plural(g.zero_variables.length, "variable")} with an all-zero gradient at this step: ${listNames(g.zero_variables)}`);
  }
  if (model.fallbackReason) notes.push(`Op-level detail is unavailable: ${model.fallbackReason}`);
  return { tone, headline, cuts: starvingCuts, harmless: cuts.filter((c) => c.starved.length === 0), notes };
}
