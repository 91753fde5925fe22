/**
 * Block compression (engine/sstable/codec.ts) and what it changes in tables:
 * the raw-unless-it-shrinks-by-an-eighth rule, the footer version, the
 * block cache holding inflated blocks on both read paths, damage inside a
 * compressed block, and a table written before compression existed.
 */
import assert from "node:assert/strict";
import { BlockCache } from "../../engine/cache.ts";
import { readU32 } from "../../engine/coding.ts";
import { crc32 } from "../../engine/crc.ts";
import { CorruptionError } from "../../engine/errors.ts";
import {
  ENCODING_RAW,
  type Entry,
  type EntryIterator,
  KIND_DELETE,
  KIND_PUT,
} from "../../engine/entry.ts";
import { tablePath } from "../../engine/filename.ts";
import { realFs } from "../../engine/fs.ts";
import { mmapAvailable } from "../../engine/mmap.ts";
import {
  CODEC_NONE,
  CODEC_ZSTD,
  codecOf,
  compressBlock,
  decompressBlock,
  typeByte,
  zstdAvailable,
} from "../../engine/sstable/codec.ts";
import {
  BLOCK_TRAILER_SIZE,
  BLOCK_TYPE_DATA,
  FOOTER_SIZE,
  FOOTER_VERSION_OFFSET,
  TABLE_FORMAT_VERSION,
  TABLE_FORMAT_VERSION_RAW,
  TableFormatError,
} from "../../engine/sstable/format.ts";
import { newTableStats, TableReader } from "../../engine/sstable/reader.ts";
import {
  TableWriter,
  type TableWriterOptions,
} from "../../engine/sstable/writer.ts";
import { dec, enc, prng, withTempDir } from "../_helpers.ts";

const MAP_MODES = mmapAvailable() ? [false, true] : [false];

/** JSON documents, the kind of value zstd shrinks several times. */
function jsonEntries(n: number): Entry[] {
  const out: Entry[] = [];
  for (let i = 0; i < n; i++) {
    const del = i % 9 === 4;
    out.push({
      key: enc(`\x00order:${String(i).padStart(6, "0")}`),
      seq: 10 + i,
      kind: del ? KIND_DELETE : KIND_PUT,
      encoding: ENCODING_RAW,
      expiresAt: 0,
      value: del ? new Uint8Array(0) : enc(JSON.stringify({
        id: i,
        customer: `customer-${i % 50}`,
        items: [{ sku: "A-100", qty: i % 5 }, { sku: "B-200", qty: 1 }],
        status: i % 3 === 0 ? "shipped" : "pending",
      })),
    });
  }
  return out;
}

/** Entries whose values are random bytes: nothing to compress. */
function randomEntries(n: number): Entry[] {
  const rng = prng(7);
  return Array.from({ length: n }, (_, i) => ({
    key: enc(`\x00r${String(i).padStart(5, "0")}`),
    seq: 1 + i,
    kind: KIND_PUT,
    encoding: ENCODING_RAW,
    expiresAt: 0,
    value: Uint8Array.from({ length: 100 }, () => Math.floor(rng() * 256)),
  }));
}

async function write(
  dir: string,
  n: number,
  entries: Entry[],
  opts: TableWriterOptions,
): Promise<{ size: number; compressed: number }> {
  const w = TableWriter.create(realFs, dir, n, opts);
  for (const e of entries) w.add(e);
  const props = await w.finish();
  return { size: props.fileSize, compressed: w.compressedBlocks };
}

function collect(it: EntryIterator): Entry[] {
  const out: Entry[] = [];
  for (it.seekToFirst(); it.valid(); it.next()) {
    const e = it.entry();
    out.push({ ...e, key: e.key.slice(), value: e.value.slice() });
  }
  return out;
}

function assertSame(got: Entry[], want: Entry[], what: string): void {
  assert.equal(got.length, want.length, `${what}: count`);
  got.forEach((e, i) => {
    const w = want[i];
    assert.deepEqual(
      [dec(e.key), e.seq, e.kind, dec(e.value)],
      [dec(w.key), w.seq, w.kind, dec(w.value)],
      `${what}: entry ${i}`,
    );
  });
}

function footerVersion(path: string): number {
  const b = Deno.readFileSync(path);
  return b[b.length - FOOTER_SIZE + FOOTER_VERSION_OFFSET];
}

Deno.test("zstd is present in node:zlib on this runtime", () => {
  assert.ok(zstdAvailable());
});

