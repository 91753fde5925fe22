/**
 * The results file: number formats, Markdown tables, the machine the run
 * was measured on, and the command that started it.
 *
 * @module
 */
/** 1234567 -> "1.23M", 12345 -> "12.3k". */
export function fmtRate(v: number): string {
  if (!Number.isFinite(v)) return "-";
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)}M`;
  if (v >= 1e4) return `${(v / 1e3).toFixed(1)}k`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(2)}k`;
  return v.toFixed(v >= 100 ? 0 : 1);
}

/** Integer with thousands separators. */
export function fmtInt(v: number): string {
  if (!Number.isFinite(v)) return "-";
  return Math.round(v).toLocaleString("en-US");
}

/** Microseconds, 3 significant digits. */
export function fmtUs(v: number): string {
  if (!Number.isFinite(v)) return "-";
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/** A Markdown table. */
export function mdTable(head: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [
    line(head),
    line(head.map((_, i) => (i === 0 ? "---" : "---:"))),
    ...rows.map(line),
  ].join("\n");
}

/** What the results were measured on. */
export interface MachineInfo {
  date: string;
  cpu: string;
  cores: number;
  memory: string;
  filesystem: string;
  deno: string;
  v8: string;
  os: string;
  load: string;
}

function sh(cmd: string[]): string {
  try {
    const out = new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    return new TextDecoder().decode(out.stdout).trim();
  } catch {
    return "";
  }
}

/** CPU model, cores, memory, file system of `dir`, Deno version, load. */
export function machineInfo(dir: string): MachineInfo {
  let cpu = "unknown";
  let cores = navigator.hardwareConcurrency;
  let memory = "unknown";
  try {
    const info = Deno.readTextFileSync("/proc/cpuinfo");
    const m = /^model name\s*:\s*(.+)$/m.exec(info);
    if (m) cpu = m[1].trim();
    cores = info.match(/^processor\s*:/gm)?.length ?? cores;
  } catch { /* not Linux */ }
  try {
    const m = /^MemTotal:\s*(\d+) kB/m.exec(
      Deno.readTextFileSync("/proc/meminfo"),
    );
    if (m) memory = `${(Number(m[1]) / 1048576).toFixed(1)} GiB`;
  } catch { /* not Linux */ }
  const df = sh(["df", "-T", dir]).split("\n")[1]?.split(/\s+/) ?? [];
  const filesystem = df.length >= 2
    ? `${df[1]} on ${df[0]} (mounted at ${df[df.length - 1]})`
    : "unknown";
  const load = loadAverage();
  return {
    date: new Date().toISOString(),
    cpu,
    cores,
    memory,
    filesystem,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    os: `${Deno.build.os} ${Deno.build.arch} ${sh(["uname", "-r"])}`,
    load,
  };
}

/** The load average now (1/5/15 min), for the end of a run. */
export function loadAverage(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3)
      .join(" ");
  } catch {
    return "unknown (no /proc/loadavg)";
  }
}

/** The Markdown "machine" block every results file starts with. */
export function machineMarkdown(m: MachineInfo, command: string): string {
  return [
    `- Date: ${m.date}`,
    `- CPU: ${m.cpu}, ${m.cores} cores; memory ${m.memory}`,
    `- File system: ${m.filesystem}`,
    `- Deno ${m.deno} (V8 ${m.v8}), ${m.os}`,
    `- Load average at start (1/5/15 min): ${m.load}`,
    `- Command: \`${command}\``,
  ].join("\n");
}

/**
 * The command line that started this process, for the results file: this
 * process's own argv where /proc has it (so the `deno run` flags a make
 * target or task passed, such as `--config bench/deno.json`, are the real
 * ones), otherwise `deno run <runFlags> <script>` and the script's arguments.
 */
export function commandLine(
  script: string,
  runFlags = "-A --unstable-kv",
): string {
  const quote = (a: string) => /^[\w./=:,-]+$/.test(a) ? a : `'${a}'`;
  try {
    const argv = Deno.readTextFileSync("/proc/self/cmdline").split("\0");
    if (argv.at(-1) === "") argv.pop();
    // argv[0] is wherever the deno binary lives (.tools/, a global path).
    if (argv.length > 1 && /(^|\/)deno$/.test(argv[0])) {
      return ["deno", ...argv.slice(1).map(quote)].join(" ");
    }
  } catch { /* not Linux, or no read permission */ }
  return [`deno run ${runFlags} ${script}`, ...Deno.args.map(quote)].join(" ");
}
