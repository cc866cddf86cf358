/**
 * The 'legacy' design's RCU-deferred record frees: 4.19's __free_vmap_area() ends with
 * kfree_rcu(va, rcu_head), so every area a purge (or an error path) erases is handed to
 * call_rcu() and goes back to the slab only after a grace period, from the RCU core's
 * callback invocation on the CPU that queued it.
 *
 * Holds: LegacyRcuCallbacks, one callback list per cpu in the shared control block (a FIFO of
 * records linked through their Int32 word 13, which a record uses for the purge list before
 * and for this list after its erase, never both), split into segments as the kernel's
 * rcu_segcblist: WAIT (the oldest records, waiting for grace period WAIT_GP), NEXT (records
 * waiting for a later one, NEXT_GP), then records not yet given a grace period (queued by a
 * purge still running). enqueue() is call_rcu(); accelerate() gives the unnumbered records a
 * grace period that starts after now (rcu_accelerate_cbs()); invoke() is rcu_do_batch().
 * Invariant: a record on a callback list is in no tree and on no other list, is neither busy,
 * lazy nor free (the record store counts it live; check() reports it as the design's own);
 * every record is on one list once; a cpu's count is its list's length; WAIT_GP <= NEXT_GP; a
 * record is freed only once its segment's grace period has completed.
 * Callers: LegacyDesign (src/designs/legacy.ts): its purge and free_vmap_area() queue; the
 * vmalloc layer's quiescent state (rcuQuiescent(), src/mm/kvfree-rcu.ts, at every state-changing
 * call's exit) invokes, through the design, a cpu's own list only (callbacks run on their cpu).
 *
 * Kernel (4.19): kfree_rcu() -> kfree_call_rcu() -> __call_rcu() (enqueue on this CPU's
 * rcu_data list, interrupts off, no lock), rcu_accelerate_cbs(), rcu_do_batch() (invokes the
 * done callbacks: at most blimit = 10 per call while the list is at most qhimark = 10000 long,
 * all of them above that; kfree() of each).
 * Differs from kernel: callbacks run at the cpu's quiescent states (a call's exit) once their
 * grace period is over (the kernel's RCU softirq, raised from the tick, runs at points we do
 * not model);
 * a cpu that detaches keeps its list until a worker claims the cpu again (the kernel migrates
 * an offlined CPU's callbacks, rcutree_migrate_callbacks()); the kernel has four segments, two
 * numbered ones suffice here (a third batch merges into NEXT, waiting for the later grace
 * period: longer, never shorter). Without grace periods (a core the vmalloc layer has not
 * completed) records are freed at once.
 * Recovery: the lists are design words (zeroed by the rebuild) and their records are not kept
 * areas, so a recovery returns them to the store, as it does lazy areas.
 */

import { invariant } from '../debug.js';
import { hex } from '../errors.js';
import type { VaStore } from '../kva/vmap-area.js';
import { type ControlLayout, LINE_WORDS } from '../shared/control-layout.js';
import type { GracePeriods } from './design.js';

/** Int32 word of a record linking it to the next one on its list (purge list, then here). */
export const I_LINK = 13;
/** rcu_do_batch()'s batch limit (4.19's blimit) while a list is at most RCU_QHIMARK long. */
export const RCU_BLIMIT = 10;
/** Above this many queued callbacks, a batch invokes every done one (4.19's qhimark). */
export const RCU_QHIMARK = 10000;

// A cpu's line.
const HEAD = 0; // oldest record (0: empty list)
const TAIL = 1; // newest record
const COUNT = 2;
const WAIT_END = 3; // last record of WAIT (0: no record has a grace period)
const WAIT_GP = 4;
const NEXT_END = 5; // last record of NEXT (0: none)
const NEXT_GP = 6;

export class LegacyRcuCallbacks {
  private readonly s: VaStore;
  private readonly ctl: Int32Array;
  private readonly base: number;
  private readonly nrCpus: number;
  private readonly gp: () => GracePeriods | null;

