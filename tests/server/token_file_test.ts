/**
 * `--token-file`: parsing (every mistake named, never the token), the file
 * mode check, and `shale serve` with it as a real process: clear start-up
 * errors, and SIGHUP reloading the file (a broken file keeps the old one).
 */
import { deepEqual, equal, match, ok, throws } from "node:assert/strict";
import {
  loadTokenFile,
  parseTokenFile,
  TokenFileError,
} from "../../server/token_file.ts";
import { withTempDir } from "../_helpers.ts";
import { mustStart, startServer, stopServer } from "../_shale.ts";

const ADMIN = "admin-token-0123456789";
const SECRET = "scoped-secret-0123456789";
const WINDOWS = Deno.build.os === "windows";

function parse(doc: unknown): ReturnType<typeof parseTokenFile> {
  return parseTokenFile(JSON.stringify(doc), ADMIN);
}

Deno.test("token file: prefix as text or base64, mode read or read-write", () => {
  const tokens = parse({
    tokens: [
      { token: SECRET, prefix: "app/", mode: "read-write" },
      { token: SECRET + "2", prefix_base64: "AAE=", mode: "read" },
      { token: SECRET + "3", prefix: "", mode: "read" },
    ],
  });
  deepEqual(tokens.map((t) => [...t.scope.prefix]), [
    [...new TextEncoder().encode("app/")],
    [0, 1],
    [],
  ]);
  deepEqual(tokens.map((t) => t.scope.writable), [true, false, false]);
  deepEqual(parse({ tokens: [] }), []);
});

Deno.test("token file: every mistake is named by entry, and no message holds a token", () => {
  const entry = { token: SECRET, prefix: "a/", mode: "read" };
  const cases: [unknown, RegExp][] = [
    [[], /must be an object \{"tokens"/],
    [{ tokens: [], extra: 1 }, /unknown field "extra"/],
    [{ tokens: [1] }, /tokens\[0\]: must be an object/],
    [{ tokens: [{ ...entry, scope: "x" }] }, /tokens\[0\]: unknown field/],
    [{ tokens: [{ ...entry, token: "short" }] }, /at least 16 characters/],
    [{ tokens: [{ ...entry, token: SECRET + " x" }] }, /printable ASCII/],
    [{ tokens: [{ ...entry, token: 7 }] }, /printable ASCII/],
    [{ tokens: [{ ...entry, token: ADMIN }] }, /is the admin token/],
    [{ tokens: [entry, entry] }, /tokens\[1\]: token appears twice/],
    [{ tokens: [{ token: SECRET, mode: "read" }] }, /one of "prefix"/],
    [
      { tokens: [{ ...entry, prefix_base64: "AA==" }] },
      /one of "prefix"/,
    ],
    [{ tokens: [{ ...entry, prefix: 3 }] }, /prefix must be a string/],
    [
      { tokens: [{ token: SECRET, prefix_base64: "!!", mode: "read" }] },
      /not valid base64/,
    ],
    [{ tokens: [{ ...entry, mode: "write" }] }, /mode must be "read"/],
  ];
  for (const [doc, want] of cases) {
    throws(() => parse(doc), (err) => {
      ok(err instanceof TokenFileError, String(err));
      match(err.message, want);
      ok(!err.message.includes(SECRET), err.message);
      ok(!err.message.includes(ADMIN), err.message);
      return true;
    });
  }
  throws(() => parseTokenFile("{", ADMIN), /not JSON/);
});

Deno.test({
  name: "token file: refused when group or others may read or write it" +
    (WINDOWS ? " (ignored: no POSIX file modes on Windows)" : ""),
  ignore: WINDOWS,
  fn: () =>
    withTempDir(async (dir) => {
      const path = `${dir}/tokens.json`;
      await Deno.writeTextFile(
        path,
        JSON.stringify({
          tokens: [{ token: SECRET, prefix: "a/", mode: "read" }],
        }),
      );
      for (const mode of [0o644, 0o640, 0o604, 0o620, 0o660]) {
        await Deno.chmod(path, mode);
        throws(
          () => loadTokenFile(path, ADMIN),
          new RegExp(`mode ${mode.toString(8)}\\); run chmod 600`),
        );
      }
      await Deno.chmod(path, 0o600);
      equal(loadTokenFile(path, ADMIN).length, 1);
      await Deno.chmod(path, 0o400);
      equal(loadTokenFile(path, ADMIN).length, 1);
      throws(
        () => loadTokenFile(`${dir}/missing.json`, ADMIN),
        /missing\.json/,
      );
      throws(() => loadTokenFile(dir, ADMIN), /not a regular file/);
    }),
});

Deno.test({
  name:
    "shale serve --token-file: clear start-up errors; SIGHUP reloads, a broken file keeps the old tokens" +
    (WINDOWS ? " (ignored: SIGHUP and file modes are POSIX)" : ""),
  ignore: WINDOWS,
  fn: () =>
    withTempDir(async (dir) => {
      const file = `${dir}/tokens.json`;
      const write = async (doc: unknown, mode = 0o600) => {
        await Deno.writeTextFile(file, JSON.stringify(doc), { mode });
        await Deno.chmod(file, mode);
      };
      const env = { SHALE_AUTH_TOKEN: ADMIN };
      const args = ["--token-file", file];

      // Without the admin token: a usage error (exit 2), nothing opened.
      const noAdmin = await startServer(`${dir}/d0`, { args });
      ok(!noAdmin.ok);
      equal(noAdmin.code, 2);
      match(noAdmin.output, /--token-file needs --auth-token/);

      // A world-readable file: exit 1 naming the file and the fix.
      await write({ tokens: [] }, 0o644);
      const loose = await startServer(`${dir}/d1`, { args, env });
      ok(!loose.ok);
      equal(loose.code, 1);
      match(loose.output, /cannot use --token-file/);
      match(loose.output, /chmod 600/);

      // A bad entry: exit 1 naming the entry, never the token.
      await write({ tokens: [{ token: SECRET, prefix: "a/", mode: "rw" }] });
      const bad = await startServer(`${dir}/d2`, { args, env });
      ok(!bad.ok);
      equal(bad.code, 1);
      match(bad.output, /tokens\[0\]: mode must be/);
      ok(!bad.output.includes(SECRET));

      await write({ tokens: [{ token: SECRET, prefix: "a/", mode: "read" }] });
      const s = await mustStart(`${dir}/d3`, { args, env });
      try {
        const put = (token: string) =>
          fetch(`${s.base}/kv/a/1`, {
            method: "PUT",
            body: "v",
            headers: { authorization: `Bearer ${token}` },
          }).then(async (r) => (await r.body?.cancel(), r.status));
        equal(await put(SECRET), 403);
        const reloaded = (n: number) =>
          s.logs.filter((l) => l.json?.msg === "token file reloaded").length >=
            n;

        await write({
          tokens: [{ token: SECRET, prefix: "a/", mode: "read-write" }],
        });
        s.kill("SIGHUP");
        await until(() => reloaded(1));
        equal(await put(SECRET), 204);

        // A broken file: logged, and the tokens in force stay.
        await write({ tokens: "nope" });
        s.kill("SIGHUP");
        await until(() =>
          s.logs.some((l) => /token file not reloaded/.test(l.text))
        );
        equal(await put(SECRET), 204);
        ok(!s.output().includes(SECRET), "a token was logged");
        ok(!s.output().includes(ADMIN), "the admin token was logged");
      } finally {
        equal((await stopServer(s)).code, 0);
      }
    }),
});

async function until(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}
