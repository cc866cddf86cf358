/** Helper for misuse tests: a call is refused with a VmallocError and the state is unchanged. */

import assert from 'node:assert/strict';
import { VmallocError, type Vmalloc } from '../../src/index.js';
import { snapshot } from './vm.js';

/** `call` throws VmallocError `code` with a message matching `message`; nothing changed. */
export function refuses(vm: Vmalloc, call: () => unknown, code: string, message: RegExp): void {
  const before = snapshot(vm);
  assert.throws(call, (e: unknown) => {
    assert.ok(e instanceof VmallocError, `a VmallocError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
    return true;
  });
  assert.equal(snapshot(vm), before);
}