  /** The control words: one line per cpu. */
  static declare(layout: ControlLayout, nrCpus: number): number {
    return layout.lines(nrCpus * LINE_WORDS);
  }

  constructor(
    s: VaStore,
    ctl: Int32Array,
    base: number,
    nrCpus: number,
    gp: () => GracePeriods | null,
  ) {
    this.s = s;
    this.ctl = ctl;
    this.base = base;
    this.nrCpus = nrCpus;
    this.gp = gp;
  }

  /** Empties every list (a new state; the records are the store's again). */
  init(): void {
    this.ctl.fill(0, this.base, this.base + this.nrCpus * LINE_WORDS);
  }

  /**
   * Queues erased record `va` on `cpu`'s list (its owner thread only). Kernel: call_rcu().
   * False when there are no grace periods: the caller frees the record at once.
   */
  enqueue(cpu: number, va: number): boolean {
    if (this.gp() === null) return false;
    const ctl = this.ctl;
    const at = this.base + cpu * LINE_WORDS;
    const i = this.s.i;
    i[(va << 4) + I_LINK] = 0;
    const tail = ctl[at + TAIL]!;
    if (tail === 0) ctl[at + HEAD] = va;
    else i[(tail << 4) + I_LINK] = va;
    ctl[at + TAIL] = va;
    ctl[at + COUNT] = ctl[at + COUNT]! + 1;
    return true;
  }

  /**
   * Gives the records queued since the last call a grace period that starts after now (the
   * erases that queued them are done, so no reader that starts later can find them).
   * Kernel: rcu_accelerate_cbs().
   */
  accelerate(cpu: number): void {
    const gp = this.gp();
    if (gp === null) return;
    const ctl = this.ctl;
    const at = this.base + cpu * LINE_WORDS;
    const tail = ctl[at + TAIL]!;
    const waitEnd = ctl[at + WAIT_END]!;
    const numbered = ctl[at + NEXT_END] !== 0 ? ctl[at + NEXT_END]! : waitEnd;
    if (tail === 0 || tail === numbered) return;
    const cookie = gp.requestGp();
    if (waitEnd === 0) {
      ctl[at + WAIT_END] = tail;
      ctl[at + WAIT_GP] = cookie;
    } else {
      ctl[at + NEXT_END] = tail;
      ctl[at + NEXT_GP] = cookie;
    }
  }

  /** Has `cpu` records whose grace period has completed? One plain load when it has none. */
  due(cpu: number): boolean {
    const ctl = this.ctl;
    const at = this.base + cpu * LINE_WORDS;
    return ctl[at + WAIT_END] !== 0 && ctl[at + WAIT_GP]! <= this.gp()!.completed;
  }

  /**
   * Frees `cpu`'s records whose grace period has completed: RCU_BLIMIT of them, or all when
   * more than RCU_QHIMARK wait. Returns how many. Kernel: rcu_do_batch().
   */
  invoke(cpu: number): number {
    const ctl = this.ctl;
    const at = this.base + cpu * LINE_WORDS;
    if (ctl[at + WAIT_END] === 0) return 0;
    const done = this.gp()!.completed;
    if (ctl[at + WAIT_GP]! > done) return 0;
    const s = this.s;
    s.refreshViews();
    const count = ctl[at + COUNT]!;
    const limit = count > RCU_QHIMARK ? count : RCU_BLIMIT;
    let x = ctl[at + HEAD]!;
    let n = 0;
    while (n < limit) {
      const next = s.i[(x << 4) + I_LINK]!;
      const last = x === ctl[at + WAIT_END];
      s.free(x);
      n++;
      x = next;
      if (last) {
        // WAIT is done: NEXT (if any) waits now.
        const nextEnd = ctl[at + NEXT_END]!;
        ctl[at + WAIT_END] = nextEnd;
        ctl[at + WAIT_GP] = nextEnd === 0 ? 0 : ctl[at + NEXT_GP]!;
        ctl[at + NEXT_END] = 0;
        ctl[at + NEXT_GP] = 0;
        if (nextEnd === 0 || ctl[at + WAIT_GP]! > done) break;
      }
    }
    ctl[at + HEAD] = x;
    if (x === 0) ctl[at + TAIL] = 0;
    ctl[at + COUNT] = count - n;
    return n;
  }

