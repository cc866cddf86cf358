/**
 * test_vmalloc tests 9 and 10: kvfree_rcu_1_arg_vmalloc_test and kvfree_rcu_2_arg_vmalloc_test.
 *
 * Holds: the two bodies. Each loop allocates one page holding the kernel's
 * struct test_kvfree_rcu { struct rcu_head rcu; unsigned char array[20]; } (the rcu_head is
 * 16 bytes, so array[0] is at byte 16), writes array[0] = 'a', and hands it to kvfreeRcu.
 * Callers: the tests table (tests.ts).
 *
 * Kernel: lib/test_vmalloc.c (v6.17): the 1-argument test calls kvfree_rcu_mightsleep(p), the
 * 2-argument one kvfree_rcu(p, rcu). Differs from kernel: both call vm.kvfreeRcu(p): the
 * batches here never need the object's own rcu_head (the kernel falls back to it when it
 * cannot get a page for its pointer array; kvfreeRcu waits for a grace period instead, as
 * kvfree_rcu_mightsleep does), so the two forms differ only in name.
 */

import type { TestContext } from './tests.js';

/** offsetof(struct test_kvfree_rcu, array): after the 16-byte rcu_head. */
const ARRAY_OFFSET = 16;

function kvfreeRcuLoop(c: TestContext, caller: string): number {
  const { vm, params } = c;
  const opts = { caller };
  for (let i = 0; i < params.test_loop_count; i++) {
    const p = vm.vmalloc(vm.pageSize, opts);
    if (p === null) return -1;
    vm.writeU8(p + ARRAY_OFFSET, 0x61); // 'a'
    vm.kvfreeRcu(p);
    c.tick();
  }
  return 0;
}

export function kvfreeRcu1ArgVmallocTest(c: TestContext): number {
  return kvfreeRcuLoop(c, 'kvfree_rcu_1_arg_vmalloc_test [test_vmalloc]');
}

export function kvfreeRcu2ArgVmallocTest(c: TestContext): number {
  return kvfreeRcuLoop(c, 'kvfree_rcu_2_arg_vmalloc_test [test_vmalloc]');
}
