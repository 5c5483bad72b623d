// The lines of text a node shows, and the size they need. Sizes depend only on the structure
// (names, types, cut causes), never on a step's values, so a new step never needs a relayout.
// Text is measured with the canvas (measureText) in the label font, and long names are cut with
// an ellipsis; the node's tooltip has the whole name.
import { formatNorm, shortName } from "./format";
import { type Group, type GroupSummary, layerBeside } from "./hierarchy";
import type { GraphModel } from "./model";
import type { VisibleNode } from "./visible";

export interface Line {
  kind: "cut" | "name" | "meta";
  text: string;
  /** Width to reserve (px at zoom 1): the widest text the line can take at any step. */
  width: number;
}

/** The label font size in graph units (the SVG's `.gf-node text`). */
export const LABEL_PX = 11;
const FAMILY = 'Roboto, "Helvetica Neue", Arial, sans-serif';
const LINE_HEIGHT = 14;
const PAD = 14;
const MIN_WIDTH = 80;
const MAX_WIDTH = 240;
/** The widest value a meta line shows ("-8.88e-88" is as wide as any formatted norm). */
const WIDEST_VALUE = "no gradient";

type Measure = (text: string, bold: boolean) => number;

function canvasMeasure(): Measure {
  let ctx: CanvasRenderingContext2D | OffscreenCanvasRenderingContext2D | null = null;
  if (typeof document !== "undefined") ctx = document.createElement("canvas").getContext("2d");
  else if (typeof OffscreenCanvas !== "undefined") ctx = new OffscreenCanvas(1, 1).getContext("2d");
  if (!ctx) return (text) => text.length * 6.6; // no canvas (node unit tests): an estimate
  const c = ctx;
  const cache = new Map<string, number>();
  return (text, bold) => {
    const key = `${bold ? "b" : "n"}${text}`;
    let w = cache.get(key);
    if (w === undefined) {
      c.font = `${bold ? "600 " : ""}${LABEL_PX}px ${FAMILY}`;
      w = c.measureText(text).width;
      if (cache.size > 50_000) cache.clear();
      cache.set(key, w);
    }
    return w;
  };
}

let measure: Measure | null = null;
const measured = (text: string, bold = false): number => (measure ??= canvasMeasure())(text, bold);

/** `text`, or its longest prefix that fits `maxWidth` with an ellipsis. */
export function fitText(text: string, maxWidth: number, bold = false): string {
  if (measured(text, bold) <= maxWidth) return text;
  let lo = 0;
  let hi = text.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (measured(`${text.slice(0, mid)}…`, bold) <= maxWidth) lo = mid;
    else hi = mid - 1;
  }
  return `${text.slice(0, lo)}…`;
}

function line(kind: Line["kind"], text: string, reserve?: string): Line {
  const bold = kind !== "meta";
  const fitted = fitText(text, MAX_WIDTH - PAD, bold);
  return { kind, text: fitted, width: Math.max(measured(fitted, bold), reserve ? measured(reserve) : 0) };
}

export function nodeLines(model: GraphModel, node: VisibleNode, summary: GroupSummary | undefined): Line[] {
  if (node.kind === "op") {
    const op = model.ops[node.op];
    const lines: Line[] = [];
    if (op.cause) lines.push(line("cut", op.starved.length ? `✂ no gradient: ${op.cause}` : `✂ ${op.cause}, starves nothing`));
    const name = shortName(op.name);
    lines.push(line("name", name));
    const value = op.state === "none" ? "no gradient" : op.measured ? formatNorm(op.norm) : op.state;
    // "ReadVariableOp · ReadVariableOp" says nothing twice: the type only when the name is not it
    const type = name.replace(/_\d+$/, "") === op.type ? "" : `${fitText(op.type, 120)} · `;
    lines.push(line("meta", `${type}${value}`, `${type}${WIDEST_VALUE}`));
    return lines;
  }
  const group = node.group!;
  const lines: Line[] = [
    line("name", `▸ ${groupName(group)}`),
    line("meta", `${group.size} ops · ${summary?.worst ?? "none"}`, `${group.size} ops · nonfinite`),
  ];
  if (summary?.cuts.length) lines.push(line("cut", `✂ holds ${summary.cuts.length} cut point${summary.cuts.length > 1 ? "s" : ""}`));
  else if (summary?.blockers.length) lines.push(line("meta", `✂ ${summary.blockers.length} harmless blocker${summary.blockers.length > 1 ? "s" : ""}`));
  else if (group.callOp >= 0) lines.push(line("meta", "function / loop body"));
  return lines;
}

/** Width fits the widest line (a meta line is sized for its widest possible value). */
export function nodeSize(lines: readonly Line[]): { width: number; height: number } {
  let width = 0;
  for (const l of lines) width = Math.max(width, l.width);
  return { width: Math.round(Math.min(MAX_WIDTH, Math.max(MIN_WIDTH, PAD + width))), height: 8 + lines.length * LINE_HEIGHT };
}

/** A group's full name for its tooltip: its scope, and its layer's whole path if it has one. */
export function groupTitle(group: Group): string {
  return group.layer === null ? group.id : `${group.id}\nlayer ${group.layer}`;
}

/** A group's name as drawn: its label, and its layer where the label names another. */
export function groupName(group: Group): string {
  const layer = layerBeside(group);
  return layer === null ? group.label : `${group.label} · layer ${layer.split("/").pop()}`;
}
