/**
 * Command-line flag parsing shared by the subcommands.
 *
 * Holds: a tiny parser for `--name value`, `--name=value` and boolean `--flag`, and typed
 * readers of the flags; every refusal is a UsageError naming the flag, the rule and the value
 * (an unknown flag lists the known ones; a flag given twice is refused). No dependencies.
 * Callers: src/cli/*.ts.
 */

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface FlagSpec {
  /** Flags that take a value. */
  values: readonly string[];
  /** Flags that are on or off. */
  booleans: readonly string[];
  /** What takes these flags, for the refusal of another ("bench kva"). */
  owner?: string;
}

export interface ParsedArgs {
  flags: Map<string, string | true>;
  positional: string[];
}

export function parseArgs(argv: readonly string[], spec: FlagSpec): ParsedArgs {
  const flags = new Map<string, string | true>();
  const positional: string[] = [];
  const known = (): string => [...spec.values, ...spec.booleans].map((f) => `--${f}`).join(', ');
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('-') || arg === '-') {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') ? arg.slice(2, eq < 0 ? undefined : eq) : '';
    const isBool = spec.booleans.includes(name);
    if (!isBool && !spec.values.includes(name))
      throw new UsageError(
        `unknown option ${arg}${spec.owner ? ` for ${spec.owner}` : ''} (the options are ${known()})`,
      );
    if (flags.has(name)) throw new UsageError(`option --${name} is given twice`);
    if (isBool) {
      if (eq >= 0) throw new UsageError(`--${name} takes no value, got ${arg}`);
      flags.set(name, true);
    } else {
      const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
      if (value === undefined || value === '' || (eq < 0 && value.startsWith('--')))
        throw new UsageError(`--${name} needs a value`);
      flags.set(name, value);
    }
  }
  return { flags, positional };
}

/** The kernel's int (test_loop_count and friends). */
export const INT_MAX = 0x7fffffff;

function toInt(text: string): number {
  return /^[0-9][0-9_]*(e[0-9]+)?$/i.test(text) ? Number(text.replace(/_/g, '')) : NaN;
}

/**
 * A positive integer flag, from 1 to `max` (accepts 1e6 and 1_000_000 spellings); `why` says
 * where the maximum comes from.
 */
export function intFlag(
  args: ParsedArgs,
  name: string,
  fallback: number,
  max = INT_MAX,
  why = 'an int',
): number {
  const v = args.flags.get(name);
  if (v === undefined) return fallback;
  const n = toInt(String(v));
  if (!Number.isSafeInteger(n) || n <= 0 || n > max)
    throw new UsageError(
      `--${name} must be an integer from 1 to ${max} (${why}), got ${String(v)}`,
    );
  return n;
}

/**
 * A comma-separated list of distinct integers from 1 to `max`, or `none` for an empty list
 * when `noneOk`.
 */
export function intListFlag(
  args: ParsedArgs,
  name: string,
  fallback: number[],
  max = INT_MAX,
  why = 'an int',
  noneOk = true,
): number[] {
  const v = args.flags.get(name);
  if (v === undefined) return fallback;
  if (v === 'none') {
    if (noneOk) return [];
    throw new UsageError(`--${name} needs at least one value, got none`);
  }
  const out: number[] = [];
  for (const x of String(v).split(',')) {
    const n = toInt(x);
    if (!Number.isSafeInteger(n) || n <= 0 || n > max)
      throw new UsageError(
        `--${name}: each value must be an integer from 1 to ${max} (${why}), got "${x}" in ${String(v)}`,
      );
    if (out.includes(n)) throw new UsageError(`--${name}: ${n} is listed twice in ${String(v)}`);
    out.push(n);
  }
  return out;
}

/** A comma-separated list of distinct words out of `valid`. */
export function wordListFlag<T extends string>(
  args: ParsedArgs,
  name: string,
  fallback: T[],
  valid: readonly T[],
): T[] {
  const v = args.flags.get(name);
  if (v === undefined) return fallback;
  const out: T[] = [];
  for (const x of String(v).split(',')) {
    if (!(valid as readonly string[]).includes(x))
      throw new UsageError(
        `--${name}: each value is one of ${valid.join(', ')}, got "${x}" in ${String(v)}`,
      );
    if (out.includes(x as T))
      throw new UsageError(`--${name}: ${x} is listed twice in ${String(v)}`);
    out.push(x as T);
  }
  return out;
}
