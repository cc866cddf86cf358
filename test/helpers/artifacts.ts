/**
 * Where tests keep what they make for a person to look at (the report's screenshot).
 *
 * Holds: artifactDir(), the one place artifacts go: $VMALLOC_TEST_ARTIFACTS, else
 * <os tmpdir>/vmalloc-test-artifacts. Each artifact has a fixed name there, overwritten by the
 * next run, so runs never pile up.
 * Invariant: a test's temporary folders (mkdtemp) are removed by the test itself (an after()
 * hook, or finally), passed or failed; after a run the temporary folder keeps only this one.
 * Callers: test/report/browser.test.ts (report-browser.png).
 */

import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The artifacts folder (made if missing). */
export function artifactDir(): string {
  const dir = process.env['VMALLOC_TEST_ARTIFACTS'] ?? join(tmpdir(), 'vmalloc-test-artifacts');
  mkdirSync(dir, { recursive: true });
  return dir;
}
