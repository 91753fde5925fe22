/**
 * Hostile input: seeded random HTTP requests over real sockets against the
 * real server. Paths (escapes, dot segments, overlong keys, raw bytes),
 * methods, headers (conditions, auth, lengths, chunking, junk), bodies (raw,
 * JSON batches valid and broken, bad base64), range query values, huge
 * declared Content-Length, slow bodies, bodies that stop midway (half-close
 * or stall), and many idle connections held open throughout.
 *
 * Every answer must be a valid 2xx/304, or a 4xx; when the request was
 * well-formed HTTP (so the app, not the HTTP parser, answered) a 4xx must
 * carry the JSON error shape. Never a 5xx, never a hang past 5 s. After
 * the run the server is healthy, data written before is intact and its RSS
 * stayed under a bound.
 *
 * Cases: SHALE_FUZZ_CASES (default 1000; `make fuzz` runs 100000).
 * Replay: SHALE_SEED.
 *
 * @module
 */
import { Rng, testSeed } from "../_helpers.ts";
import {
  envInt,
  isErrorBody,
  keyPath,
  killServer,
  mustStart,
  pool,
  rawExchange,
  type RawOutcome,
  type ReadyServer,
  removeDir,
  request,
  round,
  RssSampler,
  scanAll,
  sleep,
  stopServer,
  Tally,
} from "./_harness.ts";

const CASES = envInt("SHALE_FUZZ_CASES", 1000);
const SEED = testSeed(0xf022);
const CONCURRENCY = 24;
const IDLE_CONNECTIONS = 200;
const BASE_KEYS = 200;
/** RSS ceiling for the server: runtime + worker + 64 MiB cache + slack. */
const RSS_LIMIT_MIB = 768;
const MAX_VALUE = "1M";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** One generated request. */
interface FuzzCase {
  id: number;
  label: string;
  chunks: Uint8Array[];
  /** Well-formed HTTP: the app answers, so errors must be JSON. */
  strict: boolean;
  /** The body stops midway: no answer is owed (but no 5xx if one comes). */
  incomplete?: "half-close" | "stall";
  pauseMs?: number;
  head?: boolean;
}

