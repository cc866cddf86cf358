/**
 * The shared memory of a VmapSpace: its handle (the record store, the control block, the
 * statistics block, the lock table), made and initialized here, checked here when a worker
 * attaches to it, and viewed (spaceParts) by each instance.
 *
 * Invariant: a handle made here holds an initialized space (two empty tree heads, one free
 * block spanning [start, end)) before its magic word is written, and the words written at
 * creation (heads, magic, bounds) never change afterwards.
 * Callers: VmapSpace's constructor (src/kva/vmap-space.ts), attachOptions()
 * (vmap-space-lock.ts, for VmapSpace.attach()).
 *
 * A handle is trusted only as far as its structure can be checked: every buffer must be a
 * SharedArrayBuffer of the size a space creates, the control block must carry the magic word
 * written at creation, and the bounds the handle names must equal those the space recorded.
 */

import { VmallocError, hex } from '../errors.js';
import { isSharedBuffer, makeFixedBuffer } from '../shared/buffers.js';
import { LockTable } from '../shared/lock.js';
import { ARENA_META_BYTES } from '../shared/record-arena.js';
import { mergeOrAddVmapArea } from './free-tree.js';
import { rbListInit } from './rb-list.js';
import {
  CACHE_BASE,
  POOLS_MAGIC,
  P_CACHES,
  P_HOME_SHIFT,
  P_CLASSES,
  P_MAGIC,
  P_REFILL,
  P_SHARDS,
  SHARDS,
  createPools,
  poolLockCount,
  poolsWords,
} from './space-pools-layout.js';
import { RECORD_BYTES, VaStore } from './vmap-area.js';
import { ATTACH_CALL, checkBound, einval, refuse } from './vmap-space-args.js';
import {
  MAX_RECORDS,
  MIN_RECORDS,
  type SpaceConfig,
  type VmapSpaceHandle,
} from './vmap-space-options.js';
import type { SpaceParts } from './vmap-space-views.js';

/**
 * The control block, Int32 words (vmap-space.ts keeps its own copies of the hot ones):
 *
 *   0 free-tree head id   1 busy-tree head id   2 spare record (0: none)   3 magic
 *   4 flags (written once: F_EXACT, F_POOLS)
 */
export const C_FREE_HEAD = 0;
export const C_BUSY_HEAD = 1;
export const C_PRELOAD = 2;
export const C_MAGIC = 3;
export const C_FLAGS = 4;
export const CTL_WORDS = 8;
/** Flags: fit 'exact'; made with pools (then the handle has a pools buffer). */
export const F_EXACT = 1;
export const F_POOLS = 2;
/** "VmSp": written last at creation, checked at attach. */
export const VMAP_SPACE_MAGIC = 0x566d5370;

/**
 * The statistics block, Float64 words: 0 bytes in live areas (changes), then the space's
 * start, end and page size (written once, compared with the handle's at attach).
 */
export const S_BUSY_BYTES = 0;
export const S_START = 1;
export const S_END = 2;
export const S_PAGE_SIZE = 3;
export const STAT_WORDS = 4;