  /** Records queued on every cpu, not yet freed. */
  get pending(): number {
    let n = 0;
    for (let c = 0; c < this.nrCpus; c++) n += this.ctl[this.base + c * LINE_WORDS + COUNT]!;
    return n;
  }

  /** Records queued on `cpu`'s list whose grace period has not been asked for yet. */
  unnumbered(cpu: number): number {
    return this.walk(cpu).unnumbered;
  }

  /**
   * Checks every list (each record once over all lists, in none of `areas`, the tails, counts,
   * segment ends and grace periods consistent, every record numbered: no purge is running)
   * and returns their records.
   */
  check(areas: ReadonlySet<number>): number[] {
    const out: number[] = [];
    const seen = new Set<number>();
    for (let c = 0; c < this.nrCpus; c++) {
      const w = this.walk(c, seen, areas);
      invariant(
        w.unnumbered === 0,
        () =>
          `rcu callbacks of cpu ${c}: ${w.unnumbered} records have no grace period outside a purge`,
      );
      out.push(...w.ids);
    }
    return out;
  }

  private walk(
    cpu: number,
    seen = new Set<number>(),
    areas: ReadonlySet<number> = new Set(),
  ): { ids: number[]; unnumbered: number } {
    const ctl = this.ctl;
    const s = this.s;
    const at = this.base + cpu * LINE_WORDS;
    const where = `rcu callbacks of cpu ${cpu}`;
    const waitEnd = ctl[at + WAIT_END]!;
    const nextEnd = ctl[at + NEXT_END]!;
    const ids: number[] = [];
    let segment = waitEnd === 0 ? 2 : 0; // 0 WAIT, 1 NEXT, 2 not numbered
    let unnumbered = 0;
    let last = 0;
    for (let x = ctl[at + HEAD]!; x !== 0; x = s.i[(x << 4) + I_LINK]!) {
      invariant(
        x > 0 && x < s.highWater && !seen.has(x),
        () => `${where}: record #${x} is out of range or queued twice (a cycle)`,
      );
      invariant(
        !areas.has(x),
        () =>
          `${where}: record #${x} [${hex(s.start(x))}, ${hex(s.end(x))}) is queued for freeing but still in the busy tree`,
      );
      seen.add(x);
      ids.push(x);
      if (segment === 2) unnumbered++;
      if (segment === 0 && x === waitEnd) segment = nextEnd === 0 ? 2 : 1;
      else if (segment === 1 && x === nextEnd) segment = 2;
      last = x;
    }
    invariant(
      segment === 2,
      () => `${where}: the segment end #${segment === 0 ? waitEnd : nextEnd} is not on the list`,
    );
    invariant(ctl[at + TAIL] === last, () => `${where}: tail #${ctl[at + TAIL]}, last #${last}`);
    invariant(
      ctl[at + COUNT] === ids.length,
      () => `${where}: count ${ctl[at + COUNT]}, ${ids.length} records queued`,
    );
    invariant(
      (waitEnd === 0 && ctl[at + WAIT_GP] === 0 && nextEnd === 0) ||
        (waitEnd !== 0 && ctl[at + WAIT_GP]! > 0),
      () => `${where}: WAIT ends at #${waitEnd} with grace period ${ctl[at + WAIT_GP]}`,
    );
    invariant(
      nextEnd === 0 || ctl[at + NEXT_GP]! >= ctl[at + WAIT_GP]!,
      () => `${where}: NEXT waits for grace period ${ctl[at + NEXT_GP]}, before WAIT's`,
    );
    return { ids, unnumbered };
  }
}
