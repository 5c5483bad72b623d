// The lines of text a node shows, and the size they need. Sizes depend only on the structure
// (names, types, cut causes), never on a step's values, so a new step never needs a relayout.
import { formatNorm, shortName, truncate } from "./format";
import type { GroupSummary } from "./hierarchy";
import type { GraphModel } from "./model";
import type { VisibleNode } from "./visible";

export interface Line {
  kind: "cut" | "name" | "meta";
  text: string;
  /** Characters to reserve, for lines whose text changes with the step. */
  reserve?: number;
}

const MAX_CHARS = 30;
const CHAR_WIDTH = 6.6;
const LINE_HEIGHT = 14;

export function nodeLines(model: GraphModel, node: VisibleNode, summary: GroupSummary | undefined): Line[] {
  if (node.kind === "op") {
    const op = model.ops[node.op];
    const lines: Line[] = [];
    if (op.cause) lines.push({ kind: "cut", text: op.starved.length ? `✂ no gradient: ${op.cause}` : `✂ ${op.cause}, starves nothing` });
    lines.push({ kind: "name", text: truncate(shortName(op.name), MAX_CHARS) });
    const type = truncate(op.type, 18);
    lines.push({ kind: "meta", text: `${type} · ${op.state === "none" ? "no gradient" : op.measured ? formatNorm(op.norm) : op.state}`, reserve: type.length + 12 });
    return lines;
  }
  const group = node.group!;
  const lines: Line[] = [
    { kind: "name", text: `▸ ${truncate(group.label, MAX_CHARS - 2)}` },
    { kind: "meta", text: `${group.size} ops · ${summary?.worst ?? "none"}`, reserve: String(group.size).length + 16 },
  ];
  if (summary?.cuts.length) lines.push({ kind: "cut", text: `✂ holds ${summary.cuts.length} cut point${summary.cuts.length > 1 ? "s" : ""}` });
  else if (summary?.blockers.length) lines.push({ kind: "meta", text: `✂ ${summary.blockers.length} harmless blocker${summary.blockers.length > 1 ? "s" : ""}` });
  else if (group.callOp >= 0) lines.push({ kind: "meta", text: "function / loop body" });
  return lines;
}

/** Width fits the longest line (a meta line is sized for its longest possible norm). */
export function nodeSize(lines: readonly Line[]): { width: number; height: number } {
  let chars = 0;
  for (const l of lines) chars = Math.max(chars, Math.max(l.text.length, l.reserve ?? 0));
  return { width: Math.round(Math.min(240, Math.max(80, 14 + chars * CHAR_WIDTH))), height: 8 + lines.length * LINE_HEIGHT };
}
