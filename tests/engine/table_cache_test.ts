import assert from "node:assert/strict";
import { open } from "../../mod.ts";
import { NoSyncFileSystem, withTempDir } from "../_helpers.ts";

const enc = new TextEncoder();
const key = (i: number) => enc.encode(`key${String(i).padStart(6, "0")}`);

Deno.test("scans and gets work over many more tables than may be open at once", async () => {
  await withTempDir(async (dir) => {
    const db = await open(dir, {
      fs: new NoSyncFileSystem(),
      background: "inline",
      sync: "none",
      memtableBytes: 8 * 1024,
      // Small enough for more than 10 tables with blocks raw or compressed.
      tableTargetBytes: 2 * 1024,
      baseLevelBytes: 1 << 30,
      maxOpenTables: 3,
    });
    try {
      const N = 3000;
      for (let i = 0; i < N; i += 100) {
        await db.batch(
          Array.from({ length: 100 }, (_, j) => ({
            type: "put" as const,
            key: key(i + j),
            value: enc.encode(`v${i + j}`),
          })),
        );
      }
      await db.compactRange();
      const levels = db.stats().levels as { tables: number }[];
      const tables = levels.reduce((n, l) => n + l.tables, 0);
      assert.ok(tables > 10, `only ${tables} tables`);

      // Two scans at once (forward and reverse) with gets in between: each
      // level iterator holds one table, the cache never closes one in use.
      const fwd = db.scan();
      const rev = db.scan({ reverse: true });
      for (let i = 0; i < N; i++) {
        const a = fwd.next();
        const b = rev.next();
        assert.ok(!a.done && !b.done);
        assert.deepEqual(a.value.key, key(i));
        assert.deepEqual(b.value.key, key(N - 1 - i));
        if (i % 97 === 0) {
          assert.equal(
            new TextDecoder().decode(db.get(key((i * 7) % N))!.value),
            `v${(i * 7) % N}`,
          );
        }
      }
      assert.ok(fwd.next().done && rev.next().done);
      const t = db.stats().tables as { open: number };
      assert.ok(t.open <= 3, `${t.open} tables left open`);
    } finally {
      await db.close();
    }
  });
});

Deno.test("with a memory budget, open tables' index and filter data are charged to the block cache and bounded", async () => {
  await withTempDir(async (dir) => {
    const db = await open(dir, {
      fs: new NoSyncFileSystem(),
      background: "inline",
      sync: "none",
      memoryBudgetBytes: 8 << 20,
      // Tiny tables, tiny cache: many tables' metadata cannot all fit.
      memtableBytes: 8 * 1024,
      tableTargetBytes: 2 * 1024,
      blockCacheBytes: 4 * 1024,
      baseLevelBytes: 1 << 30,
      maxOpenTables: 1000,
    });
    try {
      const N = 3000;
      for (let i = 0; i < N; i += 100) {
        await db.batch(
          Array.from({ length: 100 }, (_, j) => ({
            type: "put" as const,
            key: key(i + j),
            value: enc.encode(`v${i + j}`),
          })),
        );
      }
      await db.compactRange();
      for (let i = 0; i < N; i += 7) {
        assert.equal(
          new TextDecoder().decode(db.get(key(i))!.value),
          `v${i}`,
        );
        const s = db.stats() as {
          tables: { open: number; metaBytes: number };
          blockCache: { bytes: number; reserved: number; capacity: number };
        };
        assert.ok(
          s.tables.metaBytes <= 2 * 1024,
          `${s.tables.metaBytes} B of table metadata over its 2 KiB bound`,
        );
        assert.equal(s.blockCache.reserved, s.tables.metaBytes);
        assert.ok(s.blockCache.bytes + s.blockCache.reserved <= 4 * 1024);
      }
      const levels = db.stats().levels as { tables: number }[];
      const tables = levels.reduce((n, l) => n + l.tables, 0);
      const t = db.stats().tables as { open: number };
      assert.ok(t.open < tables, `${t.open} of ${tables} tables open`);
    } finally {
      await db.close();
    }
  });
});
