/**
 * The misuse battery: every public function and option of the library, given wrong types,
 * non-finite numbers, -0, fractions, negatives, boundaries and one past them, forged and
 * foreign handles, unknown, freed and interior addresses, guard pages and addresses outside
 * the window, in both designs where the vmalloc layer is concerned. Each case must throw a
 * VmallocError with the contract's code, a message naming the argument and its rule
 * ("must ..."), and leave the state as it was.
 *
 * The cases come from the tables in misuse-battery-*.ts (one table per function: argument,
 * expected code, bad values); a test per table row runs its values and lists the ones that
 * fail with what actually happened. The run ends with one line: cases run / failing. Set
 * MISUSE_BATTERY_VERBOSE=1 to print every failing case with its actual behaviour, one per line
 * (fields separated by " || ").
 */

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { type AnyTable, runRow, tally } from '../helpers/misuse-cases.js';
import { allocTables } from './misuse-battery-alloc.js';
import { createTables } from './misuse-battery-create.js';
import { freeTables } from './misuse-battery-free.js';
import { memoryTables } from './misuse-battery-memory.js';
import { percpuTables } from './misuse-battery-percpu.js';
import { rcuTables } from './misuse-battery-rcu.js';
import { spaceOpTables } from './misuse-battery-space-ops.js';
import { spaceTables } from './misuse-battery-space.js';
import { vmMapRamTables } from './misuse-battery-vmmapram.js';

const tables: AnyTable[] = [
  ...createTables,
  ...allocTables,
  ...freeTables,
  ...memoryTables,
  ...percpuTables,
  ...spaceTables,
  ...spaceOpTables,
  ...vmMapRamTables,
  ...rcuTables,
];

for (const t of tables) {
  for (const design of t.designs) {
    describe(`${t.fn}${design === undefined ? '' : ` [${design}]`}`, () => {
      for (const row of t.rows) {
        test(`${row.pos}: ${row.bad.length} bad values throw ${row.code}`, () => {
          const failing = runRow(t, design, row);
          if (failing.length > 0) {
            assert.fail(
              `${failing.length} of ${row.bad.length} cases fail:\n` +
                failing
                  .map((r) => `  ${r.name}: ${r.failed.join(', ')}\n    ${r.actual}`)
                  .join('\n'),
            );
          }
        });
      }
    });
  }
}

after(() => {
  if (process.env.MISUSE_BATTERY_VERBOSE === '1') {
    // Function, design, argument, value, failed checks, what happened.
    for (const r of tally.failing) {
      const fields = [r.fn, r.design ?? '-', r.pos, r.label, r.failed.join(', '), r.actual];
      console.log(`FAIL || ${fields.join(' || ')}`);
    }
  }
  console.log(`misuse battery: ${tally.run} cases run, ${tally.failing.length} failing`);
});
