import assert from "node:assert/strict";
import { ByteWriter } from "../../engine/coding.ts";
import { KIND_DELETE, KIND_PUT } from "../../engine/entry.ts";
import { FormatVersionError } from "../../engine/errors.ts";
import { realFs } from "../../engine/fs.ts";
import {
  CLOSE_MARKER_BYTES,
  closeMarker,
  createLog,
  encodeBatch,
  frameRecord,
  LOG_HEADER_SIZE,
  LOG_VERSION,
  logHeader,
  MANIFEST_MAGIC,
  RECORD_BATCH,
  RECORD_EDIT,
  RECORD_HEADER_SIZE,
  WAL_MAGIC,
} from "../../engine/wal.ts";
import { parseLog, readWalEntries } from "../../engine/log_read.ts";
import { WalGroupBuffer } from "../../engine/wal_group.ts";
import { bytes, concat, enc, withTempDir } from "../_helpers.ts";
import {
  closedLogOf,
  corruptionAt,
  entry,
  FILE,
  logOf,
  THREE,
} from "./_log_fixtures.ts";

/** Offsets at which each record of `payloads` starts in logOf(payloads). */
function offsetsOf(payloads: Uint8Array[]): number[] {
  const out: number[] = [];
  let pos = LOG_HEADER_SIZE;
  for (const p of payloads) {
    out.push(pos);
    pos += RECORD_HEADER_SIZE + p.length;
  }
  return out;
}
Deno.test("an empty file parses as an empty log with nothing torn", () => {
  const r = parseLog(new Uint8Array(0), FILE, WAL_MAGIC);
  assert.equal(r.records.length, 0);
  assert.equal(r.tornTail, undefined);
  assert.equal(r.validEnd, 0);
});

Deno.test("a log with only its header has no records", () => {
  const r = parseLog(logOf([]), FILE, WAL_MAGIC);
  assert.equal(r.records.length, 0);
  assert.equal(r.tornTail, undefined);
  assert.equal(r.validEnd, LOG_HEADER_SIZE);
  assert.equal(r.fileSize, LOG_HEADER_SIZE);
});

Deno.test("a log with one record returns its type, payload and offset", () => {
  const r = parseLog(logOf([enc("hello")]), FILE, WAL_MAGIC);
  assert.equal(r.records.length, 1);
  assert.equal(r.records[0].type, RECORD_BATCH);
  assert.equal(r.records[0].offset, LOG_HEADER_SIZE);
  assert.deepEqual(r.records[0].payload, enc("hello"));
  assert.equal(r.validEnd, r.fileSize);
});

Deno.test("a record with an empty payload round trips", () => {
  const r = parseLog(logOf([new Uint8Array(0), enc("x")]), FILE, WAL_MAGIC);
  assert.equal(r.records.length, 2);
  assert.equal(r.records[0].payload.length, 0);
});

Deno.test("many records parse back in order with their offsets", () => {
  const payloads = Array.from({ length: 100 }, (_, i) => enc(`rec-${i}`));
  const r = parseLog(logOf(payloads), FILE, WAL_MAGIC);
  assert.deepEqual(
    r.records.map((x) => new TextDecoder().decode(x.payload)),
    payloads.map((_, i) => `rec-${i}`),
  );
  assert.deepEqual(r.records.map((x) => x.offset), offsetsOf(payloads));
});

Deno.test("a file torn inside its header is an empty log with a torn tail", () => {
  const r = parseLog(logOf([]).subarray(0, 5), FILE, WAL_MAGIC);
  assert.equal(r.records.length, 0);
  assert.equal(r.validEnd, 0);
  assert.deepEqual(r.tornTail?.offset, 0);
  assert.deepEqual(r.tornTail?.bytes, 5);
});

