/**
 * The command-line client (`shale get|put|del|scan|batch|watch`) as real
 * processes against a real HTTP server: binary keys and values through
 * stdin and files, scan paging through many keys, a batch file, conditions
 * and the exit codes scripts rely on, refused connections, usage errors,
 * and the token from the environment. The full set runs on Deno; a round
 * trip with the exit codes runs on every runtime (Bun and the binary too).
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { parseBatch } from "../../server/client_cli_input.ts";
import { Rng, withTempDir } from "../_helpers.ts";
import {
  SHALE_RUNTIMES,
  shaleCommand,
  type ShaleRuntime,
  unavailable,
} from "../_shale.ts";
import { withServer } from "./_helpers.ts";

interface Result {
  code: number;
  out: Uint8Array;
  text: string;
  err: string;
}

/** Runs `shale ARGS` on `rt` with `stdin` and only the given env vars. */
async function shale(
  args: string[],
  opts: {
    rt?: ShaleRuntime;
    stdin?: Uint8Array;
    env?: Record<string, string>;
  } = {},
): Promise<Result> {
  const c = await shaleCommand(opts.rt ?? "deno");
  const child = new Deno.Command(c.command, {
    args: [...c.args, ...args],
    // No inherited SHALE_* variables; keep what the runtimes need.
    env: { ...baseEnv(), NO_COLOR: "1", ...opts.env },
    clearEnv: true,
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(opts.stdin);
    await w.close();
  }
  const r = await child.output();
  return {
    code: r.code,
    out: r.stdout,
    text: new TextDecoder().decode(r.stdout),
    err: new TextDecoder().decode(r.stderr),
  };
}

function baseEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of ["HOME", "PATH", "DENO_DIR", "XDG_CACHE_HOME", "TMPDIR"]) {
    const v = Deno.env.get(k);
    if (v !== undefined) out[k] = v;
  }
  return out;
}

const enc = new TextEncoder();

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function b64(b: Uint8Array): string {
  return btoa(String.fromCharCode(...b));
}

function ok0(r: Result, what: string): void {
  equal(r.code, 0, `${what}: exit ${r.code}, stderr: ${r.err}`);
}

for (const rt of SHALE_RUNTIMES) {
  const why = unavailable(rt);
  Deno.test({
    name:
      `[${rt}] shale put/get/del: binary key and value through stdin, exit codes 0, 1, 3${
        why ? ` (ignored: ${why})` : ""
      }`,
    ignore: why !== undefined,
    fn: () =>
      withServer({}, async (s) => {
        const rng = new Rng(1401);
        // Every byte value, in a random order, in key and value.
        const key = rng.bytes(64);
        key[0] = 0;
        key[1] = 0x0a;
        const value = rng.bytes(5000);
        const url = ["--url", s.base];
        const put = await shale(
          ["put", "--key-hex", hex(key), "-", ...url],
          { rt, stdin: value },
        );
        ok0(put, "put");
        match(put.text, /^[0-9]+\n$/);
        const v = Number(put.text);
        deepEqual(s.db.get(key)?.value, value);

        const get = await shale(["get", "--key-hex", hex(key), ...url], {
          rt,
        });
        ok0(get, "get");
        deepEqual(get.out, value, "get writes the raw value bytes");

        const stale = await shale([
          "put",
          "--key-hex",
          hex(key),
          "x",
          "--if-version",
          String(v + 1000),
          ...url,
        ], { rt });
        equal(stale.code, 3, stale.err);
        match(stale.err, /precondition_failed/);

        ok0(
          await shale(
            ["del", "--key-hex", hex(key), "--if-version", String(v), ...url],
            { rt },
          ),
          "del",
        );
        const gone = await shale(["get", "--key-hex", hex(key), ...url], {
          rt,
        });
        equal(gone.code, 1, gone.err);
        equal(gone.out.length, 0);
      }),
  });
}

