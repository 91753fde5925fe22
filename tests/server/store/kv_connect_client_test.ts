/**
 * server/store/kv_connect_keys.ts, kv_connect/client_codec.ts and
 * store/kv_connect_client.ts: the key encoding keeps byte order, the client
 * codec reads what the server codec writes (and back), and the client's
 * retry rules, against a fake backend: reads retried, lost write answers
 * never retried and never acknowledged.
 */
import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { compareBytes } from "../../../mod.ts";
import { HttpError } from "../../../server/_codec.ts";
import {
  decodeAtomicWriteOutput,
  decodeSnapshotReadOutput,
  encodeAtomicWrite,
  encodeSnapshotRead,
} from "../../../server/kv_connect/client_codec.ts";
import {
  decodeAtomicWrite,
  decodeSnapshotRead,
  encodeAtomicWriteOutput,
  encodeSnapshotReadOutput,
  M_DELETE,
  M_SET,
  VE_BYTES,
} from "../../../server/kv_connect/protobuf.ts";
import { KvConnectClient } from "../../../server/store/kv_connect_client.ts";
import {
  decodeKey,
  encodeKey,
  versionOf,
  versionstampOf,
} from "../../../server/store/kv_connect_keys.ts";
import { testSeed, withSeed } from "../../_helpers.ts";

Deno.test("REST keys encode to one bytes element, in the same byte order", async () => {
  await withSeed(testSeed(1701), (rng) => {
    const keys: Uint8Array[] = [];
    for (let i = 0; i < 2000; i++) {
      // Few distinct bytes, so 0x00, 0xFF and shared prefixes are common.
      const k = new Uint8Array(rng.int(6));
      for (let j = 0; j < k.length; j++) k[j] = rng.pick([0, 1, 0xfe, 0xff]);
      keys.push(k);
    }
    for (const k of keys) deepEqual(decodeKey(encodeKey(k)), k);
    for (let i = 1; i < keys.length; i++) {
      const a = keys[i - 1];
      const b = keys[i];
      equal(
        Math.sign(compareBytes(encodeKey(a), encodeKey(b))),
        Math.sign(compareBytes(a, b)),
      );
    }
    return Promise.resolve();
  });
  // A key of more elements ([bytes, "x"]) is not a REST key.
  deepEqual(
    decodeKey(Uint8Array.of(1, 0x61, 0, 2, 0x78, 0)),
    undefined,
  );
  deepEqual(decodeKey(Uint8Array.of(2, 0x61, 0)), undefined);
});

Deno.test("versionstamps are decimal versions and back; past 80 bits is refused", () => {
  const vs = Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 9, 0, 0);
  equal(versionOf(vs), String(9 * 65536));
  deepEqual(versionstampOf(versionOf(vs)), vs);
  const max = new Uint8Array(10).fill(0xff);
  equal(versionOf(max), String((1n << 80n) - 1n));
  deepEqual(versionstampOf(versionOf(max)), max);
  try {
    versionstampOf(String(1n << 80n));
    ok(false, "accepted a version past 80 bits");
  } catch (err) {
    ok(err instanceof HttpError && err.status === 400);
  }
});

Deno.test("the client codec and the server codec read each other", () => {
  const ranges = [
    {
      start: Uint8Array.of(1, 2),
      end: Uint8Array.of(3),
      limit: 7,
      reverse: true,
    },
    {
      start: Uint8Array.of(1),
      end: Uint8Array.of(2),
      limit: 1,
      reverse: false,
    },
  ];
  deepEqual(decodeSnapshotRead(encodeSnapshotRead(ranges)), ranges);
  const aw = {
    checks: [
      {
        key: Uint8Array.of(1, 0x61, 0),
        versionstamp: new Uint8Array(10).fill(3),
      },
      { key: Uint8Array.of(1, 0x62, 0), versionstamp: new Uint8Array(0) },
    ],
    mutations: [
      {
        key: Uint8Array.of(1, 0x61, 0),
        value: { data: Uint8Array.of(0, 1, 2), encoding: VE_BYTES },
        type: M_SET,
        expireAtMs: 1_800_000_000_000n,
        sumMin: new Uint8Array(0),
        sumMax: new Uint8Array(0),
        sumClamp: false,
      },
      {
        key: Uint8Array.of(1, 0x62, 0),
        value: undefined,
        type: M_DELETE,
        expireAtMs: 0n,
        sumMin: new Uint8Array(0),
        sumMax: new Uint8Array(0),
        sumClamp: false,
      },
    ],
  };
  deepEqual(decodeAtomicWrite(encodeAtomicWrite(aw)), { ...aw, enqueues: 0 });
  const entry = {
    key: Uint8Array.of(1, 0x61, 0),
    value: Uint8Array.of(9),
    encoding: VE_BYTES,
    versionstamp: new Uint8Array(10).fill(1),
  };
  deepEqual(decodeSnapshotReadOutput(encodeSnapshotReadOutput([[entry], []])), {
    ranges: [[entry], []],
    readDisabled: false,
    stronglyConsistent: true,
    status: 1,
  });
  deepEqual(
    decodeAtomicWriteOutput(
      encodeAtomicWriteOutput(2, new Uint8Array(0), [1, 300]),
    ),
    { status: 2, versionstamp: new Uint8Array(0), failedChecks: [1, 300] },
  );
});

