// Regex search over op and variable names.
import type { Op, Variable } from "./model";

export interface SearchHit {
  kind: "op" | "variable";
  index: number;
  name: string;
}

export interface SearchResult {
  hits: SearchHit[];
  total: number;
  error: string | null;
}

export function compilePattern(pattern: string): RegExp | string {
  try {
    return new RegExp(pattern, "i");
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

export function search(pattern: string, ops: readonly Op[], variables: readonly Variable[], limit = 100): SearchResult {
  if (!pattern) return { hits: [], total: 0, error: null };
  const re = compilePattern(pattern);
  if (typeof re === "string") return { hits: [], total: 0, error: re };
  const hits: SearchHit[] = [];
  let total = 0;
  for (const v of variables) {
    if (re.test(v.name)) {
      total++;
      if (hits.length < limit) hits.push({ kind: "variable", index: v.index, name: v.name });
    }
  }
  for (const op of ops) {
    if (re.test(op.name)) {
      total++;
      if (hits.length < limit) hits.push({ kind: "op", index: op.index, name: op.name });
    }
  }
  return { hits, total, error: null };
}

/** Indices of the ops that match, or that read a matching variable. */
export function matchingOps(pattern: string, ops: readonly Op[], variables: readonly Variable[]): Set<number> {
  const out = new Set<number>();
  if (!pattern) return out;
  const re = compilePattern(pattern);
  if (typeof re === "string") return out;
  for (const op of ops) if (re.test(op.name)) out.add(op.index);
  for (const v of variables) if (re.test(v.name)) for (const r of v.readers) out.add(r);
  return out;
}