Deno.test("shale put/get: key from stdin, value and key from files, --json with --base64, --ttl", async () => {
  await withServer({}, async (s) => {
    await withTempDir(async (tmp) => {
      const url = ["--url", s.base];
      const key = new Uint8Array([0xff, 0xfe, 0x2f, 0x25, 0x00]);
      const value = new Uint8Array([0, 1, 2, 0xc3, 0x28, 0x0d, 0x0a]);
      await Deno.writeFile(`${tmp}/k`, key);
      await Deno.writeFile(`${tmp}/v`, value);
      ok0(
        await shale([
          "put",
          "--key-file",
          `${tmp}/k`,
          "--value-file",
          `${tmp}/v`,
          "--ttl",
          "3600",
          ...url,
        ]),
        "put from files",
      );
      const get = await shale(["get", "-", ...url], { stdin: key });
      ok0(get, "get with the key on stdin");
      deepEqual(get.out, value);
      const j = await shale(
        ["get", "--key-file", `${tmp}/k`, "--json", "--base64", ...url],
      );
      ok0(j, "get --json");
      const doc = JSON.parse(j.text);
      equal(doc.key, b64(key));
      equal(doc.value, b64(value));
      match(doc.version, /^[0-9]+$/);
      ok(
        doc.expires_at > Date.now() + 3500_000 &&
          doc.expires_at <= Date.now() + 3601_000,
        `expires_at ${doc.expires_at}`,
      );
      // After `--`, an argument starting with '-' is a value, not a flag.
      ok0(await shale(["put", "n", ...url, "--", "-5"]), "put -- -5");
      equal(new TextDecoder().decode(s.db.get(enc.encode("n"))!.value), "-5");
      // The value from an argument is its UTF-8 bytes.
      ok0(await shale(["put", "ключ", "значение", ...url]), "put utf-8");
      equal(
        new TextDecoder().decode(s.db.get(enc.encode("ключ"))!.value),
        "значение",
      );
    });
  });
});

Deno.test("shale scan: pages through many keys with cursors; json, text, hex, limit, reverse", async () => {
  await withServer({}, async (s) => {
    const n = 2500;
    const keys: string[] = [];
    for (let i = 0; i < n; i++) keys.push(`item/${String(i).padStart(5, "0")}`);
    for (let i = 0; i < n; i += 500) {
      await s.db.batch(
        keys.slice(i, i + 500).map((k) => ({
          type: "put" as const,
          key: enc.encode(k),
          value: enc.encode(`v${k}`),
        })),
      );
    }
    await s.db.put(enc.encode("other"), enc.encode("x"));
    const url = ["--url", s.base];
    // 2500 keys at 300 per page: 9 requests, each key exactly once.
    const all = await shale(
      ["scan", "--prefix", "item/", "--page-size", "300", ...url],
    );
    ok0(all, "scan");
    const lines = all.text.trimEnd().split("\n").map((l) => JSON.parse(l));
    equal(lines.length, n);
    deepEqual(lines.map((l) => l.key), keys);
    equal(lines[7].value, `v${keys[7]}`);
    match(lines[7].version, /^[0-9]+$/);

    const text = await shale([
      "scan",
      "--start",
      "item/00010",
      "--end",
      "item/00013",
      "--format",
      "text",
      ...url,
    ]);
    ok0(text, "scan text");
    equal(
      text.text,
      "item/00010\tvitem/00010\nitem/00011\tvitem/00011\nitem/00012\tvitem/00012\n",
    );

    const rev = await shale([
      "scan",
      "--prefix",
      hex(enc.encode("item/")),
      "--key-hex",
      "--reverse",
      "--limit",
      "2",
      "--keys-only",
      "--hex",
      "--format",
      "text",
      ...url,
    ]);
    ok0(rev, "scan reverse");
    equal(
      rev.text,
      `${hex(enc.encode(keys[n - 1]))}\n${hex(enc.encode(keys[n - 2]))}\n`,
    );

    // A key that is not UTF-8 needs --hex or --base64: exit 4, said why.
    await s.db.put(new Uint8Array([0x80]), enc.encode("y"));
    const bad = await shale(["scan", "--start", "p", ...url]);
    equal(bad.code, 4, bad.err);
    match(bad.err, /not valid UTF-8; use --hex or --base64/);
    const b = await shale(["scan", "--start", "p", "--base64", ...url]);
    ok0(b, "scan --base64");
    equal(JSON.parse(b.text.trim()).key, "gA==");
  });
});

