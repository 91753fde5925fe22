/**
 * engine/fs_node.ts, the `node:fs` file system Bun uses, run here on Deno
 * (whose `node:fs` is the same API): appends and their truncation, exclusive
 * creation that never follows a symlink, modes, positional reads, removal,
 * and the pid-file lock used where there is no `flock` (on Deno there is no
 * Bun FFI, so that is the lock it takes here; the `flock` lock is checked on
 * Bun by tests/server/binary_test.ts).
 */
import { deepEqual, ok, throws } from "node:assert/strict";
import { NodeFileSystem } from "../../engine/fs_node.ts";
import { LockedError } from "../../engine/errors.ts";

async function withDir(fn: (dir: string) => Promise<void> | void) {
  const dir = await Deno.makeTempDir({ prefix: "shale-fsnode-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const fs = new NodeFileSystem();
const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("appends, truncates back without a hole, syncs, reopens at its size", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/a.log`;
    const w = fs.openWritable(path, { exclusive: true });
    w.append(bytes("hello "));
    w.append(bytes("world"));
    deepEqual(w.size, 11);
    w.truncate(6);
    w.append(bytes("there"));
    await w.sync();
    w.close();
    deepEqual(text(fs.readFile(path)), "hello there");
    const again = fs.openWritable(path);
    deepEqual(again.size, 11);
    again.append(bytes("!"));
    again.close();
    deepEqual(text(fs.readFile(path)), "hello there!");
    const r = fs.openReadable(path);
    deepEqual(r.size, 12);
    deepEqual(text(r.readAt(6, 5)), "there");
    deepEqual(text(r.readAt(10, 100)), "e!"); // short at end of file
    r.close();
    await fs.truncate(path, 5);
    deepEqual(fs.size(path), 5);
  });
});

Deno.test("exclusive creation fails on an existing file or a symlink and never writes through it", async () => {
  await withDir(async (dir) => {
    const target = `${dir}/target`;
    await Deno.writeTextFile(target, "keep");
    await Deno.symlink(target, `${dir}/link`);
    throws(() => fs.openWritable(`${dir}/link`, { exclusive: true }));
    throws(() => fs.openWritable(target, { exclusive: true }));
    deepEqual(await Deno.readTextFile(target), "keep");
  });
});

Deno.test("new files are 0600, new directories 0700; dirMode reads them back", async () => {
  await withDir((dir) => {
    fs.mkdirp(`${dir}/a/b`);
    deepEqual(fs.dirMode(`${dir}/a/b`), 0o700);
    fs.openWritable(`${dir}/a/b/f`, { truncate: true }).close();
    deepEqual(Deno.statSync(`${dir}/a/b/f`).mode! & 0o777, 0o600);
  });
});

Deno.test("a Buffer never leaks out of readFile; remove takes files and empty directories", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/f`, "abc");
    const got = fs.readFile(`${dir}/f`);
    deepEqual(Object.getPrototypeOf(got), Uint8Array.prototype);
    const copy = got.slice(0, 1);
    copy[0] = 0x7a;
    deepEqual(text(got), "abc"); // slice copied
    ok(fs.exists(`${dir}/f`));
    fs.remove(`${dir}/f`);
    ok(!fs.exists(`${dir}/f`));
    fs.remove(`${dir}/f`); // already gone: no error
    fs.mkdirp(`${dir}/empty`);
    fs.remove(`${dir}/empty`);
    ok(!fs.exists(`${dir}/empty`));
    deepEqual(fs.readDir(dir), []);
  });
});

Deno.test("the pid-file lock refuses a live holder and takes over one left by a dead process", async () => {
  await withDir(async (dir) => {
    const held = fs.lock(`${dir}/LOCK`);
    throws(() => fs.lock(`${dir}/LOCK`), LockedError);
    held.release();
    fs.lock(`${dir}/LOCK`).release();
    // A holder that died without releasing: a pid that no longer runs.
    const dead = new Deno.Command("true").spawn();
    await dead.status;
    await Deno.writeTextFile(`${dir}/LOCK.pid`, String(dead.pid));
    const taken = fs.lock(`${dir}/LOCK`);
    deepEqual(await Deno.readTextFile(`${dir}/LOCK.pid`), String(Deno.pid));
    taken.release();
  });
});
