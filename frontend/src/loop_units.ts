// Issue 17 in the details panel: a loop op's gradient norm through its iterations (a small log
// chart), and a ReLU-family gate's dead units. Kept out of details.ts, which only places them.
import { el, svg } from "./dom";
import { formatNorm } from "./format";
import { decadeLabel, decadeTicks, logAxis } from "./log_axis";
import type { Op } from "./model";

/** Under this ratio of first to last iteration the story says the gradient vanishes through the
 * loop (vocabulary.LOOP_VANISHING_RATIO); over its inverse, that it explodes. */
export const LOOP_VANISHING_RATIO = 1e-3;

export const LOOP_CHART = { width: 300, height: 120, pad: 6, left: 46, bottom: 24 };

/** "vanishing" / "exploding" / "steady" through the loop, or null with under two iterations. */
export function loopTrend(norms: readonly (number | null)[]): "vanishing" | "exploding" | "steady" | null {
  if (norms.length < 2) return null;
  const first = norms[0];
  const last = norms[norms.length - 1];
  if (first === null || last === null || !Number.isFinite(first) || !Number.isFinite(last)) return null;
  if (last > 0 && first < LOOP_VANISHING_RATIO * last) return "vanishing";
  if (first > 0 && last < LOOP_VANISHING_RATIO * first) return "exploding";
  return "steady";
}

/** "41 of 128 units dead (32 %)" or null for an op whose units are not counted. */
export function deadUnitsText(op: Op): string | null {
  if (!op.units || op.deadUnits === null || op.deadUnits === undefined) return null;
  return `${op.deadUnits.toLocaleString("en-US")} of ${op.units.toLocaleString("en-US")} units dead (${Math.round((100 * op.deadUnits) / op.units)} %) for the whole batch`;
}

/** The norm at each iteration, log scale, iteration 1 on the left; each dot carries
 * `data-iteration` and `data-norm` for tests. */
export function renderLoopChart(norms: readonly (number | null)[]): SVGSVGElement {
  const { width, height, pad, left, bottom } = LOOP_CHART;
  const plotW = width - left - pad;
  const plotH = height - bottom - pad;
  const positive = norms.filter((n): n is number => n !== null && Number.isFinite(n) && n > 0);
  const axis = logAxis(positive.length ? [Math.min(...positive), Math.max(...positive)] : null) ?? { lo: -1, hi: 1 };
  const xOf = (i: number): number => pad + (norms.length < 2 ? 0.5 : i / (norms.length - 1)) * (plotW - 2 * pad);
  const yOf = (d: number): number => plotH - pad - ((d - axis.lo) / (axis.hi - axis.lo || 1)) * (plotH - 2 * pad);
  const root = svg("svg", { class: "gf-chart gf-loop-chart", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "data-field": "iteration-chart" });
  root.setAttribute("aria-label", `gradient norm through ${norms.length} loop iterations, log scale`);
  root.append(svg("rect", { class: "gf-chart-bg", x: left, y: pad, width: plotW, height: plotH, rx: 3 }));
  const plot = svg("g", { transform: `translate(${left},${pad})` });
  for (const d of decadeTicks(axis, 4)) {
    plot.append(
      svg("line", { class: "gf-grid", x1: 0, x2: plotW, y1: yOf(d), y2: yOf(d) }),
      svg("text", { class: "gf-chart-tick", x: -4, y: yOf(d) + 3, "text-anchor": "end" }, decadeLabel(d)),
    );
  }
  const ticks = norms.length <= 1 ? [0] : [0, Math.floor((norms.length - 1) / 2), norms.length - 1];
  for (const i of new Set(ticks)) {
    plot.append(svg("text", { class: "gf-chart-tick", x: xOf(i), y: plotH + 12, "text-anchor": "middle" }, String(i + 1)));
  }
  let d = "";
  norms.forEach((n, i) => {
    if (n === null || !Number.isFinite(n) || n <= 0) return;
    d += `${d ? "L" : "M"}${xOf(i).toFixed(1)},${yOf(Math.log10(n)).toFixed(1)} `;
  });
  if (d) plot.append(svg("path", { class: "gf-chart-line", d }));
  norms.forEach((n, i) => {
    const ok = n !== null && Number.isFinite(n) && n > 0;
    const dot = svg("circle", {
      class: "gf-chart-dot", cx: xOf(i), cy: ok ? yOf(Math.log10(n)) : plotH - pad, r: 2.2,
      "data-iteration": i + 1, "data-norm": n === null ? "" : String(n), "data-state": ok ? "flowing" : "zero",
    });
    dot.append(svg("title", {}, `iteration ${i + 1}: norm ${formatNorm(n)}`));
    plot.append(dot);
  });
  root.append(
    plot,
    svg("text", { class: "gf-axis-label", x: left + plotW / 2, y: height - 2, "text-anchor": "middle" }, "iteration"),
    svg("text", { class: "gf-axis-label", x: 10, y: pad + plotH / 2, "text-anchor": "middle", transform: `rotate(-90 10 ${pad + plotH / 2})` }, "|dL/dstate|"),
  );
  return root;
}

/** The details panel's section for a loop: heading, chart and a line on the trend; [] for an op
 * without iteration norms. */
export function loopSection(op: Op): HTMLElement[] {
  const norms = op.iterationNorms;
  if (!norms || norms.length === 0) return [];
  const trend = loopTrend(norms);
  const words = {
    vanishing: "the gradient vanishes through the loop: the first iteration gets under 1/1,000 of the last's",
    exploding: "the gradient explodes through the loop: the first iteration gets over 1,000 times the last's",
    steady: "within a factor of 1,000 from the last iteration to the first",
  };
  return [
    el("h3", {}, `Gradient through the loop (${norms.length} iterations)`),
    el("div", { class: "gf-history", "data-field": "iterations", "data-trend": trend ?? "" },
      renderLoopChart(norms),
      el("div", { class: "gf-muted" }, `first ${formatNorm(norms[0])}, last ${formatNorm(norms[norms.length - 1])}${trend ? `: ${words[trend]}` : ""}`)),
  ];
}
