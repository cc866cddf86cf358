/**
 * The flags that the commands running test_vmalloc share, read the same way everywhere.
 *
 * Holds: maskFlag() (--mask: a run_test_mask of implemented tests) and stderrProgress() (the
 * progress lines that --quiet turns off). args.ts holds the generic readers; these know what a
 * run is, so they live apart (args.ts depends on nothing).
 * Invariant: a refusal is a UsageError naming the flag, as args.ts's are.
 * Callers: src/cli/bench.ts (bench contention, vmmapram, kva), report.ts (its scaling run),
 * sim.ts (sim calibrate).
 */

import { checkMask } from '../test-vmalloc/driver.js';
import { INT_MAX, UsageError, intFlag, type ParsedArgs } from './args.js';

/** --mask, `fallback` when absent: an int whose tests are all implemented (checkMask()). */
export function maskFlag(args: ParsedArgs, fallback: number): number {
  const mask = intFlag(args, 'mask', fallback, INT_MAX, 'run_test_mask is an int');
  try {
    checkMask(mask);
  } catch (e) {
    throw new UsageError(`--mask: ${(e as Error).message}`);
  }
  return mask;
}

/** The progress callback of a run: none when `quiet`, else each line indented on stderr. */
export function stderrProgress(quiet: boolean): ((line: string) => void) | undefined {
  return quiet ? undefined : (line: string) => process.stderr.write(`  ${line}\n`);
}
