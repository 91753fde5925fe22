/**
 * The one acknowledged-write checker of the crash and power-cut tests: after
 * a store is reopened, every key must hold its last acknowledged write or a
 * later one (in flight at the crash), never a value that was not written,
 * with the version its acknowledgement reported.
 *
 * Keys are hex strings, values text; "-" stands for "absent".
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Db } from "../mod.ts";
import { dec, hex } from "./_helpers.ts";

/** What one key went through since the last check. */
export interface KeyHistory {
  /** Durable state before the first of these writes ("-": absent). */
  base: string;
  /** Writes issued, in order, with their acknowledged version if any. */
  writes: { value: string; version?: number }[];
}

/** A key's value and version as read back. */
export interface Found {
  value: string;
  version: number;
}

/** Every entry of `db`: key hex -> value text and version. */
export function readAll(db: Db): Map<string, Found> {
  const found = new Map<string, Found>();
  for (const item of db.scan()) {
    found.set(hex(item.key), {
      value: dec(item.value),
      version: item.version,
    });
  }
  return found;
}

/**
 * Checks what the reopened store holds (`found`) against the write
 * `histories` and the state verified before (`durable`, key hex -> value),
 * then moves `durable` on to what was found. `label` starts every failure
 * message (the cycle or trial); `name` shows a key in them.
 */
export function checkAcknowledged(
  found: Map<string, Found>,
  histories: Map<string, KeyHistory>,
  durable: Map<string, string>,
  label: string,
  name: (keyHex: string) => string = (k) => k,
): void {
  // Nothing invented: every key is one we wrote.
  for (const key of found.keys()) {
    assert.ok(
      histories.has(key) || durable.has(key),
      `${label}: key ${name(key)} was never written`,
    );
  }
  for (const [key, h] of histories) {
    const last = h.writes.findLastIndex((w) => w.version !== undefined);
    // Allowed: the last acknowledged state, or any later write (in flight
    // when the process died); with no ack, the base or any write.
    const allowed = last >= 0
      ? h.writes.slice(last).map((w) => w.value)
      : [h.base, ...h.writes.map((w) => w.value)];
    const got = found.get(key);
    const gotValue = got?.value ?? "-";
    assert.ok(
      allowed.includes(gotValue),
      `${label}: key ${name(key)} holds ${gotValue.slice(0, 24)}, ` +
        `expected one of ${allowed.map((a) => a.slice(0, 24)).join(" | ")}`,
    );
    const acked = last >= 0 ? h.writes[last] : undefined;
    if (got !== undefined && acked !== undefined) {
      if (gotValue === acked.value) {
        assert.equal(got.version, acked.version, `version of ${name(key)}`);
      }
      assert.ok(got.version >= acked.version!, `version of ${name(key)}`);
    }
    if (gotValue === "-") durable.delete(key);
    else durable.set(key, gotValue);
  }
  for (const [key, f] of found) assert.equal(f.value, durable.get(key));
}
