/**
 * Reading /proc/vmallocinfo back: the text the kernel (or vmallocinfo.ts) prints, as records.
 *
 * Holds: parseVmallocinfo(), which turns each line into a VmallocinfoLine (its range as
 * printed, size, caller, pages=, phys=, flag words, kind) and refuses a line it cannot read
 * with VmallocError EINVAL naming the line number and what was wrong.
 * Invariant: a parsed line's size is a positive multiple of the page size and its pages=
 * count fits in the area; the addresses are kept exactly as printed (bigints), whether real,
 * zeroed or hashed: deciding what they mean is the importer's business (vmallocinfo-import.ts).
 * Callers: vmallocinfo-import.ts, the CLI (`vmalloc load-vmallocinfo`), tests.
 *
 * Kernel: the format of vmalloc_info_show() / show_purge_info(), every version from 4.19 on:
 *
 *   0x<start>-0x<end> <size> [caller [module]] [pages=N] [phys=0x...] [ioremap] [sparse]
 *       [vmalloc] [vmap] [user] [dma-coherent] [vpages] [N<node>=<pages> ...]
 *   0x<start>-0x<end> <size> vm_map_ram
 *   0x<start>-0x<end> <size> unpurged vm_area
 *
 * Addresses print with %pK: zeros when kptr_restrict hides them from the reader, and hashed
 * pointers (unrelated values) where %p is used.
 */

import { VmallocError } from '../errors.js';
import { VmFlags } from './vm-struct.js';

/** What an area is, from its flag words (the first that applies, in this order). */
export type VmallocinfoKind =
  | 'vmalloc'
  | 'vmap'
  | 'ioremap'
  | 'sparse'
  | 'user'
  | 'dma-coherent'
  | 'vm_map_ram'
  | 'unpurged'
  /** A reservation with no flag word: get_vm_area() without pages. */
  | 'area';

export interface VmallocinfoLine {
  /** 1-based line number in the text. */
  line: number;
  /** The addresses as printed (kernel addresses, zeros or hashes). */
  start: bigint;
  end: bigint;
  /** Bytes, the guard page included (as printed). */
  size: number;
  /** The caller as printed ("func+0x1c/0x40", "func+0x1c/0x40 [module]"), or ''. */
  caller: string;
  /** pages=N, or 0 when not printed. */
  pages: number;
  /** phys=0x..., or 0. */
  phys: number;
  /** VmFlags of the flag words (VM_IOREMAP, VM_ALLOC, ...). */
  flags: number;
  /** The `vpages` word: the pages array is itself a vmalloc area. */
  vpages: boolean;
  kind: VmallocinfoKind;
}

/** The flag words in the kernel's order, with their VM_* bit. */
const FLAG_WORDS: readonly (readonly [string, number])[] = [
  ['ioremap', VmFlags.VM_IOREMAP],
  ['sparse', VmFlags.VM_SPARSE],
  ['vmalloc', VmFlags.VM_ALLOC],
  ['vmap', VmFlags.VM_MAP],
  ['user', VmFlags.VM_USERMAP],
  ['dma-coherent', VmFlags.VM_DMA_COHERENT],
];
const FLAG_OF = new Map(FLAG_WORDS);
const KIND_ORDER: readonly (readonly [number, VmallocinfoKind])[] = [
  [VmFlags.VM_ALLOC, 'vmalloc'],
  [VmFlags.VM_MAP, 'vmap'],
  [VmFlags.VM_IOREMAP, 'ioremap'],
  [VmFlags.VM_SPARSE, 'sparse'],
  [VmFlags.VM_USERMAP, 'user'],
  [VmFlags.VM_DMA_COHERENT, 'dma-coherent'],
];

const RANGE = /^0x([0-9a-fA-F]{1,16})-0x([0-9a-fA-F]{1,16})\s+([0-9]+)(?:\s+(.*))?$/;
const FORMAT =
  'a line is "0x<start>-0x<end> <size> [caller] [pages=N] [phys=0x...] [flag words] [N<node>=<pages>]", ' +
  '"0x<start>-0x<end> <size> vm_map_ram" or "0x<start>-0x<end> <size> unpurged vm_area"';
const WORDS =
  'after the caller come pages=N, phys=0x<hex>, the flag words ioremap, sparse, vmalloc, vmap, user, ' +
  'dma-coherent, vpages, and N<node>=<pages>';

