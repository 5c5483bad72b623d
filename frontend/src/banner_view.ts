// The diagnosis banner: plain words, cut points as links that centre the graph on them.
import { clear, el } from "./dom";
import { diagnose } from "./diagnosis";
import type { GraphModel } from "./model";

export function renderBanner(container: HTMLElement, model: GraphModel, other: GraphModel | null, onCut: (op: number) => void): void {
  clear(container);
  const d = diagnose(model);
  container.dataset.tone = d.tone;
  const head = el("div", { class: "gf-banner-head", "data-field": "headline" }, other ? `${model.run}: ` : "", d.headline);
  container.append(head);
  if (d.cuts.length) {
    const list = el("ul", { class: "gf-cuts" });
    for (const cut of d.cuts) {
      const link = el("button", { type: "button", class: "gf-cut-link", "data-cut-op": cut.opName, "data-starved": String(cut.starved.length) }, cut.opName);
      link.addEventListener("click", () => onCut(cut.op));
      list.append(el("li", {}, "✂ ", link, el("span", {}, `: ${cut.text}`)));
    }
    container.append(list);
  }
  for (const note of d.notes) container.append(el("div", { class: "gf-note" }, note));
  if (other) {
    const o = diagnose(other);
    container.append(el("div", { class: "gf-banner-other", "data-tone": o.tone }, `${other.run}: ${o.headline}`));
  }
}
