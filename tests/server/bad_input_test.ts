/**
 * A few hundred malformed requests over raw TCP: every answer is a 4xx with
 * the JSON error shape, the server stays healthy, earlier data is intact.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { b, b64, errorCode, rawRequest, withServer } from "./_helpers.ts";
import { prng } from "../_helpers.ts";

interface Case {
  head: string;
  body?: string;
}

function cases(seed: number): Case[] {
  const out: Case[] = [];
  const get = (target: string, headers = "") =>
    out.push({ head: `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1${headers}` });
  const putRaw = (target: string, body = "v", headers = "") =>
    out.push({
      head: `PUT ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${
        new TextEncoder().encode(body).length
      }${headers}`,
      body,
    });
  const batch = (body: string) =>
    out.push({
      head:
        `POST /kv/batch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${
          new TextEncoder().encode(body).length
        }`,
      body,
    });

  // Bad percent-escapes, in keys and in query parameters.
  for (
    const e of [
      "%",
      "%G1",
      "a%2",
      "%%",
      "%zz",
      "%-1",
      "%1",
      "a%",
      "%%41",
      "%u0041",
    ]
  ) {
    get(`/kv/${e}`);
    putRaw(`/kv/${e}`);
    get(`/kv/range?start=${e}`);
    get(`/kv/range?prefix=${e}`);
  }
  // Path traversal and dot segments.
  for (
    const p of [
      "/kv/../x",
      "/kv/./x",
      "/kv/a/../../b",
      "/kv/%2e%2e/x",
      "/kv/.%2E/x",
      "/kv/%2E/x",
      "/kv/a/..",
      "/kv/a/.",
      "/kv/..",
      "/kv/.",
      "/../kv/x",
      "/kv/../../../etc/passwd",
    ]
  ) {
    get(p);
    putRaw(p);
    out.push({ head: `DELETE ${p} HTTP/1.1\r\nHost: 127.0.0.1` });
  }
  // Overlong keys, plain and percent-encoded.
  for (const n of [4097, 5000, 8192]) {
    get(`/kv/${"k".repeat(n)}`);
    get(`/kv/${"%41".repeat(n)}`);
    putRaw(`/kv/${"k".repeat(n)}`);
  }
  // Wrong methods everywhere.
  for (const m of ["POST", "PATCH", "PROPFIND", "FOO"]) {
    for (const p of ["/kv/a", "/kv/range", "/health", "/stats", "/metrics"]) {
      out.push({
        head: `${m} ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0`,
      });
    }
  }
  for (const m of ["GET", "PUT", "DELETE", "PATCH"]) {
    out.push({
      head: `${m} /kv/batch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0`,
    });
  }
  // Unknown routes.
  for (
    const p of [
      "/ui/nope",
      "/kv",
      "/kvs/a",
      "/v1/kv/a",
      "/health/",
      "/stats/x",
      "/%00",
    ]
  ) {
    get(p);
  }
  // Bad JSON and base64 in batches.
  for (
    const body of [
      "",
      "{",
      "null",
      "42",
      '"ops"',
      "[]",
      '{"ops":null}',
      '{"ops":[null]}',
      '{"ops":[1]}',
      '{"ops":[{}]}',
      '{"ops":[{"op":"put"}]}',
      '{"ops":[{"op":"put","key":"***","value":""}]}',
      '{"ops":[{"op":"put","key":"YQ","value":"!!"}]}',
      '{"ops":[{"op":"put","key":"YQ","value":"Y"}]}',
      '{"ops":[{"op":"put","key":"","value":""}]}',
      '{"ops":[{"op":"put","key":1,"value":""}]}',
      '{"ops":[{"op":"del","key":"YQ"}]}',
      '{"ops":[{"op":"delete","key":"YQ","if_match":5}]}',
      '{"ops":[{"op":"delete","key":"YQ","if_none_match":"x"}]}',
      '{"ops":[{"op":"put","key":"YQ","value":"","ttl":1e400}]}',
      '{"ops":[{"op":"put","key":"YQ","value":"","ttl":0}]}',
      '{"ops":[{"op":"check","key":"YQ"}]}',
      `{"ops":[{"op":"delete","key":"${b64("k".repeat(5000))}"}]}`,
      '{"ops":[],"x":1}',
      '{"ops":[{"op":"put","key":"YQ","value":""}]',
      '\u00ff{"ops":[]}',
    ]
  ) {
    batch(body);
  }
  // Huge or lying declared lengths.
  for (const n of ["99999999999", "70000000", "18446744073709551615"]) {
    out.push({
      head: `PUT /kv/big HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${n}`,
    });
    out.push({
      head:
        `POST /kv/batch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${n}`,
    });
  }
  out.push({ head: "PUT /kv/nolen HTTP/1.1\r\nHost: 127.0.0.1" });
  out.push({
    head:
      "POST /kv/batch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json",
  });
  // Negative or absurd limits and other bad parameters.
  for (
    const q of [
      "limit=-1",
      "limit=0",
      "limit=10001",
      "limit=1e3",
      "limit=99999999999999999999",
      "limit=0x10",
      "limit=",
      "limit=1.5",
      "reverse=yes",
      "keys_only=2",
      "cursor=AAAA",
      "cursor=%FF%FF",
      "cursor=!!!",
      "prefix=a&end=b",
      "start=a&start=b",
      "nope=1",
      "limit=%FF",
    ]
  ) {
    get(`/kv/range?${q}`);
  }
  for (
    const t of ["", "-5", "abc", "0", "1e9", "inf", "NaN", "99999999999999"]
  ) {
    putRaw(`/kv/ttl?ttl=${t}`);
  }
  putRaw("/kv/a?unknown=1");
  get("/kv/a?x");
  // Bad conditional headers.
  for (const h of ["abc", '"1', "W/1", '"1",,x', "**"]) {
    putRaw("/kv/cond", "v", `\r\nIf-Match: ${h}`);
    get("/kv/cond", `\r\nIf-None-Match: ${h}`);
  }
  // Seeded junk keys and queries from printable ASCII.
  const rand = prng(seed);
  const alphabet = "abcXYZ019-._~!$&'()*+,;=:@/%?[]{}|^`<>\\\"";
  for (let i = 0; i < 120; i++) {
    let s = "";
    const len = 1 + Math.floor(rand() * 20);
    for (let j = 0; j < len; j++) {
      s += alphabet[Math.floor(rand() * alphabet.length)];
    }
    // Keep only targets that are malformed by construction: a bad escape.
    get(`/kv/${s}%Q${i}`);
  }
  return out;
}

Deno.test("a few hundred malformed requests all get a 4xx JSON error; data survives", async () => {
  const seed = 20261125;
  await withServer({}, async ({ base, port, db, logs }) => {
    const keep = new Map<string, string>();
    for (let i = 0; i < 20; i++) {
      const r = await fetch(`${base}/kv/keep/${i}`, {
        method: "PUT",
        body: `value-${i}`,
      });
      await r.body?.cancel();
      keep.set(`keep/${i}`, `value-${i}`);
    }
    const all = cases(seed);
    ok(all.length >= 300, `only ${all.length} cases`);
    // Several at a time, as a misbehaving client would.
    for (let i = 0; i < all.length; i += 8) {
      const slice = all.slice(i, i + 8);
      const results = await Promise.all(
        slice.map((c) => rawRequest(port, c.head, c.body ?? "")),
      );
      results.forEach((res, j) => {
        const what = `seed ${seed} case ${i + j}: ${
          slice[j].head.split("\r\n")[0].slice(0, 120)
        }`;
        ok(
          res.status >= 400 && res.status < 500,
          `${what} -> ${res.status} ${res.body}`,
        );
        errorCode(res.body);
        deepEqual(res.headers.get("content-type"), "application/json", what);
      });
    }
    const h = await fetch(`${base}/health`);
    deepEqual(h.status, 200);
    await h.body?.cancel();
    for (const [k, v] of keep) deepEqual(db.get(b(k))?.value, b(v));
    const scan = [...db.scan()];
    deepEqual(scan.length, keep.size, "nothing else was written");
    deepEqual(logs, [], "no server faults logged");
    const stats = await (await fetch(`${base}/stats`)).json();
    deepEqual(stats.server.serverErrors, 0);
  });
});

Deno.test("a request head over 64 KiB gets the HTTP layer's bare 400, as documented; long keys below it get JSON", async () => {
  await withServer({}, async ({ port }) => {
    // Deno's HTTP layer refuses a request line plus headers over 64 KiB
    // before shale sees the request, with no body (docs/HTTP.md, Limits).
    const tooLong = await rawRequest(
      port,
      `GET /kv/${"k".repeat(70_000)} HTTP/1.1\r\nHost: 127.0.0.1`,
    );
    equal(tooLong.status, 400);
    equal(tooLong.body, "");
    // Every key shale can store fits far below it, and a longer key that
    // still fits gets the JSON 414.
    const long = await rawRequest(
      port,
      `GET /kv/${"%41".repeat(20_000)} HTTP/1.1\r\nHost: 127.0.0.1`,
    );
    equal(long.status, 414);
    equal(errorCode(long.body), "key_too_long");
  });
});