/** A new space's handle: its buffers, initialized (ENOMEM when the store cannot be reserved). */
export function createSpaceHandle(cfg: SpaceConfig): VmapSpaceHandle {
  const { start, end, pageSize, shared } = cfg;
  const s = createStore(shared, cfg.maxRecords);
  const ctlBuf = makeFixedBuffer(CTL_WORDS * 4, shared);
  const statBuf = makeFixedBuffer(STAT_WORDS * 8, shared);
  const nLocks = cfg.pools === null ? 1 : poolLockCount(cfg.pools.caches);
  const locks = cfg.concurrent ? LockTable.create(nLocks, true) : null;
  if (locks !== null && cfg.lockTimeoutMs !== undefined) locks.setTimeout(cfg.lockTimeoutMs);
  const ctl = new Int32Array(ctlBuf);
  const stat = new Float64Array(statBuf);
  const freeHead = s.alloc();
  const busyHead = s.alloc();
  ctl[C_FREE_HEAD] = freeHead;
  ctl[C_BUSY_HEAD] = busyHead;
  rbListInit(s, freeHead);
  rbListInit(s, busyHead);
  const pools = cfg.pools === null ? null : createPools(s, cfg.pools, (end - start) / pageSize);
  ctl[C_FLAGS] = (cfg.exact ? F_EXACT : 0) | (pools === null ? 0 : F_POOLS);
  const va = s.alloc();
  s.setRange(va, start, end);
  mergeOrAddVmapArea(s, freeHead, va, true);
  stat[S_START] = start;
  stat[S_END] = end;
  stat[S_PAGE_SIZE] = pageSize;
  // Last: attach() trusts a control block only with this word.
  Atomics.store(ctl, C_MAGIC, VMAP_SPACE_MAGIC);
  return {
    kind: 'VmapSpace',
    start,
    end,
    pageSize,
    store: s.buffers,
    ctl: ctlBuf,
    stat: statBuf,
    locks: locks === null ? null : locks.buffer,
    pools,
  };
}

/** This instance's views of the handle's buffers, as VmapSpace and its cold views read them. */
export function spaceParts(handle: VmapSpaceHandle): SpaceParts {
  const ctl = new Int32Array(handle.ctl);
  return {
    s: new VaStore(handle.store),
    start: handle.start,
    end: handle.end,
    freeHead: ctl[C_FREE_HEAD]!,
    busyHead: ctl[C_BUSY_HEAD]!,
    ctl,
    stat: new Float64Array(handle.stat),
  };
}

/** The record store, or ENOMEM when the platform cannot reserve its buffers. */
function createStore(shared: boolean, maxRecords: number): VaStore {
  try {
    return VaStore.create({ shared, maxRecords });
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    throw new VmallocError(
      'ENOMEM',
      `Cannot create VmapSpace: the platform could not reserve a record store for maxRecords ${maxRecords} (${e.message}); ask for fewer`,
    );
  }
}

/** Bytes of the lock table of a concurrent space by number of locks, worked out once each. */
const lockTableBytes = new Map<number, number>();

function lockBytes(count: number): number {
  let n = lockTableBytes.get(count);
  if (n === undefined) {
    n = LockTable.create(count, true).buffer.byteLength;
    lockTableBytes.set(count, n);
  }
  return n;
}

/** The number of locks the handle's space has: 1, or that of its pools (checked here). */
function checkPoolsBuffer(value: unknown): number {
  if (value === null) return 1;
  const what = 'handle.pools must be the pools buffer of a VmapSpace made with pools';
  if (!isSharedBuffer(value) || value.byteLength < CACHE_BASE * 4) einval(ATTACH_CALL, what, value);
  const w = new Int32Array(value);
  const caches = w[P_CACHES]!;
  const classes = w[P_CLASSES]!;
  if (
    Atomics.load(w, P_MAGIC) !== POOLS_MAGIC ||
    w[P_SHARDS] !== SHARDS ||
    !(w[P_HOME_SHIFT]! >= -1 && w[P_HOME_SHIFT]! <= 53) ||
    !(caches >= 1 && caches <= 64 && (caches & (caches - 1)) === 0) ||
    !(classes >= 1 && classes <= 256) ||
    !(w[P_REFILL]! >= 1 && w[P_REFILL]! <= 64) ||
    value.byteLength !== poolsWords(caches, classes) * 4
  )
    refuse(ATTACH_CALL, `${what}, got a SharedArrayBuffer that is not one`);
  return poolLockCount(caches);
}

function sharedOf(name: string, value: unknown, bytes: number | null): void {
  const size = bytes === null ? '' : ` of ${bytes} bytes`;
  if (!isSharedBuffer(value))
    einval(ATTACH_CALL, `handle.${name} must be a SharedArrayBuffer${size}`, value);
  if (bytes !== null && value.byteLength !== bytes) {
    einval(
      ATTACH_CALL,
      `handle.${name} must be a SharedArrayBuffer${size}, as a VmapSpace creates it; its byteLength`,
      value.byteLength,
    );
  }
}

