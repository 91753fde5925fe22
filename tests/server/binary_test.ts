/**
 * The single binary: builds it with the `compile` task of deno.json (into a
 * temp dir) and runs it. `deno compile` downloads its runtime base, which
 * fails on machines without that network access: the test then reports the
 * binary steps as ignored and prints why, without failing.
 */
import { deepEqual, match } from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url).pathname;

Deno.test("deno task compile builds one binary that serves and stops on SIGTERM", async (t) => {
  const tmp = await Deno.makeTempDir({ prefix: "shale-bin-" });
  try {
    const cfg = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
    const args = (cfg.tasks.compile as string).split(/\s+/).slice(1);
    const out = args.indexOf("--output");
    const binary = `${tmp}/shale`;
    args[out + 1] = binary;
    const build = await new Deno.Command(Deno.execPath(), {
      args,
      cwd: ROOT,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const built = build.success;
    if (!built) {
      const why = new TextDecoder().decode(build.stderr).trim().split("\n")
        .filter((l) => /error|fail/i.test(l)).slice(0, 2).join(" | ");
      console.log(
        `SKIPPED: the single-binary steps, because 'deno compile' failed ` +
          `(it downloads its runtime base; no network here?): ${why}`,
      );
    }
    await t.step({
      name: "the binary prints its version",
      ignore: !built,
      fn: async () => {
        const v = await new Deno.Command(binary, { args: ["--version"] })
          .output();
        deepEqual(v.code, 0);
        match(new TextDecoder().decode(v.stdout), /^shale \d/);
      },
    });
    await t.step({
      name: "the binary serves, then exits 0 on SIGTERM",
      ignore: !built,
      fn: async () => {
        const child = new Deno.Command(binary, {
          args: ["serve", "--port", "0", "--data-dir", `${tmp}/data`],
          stdout: "piped",
          stderr: "inherit",
        }).spawn();
        const reader = child.stdout.pipeThrough(new TextDecoderStream())
          .getReader();
        let text = "";
        let m: RegExpMatchArray | null = null;
        while (m === null) {
          const { value, done } = await reader.read();
          if (done) throw new Error(`binary exited early: ${text}`);
          text += value;
          m = text.match(/listening on (http:\/\/\S+)/);
        }
        const base = m[1];
        const put = await fetch(`${base}/kv/bin`, {
          method: "PUT",
          body: "ok",
        });
        deepEqual(put.status, 204);
        await put.body?.cancel();
        deepEqual(await (await fetch(`${base}/kv/bin`)).text(), "ok");
        child.kill("SIGTERM");
        while (!(await reader.read()).done) { /* drain */ }
        deepEqual((await child.status).code, 0);
      },
    });
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
