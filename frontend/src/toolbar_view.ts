// Parts of the toolbar that show data: the step slider with its marks and a label that keeps its
// width, and what an empty logdir shows instead of dead controls.
import { clear, el, setText } from "./dom";
import type { DiagnosisResponse } from "./types";

/** The slider over the logged steps; marks where the graph version changed and where NaN or
 * Inf first appeared; a label as wide as its widest text, so the toolbar never moves. */
export function renderSlider(
  slider: HTMLInputElement,
  marks: HTMLElement,
  label: HTMLOutputElement,
  steps: readonly number[],
  step: number,
  latest: boolean,
  timeline: DiagnosisResponse | null,
): void {
  slider.max = String(Math.max(0, steps.length - 1));
  slider.value = String(Math.max(0, steps.indexOf(step)));
  slider.setAttribute("aria-valuetext", `step ${step}`);
  const last = steps[steps.length - 1] ?? 0;
  const digits = Math.max(1, ...steps.map((s) => String(s).length));
  label.style.minWidth = `${digits + ` (latest) · ${steps.length} logged`.length}ch`;
  setText(label, `${step}${latest ? " (latest)" : ""} · ${steps.length} logged`);
  const key = `${steps.length}:${steps[0]}:${last}:${timeline?.first_nonfinite_step}:${timeline?.version_changes.length}`;
  if (marks.dataset.key === key) return;
  marks.dataset.key = key;
  clear(marks);
  const at = (s: number): string => `${steps.length > 1 ? ((steps.indexOf(s) / (steps.length - 1)) * 100).toFixed(2) : 50}%`;
  for (const change of timeline?.version_changes.slice(1) ?? []) {
    const m = el("span", { class: "gf-mark", "data-kind": "version", "data-step": change.step, title: `graph version ${change.graph_version} from step ${change.step}` });
    m.style.left = at(change.step);
    marks.append(m);
  }
  const bad = timeline?.first_nonfinite_step;
  if (bad !== null && bad !== undefined && steps.includes(bad)) {
    const m = el("span", { class: "gf-mark", "data-kind": "nonfinite", "data-step": bad, title: `NaN or Inf gradients first at step ${bad}` });
    m.style.left = at(bad);
    marks.append(m);
  }
}

/** What to do when the logdir has no gradflow data: the one-line call and the Keras callback. */
export function renderEmpty(): HTMLElement {
  const code = (text: string): HTMLElement => el("pre", { class: "gf-code" }, el("code", {}, text));
  return el(
    "div",
    { id: "gf-empty", class: "gf-empty" },
    el("h2", {}, "No gradient-flow data in this logdir yet"),
    el("p", {}, "Log it from a training loop, with a default summary writer (one call per logged step):"),
    code('import tb_gradflow\n\nwith writer.as_default():\n    tb_gradflow.summary.gradflow("gradflow", loss_fn, x, y, step=step)'),
    el("p", {}, "or from Keras, beside the TensorBoard callback:"),
    code("model.fit(x, y, callbacks=[tb_gradflow.keras.GradFlowCallback(log_dir, (x[:32], y[:32]))])"),
    el("p", { class: "gf-muted" }, "Then press TensorBoard's reload button. Without TensorBoard: print(tb_gradflow.analyze(loss_fn, x, y))."),
  );
}
