/**
 * The operations lock.test.ts runs on a vmalloc after a worker using it was killed: each must
 * succeed or fail with EOWNERDEAD (the dead cpu held a lock it needs) or ETIMEDOUT (the lock's
 * holder is unknown), never hang.
 */

import { VmallocError, type Vmalloc } from '../../src/index.js';

export interface OpOutcome {
  op: string;
  ok: boolean;
  /** VmallocError code, or a description of another error. */
  code?: string;
  message?: string;
  ms: number;
}

export function opsAfterDeath(vm: Vmalloc): OpOutcome[] {
  const out: OpOutcome[] = [];
  const page = vm.pageSize;
  const run = (op: string, fn: () => void): void => {
    const t0 = performance.now();
    try {
      fn();
      out.push({ op, ok: true, ms: performance.now() - t0 });
    } catch (e) {
      out.push({
        op,
        ok: false,
        code: e instanceof VmallocError ? e.code : `not a VmallocError: ${String(e)}`,
        message: e instanceof Error ? e.message : String(e),
        ms: performance.now() - t0,
      });
    }
  };
  let a: number | null = null;
  let b: number | null = null;
  run('vmalloc', () => {
    a = vm.vmalloc(3 * page);
  });
  run('write and read', () => {
    if (a === null) return;
    vm.writeU8(a + 2 * page, 0x3c);
    if (vm.readU8(a + 2 * page) !== 0x3c) throw new Error('the byte written was not read back');
  });
  run('vmalloc 2', () => {
    b = vm.vmalloc(40 * page);
  });
  run('vfree', () => vm.vfree(a));
  run('findVmArea', () => {
    if (b !== null && vm.findVmArea(b + page)?.addr !== b) throw new Error('live area not found');
  });
  run('vfree 2', () => vm.vfree(b));
  run('purge', () => vm.purge());
  run('shrinker.scan', () => vm.shrinker.scan());
  run('stats', () => vm.stats());
  return out;
}
