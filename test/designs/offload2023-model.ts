/**
 * A brute-force model of the 'offload2023' design's policy: sorted interval lists for the
 * global heap and each node's heap, the blocks each node fetched, busy areas with the node
 * they came from, per-node lazy ranges merged as they arrive, vmap_lazy_nr and the drain.
 *
 * Every answer comes from a linear scan. Requests aligned above a page are answered by the
 * kernel's search, whose result depends on the tree's shape (it prunes by size + align - 1):
 * there the model checks the real address against the bounds any search must respect and
 * follows it; every other answer (address, hit or miss, fetch, retry) must be exact.
 */

import assert from 'node:assert/strict';

export interface Iv {
  start: number;
  end: number;
}

const alignUp = (x: number, a: number): number => (a <= 1 ? x : Math.ceil(x / a) * a);

/** Sorted, disjoint, coalesced intervals. */
export class Heap {
  ivs: Iv[] = [];

  /** The lowest address for the request (vend checked on the result, as the kernel does). */
  lowest(size: number, align: number, vstart: number, vend: number): number {
    for (const b of this.ivs) {
      const at = alignUp(Math.max(b.start, vstart), align);
      if (at + size <= b.end) return at + size <= vend ? at : -1;
    }
    return -1;
  }

  /** The kernel's pruned search can only end at or below this block's fit (-1: may fail). */
  firstBig(size: number, align: number, vstart: number, vend: number): number {
    for (const b of this.ivs) {
      if (b.end - Math.max(b.start, vstart) < size + align - 1) continue;
      const at = alignUp(Math.max(b.start, vstart), align);
      if (at + size <= b.end) return at + size <= vend ? at : -1;
    }
    return -1;
  }

  holds(start: number, end: number): boolean {
    return this.ivs.some((b) => b.start <= start && end <= b.end);
  }

  take(start: number, end: number): void {
    const i = this.ivs.findIndex((b) => b.start <= start && end <= b.end);
    assert.ok(i >= 0, `model: [${start}, ${end}) is not free`);
    const b = this.ivs[i]!;
    const parts: Iv[] = [];
    if (b.start < start) parts.push({ start: b.start, end: start });
    if (end < b.end) parts.push({ start: end, end: b.end });
    this.ivs.splice(i, 1, ...parts);
  }

  /** Adds [start, end), merging with its neighbours; returns the interval it is now part of. */
  add(start: number, end: number): Iv {
    let i = 0;
    while (i < this.ivs.length && this.ivs[i]!.start < start) i++;
    assert.ok(i === 0 || this.ivs[i - 1]!.end <= start, 'model: overlap on add');
    assert.ok(i === this.ivs.length || end <= this.ivs[i]!.start, 'model: overlap on add');
    const iv = { start, end };
    this.ivs.splice(i, 0, iv);
    if (i + 1 < this.ivs.length && this.ivs[i + 1]!.start === end) {
      iv.end = this.ivs[i + 1]!.end;
      this.ivs.splice(i + 1, 1);
    }
    if (i > 0 && this.ivs[i - 1]!.end === start) {
      this.ivs[i - 1]!.end = iv.end;
      this.ivs.splice(i, 1);
      return this.ivs[i - 1]!;
    }
    return iv;
  }

  remove(iv: Iv): void {
    const i = this.ivs.indexOf(iv);
    assert.ok(i >= 0);
    this.ivs.splice(i, 1);
  }
}

/** What the real allocation did, from its result and the counters around it. */
export interface Observed {
  addr: number | null;
  /** served by the node heap (VaStat POOL_HITS went up) */
  hit: boolean;
  /** a block was fetched (the design's fetch counter went up) */
  fetched: boolean;
  /** failed allocRange calls (ALLOC_RETRIES): 1 means a purge-and-retry, 2 a failure */
  retries: number;
}

export interface ModelConfig {
  pageSize: number;
  nrNodes: number;
  nodeSize: number;
  spaceStart: number;
  spaceEnd: number;
  vmallocStart: number;
  vmallocEnd: number;
  lazyMaxPages: number;
}

export class OffloadModel {
  readonly global = new Heap();
  readonly nodes: { heap: Heap; blocks: Set<number> }[];
  /** start -> end and the node the area came from (-1: the global heap) */
  readonly busy = new Map<number, { end: number; node: number }>();
  readonly lazy: { start: number; end: number; node: number }[][];
  lazyPages = 0;
  fetched = 0;
  returned = 0;
  purges = 0;

  constructor(readonly c: ModelConfig) {
    this.global.ivs.push({ start: c.spaceStart, end: c.spaceEnd });
    this.nodes = Array.from({ length: c.nrNodes }, () => ({ heap: new Heap(), blocks: new Set() }));
    this.lazy = Array.from({ length: c.nrNodes }, () => []);
  }

  addrToNode(addr: number): number {
    return Math.floor(addr / this.c.nodeSize) % this.c.nrNodes;
  }

