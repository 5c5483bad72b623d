// Text for numbers and names.

export function formatNorm(norm: number | null): string {
  if (norm === null) return "—";
  if (Number.isNaN(norm)) return "NaN";
  if (!Number.isFinite(norm)) return norm > 0 ? "Inf" : "-Inf";
  if (norm === 0) return "0";
  const a = Math.abs(norm);
  if (a < 1e-3 || a >= 1e4) return norm.toExponential(2);
  return String(Number(norm.toPrecision(3)));
}

export function shortName(name: string): string {
  const parts = name.split("/");
  return parts[parts.length - 1] || name;
}

export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** "a, b, c and 4 more" */
export function listNames(names: readonly string[], max = 4): string {
  if (names.length <= max) return names.join(", ");
  return `${names.slice(0, max).join(", ")}, … (${names.length - max} more)`;
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** Why an op's norm or presence is not known: a body op's value is not fetched, and the eager
 * fallback (a loss that cannot be traced) records no op's gradient at all. */
export function notMeasuredText(parent: number, fallback: boolean): string {
  if (fallback) return "not recorded in the eager fallback";
  return parent >= 0 ? "not measured inside a body" : "not measured";
}
