// The layers view: the "gradient flow" plot, one row per layer in depth order.
import { clear, el } from "./dom";
import { formatNorm } from "./format";
import { barLength, barScale, layerRows } from "./layers_model";
import type { VariableBar } from "./layers_model";
import type { GraphModel } from "./model";

export function renderLayers(
  container: HTMLElement,
  model: GraphModel,
  other: GraphModel | null,
  onVariable: (name: string) => void,
): void {
  clear(container);
  const rows = layerRows(model, other);
  const scale = barScale(rows);
  const axis = scale ? `log scale, ${formatNorm(10 ** scale.lo)} … ${formatNorm(10 ** scale.hi)}` : "no finite gradient";
  container.append(
    el(
      "div",
      { class: "gf-layers-head" },
      el("strong", {}, `Gradient norm of each layer's variables at step ${model.step}`),
      el("span", { class: "gf-muted" }, ` (${axis}; inputs first)`),
      other ? el("span", { class: "gf-muted" }, ` · upper bar: ${model.run} (step ${model.step}), lower bar: ${other.run} (step ${other.step})`) : null,
    ),
  );
  if (rows.length === 0) container.append(el("p", { class: "gf-muted" }, "No trainable variables."));
  const table = el("div", { class: "gf-layers-table", role: "list" });
  const bar = (b: VariableBar | null, run: string): HTMLElement => {
    if (!b) return el("div", { class: "gf-bar-row gf-muted", "data-run": run }, `not in ${run}`);
    const width = barLength(b, scale);
    const fill = el("span", { class: "gf-bar", "data-state": b.state });
    fill.style.width = `${(width * 100).toFixed(1)}%`;
    const value = b.state === "flowing" ? formatNorm(b.norm) : b.state === "none" ? "no gradient" : b.state === "zero" ? "zero" : `nonfinite (${formatNorm(b.norm)})`;
    return el("div", { class: "gf-bar-row", "data-run": run, "data-state": b.state }, el("span", { class: "gf-bar-track" }, fill), el("span", { class: "gf-bar-value" }, value));
  };
  for (const row of rows) {
    const vars = el("div", { class: "gf-layer-vars" });
    for (const v of row.variables) {
      const name = v.bar?.name ?? v.other?.name ?? "";
      const label = v.bar?.label ?? v.other?.label ?? name;
      const button = el("button", { type: "button", class: "gf-var-name", title: name }, label);
      button.addEventListener("click", () => onVariable(name));
      vars.append(
        el(
          "div",
          { class: "gf-var", "data-variable": name, "data-state": v.bar?.state ?? v.other?.state ?? "none" },
          button,
          el("div", { class: "gf-var-bars" }, bar(v.bar, model.run), other ? bar(v.other, other.run) : null),
        ),
      );
    }
    table.append(el("div", { class: "gf-layer", role: "listitem", "data-layer": row.layer }, el("div", { class: "gf-layer-name", title: row.layer }, row.layer), vars));
  }
  container.append(table);
}
