// Entry point. TensorBoard's plugin_entry.html runs import("./index.js").then(m => m.render()).
import { App } from "./app";

export function render(): void {
  document.body.style.margin = "0";
  const workerUrl = new URL("./static/layout_worker.js", import.meta.url);
  const app = new App(document.body, workerUrl);
  void app.start();
}
