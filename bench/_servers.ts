/**
 * The servers the HTTP benchmark measures, as processes: started from a
 * command line, ready once they print their loopback URL.
 *
 * @module
 */

/**
 * The `--v8-flags=...` of deno.json's `start` task (how `make run` starts
 * the server), for benchmarks that run `server/main.ts` the way users do.
 */
export function startTaskV8Flags(): string[] {
  const config = JSON.parse(
    Deno.readTextFileSync(new URL("../deno.json", import.meta.url)),
  );
  return String(config.tasks.start).split(/\s+/).filter((a) =>
    a.startsWith("--v8-flags=")
  );
}

/** A benchmarked server process. */
export interface Server {
  url: string;
  child: Deno.ChildProcess;
  log: string[];
  /**
   * CPU seconds (user + system, every thread) the process has used so far,
   * from /proc; NaN where there is no /proc. Per-request CPU is the
   * measure that holds up on a shared machine, where req/s depends on what
   * else runs.
   */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on Linux). */
const USER_HZ = 100;
const encoder = new TextEncoder();

/**
 * Where a server's whole output goes besides the first 200 lines kept in
 * memory: `$BENCH_SERVER_LOG.<pid>` when that variable is set (for
 * `--v8-flags=--trace-gc` and the like, which print a line per event).
 */
function serverLogFile(pid: number): Deno.FsFile | undefined {
  const prefix = Deno.env.get("BENCH_SERVER_LOG");
  if (prefix === undefined || prefix === "") return undefined;
  return Deno.openSync(`${prefix}.${pid}`, { create: true, append: true });
}

/** utime + stime of process `pid` in seconds, or NaN. */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // Fields after the command name (in parentheses, may hold spaces):
    // state is field 3, utime 14, stime 15.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / USER_HZ;
  } catch {
    return NaN;
  }
}

/**
 * Starts `cmd` and waits (60 s at most) for it to print its
 * `http://127.0.0.1:PORT` URL; `stop()` sends SIGTERM, then SIGKILL.
 */
export async function startServer(
  cmd: string[],
  name: string,
): Promise<Server> {
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  const log: string[] = [];
  let resolveUrl: (u: string) => void;
  const urlP = new Promise<string>((r) => (resolveUrl = r));
  const logFile = serverLogFile(child.pid);
  const drain = async (s: ReadableStream<Uint8Array>) => {
    let buf = "";
    for await (const chunk of s.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (log.length < 200) log.push(line);
        logFile?.writeSync(encoder.encode(line + "\n"));
        const m = /http:\/\/127\.0\.0\.1:(\d+)/.exec(line);
        if (m) resolveUrl(`http://127.0.0.1:${m[1]}`);
      }
    }
  };
  drain(child.stdout);
  drain(child.stderr);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const url = await Promise.race([
    urlP,
    child.status.then((s) => {
      throw new Error(
        `${name} exited with ${s.code} before listening:\n${log.join("\n")}`,
      );
    }),
    new Promise<never>((_, rej) => {
      timer = setTimeout(
        () => rej(new Error(`${name} did not print its URL within 60 s`)),
        60_000,
      );
    }),
  ]).finally(() => clearTimeout(timer));
  let stopped = false;
  return {
    url,
    child,
    log,
    cpuSeconds: () => processCpuSeconds(child.pid),
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      const t = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 10_000);
      await child.status;
      clearTimeout(t);
    },
  };
}
