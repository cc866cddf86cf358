/**
 * The fixtures of the misuse battery: a vmalloc subsystem holding one area of each kind, a
 * VmapSpace with live and freed areas, and what attach() needs; each with the state that
 * must not change when a call is refused.
 *
 * Callers: the table modules test/api/misuse-battery-*.ts.
 */

import {
  VmapSpace,
  attachVmalloc,
  createVmalloc,
  type Vmalloc,
  type VmallocOptions,
} from '../../src/index.js';
import type { Design, Fixture } from './misuse-cases.js';
import { PAGE, snapshot } from './vm.js';

/**
 * A subsystem (2 cpus, 256 page frames) with, from the bottom of the window:
 *   A  a vmalloc area of 3 pages filled with a pattern, then its guard page (A + 3 pages);
 *   F  a vmalloc area of 1 page, freed (lazily: not yet purged);
 *   B  a vmap area of 2 frames the caller owns;
 *   C  a get_vm_area area of 2 pages with no pages mapped;
 * plus `held`, 2 frames from allocPages not mapped anywhere, `freedFrame`, a frame given back,
 * `aFrame`, a frame of A, and `bFrame`, a frame mapped by B.
 */
export interface VmFx {
  vm: Vmalloc;
  A: number;
  F: number;
  B: number;
  C: number;
  held: number[];
  freedFrame: number;
  aFrame: number;
  bFrame: number;
}

export const VM_CPUS = 2;

export function makeVm(design: Design | undefined, extra: VmallocOptions = {}): Vmalloc {
  return createVmalloc({
    design: design ?? 'nodes',
    nrCpus: VM_CPUS,
    physicalMemory: 256 * PAGE,
    logger: null,
    // A call that leaves a lock taken fails the state check in 2 s instead of 10.
    lockTimeoutMs: 2000,
    ...extra,
  });
}

export function makeVmFx(design: Design | undefined): VmFx {
  const vm = makeVm(design);
  const A = vm.vmalloc(3 * PAGE)!;
  const pattern = new Uint8Array(3 * PAGE);
  for (let k = 0; k < pattern.length; k++) pattern[k] = (k * 7 + 3) & 0xff;
  vm.write(A, pattern);
  const F = vm.vmalloc(PAGE)!;
  vm.vfree(F);
  const frames = Array.from(vm.allocPages(4));
  const B = vm.vmap(frames.slice(0, 2))!;
  const C = vm.getVmArea(2 * PAGE)!.addr;
  const gone = vm.allocPages(1);
  vm.freePages(gone);
  const fx: VmFx = {
    vm,
    A,
    F,
    B,
    C,
    held: frames.slice(2),
    freedFrame: gone[0]!,
    aFrame: vm.findVmArea(A)!.pages[0]!,
    bFrame: frames[0]!,
  };
  if (new Set([A, F, B, C]).size !== 4 || fx.held.length !== 2) throw new Error('bad fixture');
  return fx;
}

/** snapshot() (check(), stats, vmallocinfo) plus the bytes of A and B. */
export function vmState(fx: VmFx): unknown {
  return {
    snapshot: snapshot(fx.vm),
    a: Buffer.from(fx.vm.read(fx.A, 3 * PAGE)).toString('base64'),
    b: Buffer.from(fx.vm.read(fx.B, 2 * PAGE)).toString('base64'),
  };
}

export const vmFixture: Fixture<VmFx> = { make: makeVmFx, state: vmState };

/** No state: for functions that create something or are pure. */
export const noFixture: Fixture<null> = { make: () => null, state: () => null };

/**
 * A space [S, S + 64 pages) (S = 2^20 unless given): `a1` (1 page) at S, `a2` (2 pages) at
 * S + 1 page, and `freed`, S + 3 pages, allocated and freed again.
 */
export interface SpaceFx {
  space: VmapSpace;
  S: number;
  end: number;
  a1: number;
  a2: number;
  freed: number;
}

export const SPACE_START = 2 ** 20;
export const SPACE_PAGES = 64;
/** A space at the top of the safe integers: [2^53 - 64 pages, 2^53). */
export const TOP_START = 2 ** 53 - SPACE_PAGES * PAGE;

export function makeSpaceFx(concurrent = false, S = SPACE_START, pools = false): SpaceFx {
  const end = S + SPACE_PAGES * PAGE;
  // A short lock timeout: a call that leaves the lock taken fails the state check quickly.
  const timeout = concurrent ? { lockTimeoutMs: 1000 } : {};
  const space = new VmapSpace({
    start: S,
    end,
    concurrent,
    ...timeout,
    ...(pools ? { pools } : {}),
  });
  const a1 = space.alloc(PAGE)!;
  const a2 = space.alloc(2 * PAGE)!;
  const freed = space.alloc(PAGE)!;
  space.free(freed);
  if (a1 !== S || a2 !== S + PAGE || freed !== S + 3 * PAGE) throw new Error('bad fixture');
  return { space, S, end, a1, a2, freed };
}

/** stats(), the free blocks and the busy areas; check() must pass. */
export function spaceState(fx: { space: VmapSpace }): unknown {
  fx.space.check();
  return {
    stats: fx.space.stats(),
    free: [...fx.space.freeBlocks()],
    busy: [...fx.space.busyAreas()],
  };
}

export const spaceFixture: Fixture<SpaceFx> = {
  make: () => makeSpaceFx(false),
  state: spaceState,
};

export const concurrentSpaceFixture: Fixture<SpaceFx> = {
  make: () => makeSpaceFx(true),
  state: spaceState,
};

/** A pooled space: `freed` waits on cache 0's lazy list (no purge has run). */
export const pooledSpaceFixture: Fixture<SpaceFx> = {
  make: () => makeSpaceFx(true, SPACE_START, true),
  state: spaceState,
};

export const topSpaceFixture: Fixture<SpaceFx> = {
  make: () => makeSpaceFx(false, TOP_START),
  state: spaceState,
};

/**
 * For attach: a subsystem with 3 cpus (the creator is cpu 0, a worker attached as cpu 1, cpu 2
 * free), a private one (shared: false), and a concurrent VmapSpace.
 */
export interface AttachFx {
  vm: Vmalloc;
  worker: Vmalloc;
  privateVm: Vmalloc;
  space: VmapSpace;
  plainSpace: VmapSpace;
  pooledSpace: VmapSpace;
}

export const ATTACH_CPUS = 3;

export function makeAttachFx(design: Design | undefined): AttachFx {
  const vm = makeVm(design, { nrCpus: ATTACH_CPUS });
  vm.vmalloc(3 * PAGE);
  const fx: AttachFx = {
    vm,
    worker: attachVmalloc(vm.handle, { cpu: 1, logger: null }),
    privateVm: makeVm(design, { shared: false }),
    space: makeSpaceFx(true).space,
    plainSpace: makeSpaceFx(false).space,
    pooledSpace: makeSpaceFx(true, SPACE_START, true).space,
  };
  return fx;
}

export function attachState(fx: AttachFx): unknown {
  return { vm: snapshot(fx.vm), space: spaceState(fx) };
}

export const attachFixture: Fixture<AttachFx> = { make: makeAttachFx, state: attachState };
