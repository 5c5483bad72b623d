// TensorBoard around the tab: the top window's URL (shared view state), the plugin IPC that
// announces reloads, and the dark-mode class on the top document.

/** The window whose address bar holds the shareable URL: TensorBoard's, when we can reach it. */
export function topWindow(): Window {
  try {
    if (window.parent !== window && window.parent.location.href) return window.parent;
  } catch {
    // a cross-origin parent: keep to our own URL
  }
  return window;
}

export function readHash(): string {
  return topWindow().location.hash;
}

export function writeHash(hash: string): void {
  const w = topWindow();
  const url = new URL(w.location.href);
  url.hash = hash;
  if (url.href !== w.location.href) w.history.replaceState(w.history.state, "", url.href);
}

/** Calls `onChange` when the shareable URL's hash changes from outside (a pasted link);
 * our own `writeHash` uses replaceState, which fires no hashchange. */
export function watchHash(onChange: () => void): void {
  topWindow().addEventListener("hashchange", onChange);
}

interface IpcMessage {
  type: string;
  id: number;
  payload: unknown;
  error: unknown;
  isReply: boolean;
}

/** Joins TensorBoard's plugin message channel and calls `onReload` after every data reload
 * (the reload button and the periodic auto-reload broadcast "experimental.DataReloaded"). */
export function listenForReloads(onReload: () => void): void {
  if (window.parent === window) return;
  const channel = new MessageChannel();
  channel.port1.onmessage = (event: MessageEvent<string>) => {
    let message: IpcMessage;
    try {
      message = JSON.parse(event.data) as IpcMessage;
    } catch {
      return;
    }
    if (message.isReply) return;
    channel.port1.postMessage(JSON.stringify({ type: message.type, id: message.id, payload: null, error: null, isReply: true }));
    if (message.type === "experimental.DataReloaded") onReload();
  };
  channel.port1.start();
  window.parent.postMessage("experimental.bootstrap", window.location.origin, [channel.port2]);
}

/** Follows TensorBoard's dark mode (class "dark-mode" on the top body), else the OS setting. */
export function watchDarkMode(apply: (dark: boolean) => void): void {
  const top = topWindow();
  const media = window.matchMedia?.("(prefers-color-scheme: dark)");
  if (top !== window) {
    const body = top.document.body;
    const update = (): void => apply(body.classList.contains("dark-mode"));
    new MutationObserver(update).observe(body, { attributes: true, attributeFilter: ["class"] });
    update();
    return;
  }
  const update = (): void => apply(!!media?.matches);
  media?.addEventListener("change", update);
  update();
}
