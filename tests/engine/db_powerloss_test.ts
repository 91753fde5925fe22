/**
 * Power-loss tests through the fault-injecting file system: the power is cut
 * at a seeded random file operation (inside a WAL append, an fsync, a flush,
 * a manifest edit, a rotation or open itself), every byte not yet fsync'd is
 * dropped, and a reopen with the real file system must hold every
 * acknowledged write and nothing that was never written.
 *
 * FaultyFileSystem does its own durability bookkeeping, so it wraps a file
 * system whose real fsyncs are no-ops: hundreds of trials stay fast.
 */
import assert from "node:assert/strict";
import type { Db } from "../../mod.ts";
import { open, ShaleError } from "../../mod.ts";
import { FaultyFileSystem } from "../../engine/testing/faulty_fs.ts";
import type { FaultOp } from "../../engine/testing/faulty_fs.ts";
import {
  dec,
  enc,
  hex,
  NoSyncFileSystem,
  Rng,
  testSeed,
  withSeed,
  withTempDir,
} from "../_helpers.ts";
import { checkAcknowledged, type KeyHistory, readAll } from "../_acked.ts";

const WRITERS = 4;

/**
 * Records unhandled promise rejections instead of letting them end the test
 * run, so a durability check can finish and then report them.
 */
function captureUnhandled(): { errors: unknown[]; stop(): void } {
  const errors: unknown[] = [];
  const onRejection = (e: PromiseRejectionEvent) => {
    e.preventDefault();
    errors.push(e.reason);
  };
  globalThis.addEventListener("unhandledrejection", onRejection);
  return {
    errors,
    stop: () =>
      globalThis.removeEventListener("unhandledrejection", onRejection),
  };
}

function describeErrors(errors: unknown[]): string {
  return errors.map((e) =>
    e instanceof Error
      ? (e.stack ?? e.message).split("\n").slice(0, 3).join(" / ")
      : String(e)
  ).join("; ");
}

/** One trial: open through a faulty fs that cuts power at operation `cutAt`. */
async function trial(
  dir: string,
  rng: Rng,
  trialNo: number,
  cutAt: number,
  durable: Map<string, string>,
): Promise<{ cutDuringOpen: boolean; acked: number }> {
  const fs = new FaultyFileSystem(new NoSyncFileSystem());
  // The device keeps a random half of the sectors written into the WAL's
  // preallocated space since its last fdatasync (torn groups).
  fs.keepsUnsyncedSector = () => rng.chance(0.5);
  let ops = 0;
  let cut: Promise<number> | undefined;
  fs.failWhen = (_op: FaultOp) => {
    if (++ops === cutAt && !cut) {
      cut = fs.powerCut();
      return new Error("power cut");
    }
    return undefined;
  };
  const keys = new Map<string, KeyHistory>();
  let acked = 0;
  let db: Db | undefined;
  try {
    db = await open(dir, {
      fs,
      background: "inline",
      sync: "always",
      memtableBytes: 4096,
      // Small enough that cuts also land inside manifest roll-overs.
      maxManifestBytes: 1024,
    });
  } catch (err) {
    assert.ok(cut, `open failed without a power cut: ${err}`);
  }
  if (db) {
    const live = db;
    const writer = async (w: number) => {
      for (let n = 0; n < 60 && !fs.dead; n++) {
        const key = `t${w}-${rng.int(12)}`;
        const del = rng.chance(0.15);
        const value = `${trialNo}.${w}.${n}.${"v".repeat(rng.int(200))}`;
        let st = keys.get(hex(enc(key)));
        if (!st) {
          st = { base: durable.get(hex(enc(key))) ?? "-", writes: [] };
          keys.set(hex(enc(key)), st);
        }
        const rec: { value: string; version?: number } = {
          value: del ? "-" : value,
        };
        st.writes.push(rec);
        try {
          rec.version = del
            ? await live.delete(enc(key))
            : await live.put(enc(key), enc(value));
          acked++;
        } catch (err) {
          assert.ok(err instanceof ShaleError, `untyped error: ${err}`);
          return;
        }
      }
    };
    let timer: ReturnType<typeof setTimeout> | undefined;
    const settled = await Promise.race([
      Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w))).then(
        () => true,
      ),
      new Promise<boolean>((r) => timer = setTimeout(() => r(false), 3000)),
    ]);
    clearTimeout(timer);
    assert.ok(
      settled,
      `trial ${trialNo}: writes were still pending 3 s after a power cut at ` +
        `file operation ${cutAt}: a write must resolve or reject, never hang`,
    );
    if (!cut) cut = fs.powerCut();
    await live.close().catch(() => {});
  }
  await cut;

  const after = await open(dir, {
    background: "inline",
    fs: new NoSyncFileSystem(),
  });
  try {
    checkAcknowledged(
      readAll(after),
      keys,
      durable,
      `trial ${trialNo} (cut at op ${cutAt})`,
      (k) => dec(unhexKey(k)),
    );
    // The reopened store takes writes again.
    const seq = await after.put(enc("probe"), enc(String(trialNo)));
    assert.ok(seq > 0);
    await after.delete(enc("probe"));
  } finally {
    await after.close();
  }
  return { cutDuringOpen: db === undefined, acked };
}

