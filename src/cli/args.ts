/**
 * Command-line flag parsing shared by the subcommands.
 *
 * Holds: a tiny parser for `--name value`, `--name=value` and boolean `--flag`, with errors
 * that name the flag. No dependencies.
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
}

export interface ParsedArgs {
  flags: Map<string, string | true>;
  positional: string[];
}

export function parseArgs(argv: readonly string[], spec: FlagSpec): ParsedArgs {
  const flags = new Map<string, string | true>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    if (spec.booleans.includes(name)) {
      if (eq >= 0) throw new UsageError(`--${name} takes no value`);
      flags.set(name, true);
    } else if (spec.values.includes(name)) {
      const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
      if (value === undefined || value === '') throw new UsageError(`--${name} needs a value`);
      flags.set(name, value);
    } else {
      throw new UsageError(`unknown option --${name}`);
    }
  }
  return { flags, positional };
}

/** A positive integer flag (accepts 1e6 and 1_000_000 spellings). */
export function intFlag(args: ParsedArgs, name: string, fallback: number): number {
  const v = args.flags.get(name);
  if (v === undefined) return fallback;
  const n = Number(String(v).replace(/_/g, ''));
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new UsageError(`--${name} must be a positive integer, got ${String(v)}`);
  return n;
}

/** A comma-separated list of positive integers, or `none` for an empty list. */
export function intListFlag(args: ParsedArgs, name: string, fallback: number[]): number[] {
  const v = args.flags.get(name);
  if (v === undefined) return fallback;
  if (v === 'none') return [];
  return String(v)
    .split(',')
    .map((x) => {
      const n = Number(x.replace(/_/g, ''));
      if (!Number.isSafeInteger(n) || n <= 0)
        throw new UsageError(`--${name}: ${x} is not a positive integer`);
      return n;
    });
}
