/**
 * The report as one self-contained HTML file: the skeleton, the style, the data as JSON and
 * the page's scripts (PAGE_SCRIPTS) inlined, nothing fetched at view time.
 *
 * Holds: renderReport(), PAGE_SCRIPTS and pageScript() (where the scripts are read from).
 * Invariant: the data goes in as JSON inside a <script type="application/json">, with every
 * "<" escaped, so no value can end the element; the scripts only read it.
 * Callers: src/cli/report.ts, tests, scripts/report-screenshot.mjs.
 */

import { existsSync, readFileSync } from 'node:fs';
import type { ReportData } from './collect.js';

/** The page's scripts, in the order they run (each defines what the next ones use). */
export const PAGE_SCRIPTS = [
  'page-map.js',
  'page-charts.js',
  'page-sections.js',
  'page.js',
] as const;

/**
 * A page script's text: next to this module (dist/src/report/, where `npm run build` copies
 * it), else in the source tree (a build by `tsc -p .` alone, which copies no .js).
 */
export function pageScript(name: (typeof PAGE_SCRIPTS)[number]): string {
  for (const rel of [`./${name}`, `../../../src/report/${name}`]) {
    const url = new URL(rel, import.meta.url);
    if (existsSync(url)) return readFileSync(url, 'utf8');
  }
  throw new Error(
    `report: the page script ${name} is missing (looked next to ${import.meta.url} and in src/report/)`,
  );
}

const STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 16px 24px; color: #222; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 24px 0 8px; border-bottom: 1px solid #ddd; }
h3 { font-size: 13px; margin: 8px 0 2px; font-weight: 600; }
#notes { color: #555; margin: 0 0 8px; }
.controls { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; margin-bottom: 6px; }
.controls button, .controls select { font: inherit; padding: 2px 8px; }
#view-label { font: 12px ui-monospace, monospace; color: #444; }
#map { border: 1px solid #bbb; image-rendering: pixelated; width: 100%; max-width: 1024px; cursor: crosshair; display: block; }
#tooltip { position: absolute; display: none; background: #fff; border: 1px solid #888; padding: 4px 6px;
  font: 12px ui-monospace, monospace; white-space: pre; pointer-events: none; box-shadow: 0 2px 6px rgba(0,0,0,.2); }
.key { display: inline-block; margin-right: 10px; font-size: 12px; white-space: nowrap; }
.key i { display: inline-block; width: 11px; height: 11px; margin-right: 4px; vertical-align: -1px; border: 1px solid #999; }
.note { font-size: 12px; color: #666; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.chart-box { display: inline-block; vertical-align: top; margin: 0 0 12px 0; }
.chart text { font-size: 10px; fill: #444; } .chart .grid { stroke: #e4e4e4; } .chart .unit { font-size: 11px; fill: #666; }
table { border-collapse: collapse; font-size: 13px; } th, td { border: 1px solid #ddd; padding: 2px 8px; text-align: left; }
#params th { background: #f6f6f6; font-weight: 600; }
`;

/** `<` inside the JSON becomes \\u003c, so "</script>" cannot appear in the data. */
function jsonForScript(data: unknown): string {
  return JSON.stringify(data).replace(/</g, '\\u003c');
}

export function renderReport(data: ReportData): string {
  const title = data.title.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<style>${STYLE}</style>
</head>
<body>
<h1 id="title"></h1>
<p id="notes"></p>
<section id="map-section">
<h2>Address space</h2>
<div class="controls">
<label>design <select id="design"></select></label>
<label>colour by <select id="color-by"><option value="auto">node (kind without nodes)</option><option value="node">node</option><option value="kind">kind</option></select></label>
<button id="zoom-used" type="button">used part</button>
<button id="zoom-all" type="button">whole window</button>
<button id="zoom-in" type="button">zoom in</button>
<button id="zoom-out" type="button">zoom out</button>
<span id="view-label"></span>
</div>
<canvas id="map" width="1024" height="384"></canvas>
<div id="legend"></div>
<div id="tooltip"></div>
<h2>Free-block sizes</h2>
<div id="histogram"></div>
</section>
<h2>Per-test times per design</h2>
<div id="tests" class="charts"></div>
<h2>Scaling (simulated)</h2>
<div id="scaling" class="charts"></div>
<h2>lock_stat</h2>
<div id="lockstat" class="charts"></div>
<h2>Parameters</h2>
<table id="params"></table>
<script type="application/json" id="report-data">${jsonForScript(data)}</script>
${PAGE_SCRIPTS.map((name) => `<script>${pageScript(name)}</script>`).join('\n')}
</body>
</html>
`;
}
