/**
 * A VmapSpace shared by workers: how a worker attaches to another instance's handle, and this
 * instance's view of the space's locks (the space's lock and its pools' locks, in the lock
 * table of the handle): taken around an operation, told which cpus are dead, released by a
 * recovery.
 *
 * Holds: attachOptions() / attachedTo() (VmapSpace.attach() hands the checked handle and cpu
 * to the constructor through a key no caller can write), and SpaceLock.
 * Invariant: every enter() is matched by one leave() (a throw included); a space that is not
 * concurrent has no lock table and no lock, and enter()/leave() then only hold the
 * fault-injection steps back (pauseSteps). enter() makes the record store's views current
 * once the lock is held (another worker may have grown the store).
 * Callers: VmapSpace (src/kva/vmap-space.ts), which also hands SpaceLock.make to its pools
 * (space-pools.ts) for their locks.
 *
 * Kernel: free_vmap_area_lock (a spinlock taken around __alloc_vmap_area() and
 * merge_or_add_vmap_area()). Differs from kernel: the lock lives in shared memory and is
 * robust: a waiter whose holder died gets EOWNERDEAD (or ETIMEDOUT) instead of spinning.
 */

import type { AnyBuffer } from '../shared/buffers.js';
import { Lock, LockTable } from '../shared/lock.js';
import { pauseSteps, resumeSteps, stepHook } from '../shared/step-hook.js';
import type { VaStore } from './vmap-area.js';
import { checkSpaceHandle } from './vmap-space-handle.js';
import { checkAttachOptions } from './vmap-space-args.js';
import type { VmapSpaceHandle, VmapSpaceOptions } from './vmap-space-options.js';

/** The option key by which attach() hands a checked handle to the constructor. */
const ATTACH = Symbol('attach');

/**
 * VmapSpace.attach()'s argument to the constructor: `handle` checked to be a concurrent
 * space's (checkSpaceHandle) and the cpu of `options`, under a key that only attachedTo()
 * reads.
 */
export function attachOptions(handle: unknown, options: unknown): VmapSpaceOptions {
  const h = checkSpaceHandle(handle);
  const cpu = checkAttachOptions(options);
  return { [ATTACH]: [h, cpu] } as unknown as VmapSpaceOptions;
}

/** The handle and cpu that attachOptions() put in `options`; undefined for a new space's. */
export function attachedTo(options: VmapSpaceOptions): [VmapSpaceHandle, number] | undefined {
  return (options as { [ATTACH]?: [VmapSpaceHandle, number] } | null)?.[ATTACH];
}

export class SpaceLock {
  /** The space's lock when it is concurrent (the kernel's free_vmap_area_lock), else null. */
  readonly lock: Lock | null;
  /** Who this instance takes the locks as (a worker's id, for the lock's owner word). */
  readonly cpu: number;
  /** The lock table (concurrent spaces) and every lock made in it: the space's and its pools'. */
  private readonly table: LockTable | null;
  private readonly all: Lock[] = [];
  private readonly s: VaStore;

  /** `locks`: the handle's lock table (null: not concurrent); `s`: the space's record store. */
  constructor(locks: AnyBuffer | null, cpu: number, s: VaStore) {
    this.s = s;
    this.cpu = cpu;
    this.table = locks === null ? null : new LockTable(locks);
    this.lock = this.table === null ? null : this.make(0, 'vmap_space_lock');
  }

  /** Takes the lock (concurrent spaces) and brings this thread's views up to date. */
  enter(): void {
    if (stepHook !== null) pauseSteps();
    if (this.lock !== null) {
      this.lock.lock(this.cpu);
      this.s.refreshViews();
    }
  }

  leave(): void {
    if (this.lock !== null) this.lock.unlock();
    resumeSteps();
  }

  /** Runs `fn` holding the lock (concurrent spaces); for the cold, object-returning calls. */
  locked<T>(fn: () => T): T {
    this.enter();
    try {
      return fn();
    } finally {
      this.leave();
    }
  }

  /** Lock `i` of the table, named `name` (lock_stat's class), counted in locks(). */
  make(i: number, name: string): Lock {
    const l = new Lock(this.table!, i, name);
    this.all.push(l);
    return l;
  }

  /**
   * Makes these locks see which cpus are dead in `owner` (LockTable.shareLivenessOf): for a
   * space used inside a subsystem whose cpus are its lockers, so that a cpu marked dead there
   * makes this space's waiters give up too (EOWNERDEAD) instead of waiting out the timeout.
   * No-op when the space is not concurrent.
   */
  shareLivenessOf(owner: LockTable): void {
    this.table?.shareLivenessOf(owner);
  }

  /**
   * Recovery: frees the space's lock whoever holds it (every other thread is outside this
   * space; a dead worker may hold it).
   */
  forceRelease(): void {
    this.lock?.forceRelease();
  }

  /** The locks of this space and of its pools (empty when not concurrent). */
  locks(): readonly Lock[] {
    return this.all;
  }
}