Deno.test("shale batch: a JSON file applied atomically; a failed check exits 3 and writes nothing", async () => {
  await withServer({}, async (s) => {
    await withTempDir(async (tmp) => {
      const url = ["--url", s.base];
      const v0 = await s.db.put(enc.encode("acct/a"), enc.encode("100"));
      const file = `${tmp}/ops.json`;
      const bin = new Uint8Array([0, 0xff, 0x0a]);
      await Deno.writeTextFile(
        file,
        JSON.stringify({
          ops: [
            {
              op: "put",
              key: b64(enc.encode("acct/a")),
              value: b64(enc.encode("70")),
              if_match: String(v0),
            },
            { op: "put", key: b64(bin), value: b64(bin), ttl: 60 },
            { op: "delete", key: b64(enc.encode("nothing")) },
            { op: "delete_range", prefix: b64(enc.encode("tmp/")) },
          ],
        }),
      );
      await s.db.put(enc.encode("tmp/1"), enc.encode("scratch"));
      const r = await shale(["batch", file, ...url]);
      ok0(r, "batch");
      const doc = JSON.parse(r.text);
      equal(doc.applied, 4);
      equal(s.db.get(enc.encode("tmp/1")), undefined, "range deleted");
      match(doc.version, /^[0-9]+$/);
      deepEqual(s.db.get(bin)?.value, bin);
      equal(
        new TextDecoder().decode(s.db.get(enc.encode("acct/a"))!.value),
        "70",
      );

      // The same file again: the if_match is stale now.
      const again = await shale(["batch", "-", ...url], {
        stdin: await Deno.readFile(file),
      });
      equal(again.code, 3, again.err);
      match(again.err, /op 0: .*precondition_failed/);
      equal(
        new TextDecoder().decode(s.db.get(enc.encode("acct/a"))!.value),
        "70",
      );

      // A malformed file is a usage error, and nothing is sent.
      await Deno.writeTextFile(file, '{"ops":[{"op":"put","key":"YQ=="}]}');
      const bad = await shale(["batch", file, ...url]);
      equal(bad.code, 2, bad.err);
      match(bad.err, /ops\[0\]\.value must be base64 text/);
    });
  });
});

Deno.test("shale put --if-absent exits 3 when the key exists; the server's other errors exit 4", async () => {
  await withServer({}, async (s) => {
    const url = ["--url", s.base];
    ok0(await shale(["put", "k", "1", "--if-absent", ...url]), "first put");
    const second = await shale(["put", "k", "2", "--if-absent", ...url]);
    equal(second.code, 3, second.err);
    equal(
      new TextDecoder().decode(s.db.get(enc.encode("k"))!.value),
      "1",
    );
    // A key over the server's 4096-byte limit: 4xx that is not a condition.
    const big = await shale(["put", "x".repeat(5000), "v", ...url]);
    equal(big.code, 4, big.err);
  });
});

