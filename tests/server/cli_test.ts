/** Command-line parsing, help text and metric rendering, without a process. */
import { deepEqual, match, ok, throws } from "node:assert/strict";
import { parseCommandLine, UsageError } from "../../server/_cli.ts";
import { commandHelp, mainHelp } from "../../server/cli_help.ts";
import { exposureWarning } from "../../server/serve_config.ts";
import { labels, Metrics, renderEngine } from "../../server/metrics.ts";
import { logPath } from "../../server/main.ts";

const noEnv = () => undefined;

Deno.test("serve defaults match the issue: ./data, 127.0.0.1:8080, sync always, text logs", () => {
  const c = parseCommandLine(["serve"], noEnv);
  ok(c.command === "serve");
  deepEqual(
    [c.dataDir, c.host, c.port, c.sync, c.logFormat, c.authToken],
    ["./data", "127.0.0.1", 8080, "always", "text", undefined],
  );
  deepEqual(c.maxValueBytes, 16 << 20);
  deepEqual(c.maxBatchBytes, 8 << 20);
  deepEqual([c.compression, c.compactionBytesPerSecond], ["none", 0]);
  deepEqual(c.compactionNice, 10);
  deepEqual(c.gcThreadNice, 5);
  const d = parseCommandLine(
    [
      "serve",
      "--compression",
      "zstd",
      "--compaction-rate",
      "32MiB",
      "--compaction-nice",
      "19",
      "--gc-thread-nice",
      "0",
    ],
    noEnv,
  );
  ok(d.command === "serve");
  deepEqual([d.compression, d.compactionBytesPerSecond], ["zstd", 32 << 20]);
  deepEqual(d.compactionNice, 19);
  deepEqual(d.gcThreadNice, 0);
});

Deno.test("every flag has a SHALE_* env var and flags win over it", () => {
  const env: Record<string, string> = {
    SHALE_PORT: "9000",
    SHALE_DATA_DIR: "/env/dir",
    SHALE_AUTH_TOKEN: "tok-0123456789abcdef",
    SHALE_MEMTABLE_SIZE: "4MiB",
    SHALE_ACCESS_LOG: "true",
    SHALE_HOST: "", // empty means unset
  };
  const c = parseCommandLine(
    ["serve", "--port", "0", "--block-cache-size", "512K"],
    (n) => env[n],
  );
  ok(c.command === "serve");
  deepEqual(c.port, 0);
  deepEqual(c.dataDir, "/env/dir");
  deepEqual(c.authToken, "tok-0123456789abcdef");
  deepEqual(c.memtableBytes, 4 << 20);
  deepEqual(c.blockCacheBytes, 512 << 10);
  deepEqual(c.accessLog, true);
  deepEqual(c.host, "127.0.0.1");
});

Deno.test("a bad value is reported under the name it was given by: flag or env var", () => {
  const env: Record<string, string> = {
    SHALE_SYNC: "bogus",
    SHALE_PORT: "99999",
    SHALE_MEMTABLE_SIZE: "lots",
    SHALE_MAX_KEY_SIZE: "5000",
    SHALE_AUTH_TOKEN: "two words",
    SHALE_TLS_CERT: "c.pem",
    SHALE_LOG_FORMAT: "xml",
  };
  const cases: [string, RegExp][] = [
    [
      "SHALE_SYNC",
      /^SHALE_SYNC must be one of always, interval, none, got "bogus"$/,
    ],
    ["SHALE_PORT", /^SHALE_PORT must be an integer from 0 to 65535/],
    ["SHALE_MEMTABLE_SIZE", /^SHALE_MEMTABLE_SIZE must be a positive size/],
    ["SHALE_MAX_KEY_SIZE", /^SHALE_MAX_KEY_SIZE must be from 1 to 4096$/],
    ["SHALE_AUTH_TOKEN", /^SHALE_AUTH_TOKEN must be printable ASCII/],
    ["SHALE_TLS_CERT", /^SHALE_TLS_CERT and --tls-key must be given together$/],
    ["SHALE_LOG_FORMAT", /^SHALE_LOG_FORMAT must be one of text, json/],
  ];
  for (const [name, re] of cases) {
    throws(
      () =>
        parseCommandLine(["serve"], (n) => (n === name ? env[n] : undefined)),
      (err: unknown) => err instanceof UsageError && re.test(err.message),
      name,
    );
  }
  // The same value given as a flag is reported under the flag.
  throws(
    () => parseCommandLine(["serve", "--sync", "bogus"], noEnv),
    (err: unknown) =>
      err instanceof UsageError && /^--sync must be one of/.test(err.message),
  );
});