/**
 * Checks that `value` is the handle of a live concurrent VmapSpace (another instance's
 * `handle`, possibly structured-cloned), structurally: see the header.
 */
export function checkSpaceHandle(value: unknown): VmapSpaceHandle {
  const what = 'handle must be the handle of a VmapSpace (space.handle)';
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    einval(ATTACH_CALL, what, value);
  const h = value as Record<string, unknown>;
  if (h.kind !== 'VmapSpace') {
    if (h.kind === 'Vmalloc')
      refuse(ATTACH_CALL, `${what}, got the handle of a Vmalloc (attach that with attachVmalloc)`);
    einval(ATTACH_CALL, `${what}, whose kind is 'VmapSpace'`, h.kind);
  }
  if (h.locks === null) {
    refuse(
      ATTACH_CALL,
      'handle must be the handle of a space created with concurrent: true, got one created without it (so it cannot be shared between workers)',
    );
  }
  sharedOf('ctl', h.ctl, CTL_WORDS * 4);
  sharedOf('stat', h.stat, STAT_WORDS * 8);
  // A handle without the field (made by an older version) is one of a space without pools.
  const pools = h.pools === undefined ? null : h.pools;
  sharedOf('locks', h.locks, lockBytes(checkPoolsBuffer(pools)));
  const st = h.store as Record<string, unknown> | null;
  if (st === null || typeof st !== 'object')
    einval(ATTACH_CALL, 'handle.store must be the record store of a VmapSpace', st);
  if (st.recordBytes !== RECORD_BYTES)
    einval(ATTACH_CALL, `handle.store.recordBytes must be ${RECORD_BYTES}`, st.recordBytes);
  const max = checkBound(
    ATTACH_CALL,
    'handle.store.maxRecords',
    st.maxRecords,
    MIN_RECORDS,
    MAX_RECORDS,
    `be from ${MIN_RECORDS} to 2^26`,
  );
  if (st.pcpu !== null) einval(ATTACH_CALL, 'handle.store.pcpu must be null', st.pcpu);
  sharedOf('store.meta', st.meta, ARENA_META_BYTES);
  for (const [name, bytes] of [
    ['records', RECORD_BYTES],
    ['freeIds', 4],
  ] as const) {
    const buf = st[name];
    sharedOf(`store.${name}`, buf, null);
    const b = buf as SharedArrayBuffer & { growable?: boolean; maxByteLength?: number };
    if (b.growable !== true || b.maxByteLength !== max * bytes) {
      einval(
        ATTACH_CALL,
        `handle.store.${name} must be a growable SharedArrayBuffer of at most maxRecords * ${bytes} bytes; its maxByteLength`,
        b.maxByteLength,
      );
    }
  }
  const ctl = new Int32Array(h.ctl as SharedArrayBuffer);
  const magic = Atomics.load(ctl, C_MAGIC);
  if (magic !== VMAP_SPACE_MAGIC) {
    refuse(
      ATTACH_CALL,
      `handle.ctl must be the control block of a VmapSpace (magic word ${hex(VMAP_SPACE_MAGIC)}), got a buffer whose magic word is ${hex(magic >>> 0)}`,
    );
  }
  if (((ctl[C_FLAGS]! & F_POOLS) !== 0) !== (pools !== null)) {
    refuse(
      ATTACH_CALL,
      `handle.pools must be ${pools === null ? 'the pools buffer of the space (it was made with pools), got null' : 'null (the space was made without pools), got a buffer'}`,
    );
  }
  // Written once at creation, before the magic word, and never again: plain reads are safe.
  const stat = new Float64Array(h.stat as SharedArrayBuffer);
  for (const [name, word] of [
    ['start', S_START],
    ['end', S_END],
    ['pageSize', S_PAGE_SIZE],
  ] as const) {
    if (h[name] !== stat[word]) {
      einval(
        ATTACH_CALL,
        `handle.${name} must be the ${name} the space was created with (${stat[word]})`,
        h[name],
      );
    }
  }
  return value as VmapSpaceHandle;
}
