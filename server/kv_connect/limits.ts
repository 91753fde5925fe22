/**
 * Deno KV's own limits, enforced on the KV Connect data path so that a
 * client cannot make shale do (or hold in memory) more than Deno KV itself
 * would allow. The numbers are Deno's defaults (`ext/kv/config.rs`,
 * `KvConfigBuilder::build`): keys of 2,048 bytes (reads 2,049: range
 * selectors may carry a 0x00/0xff suffix), values of 65,536 bytes, 80 KiB
 * of keys and 800 KiB of keys plus values per atomic write, 10 keys per
 * watch. The counts (100 checks, 1,000 mutations per atomic write) are
 * checked in `atomic.ts`.
 *
 * Shale adds what Deno KV leaves to its hosting: a cap on the bytes of one
 * snapshot read's answer, and caps on open watches per server and per client.
 *
 * @module
 */
import { badRequest, KvConnectError } from "./errors.ts";
import type { AtomicWrite, ReadRange } from "./protobuf.ts";

/** Largest key written, without shale's database prefix. */
export const MAX_WRITE_KEY_BYTES = 2048;
/** Largest key in a read range (a selector may add one byte). */
export const MAX_READ_KEY_BYTES = MAX_WRITE_KEY_BYTES + 1;
/** Largest value. */
export const MAX_VALUE_BYTES = 65536;
/** Most bytes of keys (checks and mutations) in one atomic write. */
export const MAX_TOTAL_KEY_BYTES = 80 * 1024;
/** Most bytes of keys and values in one atomic write. */
export const MAX_TOTAL_MUTATION_BYTES = 800 * 1024;
/** Most keys one watch may cover. */
export const MAX_WATCHED_KEYS = 10;
/**
 * Most bytes of keys and values one snapshot read may answer with. A read
 * that would pass it is refused rather than cut short: fewer entries than
 * asked would end the client's listing early. 1,000 entries of 10 KiB, or a
 * page of 100 maximum-size values, fit.
 */
export const MAX_READ_RESPONSE_BYTES = 8 << 20;
/** Most watch streams open on one server. */
export const MAX_WATCHES = 1024;
/** Most watch streams open from one client (remote address). */
export const MAX_WATCHES_PER_CLIENT = 64;

/** Refuses an atomic write past Deno KV's size limits (414 key, 413 value, 400 totals). */
export function checkWriteLimits(aw: AtomicWrite): void {
  let keyBytes = 0;
  let total = 0;
  aw.checks.forEach((c, i) => {
    checkKey(c.key, MAX_WRITE_KEY_BYTES, `check ${i}`);
    keyBytes += c.key.length;
    total += c.key.length;
  });
  aw.mutations.forEach((m, i) => {
    checkKey(m.key, MAX_WRITE_KEY_BYTES, `mutation ${i}`);
    const valueBytes = m.value?.data.length ?? 0;
    if (valueBytes > MAX_VALUE_BYTES) {
      throw new KvConnectError(
        413,
        `mutation ${i}: value is ${valueBytes} bytes; Deno KV's limit is ${MAX_VALUE_BYTES}`,
      );
    }
    keyBytes += m.key.length;
    total += m.key.length + valueBytes;
  });
  if (keyBytes > MAX_TOTAL_KEY_BYTES) {
    throw badRequest(
      `the keys of one atomic write total ${keyBytes} bytes; the limit is ${MAX_TOTAL_KEY_BYTES}`,
    );
  }
  if (total > MAX_TOTAL_MUTATION_BYTES) {
    throw badRequest(
      `the keys and values of one atomic write total ${total} bytes; the limit is ${MAX_TOTAL_MUTATION_BYTES}`,
    );
  }
}

/** Refuses (414) range keys past Deno KV's read key limit. */
export function checkReadLimits(ranges: ReadRange[]): void {
  ranges.forEach((r, i) => {
    checkKey(r.start, MAX_READ_KEY_BYTES, `range ${i} start`);
    checkKey(r.end, MAX_READ_KEY_BYTES, `range ${i} end`);
  });
}

/** Refuses (414) a watch key past Deno KV's write key limit. */
export function checkWatchKey(key: Uint8Array, what: string): void {
  checkKey(key, MAX_WRITE_KEY_BYTES, what);
}

/** 414, as key_too_long is on every route family (server/errors.ts). */
function checkKey(key: Uint8Array, max: number, what: string): void {
  if (key.length > max) {
    throw new KvConnectError(
      414,
      `${what}: key is ${key.length} bytes; Deno KV's limit is ${max}`,
    );
  }
}
