/**
 * A thread whose view of the page table is older than a table another thread made since (what
 * recovery met: the recovering thread read a dead worker's half-made vm_map_ram mapping as
 * mapped, and left its pages in the table): lookup(), mapped() and unmap() through that view
 * see and change the new table, whatever this thread did before in that region's walk cache.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PageTable } from '../../src/mm/page-table.js';

const PAGE = 4096;
/** Pages of one pte table's span. */
const SPAN = 512;

describe('page table: a view older than a table another thread made', () => {
  test('lookup, mapped and unmap reach the new table', () => {
    const buffer = PageTable.createBuffer(PAGE, true);
    const old = new PageTable(buffer, PAGE); // this thread's view, made first
    const other = new PageTable(buffer, PAGE); // another thread's
    // The upper tables of the regions below are made, and seen by the old view.
    const base = 2 ** 40;
    other.map(base, Int32Array.of(1), 0, 1);
    assert.equal(old.mapped(base, 1), 1);
    // Then enough pte tables under the same pmd table that the buffer grows past that view.
    for (let k = 1; k < 500; k++) other.map(base + k * SPAN * PAGE, Int32Array.of(k + 1), 0, 1);
    // In the last region, the page after the mapped one is not mapped.
    const region = base + 499 * SPAN * PAGE;
    assert.equal(old.mapped(region, 2), 1, 'one mapped page, then an unmapped one');
    assert.equal(old.lookup(region + PAGE), -1, 'not mapped: not pfn 0');
    assert.equal(old.lookup(region), 500);
    old.unmap(region, 1);
    assert.equal(other.lookup(region), -1, 'the unmap reached the shared table');
    assert.equal(old.lookup(region), -1);
  });
});