/**
 * A fake backend: the metadata exchange, then `dataPath` answers each data
 * call (counted by method).
 */
function fakeBackend(
  dataPath: (method: string, n: number) => Promise<Response> | Response,
) {
  const calls: Record<string, number> = {};
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      const path = new URL(req.url).pathname;
      await req.arrayBuffer();
      if (path === "/db") {
        return Response.json({
          version: 3,
          databaseId: "8a2b3c4d-0000-4000-8000-000000000000",
          endpoints: [{ url: "/db", consistency: "strong" }],
          token: "data-token",
          expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
        });
      }
      const method = path.slice("/db/".length);
      calls[method] = (calls[method] ?? 0) + 1;
      return await dataPath(method, calls[method]);
    },
  );
  const url = `http://127.0.0.1:${server.addr.port}/db`;
  return { url, calls, close: () => server.shutdown() };
}

const PROTO = { "content-type": "application/x-protobuf" };

Deno.test("reads are retried after 5xx; a write whose answer is lost is 503 with an unknown outcome, sent once", async () => {
  const hang = Promise.withResolvers<void>();
  const backend = fakeBackend(async (method, n) => {
    if (method === "snapshot_read") {
      return n < 3
        ? new Response("busy", { status: 503 })
        : new Response(encodeSnapshotReadOutput([[]]), { headers: PROTO });
    }
    await hang.promise; // the write's answer never comes
    return new Response("late", { status: 500 });
  });
  const client = new KvConnectClient({
    url: backend.url,
    timeoutMs: 300,
    backoffMs: 1,
  });
  try {
    const out = await client.snapshotRead([
      {
        start: Uint8Array.of(1),
        end: Uint8Array.of(2),
        limit: 1,
        reverse: false,
      },
    ]);
    deepEqual(out.ranges, [[]]);
    equal(backend.calls.snapshot_read, 3);
    equal(client.counters.retries, 2);

    await rejects(
      client.atomicWrite({ checks: [], mutations: [] }),
      (err) => {
        ok(err instanceof HttpError);
        equal(err.status, 503);
        equal(err.code, "backend_unavailable");
        match(err.message, /outcome is unknown/);
        return true;
      },
    );
    equal(backend.calls.atomic_write, 1);
    equal(client.reach.ok, false);
  } finally {
    hang.resolve();
    await backend.close();
  }
});

Deno.test("a backend's 413 stays a 413 naming its limit; a bad token is 503", async () => {
  const backend = fakeBackend((method) =>
    method === "atomic_write"
      ? new Response(
        "mutation 0: value is 70000 bytes; Deno KV's limit is 65536",
        {
          status: 413,
        },
      )
      : new Response("invalid data-path token", { status: 401 })
  );
  const client = new KvConnectClient({ url: backend.url, backoffMs: 1 });
  try {
    await rejects(client.atomicWrite({ checks: [], mutations: [] }), (err) => {
      ok(err instanceof HttpError);
      equal(err.status, 413);
      match(err.message, /65536/);
      return true;
    });
    await rejects(
      client.snapshotRead([]),
      (err) => err instanceof HttpError && err.status === 503,
    );
    // The 401 repeated the metadata exchange once before giving up.
    equal(backend.calls.snapshot_read, 2);
  } finally {
    await backend.close();
  }
});
