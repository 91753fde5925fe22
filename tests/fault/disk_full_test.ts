/**
 * Disk full. The real server runs on a size-limited tmpfs mounted by the test
 * (`mount -t tmpfs -o size=8m`; needs root). A ballast file takes most of
 * the space, writes fill the rest, and then:
 *
 * - writes answer 507 with the JSON error (code disk_full);
 * - reads of everything acknowledged keep working;
 * - `/health` answers 503 and says the disk is full;
 * - once the ballast is deleted, writes succeed again without a restart and
 *   `/health` is ok again;
 * - after a clean restart every acknowledged write is there.
 *
 * Where mounting is not allowed (checked before the tests are registered)
 * the tmpfs test and the regression check it feeds show as ignored, with the
 * reason in their names; the second test drives the same contract through
 * the handler with an engine on FaultyFileSystem (append fails with "No
 * space left on device (os error 28)"), which needs no privileges.
 *
 * @module
 */
import { open } from "../../mod.ts";
import { FaultyFileSystem } from "../../engine/testing/faulty_fs.ts";
import { createHandler } from "../../server/app.ts";
import {
  errorCodeOf,
  keyPath,
  killServer,
  mustStart,
  type ReadyServer,
  removeDir,
  request,
  sleep,
  startServer,
  stopServer,
  Tally,
} from "./_harness.ts";

/*
 * Known bug (reported): engine/fs.ts RealWritable.truncate() cuts the file
 * but leaves the file position where the failed write stopped. Files opened
 * with `truncate: true` (every WAL segment made by createLog, manifests) are
 * not O_APPEND, so the next append after a partial ENOSPC write lands past
 * the end and leaves a hole of zeros; replay then sees "a bad record with
 * valid records after it" and the server refuses to start. Fix: seek to
 * `len` after truncateSync (or open every writable file O_APPEND). Fixed; the
 * restart check is tallied apart and the test at the end asserts it.
 */
const walHole = new Tally("disk full: regression, WAL hole after ENOSPC");

const enc = new TextEncoder();
const dec = new TextDecoder();
const VALUE_BYTES = 8 * 1024;
/** Space left for the server once the ballast is in. */
const HEADROOM_BYTES = 1536 * 1024;

/** Mounts a tmpfs of `size` at `dir`; the reason when it could not. */
async function mountTmpfs(
  dir: string,
  size: string,
): Promise<string | undefined> {
  try {
    const out = await new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (out.success) return undefined;
    return `mount -t tmpfs failed (needs root): ${
      dec.decode(out.stderr).trim().split("\n")[0]
    }`;
  } catch (err) {
    // No mount binary, or --allow-run refused.
    return `cannot run mount: ${err instanceof Error ? err.message : err}`;
  }
}

/**
 * Why the tmpfs tests cannot run here, or undefined: a probe mount, made
 * before the tests are registered so that they can show as ignored.
 */
async function tmpfsUnavailable(): Promise<string | undefined> {
  const probe = await Deno.makeTempDir({ prefix: "shale-tmpfs-probe-" });
  try {
    const why = await mountTmpfs(probe, "1m");
    if (why === undefined) await unmount(probe);
    return why;
  } finally {
    await removeDir(probe);
  }
}

const noTmpfs = await tmpfsUnavailable();
const ignoredWhy = noTmpfs === undefined ? "" : ` -- ignored: ${noTmpfs}`;

async function unmount(dir: string): Promise<void> {
  await new Deno.Command("umount", { args: [dir], stderr: "null" }).output()
    .catch(() => {});
}

function valueFor(key: string): string {
  return `${key}:` + "d".repeat(VALUE_BYTES - key.length - 1);
}

