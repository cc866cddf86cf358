// A heap of byte ranges in one SharedArrayBuffer, shared by worker threads.
//
// The VmapSpace hands out offsets into `heap`; the bytes live in the SharedArrayBuffer. A
// producer worker allocates a range, writes a message into it and hands the range (offset and
// length: two numbers) to a consumer worker, which reads it and frees it. Both workers use the
// same space at the same time (concurrent: true puts every operation under one lock in shared
// memory). Run: node examples/shared-heap-workers.mjs
import { MessageChannel, Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { VmapSpace } from 'vmalloc';

const HEAP_BYTES = 1 << 20; // 1 MiB of bytes to hand out
const GRANULE = 64; // sizes are multiples of 64 bytes (a cache line)
const MESSAGES = 2000;

if (isMainThread) {
  const heap = new SharedArrayBuffer(HEAP_BYTES);
  const space = new VmapSpace({ start: 0, end: HEAP_BYTES, pageSize: GRANULE, concurrent: true });
  const { port1, port2 } = new MessageChannel();
  const start = (role, cpu, port) =>
    new Worker(new URL(import.meta.url), {
      workerData: { role, cpu, port, handle: space.handle, heap },
      transferList: [port],
    });
  const done = [start('producer', 1, port1), start('consumer', 2, port2)].map(
    (w) => new Promise((resolve, reject) => w.once('message', resolve).once('error', reject)),
  );
  const [produced, consumed] = await Promise.all(done);
  space.check();
  console.log(`producer wrote ${produced} messages into ranges of one SharedArrayBuffer`);
  console.log(`consumer read and freed ${consumed.count}, all intact: ${consumed.intact}`);
  console.log(`live ranges left: ${space.stats().busyCount}`);
} else {
  const { role, cpu, port, handle } = workerData;
  const space = VmapSpace.attach(handle, { cpu });
  const bytes = new Uint8Array(workerData.heap);
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  if (role === 'producer') {
    let sent = 0;
    const sendNext = () => {
      while (sent < MESSAGES) {
        const text = enc.encode(`message ${sent} from the producer`);
        const size = Math.ceil(text.length / GRANULE) * GRANULE;
        const off = space.alloc(size);
        if (off === null) return void setTimeout(sendNext, 1); // heap full: let the consumer free
        bytes.set(text, off);
        port.postMessage({ off, len: text.length, i: sent++ });
      }
      parentPort.postMessage(sent);
    };
    sendNext();
  } else {
    let count = 0;
    let intact = true;
    port.on('message', ({ off, len, i }) => {
      intact &&= dec.decode(bytes.slice(off, off + len)) === `message ${i} from the producer`;
      space.free(off);
      if (++count === MESSAGES) {
        port.close();
        parentPort.postMessage({ count, intact });
      }
    });
  }
}
