// A small chart of one op's (or variable's) gradient norm across steps, log scale.
import { svg } from "./dom";
import { formatNorm } from "./format";
import { parseNorm } from "./model";
import type { GradState, HistoryResponse } from "./types";

export interface ChartPoint {
  step: number;
  state: GradState;
  norm: number | null;
  x: number;
  y: number; // NaN when the point has no finite positive norm
}

export const CHART = { width: 260, height: 90, pad: 8 };

export function chartPoints(h: HistoryResponse, width = CHART.width, height = CHART.height, pad = CHART.pad): ChartPoint[] {
  const norms = h.norms.map(parseNorm);
  const logs = norms.filter((n): n is number => n !== null && Number.isFinite(n) && n > 0).map(Math.log10);
  const lo = logs.length ? Math.min(...logs) : 0;
  const hi = logs.length ? Math.max(...logs) : 1;
  const s0 = h.steps[0] ?? 0;
  const s1 = h.steps[h.steps.length - 1] ?? 1;
  const xOf = (step: number): number => pad + (s1 === s0 ? 0.5 : (step - s0) / (s1 - s0)) * (width - 2 * pad);
  return h.steps.map((step, i) => {
    const n = norms[i];
    const ok = n !== null && Number.isFinite(n) && n > 0;
    const t = ok ? (hi - lo < 1e-9 ? 0.5 : (Math.log10(n!) - lo) / (hi - lo)) : NaN;
    return { step, state: h.states[i] ?? "none", norm: n, x: xOf(step), y: ok ? height - pad - t * (height - 2 * pad) : NaN };
  });
}

export function renderChart(h: HistoryResponse, currentStep: number): SVGSVGElement {
  const { width, height, pad } = CHART;
  const points = chartPoints(h);
  const root = svg("svg", { class: "gf-chart", width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
  root.setAttribute("aria-label", `gradient norm over ${points.length} steps`);
  root.append(svg("rect", { class: "gf-chart-bg", x: 0, y: 0, width, height, rx: 4 }));
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
  if (d) root.append(svg("path", { class: "gf-chart-line", d }));
  for (const p of points) {
    const y = Number.isNaN(p.y) ? (p.state === "nonfinite" ? pad : height - pad) : p.y;
    const dot = svg("circle", { class: "gf-chart-dot", cx: p.x, cy: y, r: p.step === currentStep ? 4 : 2.2, "data-state": p.state });
    dot.append(svg("title", {}, `step ${p.step}: ${p.state}, norm ${formatNorm(p.norm)}`));
    root.append(dot);
  }
  const current = points.find((p) => p.step === currentStep);
  if (current) root.append(svg("line", { class: "gf-chart-now", x1: current.x, x2: current.x, y1: 0, y2: height }));
  return root;
}
