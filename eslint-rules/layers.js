/**
 * Local ESLint plugin `layers`: imports in src/ run one way, down a fixed stack of layers, and
 * never in a circle.
 *
 * The layers, lowest first. A module may import from its own layer or a lower one only:
 *   0 shared   src/shared/**, src/errors.ts, src/debug.ts
 *   1 kva      src/kva/**
 *   2 designs  src/designs/**
 *   3 mm       src/mm/**
 *   4 api      src/api/**, src/index.ts
 *   5 tools    src/test-vmalloc/** < src/sim/** < src/bench/** < src/report/** < src/cli/**
 *              (each may import the folders before it, not the reverse: the simulator runs
 *              test-vmalloc's workload, bench and cli run the simulator, the report runs
 *              tests and benchmarks)
 * The map is LAYERS below; a new folder of src/ goes there first.
 *
 * Rules:
 *   layers/direction  reports, on the file linted:
 *     - a file of src/ that no layer covers ("put it in a layer");
 *     - an import of a module of a higher layer (or, in tools, of a higher tools folder);
 *     - in layers 0-4 (the core, which must bundle for browsers), an import of a Node built-in
 *       (`node:*`, or a bare name Node knows: 'os', 'fs/promises', 'worker_threads', ...).
 *   layers/no-cycle   reports, on each file that is part of an import cycle (a strongly
 *     connected component of more than one file of the import graph of src/, or a file that
 *     imports itself), one shortest cycle through that file, at the import that starts it.
 *
 * What counts as an import:
 *   - `import ... from`, `import '...'`, `export ... from`, `import x = require(...)`: everywhere.
 *   - Type-only imports (`import type`, `export type ... from`, `import('...').T` in a type):
 *     count for direction and for built-ins, since they still couple the layers (a lower layer
 *     that names a higher layer's types cannot be built, tested or bundled without it). They do
 *     NOT count for cycles: the compiler erases them, so a type-only cycle never runs and cannot
 *     see a module half-initialised. Only the declaration-level `type` keyword makes an import
 *     type-only: with verbatimModuleSyntax (tsconfig.json) `import { type A } from './a.js'` is
 *     emitted as `import {} from './a.js'` and still loads the module, so it counts as a cycle
 *     edge.
 *   - Dynamic `import('...')` with a literal name: counts for direction and for built-ins
 *     (bundlers follow it as they follow a static import, guarded or not; core code that needs a
 *     built-in on Node asks process.getBuiltinModule(), a plain call, as src/shared/cpu.ts does).
 *     It does not count for cycles: it is evaluated after the static graph has finished loading.
 *   - A relative import whose target does not exist (a file being added or moved), or that leaves
 *     src/, is not these rules' business: skipped. So are package names that are not built-ins.
 *   './x.js' resolves to './x.ts' (NodeNext style), then './x.js'; a name without an extension
 *   to './x.ts', then './x/index.ts'.
 *
 * Where src/ is: `<cwd>/src` if the linted file is inside it, else the nearest ancestor folder
 * named src (so a project in a temporary folder, linted from anywhere, works too). Files are
 * named relative to the folder that holds src/, e.g. "src/mm/vmalloc.ts".
 *
 * The import graph (for no-cycle) is built from the files on disk: every *.ts under src/ is read
 * and its top-level import/export declarations are taken with TypeScript's parser (exact where a
 * regex is not: comments, strings, multi-line lists). It is built once per lint run and cached in
 * this module per src/ folder; a cached graph is re-validated (a stat of every file, no reads) at
 * most once a second and rebuilt only when a file was added, removed or changed, so a
 * long-running ESLint (an editor) does not report stale cycles for long.
 */

import fs from 'node:fs';
import { isBuiltin } from 'node:module';
import path from 'node:path';
import ts from 'typescript';

