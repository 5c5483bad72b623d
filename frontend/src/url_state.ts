// The view state in the URL. TensorBoard keeps its own state in the top window's hash as
// "#TAB&key=value&..." and hands a plugin the keys "p.<plugin>.<key>" (its GetURLPluginData).
// The tab is a same-origin iframe, so it reads and writes its keys there directly; the link in
// the address bar is then the shareable link. Outside TensorBoard it uses its own hash.

export const PREFIX = "p.gradflow.";
const TAB_KEY = "__tab__";

export interface ViewState {
  run?: string;
  tag?: string;
  step?: number;
  op?: string;
  expanded?: string[];
  compare?: string;
  view?: "graph" | "layers";
  q?: string;
  /** "step": colour by this step's range (default: over all logged steps) */
  scale?: "step";
  /** Compare's panes move independently */
  unlinked?: boolean;
}

/** TensorBoard's hash format: the first bare word is the tab, the rest key=value pairs. */
export function parseHash(hash: string): Map<string, string> {
  const out = new Map<string, string>();
  const body = hash.startsWith("#") ? hash.slice(1) : hash;
  if (!body) return out;
  for (const part of body.split("&")) {
    const kv = part.split("=");
    try {
      if (kv.length === 1) out.set(TAB_KEY, decodeURIComponent(kv[0]));
      else if (kv.length === 2) out.set(decodeURIComponent(kv[0]), decodeURIComponent(kv[1]));
    } catch {
      // a malformed escape: skip that part, as TensorBoard would fail on it too
    }
  }
  return out;
}

export function formatHash(entries: Map<string, string>): string {
  const tab = entries.get(TAB_KEY) ?? "";
  const rest = [...entries]
    .filter(([k]) => k !== TAB_KEY)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join("&");
  return rest ? `${tab}&${rest}` : tab;
}

const encodeList = (items: readonly string[]): string => items.map(encodeURIComponent).join(",");
const decodeList = (text: string): string[] =>
  text
    .split(",")
    .filter((s) => s.length > 0)
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    });

export function readViewState(hash: string): ViewState {
  const e = parseHash(hash);
  const get = (k: string): string | undefined => e.get(PREFIX + k);
  const state: ViewState = {};
  const run = get("run");
  if (run) state.run = run;
  const tag = get("tag");
  if (tag) state.tag = tag;
  const step = get("step");
  if (step !== undefined && /^-?\d+$/.test(step)) state.step = Number(step);
  const op = get("op");
  if (op) state.op = op;
  const expanded = get("expanded");
  if (expanded !== undefined) state.expanded = decodeList(expanded);
  const compare = get("compare");
  if (compare) state.compare = compare;
  const view = get("view");
  if (view === "graph" || view === "layers") state.view = view;
  const q = get("q");
  if (q) state.q = q;
  if (get("scale") === "step") state.scale = "step";
  if (get("linked") === "false") state.unlinked = true;
  return state;
}

/** The hash with our keys replaced by `state`; every other key (TensorBoard's) is kept. */
export function writeViewState(hash: string, state: ViewState): string {
  const e = parseHash(hash);
  for (const k of [...e.keys()]) if (k.startsWith(PREFIX)) e.delete(k);
  const set = (k: string, v: string | undefined): void => {
    if (v !== undefined && v !== "") e.set(PREFIX + k, v);
  };
  set("run", state.run);
  set("tag", state.tag);
  set("step", state.step === undefined ? undefined : String(state.step));
  set("op", state.op);
  if (state.expanded !== undefined) e.set(PREFIX + "expanded", encodeList(state.expanded));
  set("compare", state.compare);
  set("view", state.view);
  set("q", state.q);
  set("scale", state.scale);
  set("linked", state.unlinked ? "false" : undefined);
  return formatHash(e);
}
