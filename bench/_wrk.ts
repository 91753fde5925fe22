/**
 * wrk, the HTTP load generator the HTTP benchmarks drive: whether a tool is
 * installed, CPU pinning with taskset, the Lua scripts of the workloads, and
 * running wrk and reading its report.
 *
 * @module
 */

/** Whether `cmd` is on the PATH. */
export function have(cmd: string): boolean {
  try {
    return new Deno.Command("sh", {
      args: ["-c", `command -v ${cmd}`],
      stdout: "null",
      stderr: "null",
    }).outputSync().success;
  } catch {
    return false;
  }
}

/** Prefixes a command with `taskset -c <cpu>` when taskset is installed. */
export function pinner(): (cpu: string, cmd: string[]) => string[] {
  const pin = have("taskset");
  return (cpu, cmd) => pin ? ["taskset", "-c", cpu, ...cmd] : cmd;
}

const LUA_COMMON = `
local n = 100000
function init(args)
  n = tonumber(args[1]) or n
  math.randomseed(os.time() * 1000 + (tonumber(args[2]) or 0))
end
local function key(prefix, i) return string.format("/kv/%s%015d", prefix, i) end
local body = string.rep("v", 100)
`;
/**
 * The wrk Lua scripts by name; `writer` PUTs values of `busyValueBytes`.
 * Each takes the key count and a seed as script arguments.
 */
export function wrkScripts(busyValueBytes: number): Record<string, string> {
  return {
    get_hit: `${LUA_COMMON}
function request() return wrk.format("GET", key("k", math.random(0, n - 1))) end`,
    get_miss: `${LUA_COMMON}
function request() return wrk.format("GET", key("m", math.random(0, n - 1))) end`,
    put: `${LUA_COMMON}
function request() return wrk.format("PUT", key("k", math.random(0, n - 1)), nil, body) end`,
    mixed: `${LUA_COMMON}
function request()
  local k = key("k", math.random(0, n - 1))
  if math.random() < 0.1 then return wrk.format("PUT", k, nil, body) end
  return wrk.format("GET", k)
end`,
    range: `${LUA_COMMON}
function request()
  return wrk.format("GET", string.format("/kv/range?start=k%015d&limit=100", math.random(0, n - 101)))
end`,
    writer: writerScript(busyValueBytes),
  };
}

/**
 * The busy phase's writer: PUTs of `valueBytes`-byte values to fresh keys.
 * With `delayMs`, each connection waits that long after each answer before
 * its next request (wrk's `delay()`), which paces the writer: `c`
 * connections then send at most `c * 1000 / delayMs` requests a second.
 */
export function writerScript(valueBytes: number, delayMs?: number): string {
  const pace = delayMs === undefined
    ? ""
    : `\nfunction delay() return ${delayMs.toFixed(3)} end`;
  return `
local n = 1000000
local big = string.rep("w", ${valueBytes})
function init(args) math.randomseed(os.time()) end${pace}
function request()
  return wrk.format("PUT", string.format("/kv/w%015d", math.random(0, n - 1)), nil, big)
end`;
}

/** What wrk measured. */
export interface WrkResult {
  rps: number;
  requests: number;
  p50: number; // ms
  p99: number; // ms
  non2xx: number;
  socketErrors: string;
}

function toMs(v: string, unit: string): number {
  const x = Number(v);
  return unit === "us"
    ? x / 1000
    : unit === "ms"
    ? x
    : unit === "s"
    ? x * 1000
    : x;
}

/** Reads wrk's --latency report. */
export function parseWrk(out: string): WrkResult {
  const pct = (p: string) => {
    const m = new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s)\\s*$`, "m").exec(
      out,
    );
    return m ? toMs(m[1], m[2]) : NaN;
  };
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const reqs = /(\d+) requests in/.exec(out);
  const non = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
  const sock = /Socket errors:(.*)/.exec(out);
  return {
    rps: rps ? Number(rps[1]) : NaN,
    requests: reqs ? Number(reqs[1]) : 0,
    p50: pct("50"),
    p99: pct("99"),
    non2xx: non ? Number(non[1]) : 0,
    socketErrors: sock ? sock[1].trim() : "",
  };
}

/** Where and how wrk runs. */
export interface WrkOptions {
  /** CPU to pin wrk to. */
  cpu: string;
  /** Directory holding the scripts of {@link wrkScripts} as `<name>.lua`. */
  scriptDir: string;
  /** Keys the scripts pick from. */
  keys: number;
  pinned: (cpu: string, cmd: string[]) => string[];
}

/** wrk as a command (to run alongside other work) and as a measurement. */
export function wrkRunner(o: WrkOptions): {
  wrkCommand(
    url: string,
    script: string,
    seconds: number,
    conns: number,
  ): Deno.Command;
  wrk(
    url: string,
    script: string,
    seconds: number,
    conns: number,
  ): Promise<WrkResult>;
} {
  function wrkCommand(
    url: string,
    script: string,
    seconds: number,
    conns: number,
  ): Deno.Command {
    const cmd = o.pinned(o.cpu, [
      "wrk",
      "-t1",
      `-c${conns}`,
      `-d${seconds}s`,
      "--timeout",
      "10s",
      "--latency",
      "-s",
      `${o.scriptDir}/${script}.lua`,
      url,
      "--",
      String(o.keys),
      String(Math.floor(Math.random() * 1e6)),
    ]);
    return new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      stdout: "piped",
      stderr: "piped",
    });
  }

  async function wrk(
    url: string,
    script: string,
    seconds: number,
    conns: number,
  ): Promise<WrkResult> {
    const out = await wrkCommand(url, script, seconds, conns).output();
    const text = new TextDecoder().decode(out.stdout);
    if (!out.success) {
      throw new Error(
        `wrk failed: ${new TextDecoder().decode(out.stderr)} ${text}`,
      );
    }
    return parseWrk(text);
  }
  return { wrkCommand, wrk };
}
