// The diagnosis banner: plain words, cut points as links that centre the graph on them.
import { clear, el } from "./dom";
import { diagnose } from "./diagnosis";
import type { CutLine } from "./diagnosis";
import type { GraphModel } from "./model";

export function renderBanner(container: HTMLElement, model: GraphModel, other: GraphModel | null, onCut: (op: number) => void): void {
  clear(container);
  const d = diagnose(model);
  container.dataset.tone = d.tone;
  const head = el("div", { class: "gf-banner-head", "data-field": "headline" }, other ? `${model.run}: ` : "", d.headline);
  container.append(head);
  const list = (cuts: CutLine[]): HTMLElement => {
    const ul = el("ul", { class: "gf-cuts" });
    for (const cut of cuts) {
      const link = el("button", { type: "button", class: "gf-cut-link", "data-cut-op": cut.opName, "data-starved": String(cut.starved.length) }, cut.opName);
      link.addEventListener("click", () => onCut(cut.op));
      ul.append(el("li", {}, "✂ ", link, el("span", {}, `: ${cut.text}`)));
    }
    return ul;
  };
  if (d.cuts.length) container.append(list(d.cuts));
  if (d.harmless.length > 0 && d.harmless.length <= 3) container.append(list(d.harmless));
  else if (d.harmless.length > 3) {
    // many harmless blockers (BatchNorm's moments hold a StopGradient each): one line, opened on demand
    const types = new Map<string, number>();
    for (const c of d.harmless) types.set(c.type, (types.get(c.type) ?? 0) + 1);
    const summary = [...types].map(([t, n]) => `${t} ×${n}`).join(", ");
    container.append(
      el(
        "details",
        { class: "gf-harmless" },
        el("summary", {}, `${d.harmless.length} blocking ops starve nothing (another path carries the gradient): ${summary}`),
        list(d.harmless),
      ),
    );
  }
  for (const note of d.notes) container.append(el("div", { class: "gf-note" }, note));
  if (other) {
    const o = diagnose(other);
    container.append(el("div", { class: "gf-banner-other", "data-tone": o.tone }, `${other.run}: ${o.headline}`));
  }
}
