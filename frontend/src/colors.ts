// Colours of the overlay: a colour per state, and for flowing ops a log-scale magnitude ramp.
import type { GradState } from "./types";

export interface MagnitudeScale {
  lo: number; // log10 of the smallest finite positive norm
  hi: number;
}

export function magnitudeScale(norms: Iterable<number | null>): MagnitudeScale | null {
  let lo = Infinity;
  let hi = -Infinity;
  for (const n of norms) {
    if (n === null || !Number.isFinite(n) || n <= 0) continue;
    const l = Math.log10(n);
    if (l < lo) lo = l;
    if (l > hi) hi = l;
  }
  return lo === Infinity ? null : { lo, hi };
}

/** Position of a norm on the scale, 0 (smallest) to 1 (largest). */
export function magnitudeFraction(norm: number, scale: MagnitudeScale): number {
  if (!(norm > 0)) return 0;
  if (scale.hi - scale.lo < 1e-9) return 0.5;
  const t = (Math.log10(norm) - scale.lo) / (scale.hi - scale.lo);
  return Math.min(1, Math.max(0, t));
}

/** The flowing ramp: pale teal (small gradient) to deep blue (large). */
export function magnitudeColor(t: number): string {
  const hue = 175 + 50 * t;
  const sat = 55 + 25 * t;
  const light = 82 - 50 * t;
  return `hsl(${hue.toFixed(0)}, ${sat.toFixed(0)}%, ${light.toFixed(0)}%)`;
}

/** Text on a flowing fill: dark on pale, light on deep. */
export function magnitudeTextColor(t: number): string {
  return t > 0.55 ? "#ffffff" : "#10202a";
}

export const STATE_LABEL: Record<GradState, string> = {
  flowing: "flowing",
  zero: "zero gradient",
  none: "no gradient",
  nonfinite: "NaN / Inf",
};

/** The scale of a served [smallest, largest] norm range (the same at every step). */
export function scaleOfRange(range: readonly [number, number] | null): MagnitudeScale | null {
  if (!range || !(range[0] > 0) || !(range[1] > 0)) return null;
  return { lo: Math.log10(range[0]), hi: Math.log10(range[1]) };
}
