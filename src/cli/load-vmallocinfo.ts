/**
 * `vmalloc load-vmallocinfo FILE [test args...]`: a real machine's /proc/vmallocinfo as the
 * starting layout of a test_vmalloc run.
 *
 * Holds: the help text and the command: reads FILE (or stdin for -), checks every line
 * (a bad one is a usage error naming the file, the line number and what was wrong), then runs
 * `vmalloc test` with the layout loaded first (src/cli/test.ts; loading itself is
 * Vmalloc.loadVmallocinfo, src/mm/vmallocinfo-import.ts).
 * Callers: src/cli/main.ts.
 */

import { readFileSync } from 'node:fs';
import { VmallocError } from '../errors.js';
import { parseVmallocinfo } from '../mm/vmallocinfo-parse.js';
import { UsageError } from './args.js';
import { testCommand } from './test.js';

/** A short run unless the arguments say otherwise. */
const DEFAULTS = ['run_test_mask=7', 'test_loop_count=10000'];

export const LOAD_VMALLOCINFO_HELP = `Usage: vmalloc load-vmallocinfo FILE [mode] [key=value ...] [options]

Builds the busy layout of FILE, a /proc/vmallocinfo (- reads it from stdin), in a fresh
allocator, then runs test_vmalloc on top of it and prints the usual Summary lines.

Each line becomes an area at the same address, with its size (guard page included), its
caller, its kind (vmalloc, vmap, ioremap, user, sparse, dma-coherent, vm_map_ram, or a bare
reservation), phys= and pages (allocated and mapped; a vmalloc area maps all of its pages);
"unpurged vm_area" lines become lazily freed ranges, and a "vpages" area is linked to its
pages array's area. Addresses:
  exact     they lie in this allocator's window (0xffffc90000000000, 32 TiB), or in the
            modules area (0xffffffff80000000 and up), and are kept
  rebased   the kernel's vmalloc area started elsewhere (KASLR, another layout): moved to
            this window by a multiple of 1 GiB, so alignments up to 1 GiB are kept
  zeroed    hidden by kptr_restrict (read the file as root for the real ones), or
  hashed    not real kernel addresses: the areas keep their order and sizes and are placed
            densely from VMALLOC_START; a warning line says so
A line that cannot be read is refused with its line number.

The run: ${DEFAULTS.join(' ')} unless given, then any mode, parameter or option of
'vmalloc test' (see vmalloc test --help); simulate=1 is refused. With record=FILE the
trace's header holds the layout, so 'vmalloc replay' loads it too. Load and summary lines
go to stderr (--quiet keeps only the warnings); --json adds an "imported" object.

Example:
  sudo cat /proc/vmallocinfo > vmallocinfo.txt
  npx vmalloc load-vmallocinfo vmallocinfo.txt nr_threads=2 --vmallocinfo
`;

export async function loadVmallocinfoCommand(argv: readonly string[]): Promise<number> {
  const [file, ...rest] = argv;
  if (file === undefined || file === '--help' || file === '-h' || rest.includes('--help')) {
    process.stdout.write(LOAD_VMALLOCINFO_HELP);
    return file === undefined ? 1 : 0;
  }
  if (file.startsWith('-') && file !== '-')
    throw new UsageError(
      `load-vmallocinfo takes the file first, got the option ${file} (vmalloc load-vmallocinfo FILE [test args...])`,
    );
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    parseVmallocinfo(text);
  } catch (e) {
    if (e instanceof VmallocError) throw new UsageError(`${file}: ${e.message}`);
    throw e;
  }
  return await testCommand(rest, { file, text, defaults: DEFAULTS });
}
