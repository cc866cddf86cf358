/**
 * The shared control block and lock table, assembled from the declarations of their parts.
 *
 * Holds: ControlLayout, a builder each part (the designs, the free space, the page allocator,
 * the record arenas, the string table) declares its control words and its locks to, in a
 * fixed order; the result sizes the two shared buffers of a subsystem.
 * Invariant: the same configuration declares the same parts in the same order, so every
 * thread that builds the layout from a handle's configuration gets the same word offsets and
 * lock indices as the thread that created the buffers. A word or lock is declared by exactly
 * one part: the offset a part gets back is the only way to reach it.
 * Callers: src/mm/shared-state.ts builds it; every part that keeps shared words has a
 * `declare(layout, ...)` that returns its offsets.
 *
 *   control block (Int32 words)
 *   +--------------+--------------+-----+--------------+---------------------------+
 *   | part A words | part A line  | ... | part B line  |        part B words       |
 *   +--------------+--------------+-----+--------------+---------------------------+
 *                   ^ line(): a word written often by several CPUs gets a cache line of its
 *                     own (16 words), so no CPU misses on its own words because another CPU
 *                     wrote a neighbour (false sharing).
 *
 *   lock table: slot 0 header, then one 128-byte slot per declared lock, in declaration order;
 *   lock classes for locks that live inside records (their statistics, per cpu).
 */

/** Int32 words of a 64-byte cache line. */
export const LINE_WORDS = 16;

export interface DeclaredLock {
  readonly index: number;
  /** The lock class name lock_stat shows it under. */
  readonly name: string;
}

export class ControlLayout {
  private nWords = 0;
  private readonly lockNames: string[] = [];
  private readonly classNames: string[] = [];

  /** Reserves `n` words, packed after the previous ones; returns the first word's offset. */
  words(n: number): number {
    const at = this.nWords;
    this.nWords += n;
    return at;
  }

  /**
   * Reserves `n` words starting on a cache line of their own and padded to whole lines;
   * returns the first word's offset.
   */
  lines(n: number): number {
    const at = Math.ceil(this.nWords / LINE_WORDS) * LINE_WORDS;
    this.nWords = at + Math.ceil(n / LINE_WORDS) * LINE_WORDS;
    return at;
  }

  /** Declares one lock of class `name`; returns its slot index in the lock table. */
  lock(name: string): number {
    this.lockNames.push(name);
    return this.lockNames.length - 1;
  }

  /** Declares `count` locks of class `name` (one per node, say); returns the first index. */
  lockArray(name: string, count: number): number {
    const first = this.lockNames.length;
    for (let k = 0; k < count; k++) this.lockNames.push(name);
    return first;
  }

  /** Declares a class of locks kept inside records; returns its class index. */
  lockClass(name: string): number {
    this.classNames.push(name);
    return this.classNames.length - 1;
  }

  /** Words of the control block. */
  get ctlWords(): number {
    return Math.max(1, Math.ceil(this.nWords / LINE_WORDS) * LINE_WORDS);
  }

  /** Slots of the lock table (the header not counted). */
  get lockCount(): number {
    return this.lockNames.length;
  }

  get classCount(): number {
    return this.classNames.length;
  }

  /** Every declared lock, in slot order. */
  locks(): DeclaredLock[] {
    return this.lockNames.map((name, index) => ({ index, name }));
  }

  /** Lock class names, in class order. */
  classes(): readonly string[] {
    return this.classNames;
  }
}