Deno.test("compressBlock keeps a block raw unless it shrinks by an eighth; decompressBlock restores it", () => {
  const json = enc(JSON.stringify(jsonEntries(40).map((e) => dec(e.value))));
  const packed = compressBlock(json);
  assert.ok(packed !== undefined && packed.length < json.length / 2);
  assert.deepEqual(decompressBlock(packed!, CODEC_ZSTD), json);
  const rng = prng(3);
  const noise = Uint8Array.from({ length: 4096 }, () => rng() * 256);
  assert.equal(compressBlock(noise), undefined);
  assert.equal(decompressBlock(noise, CODEC_NONE), noise);
  // The type byte keeps the block kind in its low half.
  assert.equal(codecOf(typeByte(BLOCK_TYPE_DATA, CODEC_ZSTD)), CODEC_ZSTD);
});

Deno.test("decompressBlock refuses damaged frames, wrong lengths and unknown codecs", () => {
  const raw = enc("abcdefgh".repeat(100));
  const packed = compressBlock(raw)!;
  // The declared raw length (first byte, a one-byte varint here) disagrees.
  const shorter = packed.slice();
  shorter[0] = 0x7f;
  const cases: [Uint8Array, number, RegExp][] = [
    [shorter, CODEC_ZSTD, /does not decompress to 127 bytes/],
    [packed.subarray(0, packed.length - 3), CODEC_ZSTD, /zstd frame/],
    [enc("\x05hello"), CODEC_ZSTD, /zstd frame/],
    [packed, 7, /unknown block codec 7/],
  ];
  for (const [bytes, codec, message] of cases) {
    assert.throws(
      () => decompressBlock(bytes, codec),
      (e) => e instanceof TableFormatError && message.test(e.message),
    );
  }
});

Deno.test("a zstd table of JSON is smaller, says version 3 and reads back the same on every read path", async () => {
  const entries = jsonEntries(3000);
  await withTempDir(async (dir) => {
    const none = await write(dir, 1, entries, { compression: "none" });
    const zstd = await write(dir, 2, entries, { compression: "zstd" });
    assert.equal(none.compressed, 0);
    assert.ok(zstd.compressed > 0);
    assert.ok(
      zstd.size < none.size / 2,
      `zstd ${zstd.size} bytes vs none ${none.size}`,
    );
    assert.equal(footerVersion(tablePath(dir, 1)), TABLE_FORMAT_VERSION_RAW);
    assert.equal(footerVersion(tablePath(dir, 2)), TABLE_FORMAT_VERSION);
    for (const map of MAP_MODES) {
      for (const n of [1, 2]) {
        const t = TableReader.open(
          realFs,
          tablePath(dir, n),
          n,
          new BlockCache(1 << 20),
          { map },
        );
        try {
          assertSame(collect(t.iterator()), entries, `table ${n} map ${map}`);
          for (const e of entries) {
            assert.equal(dec(t.get(e.key, e.seq)!.value), dec(e.value));
          }
        } finally {
          t.close();
        }
      }
    }
  });
});

Deno.test("blocks that do not shrink are stored raw: the table is byte for byte a version 2 table", async () => {
  const entries = randomEntries(500);
  await withTempDir(async (dir) => {
    const none = await write(dir, 1, entries, { compression: "none" });
    const zstd = await write(dir, 2, entries, { compression: "zstd" });
    assert.equal(zstd.compressed, 0);
    assert.equal(zstd.size, none.size);
    assert.deepEqual(
      Deno.readFileSync(tablePath(dir, 2)),
      Deno.readFileSync(tablePath(dir, 1)),
    );
    assert.equal(footerVersion(tablePath(dir, 2)), TABLE_FORMAT_VERSION_RAW);
  });
});

Deno.test("the block cache holds compressed blocks inflated, on pread and on mapped tables", async () => {
  const entries = jsonEntries(2000);
  await withTempDir(async (dir) => {
    await write(dir, 3, entries, { compression: "zstd", blockSize: 4096 });
    for (const map of MAP_MODES) {
      const cache = new BlockCache(64 << 20);
      const stats = newTableStats();
      const t = TableReader.open(realFs, tablePath(dir, 3), 3, cache, {
        map,
        stats,
      });
      try {
        for (const e of entries) t.get(e.key, e.seq);
        const cached = cache.stats();
        // Every data block was inflated once and kept at its raw size.
        assert.equal(cached.blocks, t.blockCount, `map ${map}`);
        assert.ok(
          cached.bytes >= 4096 * (t.blockCount - 1),
          `map ${map}: ${cached.bytes} bytes for ${t.blockCount} blocks`,
        );
        const reads = stats.blockReads;
        const misses = cached.misses;
        for (const e of entries) t.get(e.key, e.seq);
        assert.equal(stats.blockReads, reads, `map ${map}: no new reads`);
        assert.equal(cache.stats().misses, misses, `map ${map}: all hits`);
      } finally {
        t.close();
      }
    }
  });
});