function unhexKey(h: string): Uint8Array {
  return Uint8Array.from(h.match(/../g)!.map((x) => parseInt(x, 16)));
}

Deno.test("acknowledged writes survive power cuts at hundreds of random file operations", async () => {
  const unhandled = captureUnhandled();
  try {
    await withSeed(testSeed(0x90e7), (rng) =>
      withTempDir(async (dir) => {
        const durable = new Map<string, string>();
        let acked = 0;
        let cutsDuringOpen = 0;
        const trials = 200;
        for (let t = 0; t < trials; t++) {
          const cutAt = t % 10 === 0 ? rng.range(1, 20) : rng.range(1, 400);
          if (Deno.env.get("SHALE_DEBUG")) {
            console.log("trial", t, "cut at", cutAt);
          }
          const r = await trial(dir, rng, t, cutAt, durable);
          acked += r.acked;
          if (r.cutDuringOpen) {
            cutsDuringOpen++;
          }
        }
        assert.ok(acked > trials * 10, `only ${acked} acknowledged writes`);
        assert.ok(cutsDuringOpen > 0, "some cuts hit open itself");
      }));
  } finally {
    unhandled.stop();
  }
  assert.equal(
    unhandled.errors.length,
    0,
    `the engine left rejected promises unhandled (a server would exit): ${
      describeErrors(unhandled.errors)
    }`,
  );
});

Deno.test("a failure to delete an obsolete WAL after a flush is not an unhandled rejection", async () => {
  class NoRemoveFs extends NoSyncFileSystem {
    override remove(path: string): void {
      if (path.endsWith(".log")) throw new Error(`EIO: cannot unlink ${path}`);
      super.remove(path);
    }
  }
  const unhandled = captureUnhandled();
  try {
    await withTempDir(async (dir) => {
      const db = await open(dir, {
        background: "inline",
        fs: new NoRemoveFs(),
        memtableBytes: 1024,
      });
      try {
        // Enough writes to rotate the memtable: a background flush follows,
        // and nobody awaits it.
        for (let i = 0; i < 30; i++) {
          await db.put(enc(`k${i}`), new Uint8Array(100));
        }
        await new Promise((r) => setTimeout(r, 50));
        assert.equal(db.get(enc("k1"))?.value.length, 100);
      } finally {
        await db.close().catch(() => {});
      }
    });
  } finally {
    unhandled.stop();
  }
  assert.equal(
    unhandled.errors.length,
    0,
    `unhandled: ${describeErrors(unhandled.errors)}`,
  );
});