Deno.test({
  name:
    "a full disk answers 507, keeps reads, says so in /health, and recovers without a restart" +
    ignoredWhy,
  ignore: noTmpfs !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const tally = new Tally("disk full (tmpfs)");
    const mnt = await Deno.makeTempDir({ prefix: "shale-diskfull-" });
    const why = await mountTmpfs(mnt, "8m");
    if (why !== undefined) {
      await removeDir(mnt);
      throw new Error(`the probe mount worked, this one did not: ${why}`);
    }
    const dataDir = `${mnt}/data`;
    const acked = new Map<string, string>();
    let server: ReadyServer | undefined;
    const fig: Record<string, unknown> = {};
    try {
      server = await mustStart(dataDir, {
        args: ["--memtable-size", "256K", "--sync", "always"],
      });
      const base = server.base;
      // Ballast: everything but HEADROOM_BYTES of the file system.
      const free = freeBytes(mnt);
      const ballast = `${mnt}/ballast`;
      await Deno.writeFile(
        ballast,
        new Uint8Array(Math.max(0, free - HEADROOM_BYTES)),
      );

      // Fill until the first 507.
      let first507: { status: number; body: string } | undefined;
      let n = 0;
      for (; n < 2000 && first507 === undefined; n++) {
        const key = `fill/${String(n).padStart(5, "0")}`;
        const value = valueFor(key);
        const r = await request(base, "PUT", keyPath(key), { body: value });
        if (r.status === 204) acked.set(key, value);
        else first507 = { status: r.status, body: r.text() };
      }
      fig["writes acknowledged before the disk filled"] = acked.size;
      tally.check(
        first507?.status === 507 && errorCodeOf(first507.body) === "disk_full",
        `the write that found the disk full answered ${first507?.status} ${
          first507?.body.slice(0, 200)
        }`,
      );

      // Take whatever the server's failed background work gives back, so
      // the disk stays full while the next checks run.
      const topUp = () => fillUp(`${mnt}/filler`);
      fig["filler bytes taken after the first 507"] = await topUp();

      // Further writes: 507 with the JSON error (single and batch).
      await topUp();
      // Larger than any slack left in the WAL's last page: a small write
      // may still fit there, and then it rightly succeeds.
      const big = "x".repeat(256 * 1024);
      const again = await request(base, "PUT", keyPath("refused"), {
        body: big,
      });
      tally.check(
        again.status === 507 && errorCodeOf(again.text()) === "disk_full",
        `a later PUT answered ${again.status} ${again.text().slice(0, 200)}`,
      );
      await topUp();
      const batch = await request(base, "POST", "/kv/batch", {
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          ops: [{
            op: "put",
            key: enc.encode("refused-batch").toBase64(),
            value: enc.encode(big).toBase64(),
          }],
        }),
      });
      tally.check(
        batch.status === 507 && errorCodeOf(batch.text()) === "disk_full",
        `a batch answered ${batch.status} ${batch.text().slice(0, 200)}`,
      );

      // /health says so. Background work retries every second and may free
      // space meanwhile (a flush that fits deletes its WAL segment), which
      // rightly clears the state; so take the space again, hit the full disk
      // once more, and ask at once (a few tries).
      let h = await request(base, "GET", "/health");
      for (let i = 0; i < 3 && h.status !== 503; i++) {
        await topUp();
        const key = `probe/${i}`;
        const r = await request(base, "PUT", keyPath(key), { body: big });
        if (r.status === 204) acked.set(key, big); // space was freed: kept
        h = await request(base, "GET", "/health");
      }
      const hText = h.text();
      tally.check(
        h.status === 503 && /disk|space|full/i.test(hText),
        `/health while full answered ${h.status} ${hText.slice(0, 200)}`,
      );
      fig["/health while full"] = `${h.status} ${hText.slice(0, 160)}`;

      // Reads keep working.
      await checkAll(base, acked, tally, "while full");
      const missing = await request(base, "GET", keyPath("refused"));
      tally.check(
        missing.status === 404,
        `a refused write is not visible (GET answered ${missing.status})`,
      );
      const scan = await request(
        base,
        "GET",
        "/kv/range?prefix=fill/&keys_only=true&limit=10000",
      );
      tally.check(
        scan.status === 200 &&
          (scan.json() as { items: unknown[] }).items.length ===
            [...acked.keys()].filter((k) => k.startsWith("fill/")).length,
        `a scan while full answered ${scan.status}`,
      );

      // Free the space: writes work again without a restart.
      await Deno.remove(ballast);
      await Deno.remove(`${mnt}/filler`);
      const t0 = performance.now();
      let recovered = false;
      for (let i = 0; i < 100 && !recovered; i++) {
        const key = `after/${String(i).padStart(3, "0")}`;
        const value = valueFor(key);
        const r = await request(base, "PUT", keyPath(key), { body: value });
        if (r.status === 204) {
          acked.set(key, value);
          recovered = true;
        } else {
          await sleep(100);
        }
      }
      tally.check(
        recovered,
        "writes did not succeed within 10 s of freeing space",
      );
      fig["ms from freeing space to the first accepted write"] = Math.round(
        performance.now() - t0,
      );
      let healthy = false;
      for (let i = 0; i < 50 && !healthy; i++) {
        const r = await request(base, "GET", "/health");
        healthy = r.status === 200;
        if (!healthy) await sleep(100);
      }
      tally.check(healthy, "/health not ok within 5 s of freeing space");
      for (let i = 0; i < 50; i++) {
        const key = `after2/${String(i).padStart(3, "0")}`;
        const value = valueFor(key);
        const r = await request(base, "PUT", keyPath(key), { body: value });
        // The WAL hole also fails the next flush, which reads the segment
        // back: the store turns read-only with "checksum mismatch".
        const t = /checksum mismatch/.test(r.text()) ? walHole : tally;
        if (
          t.check(
            r.status === 204,
            `PUT ${key} after recovery: ${r.status} ${r.text().slice(0, 300)}`,
          )
        ) {
          acked.set(key, value);
        }
      }
      await checkAll(base, acked, tally, "after freeing space");

      // Nothing acknowledged is lost across a restart.
      const st = await stopServer(server);
      server = undefined;
      tally.check(st.code === 0, `clean stop exited ${st.code}`);
      const again2 = await startServer(dataDir, {
        args: ["--memtable-size", "256K"],
      });
      if (
        walHole.check(
          again2.ok,
          () =>
            `restart after the disk-full episode refused: ${
              again2.ok ? "" : again2.output.slice(0, 400)
            }`,
        ) && again2.ok
      ) {
        server = again2.server;
        await checkAll(server.base, acked, tally, "after restart");
      }
      fig["regression, WAL hole after a failed append"] = walHole.failed === 0
        ? "not seen"
        : walHole.failures[0];
      fig["acknowledged writes checked"] = acked.size;
    } finally {
      if (server) await killServer(server);
      await unmount(mnt);
      await removeDir(mnt);
    }
    tally.finish(fig);
  },
});

