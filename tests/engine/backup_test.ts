/**
 * engine/backup.ts and engine/restore.ts without HTTP: the pin keeps
 * streamed tables alive through compactions; restore refuses truncated and
 * corrupted archives and a non-empty target, leaving nothing behind.
 */
import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import { type Db, open, verify } from "../../mod.ts";
import { startBackup } from "../../engine/backup.ts";
import { checkBackup, restoreBackup } from "../../engine/restore.ts";
import { CorruptionError, InvalidArgumentError } from "../../engine/errors.ts";
import { parseTarHeader, TAR_BLOCK, tarPadding } from "../../engine/tar.ts";
import {
  concat,
  dec,
  enc,
  SortedModel,
  withSeed,
  withTempDir,
} from "../_helpers.ts";

async function readAll(s: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(s).arrayBuffer());
}

function streamOf(bytes: Uint8Array, chunk = 1000): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(c) {
      if (at >= bytes.length) return c.close();
      c.enqueue(bytes.slice(at, at + chunk));
      at += chunk;
    },
  });
}

function tables(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name)
    .filter((n) => n.endsWith(".sst")).sort();
}

/** Member name -> [offset of its data, size] in a tar archive. */
function members(tar: Uint8Array): Map<string, [number, number]> {
  const out = new Map<string, [number, number]>();
  for (let at = 0; at + TAR_BLOCK <= tar.length;) {
    const block = tar.subarray(at, at + TAR_BLOCK);
    if (block.every((x) => x === 0)) break;
    const h = parseTarHeader(block);
    out.set(h.name, [at + TAR_BLOCK, h.size]);
    at += TAR_BLOCK + h.size + tarPadding(h.size);
  }
  return out;
}

async function contents(db: Db): Promise<[string, string][]> {
  await Promise.resolve();
  return [...db.scan()].map((i) => [dec(i.key), dec(i.value)]);
}

/** A store with tables on several levels and unflushed writes, and its archive. */
async function sampleBackup(
  dir: string,
): Promise<{ tar: Uint8Array; data: [string, string][]; version: number }> {
  const db = await open(dir, {
    sync: "none",
    background: "inline",
    memtableBytes: 16 * 1024,
  });
  try {
    for (let i = 0; i < 600; i++) {
      await db.put(enc(`k${i % 250}`), enc(`v${i}-${"y".repeat(i % 90)}`));
    }
    await db.compactRange();
    for (let i = 0; i < 40; i++) await db.put(enc(`m${i}`), enc(`tail${i}`));
    await db.batch([{ type: "delete", key: enc("k7") }]);
    const backup = startBackup(db);
    const tar = await readAll(backup.stream());
    return { tar, data: await contents(db), version: backup.version };
  } finally {
    await db.close();
  }
}

Deno.test("pinned tables survive compactions until the backup stream ends, then go", async () => {
  await withSeed(1402, async (rng) => {
    await withTempDir(async (tmp) => {
      const db = await open(`${tmp}/db`, {
        sync: "none",
        background: "inline",
        memtableBytes: 16 * 1024,
      });
      const model = new SortedModel();
      try {
        for (let i = 0; i < 800; i++) {
          const k = enc(`key${rng.int(300)}`);
          const v = rng.bytes(rng.int(200));
          model.set(k, v, await db.put(k, v));
        }
        await db.flush();
        const expected = model.clone();
        const backup = startBackup(db);
        const streamed = backup.members.filter((m) => m.name.endsWith(".sst"))
          .map((m) => m.name);
        ok(streamed.length > 1);
        const reader = backup.stream().getReader();
        const parts: Uint8Array[] = [(await reader.read()).value!];

        // Rewrite everything and compact: every pinned table is obsolete.
        for (let i = 0; i < 300; i++) {
          const k = enc(`key${i}`);
          model.set(k, enc(`new${i}`), await db.put(k, enc(`new${i}`)));
        }
        await db.flush();
        await db.compactRange();
        const onDisk = tables(`${tmp}/db`);
        for (const t of streamed) ok(onDisk.includes(t), `${t} is pinned`);

        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          parts.push(value);
        }
        // Obsolete tables are deleted off the main thread
        // (engine/file_deleter.ts); compactUntilIdle waits for that.
        await db.compactUntilIdle();
        const after = tables(`${tmp}/db`);
        ok(
          streamed.every((t) => !after.includes(t)),
          "unpinned when the stream ended",
        );
        const tar = concat(...parts);
        const summary = await restoreBackup(streamOf(tar), `${tmp}/r`);
        equal(summary.version, backup.version);
        deepEqual(verify(`${tmp}/r`).errors, []);
        const r = await open(`${tmp}/r`, { sync: "none" });
        try {
          deepEqual(
            [...r.scan()].map((i) => [dec(i.key), dec(i.value), i.version]),
            expected.scan().map((e) => [dec(e.key), dec(e.value), e.version]),
          );
        } finally {
          await r.close();
        }
      } finally {
        await db.close();
      }
    });
  });
});

