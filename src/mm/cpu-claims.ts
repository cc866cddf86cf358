/**
 * Which thread runs as which cpu: a claim word per cpu id in the shared control block, so that
 * no two threads ever use one cpu id, and so one set of per-CPU caches, at the same time.
 *
 * Holds: CpuClaims (the words' declaration; claim at attach, release at detach, markDead,
 * workerExited), threadToken() (how this thread is written in a claim word) and workerToken()
 * (how a Node Worker's thread is, seen from its parent).
 * Invariant: the word of cpu c is 0 (free) or the token of the one thread attached as c. Only a
 * compare-and-swap from 0 takes a word, so of two threads attaching as c at once exactly one
 * succeeds; a detach releases only its own token, so it never frees a claim made after its
 * own was revoked (markCpuDead) and the id taken by another thread.
 * Callers: src/mm/shared-state.ts declares the words; src/api/vmalloc.ts claims at create and
 * attach, releases at detach, frees at markCpuDead and at a watched worker's exit.
 *
 * Why per-CPU caches need it: the vmap-area and vm_struct record caches, the page lists and the
 * free tree's preload slot of a cpu are used without locks (a kernel CPU runs one thread at a
 * time); two threads with one id lose records and pages to each other's unsynchronized updates.
 *
 * A token is the thread's Node threadId + 1 (the main thread 1), which the parent also sees
 * as worker.threadId + 1: so the 'exit' of a watched worker releases the cpu only when that
 * worker holds it, not when it was a worker refused for a taken id. Where no threadId exists
 * (browsers, Node before 20.16 without process.getBuiltinModule) a thread draws a random
 * negative token: still one per thread, but a watcher cannot tell whose it is.
 */

import { VmallocError } from '../errors.js';
import type { ControlLayout } from '../shared/control-layout.js';
import type { Lock, LockTable } from '../shared/lock.js';

interface Platform {
  process?: { getBuiltinModule?: (id: string) => unknown };
}

let ownToken = 0;

/** This thread's token in claim words (never 0). */
export function threadToken(): number {
  if (ownToken !== 0) return ownToken;
  const g = globalThis as Platform;
  let id: unknown;
  try {
    id = (g.process?.getBuiltinModule?.('worker_threads') as { threadId?: unknown } | undefined)
      ?.threadId;
  } catch {
    id = undefined;
  }
  ownToken =
    typeof id === 'number' && Number.isInteger(id) && id >= 0 && id < 2 ** 31 - 1
      ? id + 1
      : -1 - Math.floor(Math.random() * (2 ** 31 - 2));
  return ownToken;
}

/** The token a worker's thread writes, from its parent's side; 0 when it cannot be known. */
export function workerToken(worker: unknown): number {
  const id = (worker as { threadId?: unknown }).threadId;
  return typeof id === 'number' && Number.isInteger(id) && id >= 0 && id < 2 ** 31 - 1 ? id + 1 : 0;
}

export class CpuClaims {
  private readonly w: Int32Array;
  private readonly at: number;
  private readonly locks: LockTable;
  readonly nrCpus: number;

  /**
   * Declares one word per cpu, on cache lines of their own (written at attach and detach
   * only, they must not share a line with words written on every operation).
   */
  static declare(layout: ControlLayout, nrCpus: number): number {
    return layout.lines(nrCpus);
  }

  constructor(ctl: Int32Array, at: number, nrCpus: number, locks: LockTable) {
    this.w = ctl;
    this.at = at;
    this.nrCpus = nrCpus;
    this.locks = locks;
  }

  /** The token holding `cpu` (0: free). */
  holder(cpu: number): number {
    return Atomics.load(this.w, this.at + cpu);
  }

  /** Does this thread hold `cpu`? */
  heldHere(cpu: number): boolean {
    return this.holder(cpu) === threadToken();
  }

  /**
   * Makes this thread cpu `cpu` (attach, create): claims the id and, if its last holder was
   * marked dead, marks it alive. `locks` are the subsystem's locks, for the dead holder's.
   * @throws VmallocError EBUSY when another thread (or this one) holds the id; EOWNERDEAD when
   * its dead holder still holds one of `locks`. Nothing changes on a throw.
   */
  claim(fn: string, cpu: number, locks: readonly Lock[]): void {
    const token = threadToken();
    const holder = Atomics.compareExchange(this.w, this.at + cpu, 0, token);
    if (holder !== 0) {
      throw new VmallocError(
        'EBUSY',
        `Cannot ${fn}: cpu must be an id no thread holds, got ${cpu}, which is already attached (${holder === token ? 'in this thread' : 'by another worker'}); ` +
          `each worker needs its own cpu id from 0 to nrCpus - 1 (${this.nrCpus - 1}), because a cpu's caches are used without locks: ` +
          `detach the other one first (vm.detach()), or if its worker died, call markCpuDead(${cpu}) (watchWorker does it when the worker exits)`,
      );
    }
    if (!this.locks.isCpuDead(cpu)) return;
    const held = locks.find((l) => l.owner() === cpu);
    if (held !== undefined) {
      Atomics.store(this.w, this.at + cpu, 0);
      throw new VmallocError(
        'EOWNERDEAD',
        `Cannot ${fn}: the last worker of cpu ${cpu} died holding ${held.name}, so the state it protects may be inconsistent and the id cannot be used again`,
      );
    }
    this.locks.markCpuAlive(cpu);
  }

  /**
   * Gives `cpu` back if this thread holds it: true, and the caller has drained the cpu's
   * caches before; false when the claim was revoked meanwhile (markCpuDead), and the caches
   * may be another thread's now.
   */
  release(cpu: number): boolean {
    const token = threadToken();
    return Atomics.compareExchange(this.w, this.at + cpu, token, 0) === token;
  }

  /**
   * Declares `cpu`'s worker dead: waiters for its locks give up (EOWNERDEAD) and its id is free.
   * @throws VmallocError EINVAL when this very thread holds the id (it is alive).
   */
  markDead(fn: string, cpu: number): void {
    if (this.heldHere(cpu)) {
      throw new VmallocError(
        'EINVAL',
        `Cannot ${fn}: cpu must not be attached in this thread (it is alive), got ${cpu}; detach it (vm.detach()) to give the id up`,
      );
    }
    // Dead before free: whoever claims the id next sees it dead and marks it alive.
    this.locks.markCpuDead(cpu);
    Atomics.store(this.w, this.at + cpu, 0);
  }

  /**
   * A watched worker that ran as `cpu` exited (`worker` its token, 0 if unknown): its id is
   * freed and marked dead, unless another thread that is known (or this watching thread)
   * holds it: then the exited worker was refused the id, or gave it back and the id was
   * reused, and the holder is alive. Never throws (it runs in an 'exit' handler).
   */
  workerExited(cpu: number, worker: number): void {
    const holder = this.holder(cpu);
    if (holder === threadToken()) return;
    if (worker !== 0 && holder > 0 && holder !== worker) return;
    this.locks.markCpuDead(cpu);
    if (holder !== 0) Atomics.compareExchange(this.w, this.at + cpu, holder, 0);
  }
}
