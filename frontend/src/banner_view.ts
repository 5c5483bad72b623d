// The diagnosis banner: the route's sentences, cut points as links that centre the graph on them,
// each cut's fix hint, and long name lists that open on click, grouped by layer.
import { clear, el } from "./dom";
import { groupByLayer } from "./diagnosis";
import type { Told } from "./diagnosis";
import { renderFrozen } from "./frozen_view";
import type { BannerShown } from "./shown";
import type { Sentence, StoryCut } from "./types";

const SHOWN = 4;

/** "a, b, c, d, … (3 more)": the rest opens on click, as lists grouped by layer. */
export function nameList(names: readonly string[]): HTMLElement {
  const span = el("span", { class: "gf-names", "data-count": names.length });
  if (names.length <= SHOWN) {
    span.append(names.join(", "));
    return span;
  }
  const more = el("button", { type: "button", class: "gf-more", "aria-expanded": "false" }, `… (${names.length - SHOWN} more)`);
  span.append(`${names.slice(0, SHOWN).join(", ")}, `, more);
  more.addEventListener("click", () => {
    clear(span);
    const groups = el("div", { class: "gf-name-groups" });
    for (const [layer, members] of groupByLayer(names)) {
      groups.append(
        el(
          "div",
          { class: "gf-name-group", "data-layer": layer },
          el("span", { class: "gf-name-layer" }, layer ? `${layer}/` : "(top level)"),
          " ",
          members.map((n) => n.slice(layer ? layer.length + 1 : 0)).join(", "),
        ),
      );
    }
    span.append(groups);
    span.dataset.open = "true";
  });
  return span;
}

function sentence(s: Sentence, field: string): HTMLElement {
  const names = s.names.filter((n) => !s.text.includes(n)); // a name the sentence says already is not listed again
  return el("span", { "data-field": field }, s.text, names.length ? ": " : "", names.length ? nameList(names) : null);
}

/** `reveal`: for a graph loaded group by group, shows a cut whose op is not loaded yet. */
export function renderBanner(container: HTMLElement, told: Told, other: { run: string; told: Told } | null, run: string, onCut: (op: number) => void, firstBad: number | null, reveal?: (opName: string) => void): void {
  clear(container);
  const story = told.story;
  container.dataset.tone = story.tone;
  container.append(el("div", { class: "gf-banner-head", "data-field": "headline" }, other ? `${run}: ` : "", sentence(story.headline, "headline-text")));
  const list = (cuts: StoryCut[], ops: number[], withHint: boolean): HTMLElement => {
    const ul = el("ul", { class: "gf-cuts" });
    cuts.forEach((cut, i) => {
      const link = el("button", { type: "button", class: "gf-cut-link", "data-cut-op": cut.op_name, "data-starved": String(cut.starved_variables.length) }, cut.op_name);
      if (ops[i] >= 0) link.addEventListener("click", () => onCut(ops[i]));
      else if (reveal) link.addEventListener("click", () => reveal(cut.op_name));
      else link.disabled = true;
      const li = el("li", { "data-cut-item": cut.op_name }, "✂ ", link, el("span", {}, `: ${cut.text}`));
      if (withHint) li.append(el("div", { class: "gf-hint", "data-field": "hint" }, el("strong", {}, "Fix: "), cut.hint));
      ul.append(li);
    });
    return ul;
  };
  if (story.cuts.length) container.append(list(story.cuts, told.cutOps, true));
  if (story.harmless.length && story.harmless_summary) {
    // many harmless blockers (BatchNorm's moments hold a StopGradient each): one line, opened on demand
    const types = new Map<string, number>();
    for (const c of story.harmless) types.set(c.op_type, (types.get(c.op_type) ?? 0) + 1);
    const summary = [...types].map(([t, n]) => `${t} ×${n}`).join(", ");
    const hints = story.harmless_hints.map((h) => el("div", { class: "gf-hint", "data-field": "hint" }, el("strong", {}, `Fix (${h.cause}): `), h.hint));
    const details = el("details", { class: "gf-harmless" }, el("summary", {}, `${story.harmless_summary}: ${summary}`), list(story.harmless, told.harmlessOps, false), ...hints);
    if (story.harmless.length <= 3) details.open = true;
    container.append(details);
  }
  if (firstBad !== null) {
    container.append(el("div", { class: "gf-note", "data-field": "first-nonfinite" }, `NaN or Inf gradients first appear at step ${firstBad}`));
  }
  const hinted = new Set<string>();
  for (const note of story.notes) {
    const div = el("div", { class: "gf-note", "data-note": note.kind }, sentence(note, "note"));
    if (note.hint && !hinted.has(note.kind)) {
      hinted.add(note.kind); // one fix per kind of note (dead gates), not one per op
      div.append(el("div", { class: "gf-hint", "data-field": "hint" }, el("strong", {}, "Fix: "), note.hint));
    }
    container.append(div);
  }
  if (other) {
    container.append(el("div", { class: "gf-banner-other", "data-tone": other.told.story.tone }, `${other.run}: `, sentence(other.told.story.headline, "other-headline")));
  }
}

/** While the diagnosis is computed (a huge graph's first takes the server seconds). */
export function renderPendingBanner(container: HTMLElement): void {
  clear(container);
  container.dataset.tone = "warn";
  container.append(el("div", { class: "gf-banner-head", "data-field": "pending" }, "Diagnosing this step… (the first diagnosis of a graph this large takes TensorBoard a few seconds)"));
}

/** The banner as `b` (shown.ts) has it: the story with its frozen line, or that it is coming. */
export function showBanner(container: HTMLElement, b: BannerShown, onCut: (op: number) => void, reveal: (opName: string) => void): void {
  if (!b.told) return renderPendingBanner(container);
  renderBanner(container, b.told, b.other, b.run, onCut, b.firstBad, b.reveals ? reveal : undefined);
  renderFrozen(container, b.frozen);
}
