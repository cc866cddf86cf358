/**
 * Locks in shared memory: the kernel's spinlocks and mutexes for worker threads.
 *
 * Holds: a table of lock slots in one SharedArrayBuffer and the Lock handle that acquires and
 * releases one slot. A slot is 128 bytes (two cache lines, so two locks never share one):
 *
 *   Int32 word  0  state: 0 unlocked, 1 locked, 2 locked with waiters (may be sleeping)
 *               1  owner: cpu id + 1 of the holder, 0 when unlocked
 *   Float64 word 1.. statistics (lock_stat), written only by the holder
 *
 * Invariant: state is 0 exactly when owner is 0 (outside the few instructions that set them).
 * Callers: every module that takes a kernel lock (free_vmap_area_lock, vmap_area_lock, ...).
 *
 * Acquire: compare-and-swap 0 -> 1; else spin a bounded number of times retrying; then mark
 * the word 2 (waiters) and Atomics.wait on it until a release wakes us. Release: if the word
 * was 2, store 0 and Atomics.notify one waiter (Drepper's "futexes are tricky", mutex 2).
 */

export const LOCK_SLOT_BYTES = 128;
const I32_PER_SLOT = LOCK_SLOT_BYTES / 4;
const STATE = 0;
const OWNER = 1;

/** Spins before sleeping: long enough to ride out a short critical section on another core. */
const SPIN_LIMIT = 200;

export class LockTable {
  readonly buffer: SharedArrayBuffer | ArrayBuffer;
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  readonly count: number;

  constructor(buffer: SharedArrayBuffer | ArrayBuffer) {
    this.buffer = buffer;
    this.i32 = new Int32Array(buffer);
    this.f64 = new Float64Array(buffer);
    this.count = buffer.byteLength / LOCK_SLOT_BYTES;
  }

  static create(count: number, shared: boolean): LockTable {
    const bytes = count * LOCK_SLOT_BYTES;
    return new LockTable(shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
  }
}

/** One lock of a LockTable, as seen by one thread (cpu). */
export class Lock {
  readonly name: string;
  private readonly i32: Int32Array;
  private readonly base: number;
  private readonly canWait: boolean;

  constructor(table: LockTable, index: number, name: string) {
    if (index < 0 || index >= table.count)
      throw new RangeError(`lock index ${index} outside the table`);
    this.name = name;
    this.i32 = table.i32;
    this.base = index * I32_PER_SLOT;
    this.canWait = table.buffer instanceof SharedArrayBuffer;
  }

  /** Takes the lock for `cpu`. Kernel: spin_lock() / mutex_lock(). */
  lock(cpu: number): void {
    const w = this.i32;
    const at = this.base + STATE;
    let c = Atomics.compareExchange(w, at, 0, 1);
    if (c !== 0) {
      for (let spin = 0; spin < SPIN_LIMIT && c !== 0; spin++) {
        c = Atomics.compareExchange(w, at, 0, 1);
      }
      if (c !== 0) {
        if (c !== 2) c = Atomics.exchange(w, at, 2);
        while (c !== 0) {
          if (this.canWait) Atomics.wait(w, at, 2);
          c = Atomics.exchange(w, at, 2);
        }
      }
    }
    w[this.base + OWNER] = cpu + 1;
  }

  /** Takes the lock if it is free. Kernel: spin_trylock() / mutex_trylock(). */
  tryLock(cpu: number): boolean {
    if (Atomics.compareExchange(this.i32, this.base + STATE, 0, 1) !== 0) return false;
    this.i32[this.base + OWNER] = cpu + 1;
    return true;
  }

  /** Releases the lock. Kernel: spin_unlock() / mutex_unlock(). */
  unlock(): void {
    const w = this.i32;
    const at = this.base + STATE;
    w[this.base + OWNER] = 0;
    if (Atomics.sub(w, at, 1) !== 1) {
      Atomics.store(w, at, 0);
      Atomics.notify(w, at, 1);
    }
  }

  /** Is the lock held (by anyone)? For assertions and the checker. */
  isLocked(): boolean {
    return Atomics.load(this.i32, this.base + STATE) !== 0;
  }

  /** cpu id of the holder, or -1. */
  owner(): number {
    return Atomics.load(this.i32, this.base + OWNER) - 1;
  }
}