Deno.test("a tail torn inside a record header is reported and the earlier records kept", () => {
  const full = logOf(THREE);
  const last = offsetsOf(THREE)[2];
  for (let cut = 1; cut < RECORD_HEADER_SIZE; cut++) {
    const r = parseLog(full.subarray(0, last + cut), FILE, WAL_MAGIC);
    assert.equal(r.records.length, 2, `cut ${cut}`);
    assert.equal(r.validEnd, last);
    assert.equal(r.tornTail?.offset, last);
    assert.equal(r.tornTail?.bytes, cut);
    assert.match(r.tornTail!.reason, /header runs past the end/);
  }
});

Deno.test("a tail torn inside a record payload is reported and the earlier records kept", () => {
  const full = logOf(THREE);
  const last = offsetsOf(THREE)[2];
  for (let cut = full.length - 1; cut >= last + RECORD_HEADER_SIZE; cut--) {
    const r = parseLog(full.subarray(0, cut), FILE, WAL_MAGIC);
    assert.equal(r.records.length, 2, `cut at ${cut}`);
    assert.equal(r.tornTail?.offset, last);
    assert.equal(r.tornTail?.bytes, cut - last);
    assert.match(r.tornTail!.reason, /runs past the end/);
  }
});

Deno.test("a flipped bit anywhere in the last record is a torn tail", () => {
  const full = logOf(THREE);
  const last = offsetsOf(THREE)[2];
  for (let i = last; i < full.length; i++) {
    for (const bit of [0, 7]) {
      const b = full.slice();
      b[i] ^= 1 << bit;
      const r = parseLog(b, FILE, WAL_MAGIC);
      assert.equal(r.records.length, 2, `byte ${i} bit ${bit}`);
      assert.equal(r.tornTail?.offset, last);
      assert.equal(r.validEnd, last);
    }
  }
});

Deno.test("a flipped bit in a middle record is corruption naming the file and offset", () => {
  const full = logOf(THREE);
  const [, second] = offsetsOf(THREE);
  for (const i of [second, second + 4, second + 8, second + 10]) {
    const b = full.slice();
    b[i] ^= 0x10;
    assert.throws(
      () => parseLog(b, FILE, WAL_MAGIC),
      corruptionAt(FILE, second),
      `flip at ${i}`,
    );
  }
});

Deno.test("a flipped bit in the first record is corruption at offset 8", () => {
  const b = logOf(THREE);
  b[LOG_HEADER_SIZE + RECORD_HEADER_SIZE] ^= 1;
  assert.throws(
    () => parseLog(b, FILE, WAL_MAGIC),
    corruptionAt(FILE, LOG_HEADER_SIZE),
  );
});

Deno.test("the corruption message says how to salvage", () => {
  const b = logOf(THREE);
  b[offsetsOf(THREE)[1] + 9] ^= 1;
  assert.throws(() => parseLog(b, FILE, WAL_MAGIC), /salvage/);
});

Deno.test("salvage skips a corrupt middle record, reports it and keeps the rest", () => {
  const b = logOf(THREE);
  const [, second] = offsetsOf(THREE);
  b[second + 9] ^= 1;
  const r = parseLog(b, FILE, WAL_MAGIC, { salvage: true });
  assert.deepEqual(r.records.map((x) => x.payload), [THREE[0], THREE[2]]);
  assert.equal(r.skipped.length, 1);
  assert.equal(r.skipped[0].offset, second);
  assert.match(r.skipped[0].reason, /checksum/);
  assert.equal(r.tornTail, undefined);
  assert.equal(r.validEnd, b.length);
});

Deno.test("salvage skips several corrupt records and still detects a torn tail", () => {
  const payloads = Array.from({ length: 6 }, (_, i) => enc(`payload ${i}`));
  const offs = offsetsOf(payloads);
  const b = logOf(payloads);
  b[offs[1] + 10] ^= 4;
  b[offs[3] + 10] ^= 4;
  const torn = b.subarray(0, b.length - 3);
  const r = parseLog(torn, FILE, WAL_MAGIC, { salvage: true });
  assert.deepEqual(
    r.records.map((x) => new TextDecoder().decode(x.payload)),
    ["payload 0", "payload 2", "payload 4"],
  );
  assert.deepEqual(r.skipped.map((s) => s.offset), [offs[1], offs[3]]);
  assert.equal(r.tornTail?.offset, offs[5]);
});

