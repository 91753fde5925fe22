/**
 * Helpers shared by the benchmark scripts: seeded randomness, db_bench-style
 * keys and values, percentiles, terminal progress, machine description,
 * Markdown tables and a dependency-free SVG bar chart.
 *
 * @module
 */
import { prng } from "../tests/_rng.ts";

export { prng };

/** Key width in bytes, as in db_bench. */
export const KEY_BYTES = 16;
/** Value width in bytes, as in db_bench. */
export const VALUE_BYTES = 100;

/** A seeded Fisher-Yates permutation of 0..n-1. */
export function permutation(n: number, seed: number): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  const rnd = prng(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

/**
 * The 16-byte key for integer `i`: zero-padded decimal, so byte order equals
 * numeric order. A fresh array each call (stores may keep the reference).
 */
export function keyFor(
  i: number,
  out: Uint8Array = new Uint8Array(KEY_BYTES),
): Uint8Array {
  let v = i;
  for (let p = KEY_BYTES - 1; p >= 0; p--) {
    out[p] = 48 + (v % 10);
    v = Math.floor(v / 10);
  }
  return out;
}

/** Random (incompressible) bytes that values are sliced from. */
export class ValuePool {
  readonly #pool: Uint8Array;
  #off = 0;
  constructor(seed: number, bytes = 1 << 20) {
    this.#pool = new Uint8Array(bytes);
    const rnd = prng(seed);
    for (let i = 0; i < bytes; i++) this.#pool[i] = (rnd() * 256) | 0;
  }
  /** The next `len`-byte value: a view into the pool, no copy. */
  next(len = VALUE_BYTES): Uint8Array {
    if (this.#off + len > this.#pool.length) this.#off = 0;
    const v = this.#pool.subarray(this.#off, this.#off + len);
    this.#off += 97; // odd stride: successive values differ
    return v;
  }
}

/** The q-quantile (0..1) of the first `n` samples; sorts them in place. */
export function quantiles(
  samples: Float64Array,
  n: number,
  qs: number[],
): number[] {
  const s = samples.subarray(0, n).sort();
  return qs.map((q) => n === 0 ? NaN : s[Math.min(n - 1, Math.floor(q * n))]);
}

/** Collects latency samples (ms) into a growable typed array. */
export class Samples {
  #buf = new Float64Array(1 << 16);
  n = 0;
  add(ms: number): void {
    if (this.n === this.#buf.length) {
      const b = new Float64Array(this.#buf.length * 2);
      b.set(this.#buf);
      this.#buf = b;
    }
    this.#buf[this.n++] = ms;
  }
  /** p50 and p99 in microseconds. */
  p50p99us(): [number, number] {
    const [a, b] = quantiles(this.#buf, this.n, [0.5, 0.99]);
    return [a * 1000, b * 1000];
  }
}

const encoder = new TextEncoder();
const isTty = (() => {
  try {
    return Deno.stderr.isTerminal();
  } catch {
    return false;
  }
})();

/**
 * One-line progress on stderr, redrawn at most 4 times a second, and only
 * when stderr is a terminal (logs and CI stay clean).
 */
export class Progress {
  #label = "";
  #total = 0;
  #last = 0;
  #start = 0;
  begin(label: string, total: number): void {
    this.#label = label;
    this.#total = total;
    this.#start = performance.now();
    this.#last = 0;
    this.tick(0, true);
  }
  tick(done: number, force = false): void {
    if (!isTty) return;
    const now = performance.now();
    if (!force && now - this.#last < 250) return;
    this.#last = now;
    const secs = (now - this.#start) / 1000;
    const pct = this.#total > 0
      ? ` ${(100 * done / this.#total).toFixed(0).padStart(3)}%`
      : "";
    const rate = secs > 0 ? ` ${fmtRate(done / secs)}/s` : "";
    Deno.stderr.writeSync(
      encoder.encode(
        `\r\x1b[2K${this.#label}${pct} ${done}${
          this.#total ? "/" + this.#total : ""
        }${rate} ${secs.toFixed(1)}s`,
      ),
    );
  }
  end(): void {
    if (isTty) Deno.stderr.writeSync(encoder.encode("\r\x1b[2K"));
  }
  /** A line that stays (stderr only when a terminal, else nothing). */
  note(line: string): void {
    if (isTty) Deno.stderr.writeSync(encoder.encode(`\r\x1b[2K${line}\n`));
  }
}

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
  let load = "";
  try {
    load = Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3)
      .join(" ");
  } catch { /* not Linux */ }
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

/** The command line that started this process, for the results file. */
export function commandLine(script: string): string {
  const args = Deno.args.map((a) => /^[\w./=:,-]+$/.test(a) ? a : `'${a}'`);
  return [`deno run -A --unstable-kv ${script}`, ...args].join(" ");
}

/** Escapes text for SVG. */
export function xmlEscape(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

/** Bar colours by series, colour-blind-safe (Okabe-Ito). */
export const PALETTE = [
  "#0072B2",
  "#E69F00",
  "#009E73",
  "#CC79A7",
  "#56B4E9",
  "#D55E00",
  "#F0E442",
  "#000000",
];

/** Options of {@link groupedBarSvg}. */
export interface BarChartOptions {
  title: string;
  subtitle?: string;
  groups: string[];
  series: string[];
  /** values[group][series]; NaN or <= 0 draws no bar. */
  values: number[][];
  yLabel: string;
  log?: boolean;
}

/** A grouped bar chart as SVG text (log scale by default). */
export function groupedBarSvg(o: BarChartOptions): string {
  const log = o.log ?? true;
  const all = o.values.flat().filter((v) => Number.isFinite(v) && v > 0);
  const maxV = all.length ? Math.max(...all) : 1;
  const minV = all.length ? Math.min(...all) : 1;
  const lo = log ? Math.pow(10, Math.floor(Math.log10(minV))) : 0;
  const hi = log ? Math.pow(10, Math.ceil(Math.log10(maxV))) : niceCeil(maxV);
  const groupW = Math.max(60, o.series.length * 16 + 24);
  const left = 80, right = 20, top = 60, bottom = 90;
  const plotH = 320;
  const width = left + right + groupW * o.groups.length;
  const height = top + plotH + bottom;
  const y = (v: number) =>
    log
      ? top + plotH - (Math.log10(v / lo) / Math.log10(hi / lo)) * plotH
      : top + plotH - (v / hi) * plotH;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${left}" y="22" font-size="16" font-weight="bold">${
      xmlEscape(o.title)
    }</text>`,
  );
  if (o.subtitle) {
    out.push(
      `<text x="${left}" y="40" fill="#555">${xmlEscape(o.subtitle)}</text>`,
    );
  }
  // Grid and y axis labels.
  const ticks: number[] = [];
  if (log) {
    for (let t = lo; t <= hi * 1.0001; t *= 10) ticks.push(t);
  } else {
    for (let i = 0; i <= 5; i++) ticks.push((hi / 5) * i);
  }
  for (const t of ticks) {
    const ty = y(t || (log ? lo : 0)).toFixed(1);
    out.push(
      `<line x1="${left}" x2="${
        width - right
      }" y1="${ty}" y2="${ty}" stroke="#ddd"/>`,
      `<text x="${left - 6}" y="${ty}" text-anchor="end" dy="4">${
        fmtRate(t)
      }</text>`,
    );
  }
  out.push(
    `<text transform="translate(18 ${
      top + plotH / 2
    }) rotate(-90)" text-anchor="middle">${xmlEscape(o.yLabel)}${
      log ? " (log scale)" : ""
    }</text>`,
  );
  const barW = (groupW - 24) / o.series.length;
  o.groups.forEach((g, gi) => {
    const gx = left + gi * groupW + 12;
    o.series.forEach((s, si) => {
      const v = o.values[gi]?.[si];
      if (!(Number.isFinite(v) && v > 0)) return;
      const by = y(Math.max(v, lo));
      out.push(
        `<rect x="${(gx + si * barW).toFixed(1)}" y="${by.toFixed(1)}" width="${
          (barW - 2).toFixed(1)
        }" height="${(top + plotH - by).toFixed(1)}" fill="${
          PALETTE[si % PALETTE.length]
        }"><title>${xmlEscape(`${s} ${g}: ${fmtRate(v)}`)}</title></rect>`,
      );
    });
    const lx = gx + (groupW - 24) / 2;
    out.push(
      `<text x="${lx}" y="${
        top + plotH + 14
      }" text-anchor="end" transform="rotate(-35 ${lx} ${top + plotH + 14})">${
        xmlEscape(g)
      }</text>`,
    );
  });
  out.push(
    `<line x1="${left}" x2="${left}" y1="${top}" y2="${
      top + plotH
    }" stroke="#333"/>`,
    `<line x1="${left}" x2="${width - right}" y1="${top + plotH}" y2="${
      top + plotH
    }" stroke="#333"/>`,
  );
  // Legend.
  let lx = left;
  const ly = height - 16;
  o.series.forEach((s, si) => {
    out.push(
      `<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${
        PALETTE[si % PALETTE.length]
      }"/>`,
      `<text x="${lx + 16}" y="${ly}">${xmlEscape(s)}</text>`,
    );
    lx += 30 + s.length * 7;
  });
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}

/** Options of {@link lineChartSvg}. */
export interface LineChartOptions {
  title: string;
  subtitle?: string;
  xLabel: string;
  yLabel: string;
  /** Each series: name and [x, y] points. */
  series: { name: string; points: [number, number][] }[];
}

/** A simple multi-series line chart as SVG text (linear axes). */
export function lineChartSvg(o: LineChartOptions): string {
  const pts = o.series.flatMap((s) => s.points);
  const maxX = niceCeil(Math.max(1e-9, ...pts.map((p) => p[0])));
  const maxY = niceCeil(Math.max(1e-9, ...pts.map((p) => p[1])));
  const left = 70, right = 20, top = 60, bottom = 70;
  const plotW = 640, plotH = 300;
  const width = left + plotW + right, height = top + plotH + bottom;
  const x = (v: number) => left + (v / maxX) * plotW;
  const y = (v: number) => top + plotH - (v / maxY) * plotH;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${left}" y="22" font-size="16" font-weight="bold">${
      xmlEscape(o.title)
    }</text>`,
  ];
  if (o.subtitle) {
    out.push(
      `<text x="${left}" y="40" fill="#555">${xmlEscape(o.subtitle)}</text>`,
    );
  }
  for (let i = 0; i <= 5; i++) {
    const vy = (maxY / 5) * i, vx = (maxX / 5) * i;
    out.push(
      `<line x1="${left}" x2="${left + plotW}" y1="${y(vy)}" y2="${
        y(vy)
      }" stroke="#ddd"/>`,
      `<text x="${left - 6}" y="${y(vy)}" dy="4" text-anchor="end">${+vy
        .toPrecision(3)}</text>`,
      `<text x="${x(vx)}" y="${top + plotH + 16}" text-anchor="middle">${+vx
        .toPrecision(3)}</text>`,
    );
  }
  out.push(
    `<text x="${left + plotW / 2}" y="${
      top + plotH + 36
    }" text-anchor="middle">${xmlEscape(o.xLabel)}</text>`,
    `<text transform="translate(18 ${
      top + plotH / 2
    }) rotate(-90)" text-anchor="middle">${xmlEscape(o.yLabel)}</text>`,
    `<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`,
  );
  o.series.forEach((s, si) => {
    if (s.points.length === 0) return;
    const d = s.points.map((p, i) =>
      `${i ? "L" : "M"}${x(p[0]).toFixed(1)} ${y(p[1]).toFixed(1)}`
    ).join(" ");
    out.push(
      `<path d="${d}" fill="none" stroke="${
        PALETTE[si % PALETTE.length]
      }" stroke-width="1.5"/>`,
    );
  });
  let lx = left;
  o.series.forEach((s, si) => {
    out.push(
      `<rect x="${lx}" y="${height - 22}" width="12" height="12" fill="${
        PALETTE[si % PALETTE.length]
      }"/>`,
      `<text x="${lx + 16}" y="${height - 12}">${xmlEscape(s.name)}</text>`,
    );
    lx += 30 + s.name.length * 7;
  });
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}

function niceCeil(v: number): number {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/** Total size in bytes of the files under `dir`. */
export function dirBytes(dir: string): number {
  let total = 0;
  for (const e of Deno.readDirSync(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) total += dirBytes(p);
    else if (e.isFile) {
      try {
        total += Deno.statSync(p).size;
      } catch { /* removed meanwhile */ }
    }
  }
  return total;
}