Deno.test({
  name: "random hostile requests never get a 5xx, a hang, or hurt stored data",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const tally = new Tally("hostile input fuzzer");
    const rng = new Rng(SEED);
    const dir = await Deno.makeTempDir({ prefix: "shale-fuzz-" });
    let server: ReadyServer | undefined;
    const idle: Deno.Conn[] = [];
    const statusCounts = new Map<string, number>();
    let rss: RssSampler | undefined;
    let sampling = true;
    let sampler: Promise<void> | undefined;
    const t0 = performance.now();
    try {
      server = await mustStart(dir, {
        args: ["--max-value-size", MAX_VALUE, "--memtable-size", "1M"],
      });
      const s = server;
      const base = s.base;
      const sampled = rss = new RssSampler(s);
      sampler = (async () => {
        while (sampling) {
          sampled.sample();
          await sleep(200);
        }
      })();

      // Data written before the storm, under a prefix the fuzzer never makes.
      const baseline = new Map<string, string>();
      for (let i = 0; i < BASE_KEYS; i++) {
        const key = `!base/${String(i).padStart(3, "0")}`;
        const value = `base-${i}-${"q".repeat(rng.int(300))}`;
        const r = await request(base, "PUT", keyPath(key), { body: value });
        if (r.status !== 204) throw new Error(`baseline PUT: ${r.status}`);
        baseline.set(key, value);
      }

      // Many connections at once: a burst of simultaneous requests, and
      // idle connections held open for the whole run.
      const burst = await Promise.all(
        Array.from({ length: 200 }, () =>
          rawExchange(s.port, [
            enc.encode(
              "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            ),
          ])),
      );
      tally.check(
        burst.every((o) => o.status === 200),
        `a burst of 200 simultaneous connections: ${
          burst.filter((o) => o.status !== 200).length
        } did not get 200`,
      );
      for (let i = 0; i < IDLE_CONNECTIONS; i++) {
        const c = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
        if (i % 2 === 0) await c.write(enc.encode("GET /kv/idle HTTP/1.1\r\n"));
        idle.push(c);
      }

      const cases = Array.from({ length: CASES }, (_, i) => makeCase(rng, i));
      let done = 0;
      await pool(cases, CONCURRENCY, async (c) => {
        let out: RawOutcome;
        try {
          out = await rawExchange(s.port, c.chunks, {
            pauseMs: c.pauseMs,
            halfClose: c.incomplete === "half-close",
            timeoutMs: c.incomplete === "stall" ? 300 : 5000,
          });
        } catch (err) {
          tally.fail(`case ${c.id} (${c.label}): connect failed: ${err}`);
          return;
        }
        judge(c, out, tally, statusCounts);
        if (++done % 10_000 === 0) {
          console.log(
            `  ${done}/${CASES} cases, peak RSS ${
              (rss?.peakKiB ?? 0) >> 10
            } MiB`,
          );
        }
      });

      // Still alive and healthy, data intact.
      for (const c of idle) {
        try {
          c.close();
        } catch {
          // closed by the server
        }
      }
      idle.length = 0;
      const h = await request(base, "GET", "/health");
      tally.check(h.status === 200, `/health after the run: ${h.status}`);
      const scan = await scanAll(
        base,
        `prefix=${encodeURIComponent("!base/")}`,
      );
      if ("error" in scan) {
        tally.fail(`scan of the baseline answered ${scan.error.status}`);
      } else {
        const got = new Map(
          scan.items.map((it) => [dec.decode(it.key), dec.decode(it.value)]),
        );
        tally.check(
          got.size === baseline.size &&
            [...baseline].every(([k, v]) => got.get(k) === v),
          `baseline data changed: ${got.size} of ${baseline.size} keys, ${
            [...baseline].filter(([k, v]) => got.get(k) !== v).length
          } differ`,
        );
      }
      for (const [k, v] of baseline) {
        const r = await request(base, "GET", keyPath(k));
        tally.check(
          r.status === 200 && dec.decode(r.body) === v,
          `baseline ${k}: ${r.status}`,
        );
      }
      sampling = false;
      await sampler;
      sampled.check(tally);
      tally.check(
        sampled.peakKiB / 1024 <= RSS_LIMIT_MIB,
        `server RSS peaked at ${
          round(sampled.peakKiB / 1024)
        } MiB (limit ${RSS_LIMIT_MIB})`,
      );
      const unexpected = s.logs.filter((l) =>
        l.json?.msg === "unhandled error"
      );
      tally.check(
        unexpected.length === 0,
        () => `the server logged unhandled errors: ${unexpected[0]?.text}`,
      );
      const st = await stopServer(s);
      server = undefined;
      tally.check(st.code === 0, `clean stop exited ${st.code}`);
    } finally {
      sampling = false;
      await sampler;
      for (const c of idle) {
        try {
          c.close();
        } catch {
          // closed
        }
      }
      if (server) await killServer(server);
      await removeDir(dir);
    }
    tally.finish({
      seed: `${SEED} (replay with SHALE_SEED=${SEED})`,
      cases: CASES,
      seconds: round((performance.now() - t0) / 1000),
      "peak server RSS MiB": rss === undefined
        ? "not measured"
        : round(rss.peakKiB / 1024),
      statuses: Object.fromEntries(
        [...statusCounts].sort((a, b) => a[0] < b[0] ? -1 : 1),
      ),
    });
  },
});

function judge(
  c: FuzzCase,
  out: RawOutcome,
  tally: Tally,
  counts: Map<string, number>,
): void {
  const key = out.status === undefined
    ? (out.timedOut ? "no answer (stalled)" : "closed")
    : String(out.status);
  counts.set(key, (counts.get(key) ?? 0) + 1);
  const what = `case ${c.id} (${c.label})`;
  if (out.status !== undefined) {
    if (
      !tally.check(
        out.status < 500,
        `${what}: answered ${out.status} ${out.body?.slice(0, 200)}`,
      )
    ) return;
    if (c.strict && out.status >= 400 && !c.head) {
      tally.check(
        isErrorBody(out.body ?? ""),
        () =>
          `${what}: ${out.status} without the JSON error shape: ${
            out.body?.slice(0, 200)
          }`,
      );
    }
    return;
  }
  if (c.incomplete === "stall") {
    tally.check(true, "");
    return;
  }
  if (out.timedOut) {
    tally.fail(`${what}: no answer within 5 s`);
    return;
  }
  // Closed without an answer: fine for broken framing or a cut body only.
  tally.check(
    !c.strict || c.incomplete !== undefined,
    `${what}: connection closed without an answer (${out.error ?? "EOF"})`,
  );
}