Deno.test("a non-loopback host without an auth token gets a warning", () => {
  for (const host of ["0.0.0.0", "::", "[::]", "192.168.1.5", "example.com"]) {
    match(
      exposureWarning(host, undefined) ?? "",
      /without an auth token/,
      host,
    );
    deepEqual(exposureWarning(host, "tok"), undefined, host);
  }
  for (const host of ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"]) {
    deepEqual(exposureWarning(host, undefined), undefined, host);
  }
});

Deno.test("bad command lines are usage errors", () => {
  for (
    const args of [
      [],
      ["--bogus"],
      ["frobnicate"],
      ["serve", "--bogus"],
      ["serve", "extra-positional"],
      ["serve", "--port", "70000"],
      ["serve", "--port", "-1"],
      ["serve", "--sync", "sometimes"],
      ["serve", "--log-format", "xml"],
      ["serve", "--tls-cert", "c.pem"],
      ["serve", "--memtable-size", "lots"],
      ["serve", "--compression", "lz4"],
      ["serve", "--compaction-rate", "fast"],
      ["serve", "--compaction-rate", "0"],
      ["serve", "--compaction-nice", "20"],
      ["serve", "--compaction-nice", "-1"],
      ["serve", "--gc-thread-nice", "20"],
      ["serve", "--gc-thread-nice", "ten"],
      ["serve", "--max-key-size", "5000"],
      ["serve", "--auth-token", "has space"],
      ["serve", "--port"],
      ["verify", "--port", "1"],
    ]
  ) {
    throws(() => parseCommandLine(args, noEnv), UsageError, args.join(" "));
  }
});

Deno.test("help lists commands, flags, env vars and defaults", () => {
  match(mainHelp(), /serve .*HTTP server/);
  match(mainHelp(), /verify /);
  const h = commandHelp("serve");
  for (
    const flag of [
      "data-dir",
      "host",
      "port",
      "sync",
      "auth-token",
      "tls-cert",
      "tls-key",
      "log-format",
    ]
  ) {
    match(h, new RegExp(`--${flag}`));
  }
  match(h, /\(default 127\.0\.0\.1\)/);
  match(h, /env SHALE_TLS_KEY/);
  const inv = parseCommandLine(["verify", "-h"], noEnv);
  ok(inv.command === "help");
  match(inv.text, /--data-dir/);
  deepEqual(parseCommandLine(["--version"], noEnv).command, "version");
});

