import assert from "node:assert/strict";
import { open, type ShaleError } from "../../mod.ts";
import { FaultyFileSystem } from "../../engine/testing/faulty_fs.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function enospc(): Error {
  return new Error("No space left on device (os error 28)");
}

Deno.test("a full disk rejects writes with disk_full, keeps reads, and recovers without reopening", async () => {
  const dir = await Deno.makeTempDir();
  const fs = new FaultyFileSystem();
  try {
    const db = await open(dir, { fs, background: "inline" });
    await db.put(enc.encode("kept"), enc.encode("v1"));
    let full = true;
    fs.failWhen = (op, path) =>
      full && op === "append" && path.endsWith(".log") ? enospc() : undefined;
    await assert.rejects(
      db.put(enc.encode("lost"), enc.encode("x")),
      (e: ShaleError) => e.code === "disk_full",
    );
    assert.equal(db.health().ok, false);
    assert.equal(db.health().code, "disk_full");
    assert.equal(dec.decode(db.get(enc.encode("kept"))!.value), "v1");
    assert.equal(db.get(enc.encode("lost")), undefined);

    full = false;
    await db.put(enc.encode("after"), enc.encode("v2"));
    assert.equal(db.health().ok, true);
    await db.close();

    const again = await open(dir, { background: "inline" });
    assert.equal(dec.decode(again.get(enc.encode("kept"))!.value), "v1");
    assert.equal(dec.decode(again.get(enc.encode("after"))!.value), "v2");
    assert.equal(again.get(enc.encode("lost")), undefined);
    await again.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a flush that hits a full disk is retried and loses nothing", async () => {
  const dir = await Deno.makeTempDir();
  const fs = new FaultyFileSystem();
  try {
    const db = await open(dir, {
      fs,
      background: "inline",
      memtableBytes: 16 << 10,
    });
    let full = true;
    fs.failWhen = (op, path) =>
      full && op === "append" && path.endsWith(".sst.tmp")
        ? enospc()
        : undefined;
    const acked: number[] = [];
    let rejected: ShaleError | undefined;
    for (let i = 0; i < 300 && !rejected; i++) {
      try {
        await db.put(enc.encode(`k${i}`), enc.encode(`v${i}`.repeat(20)));
        acked.push(i);
      } catch (e) {
        rejected = e as ShaleError;
      }
    }
    assert.equal(
      rejected?.code,
      "disk_full",
      "writes that must wait for a flush are refused",
    );
    assert.equal(db.health().code, "disk_full");
    full = false;
    await db.compactUntilIdle();
    await db.flush();
    assert.equal(db.health().ok, true);
    await db.put(enc.encode("later"), enc.encode("ok"));
    for (const i of acked) {
      assert.equal(
        dec.decode(db.get(enc.encode(`k${i}`))!.value),
        `v${i}`.repeat(20),
      );
    }
    await db.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a failed fsync turns the store read-only until it is reopened", async () => {
  const dir = await Deno.makeTempDir();
  const fs = new FaultyFileSystem();
  try {
    const db = await open(dir, { fs, background: "inline" });
    await db.put(enc.encode("a"), enc.encode("1"));
    fs.failWhen = (op) =>
      op === "sync" ? new Error("EIO (os error 5)") : undefined;
    await assert.rejects(
      db.put(enc.encode("b"), enc.encode("2")),
      (e: ShaleError) => e.code === "read_only",
    );
    fs.failWhen = undefined;
    await assert.rejects(
      db.put(enc.encode("c"), enc.encode("3")),
      (e: ShaleError) => e.code === "read_only",
    );
    assert.equal(db.health().code, "read_only");
    assert.equal(
      db.get(enc.encode("b")),
      undefined,
      "an unacknowledged write is not visible",
    );
    await db.close();
    const again = await open(dir, { background: "inline" });
    await again.put(enc.encode("c"), enc.encode("3"));
    assert.equal(dec.decode(again.get(enc.encode("a"))!.value), "1");
    await again.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