// ---- generators -------------------------------------------------------------

const METHODS = ["GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PATCH"];
const ODD_METHODS = ["TRACE", "PROPFIND", "BREW", "get", "PUT ", "G@T", ""];

function makeCase(rng: Rng, id: number): FuzzCase {
  let strict = true;
  const labels: string[] = [];
  // Target, then a method: mostly one the route takes.
  const target = makeTarget(rng, labels);
  if (
    /[^\x21-\x7e]/.test(target.text) || target.text === "" ||
    target.text === "*"
  ) {
    strict = false; // the HTTP parser answers these itself
  }
  const fitting: Record<string, string[]> = {
    key: ["GET", "HEAD", "PUT", "PUT", "DELETE"],
    range: ["GET", "HEAD"],
    batch: ["POST"],
    other: ["GET"],
  };
  let method: string;
  const mroll = rng.next();
  if (mroll < 0.6) {
    method = rng.pick(fitting[target.route]);
  } else if (mroll < 0.93) {
    method = rng.pick(METHODS);
  } else {
    method = rng.pick(ODD_METHODS);
    labels.push(`method ${JSON.stringify(method)}`);
    if (!/^[A-Z]+$/.test(method)) strict = false;
  }
  // Body.
  let body = makeBody(rng, method, target.route, labels);
  // Headers.
  // A loopback Host: the server serves only those without a token.
  const headers: string[] = ["Host: 127.0.0.1"];
  // Batches need Content-Type: application/json; leave it off sometimes.
  if (target.route === "batch" && rng.chance(0.9)) {
    headers.push("Content-Type: application/json");
  }
  let incomplete: FuzzCase["incomplete"];
  let pauseMs: number | undefined;
  const lengthMode = rng.int(20);
  if (lengthMode === 0) {
    headers.push("Content-Length: 99999999999999");
    labels.push("huge Content-Length");
    incomplete = "half-close";
  } else if (lengthMode === 1) {
    headers.push(`Content-Length: ${body.length + 1000}`);
    labels.push("body stops midway, half-close");
    incomplete = "half-close";
  } else if (lengthMode === 2) {
    headers.push(`Content-Length: ${body.length + 1000}`);
    labels.push("body stops midway, stalls");
    incomplete = "stall";
  } else if (lengthMode === 3) {
    headers.push("Transfer-Encoding: chunked");
    body = chunked(body, rng);
    labels.push("chunked");
  } else if (lengthMode === 4) {
    headers.push("Transfer-Encoding: chunked");
    body = concat(enc.encode("zz\r\nnot hex\r\n"), body);
    labels.push("broken chunking");
    strict = false;
  } else if (lengthMode === 5) {
    headers.push(
      rng.pick([
        "Content-Length: -5",
        "Content-Length: abc",
        "Content-Length: 1, 2",
      ]),
    );
    labels.push("bad Content-Length");
    strict = false;
  } else if (lengthMode === 6 && body.length > 0) {
    headers.push(`Content-Length: ${body.length}`);
    pauseMs = 30;
    labels.push("slow body");
  } else if (lengthMode === 7) {
    labels.push("no length");
    if (body.length > 0) strict = false; // the body bytes become a next request
  } else {
    headers.push(`Content-Length: ${body.length}`);
  }
  if (rng.chance(0.15)) {
    headers.push(
      `If-Match: ${
        rng.pick([
          `"1"`,
          `"${rng.int(1e6)}"`,
          "*",
          'W/"3"',
          "garbage",
          `"1", "2"`,
          `"${"9".repeat(30)}"`,
        ])
      }`,
    );
  }
  if (rng.chance(0.15)) {
    headers.push(`If-None-Match: ${rng.pick(["*", `"7"`, "nonsense", ""])}`);
  }
  if (rng.chance(0.1)) {
    headers.push(
      `Authorization: ${
        rng.pick(["Bearer x", "Basic Zm9vOmJhcg==", "Bearer", ""])
      }`,
    );
  }
  if (rng.chance(0.1)) {
    headers.push(
      `Content-Type: ${
        rng.pick([
          "application/json",
          "text/plain",
          "multipart/form-data; boundary=x",
          "\u00ff",
        ])
      }`,
    );
  }
  if (rng.chance(0.05)) {
    headers.push(`X-Big: ${"h".repeat(rng.pick([100, 8000, 70000]))}`);
    labels.push("big header");
    strict = false; // the HTTP parser may refuse it (431) without JSON
  }
  if (rng.chance(0.05)) {
    for (let i = 0; i < 120; i++) headers.push(`X-Many-${i}: ${i}`);
    labels.push("many headers");
    strict = false;
  }
  if (rng.chance(0.03)) {
    headers.push("Bad Header With Spaces: x");
    labels.push("malformed header");
    strict = false;
  }
  headers.push("Connection: close");
  const head = enc.encode(
    `${method} ${target.text} HTTP/1.1\r\n${headers.join("\r\n")}\r\n\r\n`,
  );
  let chunks: Uint8Array[];
  if (incomplete !== undefined && body.length > 0) {
    chunks = [concat(head, body.subarray(0, Math.floor(body.length / 2)))];
  } else if (incomplete !== undefined) {
    chunks = [head];
  } else if (pauseMs !== undefined) {
    const third = Math.ceil(body.length / 3);
    chunks = [
      head,
      body.subarray(0, third),
      body.subarray(third, 2 * third),
      body.subarray(2 * third),
    ].filter((c) => c.length > 0);
  } else {
    chunks = [concat(head, body)];
  }
  labels.unshift(`${method || "(empty)"} ${target.text.slice(0, 60)}`);
  return {
    id,
    label: labels.join(", "),
    chunks,
    strict: strict && incomplete === undefined,
    incomplete,
    pauseMs,
    head: method === "HEAD",
  };
}

