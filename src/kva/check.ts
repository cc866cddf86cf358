/**
 * Invariant checks of the kva structures: product code, run by check(), never on hot paths.
 *
 * Holds: the red-black rules, parent links, exact augmentation, tree/list agreement and order
 * of one rb_list; the free-space rules (coalesced, disjoint from busy, tiling the space); the
 * record accounting of a VaStore.
 * Callers: VmapSpace.check() (checkSpace), the vmalloc layer's check(), tests after every
 * operation.
 *
 * Kernel: the compiled-out DEBUG_AUGMENT_PROPAGATE_CHECK walk, extended to every rule.
 */

import { invariant, invariantFailure } from '../debug.js';
import { hex } from '../errors.js';
import { subtreeMax } from './rbtree.js';
import { rbListCount } from './rb-list.js';
import type { VaStore } from './vmap-area.js';

const isRed = (s: VaStore, x: number): boolean => s.isRed(x);

function range(s: VaStore, x: number): string {
  return `#${x} [${hex(s.start(x))}, ${hex(s.end(x))})`;
}

/**
 * Checks the rb_list under head `h` and returns its record ids in address order.
 * `aug`: the tree is max-augmented. Every range must lie in [lo, hi).
 */
export function checkRbList(
  s: VaStore,
  h: number,
  aug: boolean,
  name: string,
  lo: number,
  hi: number,
): number[] {
  const root = s.left(h);
  invariant(root === 0 || s.pc(root) >> 1 === 0, () => `${name}: root #${root} has a parent`);
  invariant(!isRed(s, root), () => `${name}: root #${root} is red`);

  // In-order walk with an explicit stack, checking each node on the way.
  const order: number[] = [];
  const stack: number[] = [];
  let x = root;
  while (x !== 0 || stack.length > 0) {
    while (x !== 0) {
      invariant(x > 0 && x < s.highWater, () => `${name}: link to record #${x} out of range`);
      invariant(order.length + stack.length <= s.highWater, () => `${name}: cycle in the tree`);
      stack.push(x);
      x = s.left(x);
    }
    x = stack.pop()!;
    order.push(x);
    x = s.right(x);
  }

  // Per node: parent links, colours, augmentation, ranges; black heights bottom-up.
  const blackHeight = (n: number): number => {
    if (n === 0) return 0;
    const l = s.left(n);
    const r = s.right(n);
    if (l !== 0)
      invariant(
        s.pc(l) >> 1 === n,
        () => `${name}: ${range(s, l)} does not point back to its parent #${n}`,
      );
    if (r !== 0)
      invariant(
        s.pc(r) >> 1 === n,
        () => `${name}: ${range(s, r)} does not point back to its parent #${n}`,
      );
    if (isRed(s, n)) {
      invariant(!isRed(s, l) && !isRed(s, r), () => `${name}: red ${range(s, n)} has a red child`);
    }
    invariant(s.start(n) < s.end(n), () => `${name}: empty or inverted range ${range(s, n)}`);
    invariant(
      s.start(n) >= lo && s.end(n) <= hi,
      () => `${name}: ${range(s, n)} lies outside [${hex(lo)}, ${hex(hi)})`,
    );
    if (aug) {
      const want = subtreeMax(s, n);
      invariant(
        s.smax(n) === want,
        () => `${name}: ${range(s, n)} has smax ${s.smax(n)}, expected ${want}`,
      );
    }
    const bl = blackHeight(l);
    const br = blackHeight(r);
    invariant(
      bl === br,
      () => `${name}: black heights differ below ${range(s, n)} (${bl} vs ${br})`,
    );
    return bl + (isRed(s, n) ? 0 : 1);
  };
  blackHeight(root);

  // The list must be the in-order sequence, sorted and disjoint, with consistent back links.
  let prev = h;
  let cur = s.next(h);
  for (let i = 0; i < order.length; i++) {
    invariant(
      cur === order[i],
      () => `${name}: list position ${i} holds #${cur}, tree has #${order[i]}`,
    );
    invariant(s.prev(cur) === prev, () => `${name}: ${range(s, cur)} has a wrong list back link`);
    if (prev !== h) {
      invariant(
        s.end(prev) <= s.start(cur),
        () => `${name}: ${range(s, prev)} and ${range(s, cur)} overlap or are unsorted`,
      );
    }
    prev = cur;
    cur = s.next(cur);
  }
  invariant(cur === h && s.prev(h) === prev, () => `${name}: list has more records than the tree`);
  invariant(
    rbListCount(s, h) === order.length,
    () => `${name}: head counts ${rbListCount(s, h)} records, tree has ${order.length}`,
  );
  return order;
}

