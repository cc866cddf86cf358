// A GPU-style sub-allocator: one large buffer, aligned sub-ranges, defragmentation statistics.
//
// GPU APIs hand out one big buffer (a WebGPU GPUBuffer, a Vulkan device-memory block) and
// leave the sub-allocation to you: vertex buffers aligned to 256 bytes, textures to 64 KiB.
// VmapSpace does the bookkeeping (lowest fit, per-call alignment); this example churns it,
// reports fragmentation, then compacts the live ranges to the bottom of the buffer (what a
// defragmenting pass does, copying the bytes) and reports again.
// Run: node examples/gpu-suballocator.mjs
import { VmapSpace } from 'vmalloc';

const BUFFER_BYTES = 64 << 20; // the "device" buffer: 64 MiB
const MIN_ALIGN = 256; // every sub-range is a multiple of 256 bytes
const buffer = new Uint8Array(BUFFER_BYTES);
let space = new VmapSpace({ start: 0, end: BUFFER_BYTES, pageSize: MIN_ALIGN });

// A small deterministic generator, so the figures printed are the same on every run.
let seed = 12345;
const rand = (n) => {
  seed ^= seed << 13; // xorshift32
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
};

const live = new Map(); // offset -> { size, kind, tag }
function allocate(kind) {
  const [size, align] =
    kind === 'texture'
      ? [(1 + rand(16)) * 65536, 65536] // 64 KiB to 1 MiB, 64 KiB aligned
      : [(1 + rand(64)) * MIN_ALIGN, MIN_ALIGN]; // 256 B to 16 KiB vertex/uniform data
  const off = space.alloc(size, { align });
  if (off === null) return false;
  const tag = live.size & 0xff;
  buffer.fill(tag, off, off + size); // "upload" the resource
  live.set(off, { size, kind, align, tag });
  return true;
}

function report(label) {
  const s = space.stats();
  const frag = s.freeBytes === 0 ? 0 : 1 - s.largestFree / s.freeBytes;
  console.log(
    `${label}: ${s.busyCount} ranges, ${(s.busyBytes / 2 ** 20).toFixed(1)} MiB used, ` +
      `${s.freeCount} free blocks, largest free ${(s.largestFree / 2 ** 20).toFixed(2)} MiB, ` +
      `fragmentation ${(frag * 100).toFixed(1)}%`,
  );
}

// Churn: create 400 resources (some do not fit), free a random half, repeat.
for (let round = 0; round < 6; round++) {
  for (let i = 0; i < 400; i++) allocate(rand(4) === 0 ? 'texture' : 'vertex');
  for (const off of [...live.keys()]) {
    if (rand(2) === 0) {
      space.free(off);
      live.delete(off);
    }
  }
}
report('after churn');

// Defragment: place every live range again, in address order, into a fresh space, moving its
// bytes down. Each keeps its alignment, so the result is valid for the same bindings.
const compacted = new VmapSpace({ start: 0, end: BUFFER_BYTES, pageSize: MIN_ALIGN });
const moved = new Map();
let bytesMoved = 0;
for (const [off, r] of [...live].sort((a, b) => a[0] - b[0])) {
  const to = compacted.alloc(r.size, { align: r.align });
  if (to !== off) {
    buffer.copyWithin(to, off, off + r.size);
    bytesMoved += r.size;
  }
  moved.set(to, r);
}
space = compacted;
report('after compaction');
const intact = [...moved].every(([off, r]) =>
  buffer.subarray(off, off + r.size).every((b) => b === r.tag),
);
console.log(`moved ${(bytesMoved / 2 ** 20).toFixed(1)} MiB; every resource intact: ${intact}`);
space.check();
