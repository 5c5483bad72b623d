// Bundles the tab into the Python package (tb_gradflow/plugin/static/), or, with --tests,
// the unit tests into .test-out/ for `node --test`. No CDN: every dependency is bundled.
import { build } from "esbuild";
import { readdirSync, rmSync } from "node:fs";

const here = new URL(".", import.meta.url).pathname;
const staticDir = `${here}../tb_gradflow/plugin/static`;
const common = { bundle: true, logLevel: "warning", legalComments: "none" };

if (process.argv.includes("--tests")) {
  rmSync(`${here}.test-out`, { recursive: true, force: true });
  const tests = readdirSync(`${here}test`).filter((f) => f.endsWith(".test.ts"));
  await build({
    ...common,
    entryPoints: tests.map((f) => `${here}test/${f}`),
    outdir: `${here}.test-out`,
    platform: "node",
    format: "esm",
    target: "node20",
    outExtension: { ".js": ".mjs" },
  });
} else {
  const browser = { ...common, minify: true, target: ["chrome110", "firefox110", "safari16"] };
  // The tab: an ES module whose render() TensorBoard's plugin_entry.html calls.
  await build({ ...browser, entryPoints: [`${here}src/index.ts`], outfile: `${staticDir}/index.js`, format: "esm" });
  // An exported HTML file's script, inlined into it by tb_gradflow/export/html.py.
  await build({ ...browser, entryPoints: [`${here}src/export_entry.ts`], outfile: `${here}../tb_gradflow/export/static/export.js`, format: "iife" });
  // The layout worker: a classic same-origin script (the CSP forbids blob: workers).
  await build({ ...browser, entryPoints: [`${here}src/layout_worker.ts`], outfile: `${staticDir}/layout_worker.js`, format: "iife" });
}
