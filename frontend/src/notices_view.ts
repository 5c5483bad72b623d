// Notices above the banner: data the tab cannot show in full. A run served as a sample of its
// steps (too large for the fast loader's reads, over a remote logdir), and runs whose names the
// fast loader cannot read, each with what to do. Text from the server is shown as text only.
import { api } from "./api";
import { clear, el } from "./dom";
import type { Notice } from "./types";

/** The server's notices; none when the route fails (an older server): they are advice only. */
export async function loadNotices(): Promise<Notice[]> {
  try {
    return (await api.notices()).notices;
  } catch {
    return [];
  }
}

export function renderNotices(container: HTMLElement, notices: readonly Notice[]): void {
  clear(container);
  container.hidden = notices.length === 0;
  for (const n of notices) {
    container.append(el("div", { class: "gf-notice", "data-notice": n.kind, "data-run": n.run, "data-tag": n.tag }, "⚠ ", n.text));
  }
}