function refuse(line: number, what: string, text: string): never {
  const shown = text.length > 100 ? `${text.slice(0, 100)}...` : text;
  throw new VmallocError(
    'EINVAL',
    `Cannot load vmallocinfo: line ${line}: ${what}, got ${JSON.stringify(shown)}`,
  );
}

const isKeyValue = (w: string): boolean => /^(pages|phys|N[0-9]+)=/.test(w);
const isWord = (w: string): boolean => FLAG_OF.has(w) || w === 'vpages' || isKeyValue(w);

/**
 * The lines of a /proc/vmallocinfo text (blank lines are skipped), in the text's order.
 * @throws VmallocError EINVAL naming the first bad line's number and what was wrong with it.
 */
export function parseVmallocinfo(text: string, pageSize = 4096): VmallocinfoLine[] {
  if (typeof text !== 'string')
    throw new VmallocError(
      'EINVAL',
      `Cannot load vmallocinfo: text must be a string, got ${text === null ? 'null' : typeof text}`,
    );
  const out: VmallocinfoLine[] = [];
  const lines = text.split('\n');
  for (let k = 0; k < lines.length; k++) {
    const raw = lines[k]!.replace(/\r$/, '');
    const t = raw.trim();
    if (t === '') continue;
    out.push(parseLine(k + 1, t, pageSize));
  }
  return out;
}

function parseLine(n: number, t: string, pageSize: number): VmallocinfoLine {
  const m = RANGE.exec(t);
  if (m === null) refuse(n, FORMAT, t);
  const start = BigInt(`0x${m[1]!}`);
  const end = BigInt(`0x${m[2]!}`);
  const size = Number(m[3]!);
  if (!Number.isSafeInteger(size) || size <= 0 || size % pageSize !== 0)
    refuse(n, `the size must be a positive multiple of the page size (${pageSize})`, t);
  const rest = (m[4] ?? '').trim();
  const entry: VmallocinfoLine = {
    line: n,
    start,
    end,
    size,
    caller: '',
    pages: 0,
    phys: 0,
    flags: 0,
    vpages: false,
    kind: 'area',
  };
  if (rest === 'unpurged vm_area') return { ...entry, kind: 'unpurged' };
  if (rest === 'vm_map_ram') return { ...entry, kind: 'vm_map_ram' };
  if (/^unpurged\b/.test(rest) || /^vm_map_ram\b/.test(rest))
    refuse(n, `"${rest.split(/\s+/)[0]}" lines have no other words`, t);
  const words = rest === '' ? [] : rest.split(/\s+/);
  let at = 0;
  // The caller (%pS): one word, plus " [module]" for a module's function.
  if (at < words.length && !isWord(words[at]!)) {
    entry.caller = words[at++]!;
    if (at < words.length && /^\[.+\]$/.test(words[at]!)) entry.caller += ` ${words[at++]!}`;
  }
  const seen = new Set<string>();
  for (; at < words.length; at++) {
    const w = words[at]!;
    const key = w.includes('=') ? w.slice(0, w.indexOf('=')) : w;
    if (!isWord(w)) refuse(n, `unknown word "${w}" (${WORDS})`, t);
    if (seen.has(key)) refuse(n, `"${key}" is given twice`, t);
    seen.add(key);
    const value = w.slice(key.length + 1);
    if (key === 'pages') {
      if (!/^[0-9]+$/.test(value)) refuse(n, `pages= takes a decimal count, got "${w}"`, t);
      entry.pages = Number(value);
      if (entry.pages > size / pageSize)
        refuse(n, `pages=${value} is more than the ${size / pageSize} pages of its size`, t);
    } else if (key === 'phys') {
      if (!/^0x[0-9a-fA-F]{1,16}$/.test(value))
        refuse(n, `phys= takes 0x and up to 16 hex digits, got "${w}"`, t);
      const phys = BigInt(value);
      if (phys > BigInt(Number.MAX_SAFE_INTEGER))
        refuse(n, `phys=${value} is beyond 2^53, more than this model's physical addresses`, t);
      entry.phys = Number(phys);
    } else if (key.startsWith('N')) {
      if (!/^[0-9]+$/.test(value)) refuse(n, `${key}= takes a decimal count, got "${w}"`, t);
    } else if (key === 'vpages') {
      entry.vpages = true;
    } else {
      entry.flags |= FLAG_OF.get(key)!;
    }
  }
  for (const [bit, kind] of KIND_ORDER) {
    if ((entry.flags & bit) !== 0) {
      entry.kind = kind;
      break;
    }
  }
  return entry;
}