Deno.test("zeros after the last record are zero fill (preallocated space), neither torn nor corrupt", () => {
  const full = logOf(THREE);
  const b = concat(full, new Uint8Array(4096));
  const r = parseLog(b, FILE, WAL_MAGIC);
  assert.equal(r.records.length, 3);
  assert.equal(r.validEnd, full.length);
  assert.deepEqual(r.zeroFill, { offset: full.length, bytes: 4096 });
  assert.equal(r.tornTail, undefined);
});

Deno.test("a last record overwritten with zeros reads as zero fill after the one before", () => {
  const b = logOf(THREE);
  const last = offsetsOf(THREE)[2];
  b.fill(0, last);
  const r = parseLog(b, FILE, WAL_MAGIC);
  assert.equal(r.records.length, 2);
  assert.equal(r.zeroFill?.offset, last);
  assert.equal(r.tornTail, undefined);
});

Deno.test("zeros after the last record of a complete log (an older segment) are corruption", () => {
  const full = logOf(THREE);
  const b = concat(full, new Uint8Array(4096));
  assert.throws(
    () => parseLog(b, FILE, WAL_MAGIC, { mayBeTorn: false }),
    corruptionAt(FILE, full.length),
  );
});

Deno.test("a record torn inside the zero fill is a torn tail", () => {
  const full = logOf(THREE);
  const last = offsetsOf(THREE)[2];
  const b = concat(full, new Uint8Array(4096));
  b.fill(0, last + RECORD_HEADER_SIZE + 2, full.length); // payload cut short
  const r = parseLog(b, FILE, WAL_MAGIC);
  assert.equal(r.records.length, 2);
  assert.equal(r.tornTail?.offset, last);
  assert.equal(r.zeroFill, undefined);
});

Deno.test("a zero-filled hole followed by valid records is corruption", () => {
  const b = logOf(THREE);
  const [, second, third] = offsetsOf(THREE);
  b.fill(0, second, third);
  assert.throws(() => parseLog(b, FILE, WAL_MAGIC), corruptionAt(FILE, second));
});

Deno.test("an implausible record length at the tail is a torn tail", () => {
  const b = logOf(THREE);
  const last = offsetsOf(THREE)[2];
  new DataView(b.buffer).setUint32(last + 4, 0xfffffff0, true);
  const r = parseLog(b, FILE, WAL_MAGIC);
  assert.equal(r.records.length, 2);
  assert.match(r.tornTail!.reason, /implausible|past the end/);
});

Deno.test("a wrong magic number is corruption at offset 0", () => {
  const b = logOf(THREE);
  b[0] ^= 0xff;
  assert.throws(() => parseLog(b, FILE, WAL_MAGIC), corruptionAt(FILE, 0));
  assert.throws(
    () => parseLog(logOf(THREE), FILE, MANIFEST_MAGIC),
    /wrong magic/,
    "a WAL is not accepted as a manifest",
  );
});

Deno.test("an unknown format version is corruption at offset 4", () => {
  const b = logOf(THREE);
  b[4] = LOG_VERSION + 1;
  assert.throws(() => parseLog(b, FILE, WAL_MAGIC), corruptionAt(FILE, 4));
  assert.throws(
    () => parseLog(b, FILE, WAL_MAGIC),
    new RegExp(`version ${LOG_VERSION + 1}`),
  );
});

