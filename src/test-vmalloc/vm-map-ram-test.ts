/**
 * test_vmalloc's vm_map_ram_test (bit 1024): map the same pages again and again.
 *
 * Holds: the test body. Invariant: every frame it takes is freed again, whatever happens.
 * Callers: the tests table (tests.ts).
 *
 * Kernel: lib/test_vmalloc.c vm_map_ram_test(): max(1, nr_pages) pages from the bulk page
 * allocator; test_loop_count times vm_map_ram() them, store one byte, vm_unmap_ram(); free
 * the pages; fails when the bulk allocation came up short.
 * Differs from kernel: a NULL from vm_map_ram() fails the test (the kernel would oops on the
 * store).
 */

import type { TestContext } from './tests.js';

export function vmMapRamTest(c: TestContext): number {
  const { vm, params } = c;
  const mapNrPages = params.nr_pages > 0 ? params.nr_pages : 1;
  const pages = vm.allocPages(mapNrPages);
  let rv = pages.length === mapNrPages ? 0 : -1;
  if (rv === 0) {
    for (let i = 0; i < params.test_loop_count; i++) {
      const v = vm.vmMapRam(pages, mapNrPages);
      if (v === null) {
        rv = -1;
        break;
      }
      vm.writeU8(v, 0x61); // 'a'
      vm.vmUnmapRam(v, mapNrPages);
      c.tick();
    }
  }
  vm.freePages(pages);
  return rv;
}
