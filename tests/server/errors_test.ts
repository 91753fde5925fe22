/**
 * The one error funnel (server/errors.ts): statuses from one table, JSON and
 * plain-text rendering, and no engine internals (file paths, offsets) in a
 * 5xx body on any route family -- KV Connect included.
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import {
  ClosedError,
  CorruptionError,
  type ErrorCode,
  InvalidArgumentError,
  open,
} from "../../mod.ts";
import { createHandler } from "../../server/app.ts";
import {
  ERROR_STATUS,
  errorResponse,
  HttpError,
  type LogFn,
  publicMessage,
} from "../../server/errors.ts";
import {
  dataPrefix,
  join,
  kvConnectSpace,
} from "../../server/kv_connect/keyspace.ts";
import { concat, enc, withTempDir } from "../_helpers.ts";

function logger(): { log: LogFn; lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    log: (level, message, fields) =>
      lines.push(`${level} ${message} ${JSON.stringify(fields ?? {})}`),
  };
}

Deno.test("every engine code has one status; every 5xx code a fixed public message", () => {
  const codes: ErrorCode[] = [
    "invalid_argument",
    "key_too_long",
    "value_too_large",
    "precondition_failed",
    "corruption",
    "unsupported_format",
    "closed",
    "read_only",
    "disk_full",
    "locked",
    "io_error",
  ];
  deepEqual(Object.keys(ERROR_STATUS).sort(), [...codes].sort());
  for (const c of codes) {
    ok(ERROR_STATUS[c] >= 400 && ERROR_STATUS[c] <= 599, c);
    if (ERROR_STATUS[c] >= 500) {
      ok(publicMessage(c) !== "the store failed the request", c);
      ok(!/(^|\s)\/\w|offset \d/.test(publicMessage(c)), c);
    }
  }
});

Deno.test("the funnel renders JSON and text, hides 5xx details and logs them", async () => {
  const path = "/srv/shale/data/000042.sst";
  for (const format of ["json", "text"] as const) {
    const { log, lines } = logger();
    const ctx = { format, log, fields: { route: "/x" } };
    const body = async (r: Response) => {
      const t = await r.text();
      if (format === "text") return { code: undefined, message: t.trimEnd() };
      return JSON.parse(t).error as { code: string; message: string };
    };

    const http = errorResponse(
      new HttpError(405, "method_not_allowed", "no", { allow: "GET" }),
      ctx,
    );
    equal(http.status, 405);
    equal(http.headers.get("allow"), "GET");
    deepEqual((await body(http)).message, "no");

    const bad = errorResponse(new InvalidArgumentError("key is empty"), ctx);
    equal(bad.status, 400);
    equal((await body(bad)).message, "key is empty");

    const corrupt = errorResponse(
      new CorruptionError(path, 4096, "data block checksum mismatch"),
      ctx,
    );
    equal(corrupt.status, 500);
    const cb = await body(corrupt);
    equal(cb.message, publicMessage("corruption"));
    if (format === "json") equal(cb.code, "corruption");
    ok(lines.some((l) => l.includes(path) && l.includes("/x")), lines.join());

    equal(errorResponse(new ClosedError(), ctx).status, 503);

    const bug = errorResponse(new TypeError(`oops at ${path}`), ctx);
    equal(bug.status, 500);
    const bb = await body(bug);
    equal(bb.message, "internal server error");
    if (format === "json") equal(bb.code, "internal");
    ok(lines.some((l) => l.includes("oops")), lines.join());

    match(
      http.headers.get("content-type")!,
      format === "json" ? /^application\/json/ : /^text\/plain/,
    );
  }
});

/** SnapshotRead { ranges: [ReadRange { start: 01, end: ff, limit: 1000 }] }. */
const READ_ALL = new Uint8Array([
  0x0a,
  9,
  ...[0x0a, 1, 0x01],
  ...[0x12, 1, 0xff],
  ...[0x18, 0xe8, 0x07],
]);

Deno.test("a corrupt table read through KV Connect answers 500 with no path or offset", async () => {
  await withTempDir(async (dir) => {
    // Enough keys for several data blocks: the corrupted first block holds
    // only data keys, the database id (tag 0x02) sorts after them.
    const db = await open(dir, { sync: "none", background: "inline" });
    const prefix = dataPrefix("c");
    const value = new Uint8Array(200).fill(7);
    for (let i = 0; i < 500; i++) {
      // Deno's tuple encoding of ["k<i>"]: tag 0x02, text, terminator 0x00.
      const key = join(
        prefix,
        concat(enc(`\x02k${1000 + i}`), new Uint8Array(1)),
      );
      await kvConnectSpace(db).put(key, value, { encoding: 2 });
    }
    const app = createHandler(db, { log: () => {} });
    const meta = await app(
      new Request("http://localhost/deno-kv/c", {
        method: "POST",
        body: '{"supportedVersions":[3]}',
      }),
    );
    equal(meta.status, 200);
    const { token, databaseId } = await meta.json();
    app.close();
    await db.flush();
    await db.close();

    const tables = [...Deno.readDirSync(dir)]
      .filter((e) => e.name.endsWith(".sst"))
      .map((e) => `${dir}/${e.name}`);
    ok(tables.length > 0, "the flush wrote a table");
    for (const t of tables) {
      const f = await Deno.open(t, { read: true, write: true });
      const b = new Uint8Array(1);
      await f.seek(40, Deno.SeekMode.Start);
      await f.read(b);
      b[0] ^= 0xff;
      await f.seek(40, Deno.SeekMode.Start);
      await f.write(b);
      f.close();
    }

    const db2 = await open(dir, { sync: "none", background: "inline" });
    const { log, lines } = logger();
    const app2 = createHandler(db2, { log });
    try {
      const res = await app2(
        new Request("http://localhost/deno-kv/c/snapshot_read", {
          method: "POST",
          body: READ_ALL,
          headers: {
            authorization: `Bearer ${token}`,
            "x-denokv-version": "3",
            "x-denokv-database-id": databaseId,
          },
        }),
      );
      const text = await res.text();
      equal(res.status, 500, text);
      match(res.headers.get("content-type")!, /^text\/plain/);
      equal(text, publicMessage("corruption") + "\n");
      ok(!text.includes(dir) && !/\.sst|offset \d/.test(text), text);
      // The details are in the server log instead.
      ok(
        lines.some((l) => l.includes(".sst") && l.includes("offset")),
        lines.join("\n"),
      );
    } finally {
      app2.close();
      await db2.close();
    }
  });
});
