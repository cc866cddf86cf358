// Runs every compiled test file (dist/test/**/*.test.js) with Node's test runner.
// Helpers under dist/test are not test files; naming them explicitly keeps the runner from
// loading them as tests (Node 20's `node --test <dir>` would).
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = 'dist/test';
const only = process.argv.slice(2);
const files = readdirSync(root, { recursive: true })
  .map(String)
  .filter((f) => f.endsWith('.test.js'))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort()
  .map((f) => join(root, f));
if (files.length === 0) {
  console.error(`no test files under ${root}${only.length ? ` matching ${only.join(', ')}` : ''}`);
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--test', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
