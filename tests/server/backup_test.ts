/**
 * `GET /admin/backup` through real HTTP: a backup taken while writers keep
 * writing (and flushes and compactions delete tables) restores to exactly
 * the acknowledged writes up to the backup's version; auth; methods.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { open, verify } from "../../mod.ts";
import { restoreBackup } from "../../engine/restore.ts";
import { withSeed, withTempDir } from "../_helpers.ts";
import { b64, errorCode, startServer, withServer } from "./_helpers.ts";

const dec = new TextDecoder();

/** One acknowledged write: a put of `value`, or a delete (value null). */
interface Acked {
  key: string;
  value: string | null;
  version: number;
}

/** The model at `version`: every acknowledged write up to it, in version order. */
function modelAt(acked: Acked[], version: number): Map<string, string> {
  const m = new Map<string, string>();
  for (const w of [...acked].sort((a, b) => a.version - b.version)) {
    if (w.version > version) continue;
    if (w.value === null) m.delete(w.key);
    else m.set(w.key, w.value);
  }
  return m;
}

Deno.test("a backup under concurrent writes, flushes and compactions restores exactly the data at its version", async () => {
  await withSeed(1401, async (rng) => {
    // Small memtables: writes during the backup flush, and compactions
    // delete tables the backup still streams.
    const s = await startServer({ db: { memtableBytes: 32 * 1024 } });
    const acked: Acked[] = [];
    let serial = 0;
    const put = async (key: string) => {
      const value = `v${serial++}-${"x".repeat(rng.int(300))}`;
      const res = await fetch(`${s.base}/kv/${key}`, {
        method: "PUT",
        body: value,
      });
      await res.body?.cancel();
      equal(res.status, 204);
      acked.push({
        key,
        value,
        version: Number(res.headers.get("etag")!.replaceAll('"', "")),
      });
    };
    const del = async (key: string) => {
      const res = await fetch(`${s.base}/kv/batch`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ ops: [{ op: "delete", key: b64(key) }] }),
      });
      const body = await res.json();
      equal(res.status, 200, JSON.stringify(body));
      acked.push({ key, value: null, version: Number(body.version) });
    };
    const write = () => {
      const key = `k${rng.int(400).toString().padStart(4, "0")}`;
      return rng.next() < 0.15 ? del(key) : put(key);
    };
    try {
      for (let i = 0; i < 1500; i++) await write();
      await s.db.flush();

      // Writers run from now until the backup has been read to the end.
      let stop = false;
      const writers = Array.from({ length: 4 }, async () => {
        while (!stop) await write();
      });
      const before = acked.length;
      await new Promise((r) => setTimeout(r, 50));

      const res = await fetch(`${s.base}/admin/backup`);
      equal(res.status, 200);
      equal(res.headers.get("content-type"), "application/x-tar");
      const version = Number(res.headers.get("shale-backup-version"));
      ok(version > 0);
      // Read slowly at first while flushes and a full compaction replace
      // tables the backup pinned (tests/engine/backup_test.ts checks the pin
      // itself without socket buffers in between).
      const reader = res.body!.getReader();
      const chunks: Uint8Array[] = [];
      let n = 0;
      const compacted = (async () => {
        await s.db.flush();
        await s.db.compactRange();
      })();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        chunks.push(value);
        if (n++ < 20) await new Promise((r) => setTimeout(r, 5));
      }
      await compacted;
      stop = true;
      await Promise.all(writers);
      ok(acked.length > before + 50, "writes went on during the backup");
      ok(
        acked.some((w) => w.version > version),
        "some writes were acknowledged after the backup's version",
      );
      ok(
        acked.some((w) => w.version <= version && acked.indexOf(w) >= before),
        "some writes were acknowledged during the backup, before its version",
      );

      await withTempDir(async (tmp) => {
        const file = `${tmp}/b.tar`;
        const data = new Uint8Array(chunks.reduce((a, c) => a + c.length, 0));
        let at = 0;
        for (const c of chunks) data.set(c, at), at += c.length;
        await Deno.writeFile(file, data);
        const dir = `${tmp}/restored`;
        const summary = await restoreBackup(
          (await Deno.open(file)).readable,
          dir,
        );
        equal(summary.version, version);
        const live = new Set(Deno.readDirSync(s.dir).map((e) => e.name));
        ok(
          summary.files.some((f) =>
            f.name.endsWith(".sst") && !live.has(f.name)
          ),
          "the backup holds tables that compaction deleted after it started",
        );
        ok(
          summary.files.some((f) => f.name.endsWith(".log") && f.size > 100),
          "the backup holds a log tail of writes not yet in tables",
        );
        deepEqual(verify(dir).errors, []);
        const db = await open(dir, { sync: "none", background: "inline" });
        try {
          equal(db.visibleSeq, version);
          const got = new Map<string, string>();
          for (const item of db.scan()) {
            got.set(dec.decode(item.key), dec.decode(item.value));
          }
          deepEqual(got, modelAt(acked, version));
        } finally {
          await db.close();
        }
      });
    } finally {
      await s.close();
    }
  });
});

Deno.test("a backup of an empty store restores to an empty store", async () => {
  await withServer({}, async (s) => {
    const res = await fetch(`${s.base}/admin/backup`);
    equal(res.status, 200);
    equal(res.headers.get("shale-backup-version"), "0");
    await withTempDir(async (tmp) => {
      const summary = await restoreBackup(res.body!, `${tmp}/r`);
      equal(summary.version, 0);
      deepEqual(verify(`${tmp}/r`).errors, []);
      const db = await open(`${tmp}/r`, { sync: "none" });
      try {
        deepEqual([...db.scan()], []);
      } finally {
        await db.close();
      }
    });
  });
});

Deno.test("/admin/backup needs the admin token when auth is on", async () => {
  await withServer({ handler: { authToken: "s3cret" } }, async (s) => {
    const none = await fetch(`${s.base}/admin/backup`);
    equal(none.status, 401);
    equal(errorCode(await none.text()), "unauthorized");
    const wrong = await fetch(`${s.base}/admin/backup`, {
      headers: { authorization: "Bearer nope" },
    });
    equal(wrong.status, 401);
    await wrong.body?.cancel();
    const good = await fetch(`${s.base}/admin/backup`, {
      headers: { authorization: "Bearer s3cret" },
    });
    equal(good.status, 200);
    ok((await good.arrayBuffer()).byteLength >= 1024);
  });
});

Deno.test("/admin/backup: other methods are 405, unknown parameters 400", async () => {
  await withServer({}, async (s) => {
    const post = await fetch(`${s.base}/admin/backup`, { method: "POST" });
    equal(post.status, 405);
    equal(post.headers.get("allow"), "GET");
    equal(errorCode(await post.text()), "method_not_allowed");
    const head = await fetch(`${s.base}/admin/backup`, { method: "HEAD" });
    equal(head.status, 405);
    const bad = await fetch(`${s.base}/admin/backup?full=1`);
    equal(bad.status, 400);
    equal(errorCode(await bad.text()), "invalid_parameter");
  });
});