Deno.test("a failed WAL fsync makes the store read-only until it is reopened", async () => {
  await withTempDir(async (dir) => {
    const fs = new FaultyFileSystem(new NoSyncFileSystem());
    let failSyncs = false;
    fs.failWhen = (op, path) =>
      failSyncs && op === "sync" && path.endsWith(".log")
        ? new Error("EIO: fdatasync failed")
        : undefined;
    const db = await open(dir, { fs, background: "inline" });
    try {
      await db.put(enc("kept"), enc("1"));
      assert.deepEqual(db.health(), { ok: true });
      failSyncs = true;
      await assert.rejects(db.put(enc("lost"), enc("2")), (err: unknown) => {
        assert.ok(err instanceof ShaleError);
        assert.equal(err.code, "read_only");
        return true;
      });
      failSyncs = false; // even a healthy disk is not trusted again
      const h = db.health();
      assert.equal(h.ok, false);
      assert.equal(h.code, "read_only");
      assert.match(h.reason ?? "", /fdatasync/);
      await assert.rejects(
        db.put(enc("after"), enc("3")),
        (err: unknown) => err instanceof ShaleError && err.code === "read_only",
      );
      await assert.rejects(
        db.delete(enc("kept")),
        (err: unknown) => err instanceof ShaleError && err.code === "read_only",
      );
      await assert.rejects(
        db.flush(),
        (err: unknown) => err instanceof ShaleError && err.code === "read_only",
      );
      assert.deepEqual(
        db.get(enc("kept"))?.value,
        enc("1"),
        "reads still work",
      );
      assert.equal(
        db.get(enc("lost")),
        undefined,
        "the failed write is not visible",
      );
    } finally {
      await db.close();
    }
    const again = await open(dir, {
      background: "inline",
      fs: new NoSyncFileSystem(),
    });
    try {
      assert.deepEqual(again.health(), { ok: true });
      assert.deepEqual(again.get(enc("kept"))?.value, enc("1"));
      assert.equal(again.get(enc("after")), undefined);
      await again.put(enc("after"), enc("3"));
      assert.deepEqual(again.get(enc("after"))?.value, enc("3"));
    } finally {
      await again.close();
    }
  });
});

Deno.test("a WAL append failing with a full disk rejects that write with a typed error and writes nothing", async () => {
  await withTempDir(async (dir) => {
    const fs = new FaultyFileSystem(new NoSyncFileSystem());
    let full = false;
    fs.failWhen = (op, path) => {
      if (!full || op !== "append" || !path.endsWith(".log")) return undefined;
      full = false; // one failed append, then space is free again
      return Object.assign(new Error("No space left on device (os error 28)"), {
        code: "ENOSPC",
      });
    };
    const db = await open(dir, { fs, background: "inline" });
    try {
      await db.put(enc("a"), enc("1"));
      full = true;
      await assert.rejects(db.put(enc("b"), enc("2")), (err: unknown) => {
        assert.ok(err instanceof ShaleError, `untyped: ${err}`);
        assert.ok(
          err.code === "disk_full" || err.code === "read_only",
          err.code,
        );
        assert.match(err.message, /disk full|no space/i);
        return true;
      });
      assert.equal(db.get(enc("b")), undefined);
      assert.deepEqual(db.get(enc("a"))?.value, enc("1"));
    } finally {
      await db.close();
    }
    const again = await open(dir, {
      background: "inline",
      fs: new NoSyncFileSystem(),
    });
    try {
      assert.deepEqual(again.get(enc("a"))?.value, enc("1"));
      assert.equal(
        again.get(enc("b")),
        undefined,
        "the rejected write never appears",
      );
    } finally {
      await again.close();
    }
  });
});

Deno.test("a failed fsync during a flush makes the store read-only and loses no acknowledged write", async () => {
  await withTempDir(async (dir) => {
    const fs = new FaultyFileSystem(new NoSyncFileSystem());
    let failTables = false;
    fs.failWhen = (op, path) =>
      failTables && op === "sync" && !path.endsWith(".log")
        ? new Error("EIO: table fsync failed")
        : undefined;
    const db = await open(dir, { fs, background: "inline" });
    try {
      for (let i = 0; i < 20; i++) await db.put(enc(`k${i}`), enc(`v${i}`));
      failTables = true;
      await assert.rejects(db.flush(), ShaleError);
      assert.equal(db.health().ok, false);
      assert.equal(db.health().code, "read_only");
      await assert.rejects(
        db.put(enc("x"), enc("y")),
        (err: unknown) => err instanceof ShaleError && err.code === "read_only",
      );
      assert.deepEqual(db.get(enc("k3"))?.value, enc("v3"));
    } finally {
      await db.close();
    }
    const again = await open(dir, {
      background: "inline",
      fs: new NoSyncFileSystem(),
    });
    try {
      for (let i = 0; i < 20; i++) {
        assert.deepEqual(again.get(enc(`k${i}`))?.value, enc(`v${i}`));
      }
      assert.equal(again.get(enc("x")), undefined);
    } finally {
      await again.close();
    }
  });
});

