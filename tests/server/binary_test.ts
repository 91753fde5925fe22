/**
 * The single binary: builds it with the `compile` task of deno.json (into a
 * temp dir) and runs it. `deno compile` downloads its runtime base, which
 * fails on machines without that network access. The build therefore runs
 * before the test is registered: when it fails, the test shows as ignored
 * with the reason in its name.
 */
import { deepEqual, match } from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url).pathname;

/** Builds the binary into `tmp`; the reason when `deno compile` failed. */
async function build(tmp: string): Promise<string | undefined> {
  const cfg = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  const args = (cfg.tasks.compile as string).split(/\s+/).slice(1);
  const out = args.indexOf("--output");
  args[out + 1] = `${tmp}/shale`;
  const res = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (res.success) return undefined;
  const why = new TextDecoder().decode(res.stderr).trim().split("\n")
    .filter((l) => /error|fail/i.test(l)).slice(0, 2).join(" | ");
  return `'deno compile' failed (it downloads its runtime base; no network here?): ${why}`;
}

const tmp = await Deno.makeTempDir({ prefix: "shale-bin-" });
const notBuilt = await build(tmp);
if (notBuilt !== undefined) await Deno.remove(tmp, { recursive: true });

Deno.test({
  name: "deno task compile builds one binary that serves and stops on SIGTERM" +
    (notBuilt === undefined ? "" : ` -- ignored: ${notBuilt}`),
  ignore: notBuilt !== undefined,
  fn: async (t) => {
    const binary = `${tmp}/shale`;
    try {
      await t.step({
        name: "the binary prints its version",
        fn: async () => {
          const v = await new Deno.Command(binary, { args: ["--version"] })
            .output();
          deepEqual(v.code, 0);
          match(new TextDecoder().decode(v.stdout), /^shale \d/);
        },
      });
      await t.step({
        name: "the binary serves, then exits 0 on SIGTERM",
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
  },
});
