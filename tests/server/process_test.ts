/**
 * `server/main.ts` as a real process: start-up line, SIGTERM and SIGKILL
 * followed by a restart on the same data directory, env and flags, TLS,
 * exit codes, and `shale verify`.
 */
import { deepEqual, match, ok } from "node:assert/strict";
import { selfSignedCert } from "./_helpers.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const MAIN = `${ROOT}server/main.ts`;

/** The permissions of `deno task start`, so a missing one fails here too. */
async function startPermissions(): Promise<string[]> {
  const cfg = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  return (cfg.tasks.start as string).split(/\s+/).filter((t) =>
    t.startsWith("--allow-")
  );
}

interface Proc {
  child: Deno.ChildProcess;
  output(): string;
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code once both pipes are drained. */
  finished: Promise<number>;
}

async function spawn(
  args: string[],
  env: Record<string, string> = {},
): Promise<Proc> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...(await startPermissions()), MAIN, ...args],
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  let text = "";
  const drain = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s.pipeThrough(new TextDecoderStream())) {
      text += chunk;
    }
  };
  const pipes = Promise.all([drain(child.stdout), drain(child.stderr)]);
  const finished = Promise.all([pipes, child.status]).then(([, s]) => s.code);
  return {
    child,
    output: () => text,
    finished,
    async waitFor(re, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = text.match(re);
        if (m) return m;
        if (Date.now() > deadline) {
          throw new Error(`timed out waiting for ${re}; output:\n${text}`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}

async function startServe(
  dir: string,
  extra: string[] = [],
  env: Record<string, string> = {},
): Promise<{ proc: Proc; base: string }> {
  const proc = await spawn(
    ["serve", "--port", "0", "--data-dir", dir, ...extra],
    env,
  );
  const m = await proc.waitFor(/listening on (https?:\/\/[^\s"]+)/);
  return { proc, base: m[1] };
}

async function putAll(base: string, n: number, prefix: string) {
  for (let i = 0; i < n; i += 10) {
    const res = await Promise.all(
      Array.from(
        { length: Math.min(10, n - i) },
        (_, j) =>
          fetch(`${base}/kv/${prefix}${i + j}`, {
            method: "PUT",
            body: `value-${i + j}`,
          }),
      ),
    );
    for (const r of res) {
      deepEqual(r.status, 204);
      await r.body?.cancel();
    }
  }
}

async function checkAll(base: string, n: number, prefix: string) {
  for (let i = 0; i < n; i++) {
    const r = await fetch(`${base}/kv/${prefix}${i}`);
    deepEqual(r.status, 200, `${prefix}${i}`);
    deepEqual(await r.text(), `value-${i}`);
  }
}

Deno.test("SIGTERM closes cleanly (exit 0) and a restart reads every write back", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shale-proc-" });
  try {
    const a = await startServe(dir, ["--sync", "always"]);
    match(
      a.proc.output(),
      /listening on http:\/\/127\.0\.0\.1:\d+ data_dir=\S+ sync=always recovery_ms=[\d.]+/,
    );
    await putAll(a.base, 40, "t");
    a.proc.child.kill("SIGTERM");
    deepEqual(await a.proc.finished, 0, a.proc.output());
    match(a.proc.output(), /shutting down reason=SIGTERM/);
    match(a.proc.output(), /stopped code=0/);

    const b = await startServe(dir);
    await checkAll(b.base, 40, "t");
    b.proc.child.kill("SIGINT");
    deepEqual(await b.proc.finished, 0, b.proc.output());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("after SIGKILL every acknowledged write (sync=always) survives the restart", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shale-proc-" });
  try {
    const a = await startServe(dir, ["--sync", "always"]);
    await putAll(a.base, 40, "k");
    const del = await fetch(`${a.base}/kv/k3`, { method: "DELETE" });
    deepEqual(del.status, 204);
    a.proc.child.kill("SIGKILL");
    await a.proc.finished;

    const b = await startServe(dir);
    const r = await fetch(`${b.base}/kv/k3`);
    deepEqual(r.status, 404);
    await r.body?.cancel();
    for (const i of [0, 1, 2, 4, 20, 39]) {
      deepEqual(await (await fetch(`${b.base}/kv/k${i}`)).text(), `value-${i}`);
    }
    const scan = await (await fetch(`${b.base}/kv/range?keys_only=1`)).json();
    deepEqual(scan.items.length, 39);
    b.proc.child.kill("SIGTERM");
    deepEqual(await b.proc.finished, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("env vars configure serve (auth, JSON logs), flags win, TLS flags serve HTTPS", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shale-proc-" });
  try {
    const { cert, certFile, keyFile } = await selfSignedCert(dir);
    const { proc, base } = await startServe(
      `${dir}/data`,
      ["--tls-cert", certFile, "--tls-key", keyFile, "--sync", "none"],
      {
        SHALE_AUTH_TOKEN: "tok-0123456789abcdef",
        SHALE_LOG_FORMAT: "json",
        SHALE_SYNC: "interval",
        SHALE_PORT: "1", // the --port 0 flag wins
      },
    );
    match(base, /^https:\/\/127\.0\.0\.1:\d+$/);
    const line = JSON.parse(proc.output().split("\n")[0]);
    deepEqual(line.level, "info");
    deepEqual(line.sync, "none");
    deepEqual(line.auth, "on");
    const client = Deno.createHttpClient({ caCerts: [cert] });
    try {
      const url = base.replace("127.0.0.1", "localhost");
      const denied = await fetch(`${url}/kv/a`, { client });
      deepEqual(denied.status, 401);
      await denied.body?.cancel();
      const health = await fetch(`${url}/health`, { client });
      deepEqual(health.status, 200);
      await health.body?.cancel();
      const put = await fetch(`${url}/kv/a`, {
        method: "PUT",
        body: "v",
        headers: { authorization: "Bearer tok-0123456789abcdef" },
        client,
      });
      deepEqual(put.status, 204);
      await put.body?.cancel();
    } finally {
      client.close();
    }
    proc.child.kill("SIGTERM");
    deepEqual(await proc.finished, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--host 0.0.0.0 without an auth token needs --insecure-no-auth and starts with a warning line", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shale-proc-" });
  try {
    const refused = await spawn([
      "serve",
      "--data-dir",
      dir,
      "--host",
      "0.0.0.0",
      "--port",
      "0",
    ]);
    deepEqual(await refused.finished, 2);
    match(refused.output(), /--insecure-no-auth/);
    const { proc } = await startServe(dir, [
      "--host",
      "0.0.0.0",
      "--insecure-no-auth",
    ]);
    const first = proc.output().split("\n")[0];
    match(
      first,
      /warn.*listening on 0\.0\.0\.0, which other machines can reach, without an auth token/,
    );
    proc.child.kill("SIGTERM");
    deepEqual(await proc.finished, 0);
    // Loopback: no warning.
    const quiet = await startServe(dir);
    ok(!/auth token/.test(quiet.proc.output()), quiet.proc.output());
    quiet.proc.child.kill("SIGTERM");
    deepEqual(await quiet.proc.finished, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("usage errors exit 2 with a clear message; --help and --version exit 0", async () => {
  const bad = await spawn(["serve", "--no-such-flag"]);
  deepEqual(await bad.finished, 2);
  match(bad.output(), /shale: .*no-such-flag/);
  match(bad.output(), /shale serve --help/);

  const help = await spawn(["serve", "--help"]);
  deepEqual(await help.finished, 0);
  match(help.output(), /--data-dir DIR .*\(default \.\/data\)/);
  match(help.output(), /env SHALE_AUTH_TOKEN/);

  const version = await spawn(["--version"]);
  deepEqual(await version.finished, 0);
  match(version.output(), /^shale \d+\.\d+\.\d+/);
});

Deno.test("verify passes a clean directory and names file and offset of corruption", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shale-proc-" });
  try {
    const a = await startServe(dir, ["--sync", "always"]);
    await putAll(a.base, 30, "v");
    a.proc.child.kill("SIGTERM");
    deepEqual(await a.proc.finished, 0);

    const clean = await spawn(["verify", "--data-dir", dir]);
    deepEqual(await clean.finished, 0, clean.output());
    match(clean.output(), /verify ok .*wal_records=30/);

    // Flip a byte early in the WAL: a bad record mid-log is corruption.
    const log = [...Deno.readDirSync(dir)].map((e) => e.name).find((n) =>
      n.endsWith(".log")
    )!;
    const bytes = await Deno.readFile(`${dir}/${log}`);
    ok(bytes.length > 200);
    bytes[Math.floor(bytes.length / 4)] ^= 0xff;
    await Deno.writeFile(`${dir}/${log}`, bytes);
    const bad = await spawn(["verify", "--data-dir", dir]);
    deepEqual(await bad.finished, 1, bad.output());
    match(bad.output(), new RegExp(`corruption file=\\S*${log} offset=\\d+`));
    match(bad.output(), /verify found corruption/);

    const missing = await spawn(["verify", "--data-dir", `${dir}/nope`]);
    deepEqual(await missing.finished, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "serve warns at start when the data directory is accessible to other users",
  ignore: Deno.build.os === "windows",
  async fn() {
    const root = await Deno.makeTempDir({ prefix: "shale-proc-" });
    try {
      const dir = `${root}/data`;
      Deno.mkdirSync(dir);
      Deno.chmodSync(dir, 0o750);
      const a = await startServe(dir);
      a.proc.child.kill("SIGTERM");
      deepEqual(await a.proc.finished, 0, a.proc.output());
      match(
        a.proc.output(),
        /warn\s+data directory \S+ is accessible to other users \(mode 0750\)/,
      );
      // A directory the server creates itself is owner-only: no warning.
      const b = await startServe(`${root}/fresh`);
      b.proc.child.kill("SIGTERM");
      deepEqual(await b.proc.finished, 0, b.proc.output());
      ok(!/accessible to other users/.test(b.proc.output()), b.proc.output());
      deepEqual(Deno.statSync(`${root}/fresh`).mode! & 0o777, 0o700);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test("the access log records the path, never the query string", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shale-proc-" });
  try {
    const { proc, base } = await startServe(dir, ["--access-log"]);
    const res = await fetch(`${base}/kv/a?ttl=60&token=QUERY-SECRET`, {
      method: "PUT",
      body: "v",
    });
    await res.body?.cancel();
    await proc.waitFor(/request .*path="?\/kv\/a/);
    ok(!proc.output().includes("QUERY-SECRET"), proc.output());
    proc.child.kill("SIGTERM");
    deepEqual(await proc.finished, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