Deno.test("a version 1 log (before key spaces) is refused as an older format, not corruption", () => {
  const b = logOf(THREE);
  b[4] = 1;
  assert.throws(
    () => parseLog(b, FILE, WAL_MAGIC),
    (e: unknown) =>
      e instanceof FormatVersionError && e.code === "unsupported_format" &&
      e.found === 1 && e.expected === LOG_VERSION && e.file === FILE,
  );
});
Deno.test("readWalEntries reads a file written through createLog and appends", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/000001.log`;
    const f = await createLog(realFs, path, WAL_MAGIC);
    const w = new ByteWriter();
    for (let s = 1; s <= 3; s++) {
      const p = new ByteWriter();
      encodeBatch(p, s, [
        entry(enc(`k${s}`), KIND_PUT, enc(`v${s}`)),
        entry(enc(`d${s}`), KIND_DELETE),
      ]);
      frameRecord(w, RECORD_BATCH, p.finish());
    }
    f.append(w.finish());
    await f.sync();
    f.close();
    const { entries, log } = readWalEntries(realFs, path);
    assert.equal(log.records.length, 3);
    assert.deepEqual(entries.map((e) => e.seq), [1, 1, 2, 2, 3, 3]);
    assert.deepEqual(entries[4].key, enc("k3"));
  });
});

Deno.test("readWalEntries rejects a record of a type other than batch", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/000001.log`;
    const w = new ByteWriter();
    w.bytes(logHeader(WAL_MAGIC));
    frameRecord(w, RECORD_EDIT, bytes(1));
    await Deno.writeFile(path, w.finish());
    assert.throws(
      () => readWalEntries(realFs, path),
      corruptionAt(path, LOG_HEADER_SIZE),
    );
  });
});

Deno.test("a torn last record whose value holds a framed record is still a torn tail", () => {
  // A value can be any bytes, including a copy of a shale log. When the
  // write carrying it is torn by a crash, the valid-looking record inside
  // its payload must not turn the torn tail into "corruption in the middle"
  // (which would make open fail after an ordinary crash).
  const inner = new ByteWriter();
  frameRecord(inner, RECORD_BATCH, enc("a record stored as a value"));
  const value = concat(inner.finish(), new Uint8Array(64).fill(0x55));
  const payloads = [enc("acknowledged"), value];
  const full = logOf(payloads);
  const last = offsetsOf(payloads)[1];
  const torn = full.subarray(0, full.length - 10);
  const r = parseLog(torn, FILE, WAL_MAGIC);
  assert.equal(r.records.length, 1);
  assert.equal(r.tornTail?.offset, last);
});
Deno.test("in a cleanly closed log a bad record anywhere is corruption, never a torn tail", () => {
  const b = closedLogOf(THREE);
  const offsets = offsetsOf(THREE);
  for (let i = 0; i < THREE.length; i++) {
    const c = b.slice();
    c[offsets[i] + RECORD_HEADER_SIZE] ^= 1;
    assert.throws(
      () => parseLog(c, FILE, WAL_MAGIC),
      corruptionAt(FILE, offsets[i]),
    );
    const r = parseLog(c, FILE, WAL_MAGIC, { salvage: true });
    assert.equal(r.tornTail, undefined);
    assert.deepEqual(r.skipped.map((s) => s.offset), [offsets[i]]);
    assert.match(r.skipped[0].reason, /closed cleanly/);
    assert.equal(r.records.length, 3, "the others and the marker are kept");
  }
});

Deno.test("a damaged clean-close marker leaves a log whose tail may be torn", () => {
  const b = closedLogOf(THREE);
  b[b.length - 3] ^= 1;
  const r = parseLog(b, FILE, WAL_MAGIC);
  assert.equal(r.closedAt, undefined);
  assert.equal(r.records.length, 3, "every batch is intact");
  assert.equal(r.tornTail?.offset, b.length - CLOSE_MARKER_BYTES);
});

Deno.test("a log known to be complete (mayBeTorn false) has no torn tail: its bad tail is corruption", () => {
  const b = logOf(THREE);
  const last = offsetsOf(THREE)[2];
  const torn = b.subarray(0, b.length - 2);
  assert.equal(parseLog(torn, FILE, WAL_MAGIC).tornTail?.offset, last);
  assert.throws(
    () => parseLog(torn, FILE, WAL_MAGIC, { mayBeTorn: false }),
    (err: unknown) =>
      corruptionAt(FILE, last)(err) &&
      /newer WAL segment/.test((err as Error).message),
  );
});

