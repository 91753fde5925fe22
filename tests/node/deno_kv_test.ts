/**
 * Node users: the real npm package `@deno/kv` (Deno KV's client for Node)
 * under Node against shale's KV Connect. `deno_kv.mjs` runs under `node`
 * and asserts inside; this test starts shale in-process and spawns it, once
 * with the `accessToken` option and once with `DENO_KV_ACCESS_TOKEN`. Also
 * the REST client `client.ts` under Node (`client.mjs`, on a bundle of it).
 *
 * The package comes from `tests/node/package-lock.json` (`make node-deps`,
 * run by `make test`, does `npm ci` there). Without Node or the installed
 * package the test shows as ignored, naming what is missing.
 */
import assert from "node:assert/strict";
import { withServer } from "../server/_helpers.ts";
import { kvConnectSpace } from "../../server/kv_connect/keyspace.ts";

const DIR = new URL("./", import.meta.url);
const TOKEN = "node-kv-token";

function nodeVersion(): string | undefined {
  try {
    const out = new Deno.Command("node", { args: ["--version"] }).outputSync();
    return out.success
      ? new TextDecoder().decode(out.stdout).trim()
      : undefined;
  } catch {
    return undefined;
  }
}

function packageInstalled(): boolean {
  try {
    Deno.statSync(new URL("node_modules/@deno/kv/package.json", DIR));
    return true;
  } catch {
    return false;
  }
}

const version = nodeVersion();
const missing = version === undefined
  ? "node is not on PATH"
  : !packageInstalled()
  ? "@deno/kv is not installed (run make node-deps)"
  : undefined;

async function runNode(
  url: string,
  env: Record<string, string>,
): Promise<void> {
  const out = await new Deno.Command("node", {
    args: ["deno_kv.mjs", url, TOKEN],
    cwd: DIR,
    env,
    // A hung client (a watch that never yields) fails the test, not the run.
    signal: AbortSignal.timeout(60_000),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assert.ok(
    out.success && stdout.trim().endsWith("ok"),
    `node deno_kv.mjs failed (exit ${out.code}):\n${stdout}\n${stderr}`,
  );
}

Deno.test({
  name:
    `@deno/kv under Node ${
      version ?? ""
    }: set, get, list, atomic, sum, expireIn, watch` +
    (missing ? ` (ignored: ${missing})` : ""),
  ignore: missing !== undefined,
  fn: async () => {
    assert.match(version!, /^v(2[0-9]|[3-9][0-9])\./, "needs Node 20+");
    await withServer({ handler: { authToken: TOKEN } }, async (s) => {
      await runNode(`${s.base}/deno-kv/node-option`, {});
      await runNode(`${s.base}/deno-kv/node-env`, {
        DENO_KV_ACCESS_TOKEN: TOKEN,
      });
      // The writes landed in shale's store, in the databases' own keyspace.
      assert.ok([...kvConnectSpace(s.db).scan({})].length > 0);
    });
  },
});

Deno.test({
  name:
    `client.ts under Node ${
      version ?? ""
    }: binary keys, conditions, TTL, batch, multi-get, paging, errors` +
    (version === undefined ? " (ignored: node is not on PATH)" : ""),
  ignore: version === undefined,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "shale-client-node-" });
    try {
      // Node 20 cannot load TypeScript: bundle client.ts to plain JS first.
      const bundle = `${dir}/client.mjs`;
      const built = await new Deno.Command(Deno.execPath(), {
        args: [
          "bundle",
          "--platform",
          "browser",
          "-o",
          bundle,
          new URL("../../client.ts", import.meta.url).pathname,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.ok(built.success, new TextDecoder().decode(built.stderr));
      await withServer({ handler: { authToken: TOKEN } }, async (s) => {
        const out = await new Deno.Command("node", {
          args: ["client.mjs", bundle, s.base, TOKEN],
          cwd: DIR,
          stdout: "piped",
          stderr: "piped",
          signal: AbortSignal.timeout(60_000),
        }).output();
        const stdout = new TextDecoder().decode(out.stdout);
        assert.ok(
          out.success && stdout.trim().endsWith("ok"),
          `node client.mjs failed (exit ${out.code}):\n${stdout}\n${
            new TextDecoder().decode(out.stderr)
          }`,
        );
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("KV Connect watch streams are application/octet-stream, as @deno/kv requires", async () => {
  // @deno/kv refuses a watch stream of any other type, and its watch then
  // hangs without an error: the framed stream is not one protobuf message.
  await withServer({ handler: { authToken: TOKEN } }, async (s) => {
    const meta = await fetch(`${s.base}/deno-kv/ct`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${TOKEN}`,
        "content-type": "application/json",
      },
      body: JSON.stringify({ supportedVersions: [3] }),
    });
    assert.equal(meta.status, 200);
    const m = await meta.json() as {
      databaseId: string;
      token: string;
      endpoints: { url: string }[];
    };
    const endpoint = new URL(m.endpoints[0].url, `${s.base}/deno-kv/ct`);
    // A Watch message with one key: field 1 (keys) -> WatchKey field 1 (key).
    const key = new Uint8Array([0x02, 0x77, 0x00]); // the string "w"
    const watchKey = [0x0a, key.length, ...key];
    const body = new Uint8Array([0x0a, watchKey.length, ...watchKey]);
    const ac = new AbortController();
    const res = await fetch(`${endpoint}/watch`, {
      method: "POST",
      signal: ac.signal,
      headers: {
        authorization: `Bearer ${m.token}`,
        "content-type": "application/x-protobuf",
        "x-denokv-version": "3",
        "x-denokv-database-id": m.databaseId,
      },
      body,
    });
    try {
      assert.equal(res.status, 200);
      assert.equal(
        res.headers.get("content-type"),
        "application/octet-stream",
      );
    } finally {
      ac.abort();
      await res.body?.cancel().catch(() => {});
    }
  });
});