/** The layers, lowest first; `parts` are sub-layers, lowest first (none: the layer is one part). */
export const LAYERS = [
  { name: 'shared', dirs: ['shared'], files: ['errors.ts', 'debug.ts'] },
  { name: 'kva', dirs: ['kva'] },
  { name: 'designs', dirs: ['designs'] },
  { name: 'mm', dirs: ['mm'] },
  { name: 'api', dirs: ['api'], files: ['index.ts'] },
  {
    name: 'tools',
    parts: [
      { name: 'test-vmalloc', dirs: ['test-vmalloc'] },
      { name: 'sim', dirs: ['sim'] },
      { name: 'bench', dirs: ['bench'] },
      { name: 'report', dirs: ['report'] },
      { name: 'cli', dirs: ['cli'] },
    ],
    nodeBuiltins: true,
  },
];

/**
 * Flattened: one tier per (layer, part), `rank` ascending up the stack. An import from tier a to
 * tier b is allowed iff b.rank <= a.rank.
 */
const TIERS = LAYERS.flatMap((layer) =>
  (layer.parts ?? [layer]).map((part) => ({
    layer: layer.name,
    label: layer.parts ? `${layer.name}: ${part.name}` : layer.name,
    dirs: part.dirs ?? [],
    files: part.files ?? [],
    nodeBuiltins: layer.nodeBuiltins === true,
  })),
).map((tier, rank) => ({ ...tier, rank }));

const CHAIN = LAYERS.map((l) => l.name).join(' <- ');
const WITHIN = LAYERS.filter((l) => l.parts)
  .map((l) => `within ${l.name}: ${l.parts.map((p) => p.name).join(' <- ')}`)
  .join('; ');
