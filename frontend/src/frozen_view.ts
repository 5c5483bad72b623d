// Issue 16: the variables the loss reads that Keras does not train (a frozen backbone, a
// distillation teacher), listed apart as one collapsible line under the banner. Their names come
// from the logdir: they are set as text, never as HTML.
import { el } from "./dom";
import { groupByLayer } from "./diagnosis";

export interface FrozenLine {
  /** "Frozen (not trained): 6 variables" */
  summary: string;
  /** the frozen variables by layer, in first-seen order: [layer ("" at top level), own names] */
  groups: [string, string[]][];
}

/** The line for `frozen` (the diagnosis route's optional `frozen_variables`); null when there is
 * none, so that a model with nothing frozen shows nothing. Names are deduplicated. */
export function frozenLine(frozen: readonly string[] | undefined | null): FrozenLine | null {
  const names = [...new Set(frozen ?? [])];
  if (names.length === 0) return null;
  const count = `${names.length} variable${names.length === 1 ? "" : "s"}`;
  const groups = groupByLayer(names).map(([layer, members]): [string, string[]] => [
    layer,
    members.map((n) => n.slice(layer ? layer.length + 1 : 0)),
  ]);
  return { summary: `Frozen (not trained): ${count}`, groups };
}

/** Appends the collapsed line to `container` (the banner); nothing when no variable is frozen. */
export function renderFrozen(container: HTMLElement, frozen: readonly string[] | undefined | null): void {
  const line = frozenLine(frozen);
  if (!line) return;
  const rows = line.groups.map(([layer, members]) =>
    el("div", { class: "gf-name-group", "data-layer": layer }, el("span", { class: "gf-name-layer" }, layer ? `${layer}/` : "(top level)"), " ", members.join(", ")),
  );
  container.append(el("details", { class: "gf-frozen", "data-field": "frozen" }, el("summary", {}, line.summary), el("div", { class: "gf-name-groups" }, ...rows)));
}


/** Marks the frozen layers in the Layers view: one muted row per layer after the trained ones
 * ("frozen: not trained", its variables), in the view's table when it has one. */
export function renderFrozenLayers(container: HTMLElement, frozen: readonly string[] | undefined | null): void {
  const line = frozenLine(frozen);
  if (!line) return;
  const table = container.querySelector<HTMLElement>(".gf-layers-table") ?? container;
  for (const [layer, members] of line.groups) {
    table.append(
      el(
        "div",
        { class: "gf-layer", role: "listitem", "data-layer": layer, "data-frozen": "true" },
        el("div", { class: "gf-layer-name", title: layer }, layer || "(top level)", el("div", { class: "gf-layer-frozen" }, "frozen: not trained")),
        el("div", { class: "gf-layer-vars gf-muted" }, members.join(", ")),
      ),
    );
  }
}
