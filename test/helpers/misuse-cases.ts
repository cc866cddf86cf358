/**
 * The misuse battery's machinery: bad values, tables of cases, and the runner that checks one
 * case (a VmallocError, its code, a message naming the argument and the rule, the state
 * unchanged) and says what actually happened when it does not.
 *
 * A table holds, per public function, rows of (argument, expected code, bad values, how to
 * call); a bad value is a constant or is computed from the fixture (an address inside an area,
 * a freed frame). Every case gets a fresh fixture, so one that corrupts the state cannot
 * change the outcome of the next, and the run is deterministic.
 * Callers: test/api/misuse-battery.test.ts and the table modules beside it.
 */

import { isDeepStrictEqual } from 'node:util';
import { VmallocError } from '../../src/index.js';

export type Code = 'EINVAL' | 'ENOENT' | 'EFAULT' | 'EBUSY';
export type Design = 'global' | 'nodes';
export const DESIGNS: Design[] = ['global', 'nodes'];

/** One bad value: a label for the report and how to get it from the fixture. */
export interface Bad<F> {
  label: string;
  get(fx: F): unknown;
}

/** A row: every value in `bad` given as argument `arg` must throw `code`. */
export interface Row<F> {
  /** The argument's name, as the message must say it ("size", "align", "cpu"). */
  arg: string;
  /** Where the argument is ("arg 1", "options.align"), for the report. */
  pos: string;
  code: Code;
  bad: Bad<F>[];
  call(fx: F, value: unknown): unknown;
}

export interface Fixture<F> {
  /** A fresh fixture; `design` is undefined for tables that do not depend on one. */
  make(design: Design | undefined): F;
  /** Everything observable about the state, compared before and after the call. */
  state(fx: F): unknown;
}

export interface Table<F> {
  /** The function under test, as users write it ("vm.vmalloc", "VmapSpace.attach"). */
  fn: string;
  /** The designs to run the table for; [undefined] when the vmalloc layer is not involved. */
  designs: (Design | undefined)[];
  fixture: Fixture<F>;
  rows: Row<F>[];
}

/** A table of any fixture type, for lists of tables. */
export type AnyTable = Table<unknown>;

export function table<F>(t: Table<F>): AnyTable {
  return t as unknown as AnyTable;
}

// ------------------------------------------------------------------ bad values

/** A constant bad value. */
export function val<F>(label: string, value: unknown): Bad<F> {
  return { label, get: () => value };
}

/** A bad value computed from the fixture. */
export function at<F>(label: string, get: (fx: F) => unknown): Bad<F> {
  return { label, get };
}

const POWERS: [number, string][] = [
  [2 ** 31, '2^31'],
  [2 ** 32, '2^32'],
  [2 ** 48, '2^48'],
  [2 ** 53 - 1, '2^53 - 1'],
  [2 ** 53, '2^53'],
  [2 ** 60, '2^60'],
];

/** A readable label for a number: -0, 2^53 - 1, 2^48 + 4096, ... */
export function numLabel(n: number): string {
  if (Object.is(n, -0)) return '-0';
  for (const [v, name] of POWERS) {
    if (n === v) return name;
    if (n === -v) return `-${name}`;
  }
  for (const [v, name] of POWERS) {
    const d = n - v;
    if (Number.isInteger(d) && d !== 0 && Math.abs(d) <= 65536)
      return `${name} ${d > 0 ? '+' : '-'} ${Math.abs(d)}`;
  }
  return String(n);
}

/** Constant numbers, labelled. */
export function nums<F>(...values: number[]): Bad<F>[] {
  return values.map((n) => val<F>(numLabel(n), n));
}

/** NaN, Infinity and -Infinity. */
export const NON_FINITE = [NaN, Infinity, -Infinity];
/** Too large for most integer arguments: past 2^31, 2^32 and the safe integers. */
export const HUGE = [2 ** 31, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 2 ** 60];

export type TypeName =
  | 'undefined'
  | 'null'
  | 'string'
  | 'true'
  | 'false'
  | 'object'
  | 'array'
  | 'symbol'
  | 'bigint'
  | 'function';

/**
 * A value of each type other than number. The samples look like a valid number where the
 * type allows it ('4096', [4096], an object whose valueOf is 4096, 4096n), so that a check
 * that coerces instead of testing the type lets them through and fails the case.
 */