Deno.test("shale get: token from --token, SHALE_TOKEN or SHALE_AUTH_TOKEN, never printed; 401 exits 4", async () => {
  const token = "cli-token-0123456789";
  await withServer({ handler: { authToken: token } }, async (s) => {
    await s.db.put(enc.encode("t"), enc.encode("secret value"));
    const url = ["--url", s.base];
    const none = await shale(["get", "t", ...url]);
    equal(none.code, 4, none.err);
    ok(!none.err.includes(token));
    const wrong = await shale(["get", "t", "--token", "wrong-token-xxxxxxxx"]
      .concat(url));
    equal(wrong.code, 4);
    ok(!wrong.err.includes("wrong-token-xxxxxxxx"), wrong.err);
    for (
      const r of [
        await shale(["get", "t", "--token", token, ...url]),
        await shale(["get", "t", ...url], { env: { SHALE_TOKEN: token } }),
        await shale(["get", "t"], {
          env: { SHALE_AUTH_TOKEN: token, SHALE_URL: s.base },
        }),
      ]
    ) {
      ok0(r, "get with a token");
      equal(r.text, "secret value");
      ok(!r.err.includes(token));
    }
  });
});

Deno.test("shale get/put: connection refused exits 5", async () => {
  // A port that was just free: nothing listens there.
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const r = await shale(["get", "k", "--url", `http://127.0.0.1:${port}`]);
  equal(r.code, 5, r.err);
  match(r.err, /network_error/);
  const p = await shale(["put", "k", "v", "--url", `http://127.0.0.1:${port}`]);
  equal(p.code, 5, p.err);
});

Deno.test("shale client commands: usage errors exit 2 before anything is sent", async () => {
  // No server listens on this URL; exit 2 (not 5) shows nothing was sent.
  const url = ["--url", "http://127.0.0.1:1"];
  const cases: [string[], RegExp][] = [
    [["get", "k"], /get needs --url/],
    [["get", ...url], /expected KEY, got 0 arguments/],
    [["get", "a", "b", ...url], /expected KEY, got 2 arguments/],
    [["put", "k", ...url], /expected KEY VALUE/],
    [["put", "-", "-", ...url], /cannot both be '-'/],
    [["put", "k", "v", "--ttl=0", ...url], /--ttl must be a positive/],
    [["put", "k", "v", "--if-version", "x", ...url], /--if-version must be/],
    [
      ["put", "k", "v", "--if-version", "1", "--if-absent", ...url],
      /exclude each other/,
    ],
    [["get", "--key-hex", "zz", ...url], /not hex/],
    [["get", "", ...url], /the key is empty/],
    [["del", "k", "--ttl", "5", ...url], /del does not take --ttl/],
    [["scan", "--prefix", "a", "--start", "b", ...url], /--prefix excludes/],
    [["scan", "--format", "csv", ...url], /--format must be json or text/],
    [["scan", "--limit", "0", ...url], /--limit must be a positive integer/],
    [["get", "k", "--bogus", ...url], /bogus/],
    [["put", "n", "-5", ...url], /-5/],
    [["get", "k", "--url", "ftp://x"], /must be an http/],
    [["batch", "/nonexistent/ops.json", ...url], /cannot read the batch file/],
    [["watch", "--prefix", "a", "--end", "b", ...url], /--prefix excludes/],
    [["watch", "--since=1.5", ...url], /--since must be a version number/],
    [["watch", "--timeout", "5", ...url], /watch does not take --timeout/],
    [["watch", "k", ...url], /watch takes no arguments/],
  ];
  for (const [args, re] of cases) {
    const r = await shale(args);
    equal(r.code, 2, `${args.join(" ")}: exit ${r.code}, ${r.err}`);
    match(r.err, re, args.join(" "));
  }
  const help = await shale(["scan", "--help"]);
  ok0(help, "scan --help");
  match(help.text, /Exit codes: 0 ok, 1 not found/);
  const top = await shale(["--help"]);
  match(top.text, /Client commands/);
  match(top.text, /\bbatch\b/);
});