function makeTarget(
  rng: Rng,
  labels: string[],
): { text: string; route: string } {
  const roll = rng.int(100);
  if (roll < 45) {
    return { text: "/kv/" + makeKeyPath(rng, labels), route: "key" };
  }
  if (roll < 65) {
    return { text: "/kv/range" + makeRangeQuery(rng), route: "range" };
  }
  if (roll < 78) {
    return {
      text: "/kv/batch" + (rng.chance(0.1) ? "?x=1" : ""),
      route: "batch",
    };
  }
  const other = [
    "/health",
    "/health?x=1",
    "/stats",
    "/metrics",
    "/",
    "/kv",
    "/kv/",
    "//kv//x",
    "/KV/x",
    "/kv/%",
    "/kv/%zz",
    "/kv/%2",
    "/kv/..",
    "/kv/../etc/passwd",
    "/kv/%2e%2e/x",
    "/kv/a/./b",
    "/kv/%00",
    "/kv/x#frag",
    "/kv/x?ttl=-1",
    "/kv/x?ttl=1e309",
    "/kv/x?ttl=abc",
    "/kv/x?unknown=1",
    "/kv/x?&&&",
    "/kv/rang%65",
    "/kv/range/x",
    "/kv/batch/x",
    "*",
    "http://fuzz.test/kv/abs",
    "/kv/" + "k".repeat(5000),
    "/kv/" + "%41".repeat(1400),
    "/kv/" + "%ff".repeat(4097),
    "/nope/" + "z".repeat(rng.int(100)),
    "/kv/\u00e9t\u00e9",
    "/kv/sp ace",
    "",
  ];
  const text = rng.pick(other);
  return { text, route: "other" };
}

function makeKeyPath(rng: Rng, labels: string[]): string {
  const roll = rng.int(10);
  if (roll < 5) {
    // A plausible key: a fuzz prefix (never "!base/") and random bytes.
    const bytes = rng.bytes(rng.range(1, 40));
    return keyPath(concat(enc.encode("fz"), bytes)).slice(4);
  }
  if (roll < 7) {
    labels.push("bad escape");
    return "fz" + rng.pick(["%", "%g0", "%0", "%%41", "%u0041", "%2"]) +
      rng.int(99);
  }
  if (roll < 8) {
    labels.push("overlong key");
    return "fz" + "x".repeat(rng.pick([4094, 4095, 4096, 4097, 20000]));
  }
  if (roll < 9) {
    labels.push("dot segments");
    return rng.pick(["fz/../x", "fz/./x", "fz/%2E%2e/x", "..", ".", "fz/.."]);
  }
  return "fz" + encodeURIComponent(String.fromCharCode(...rng.bytes(8)));
}

