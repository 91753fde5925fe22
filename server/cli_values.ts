/**
 * Flag values as text to typed settings: sizes with units, integers in a
 * range, one-of choices, booleans. Each takes the setting's name as the user
 * gave it (`--flag` or `SHALE_FLAG`) and a `fail` that throws a usage error.
 *
 * @module
 */

export function bool(
  v: string,
  flag: string,
  fail: (m: string) => never,
): boolean {
  return oneOf(v, ["true", "false", "1", "0"], flag, fail) === "true" ||
    v === "1";
}

export function oneOf<T extends string>(
  v: string,
  allowed: readonly T[],
  /** The setting as the user named it: `--flag` or `SHALE_FLAG`. */
  what: string,
  fail: (m: string) => never,
): T {
  if (!(allowed as readonly string[]).includes(v)) {
    fail(`${what} must be one of ${allowed.join(", ")}, got "${v}"`);
  }
  return v as T;
}

export function int(
  v: string,
  what: string,
  min: number,
  max: number,
  fail: (m: string) => never,
): number {
  const n = /^[0-9]+$/.test(v) ? Number(v) : NaN;
  if (!(n >= min && n <= max)) {
    fail(`${what} must be an integer from ${min} to ${max}, got "${v}"`);
  }
  return n;
}

const UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1 << 10,
  kb: 1 << 10,
  kib: 1 << 10,
  m: 1 << 20,
  mb: 1 << 20,
  mib: 1 << 20,
  g: 1 << 30,
  gb: 1 << 30,
  gib: 1 << 30,
};

/** Parses "64MiB", "512k", "4096" to a positive byte count. */
export function parseSize(v: string): number | undefined {
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*([a-z]*)$/i.exec(v.trim());
  if (m === null) return undefined;
  const unit = UNITS[m[2].toLowerCase()];
  if (unit === undefined) return undefined;
  const n = Math.floor(Number(m[1]) * unit);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/** A size, or undefined for "auto" (the engine decides). */
export function autoSize(
  v: string,
  what: string,
  fail: (m: string) => never,
): number | undefined {
  return v === "auto" ? undefined : size(v, what, fail);
}

export function size(
  v: string,
  what: string,
  fail: (m: string) => never,
): number {
  const n = parseSize(v);
  if (n === undefined) {
    fail(
      `${what} must be a positive size such as 4096, 512K or 64MiB, got "${v}"`,
    );
  }
  return n!;
}

/** How a command's parser reads its settings. */
export interface Settings {
  /** The flag, else its non-empty environment variable, else its default. */
  get(name: string): string | undefined;
  /** The value as given, flag else environment, an empty string included. */
  raw(name: string): string | undefined;
  /** The setting as the user named it: `--flag` or `SHALE_FLAG`. */
  label(name: string): string;
  /** Throws the usage error `message`. */
  fail(message: string): never;
}