/** Free blocks must be fully coalesced: no block ends where the next one starts. */
export function checkCoalesced(s: VaStore, free: readonly number[], name: string): void {
  for (let i = 1; i < free.length; i++) {
    const a = free[i - 1]!;
    const b = free[i]!;
    invariant(
      s.end(a) < s.start(b),
      () => `${name}: ${range(s, a)} and ${range(s, b)} are adjacent but not merged`,
    );
  }
}

/**
 * The given sorted lists of ranges, merged, must tile [lo, hi) exactly: no overlap, no gap.
 * Returns nothing; throws naming the first gap or overlap.
 */
export function checkTiling(
  s: VaStore,
  lists: readonly (readonly number[])[],
  lo: number,
  hi: number,
  name: string,
): void {
  const all: number[] = [];
  for (const l of lists) for (const x of l) all.push(x);
  all.sort((a, b) => s.start(a) - s.start(b));
  let at = lo;
  for (const x of all) {
    invariant(s.start(x) === at, () =>
      s.start(x) < at
        ? `${name}: ${range(s, x)} overlaps the range before it (which ends at ${hex(at)})`
        : `${name}: nothing covers [${hex(at)}, ${hex(s.start(x))})`,
    );
    at = s.end(x);
  }
  invariant(at === hi, () => `${name}: nothing covers [${hex(at)}, ${hex(hi)})`);
}

/**
 * Record accounting: `inUse` (every record reachable from the structures, heads included) plus
 * the free-id stack must account for every id handed out, with no id in both.
 */
export function checkStore(s: VaStore, inUse: readonly number[], name: string): void {
  const hwm = s.highWater;
  const mark = new Uint8Array(hwm);
  for (const x of inUse) {
    invariant(x > 0 && x < hwm, () => `${name}: record #${x} is out of range`);
    invariant(mark[x] === 0, () => `${name}: record #${x} is used twice`);
    mark[x] = 1;
  }
  for (const x of s.freeIdList()) {
    invariant(x > 0 && x < hwm, () => `${name}: free id #${x} is out of range`);
    invariant(mark[x] === 0, () => `${name}: record #${x} is both in use and free`);
    mark[x] = 2;
  }
  invariant(
    s.live === inUse.length,
    () => `${name}: ${s.live} records are live but ${inUse.length} are reachable (a leak)`,
  );
  for (let i = 1; i < hwm; i++) {
    invariant(mark[i] !== 0, () => `${name}: record #${i} is neither reachable nor free (a leak)`);
  }
}

/**
 * Every rule of a bare range allocator (VmapSpace): both trees, the free blocks coalesced,
 * free and busy tiling [start, end), `busyBytes` equal to the bytes of the busy areas, and the
 * record accounting (the two heads, the blocks, the areas and the spare `preload`, 0: none).
 */
export function checkSpace(
  s: VaStore,
  freeHead: number,
  busyHead: number,
  start: number,
  end: number,
  busyBytes: number,
  preload: number,
): void {
  const free = checkRbList(s, freeHead, true, 'free tree', start, end);
  const busy = checkRbList(s, busyHead, false, 'busy tree', start, end);
  checkCoalesced(s, free, 'free tree');
  checkTiling(s, [free, busy], start, end, 'space');
  let counted = 0;
  for (const x of busy) counted += s.end(x) - s.start(x);
  if (counted !== busyBytes)
    invariantFailure(`busy bytes counted ${busyBytes}, areas hold ${counted}`);
  const inUse = [freeHead, busyHead, ...free, ...busy];
  if (preload !== 0) inUse.push(preload);
  checkStore(s, inUse, 'records');
}
