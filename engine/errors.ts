/**
 * Error classes for shale. Every error the engine throws on purpose is a
 * {@link ShaleError} with a snake_case `code`, so the HTTP layer can map codes
 * to statuses in one table and pass the code straight into its JSON body.
 *
 * @module
 */

/** Every code a {@link ShaleError} can carry. */
export type ErrorCode =
  | "invalid_argument"
  | "key_too_long"
  | "value_too_large"
  | "precondition_failed"
  | "corruption"
  | "unsupported_format"
  | "closed"
  | "read_only"
  | "disk_full"
  | "locked"
  | "io_error";

/** Base class of every error shale raises deliberately. */
export class ShaleError extends Error {
  /** A stable, machine-readable snake_case code. */
  readonly code: ErrorCode;
  /** An error with `code`; `options.cause` keeps the underlying error. */
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Input the caller should not have sent (bad sizes, bad options). */
export class InvalidArgumentError extends ShaleError {
  /** `code` narrows the kind: a key or value over its size limit. */
  constructor(
    message: string,
    code: "invalid_argument" | "key_too_long" | "value_too_large" =
      "invalid_argument",
  ) {
    super(code, message);
  }
}

/** A conditional write whose expected version did not match. */
export class PreconditionFailedError extends ShaleError {
  /** Index of the first failing condition inside a batch (0 for a single op). */
  readonly index: number;
  /** `index`: the op of the batch whose condition failed. */
  constructor(message: string, index = 0) {
    super("precondition_failed", message);
    this.index = index;
  }
}

/** Stored bytes failed a checksum or a structural check. Names file and offset. */
export class CorruptionError extends ShaleError {
  /** The file holding the bad bytes. */
  readonly file: string;
  /** Where in `file` the bad bytes start. */
  readonly offset: number;
  /** `what` failed at `offset` of `file`; the message names all three. */
  constructor(file: string, offset: number, what: string) {
    super("corruption", `${what} (file ${file}, offset ${offset})`);
    this.file = file;
    this.offset = offset;
  }
}

/**
 * A file in an older on-disk format this build does not read: a data
 * directory written before keys carried their key-space byte (format 1).
 * (An unknown, e.g. newer, version is reported as corruption.)
 * Nothing is changed on disk; the message says what to do.
 */
export class FormatVersionError extends ShaleError {
  /** The file in the older format. */
  readonly file: string;
  /** The format version found in the file. */
  readonly found: number;
  /** The format version this build reads and writes. */
  readonly expected: number;
  /** `file` holds format `found`; this build reads `expected` only. */
  constructor(file: string, found: number, expected: number) {
    super(
      "unsupported_format",
      `${file} is in on-disk format ${found}, written by an older shale; this build reads format ${expected} only (since format 2 every key carries a key-space byte). Start from an empty directory, or copy the data out with the shale version that wrote it (for example with GET /kv/range) and write it into a store in an empty directory`,
    );
    this.file = file;
    this.found = found;
    this.expected = expected;
  }
}

/** The database was closed. */
export class ClosedError extends ShaleError {
  /** "database is closed". */
  constructor() {
    super("closed", "database is closed");
  }
}

/** Writes are refused: a previous write or fsync failed, see `reason`. */
export class ReadOnlyError extends ShaleError {
  /** `reason`: the failure that made the store read-only. */
  constructor(reason: string, options?: ErrorOptions) {
    super("read_only", `database is read-only: ${reason}`, options);
  }
}

/** The disk (or quota) is full; nothing was written. */
export class DiskFullError extends ShaleError {
  /** `options.cause` keeps the OS error. */
  constructor(message: string, options?: ErrorOptions) {
    super("disk_full", message, options);
  }
}

/** Another process holds the data directory's lock. */
export class LockedError extends ShaleError {
  /** `dir`: the data directory whose lock is held. */
  constructor(dir: string) {
    super(
      "locked",
      `data directory ${dir} is locked by another process (or another open store in this one)`,
    );
  }
}

/** Returns true when an OS error means "no space left on device" or quota exceeded. */
export function isDiskFull(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: string }).code;
  return code === "ENOSPC" || code === "EDQUOT" ||
    /No space left on device|os error 28|Disk quota exceeded|os error 122/i
      .test(err.message);
}

/** Wraps an OS error from a write path in the matching ShaleError. */
export function wrapIoError(err: unknown, what: string): ShaleError {
  if (err instanceof ShaleError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  if (isDiskFull(err)) {
    return new DiskFullError(`${what}: disk full (${msg})`, { cause: err });
  }
  return new ShaleError("io_error", `${what}: ${msg}`, { cause: err });
}