Deno.test({
  name:
    "disk full through the handler on a faulty file system: 507, reads, /health, recovery",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const tally = new Tally("disk full (fault injection)");
    const dir = await Deno.makeTempDir({ prefix: "shale-diskfull-fs-" });
    const fs = new FaultyFileSystem();
    let full = false;
    fs.failWhen = (op) =>
      full && (op === "append" || op === "open")
        ? new Error("No space left on device (os error 28)")
        : undefined;
    const db = await open(dir, {
      fs,
      background: "inline",
      memtableBytes: 64 << 10,
    });
    const handler = createHandler(db, { log: () => {} });
    const call = async (method: string, path: string, body?: string) => {
      const res = await handler(
        new Request(`http://localhost${path}`, {
          method,
          body,
          headers: body === undefined
            ? {}
            : { "content-length": String(enc.encode(body).length) },
        }),
      );
      return { status: res.status, text: await res.text() };
    };
    try {
      const acked = new Map<string, string>();
      for (let i = 0; i < 40; i++) {
        const key = `k${i}`;
        const r = await call("PUT", keyPath(key), `v${i}`.repeat(100));
        if (tally.check(r.status === 204, `PUT ${key}: ${r.status}`)) {
          acked.set(key, `v${i}`.repeat(100));
        }
      }
      full = true;
      const put = await call("PUT", keyPath("lost"), "x");
      tally.check(
        put.status === 507 && errorCodeOf(put.text) === "disk_full",
        `PUT on a full disk answered ${put.status} ${put.text}`,
      );
      const del = await call("DELETE", keyPath("k1"));
      tally.check(
        del.status === 507 && errorCodeOf(del.text) === "disk_full",
        `DELETE on a full disk answered ${del.status} ${del.text}`,
      );
      const h = await call("GET", "/health");
      tally.check(
        h.status === 503 && /disk full|space/i.test(h.text),
        `/health while full answered ${h.status} ${h.text}`,
      );
      for (const [k, v] of acked) {
        const r = await call("GET", keyPath(k));
        tally.check(
          r.status === 200 && r.text === v,
          `GET ${k} while full: ${r.status}`,
        );
      }
      tally.check(
        (await call("GET", keyPath("lost"))).status === 404,
        "a refused write is invisible",
      );
      full = false;
      const after = await call("PUT", keyPath("after"), "ok");
      tally.check(
        after.status === 204,
        `PUT after space freed: ${after.status} ${after.text}`,
      );
      const h2 = await call("GET", "/health");
      tally.check(
        h2.status === 200,
        `/health after space freed: ${h2.status} ${h2.text}`,
      );
      acked.set("after", "ok");
      handler.close();
      await db.close();
      const again = await open(dir, { background: "inline" });
      try {
        for (const [k, v] of acked) {
          const r = again.get(enc.encode(k));
          tally.check(
            r !== undefined && dec.decode(r.value) === v,
            `${k} after reopen`,
          );
        }
      } finally {
        await again.close();
      }
    } finally {
      await removeDir(dir);
    }
    tally.finish();
  },
});

/** Appends to `path` until the file system is full; returns bytes taken. */
async function fillUp(path: string): Promise<number> {
  const f = await Deno.open(path, { write: true, create: true, append: true });
  const chunk = new Uint8Array(16 * 1024);
  let taken = 0;
  try {
    for (let i = 0; i < 4096; i++) {
      const n = await f.write(chunk.subarray(0, i < 4000 ? chunk.length : 512));
      taken += n;
    }
  } catch {
    // ENOSPC: full
  } finally {
    f.close();
  }
  return taken;
}

async function checkAll(
  base: string,
  acked: Map<string, string>,
  tally: Tally,
  when: string,
): Promise<void> {
  for (const [key, value] of acked) {
    const r = await request(base, "GET", keyPath(key));
    tally.check(
      r.status === 200 && dec.decode(r.body) === value,
      () => `GET ${key} ${when}: ${r.status} ${r.text().slice(0, 100)}`,
    );
  }
}

function freeBytes(dir: string): number {
  const out = new Deno.Command("df", { args: ["-B1", "--output=avail", dir] })
    .outputSync();
  const lines = dec.decode(out.stdout).trim().split("\n");
  return Number(lines[lines.length - 1].trim());
}

Deno.test({
  name: "disk full: the store restarts after a disk-full episode" + ignoredWhy,
  ignore: noTmpfs !== undefined,
  fn() {
    if (walHole.passed + walHole.failed === 0) {
      throw new Error("run the whole file: the tmpfs test feeds this");
    }
    walHole.finish();
  },
});
