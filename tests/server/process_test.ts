/**
 * `shale` as a real process, on every runtime (Deno, Bun, and the binary
 * `dist/shale` built with `bun build --compile`): start-up line, SIGTERM and
 * SIGKILL followed by a restart on the same data directory, env and flags,
 * TLS, exit codes, and `shale verify`.
 */
import { deepEqual, match, ok } from "node:assert/strict";
import { selfSignedCert } from "./_helpers.ts";
import {
  bunPath,
  eachRuntime,
  type PipedProcess,
  REPO,
  shaleCommand,
  type ShaleRuntime,
  spawnPiped,
  unavailable,
} from "../_shale.ts";

/** The permissions of `deno task start`, so a missing one fails here too. */
async function startPermissions(): Promise<string[]> {
  const cfg = JSON.parse(await Deno.readTextFile(`${REPO}deno.json`));
  return (cfg.tasks.start as string).split(/\s+/).filter((t) =>
    t.startsWith("--allow-")
  );
}

/** The program and arguments that run `shale` on `rt`. */
async function command(rt: ShaleRuntime): Promise<[string, string[]]> {
  const c = await shaleCommand(rt);
  if (rt !== "deno") return [c.command, c.args];
  // deno run: exactly the permissions of `deno task start`.
  const perms = await startPermissions();
  return [c.command, ["run", ...perms, c.args[c.args.length - 1]]];
}

type Proc = PipedProcess;

async function spawn(
  rt: ShaleRuntime,
  args: string[],
  env: Record<string, string> = {},
  ulimit?: string,
): Promise<Proc> {
  const [program, lead] = await command(rt);
  // Resource limits (`ulimit` flags, e.g. "-n 128") are set by a shell
  // that then becomes the server.
  const argv = ulimit === undefined ? [program, ...lead, ...args] : [
    "sh",
    "-c",
    `ulimit ${ulimit} && exec "$@"`,
    "sh",
    program,
    ...lead,
    ...args,
  ];
  return spawnPiped(argv, env);
}

