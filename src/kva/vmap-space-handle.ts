/**
 * The shared memory of a VmapSpace: its handle (the record store, the control block, the
 * statistics block, the lock table), made and initialized here, and checked here when a
 * worker attaches to it.
 *
 * Invariant: a handle made here holds an initialized space (two empty tree heads, one free
 * block spanning [start, end)) before its magic word is written, and the words written at
 * creation (heads, magic, bounds) never change afterwards.
 * Callers: VmapSpace's constructor and VmapSpace.attach() (src/kva/vmap-space.ts).
 *
 * A handle is trusted only as far as its structure can be checked: every buffer must be a
 * SharedArrayBuffer of the size a space creates, the control block must carry the magic word
 * written at creation, and the bounds the handle names must equal those the space recorded.
 */

import { VmallocError, hex } from '../errors.js';
import { isSharedBuffer, makeFixedBuffer } from '../shared/buffers.js';
import { LockTable } from '../shared/lock.js';
import { mergeOrAddVmapArea } from './free-tree.js';
import { rbListInit } from './rb-list.js';
import { RECORD_BYTES, VaStore } from './vmap-area.js';
import {
  ATTACH_CALL,
  MAX_RECORDS,
  MIN_RECORDS,
  checkBound,
  einval,
  refuse,
  type SpaceConfig,
  type VmapSpaceHandle,
} from './vmap-space-options.js';

/**
 * The control block, Int32 words (vmap-space.ts keeps its own copies of the hot ones):
 *
 *   0 free-tree head id   1 busy-tree head id   2 spare record (0: none)   3 magic
 */
export const C_FREE_HEAD = 0;
export const C_BUSY_HEAD = 1;
export const C_PRELOAD = 2;
export const C_MAGIC = 3;
export const CTL_WORDS = 4;
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
  const locks = cfg.concurrent ? LockTable.create(1, true) : null;
  if (locks !== null && cfg.lockTimeoutMs !== undefined) locks.setTimeout(cfg.lockTimeoutMs);
  const ctl = new Int32Array(ctlBuf);
  const stat = new Float64Array(statBuf);
  const freeHead = s.alloc();
  const busyHead = s.alloc();
  ctl[C_FREE_HEAD] = freeHead;
  ctl[C_BUSY_HEAD] = busyHead;
  rbListInit(s, freeHead);
  rbListInit(s, busyHead);
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

/** Bytes of the lock table of a concurrent space (one lock, one cpu), worked out once. */
let lockTableBytes = 0;

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
  if (lockTableBytes === 0) lockTableBytes = LockTable.create(1, true).buffer.byteLength;
  sharedOf('locks', h.locks, lockTableBytes);
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
  sharedOf('store.meta', st.meta, 16);
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
