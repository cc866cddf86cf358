// An ID / port allocator with windows.
//
// pageSize: 1 makes VmapSpace a byte-granular (here: number-granular) allocator: each ID is a
// 1-wide range. Windows (vstart/vend) keep each kind of ID in its own part of the space, and
// alignment gives blocks of consecutive IDs. Freed IDs are reused lowest first.
// Run: node examples/port-allocator.mjs
import { VmapSpace, VmallocError } from 'vmalloc';

const ports = new VmapSpace({ start: 1, end: 65536, pageSize: 1 }); // ports 1..65535
const EPHEMERAL = { vstart: 49152 }; // IANA's dynamic range: 49152..65535
const SYSTEM = { vend: 1024 }; // well-known ports: 1..1023

const http = ports.alloc(1, { vstart: 80, vend: 81 }); // exactly port 80
const client = [ports.alloc(1, EPHEMERAL), ports.alloc(1, EPHEMERAL), ports.alloc(1, EPHEMERAL)];
const daemon = ports.alloc(1, SYSTEM); // the lowest free system port
const block = ports.alloc(16, { ...EPHEMERAL, align: 16 }); // 16 consecutive, 16-aligned
console.log(`http ${http}, clients ${client.join(' ')}, daemon ${daemon}`);
console.log(`block ${block}-${block + 15}`);

ports.free(client[1]);
console.log(`after freeing ${client[1]}, the next ephemeral port is ${ports.alloc(1, EPHEMERAL)}`);
console.log(`port 80 again: ${ports.alloc(1, { vstart: 80, vend: 81 })}`); // taken: null

try {
  ports.free(12345); // never allocated
} catch (e) {
  if (e instanceof VmallocError) console.log(`${e.code}: ${e.message}`);
}

// IDs in general: a 32-bit ID space, handed out in order, with a reserved low window.
const ids = new VmapSpace({ start: 0, end: 2 ** 32, pageSize: 1 });
ids.alloc(1000); // reserve IDs 0..999
const first = Array.from({ length: 5 }, () => ids.alloc(1));
console.log(`ids ${first.join(' ')}; live ${ids.stats().busyCount}`);
ports.check();
ids.check();
