/**
 * What a Vmalloc becomes after detach(): the same object with a prototype whose methods and
 * getters throw, except those that act as no cpu.
 *
 * Holds: detachedPrototype(), built once per thread from the live class's prototype.
 * Invariant: every method and getter of the live prototype and its base classes' is either kept (listed by the
 * caller) or shadowed by one that throws VmallocError EINVAL naming it, so a method added to
 * the class later is refused too without being listed here.
 * Callers: Vmalloc.detach() (src/api/vmalloc.ts).
 *
 * Why a prototype swap: a detached instance must refuse vmalloc, vfree, read, write and the
 * rest, yet those hot paths must not pay a flag test on every call for it. Swapping the
 * detached object's prototype costs the live instances nothing: their prototype is untouched.
 */

import { VmallocError } from '../errors.js';

const made = new WeakMap<object, object>();

/**
 * The prototype for detached instances of the class whose prototype is `live`: each method
 * or getter of `live` and of the prototypes above it (but Object's) not in `kept` throws,
 * with a message naming it and the cpu the instance had (read from the instance's `cpu`).
 */
export function detachedPrototype(live: object, kept: readonly string[]): object {
  const known = made.get(live);
  if (known !== undefined) return known;
  const proto = Object.create(live) as object;
  // The class and its base classes (Vmalloc extends VmallocBase): a name is shadowed once,
  // from the class nearest the instance.
  const seen = new Set<string>();
  for (let p: object | null = live; p !== null && p !== Object.prototype;) {
    for (const name of Object.getOwnPropertyNames(p)) {
      if (name === 'constructor' || kept.includes(name) || seen.has(name)) continue;
      seen.add(name);
      shadow(proto, name, Object.getOwnPropertyDescriptor(p, name)!);
    }
    p = Object.getPrototypeOf(p) as object | null;
  }
  made.set(live, proto);
  return proto;
}

/** Defines on `proto` a method or getter `name` (as `d` is) that refuses the call. */
function shadow(proto: object, name: string, d: PropertyDescriptor): void {
  const refuse = function (this: { cpu: number }): never {
    throw new VmallocError(
      'EINVAL',
      name === 'detach'
        ? `Cannot detach: this Vmalloc was already detached from cpu ${this.cpu}`
        : `Cannot ${name}: this Vmalloc was detached from cpu ${this.cpu} (vm.detach()); attach again with attachVmalloc(vm.handle, { cpu }) to use the subsystem`,
    );
  };
  if (d.get !== undefined) Object.defineProperty(proto, name, { get: refuse, configurable: true });
  else if (typeof d.value === 'function')
    Object.defineProperty(proto, name, { value: refuse, writable: true, configurable: true });
}