async function startServe(
  rt: ShaleRuntime,
  dir: string,
  extra: string[] = [],
  env: Record<string, string> = {},
  ulimit?: string,
): Promise<{ proc: Proc; base: string }> {
  const proc = await spawn(
    rt,
    ["serve", "--port", "0", "--data-dir", dir, ...extra],
    env,
    ulimit,
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

eachRuntime(
  "SIGTERM closes cleanly (exit 0) and a restart reads every write back",
  async (rt) => {
    const dir = await Deno.makeTempDir({ prefix: "shale-proc-" });
    try {
      const a = await startServe(rt, dir, ["--sync", "always"]);
      match(
        a.proc.output(),
        /listening on http:\/\/127\.0\.0\.1:\d+ data_dir=\S+ sync=always recovery_ms=[\d.]+/,
      );
      await putAll(a.base, 40, "t");
      a.proc.child.kill("SIGTERM");
      deepEqual(await a.proc.finished, 0, a.proc.output());
      match(a.proc.output(), /shutting down reason=SIGTERM/);
      match(a.proc.output(), /stopped code=0/);

      const b = await startServe(rt, dir);
      await checkAll(b.base, 40, "t");
      b.proc.child.kill("SIGINT");
      deepEqual(await b.proc.finished, 0, b.proc.output());
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

eachRuntime(
  "after SIGKILL every acknowledged write (sync=always) survives the restart",
  async (rt) => {
    const dir = await Deno.makeTempDir({ prefix: "shale-proc-" });
    try {
      const a = await startServe(rt, dir, ["--sync", "always"]);
      await putAll(a.base, 40, "k");
      const del = await fetch(`${a.base}/kv/k3`, { method: "DELETE" });
      deepEqual(del.status, 204);
      a.proc.child.kill("SIGKILL");
      await a.proc.finished;

      const b = await startServe(rt, dir);
      const r = await fetch(`${b.base}/kv/k3`);
      deepEqual(r.status, 404);
      await r.body?.cancel();
      for (const i of [0, 1, 2, 4, 20, 39]) {
        deepEqual(
          await (await fetch(`${b.base}/kv/k${i}`)).text(),
          `value-${i}`,
        );
      }
      const scan = await (await fetch(`${b.base}/kv/range?keys_only=1`)).json();
      deepEqual(scan.items.length, 39);
      b.proc.child.kill("SIGTERM");
      deepEqual(await b.proc.finished, 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

eachRuntime(
  "env vars configure serve (auth, JSON logs), flags win, TLS flags serve HTTPS",
  async (rt) => {
    const dir = await Deno.makeTempDir({ prefix: "shale-proc-" });
    try {
      const { cert, certFile, keyFile } = await selfSignedCert(dir);
      const { proc, base } = await startServe(
        rt,
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
      deepEqual(await proc.finished, 0, proc.output());
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

eachRuntime(
  "usage errors exit 2 with a clear message; --help and --version exit 0",
  async (rt) => {
    const bad = await spawn(rt, ["serve", "--no-such-flag"]);
    deepEqual(await bad.finished, 2);
    match(bad.output(), /shale: .*no-such-flag/);
    match(bad.output(), /shale serve --help/);

    const help = await spawn(rt, ["serve", "--help"]);
    deepEqual(await help.finished, 0);
    match(help.output(), /--data-dir DIR .*\(default \.\/data\)/);
    match(help.output(), /env SHALE_AUTH_TOKEN/);

    const version = await spawn(rt, ["--version"]);
    deepEqual(await version.finished, 0);
    match(version.output(), /^shale \d+\.\d+\.\d+ \((deno|bun) \d+\.\d+/);
    // The binary is built with Bun.
    match(version.output(), rt === "deno" ? /\(deno / : /\(bun /);
  },
);

eachRuntime(
  "verify passes a clean directory and names file and offset of corruption",
  async (rt) => {
    const dir = await Deno.makeTempDir({ prefix: "shale-proc-" });
    try {
      const a = await startServe(rt, dir, ["--sync", "always"]);
      await putAll(a.base, 30, "v");
      a.proc.child.kill("SIGTERM");
      deepEqual(await a.proc.finished, 0);

      const clean = await spawn(rt, ["verify", "--data-dir", dir]);
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
      const bad = await spawn(rt, ["verify", "--data-dir", dir]);
      deepEqual(await bad.finished, 1, bad.output());
      match(bad.output(), new RegExp(`corruption file=\\S*${log} offset=\\d+`));
      match(bad.output(), /verify found corruption/);

      const missing = await spawn(rt, ["verify", "--data-dir", `${dir}/nope`]);
      deepEqual(await missing.finished, 1);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
eachRuntime(
  "--host 0.0.0.0 without an auth token needs --insecure-no-auth and starts with a warning line",
  async (rt) => {
    const dir = await Deno.makeTempDir({ prefix: "shale-proc-" });
    try {
      const refused = await spawn(rt, [
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
      const { proc } = await startServe(rt, dir, [
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
      const quiet = await startServe(rt, dir);
      ok(!/auth token/.test(quiet.proc.output()), quiet.proc.output());
      quiet.proc.child.kill("SIGTERM");
      deepEqual(await quiet.proc.finished, 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

eachRuntime(
  "serve warns at start when the data directory is accessible to other users",
  async (rt) => {
    const root = await Deno.makeTempDir({ prefix: "shale-proc-" });
    try {
      const dir = `${root}/data`;
      Deno.mkdirSync(dir);
      Deno.chmodSync(dir, 0o750);
      const a = await startServe(rt, dir);
      a.proc.child.kill("SIGTERM");
      deepEqual(await a.proc.finished, 0, a.proc.output());
      match(
        a.proc.output(),
        /warn\s+data directory \S+ is accessible to other users \(mode 0750\)/,
      );
      // A directory the server creates itself is owner-only: no warning.
      const b = await startServe(rt, `${root}/fresh`);
      b.proc.child.kill("SIGTERM");
      deepEqual(await b.proc.finished, 0, b.proc.output());
      ok(!/accessible to other users/.test(b.proc.output()), b.proc.output());
      deepEqual(Deno.statSync(`${root}/fresh`).mode! & 0o777, 0o700);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
);

Deno.test({
  name: `./shale (the README's way to run from source) runs on Deno and on Bun${
    unavailable("bun") ? ` (ignored: ${unavailable("bun")})` : ""
  }`,
  ignore: unavailable("bun") !== undefined,
  async fn() {
    // PATH without deno or bun: the script must find the ones it runs.
    const dir = Deno.execPath().replace(/\/[^/]+$/, "");
    for (const [rt, tool] of [["deno", dir], ["bun", bunDir()]] as const) {
      const out = await new Deno.Command(`${REPO}shale`, {
        args: ["--version"],
        env: { PATH: `${tool}:/usr/bin:/bin`, SHALE_RUNTIME: rt },
        clearEnv: true,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout) +
        new TextDecoder().decode(out.stderr);
      deepEqual(out.code, 0, text);
      match(text, new RegExp(`^shale \\d+\\.\\d+\\.\\d+ \\(${rt} `));
    }
  },
});

function bunDir(): string {
  return bunPath()!.replace(/\/[^/]+$/, "");
}

eachRuntime(
  "out of file descriptors (idle connections past ulimit -n): the server keeps running and serves again once they close",
  async (rt) => {
    const dir = await Deno.makeTempDir({ prefix: "shale-proc-" });
    const FDS = 128;
    try {
      // Soft and hard limit: the runtime cannot raise it. A cap above the
      // limit, so the descriptors run out before it (the next test has
      // the default cap).
      const { proc, base } = await startServe(
        rt,
        dir,
        ["--max-connections", "1000"],
        {},
        `-n ${FDS}`,
      );
      const port = Number(new URL(base).port);
      // A keep-alive connection made before the flood.
      const early = await Deno.connect({ hostname: "127.0.0.1", port });
      const ask = async () => {
        await early.write(
          new TextEncoder().encode("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"),
        );
        const buf = new Uint8Array(4096);
        const n = await early.read(buf);
        return new TextDecoder().decode(buf.subarray(0, n ?? 0));
      };
      match(await ask(), /^HTTP\/1\.1 200/);
      // More idle sockets than the server has descriptors (bounded).
      const idle: Deno.Conn[] = [];
      for (let i = 0; i < FDS + 40; i++) {
        try {
          idle.push(await Deno.connect({ hostname: "127.0.0.1", port }));
        } catch {
          break; // refused: the listener is out of descriptors
        }
      }
      await new Promise((r) => setTimeout(r, 1000));
      // Connections it already had are still served.
      match(await ask(), /^HTTP\/1\.1 200/);
      for (const c of idle) c.close();
      early.close();
      // Once they are gone, new connections are served again.
      let status = 0;
      for (let i = 0; i < 100 && status !== 200; i++) {
        try {
          const r = await fetch(`${base}/health`, {
            signal: AbortSignal.timeout(1000),
          });
          status = r.status;
          await r.body?.cancel();
        } catch {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      deepEqual(status, 200, proc.output());
      if (rt === "deno") {
        // Deno's listener died of it and was bound again; Bun's never stops.
        match(proc.output(), /warn\s+out of file descriptors/);
        match(proc.output(), /listening again/);
      }
      proc.child.kill("SIGTERM");
      deepEqual(await proc.finished, 0, proc.output());
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

eachRuntime(
  "the default connection cap stays below ulimit -n: idle connections past it get 503 and the server never runs out of descriptors",
  async (rt) => {
    const dir = await Deno.makeTempDir({ prefix: "shale-proc-" });
    const FDS = 128;
    try {
      const { proc, base } = await startServe(
        rt,
        dir,
        ["--header-timeout", "4"],
        {},
        `-n ${FDS}`,
      );
      // Deno (without --allow-all) counts the descriptors free at start,
      // Bun reads the limit; both keep at least 32 of them for files.
      const cap = Number(proc.output().match(/max_connections=(\d+)/)?.[1]);
      ok(cap > 16 && cap <= FDS - 32, `cap ${cap}`);
      const port = Number(new URL(base).port);
      const idle: Deno.Conn[] = [];
      for (let i = 0; i < FDS + 40; i++) {
        idle.push(await Deno.connect({ hostname: "127.0.0.1", port }));
      }
      // Those past the cap are answered 503 and closed. Bun's listener
      // accepts a connection that sends nothing only after about 1 s
      // (TCP_DEFER_ACCEPT), so the answers are awaited up to 3 s, within
      // the header timeout (a held connection closing would free a slot).
      let refused = 0;
      await Promise.all(idle.map(async (c) => {
        const buf = new Uint8Array(512);
        const n = await Promise.race([
          c.read(buf).catch(() => null),
          new Promise<null>((r) => setTimeout(() => r(null), 3000)),
        ]);
        if (n && /^HTTP\/1\.1 503/.test(new TextDecoder().decode(buf))) {
          refused++;
        }
      }));
      deepEqual(refused, FDS + 40 - cap);
      // The held ones time out (--header-timeout 4); then /health answers
      // (until then a 503 too_many_connections).
      let status = 0;
      for (let i = 0; i < 60 && status !== 200; i++) {
        try {
          const r = await fetch(`${base}/health`, {
            signal: AbortSignal.timeout(1000),
          });
          status = r.status;
          await r.body?.cancel();
        } catch {
          // refused or reset: try again
        }
        if (status !== 200) await new Promise((r) => setTimeout(r, 100));
      }
      deepEqual(status, 200, proc.output());
      for (const c of idle) {
        try {
          c.close();
        } catch { /* closed by the server */ }
      }
      ok(!/out of file descriptors/.test(proc.output()), proc.output());
      proc.child.kill("SIGTERM");
      deepEqual(await proc.finished, 0, proc.output());
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

eachRuntime(
  "the soft descriptor limit is raised to the hard limit at start",
  async (rt) => {
    const dir = await Deno.makeTempDir({ prefix: "shale-proc-" });
    try {
      const hard = Number(
        new TextDecoder().decode(
          (await new Deno.Command("sh", {
            args: ["-c", "ulimit -Hn"],
            stdout: "piped",
          }).output()).stdout,
        ).trim(),
      );
      ok(hard > 256, `hard limit ${hard}`);
      const { proc } = await startServe(rt, dir, [], {}, "-Sn 256");
      // Through cat: reading /proc directly needs --allow-all.
      const limits = new TextDecoder().decode(
        (await new Deno.Command("cat", {
          args: [`/proc/${proc.child.pid}/limits`],
          stdout: "piped",
        }).output()).stdout,
      );
      const m = limits.match(/^Max open files\s+(\d+)\s+(\d+)/m);
      deepEqual([Number(m?.[1]), Number(m?.[2])], [hard, hard], limits);
      proc.child.kill("SIGTERM");
      deepEqual(await proc.finished, 0, proc.output());
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

eachRuntime(
  "the access log records the path, never the query string",
  async (rt) => {
    const dir = await Deno.makeTempDir({ prefix: "shale-proc-" });
    try {
      const { proc, base } = await startServe(rt, dir, ["--access-log"]);
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
  },
);

Deno.test({
  name:
    `[bun] --bun-listener fast serves with Bun.serve and says at start what it does not enforce${
      unavailable("bun") ? ` (ignored: ${unavailable("bun")})` : ""
    }`,
  ignore: unavailable("bun") !== undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "shale-proc-" });
    try {
      const { proc, base } = await startServe("bun", dir, [
        "--bun-listener",
        "fast",
        "--sync",
        "none",
      ]);
      match(proc.output(), /max_connections=none/);
      // Logged right after the listening line.
      for (let i = 0; i < 100 && !/not enforced/.test(proc.output()); i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      match(proc.output(), /not enforced.*no connection cap/);
      const put = await fetch(`${base}/kv/a`, { method: "PUT", body: "v" });
      deepEqual(put.status, 204);
      const get = await fetch(`${base}/kv/a`);
      deepEqual(await get.text(), "v");
      const stats = await (await fetch(`${base}/stats`)).json();
      deepEqual(stats.server.connections.open, null);
      deepEqual(stats.server.connections.max, 0);
      proc.child.kill("SIGTERM");
      deepEqual(await proc.finished, 0, proc.output());
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

eachRuntime(
  "the start-up line says how many garbage-collector threads were reniced, and why none when none",
  async (rt) => {
    const dir = await Deno.makeTempDir({ prefix: "shale-proc-" });
    try {
      const a = await startServe(rt, dir, ["--sync", "none"]);
      const n = Number(a.proc.output().match(/gc_threads_reniced=(\d+)/)?.[1]);
      if (rt === "deno" && Deno.build.os === "linux") {
        // `deno task start`'s permissions include --allow-ffi.
        ok(n >= 1, a.proc.output());
        ok(!/keep their priority/.test(a.proc.output()), a.proc.output());
      } else {
        deepEqual(n, 0, a.proc.output());
        // Logged right after the listening line.
        await a.proc.waitFor(/keep their priority why=/);
      }
      a.proc.child.kill("SIGTERM");
      deepEqual(await a.proc.finished, 0, a.proc.output());

      const b = await startServe(rt, dir, ["--gc-thread-nice", "0"]);
      match(b.proc.output(), /gc_threads_reniced=0/);
      ok(!/keep their priority/.test(b.proc.output()), b.proc.output());
      b.proc.child.kill("SIGTERM");
      deepEqual(await b.proc.finished, 0, b.proc.output());
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
