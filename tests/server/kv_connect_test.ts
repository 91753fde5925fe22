/**
 * KV Connect against Deno's real client: each scenario in
 * `kv_connect_clients/` runs as `deno run --unstable-kv` against a shale
 * server on port 0 and asserts inside; protocol edges (auth, malformed
 * input, versions) are checked here directly with fetch.
 */
import assert from "node:assert/strict";
import { type Db, type FileSystem, open } from "../../mod.ts";
import { HeldSyncFs } from "../_held_sync_fs.ts";
import { createHandler, type Handler } from "../../server/app.ts";
import { kvConnectWatchCount } from "../../server/kv_connect/handler.ts";
import {
  dataPrefix,
  join,
  kvConnectSpace,
} from "../../server/kv_connect/keyspace.ts";
import { mustStart, stopServer, unavailable } from "../_shale.ts";
import { selfSignedCert } from "./_helpers.ts";

const TOKEN = "kv-test-token-0123456789";
const CLIENTS = new URL("./kv_connect_clients/", import.meta.url);

interface Shale {
  port: number;
  db: Db;
  url(name?: string): string;
  stop(): Promise<void>;
}

async function startShale(
  dir: string,
  authToken = TOKEN,
  fs?: FileSystem,
): Promise<Shale> {
  // With an injected file system (to hold fsyncs), writes do sync.
  const db = await open(dir, {
    sync: fs ? "always" : "none",
    background: "inline",
    fs,
  });
  const app: Handler = createHandler(db, { authToken, log: () => {} });
  // The real server handler: app.ts routes /deno-kv to KV Connect.
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    app,
  );
  const port = server.addr.port;
  return {
    port,
    db,
    url: (name) => `http://127.0.0.1:${port}/deno-kv${name ? "/" + name : ""}`,
    async stop() {
      await server.shutdown();
      app.close();
      await db.close();
    },
  };
}

async function withShale(
  fn: (s: Shale, dir: string) => Promise<void>,
  fs?: FileSystem,
) {
  const dir = await Deno.makeTempDir({ prefix: "shale-kvc-test-" });
  const s = await startShale(dir, TOKEN, fs);
  try {
    await fn(s, dir);
  } finally {
    await s.stop().catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
}

function clientCommand(
  script: string,
  args: string[],
  token: string,
): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--unstable-kv",
      "-A",
      new URL(script, CLIENTS).pathname,
      ...args,
    ],
    env: { DENO_KV_ACCESS_TOKEN: token, DENO_NO_UPDATE_CHECK: "1" },
    stdout: "piped",
    stderr: "piped",
  });
}

/** Runs a client script to completion; fails with its stderr unless it printed "ok". */
async function runClient(
  script: string,
  args: string[],
  token = TOKEN,
): Promise<string> {
  const out = await clientCommand(script, args, token).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `${script} failed:\n${stdout}\n${stderr}`);
  return stdout.trim();
}

const post = (url: string, body: BodyInit, headers: HeadersInit = {}) =>
  fetch(url, { method: "POST", body, headers });

async function exchange(
  s: Shale,
  name?: string,
): Promise<Record<string, unknown>> {
  const res = await post(s.url(name), '{"supportedVersions":[1,2,3]}', {
    authorization: `Bearer ${TOKEN}`,
  });
  assert.equal(res.status, 200);
  return await res.json();
}

Deno.test("the real client sets, gets, deletes and lists every key and value kind", async () => {
  await withShale(async (s) => {
    assert.equal(await runClient("crud.ts", [s.url("crud")]), "ok");
  });
});

Deno.test("the real client's atomic writes: checks, sum/min/max, expiry, isolation", async () => {
  await withShale(async (s) => {
    assert.equal(
      await runClient("atomic.ts", [s.url("alpha"), s.url("beta")]),
      "ok",
    );
  });
});