Deno.test("the power cut undoes creates, renames and removes not made durable by a directory fsync", async () => {
  await withTempDir(async (root) => {
    const fs = new FaultyFileSystem(new NoSyncFileSystem());
    const dir = `${root}/d`;
    fs.mkdirp(dir);
    await fs.syncDir(root);
    const write = async (name: string, text: string) => {
      const f = fs.openWritable(`${dir}/${name}`, { exclusive: true });
      f.append(enc(text));
      await f.sync();
      f.close();
    };
    await write("kept", "kept");
    await write("old", "old target");
    await write("doomed", "doomed");
    await fs.syncDir(dir);
    // Nothing below is followed by a directory fsync.
    await write("new", "never durable");
    await write("tmp", "renamed");
    fs.rename(`${dir}/tmp`, `${dir}/old`);
    fs.remove(`${dir}/doomed`);
    assert.deepEqual(fs.readDir(dir).sort(), ["kept", "new", "old"]);
    await fs.powerCut();
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((e) => e.name).sort(),
      ["doomed", "kept", "old"],
    );
    assert.equal(Deno.readTextFileSync(`${dir}/old`), "old target");
    assert.equal(Deno.readTextFileSync(`${dir}/doomed`), "doomed");
    // A directory never made durable in its parent disappears whole.
    const fs2 = new FaultyFileSystem(new NoSyncFileSystem());
    fs2.mkdirp(`${root}/fresh/sub`);
    await fs2.syncDir(`${root}/fresh`);
    await fs2.powerCut();
    assert.equal(fs2.exists(`${root}/fresh`), false);
  });
});

/** Writes `n` keys (acknowledged), cuts the power, reopens and counts them. */
async function survivors(
  dir: string,
  fs: FaultyFileSystem,
  n: number,
  opts: { memtableBytes?: number } = {},
  onOpen?: () => void,
): Promise<number> {
  const db = await open(dir, { fs, background: "inline", ...opts });
  onOpen?.();
  for (let i = 0; i < n; i++) {
    await db.put(enc(`k${String(i).padStart(4, "0")}`), enc(`v${i}`));
  }
  await fs.powerCut();
  await db.close().catch(() => {});
  const after = await open(dir, { background: "inline" });
  try {
    return after.scan().toArray().length;
  } finally {
    await after.close();
  }
}

Deno.test("acknowledged writes to a data directory that open created survive a power cut", async () => {
  await withTempDir(async (root) => {
    const fs = new FaultyFileSystem(new NoSyncFileSystem());
    const kept = await survivors(`${root}/a/b/data`, fs, 20);
    assert.equal(kept, 20, "the new directory's entry in its parent is synced");
  });
});

Deno.test("the power-cut model catches missing directory fsyncs: without them acknowledged writes are lost", async () => {
  class SkipDirSync extends FaultyFileSystem {
    skip = false;
    override syncDir(dir: string): Promise<void> {
      return this.skip ? Promise.resolve() : super.syncDir(dir);
    }
  }
  await withTempDir(async (root) => {
    const run = async (name: string, skip: boolean): Promise<string> => {
      const fs = new SkipDirSync(new NoSyncFileSystem());
      try {
        const kept = await survivors(
          `${root}/${name}`,
          fs,
          200,
          { memtableBytes: 2048 },
          () => fs.skip = skip,
        );
        return `kept ${kept} of 200`;
      } catch (err) {
        return `reopen failed: ${(err as Error).message}`;
      }
    };
    assert.equal(await run("honest", false), "kept 200 of 200");
    // Every directory fsync after open skipped: new WAL segments and tables
    // vanish at the cut, so writes (or whole tables) are gone.
    const skipped = await run("skipping", true);
    assert.notEqual(skipped, "kept 200 of 200");
    assert.match(skipped, /kept \d+ of 200|missing/);
  });
});