Deno.test("every single flipped byte inside a compressed table is caught as corruption", async () => {
  const entries = jsonEntries(24);
  await withTempDir(async (dir) => {
    const { compressed } = await write(dir, 4, entries, {
      compression: "zstd",
      blockSize: 512,
    });
    assert.ok(compressed >= 3, `${compressed} compressed blocks`);
    const bytes = Deno.readFileSync(tablePath(dir, 4));
    const dst = `${dir}/flip.sst`;
    // Alternate the read path from byte to byte (both see every region).
    for (let pos = 0; pos < bytes.length; pos++) {
      const map = MAP_MODES[pos % MAP_MODES.length];
      {
        const b = bytes.slice();
        b[pos] ^= 1 << (pos % 8);
        Deno.writeFileSync(dst, b);
        let t: TableReader | undefined;
        try {
          t = TableReader.open(realFs, dst, 4, new BlockCache(0), { map });
          collect(t.iterator());
          assert.fail(`flip at ${pos} (map ${map}) went unnoticed`);
        } catch (err) {
          assert.ok(
            err instanceof CorruptionError && err.file === dst,
            `flip at ${pos} (map ${map}): ${err}`,
          );
        } finally {
          t?.close();
        }
      }
    }
  });
});

Deno.test("a damaged frame behind a good checksum is corruption naming the block", async () => {
  const entries = jsonEntries(200);
  await withTempDir(async (dir) => {
    await write(dir, 5, entries, { compression: "zstd", blockSize: 1024 });
    const path = tablePath(dir, 5);
    const b = Deno.readFileSync(path);
    // The first data block starts at 0; its trailer is the first spot whose
    // type byte says zstd data and whose CRC covers everything before it.
    const zstdType = typeByte(BLOCK_TYPE_DATA, CODEC_ZSTD);
    let blockEnd = -1;
    for (let i = 1; i < b.length - BLOCK_TRAILER_SIZE && blockEnd < 0; i++) {
      if (
        b[i] === zstdType &&
        crc32(b.subarray(0, i + 1)) === readU32(b, i + 1)
      ) blockEnd = i;
    }
    assert.ok(blockEnd > 0, "found the first compressed block");
    // Change its declared raw length and fix the CRC, as a writer bug
    // would leave it.
    b[0] ^= 0x01;
    const crc = crc32(b.subarray(0, blockEnd + 1));
    new DataView(b.buffer).setUint32(blockEnd + 1, crc, true);
    Deno.writeFileSync(path, b);
    for (const map of MAP_MODES) {
      const t = TableReader.open(realFs, path, 5, new BlockCache(0), { map });
      try {
        assert.throws(
          () => t.get(entries[0].key, entries[0].seq),
          (e) =>
            e instanceof CorruptionError && e.offset === 0 &&
            /data block malformed: zstd frame/.test(e.message),
        );
      } finally {
        t.close();
      }
    }
  });
});

Deno.test("a table written before compression (format version 2) reads back entry for entry", () => {
  const fixture = new URL("./fixtures/table2/000005.sst", import.meta.url)
    .pathname;
  const want: Entry[] = [];
  for (let i = 0; i < 300; i++) {
    const del = i % 7 === 3;
    want.push({
      key: enc(`\x00user:${String(i).padStart(4, "0")}`),
      seq: 1000 + i,
      kind: del ? KIND_DELETE : KIND_PUT,
      encoding: ENCODING_RAW,
      expiresAt: 0,
      value: del ? new Uint8Array(0) : enc(JSON.stringify({
        id: i,
        name: `user ${i}`,
        tags: ["a", "b", "c"],
        active: i % 2 === 0,
      })),
    });
  }
  assert.equal(footerVersion(fixture), 2);
  for (const map of MAP_MODES) {
    const t = TableReader.open(realFs, fixture, 5, new BlockCache(1 << 20), {
      map,
    });
    try {
      assert.equal(t.props.dataBlocks, 37);
      assertSame(collect(t.iterator()), want, `map ${map}`);
      for (const e of want) {
        assert.equal(dec(t.get(e.key, e.seq)!.value), dec(e.value));
      }
    } finally {
      t.close();
    }
  }
});
