// A small chart of one op's (or variable's) gradient norm across steps, log scale.
import { svg } from "./dom";
import { formatNorm } from "./format";
import { parseNorm } from "./model";
import { decadeLabel, decadeTicks, logAxis } from "./log_axis";
import type { LogAxis } from "./log_axis";
import type { GradState, HistoryResponse } from "./types";

export interface ChartPoint {
  step: number;
  state: GradState;
  norm: number | null;
  x: number;
  y: number; // NaN when the point has no finite positive norm
}

export const CHART = { width: 300, height: 140, pad: 6, left: 46, bottom: 26 };

/** Points of the history in a plot of `width` x `height` (inset by `pad`); on `axis` if given
 * (the chart's decade axis), else on the data's own log range. */
export function chartPoints(h: HistoryResponse, width = CHART.width, height = CHART.height, pad = CHART.pad, axis?: LogAxis | null): ChartPoint[] {
  const norms = h.norms.map(parseNorm);
  const logs = norms.filter((n): n is number => n !== null && Number.isFinite(n) && n > 0).map(Math.log10);
  const lo = axis ? axis.lo : logs.length ? Math.min(...logs) : 0;
  const hi = axis ? axis.hi : logs.length ? Math.max(...logs) : 1;
  const s0 = h.steps[0] ?? 0;
  const s1 = h.steps[h.steps.length - 1] ?? 1;
  const xOf = (step: number): number => pad + (s1 === s0 ? 0.5 : (step - s0) / (s1 - s0)) * (width - 2 * pad);
  return h.steps.map((step, i) => {
    const n = norms[i];
    const ok = n !== null && Number.isFinite(n) && n > 0;
    const t = ok ? (hi - lo < 1e-9 ? 0.5 : (Math.log10(n) - lo) / (hi - lo)) : NaN;
    return { step, state: h.states[i] ?? "none", norm: n, x: xOf(step), y: ok ? height - pad - t * (height - 2 * pad) : NaN };
  });
}

/** Up to `max` step ticks: the first, the last and evenly spaced logged steps between. */
export function stepTicks(steps: readonly number[], max = 5): number[] {
  if (steps.length <= max) return [...steps];
  const out = new Set<number>();
  for (let k = 0; k < max; k++) out.add(steps[Math.round((k * (steps.length - 1)) / (max - 1))]);
  return [...out];
}

/** The norm across steps, log scale: axes with ticks and units, the current step marked, and
 * dashed lines where the graph version changed. */
export function renderChart(h: HistoryResponse, currentStep: number, versionChanges: readonly { step: number; graph_version: number }[] = []): SVGSVGElement {
  const { width, height, pad, left, bottom } = CHART;
  const plotW = width - left - pad;
  const plotH = height - bottom - pad;
  const norms = h.norms.map(parseNorm).filter((n): n is number => n !== null && Number.isFinite(n) && n > 0);
  const axis = logAxis(norms.length ? [Math.min(...norms), Math.max(...norms)] : null) ?? { lo: -1, hi: 1 };
  const points = chartPoints(h, plotW, plotH, pad, axis);
  const root = svg("svg", { class: "gf-chart", width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
  root.setAttribute("aria-label", `gradient norm over ${points.length} steps, log scale`);
  root.append(svg("rect", { class: "gf-chart-bg", x: left, y: pad, width: plotW, height: plotH, rx: 3 }));
  const plot = svg("g", { transform: `translate(${left},${pad})` });
  const yOf = (d: number): number => plotH - pad - ((d - axis.lo) / (axis.hi - axis.lo)) * (plotH - 2 * pad);
  const yAxis = svg("g", { class: "gf-axis-y" });
  for (const d of decadeTicks(axis, 5)) {
    const y = yOf(d);
    yAxis.append(
      svg("line", { class: "gf-grid", x1: 0, x2: plotW, y1: y, y2: y }),
      svg("text", { class: "gf-chart-tick", x: -4, y: y + 3, "text-anchor": "end", "data-decade": d }, decadeLabel(d)),
    );
  }
  const s0 = h.steps[0] ?? 0;
  const s1 = h.steps[h.steps.length - 1] ?? 1;
  const xOf = (step: number): number => pad + (s1 === s0 ? 0.5 : (step - s0) / (s1 - s0)) * (plotW - 2 * pad);
  const xAxis = svg("g", { class: "gf-axis-x" });
  for (const step of stepTicks(h.steps)) {
    xAxis.append(svg("text", { class: "gf-chart-tick", x: xOf(step), y: plotH + 12, "text-anchor": "middle", "data-step": step }, String(step)));
  }
  for (const change of versionChanges) {
    if (change.step <= s0 || change.step > s1) continue;
    const x = xOf(change.step);
    const mark = svg("g", { class: "gf-chart-version", "data-step": change.step }, svg("line", { x1: x, x2: x, y1: 0, y2: plotH }), svg("text", { x: x + 2, y: 9 }, `v${change.graph_version}`));
    mark.append(svg("title", {}, `graph version ${change.graph_version} from step ${change.step}`));
    plot.append(mark);
  }
  plot.append(yAxis, xAxis);
  let d = "";
  let pen = false;
  for (const p of points) {
    if (Number.isNaN(p.y)) {
      pen = false;
      continue;
    }
    d += `${pen ? "L" : "M"}${p.x.toFixed(1)},${p.y.toFixed(1)} `;
    pen = true;
  }
  if (d) plot.append(svg("path", { class: "gf-chart-line", d }));
  for (const p of points) {
    const y = Number.isNaN(p.y) ? (p.state === "nonfinite" ? pad : plotH - pad) : p.y;
    const dot = svg("circle", { class: "gf-chart-dot", cx: p.x, cy: y, r: p.step === currentStep ? 4 : 2.2, "data-state": p.state });
    dot.append(svg("title", {}, `step ${p.step}: ${p.state}, norm ${formatNorm(p.norm)}`));
    plot.append(dot);
  }
  const current = points.find((p) => p.step === currentStep);
  if (current) plot.append(svg("line", { class: "gf-chart-now", x1: current.x, x2: current.x, y1: 0, y2: plotH }));
  root.append(
    plot,
    svg("text", { class: "gf-axis-label", x: left + plotW / 2, y: height - 2, "text-anchor": "middle" }, "step"),
    svg("text", { class: "gf-axis-label", x: 10, y: pad + plotH / 2, "text-anchor": "middle", transform: `rotate(-90 10 ${pad + plotH / 2})` }, "|grad| (L2, log)"),
  );
  return root;
}
