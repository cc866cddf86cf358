/**
 * The operations a trace records: their codes, names and arguments.
 *
 * Holds: TraceOp (the code of each recorded call, named as the kernel names the function;
 * space_alloc / space_free: a bare VmapSpace's), OP_NAMES, OP_ARGS (what each record's four
 * argument words mean, by the names the file gives them), and which operations allocate
 * (return an address) or free one.
 * Invariant: a code never changes meaning within a schemaVersion of the file (trace-file.ts).
 * Callers: trace-record.ts, trace-file.ts, trace-replay.ts.
 */

/** Operation codes (the kernel's function names are the names in the file). */
export const TraceOp = {
  vmalloc: 1,
  vzalloc: 2,
  vmalloc_huge: 3,
  vfree: 4,
  vunmap: 5,
  vmap: 6,
  kvfree_rcu: 7,
  purge: 8,
  rcu_barrier: 9,
  alloc_pages: 10,
  free_pages: 11,
  vm_map_ram: 12,
  vm_unmap_ram: 13,
  vm_unmap_aliases: 14,
  alloc_percpu: 15,
  free_percpu: 16,
  // A bare range space's calls (VmapSpace: bench kva), in a trace of their own (the header's
  // `space`): alloc_vmap_area() / free_vmap_area() below the API.
  space_alloc: 17,
  space_free: 18,
} as const;
export type TraceOpName = keyof typeof TraceOp;

/** Names by code (index 0 unused). */
export const OP_NAMES: readonly TraceOpName[] = (() => {
  const names: TraceOpName[] = [];
  for (const [name, code] of Object.entries(TraceOp)) names[code] = name as TraceOpName;
  return names;
})();

/**
 * The arguments a0..a3 of each kind, by the name they carry in the file ('' unused). A
 * `caller` argument is a string id; `pages` the order of the alloc_pages call whose frames
 * were passed (-1: frames from elsewhere).
 */
export const OP_ARGS: Record<TraceOpName, readonly string[]> = {
  vmalloc: ['size', 'align', 'caller', 'zero'],
  vzalloc: ['size', 'align', 'caller', ''],
  vmalloc_huge: ['size', 'align', 'caller', 'zero'],
  vfree: ['addr'],
  vunmap: ['addr'],
  vmap: ['count', 'pages', 'caller', 'flags'],
  kvfree_rcu: ['addr'],
  purge: [],
  rcu_barrier: [],
  alloc_pages: ['n'],
  free_pages: ['n', 'pages'],
  vm_map_ram: ['count', 'pages'],
  vm_unmap_ram: ['addr', 'count'],
  vm_unmap_aliases: [],
  alloc_percpu: ['size', 'align'],
  free_percpu: ['ptr'],
  space_alloc: ['size', 'align', 'vstart', 'vend'],
  space_free: ['addr'],
};

/** Which kinds return an address (or null), and which take one to free. */
export const ALLOCS: ReadonlySet<TraceOpName> = new Set([
  'vmalloc',
  'vzalloc',
  'vmalloc_huge',
  'vmap',
  'vm_map_ram',
  'alloc_percpu',
  'space_alloc',
]);
export const FREES: ReadonlySet<TraceOpName> = new Set([
  'vfree',
  'vunmap',
  'kvfree_rcu',
  'vm_unmap_ram',
  'free_percpu',
  'space_free',
]);

/** The kinds of a space trace (the header's `space`): no other kind is in one. */
export const SPACE_OPS: ReadonlySet<TraceOpName> = new Set(['space_alloc', 'space_free']);
