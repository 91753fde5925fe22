/**
 * `shale backup` and `shale restore` as real processes against a real
 * server: round trip through `shale verify`, exit codes, the token from the
 * environment, and refusals of truncated, corrupted and misplaced restores.
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { open } from "../../mod.ts";
import { parseCommandLine, UsageError } from "../../server/_cli.ts";
import { withTempDir } from "../_helpers.ts";
import { withServer } from "./_helpers.ts";

const MAIN = new URL("../../server/main.ts", import.meta.url).pathname;

async function shale(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; out: string; err: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-net",
      "--allow-env",
      MAIN,
      ...args,
    ],
    // No inherited SHALE_* variables; keep what Deno needs to find its cache.
    env: { ...denoEnv(), NO_COLOR: "1", ...env },
    clearEnv: true,
    stdin: "null",
  }).output();
  const d = new TextDecoder();
  return { code: r.code, out: d.decode(r.stdout), err: d.decode(r.stderr) };
}

function denoEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of ["HOME", "PATH", "DENO_DIR", "XDG_CACHE_HOME", "TMPDIR"]) {
    const v = Deno.env.get(k);
    if (v !== undefined) out[k] = v;
  }
  return out;
}

Deno.test("shale backup then shale restore: the restored directory verifies and holds the data", async () => {
  await withServer({ handler: { authToken: "tok-1" } }, async (s) => {
    const enc = new TextEncoder();
    for (let i = 0; i < 300; i++) {
      await s.db.put(enc.encode(`k${i}`), enc.encode(`v${i}`));
    }
    await s.db.flush();
    const last = await s.db.put(enc.encode("tail"), enc.encode("in the log"));
    await withTempDir(async (tmp) => {
      const noToken = await shale([
        "backup",
        "--url",
        s.base,
        "--out",
        `${tmp}/x.tar`,
      ]);
      equal(noToken.code, 1);
      match(noToken.err, /401/);
      deepEqual([...Deno.readDirSync(tmp)], [], "no file left behind");

      const b = await shale(
        ["backup", "--url", s.base, "--out", `${tmp}/b.tar`],
        { SHALE_AUTH_TOKEN: "tok-1" },
      );
      equal(b.code, 0, b.err);
      match(b.out, new RegExp(`backup ok: version ${last}, `));
      const again = await shale(
        [
          "backup",
          "--url",
          s.base,
          "--out",
          `${tmp}/b.tar`,
          "--token",
          "tok-1",
        ],
      );
      equal(again.code, 1);
      match(again.err, /exists/);

      const r = await shale([
        "restore",
        "--from",
        `${tmp}/b.tar`,
        "--data-dir",
        `${tmp}/data`,
      ]);
      equal(r.code, 0, r.err);
      match(r.out, new RegExp(`restore ok: version ${last}`));
      const v = await shale(["verify", "--data-dir", `${tmp}/data`]);
      equal(v.code, 0, v.out + v.err);
      const db = await open(`${tmp}/data`, { sync: "none" });
      try {
        equal(db.visibleSeq, last);
        equal(db.get(enc.encode("k299"))?.value.length, 4);
        equal(
          new TextDecoder().decode(db.get(enc.encode("tail"))!.value),
          "in the log",
        );
      } finally {
        await db.close();
      }

      const twice = await shale([
        "restore",
        "--from",
        `${tmp}/b.tar`,
        "--data-dir",
        `${tmp}/data`,
      ]);
      equal(twice.code, 1);
      match(twice.err, /not empty/);

      const tar = await Deno.readFile(`${tmp}/b.tar`);
      await Deno.writeFile(`${tmp}/cut.tar`, tar.subarray(0, tar.length - 700));
      const cut = await shale([
        "restore",
        "--from",
        `${tmp}/cut.tar`,
        "--data-dir",
        `${tmp}/cut`,
      ]);
      equal(cut.code, 1);
      match(cut.err, /restore failed: .*truncated/);
      const bad = tar.slice();
      bad[700] ^= 1; // inside the first table's data
      await Deno.writeFile(`${tmp}/bad.tar`, bad);
      const corrupt = await shale([
        "restore",
        "--from",
        `${tmp}/bad.tar`,
        "--data-dir",
        `${tmp}/bad`,
      ]);
      equal(corrupt.code, 1);
      match(corrupt.err, /restore failed: .*SHA-256/);
      const left = [...Deno.readDirSync(tmp)].map((e) => e.name).sort();
      deepEqual(left, ["b.tar", "bad.tar", "cut.tar", "data"]);
    });
  });
});

Deno.test("backup and restore flags: required, env token, URL checked", () => {
  const env: Record<string, string> = { SHALE_AUTH_TOKEN: "envtok" };
  const b = parseCommandLine(
    ["backup", "--url", "http://h:1", "--out", "f"],
    (n) => env[n],
  );
  deepEqual(b, {
    command: "backup",
    url: "http://h:1",
    out: "f",
    token: "envtok",
  });
  const t = parseCommandLine(
    ["backup", "--url", "http://h:1", "--out", "f", "--token", "x"],
    (n) => env[n],
  );
  ok(t.command === "backup" && t.token === "x");
  const r = parseCommandLine(
    ["restore", "--from", "a.tar", "--data-dir", "d"],
    () => undefined,
  );
  deepEqual(r, { command: "restore", from: "a.tar", dataDir: "d" });
  for (
    const args of [
      ["backup", "--out", "f"],
      ["backup", "--url", "ftp://x", "--out", "f"],
      ["restore", "--from", "a.tar"],
    ]
  ) {
    let err: unknown;
    try {
      parseCommandLine(args, () => undefined);
    } catch (e) {
      err = e;
    }
    ok(err instanceof UsageError, args.join(" "));
  }
});