Deno.test("a cancelled backup stream (the client went away) releases its pinned tables", async () => {
  await withTempDir(async (tmp) => {
    const db = await open(`${tmp}/db`, {
      sync: "none",
      background: "inline",
      memtableBytes: 16 * 1024,
    });
    try {
      for (let i = 0; i < 400; i++) {
        await db.put(enc(`key${i}`), new Uint8Array(200).fill(i));
      }
      await db.flush();
      const backup = startBackup(db);
      const pinned = backup.members.filter((m) => m.name.endsWith(".sst"))
        .map((m) => m.name);
      ok(pinned.length > 1);
      const reader = backup.stream().getReader();
      await reader.read();
      await db.compactRange();
      ok(pinned.every((t) => tables(`${tmp}/db`).includes(t)), "still pinned");
      await reader.cancel();
      await db.compactUntilIdle(); // the deletions run off the main thread
      const after = tables(`${tmp}/db`);
      ok(pinned.every((t) => !after.includes(t)), "released on cancel");
    } finally {
      await db.close();
    }
  });
});

Deno.test("restore rebuilds tables and the log tail exactly, and the store takes new writes", async () => {
  await withTempDir(async (tmp) => {
    const { tar, data, version } = await sampleBackup(`${tmp}/db`);
    const names = [...members(tar).keys()];
    ok(names.some((n) => n.endsWith(".sst")));
    ok(names.some((n) => n.endsWith(".log")));
    deepEqual(names.slice(-2), ["BACKUP", "BACKUP.sha256"]);
    const summary = await checkBackup(streamOf(tar));
    equal(summary.version, version);
    Deno.mkdirSync(`${tmp}/empty`); // an existing empty directory is fine
    await restoreBackup(streamOf(tar, 777), `${tmp}/empty`);
    const db = await open(`${tmp}/empty`, { sync: "none" });
    try {
      deepEqual(await contents(db), data);
      equal(db.visibleSeq, version);
      ok((await db.put(enc("after"), enc("x"))) > version);
    } finally {
      await db.close();
    }
    deepEqual(verify(`${tmp}/empty`).errors, []);
  });
});

/** Restores `bytes` into tmp/target expecting a refusal; nothing may be left. */
async function refused(tmp: string, bytes: Uint8Array, why: RegExp) {
  const before = [...Deno.readDirSync(tmp)].map((e) => e.name).sort();
  await rejects(restoreBackup(streamOf(bytes), `${tmp}/target`), (err) => {
    ok(err instanceof CorruptionError, String(err));
    ok(why.test(err.message), err.message);
    return true;
  });
  const after = [...Deno.readDirSync(tmp)].map((e) => e.name).sort();
  deepEqual(after, before, "no directory or temporary left behind");
}

Deno.test("restore refuses a truncated backup at any point, leaving nothing", async () => {
  await withTempDir(async (tmp) => {
    const { tar } = await sampleBackup(`${tmp}/db`);
    const m = members(tar);
    const [tableAt] = [...m.entries()].find(([n]) => n.endsWith(".sst"))![1];
    const [sumAt] = m.get("BACKUP")!;
    const cuts = [
      0,
      100, // inside the first header
      tableAt + 10, // inside a table
      sumAt - TAR_BLOCK, // right before the summary's header
      sumAt + 5, // inside the summary
      tar.length - 1024, // the end-of-archive marker is missing
      tar.length - 1, // its last byte is missing
    ];
    for (const cut of cuts) {
      await refused(tmp, tar.subarray(0, cut), /truncated|no BACKUP|lacks/);
    }
  });
});

Deno.test("restore refuses a corrupted backup: any data byte, the summary, a header", async () => {
  await withTempDir(async (tmp) => {
    const { tar } = await sampleBackup(`${tmp}/db`);
    const m = members(tar);
    const flip = (at: number) => {
      const copy = tar.slice();
      copy[at] ^= 0x20;
      return copy;
    };
    for (const [name, [at, size]] of m) {
      if (name === "BACKUP" || name === "BACKUP.sha256") continue;
      await refused(
        tmp,
        flip(at + Math.floor(size / 2)),
        new RegExp(`${name} fails its SHA-256`),
      );
    }
    const [sumAt] = m.get("BACKUP")!;
    await refused(tmp, flip(sumAt + 40), /BACKUP does not match/);
    const [shaAt] = m.get("BACKUP.sha256")!;
    await refused(tmp, flip(shaAt + 3), /BACKUP does not match/);
    await refused(tmp, flip(m.get("CURRENT")![0] - 400), /tar header/);
    await refused(tmp, enc("not a tar file at all".repeat(40)), /tar header/);
  });
});

Deno.test("restore refuses a non-empty target and leaves it untouched", async () => {
  await withTempDir(async (tmp) => {
    const { tar } = await sampleBackup(`${tmp}/db`);
    await rejects(restoreBackup(streamOf(tar), `${tmp}/db`), (err) => {
      ok(err instanceof InvalidArgumentError);
      ok(/not empty/.test(err.message));
      return true;
    });
    const db = await open(`${tmp}/db`, { sync: "none" });
    await db.close();
  });
});