function makeRangeQuery(rng: Rng): string {
  if (rng.chance(0.1)) return "";
  const params: string[] = [];
  const n = rng.range(1, 4);
  for (let i = 0; i < n; i++) {
    const name = rng.pick([
      "start",
      "end",
      "prefix",
      "limit",
      "reverse",
      "cursor",
      "keys_only",
      "bogus",
      "",
    ]);
    const value = rng.pick([
      "",
      "fz",
      "%ff%00",
      "%zz",
      "-1",
      "0",
      "10001",
      "99999999999999999999",
      "1.5",
      "true",
      "false",
      "maybe",
      "AAAA",
      "AQAAAAAAAAAAAAAAAAAAAAAAenp6",
      encodeURIComponent(String.fromCharCode(...rng.bytes(6))),
    ]);
    params.push(rng.chance(0.05) ? name : `${name}=${value}`);
  }
  return "?" + params.join("&");
}

function makeBody(
  rng: Rng,
  method: string,
  route: string,
  labels: string[],
): Uint8Array {
  if (method === "GET" || method === "HEAD" || method === "DELETE") {
    return rng.chance(0.9) ? new Uint8Array(0) : rng.bytes(rng.int(64));
  }
  if (route === "batch") {
    labels.push("batch body");
    return enc.encode(makeBatch(rng));
  }
  const roll = rng.int(10);
  if (roll < 6) return rng.bytes(rng.int(2048));
  if (roll < 7) {
    labels.push("value over the limit");
    return new Uint8Array((1 << 20) + rng.range(1, 64));
  }
  if (roll < 8) return new Uint8Array(0);
  return enc.encode(makeBatch(rng));
}

function b64key(rng: Rng): string {
  const roll = rng.int(10);
  if (roll < 7) {
    return concat(enc.encode("fz"), rng.bytes(rng.range(0, 20))).toBase64();
  }
  if (roll < 8) return rng.pick(["", "!!!", "AAA", "=", "YQ", "Zm9v=x"]);
  if (roll < 9) return new Uint8Array(5000).toBase64();
  return concat(enc.encode("fz"), new Uint8Array(0)).toBase64() + "%";
}

function makeBatch(rng: Rng): string {
  const roll = rng.int(20);
  if (roll === 0) return "{";
  if (roll === 1) return "[]";
  if (roll === 2) return "null";
  if (roll === 3) return '{"ops":[]}';
  if (roll === 4) return '{"ops":{}}';
  if (roll === 5) return "[".repeat(5000) + "]".repeat(5000);
  if (roll === 6) {
    return '{"ops":[' +
      '{"op":"check","key":"Zno=","if_none_match":"*"},'.repeat(10_000) + "1]}";
  }
  if (roll === 7) return String.fromCharCode(...rng.bytes(rng.int(200)));
  if (roll === 8) {
    return '{"ops":[{"op":"put","key":"Zno=","value":"Zno="}],"extra":1}';
  }
  const ops = [];
  const n = rng.range(1, 20);
  for (let i = 0; i < n; i++) {
    const op: Record<string, unknown> = {
      op: rng.pick(["put", "put", "delete", "check", "merge", 7, null]),
      key: rng.chance(0.95) ? b64key(rng) : rng.pick([1, null, [], {}]),
    };
    if (rng.chance(0.8)) {
      op.value = rng.chance(0.9)
        ? rng.bytes(rng.int(300)).toBase64()
        : rng.pick(["%%%", 42, null, "YQ"]);
    }
    if (rng.chance(0.1)) {
      op.ttl = rng.pick([1, -1, 0, 1e300, "5", 3600.5, null]);
    }
    if (rng.chance(0.1)) {
      op.if_match = rng.pick(['"1"', "1", "x", 5, '"99999999999999999"']);
    }
    if (rng.chance(0.1)) op.if_none_match = rng.pick(["*", "x", 1]);
    if (rng.chance(0.03)) op.unknown = true;
    ops.push(op);
  }
  return JSON.stringify({ ops });
}

function chunked(body: Uint8Array, rng: Rng): Uint8Array {
  const parts: Uint8Array[] = [];
  let off = 0;
  while (off < body.length) {
    const n = Math.min(body.length - off, rng.range(1, 700));
    parts.push(
      enc.encode(`${n.toString(16)}\r\n`),
      body.subarray(off, off + n),
      enc.encode("\r\n"),
    );
    off += n;
  }
  parts.push(enc.encode("0\r\n\r\n"));
  return concat(...parts);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