  /**
   * Checks the real allocation `o` of `size` bytes (guard page included) against the policy
   * and applies it. Throws (assert) naming the first disagreement.
   */
  alloc(cpu: number, size: number, align: number, o: Observed): void {
    const { pageSize: P, nodeSize: ns, vmallocStart: vs, vmallocEnd: ve } = this.c;
    const exact = align <= P;
    const extra = align > P ? align : 0;
    if (size + extra <= Math.floor(ns / 4)) {
      const n = cpu % this.c.nrNodes;
      const node = this.nodes[n]!;
      if (o.hit && !o.fetched) {
        this.follow(node.heap, size, align, o.addr, 'node heap');
        this.busy.set(o.addr!, { end: o.addr! + size, node: n });
        return;
      }
      const canMiss = exact
        ? node.heap.lowest(size, align, vs, ve) < 0
        : node.heap.firstBig(size, align, vs, ve) < 0;
      assert.ok(canMiss, `node ${n}'s heap must serve ${size} bytes (align ${align})`);
      const b = this.global.lowest(ns, 1, vs, ve);
      assert.equal(o.fetched, b >= 0, b >= 0 ? 'a block must be fetched' : 'no block to fetch');
      assert.equal(o.hit, b >= 0, 'served from the fetched block');
      if (b >= 0) {
        this.global.take(b, b + ns);
        node.blocks.add(b);
        node.heap.add(b + P, b + ns - P);
        this.fetched++;
        const at = alignUp(b + P, align);
        assert.equal(o.addr, at, 'the lowest aligned address of the new block');
        node.heap.take(at, at + size);
        this.busy.set(at, { end: at + size, node: n });
        return;
      }
    } else {
      assert.ok(!o.hit && !o.fetched, 'a request above a quarter of node_size is not a node one');
    }
    // The global heap: one try, a purge, one more try.
    for (let attempt = 0; attempt < 2; attempt++) {
      const lo = this.global.lowest(size, align, vs, ve);
      const canFail = exact ? lo < 0 : this.global.firstBig(size, align, vs, ve) < 0;
      if (o.retries === attempt) {
        this.follow(this.global, size, align, o.addr, 'global heap');
        this.busy.set(o.addr!, { end: o.addr! + size, node: -1 });
        return;
      }
      assert.ok(
        canFail,
        `the global heap must serve ${size} bytes (align ${align}), try ${attempt}`,
      );
      if (attempt === 0) this.purge();
    }
    assert.equal(o.retries, 2);
    assert.equal(o.addr, null, 'nothing fits even after the purge');
  }

  /** The real address must be a valid answer of the search in `heap`; takes it there. */
  private follow(heap: Heap, size: number, align: number, addr: number | null, where: string) {
    const { vmallocStart: vs, vmallocEnd: ve } = this.c;
    const lo = heap.lowest(size, align, vs, ve);
    assert.notEqual(addr, null, `${where}: an address was expected`);
    const a = addr!;
    if (align <= this.c.pageSize) assert.equal(a, lo, `${where}: the lowest fit`);
    else {
      const hi = heap.firstBig(size, align, vs, ve);
      assert.ok(
        lo >= 0 && a >= lo && (hi < 0 || a <= hi) && a % align === 0 && a + size <= ve,
        `${where}: ${a} is no answer of the search (lowest ${lo}, bound ${hi})`,
      );
    }
    heap.take(a, a + size);
  }

  /** A lazy free of the busy area at `start`; drains above lazy_max_pages(). */
  free(start: number): void {
    const b = this.busy.get(start);
    assert.ok(b !== undefined, 'model: freeing an area that is not busy');
    this.busy.delete(start);
    const n = b.node >= 0 ? b.node : this.addrToNode(start);
    const list = this.lazy[n]!;
    let i = 0;
    while (i < list.length && list[i]!.start < start) i++;
    const iv = { start, end: b.end, node: b.node };
    list.splice(i, 0, iv);
    // Lazy neighbours in one node merge (the margins keep different blocks apart).
    if (i + 1 < list.length && list[i + 1]!.start === iv.end) {
      assert.equal(list[i + 1]!.node, iv.node, 'model: merging lazy ranges of two origins');
      iv.end = list[i + 1]!.end;
      list.splice(i + 1, 1);
    }
    if (i > 0 && list[i - 1]!.end === iv.start) {
      assert.equal(list[i - 1]!.node, iv.node, 'model: merging lazy ranges of two origins');
      list[i - 1]!.end = iv.end;
      list.splice(i, 1);
    }
    this.lazyPages += (b.end - start) / this.c.pageSize;
    if (this.lazyPages > this.c.lazyMaxPages) this.purge();
  }

  /** Every lazy range back: to its node's heap, whole blocks and the rest to the global heap. */
  purge(): void {
    const { pageSize: P, nodeSize: ns } = this.c;
    if (this.lazy.every((l) => l.length === 0)) return;
    this.purges++;
    for (let n = 0; n < this.c.nrNodes; n++) {
      const node = this.nodes[n]!;
      for (const l of this.lazy[n]!) {
        if (l.node < 0) {
          this.global.add(l.start, l.end);
          continue;
        }
        const cur = l.end - l.start === ns - 2 * P ? { ...l } : node.heap.add(l.start, l.end);
        if (cur.end - cur.start !== ns - 2 * P) continue;
        if (node.heap.ivs.includes(cur)) node.heap.remove(cur);
        assert.ok(node.blocks.delete(cur.start - P), 'model: a whole interior is a block');
        this.global.add(cur.start - P, cur.end + P);
        this.returned++;
      }
      this.lazy[n] = [];
    }
    this.lazyPages = 0;
  }
}