Deno.test("shale watch: a real process prints the changes made by shale put/del/batch as JSON lines, and exits 0 on SIGINT", async () => {
  await withServer({}, async (s) => {
    const url = ["--url", s.base];
    const before = await shale(["put", "w/0", "before the watch", ...url]);
    ok0(before, "put");
    const c = await shaleCommand("deno");
    const child = new Deno.Command(c.command, {
      args: [
        ...c.args,
        "watch",
        "--prefix",
        "w/",
        "--since",
        before.text.trim(),
        ...url,
      ],
      env: { ...baseEnv(), NO_COLOR: "1" },
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(child.stderr).text();
    const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    /** Reads stdout until it holds `n` lines (each line arrives flushed). */
    const untilLines = async (n: number) => {
      while (out.split("\n").length - 1 < n) {
        const r = await lines.read();
        if (r.done) throw new Error(`stdout ended after: ${out}`);
        out += r.value;
      }
    };
    try {
      const v1 = Number((await shale(["put", "w/1", "one", ...url])).text);
      // Each line is printed while the process keeps running.
      await untilLines(1);
      ok0(await shale(["put", "x/1", "outside the prefix", ...url]), "put");
      await withTempDir(async (dir) => {
        const file = `${dir}/ops.json`;
        await Deno.writeTextFile(
          file,
          JSON.stringify({
            ops: [
              {
                op: "put",
                key: b64(enc.encode("w/2")),
                value: b64(enc.encode("two")),
              },
              { op: "delete", key: b64(enc.encode("w/1")) },
              {
                op: "delete_range",
                start: b64(enc.encode("w/8")),
                end: b64(enc.encode("w/9")),
              },
            ],
          }),
        );
        ok0(await shale(["batch", file, ...url]), "batch");
      });
      const d = await shale(["del", "w/2", ...url]);
      ok0(d, "del");
      await untilLines(5);
      const got = out.trim().split("\n").map((l) => JSON.parse(l));
      const vb = Number(got[1].version);
      deepEqual(got, [
        { version: String(v1), type: "put", key: "w/1", value: "one" },
        { version: String(vb), type: "put", key: "w/2", value: "two" },
        { version: String(vb), type: "delete", key: "w/1" },
        { version: String(vb), type: "delete_range", start: "w/8", end: "w/9" },
        { version: String(vb + 1), type: "delete", key: "w/2" },
      ]);
    } finally {
      child.kill("SIGINT");
    }
    const status = await child.status;
    for (;;) {
      const r = await lines.read();
      if (r.done) break;
      out += r.value;
    }
    equal(status.code, 0, await stderr);
    equal(out.trim().split("\n").length, 5, out);
  });
});

Deno.test("parseBatch: the POST /kv/batch format, checked field by field", () => {
  deepEqual(
    parseBatch(
      '{"ops":[{"op":"check","key":"YQ==","if_none_match":"*"},{"op":"delete","key":"Yg==","if_match":"7"}]}',
    ),
    [
      {
        op: "check",
        key: new Uint8Array([0x61]),
        ifVersion: undefined,
        ifAbsent: true,
      },
      {
        op: "delete",
        key: new Uint8Array([0x62]),
        ifVersion: 7,
        ifAbsent: undefined,
      },
    ],
  );
  for (
    const [text, re] of [
      ["[]", /must be an object/],
      [
        '{"ops":[{"op":"zap","key":"YQ=="}]}',
        /op must be put, delete, check or delete_range/,
      ],
      ['{"ops":[{"op":"put","key":"YQ==","value":"!"}]}', /not valid base64/],
      ['{"ops":[{"op":"delete","key":"YQ==","value":"YQ=="}]}', /only a put/],
      ['{"ops":[{"op":"put","key":"YQ==","value":"","x":1}]}', /unknown field/],
      [
        '{"ops":[{"op":"delete_range","prefix":"YQ==","start":"YQ=="}]}',
        /prefix or start\/end/,
      ],
      ['{"ops":[{"op":"delete_range","key":"YQ=="}]}', /unknown field "key"/],
      ['{"ops":[{"op":"delete_range"}]}', /start must be base64 text/],
    ] as const
  ) {
    try {
      parseBatch(text);
      throw new Error(`accepted ${text}`);
    } catch (err) {
      match((err as Error).message, re);
    }
  }
});
