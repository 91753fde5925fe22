/**
 * The single binary: `bun build --compile` (what `make build` runs) builds
 * it offline, it runs from any directory with its compaction worker
 * embedded, and its LOCK excludes a Deno process on the same data directory
 * (and the other way round). The command-line, HTTP, crash and verify
 * checks run against it in process_test.ts and tests/fault/.
 */
import { deepEqual, match, ok } from "node:assert/strict";
import {
  BUILD_ARGS,
  bunPath,
  REPO,
  shaleCommand,
  unavailable,
} from "../_shale.ts";

const why = unavailable("binary");

/** Spawns `program args` and waits for its listening line. */
async function serve(
  program: string,
  args: string[],
  cwd: string,
): Promise<{ child: Deno.ChildProcess; base: string; output: () => string }> {
  const child = new Deno.Command(program, {
    args,
    cwd,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const c of s.pipeThrough(new TextDecoderStream())) text += c;
  };
  pump(child.stdout);
  pump(child.stderr);
  const deadline = Date.now() + 20_000;
  for (;;) {
    const m = text.match(/listening on (http:\/\/[^\s"]+)/);
    if (m) return { child, base: m[1], output: () => text };
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`no listening line:\n${text}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test({
  name:
    `bun build --compile builds one binary offline that runs from any directory with its worker${
      why ? ` (ignored: ${why})` : ""
    }`,
  ignore: why !== undefined,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "shale-bin-" });
    try {
      const binary = `${tmp}/shale`;
      const build = await new Deno.Command(bunPath()!, {
        args: [...BUILD_ARGS, "--outfile", binary],
        cwd: REPO,
        stdout: "piped",
        stderr: "piped",
      }).output();
      deepEqual(
        build.code,
        0,
        new TextDecoder().decode(build.stderr),
      );
      const size = (await Deno.stat(binary)).size;
      ok(size > 10 << 20, `a self-contained binary holds its runtime: ${size}`);

      // Run it from an empty directory: nothing but the binary is needed.
      const run = `${tmp}/run`;
      await Deno.mkdir(run);
      const s = await serve(
        binary,
        [
          "serve",
          "--port",
          "0",
          "--data-dir",
          "data",
          "--memtable-size",
          "16K",
        ],
        run,
      );
      const value = "v".repeat(4000);
      for (let i = 0; i < 60; i++) {
        const r = await fetch(`${s.base}/kv/k${i}`, {
          method: "PUT",
          body: value,
        });
        deepEqual(r.status, 204);
        await r.body?.cancel();
      }
      // Flushes and compactions run in the worker: a worker the binary
      // could not load would leave writes stalled and these at zero.
      let ops: { flushes: number; compactions: number } | undefined;
      for (let i = 0; i < 100; i++) {
        ops = (await (await fetch(`${s.base}/stats`)).json()).engine.ops;
        if (ops!.flushes > 0 && ops!.compactions > 0) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      ok(ops!.flushes > 0 && ops!.compactions > 0, JSON.stringify(ops));
      deepEqual(await (await fetch(`${s.base}/kv/k59`)).text(), value);
      s.child.kill("SIGTERM");
      deepEqual((await s.child.status).code, 0, s.output());
      match(s.output(), /runtime="bun \d/);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test({
  name:
    `a data directory open in a Deno server is refused to the Bun binary, and the other way round, with LOCK deleted${
      why ? ` (ignored: ${why})` : ""
    }`,
  ignore: why !== undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "shale-bin-lock-" });
    try {
      const deno = await shaleCommand("deno");
      const bin = await shaleCommand("binary");
      for (
        const [holder, other] of [[deno, bin], [bin, deno]] as const
      ) {
        const s = await serve(
          holder.command,
          [...holder.args, "serve", "--port", "0", "--data-dir", dir],
          REPO,
        );
        // The directory itself is locked: deleting LOCK changes nothing.
        await Deno.remove(`${dir}/LOCK`);
        const out = await new Deno.Command(other.command, {
          args: [...other.args, "serve", "--port", "0", "--data-dir", dir],
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).output();
        const text = new TextDecoder().decode(out.stdout) +
          new TextDecoder().decode(out.stderr);
        deepEqual(out.code, 1, text);
        match(text, /locked by another process/);
        s.child.kill("SIGTERM");
        deepEqual((await s.child.status).code, 0, s.output());
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