Deno.test("readWalEntries skips the clean-close marker but refuses one in the middle", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/000001.log`;
    const b = logOf([]);
    const batch = new ByteWriter();
    encodeBatch(batch, 5, [{
      key: enc("k"),
      value: enc("v"),
      seq: 5,
      kind: KIND_PUT,
      encoding: 0,
      expiresAt: 0,
    }]);
    const w = new ByteWriter();
    w.bytes(b);
    frameRecord(w, RECORD_BATCH, batch.finish());
    const withBatch = w.finish();
    await Deno.writeFile(
      path,
      concat(withBatch, closeMarker(withBatch.length, 5)),
    );
    assert.equal(readWalEntries(realFs, path).entries.length, 1);
    // The marker's bytes followed by a record: not the end of the log.
    const m = closeMarker(LOG_HEADER_SIZE, 5);
    await Deno.writeFile(
      path,
      concat(b, m, withBatch.subarray(LOG_HEADER_SIZE)),
    );
    assert.throws(
      () => readWalEntries(realFs, path),
      /unknown WAL record type 3/,
    );
  });
});
/**
 * A WAL as the commit loop writes it: each group is a sync point claiming
 * the size the log had when the group was appended (every earlier group
 * synced), then its batch records; `sizes` are the ops' lengths per group.
 */
function groupedLog(sizes: number[][]): Uint8Array {
  const group = new WalGroupBuffer();
  const parts = [logHeader(WAL_MAGIC)];
  let size = LOG_HEADER_SIZE;
  let seq = 0;
  for (const g of sizes) {
    for (const n of g) group.add(++seq, new Uint8Array(n).fill(0x5a));
    for (const p of group.take(size)) {
      parts.push(p);
      size += p.length;
    }
  }
  return concat(...parts);
}

const SECTOR = 512;

/** The offsets of a log's batch records, and of the one holding `at`. */
function batchesAround(b: Uint8Array, at: number) {
  const batches = parseLog(b, FILE, WAL_MAGIC).records
    .filter((r) => r.type === RECORD_BATCH);
  const holder = batches.filter((r) => r.offset <= at).at(-1)!;
  return { batches, holder };
}

Deno.test("an unwritten sector inside the last group, valid records after it: a torn group, cut at the damaged record", () => {
  const b = groupedLog([[300, 300], [700, 700, 700, 700]]);
  const { batches } = batchesAround(b, 0);
  const s = Math.ceil(batches[3].offset / SECTOR) * SECTOR;
  const { holder } = batchesAround(b, s);
  b.fill(0, s, s + SECTOR); // a sector of the group never reached the disk
  const r = parseLog(b, FILE, WAL_MAGIC);
  assert.equal(r.tornTail?.offset, holder.offset);
  assert.match(r.tornTail!.reason, /fdatasync the crash cut short/);
  assert.deepEqual(
    r.records.filter((x) => x.type === RECORD_BATCH).map((x) => x.offset),
    batches.filter((x) => x.offset < holder.offset).map((x) => x.offset),
  );
});

Deno.test("the same hole with a later group after it is corruption: that group's sync point says the hole was synced", () => {
  const b = groupedLog([[300, 300], [700, 700, 700, 700], [100]]);
  const { batches } = batchesAround(b, 0);
  const s = Math.ceil(batches[3].offset / SECTOR) * SECTOR;
  const { holder } = batchesAround(b, s);
  b.fill(0, s, s + SECTOR);
  assert.throws(
    () => parseLog(b, FILE, WAL_MAGIC),
    corruptionAt(FILE, holder.offset),
  );
});

Deno.test("a flipped byte inside the last group, valid records after it, is corruption (no unwritten sector)", () => {
  const b = groupedLog([[300, 300], [700, 700, 700, 700]]);
  const { batches } = batchesAround(b, 0);
  b[batches[3].offset + 100] ^= 0x01;
  assert.throws(
    () => parseLog(b, FILE, WAL_MAGIC),
    corruptionAt(FILE, batches[3].offset),
  );
});
