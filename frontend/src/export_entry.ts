// Entry point of an exported HTML file (tb-gradflow export, Report.to_html): the tab itself,
// with its routes answered from the inlined data and its layout worker started from a blob: URL
// (a file:// page cannot start a worker from a file).
import { useDataSource } from "./api";
import { App } from "./app";
import { InlineSource, readPayload } from "./export_source";
import type { ExportPayload } from "./export_source";
import { readViewState, writeViewState } from "./url_state";

function workerUrl(doc: Document): URL {
  const source = atob(doc.getElementById("gradflow-worker")?.textContent?.trim() ?? "");
  return new URL(URL.createObjectURL(new Blob([source], { type: "text/javascript" })));
}

/** No TensorBoard is around an exported page, even in a notebook's iframe: the tab must not
 * look for one in its parent (its URL, reload messages). `window.parent` is [Replaceable]. */
function standAlone(): void {
  (window as unknown as { parent: Window }).parent = window;
}

/** The tab mirrors its view into the URL. A page that cannot have one (an iframe's srcdoc in a
 * notebook) keeps its view in memory instead of failing on the first write. */
function tolerateFixedUrl(): void {
  const replace = history.replaceState.bind(history);
  history.replaceState = (data: unknown, unused: string, url?: string | URL | null): void => {
    try {
      replace(data, unused, url);
    } catch {
      // SecurityError: about:srcdoc and sandboxed documents cannot change their URL
    }
  };
}

/** The view the file opens at, unless its URL already names one (a shared link). */
function openAt(payload: ExportPayload): void {
  const hash = window.location.hash;
  if (readViewState(hash).run !== undefined) return;
  const { run, tag, step, compare } = payload.initial;
  const next = writeViewState(hash, { run, tag, step: step ?? undefined, compare: compare ?? undefined });
  history.replaceState(history.state, "", `#${next}`);
}

async function main(host: HTMLElement): Promise<void> {
  document.body.style.margin = "0";
  try {
    const payload = await readPayload(document);
    const source = new InlineSource(payload);
    useDataSource(source);
    tolerateFixedUrl();
    standAlone();
    (window as unknown as { gradflowSource: InlineSource }).gradflowSource = source; // for tests
    openAt(payload);
    await new App(host, workerUrl(document)).start();
  } catch (e) {
    host.textContent = `This exported Gradient Flow file could not be read: ${String(e)}`;
  }
}

void main(document.body);