const TYPE_SAMPLES: Record<TypeName, () => unknown> = {
  undefined: () => undefined,
  null: () => null,
  string: () => '4096',
  true: () => true,
  false: () => false,
  object: () => ({ valueOf: () => 4096, toString: () => '4096' }),
  array: () => [4096],
  symbol: () => Symbol('4096'),
  bigint: () => 4096n,
  function: () => () => 4096,
};
const TYPE_LABELS: Record<TypeName, string> = {
  undefined: 'undefined',
  null: 'null',
  string: "'4096'",
  true: 'true',
  false: 'false',
  object: '{ valueOf: () => 4096 }',
  array: '[4096]',
  symbol: "Symbol('4096')",
  bigint: '4096n',
  function: '() => 4096',
};
const ALL_TYPES = Object.keys(TYPE_SAMPLES) as TypeName[];

/** Every wrong type but those `except` names (the legal ones for this argument). */
export function wrongTypes<F>(...except: TypeName[]): Bad<F>[] {
  return ALL_TYPES.filter((t) => !except.includes(t)).map((t) =>
    at<F>(TYPE_LABELS[t], TYPE_SAMPLES[t]),
  );
}

/** What an options bag must not be: every non-object, null, and an array. */
export function badOptions<F>(): Bad<F>[] {
  return [
    ...wrongTypes<F>('undefined', 'object', 'array'),
    val<F>('4096', 4096),
    at<F>('[]', () => []),
  ];
}

// ------------------------------------------------------------------ running

export interface CaseResult {
  /** "vm.vmalloc [nodes] size = NaN" */
  name: string;
  fn: string;
  design: Design | undefined;
  pos: string;
  label: string;
  /** Empty when the case passes: which of the checks failed. */
  failed: string[];
  /** What happened: what was thrown or returned, and whether the state changed. */
  actual: string;
}

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'number') return numLabel(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? v.slice(0, 60) + '...' : v);
  if (typeof v === 'symbol' || typeof v === 'undefined' || typeof v === 'boolean') return String(v);
  if (typeof v === 'function') return 'a function';
  if (v instanceof Uint8Array || v instanceof Int32Array)
    return `${v.constructor.name}(${v.length})`;
  if (Array.isArray(v)) return `an array of ${v.length}`;
  return 'an object';
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function wordRe(word: string): RegExp {
  return new RegExp(
    `(^|[^A-Za-z0-9_])${word.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}([^A-Za-z0-9_]|$)`,
  );
}

/** Runs one case on a fresh fixture and checks everything the contract promises. */
export function runCase<F>(
  table: Table<F>,
  design: Design | undefined,
  row: Row<F>,
  bad: Bad<F>,
): CaseResult {
  const name = `${table.fn}${design === undefined ? '' : ` [${design}]`} ${row.pos} = ${bad.label}`;
  const fx = table.fixture.make(design);
  const value = bad.get(fx);
  const before = table.fixture.state(fx);
  const failed: string[] = [];
  let outcome: string;
  let error: unknown = undefined;
  let threw = false;
  try {
    const r = row.call(fx, value);
    outcome = `returned ${describeValue(r)}`;
  } catch (e) {
    threw = true;
    error = e;
    outcome =
      e instanceof VmallocError
        ? `threw VmallocError ${e.code}: ${e.message}`
        : `threw ${e instanceof Error ? e.constructor.name : typeof e}: ${messageOf(e)}`;
  }
  let stateNote: string;
  try {
    const after = table.fixture.state(fx);
    stateNote = isDeepStrictEqual(before, after) ? 'state unchanged' : 'STATE CHANGED';
  } catch (e) {
    stateNote = `STATE BROKEN (${messageOf(e)})`;
  }
  if (!threw) failed.push('no throw');
  else if (!(error instanceof VmallocError)) failed.push('not a VmallocError');
  else {
    if (error.code !== row.code) failed.push(`code ${error.code} instead of ${row.code}`);
    if (!wordRe(row.arg).test(error.message)) failed.push(`message does not name ${row.arg}`);
    if (!/\bmust\b/.test(error.message)) failed.push('message states no rule (must ...)');
  }
  if (stateNote !== 'state unchanged') failed.push(stateNote.split(' (')[0]!.toLowerCase());
  return {
    name,
    fn: table.fn,
    design,
    pos: row.pos,
    label: bad.label,
    failed,
    actual: `${outcome}; ${stateNote}`,
  };
}

/** Counters for the one-line summary, and every failing case for the detailed listing. */
export const tally = { run: 0, failing: [] as CaseResult[] };

/** Runs a row's cases for one design; returns the failing ones (also recorded in `tally`). */
export function runRow<F>(table: Table<F>, design: Design | undefined, row: Row<F>): CaseResult[] {
  const failing: CaseResult[] = [];
  for (const bad of row.bad) {
    const r = runCase(table, design, row, bad);
    tally.run++;
    if (r.failed.length > 0) {
      failing.push(r);
      tally.failing.push(r);
    }
  }
  return failing;
}
