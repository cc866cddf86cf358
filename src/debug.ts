/**
 * The one place where broken invariants are reported.
 *
 * Holds: `invariant()` and `invariantFailure()`, which throw VmallocError code EINVARIANT.
 * A broken invariant is a bug in this library, never a user error: it fails loudly with what
 * was expected and what was found.
 * Callers: the invariant checkers (check()) and the few internal "cannot happen" branches.
 */

import { VmallocError } from './errors.js';

export function invariantFailure(message: string): never {
  throw new VmallocError('EINVARIANT', `vmalloc invariant broken: ${message}`);
}

/** Throws when `cond` is false; `message` is built only then. */
export function invariant(cond: boolean, message: () => string): asserts cond {
  if (!cond) invariantFailure(message());
}
