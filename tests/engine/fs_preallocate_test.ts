/**
 * `WritableFile.preallocate` on both real ports (engine/fs_deno.ts and
 * engine/fs_node.ts): zeros are written ahead of the append position, the
 * appends that follow overwrite them in place, and truncate drops them.
 */
import assert from "node:assert/strict";
import { DenoFileSystem } from "../../engine/fs_deno.ts";
import { NodeFileSystem } from "../../engine/fs_node.ts";
import type { FileSystem, WritableFile } from "../../engine/fs.ts";
import { enc, withTempDir } from "../_helpers.ts";

const ports: [string, FileSystem][] = [
  ["deno", new DenoFileSystem()],
  ["node", new NodeFileSystem()],
];

const expected = (prefix: string, length: number) => {
  const b = new Uint8Array(length);
  b.set(enc(prefix));
  return b;
};

/** Runs `body` on a new file `a.log` made by `fs` in a temp directory, then closes it. */
function withNewFile(
  fs: FileSystem,
  body: (f: WritableFile, path: string) => Promise<void>,
): Promise<void> {
  return withTempDir(async (dir) => {
    const path = `${dir}/a.log`;
    const f = fs.openWritable(path, { exclusive: true });
    try {
      await body(f, path);
    } finally {
      f.close();
    }
  });
}

for (const [name, fs] of ports) {
  Deno.test(`${name}: preallocated zeros are overwritten in place by the appends that follow`, async () => {
    await withNewFile(fs, async (f, path) => {
      f.append(enc("head"));
      f.preallocate!(100);
      assert.equal(f.size, 4, "the append position stays");
      assert.equal(Deno.statSync(path).size, 100);
      f.append(enc("-one"));
      f.preallocate!(60); // inside the zeros already: no-op
      f.append(enc("-two"));
      assert.equal(f.size, 12);
      assert.deepEqual(
        Deno.readFileSync(path),
        expected("head-one-two", 100),
      );
      await f.sync();
    });
  });

  Deno.test(`${name}: appends past the preallocated end grow the file; truncate drops the zeros`, async () => {
    await withNewFile(fs, async (f, path) => {
      f.append(enc("abc"));
      f.preallocate!(8);
      f.append(enc("defghijkl"));
      assert.equal(Deno.statSync(path).size, 12);
      assert.deepEqual(Deno.readFileSync(path), enc("abcdefghijkl"));
      f.preallocate!(32);
      f.truncate(f.size);
      assert.equal(Deno.statSync(path).size, 12, "the zeros are cut off");
      f.truncate(5);
      f.preallocate!(9);
      f.append(enc("XY"));
      await f.sync();
      assert.deepEqual(Deno.readFileSync(path), expected("abcdeXY", 9));
    });
  });
}

Deno.test("deno: a file reopened for appending is not preallocated (its appends go to the end)", async () => {
  await withTempDir(async (dir) => {
    const fs = new DenoFileSystem();
    const path = `${dir}/a.log`;
    Deno.writeFileSync(path, enc("old"));
    const f = fs.openWritable(path);
    try {
      f.preallocate!(64);
      f.append(enc("+new"));
      await f.sync();
      assert.deepEqual(Deno.readFileSync(path), enc("old+new"));
    } finally {
      f.close();
    }
  });
});