Deno.test("watch sends the initial state, then changes from KV Connect and from direct writes", async () => {
  await withShale(async (s) => {
    const child = clientCommand("watch.ts", [s.url("w")], TOKEN).spawn();
    const lines = child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    let seen = "";
    while (!seen.includes("ready\n")) {
      const { value, done } = await lines.read();
      if (done) break;
      seen += value;
    }
    assert.ok(seen.includes("ready"), `watch client output: ${seen}`);
    // Deno's tuple encoding of ["w"]: string tag 0x02, "w", terminator 0x00.
    const key = join(dataPrefix("w"), new Uint8Array([0x02, 0x77, 0x00]));
    const v8 = new Uint8Array([
      0xff,
      0x0f,
      0x22,
      6,
      ...new TextEncoder().encode("direct"),
    ]);
    await kvConnectSpace(s.db).put(key, v8, { encoding: 1 });
    while (true) {
      const { value, done } = await lines.read();
      if (done) break;
      seen += value;
    }
    const stderr = await new Response(child.stderr).text();
    const status = await child.status;
    assert.equal(status.code, 0, `watch client failed:\n${seen}\n${stderr}`);
    assert.match(seen, /ok/);
    // The client went away: its watch is released.
    for (let i = 0; i < 50 && kvConnectWatchCount(s.db) > 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(kvConnectWatchCount(s.db), 0);
  });
});

Deno.test("a wrong access token makes openKv fail with 401", async () => {
  await withShale(async (s) => {
    assert.equal(await runClient("auth.ts", [s.url("x")], "wrong"), "ok");
  });
});

Deno.test("data, database id and versionstamps survive a restart", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shale-kvc-test-" });
  try {
    let s = await startShale(dir);
    const idBefore = (await exchange(s, "keep")).databaseId;
    const stamps = await runClient("persist.ts", [s.url("keep"), "write"]);
    await s.stop();
    s = await startShale(dir);
    try {
      assert.equal((await exchange(s, "keep")).databaseId, idBefore);
      assert.equal(
        await runClient("persist.ts", [s.url("keep"), "read", stamps]),
        "ok",
      );
    } finally {
      await s.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("metadata exchange: versions, ids, endpoints, errors as plain text", async () => {
  await withShale(async (s) => {
    const m = await exchange(s, "meta");
    assert.equal(m.version, 3);
    assert.match(
      String(m.databaseId),
      /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
    );
    assert.deepEqual(m.endpoints, [{
      url: "/deno-kv/meta",
      consistency: "strong",
    }]);
    assert.ok(Date.parse(String(m.expiresAt)) > Date.now());
    assert.equal(typeof m.token, "string");
    assert.notEqual(m.token, TOKEN);
    // Same name, same id; other names, other ids; /deno-kv is "default".
    assert.equal((await exchange(s, "meta")).databaseId, m.databaseId);
    assert.notEqual((await exchange(s, "other")).databaseId, m.databaseId);
    assert.equal(
      (await exchange(s)).databaseId,
      (await exchange(s, "default")).databaseId,
    );
    const auth = { authorization: `Bearer ${TOKEN}` };
    // No body: version 1, absolute endpoint URL.
    const v1 = await (await post(s.url("meta"), "", auth)).json();
    assert.equal(v1.version, 1);
    assert.equal(v1.endpoints[0].url, s.url("meta"));
    const v2 = await post(s.url("meta"), '{"supportedVersions":[1,2]}', auth);
    assert.equal((await v2.json()).version, 2);

    const cases: [RequestInit & { url?: string }, number, RegExp][] = [
      [{ headers: {} }, 401, /missing access token/],
      [
        { headers: { authorization: "Bearer nope" } },
        401,
        /invalid access token/,
      ],
      [
        { headers: auth, body: '{"supportedVersions":[9]}' },
        400,
        /no common protocol version/,
      ],
      [{ headers: auth, body: "{" }, 400, /not valid JSON/],
      [
        { headers: auth, body: '{"supportedVersions":"3"}' },
        400,
        /supportedVersions/,
      ],
      [{ headers: auth, method: "GET" }, 405, /POST/],
      [
        { headers: auth, url: s.url("bad name!") },
        400,
        /invalid database name/,
      ],
      [{ headers: auth, url: s.url("a/b/c") }, 404, /no KV Connect route/],
    ];
    for (const [init, status, re] of cases) {
      const res = await fetch(init.url ?? s.url("meta"), {
        method: "POST",
        ...init,
      });
      const text = await res.text();
      assert.equal(res.status, status, `${JSON.stringify(init)}: ${text}`);
      assert.match(res.headers.get("content-type") ?? "", /^text\/plain/);
      assert.match(text, re);
    }
  });
});

Deno.test("data path refuses bad tokens, ids, versions, protobuf and queues with 4xx", async () => {
  await withShale(async (s) => {
    const m = await exchange(s, "dp");
    const headers = {
      authorization: `Bearer ${m.token}`,
      "x-denokv-version": "3",
      "x-denokv-database-id": String(m.databaseId),
      "content-type": "application/x-protobuf",
    };
    const url = (method: string) => `${s.url("dp")}/${method}`;
    // An empty SnapshotRead is valid and reads nothing.
    const ok = await post(url("snapshot_read"), new Uint8Array(0), headers);
    assert.equal(ok.status, 200);
    assert.deepEqual(
      new Uint8Array(await ok.arrayBuffer()),
      new Uint8Array([0x20, 1, 0x40, 1]),
    );
    // Watch { keys: [WatchKey { key: 5000 bytes }] }
    const longKey = [0x0a, 0x88, 0x27, ...new Uint8Array(5000).fill(2)];
    const longWatch = new Uint8Array([0x0a, 0x8b, 0x27, ...longKey]);
    // Two ReadRanges of limit 1000 each.
    const twoBigRanges = new Uint8Array([
      ...[0x0a, 3, 0x18, 0xe8, 0x07],
      ...[0x0a, 3, 0x18, 0xe8, 0x07],
    ]);
    // AtomicWrite with one Enqueue (field 3, empty message).
    const enqueue = new Uint8Array([0x1a, 0]);
    const cases: [
      string,
      Record<string, string>,
      Uint8Array<ArrayBuffer>,
      number,
      RegExp,
    ][] = [
      [
        "snapshot_read",
        { ...headers, authorization: "Bearer x" },
        new Uint8Array(0),
        401,
        /invalid data-path token/,
      ],
      [
        "snapshot_read",
        { ...headers, "x-denokv-database-id": crypto.randomUUID() },
        new Uint8Array(0),
        400,
        /does not match/,
      ],
      [
        "snapshot_read",
        { ...headers, "x-denokv-version": "9" },
        new Uint8Array(0),
        400,
        /x-denokv-version/,
      ],
      [
        "snapshot_read",
        headers,
        new Uint8Array([0x0a, 5, 1]),
        400,
        /malformed protobuf/,
      ],
      [
        "snapshot_read",
        headers,
        new Uint8Array([0x0a, 0]),
        400,
        /limit must be/,
      ],
      [
        "atomic_write",
        headers,
        enqueue,
        400,
        /queues are not part of KV Connect/,
      ],
      ["watch", headers, new Uint8Array(0), 400, /at least one key/],
      // key_too_long: 414 on every route family (server/errors.ts).
      ["watch", headers, longWatch, 414, /Deno KV.s limit is 2048/],
      ["snapshot_read", headers, twoBigRanges, 400, /at most 1000/],
      ["nope", headers, new Uint8Array(0), 404, /unknown KV Connect method/],
    ];
    for (const [method, h, body, status, re] of cases) {
      const res = await post(url(method), body, h);
      const text = await res.text();
      assert.equal(res.status, status, `${method}: ${text}`);
      assert.match(text, re);
    }
    // A database nobody exchanged metadata for yet.
    const res = await post(
      `${s.url("never")}/snapshot_read`,
      new Uint8Array(0),
      {
        ...headers,
        authorization: "Bearer whatever",
      },
    );
    assert.equal(res.status, 401);
    await res.body?.cancel();
  });
});

/** A length-delimited protobuf field (payloads under 128 bytes). */
const field = (n: number, bytes: Uint8Array | number[]) =>
  new Uint8Array([(n << 3) | 2, bytes.length, ...bytes]);
const cat = (...parts: Uint8Array[]) =>
  new Uint8Array(parts.flatMap((p) => [...p]));

Deno.test("a failed atomic write names every failing check and writes nothing", async () => {
  await withShale(async (s) => {
    const m = await exchange(s, "chk");
    const headers = {
      authorization: `Bearer ${m.token}`,
      "x-denokv-version": "3",
      "x-denokv-database-id": String(m.databaseId),
    };
    const k1 = [0x02, 0x61, 0x00]; // ["a"]
    const k2 = [0x02, 0x62, 0x00]; // ["b"]
    const seq = await kvConnectSpace(s.db).put(
      join(dataPrefix("chk"), new Uint8Array(k1)),
      new Uint8Array([1]),
    );
    const stale = new Uint8Array(10);
    new DataView(stale.buffer).setBigUint64(0, BigInt(seq - 1));
    const current = new Uint8Array(10);
    new DataView(current.buffer).setBigUint64(0, BigInt(seq));
    const check = (key: number[], vs: Uint8Array) =>
      field(1, cat(field(1, key), vs.length ? field(2, vs) : new Uint8Array()));
    const set = field(
      2,
      cat(
        field(1, k2),
        field(2, cat(field(1, [7]), new Uint8Array([0x10, 3]))), // VE_BYTES
        new Uint8Array([0x18, 1]), // M_SET
      ),
    );
    const write = (...checks: Uint8Array[]) =>
      post(`${s.url("chk")}/atomic_write`, cat(...checks, set), headers);
    // stale, passing (absent), stale again: checks 0 and 2 fail.
    let res = await write(
      check(k1, stale),
      check(k2, new Uint8Array()),
      check(k1, stale),
    );
    assert.equal(res.status, 200);
    // status AW_CHECK_FAILURE, failed_checks [0, 2] packed
    assert.deepEqual(
      new Uint8Array(await res.arrayBuffer()),
      new Uint8Array([0x08, 2, 0x22, 2, 0, 2]),
    );
    assert.equal(
      kvConnectSpace(s.db).get(join(dataPrefix("chk"), new Uint8Array(k2))),
      undefined,
    );
    // A versionstamp shale never issues fails without touching the engine.
    const odd = current.slice();
    odd[9] = 1;
    res = await write(check(k1, current), check(k1, odd));
    assert.deepEqual(
      new Uint8Array(await res.arrayBuffer()),
      new Uint8Array([0x08, 2, 0x22, 1, 1]),
    );
    // All checks pass: success with the commit's versionstamp.
    res = await write(check(k1, current), check(k2, new Uint8Array()));
    const out = new Uint8Array(await res.arrayBuffer());
    assert.deepEqual(out.subarray(0, 4), new Uint8Array([0x08, 1, 0x12, 10]));
    const written = kvConnectSpace(s.db).get(
      join(dataPrefix("chk"), new Uint8Array(k2)),
    );
    assert.equal(written?.version, seq + 1);
    assert.equal(written?.encoding, 0); // VE_BYTES is stored as raw bytes
  });
});

Deno.test("a failed KV Connect check that lost to an in-flight write waits until it is visible", async () => {
  const fs = new HeldSyncFs();
  await withShale(async (s) => {
    const m = await exchange(s, "held");
    const headers = {
      authorization: `Bearer ${m.token}`,
      "x-denokv-version": "3",
      "x-denokv-database-id": String(m.databaseId),
    };
    const k1 = [0x02, 0x61, 0x00]; // ["a"]
    const full = join(dataPrefix("held"), new Uint8Array(k1));
    fs.hold();
    // In flight: accepted, its fsync held, not visible.
    const a = kvConnectSpace(s.db).put(full, new Uint8Array([1]));
    await fs.reached;
    // Check ["a"] is absent: it fails because of a, so it must wait for a.
    const absent = field(1, field(1, k1));
    let answered = false;
    const res = post(`${s.url("held")}/atomic_write`, absent, headers).then(
      async (r) => {
        answered = true;
        return {
          body: new Uint8Array(await r.arrayBuffer()),
          seen: kvConnectSpace(s.db).get(full)?.version,
        };
      },
    );
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(answered, false, "check failure answered before a is visible");
    fs.release();
    const seq = await a;
    const out = await res;
    // AW_CHECK_FAILURE, failed check 0; a read right after sees a.
    assert.deepEqual(out.body, new Uint8Array([0x08, 2, 0x22, 1, 0]));
    assert.equal(out.seen, seq);
  }, fs).finally(() => fs.release());
});

Deno.test("KV Connect data lives in its own key space: /kv/ never sees it, and it never sees /kv/ keys", async () => {
  await withShale(async (s) => {
    const rest = (path: string, init: RequestInit = {}) =>
      fetch(`http://127.0.0.1:${s.port}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${TOKEN}` },
      });
    // Keys that spelled database "iso"'s id and its key ["a"] when KV
    // Connect shared the /kv/ key space under the byte 0x00.
    for (const key of ["%00%02iso%00", "%00%01iso%00%02a%00", "%01iso"]) {
      const res = await rest(`/kv/${key}`, { method: "PUT", body: "rest" });
      assert.equal(res.status, 204, `${key}: ${await res.text()}`);
    }
    const restKeys = async () => {
      const res = await rest("/kv/range");
      assert.equal(res.status, 200);
      return ((await res.json()).items as { key: string }[]).map((i) =>
        Uint8Array.fromBase64(i.key)
      );
    };
    const before = await restKeys();
    assert.equal(before.length, 3);
    assert.equal(await runClient("isolation.ts", [s.url("iso")]), "ok");
    // The client's database id and its key ["b"] stay out of /kv/range.
    assert.deepEqual(await restKeys(), before);
    const internal = [...kvConnectSpace(s.db).scan()].map((e) => e.key);
    assert.equal(internal.length, 2, 'the id of iso and its key ["b"]');
    assert.equal((await rest("/kv/%00%01iso%00%02a%00")).status, 200);
  });
});

Deno.test("set with a key versionstamp suffix: the key ends with the commit's versionstamp", async () => {
  await withShale(async (s) => {
    assert.equal(await runClient("versionstamp.ts", [s.url("vs")]), "ok");
  });
});

// KV Connect on a shale process running on Bun (and the binary): the
// metadata exchange over HTTP/1.1, and Deno's own KV client, which speaks
// only HTTP/2 with prior knowledge; Bun's listener hands such connections to
// node:http2 on the same port (server/serve_bun.ts).
for (const rt of ["bun", "binary"] as const) {
  const why = unavailable(rt);
  Deno.test({
    name:
      `[${rt}] KV Connect metadata exchange over HTTP/1.1 on a shale process${
        why ? ` (ignored: ${why})` : ""
      }`,
    ignore: why !== undefined,
    async fn() {
      const dir = await Deno.makeTempDir({ prefix: "shale-kvc-proc-" });
      const server = await mustStart(dir, {
        runtime: rt,
        args: ["--auth-token", TOKEN, "--sync", "none"],
      });
      try {
        const url = `${server.base}/deno-kv/proc`;
        const ok = await post(url, '{"supportedVersions":[1,2,3]}', {
          authorization: `Bearer ${TOKEN}`,
        });
        assert.equal(ok.status, 200);
        const m = await ok.json();
        assert.equal(m.version, 3);
        assert.match(String(m.databaseId), /^[0-9a-f-]{36}$/);
        const denied = await post(url, '{"supportedVersions":[3]}', {
          authorization: "Bearer wrong",
        });
        assert.equal(denied.status, 401);
        await denied.body?.cancel();
      } finally {
        const status = await stopServer(server);
        assert.equal(status.code, 0, server.output());
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
  Deno.test({
    name:
      `[${rt}] Deno's real KV client (HTTP/2) against a shale process: CRUD, atomic writes, a watch fed by a second client${
        why ? ` (ignored: ${why})` : ""
      }`,
    ignore: why !== undefined,
    async fn() {
      const dir = await Deno.makeTempDir({ prefix: "shale-kvc-proc-" });
      const server = await mustStart(dir, {
        runtime: rt,
        args: ["--auth-token", TOKEN, "--sync", "none"],
      });
      const url = (name: string) => `${server.base}/deno-kv/${name}`;
      try {
        assert.equal(await runClient("crud.ts", [url("crud")]), "ok");
        assert.equal(
          await runClient("atomic.ts", [url("alpha"), url("beta")]),
          "ok",
        );
        const child = clientCommand("watch.ts", [url("w")], TOKEN).spawn();
        const lines = child.stdout.pipeThrough(new TextDecoderStream())
          .getReader();
        let seen = "";
        while (!seen.includes("ready\n")) {
          const { value, done } = await lines.read();
          if (done) break;
          seen += value;
        }
        assert.ok(seen.includes("ready"), `watch client output: ${seen}`);
        // The change the watcher waits for, from a second client.
        const writer = await new Deno.Command(Deno.execPath(), {
          args: [
            "eval",
            "--unstable-kv",
            `const kv = await Deno.openKv(${JSON.stringify(url("w"))});
             await kv.set(["w"], "direct");
             kv.close();`,
          ],
          env: { DENO_KV_ACCESS_TOKEN: TOKEN, DENO_NO_UPDATE_CHECK: "1" },
        }).output();
        assert.equal(
          writer.code,
          0,
          new TextDecoder().decode(writer.stderr),
        );
        while (true) {
          const { value, done } = await lines.read();
          if (done) break;
          seen += value;
        }
        const stderr = await new Response(child.stderr).text();
        const status = await child.status;
        assert.equal(
          status.code,
          0,
          `watch client failed:\n${seen}\n${stderr}`,
        );
        assert.match(seen, /ok/);
      } finally {
        const status = await stopServer(server);
        assert.equal(status.code, 0, server.output());
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

// Over TLS Deno's KV client asks for HTTP/2 by ALPN; every runtime's
// listener offers it (Bun's: node:http2's secure server, HTTP/1.1 too).
for (const rt of ["deno", "bun", "binary"] as const) {
  const why = unavailable(rt);
  Deno.test({
    name: `[${rt}] Deno's real KV client over HTTPS against a shale process${
      why ? ` (ignored: ${why})` : ""
    }`,
    ignore: why !== undefined,
    async fn() {
      const dir = await Deno.makeTempDir({ prefix: "shale-kvc-tls-" });
      const { certFile, keyFile } = await selfSignedCert(dir);
      const server = await mustStart(`${dir}/data`, {
        runtime: rt,
        args: [
          "--auth-token",
          TOKEN,
          "--sync",
          "none",
          "--tls-cert",
          certFile,
          "--tls-key",
          keyFile,
        ],
      });
      try {
        assert.match(server.base, /^https:/);
        const url = `${
          server.base.replace("127.0.0.1", "localhost")
        }/deno-kv/tls`;
        const out = await new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "--quiet",
            "--unstable-kv",
            "-A",
            new URL("crud.ts", CLIENTS).pathname,
            url,
          ],
          env: {
            DENO_KV_ACCESS_TOKEN: TOKEN,
            DENO_CERT: certFile,
            DENO_NO_UPDATE_CHECK: "1",
          },
        }).output();
        const text = new TextDecoder().decode(out.stdout) +
          new TextDecoder().decode(out.stderr);
        assert.equal(out.code, 0, text);
        assert.equal(new TextDecoder().decode(out.stdout).trim(), "ok");
      } finally {
        const status = await stopServer(server);
        assert.equal(status.code, 0, server.output());
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}