const MAP = TIERS.map(
  (t) =>
    `${t.label} = ${[...t.dirs.map((d) => `src/${d}/**`), ...t.files.map((f) => `src/${f}`)].join(', ')}`,
).join('; ');
const CORE = LAYERS.filter((l) => !l.nodeBuiltins)
  .map((l) => l.name)
  .join(', ');
const TOOLS = TIERS.filter((t) => t.nodeBuiltins)
  .flatMap((t) => t.dirs.map((d) => `src/${d}`))
  .join(', ');

/** The tier of `rel` (a path relative to src/, with '/'), or null when no layer covers it. */
export function tierOf(rel) {
  for (const tier of TIERS) {
    if (tier.files.includes(rel)) return tier;
    if (tier.dirs.some((d) => rel.startsWith(`${d}/`))) return tier;
  }
  return null;
}

const toPosix = (p) => p.split(path.sep).join('/');

/** `file` is strictly inside `dir`. */
function isInside(dir, file) {
  const rel = path.relative(dir, file);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

function isDirectory(p) {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function isFile(p) {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/** The src/ folder that holds `filename`: `<cwd>/src`, else its nearest ancestor named src. */
export function findSrcDir(filename, cwd) {
  if (!path.isAbsolute(filename)) return null;
  if (cwd) {
    const fromCwd = path.join(cwd, 'src');
    if (isInside(fromCwd, filename) && isDirectory(fromCwd)) return fromCwd;
  }
  for (let dir = path.dirname(filename); ;) {
    if (path.basename(dir) === 'src') return dir;
    const parent = path.dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

/**
 * The file a relative `specifier` in `fromFile` names, or null (not relative, or no such file).
 * `exists` says whether a candidate path is a file.
 */
export function resolveImport(fromFile, specifier, exists = isFile) {
  if (!/^\.\.?(\/|$)/.test(specifier)) return null;
  const base = path.resolve(path.dirname(fromFile), specifier);
  const ext = /\.(js|mjs|cjs|jsx)$/.exec(base);
  let candidates;
  if (ext) {
    const stem = base.slice(0, -ext[0].length);
    const tsExt = { js: ['.ts', '.tsx'], mjs: ['.mts'], cjs: ['.cts'], jsx: ['.tsx'] }[ext[1]];
    candidates = [...tsExt.map((e) => stem + e), base];
  } else if (/\.(ts|tsx|mts|cts)$/.test(base)) {
    candidates = [base];
  } else {
    candidates = [`${base}.ts`, `${base}.tsx`, path.join(base, 'index.ts')];
  }
  return candidates.find((c) => exists(c)) ?? null;
}

/** Node's built-ins, with or without `node:` (the prefix alone is enough: 'node:sqlite'). */
export function isNodeBuiltin(specifier) {
  return specifier.startsWith('node:') || isBuiltin(specifier);
}

// ---------------------------------------------------------------------------------------------
// The import graph of src/, for no-cycle.

const RECHECK_MS = 1000;
/** srcDir -> { signature, checkedAt, graph } */
const graphCache = new Map();

/** Every *.ts file under `dir` (absolute paths, sorted), with its mtime and size. */
function listTsFiles(dir) {
  const out = [];
  const walk = (d) => {
    let entries;
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return; // removed while we looked
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'node_modules') walk(p);
      } else if (e.isFile() && /\.(ts|tsx|mts|cts)$/.test(e.name)) {
        try {
          const st = fs.statSync(p);
          out.push({ file: p, mtimeMs: st.mtimeMs, size: st.size });
        } catch {
          // removed while we looked
        }
      }
    }
  };
  walk(dir);
  return out.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
}

/** The specifiers of the imports of `text` that load a module when it runs (not type-only). */
function runtimeSpecifiers(file, text) {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const out = [];
  for (const st of sf.statements) {
    if (ts.isImportDeclaration(st)) {
      if (st.importClause?.isTypeOnly) continue;
      if (ts.isStringLiteral(st.moduleSpecifier)) out.push(st.moduleSpecifier.text);
    } else if (ts.isExportDeclaration(st)) {
      if (st.isTypeOnly || !st.moduleSpecifier) continue;
      if (ts.isStringLiteral(st.moduleSpecifier)) out.push(st.moduleSpecifier.text);
    } else if (ts.isImportEqualsDeclaration(st)) {
      if (st.isTypeOnly || !ts.isExternalModuleReference(st.moduleReference)) continue;
      const e = st.moduleReference.expression;
      if (ts.isStringLiteral(e)) out.push(e.text);
    }
  }
  return out;
}

/** Tarjan's strongly connected components, iteratively. Returns node -> component (array). */
function stronglyConnected(nodes, edges) {
  const index = new Map();
  const low = new Map();
  const onStack = new Set();
  const stack = [];
  const componentOf = new Map();
  let next = 0;
  for (const root of nodes) {
    if (index.has(root)) continue;
    const work = [{ v: root, i: 0 }];
    index.set(root, next);
    low.set(root, next++);
    stack.push(root);
    onStack.add(root);
    while (work.length > 0) {
      const frame = work[work.length - 1];
      const succ = edges.get(frame.v) ?? [];
      if (frame.i < succ.length) {
        const w = succ[frame.i++];
        if (!index.has(w)) {
          index.set(w, next);
          low.set(w, next++);
          stack.push(w);
          onStack.add(w);
          work.push({ v: w, i: 0 });
        } else if (onStack.has(w)) {
          low.set(frame.v, Math.min(low.get(frame.v), index.get(w)));
        }
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1].v;
        low.set(parent, Math.min(low.get(parent), low.get(frame.v)));
      }
      if (low.get(frame.v) === index.get(frame.v)) {
        const component = [];
        let w;
        do {
          w = stack.pop();
          onStack.delete(w);
          component.push(w);
        } while (w !== frame.v);
        for (const c of component) componentOf.set(c, component);
      }
    }
  }
  return componentOf;
}

function buildGraph(files) {
  const known = new Set(files.map((f) => f.file));
  const edges = new Map();
  for (const { file } of files) {
    let text;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      edges.set(file, []);
      continue;
    }
    const targets = runtimeSpecifiers(file, text)
      .map((s) => resolveImport(file, s, (c) => known.has(c)))
      .filter((t) => t !== null);
    edges.set(file, [...new Set(targets)]);
  }
  return { edges, componentOf: stronglyConnected([...known], edges) };
}

/** The import graph of `srcDir`: { edges: file -> [file], componentOf: file -> [file] }. */
export function importGraph(srcDir) {
  const now = Date.now();
  const cached = graphCache.get(srcDir);
  if (cached && now - cached.checkedAt < RECHECK_MS) return cached.graph;
  const files = listTsFiles(srcDir);
  const signature = files.map((f) => `${f.file}\0${f.mtimeMs}\0${f.size}`).join('\n');
  if (cached && cached.signature === signature) {
    cached.checkedAt = now;
    return cached.graph;
  }
  const graph = buildGraph(files);
  graphCache.set(srcDir, { signature, checkedAt: now, graph });
  return graph;
}

/** A shortest cycle through `file` inside its component: [file, ..., file], or null. */
function cycleThrough(graph, file) {
  const succ = graph.edges.get(file) ?? [];
  if (succ.includes(file)) return [file, file];
  const component = graph.componentOf.get(file);
  if (!component || component.length < 2) return null;
  const inComponent = new Set(component);
  const parent = new Map([[file, null]]);
  const queue = [file];
  while (queue.length > 0) {
    const v = queue.shift();
    for (const w of graph.edges.get(v) ?? []) {
      if (!inComponent.has(w)) continue;
      if (w === file) {
        const back = []; // v, its BFS parent, ..., the first step out of `file`
        for (let u = v; u !== file; u = parent.get(u)) back.push(u);
        return [file, ...back.reverse(), file];
      }
      if (!parent.has(w)) {
        parent.set(w, v);
        queue.push(w);
      }
    }
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// The rules.

/** The module name of an import-like AST node, with whether it is type-only / dynamic. */
function importOf(node) {
  const lit = (n) => (n && n.type === 'Literal' && typeof n.value === 'string' ? n : null);
  switch (node.type) {
    case 'ImportDeclaration':
      return { source: lit(node.source), typeOnly: node.importKind === 'type', dynamic: false };
    case 'ExportNamedDeclaration':
    case 'ExportAllDeclaration':
      return { source: lit(node.source), typeOnly: node.exportKind === 'type', dynamic: false };
    case 'TSImportEqualsDeclaration':
      return node.moduleReference.type === 'TSExternalModuleReference'
        ? {
            source: lit(node.moduleReference.expression),
            typeOnly: node.importKind === 'type',
            dynamic: false,
          }
        : { source: null };
    case 'ImportExpression':
      return { source: lit(node.source), typeOnly: false, dynamic: true };
    case 'TSImportType': {
      // typescript-eslint 8: `source`; earlier: `argument` (a TSLiteralType)
      const arg = node.source ?? node.argument;
      return { source: lit(arg) ?? lit(arg?.literal), typeOnly: true, dynamic: false };
    }
    default:
      return { source: null };
  }
}

const IMPORT_NODES = [
  'ImportDeclaration',
  'ExportNamedDeclaration',
  'ExportAllDeclaration',
  'TSImportEqualsDeclaration',
  'ImportExpression',
  'TSImportType',
];

/** The linted file, its src/ folder and the name to print for a file ("src/kva/x.ts"). */
function fileContext(context) {
  const filename = context.physicalFilename ?? context.filename;
  const srcDir = findSrcDir(filename, context.cwd);
  if (!srcDir || !isInside(srcDir, filename)) return null;
  const root = path.dirname(srcDir);
  return {
    filename,
    srcDir,
    show: (f) => toPosix(path.relative(root, f)),
    tier: (f) => tierOf(toPosix(path.relative(srcDir, f))),
  };
}

const direction = {
  meta: {
    type: 'problem',
    docs: {
      description:
        'Imports in src/ run down the layers (shared <- kva <- designs <- mm <- api <- tools), every file of src/ is in a layer, and the core layers import no Node built-in',
    },
    schema: [],
    messages: {
      noLayer: `{{file}} is in no layer: put it in a layer (${MAP}; the map is LAYERS in eslint-rules/layers.js)`,
      upward: `{{from}} ({{fromLayer}}) imports {{to}} ({{toLayer}}): imports must run down the layers ${CHAIN}{{within}}`,
      builtin: `{{from}} ({{fromLayer}}) imports the Node built-in '{{name}}': the core layers (${CORE}) must bundle for browsers; only ${TOOLS} may import Node built-ins (core code that needs one on Node can call process.getBuiltinModule())`,
    },
  },
  create(context) {
    const fc = fileContext(context);
    if (!fc) return {};
    const fromTier = fc.tier(fc.filename);
    if (!fromTier) {
      return {
        Program(node) {
          context.report({
            node,
            loc: { line: 1, column: 0 },
            messageId: 'noLayer',
            data: { file: fc.show(fc.filename) },
          });
        },
      };
    }
    const check = (node) => {
      const { source } = importOf(node);
      if (!source) return;
      const name = source.value;
      if (isNodeBuiltin(name)) {
        if (!fromTier.nodeBuiltins) {
          context.report({
            node: source,
            messageId: 'builtin',
            data: { from: fc.show(fc.filename), fromLayer: fromTier.label, name },
          });
        }
        return;
      }
      const target = resolveImport(fc.filename, name);
      if (!target || !isInside(fc.srcDir, target)) return;
      const toTier = fc.tier(target);
      if (!toTier || toTier.rank <= fromTier.rank) return; // an unlayered target gets its own report
      context.report({
        node: source,
        messageId: 'upward',
        data: {
          from: fc.show(fc.filename),
          fromLayer: fromTier.label,
          to: fc.show(target),
          toLayer: toTier.label,
          within: fromTier.layer === toTier.layer ? ` (${WITHIN})` : '',
        },
      });
    };
    return Object.fromEntries(IMPORT_NODES.map((t) => [t, check]));
  },
};

const noCycle = {
  meta: {
    type: 'problem',
    docs: {
      description:
        'No import cycles in src/ (type-only imports, erased at compile time, do not count)',
    },
    schema: [],
    messages: {
      cycle:
        '{{file}} ({{layer}}) is in an import cycle: {{path}}{{group}}. Imports must run one way: move what both sides need down, or make the import `import type` if only types cross',
    },
  },
  create(context) {
    const fc = fileContext(context);
    if (!fc) return {};
    const graph = importGraph(fc.srcDir);
    const cycle = cycleThrough(graph, fc.filename);
    if (!cycle) return {};
    const label = (f) => `${fc.show(f)} (${fc.tier(f)?.label ?? 'no layer'})`;
    const component = graph.componentOf.get(fc.filename) ?? [fc.filename];
    const data = {
      file: fc.show(fc.filename),
      layer: fc.tier(fc.filename)?.label ?? 'no layer',
      path: cycle.map(label).join(' -> '),
      group:
        component.length > cycle.length - 1
          ? ` (one of the cycles among ${component.length} files: ${component.map(fc.show).sort().join(', ')})`
          : '',
    };
    const next = cycle[1];
    let reported = false;
    const at = (node) => {
      if (reported) return;
      const { source, typeOnly, dynamic } = importOf(node);
      if (!source || typeOnly || dynamic) return;
      if (resolveImport(fc.filename, source.value) !== next) return;
      reported = true;
      context.report({ node: source, messageId: 'cycle', data });
    };
    return {
      ImportDeclaration: at,
      ExportNamedDeclaration: at,
      ExportAllDeclaration: at,
      TSImportEqualsDeclaration: at,
      'Program:exit'(node) {
        // the file on disk and the text linted differ (an editor buffer): report at the top
        if (!reported) {
          context.report({ node, loc: { line: 1, column: 0 }, messageId: 'cycle', data });
        }
      },
    };
  },
};

const plugin = {
  meta: { name: 'layers', version: '1.0.0' },
  rules: { direction, 'no-cycle': noCycle },
};

export default plugin;
