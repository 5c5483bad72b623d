// The tab's stylesheet, injected as a <style> element (TensorBoard's CSP allows inline styles).
// Colours are CSS variables so that dark mode swaps them in one place.

export const CSS = `
.gf {
  --gf-bg: #ffffff; --gf-fg: #202124; --gf-muted: #5f6368; --gf-border: #dadce0; --gf-panel: #f8f9fa;
  --gf-accent: #1a73e8; --gf-cluster: rgba(60, 64, 67, 0.05); --gf-cluster-head: rgba(60, 64, 67, 0.10);
  --gf-zero: #f2b600; --gf-zero-fg: #2b2100; --gf-none: #e8eaed; --gf-none-fg: #3c4043; --gf-none-stroke: #9aa0a6;
  --gf-nonfinite: #7b1fa2; --gf-nonfinite-fg: #ffffff; --gf-cut: #d50000; --gf-cut-fg: #ffffff; --gf-cut-stroke: #6d0000;
  --gf-flow-edge: #1565c0; --gf-dead-edge: #b0b4b9; --gf-select: #ff6d00; --gf-match: #00c853;
  --gf-ok-bg: #e6f4ea; --gf-ok-fg: #137333; --gf-warn-bg: #fef7e0; --gf-warn-fg: #7a5500; --gf-bad-bg: #fce8e6; --gf-bad-fg: #a50e0e;
  font: 13px/1.4 Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--gf-fg); background: var(--gf-bg);
  position: absolute; inset: 0; display: flex; flex-direction: column; overflow: hidden;
}
.gf[data-theme=dark] {
  --gf-bg: #202124; --gf-fg: #e8eaed; --gf-muted: #9aa0a6; --gf-border: #3c4043; --gf-panel: #292a2d;
  --gf-accent: #8ab4f8; --gf-cluster: rgba(232, 234, 237, 0.04); --gf-cluster-head: rgba(232, 234, 237, 0.10);
  --gf-none: #3c4043; --gf-none-fg: #bdc1c6; --gf-none-stroke: #80868b; --gf-nonfinite: #ce93d8; --gf-nonfinite-fg: #1b0020;
  --gf-cut: #ff5252; --gf-cut-fg: #1a0000; --gf-cut-stroke: #ffcdd2; --gf-flow-edge: #8ab4f8; --gf-dead-edge: #5f6368;
  --gf-ok-bg: #0d3b1f; --gf-ok-fg: #81c995; --gf-warn-bg: #3d3000; --gf-warn-fg: #fdd663; --gf-bad-bg: #4a1010; --gf-bad-fg: #f6aea9;
}
.gf button, .gf select, .gf input { font: inherit; color: inherit; }
.gf button { background: var(--gf-panel); border: 1px solid var(--gf-border); border-radius: 4px; padding: 2px 8px; cursor: pointer; }
.gf button:hover { border-color: var(--gf-accent); }
.gf select, .gf input[type=search] { background: var(--gf-bg); border: 1px solid var(--gf-border); border-radius: 4px; padding: 2px 4px; }
.gf :focus-visible { outline: 2px solid var(--gf-accent); outline-offset: 1px; }
.gf-muted { color: var(--gf-muted); }
.gf-error { color: var(--gf-bad-fg); }
.gf-toolbar { display: flex; flex-wrap: wrap; gap: 6px 14px; align-items: center; padding: 6px 10px; border-bottom: 1px solid var(--gf-border); background: var(--gf-panel); }
.gf-toolbar label { display: inline-flex; gap: 4px; align-items: center; }
.gf-toolbar label[hidden] { display: none; }
.gf-toolbar input[type=range] { width: 200px; }
.gf-tabs button[aria-pressed=true] { background: var(--gf-accent); color: var(--gf-bg); border-color: var(--gf-accent); }
.gf-search { position: relative; }
.gf-search input { width: 240px; }
.gf-search-results { position: absolute; top: 100%; left: 0; z-index: 5; max-height: 320px; width: 420px; overflow: auto; background: var(--gf-bg); border: 1px solid var(--gf-border); border-radius: 4px; box-shadow: 0 2px 8px rgba(0,0,0,.2); }
.gf-search-results[hidden] { display: none; }
.gf-search-results button { display: block; width: 100%; text-align: left; border: 0; border-radius: 0; background: transparent; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.gf-search-results button:hover, .gf-search-results button:focus { background: var(--gf-cluster-head); }
.gf-search-results .gf-kind { color: var(--gf-muted); margin-right: 6px; font-size: 11px; }
#gf-banner { padding: 8px 12px; border-bottom: 1px solid var(--gf-border); max-height: 30vh; overflow: auto; flex: none; }
.gf-harmless summary, .gf-frozen summary { cursor: pointer; }
.gf-frozen { margin-top: 2px; }
#gf-banner[data-tone=ok] { background: var(--gf-ok-bg); color: var(--gf-ok-fg); }
#gf-banner[data-tone=warn] { background: var(--gf-warn-bg); color: var(--gf-warn-fg); }
#gf-banner[data-tone=cut] { background: var(--gf-bad-bg); color: var(--gf-bad-fg); }
.gf-banner-head { font-weight: 600; font-size: 14px; }
.gf-cuts { margin: 4px 0 0; padding-left: 4px; list-style: none; }
.gf-cut-link { color: inherit; font-weight: 600; text-decoration: underline; background: transparent !important; border: 0 !important; padding: 0 !important; }
.gf-note, .gf-banner-other { margin-top: 2px; }
.gf-progressive { padding: 4px 12px; border-bottom: 1px solid var(--gf-border); font-size: 12px; flex: none; }
.gf-body { flex: 1; display: flex; min-height: 0; }
.gf-main { flex: 1; display: flex; flex-direction: column; min-width: 0; position: relative; }
.gf-panes { flex: 1; display: flex; min-height: 0; }
.gf-panes[hidden], .gf-layers[hidden], #gf-details[hidden] { display: none; }
.gf-pane { flex: 1; display: flex; flex-direction: column; min-width: 0; position: relative; border-right: 1px solid var(--gf-border); }
.gf-pane:last-child { border-right: 0; }
.gf-pane-title { padding: 2px 8px; font-weight: 600; border-bottom: 1px solid var(--gf-border); }
.gf-pane-title:empty { display: none; }
.gf-graph { flex: 1; position: relative; min-height: 0; }
.gf-svg { position: absolute; inset: 0; width: 100%; height: 100%; cursor: grab; user-select: none; touch-action: none; }
.gf-svg:active { cursor: grabbing; }
.gf-controls { position: absolute; top: 8px; right: 8px; display: flex; gap: 4px; z-index: 4; }
.gf-legend { position: absolute; left: 6px; bottom: 6px; z-index: 2; background: var(--gf-bg); border: 1px solid var(--gf-border); border-radius: 6px; padding: 2px 6px; font-size: 11px; max-width: calc(100% - 12px); }
.gf-legend summary { cursor: pointer; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.gf-legend-items { display: grid; grid-template-columns: auto auto; gap: 2px 8px; align-items: center; padding: 4px 0 2px; }
.gf-slider { position: relative; display: inline-block; }
.gf-step-marks { position: absolute; left: 8px; right: 8px; bottom: -3px; height: 6px; pointer-events: none; }
.gf-mark { position: absolute; width: 3px; height: 6px; margin-left: -1px; background: var(--gf-muted); }
.gf-mark[data-kind=nonfinite] { background: var(--gf-nonfinite); width: 4px; }
#gf-step-label { display: inline-block; font-variant-numeric: tabular-nums; white-space: nowrap; }
.gf-empty { pointer-events: auto; max-width: 720px; margin: 0 auto; text-align: left; color: var(--gf-fg); }
.gf-empty h2 { font-size: 18px; }
.gf-code { background: var(--gf-panel); border: 1px solid var(--gf-border); border-radius: 4px; padding: 8px; overflow: auto; font-size: 12px; }
.gf-hint { margin: 1px 0 3px 18px; font-size: 12px; }
.gf-more { border: 0 !important; background: transparent !important; padding: 0 !important; color: inherit; text-decoration: underline; }
.gf-name-groups { margin: 2px 0 2px 12px; font-weight: 400; font-size: 12px; max-height: 12em; overflow: auto; }
.gf-name-layer { font-family: monospace; opacity: .8; }
.gf-axis-row { position: sticky; top: 0; background: var(--gf-bg); z-index: 1; border-bottom: 1px solid var(--gf-border); }
.gf-axis-track { position: relative; height: 16px; font-size: 10px; color: var(--gf-muted); }
.gf-tick { position: absolute; top: 0; transform: translateX(-50%); border-left: 1px solid var(--gf-border); padding-left: 2px; white-space: nowrap; }
/* the end ticks stay inside the track, so the last never touches the axis label */
.gf-tick[data-edge=start] { transform: none; }
.gf-tick[data-edge=end] { transform: translateX(-100%); border-left: 0; border-right: 1px solid var(--gf-border); padding: 0 2px 0 0; }
.gf-axis-label { padding-left: 6px; white-space: nowrap; }
.gf-bar-row[data-state=flowing] .gf-bar-track { background-image: repeating-linear-gradient(to right, var(--gf-border) 0 1px, transparent 1px calc(100% / var(--gf-decades, 1))); }
.gf-layer[data-flag] { background: var(--gf-warn-bg); }
.gf-layer-flag { color: var(--gf-warn-fg); font-family: inherit; font-weight: 600; font-size: 11px; }
.gf-layer[data-frozen] { opacity: 0.75; }
.gf-layer-frozen { color: var(--gf-muted); font-family: inherit; font-size: 11px; }
.gf-badge[data-state=cut] { background: var(--gf-cut); color: var(--gf-cut-fg); font-weight: 600; }
.gf-swatch { display: inline-block; width: 26px; height: 12px; border-radius: 3px; border: 1px solid var(--gf-border); vertical-align: middle; }
.gf-swatch[data-kind=ramp] { width: 90px; }
.gf-swatch[data-kind=zero] { background: var(--gf-zero); }
.gf-swatch[data-kind=none] { background: var(--gf-none); border: 1px dashed var(--gf-none-stroke); opacity: .6; }
.gf-swatch[data-kind=nonfinite] { background: var(--gf-nonfinite); }
.gf-swatch[data-kind=cut] { background: var(--gf-cut); border: 2px solid var(--gf-cut-stroke); clip-path: polygon(25% 0,75% 0,100% 30%,100% 70%,75% 100%,25% 100%,0 70%,0 30%); }
.gf-swatch[data-kind=live], .gf-swatch[data-kind=dead] { height: 0; border: 0; border-top: 2px solid var(--gf-flow-edge); border-radius: 0; }
.gf-swatch[data-kind=dead] { border-top: 2px dashed var(--gf-dead-edge); }
.gf-status { position: absolute; top: 30%; left: 0; right: 0; text-align: center; color: var(--gf-muted); pointer-events: none; }
/* graph */
.gf-node { cursor: pointer; }
.gf-node .gf-shape { fill: var(--gf-panel); stroke: var(--gf-fg); stroke-opacity: .35; stroke-width: 1; }
.gf-node text { font-size: 11px; fill: var(--gf-fg); pointer-events: none; }
.gf-node .gf-line-name { font-weight: 600; }
.gf-node[data-state=zero] .gf-shape { fill: var(--gf-zero); }
.gf-node[data-state=zero] text { fill: var(--gf-zero-fg); }
.gf-node[data-state=nonfinite] .gf-shape { fill: var(--gf-nonfinite); stroke: var(--gf-cut); stroke-width: 2; stroke-opacity: 1; }
.gf-node[data-state=nonfinite] text { fill: var(--gf-nonfinite-fg); }
.gf-node[data-state=none] .gf-shape, .gf-group[data-starved=true] .gf-shape { fill: var(--gf-none); stroke: var(--gf-none-stroke); stroke-dasharray: 4 3; }
/* dimmed, yet the label stays readable (over 4.5:1; at .5 it was about 2:1) */
.gf-op[data-state=none], .gf-group[data-starved=true] { opacity: .8; }
.gf-node[data-state=none] text { fill: var(--gf-none-fg); }
.gf-node[data-cut] .gf-shape { fill: var(--gf-cut) !important; stroke: var(--gf-cut-stroke); stroke-width: 3; stroke-opacity: 1; stroke-dasharray: none; }
.gf-node[data-cut] text { fill: var(--gf-cut-fg) !important; }
.gf-node[data-cut] { opacity: 1; }
.gf-node[data-cut][data-harmless] .gf-shape { fill: var(--gf-panel) !important; stroke: var(--gf-cut); stroke-width: 2; stroke-dasharray: 5 3; }
.gf-node[data-cut][data-harmless] text { fill: var(--gf-fg) !important; }
.gf-node .gf-line-cut { font-weight: 700; }
.gf-presence-track { fill: var(--gf-fg); fill-opacity: .15; }
.gf-presence-fill { fill: var(--gf-fg); fill-opacity: .7; }
.gf-node[data-dead-gate] .gf-shape, .gf-group[data-dead-gate] .gf-shape { stroke: #e37400; stroke-width: 3; stroke-opacity: 1; stroke-dasharray: 3 2; }
.gf-node[data-dead-gate] .gf-presence-track { fill: var(--gf-cut); fill-opacity: .6; }
.gf-presence-strip { display: flex; gap: 1px; height: 14px; margin: 4px 0; }
.gf-presence-cell { flex: 1; min-width: 2px; background: var(--gf-fg); }
.gf-presence-cell[data-unknown] { background: transparent; outline: 1px dashed var(--gf-none-stroke); opacity: .5; }
.gf-bar-presence { color: var(--gf-muted, inherit); font-size: 11px; }
.gf-group .gf-shape-back { fill: var(--gf-panel); stroke: var(--gf-fg); stroke-opacity: .3; }
.gf-group .gf-shape { stroke-width: 1.5; stroke-opacity: .6; }
.gf-group[data-has-cut] .gf-shape, .gf-group[data-has-cut] .gf-shape-back { stroke: var(--gf-cut); stroke-width: 3; stroke-opacity: 1; stroke-dasharray: none; }
.gf-group[data-has-cut] .gf-line-cut { fill: var(--gf-cut) !important; }
.gf-node[data-selected] .gf-shape { stroke: var(--gf-select) !important; stroke-width: 4 !important; stroke-opacity: 1; stroke-dasharray: none; }
.gf-node[data-path] .gf-shape { stroke: var(--gf-select); stroke-width: 3; stroke-opacity: 1; stroke-dasharray: none; }
.gf-op[data-path] { opacity: 1; }
.gf-node[data-region] .gf-shape { stroke: var(--gf-cut); stroke-width: 2.5; stroke-opacity: 1; }
.gf-op[data-region] { opacity: .85; }
.gf-edge[data-path] { stroke: var(--gf-select) !important; stroke-width: 3; stroke-dasharray: none; }
.gf-node[data-match] .gf-shape { stroke: var(--gf-match); stroke-width: 3; stroke-opacity: 1; }
.gf-node:focus { outline: none; }
.gf-node:focus-visible .gf-shape { stroke: var(--gf-accent); stroke-width: 3; stroke-opacity: 1; }
.gf-cluster-box { fill: var(--gf-cluster); stroke: var(--gf-border); stroke-width: 1.5; }
.gf-cluster[data-has-cut] .gf-cluster-box { stroke: var(--gf-cut); stroke-dasharray: 6 3; }
.gf-cluster-header { cursor: pointer; }
.gf-cluster-header rect { fill: var(--gf-cluster-head); }
.gf-cluster-header text { font-size: 11px; font-weight: 600; fill: var(--gf-fg); }
.gf-edge { fill: none; stroke-width: 1.6; }
.gf-edge[data-flow=flowing] { stroke: var(--gf-flow-edge); }
.gf-edge[data-flow=zero] { stroke: var(--gf-zero); }
.gf-edge[data-flow=nonfinite] { stroke: var(--gf-nonfinite); stroke-width: 2.4; }
.gf-edge[data-flow=dead] { stroke: var(--gf-dead-edge); stroke-dasharray: 5 4; stroke-width: 1; }
.gf-arrowhead { fill: var(--gf-muted); }
.gf-graph[data-lod=none] .gf-node text, .gf-graph[data-lod=none] .gf-cluster-header text { display: none; }
/* a cut point's label is drawn at every zoom */
.gf-graph[data-lod=none] .gf-node[data-cut] text { display: inline; }
.gf-minimap { position: absolute; right: 6px; bottom: 6px; z-index: 2; width: 150px; height: 110px; background: var(--gf-bg); border: 1px solid var(--gf-border); border-radius: 4px; cursor: crosshair; opacity: .92; }
.gf-overview { position: absolute; inset: 0; z-index: 3; background: var(--gf-bg); overflow: auto; padding: 8px 12px; }
.gf-overview[hidden] { display: none; }
.gf-ov-head { margin: 0 120px 8px 0; }
.gf-ov-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 6px; }
.gf-ov-group { display: flex; flex-direction: column; align-items: flex-start; gap: 1px; text-align: left; padding: 4px 6px !important; min-width: 0; position: relative; border-width: 2px !important; }
.gf-ov-group[data-state=flowing] { border-color: var(--gf-flow-edge) !important; }
.gf-ov-group[data-state=zero] { border-color: var(--gf-zero) !important; }
.gf-ov-group[data-state=nonfinite] { border-color: var(--gf-nonfinite) !important; }
.gf-ov-group[data-starved=true] { background: var(--gf-none) !important; border-style: dashed !important; border-color: var(--gf-none-stroke) !important; }
.gf-ov-group[data-has-cut] { border-color: var(--gf-cut) !important; border-style: solid !important; }
.gf-ov-name { font-weight: 600; font-size: 13px; max-width: 100%; overflow-wrap: anywhere; }
.gf-ov-group[data-fill] .gf-ov-meta { color: inherit; opacity: .9; }
.gf-ov-group[data-fill] .gf-ov-cut { background: var(--gf-bg); padding: 0 3px; border-radius: 3px; }
.gf-ov-meta { font-size: 11px; color: var(--gf-muted); }
.gf-ov-cut { font-size: 11px; font-weight: 700; color: var(--gf-cut); }
.gf-ov-bar { position: absolute; left: 0; bottom: 0; height: 3px; width: var(--starved); background: var(--gf-none-stroke); }
/* details */
#gf-details { width: 340px; flex: none; overflow: auto; border-left: 1px solid var(--gf-border); padding: 8px 12px; background: var(--gf-panel); }
#gf-details header { display: flex; justify-content: space-between; align-items: center; }
#gf-details h2 { font-size: 16px; margin: 0; word-break: break-all; }
#gf-details h3 { font-size: 12px; margin: 12px 0 4px; color: var(--gf-muted); text-transform: uppercase; letter-spacing: .04em; }
.gf-fullname { font-family: monospace; font-size: 12px; word-break: break-all; color: var(--gf-muted); }
#gf-details dl { margin: 8px 0 0; }
.gf-row { display: grid; grid-template-columns: 100px 1fr; gap: 6px; padding: 2px 0; }
.gf-row dt { color: var(--gf-muted); }
.gf-row dd { margin: 0; word-break: break-word; }
.gf-row dd[data-field=source] { font-family: monospace; }
.gf-badge { padding: 0 6px; border-radius: 8px; background: var(--gf-none); }
.gf-badge[data-state=flowing] { background: var(--gf-ok-bg); color: var(--gf-ok-fg); }
.gf-badge[data-state=zero] { background: var(--gf-zero); color: var(--gf-zero-fg); }
.gf-badge[data-state=nonfinite] { background: var(--gf-nonfinite); color: var(--gf-nonfinite-fg); }
.gf-cut-text { color: var(--gf-cut); font-weight: 600; }
.gf-links { list-style: none; margin: 0; padding: 0; }
.gf-op-link { border: 0 !important; background: transparent !important; color: var(--gf-accent); padding: 0 !important; text-align: left; font-family: monospace; font-size: 12px; word-break: break-all; }
.gf-op-link[data-state=none] { color: var(--gf-muted); }
.gf-chart-bg { fill: var(--gf-bg); stroke: var(--gf-border); }
.gf-chart-line { fill: none; stroke: var(--gf-flow-edge); stroke-width: 1.5; }
.gf-chart-dot { fill: var(--gf-flow-edge); }
.gf-chart-dot[data-state=none] { fill: var(--gf-none-stroke); }
.gf-chart-dot[data-state=zero] { fill: var(--gf-zero); }
.gf-chart-dot[data-state=nonfinite] { fill: var(--gf-nonfinite); }
.gf-chart-tick, .gf-axis-label { font-size: 10px; fill: var(--gf-muted); }
.gf-chart .gf-grid { stroke: var(--gf-border); stroke-width: .6; }
.gf-chart-version line { stroke: var(--gf-nonfinite); stroke-dasharray: 4 3; }
.gf-chart-version text { font-size: 9px; fill: var(--gf-nonfinite); }
.gf-chart-now { stroke: var(--gf-select); stroke-dasharray: 3 2; }
/* layers */
.gf-layers { flex: 1; overflow: auto; padding: 8px 12px; }
.gf-layers-head { margin-bottom: 8px; }
.gf-layer, .gf-axis-row { display: grid; grid-template-columns: minmax(160px, 30%) 1fr; gap: 8px; padding: 4px 0; border-bottom: 1px solid var(--gf-border); }
/* hundreds of layers: the rows out of view are neither laid out nor painted until scrolled to */
.gf-layer { content-visibility: auto; contain-intrinsic-size: auto 29px; }
.gf-layer-name { font-family: monospace; font-size: 12px; word-break: break-all; }
.gf-var, .gf-axis-var { display: grid; grid-template-columns: 110px 1fr; gap: 6px; align-items: center; }
.gf-var-name { border: 0 !important; background: transparent !important; text-align: left; padding: 0 !important; color: var(--gf-accent); overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.gf-bar-row, .gf-axis-bar { display: grid; grid-template-columns: 1fr 130px; gap: 6px; align-items: center; }
.gf-bar-track { height: 12px; background: var(--gf-cluster); border-radius: 2px; position: relative; }
.gf-bar { position: absolute; left: 0; top: 0; bottom: 0; border-radius: 2px; background: var(--gf-flow-edge); }
.gf-bar-row[data-run]:nth-child(2) .gf-bar { opacity: .6; }
/* starved: a hatch and outline in the none text colour (over 4.5:1 on the page), not pale grey */
.gf-bar-row[data-state=none] .gf-bar-track { background: repeating-linear-gradient(45deg, var(--gf-none-fg) 0 1.5px, transparent 1.5px 6px); outline: 1px dashed var(--gf-none-fg); outline-offset: -1px; }
.gf-bar-row[data-state=none] .gf-bar-value { color: var(--gf-bad-fg); font-weight: 600; }
.gf-bar-row[data-state=zero] .gf-bar-track { border-left: 4px solid var(--gf-zero); }
.gf-bar-row[data-state=zero] .gf-bar-value { color: var(--gf-warn-fg); font-weight: 600; }
.gf-bar-row[data-state=nonfinite] .gf-bar-track { background: var(--gf-nonfinite); }
.gf-bar-row[data-state=nonfinite] .gf-bar-value { color: var(--gf-nonfinite); font-weight: 600; }
.gf-bar-value { font-family: monospace; font-size: 12px; }
`;