Deno.test("metrics render histograms cumulatively and escape label values", () => {
  const m = new Metrics(0);
  m.begin();
  m.observe("/kv/{key}", "GET", 200, 0.0003);
  m.begin();
  m.observe("/kv/{key}", "GET", 200, 7);
  const text = m.render(undefined, [], 1000);
  match(text, /le="0\.00025"\} 0\n/);
  match(text, /le="0\.0005"\} 1\n/);
  match(text, /le="10"\} 2\n/);
  match(text, /le="\+Inf"\} 2\n/);
  match(text, /shale_uptime_seconds 1\n/);
  deepEqual(labels({ a: 'x"y\\z\n' }), '{a="x\\"y\\\\z\\n"}');
  const engine = renderEngine({
    ops: { puts: 3 },
    memtable: { bytes: 10, frozen: true },
    levels: [{ level: 0, tables: 2 }],
    name: "ignored",
  });
  deepEqual(engine, [
    "# HELP shale_engine_ops_puts_total Engine stats() field ops.puts.",
    "# TYPE shale_engine_ops_puts_total counter",
    "shale_engine_ops_puts_total 3",
    "# HELP shale_engine_memtable_bytes Engine stats() field memtable.bytes.",
    "# TYPE shale_engine_memtable_bytes gauge",
    "shale_engine_memtable_bytes 10",
    "# HELP shale_engine_memtable_frozen Engine stats() field memtable.frozen.",
    "# TYPE shale_engine_memtable_frozen gauge",
    "shale_engine_memtable_frozen 1",
    "# HELP shale_engine_levels_tables Engine stats() field levels.tables.",
    "# TYPE shale_engine_levels_tables gauge",
    'shale_engine_levels_tables{level="0"} 2',
  ]);
});

Deno.test("auth defaults: empty and short tokens and open non-loopback binds are refused", () => {
  const run = (args: string[], env: Record<string, string> = {}) =>
    parseCommandLine(["serve", ...args], (n) => env[n]);
  throws(() => run([], { SHALE_AUTH_TOKEN: "" }), /set but empty/);
  throws(() => run(["--auth-token", ""]), /set but empty/);
  throws(() => run(["--auth-token", "short"]), /at least 16 characters/);
  throws(
    () => run(["--host", "0.0.0.0"]),
    /without --auth-token.*--insecure-no-auth/,
  );
  const open = run(["--host", "0.0.0.0", "--insecure-no-auth"]);
  ok(open.command === "serve" && open.insecureNoAuth);
  const withToken = run(["--host", "::"], {
    SHALE_AUTH_TOKEN: "0123456789abcdef",
  });
  ok(withToken.command === "serve" && withToken.authToken !== undefined);
  for (const host of ["127.0.0.1", "localhost", "::1", "127.1.2.3"]) {
    ok(run(["--host", host]).command === "serve", host);
  }
});

Deno.test("the access log keeps the path, never the query string", () => {
  const lines: string[] = [];
  const req = new Request("http://localhost/kv/a?token=SECRET#x");
  lines.push(logPath(req));
  deepEqual(lines, ["/kv/a"]);
  const tricky = new Request("http://localhost/kv/a", {
    headers: { host: "localhost/kv/b?" },
  });
  deepEqual(logPath(tricky), "(invalid host)");
});

Deno.test("serve --help lists the new limits with their defaults", () => {
  const help = commandHelp("serve");
  for (
    const re of [
      /--max-batch-size SIZE .*\(default 8MiB\)/,
      /--max-body-memory SIZE .*\(default 32MiB\)/,
      /--cursor-max-age SECONDS .*\(default 60\)/,
      /--insecure-no-auth/,
      /--allow-host NAMES/,
      /--allow-origin ORIGINS/,
      /--public-url URL/,
      /JSON nested at most 32 levels/,
      /waits up to 1 s, then 503 overloaded/,
      /64 watches\s+per client and 1024 per server/,
    ]
  ) match(help, re);
});

Deno.test("--bun-listener: hardened by default, fast on request, anything else refused", () => {
  const c = parseCommandLine(["serve"], noEnv);
  ok(c.command === "serve");
  deepEqual(c.bunListener, "hardened");
  const f = parseCommandLine(["serve", "--bun-listener", "fast"], noEnv);
  ok(f.command === "serve");
  deepEqual(f.bunListener, "fast");
  throws(
    () => parseCommandLine(["serve", "--bun-listener", "quick"], noEnv),
    (e: unknown) => e instanceof UsageError && /--bun-listener/.test(e.message),
  );
  match(commandHelp("serve"), /--bun-listener KIND .*\(default hardened\)/);
});
