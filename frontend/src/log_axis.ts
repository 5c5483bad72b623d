// Log-scale axes that mean the same at every step: whole decades around a range of norms, with a
// tick per decade (or every few decades), for the layers view's bars and the history chart.

export interface LogAxis {
  /** log10 of the axis ends, whole decades, hi > lo */
  lo: number;
  hi: number;
}

/** The smallest and largest of several [lo, hi] ranges (nulls skipped). */
export function unionRange(...ranges: ReadonlyArray<readonly [number, number] | null | undefined>): [number, number] | null {
  let lo = Infinity;
  let hi = -Infinity;
  for (const r of ranges) {
    if (!r) continue;
    lo = Math.min(lo, r[0]);
    hi = Math.max(hi, r[1]);
  }
  return lo === Infinity || !(lo > 0) ? null : [lo, hi];
}

/** Whole decades around `range` (norms, not logs); at least one decade wide. */
export function logAxis(range: readonly [number, number] | null): LogAxis | null {
  if (!range || !(range[0] > 0) || !(range[1] > 0)) return null;
  const lo = Math.floor(Math.log10(range[0]) + 1e-9);
  let hi = Math.ceil(Math.log10(range[1]) - 1e-9);
  if (hi <= lo) hi = lo + 1;
  return { lo, hi };
}

/** Where a norm sits on the axis, 0 to 1 (clamped); 0 for no positive norm. */
export function axisFraction(norm: number | null, axis: LogAxis): number {
  if (norm === null || !(norm > 0)) return 0;
  if (!Number.isFinite(norm)) return 1;
  return Math.min(1, Math.max(0, (Math.log10(norm) - axis.lo) / (axis.hi - axis.lo)));
}

/** Decades to put a tick on (log10 values), at most `max` of them, evenly spaced, both ends included. */
export function decadeTicks(axis: LogAxis, max = 7): number[] {
  const span = axis.hi - axis.lo;
  const every = Math.max(1, Math.ceil(span / (max - 1)));
  const ticks: number[] = [];
  for (let d = axis.lo; d < axis.hi; d += every) ticks.push(d);
  ticks.push(axis.hi);
  return ticks;
}

/** "1e-6", "0.01", "1", "100", "1e+4" */
export function decadeLabel(d: number): string {
  if (d >= -2 && d <= 3) return String(10 ** d >= 1 ? 10 ** d : Number((10 ** d).toFixed(-d)));
  return `1e${d > 0 ? "+" : ""}${d}`;
}
