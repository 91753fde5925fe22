/**
 * Measurement: latency samples and their quantiles, a terminal progress
 * line, and the bytes a store holds on disk.
 *
 * @module
 */
import { fmtRate } from "./_report.ts";

/** The q-quantile (0..1) of the first `n` samples; sorts them in place. */
export function quantiles(
  samples: Float64Array,
  n: number,
  qs: number[],
): number[] {
  const s = samples.subarray(0, n).sort();
  return qs.map((q) => n === 0 ? NaN : s[Math.min(n - 1, Math.floor(q * n))]);
}

/** The median of round results (mean of the middle two when even). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
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
/** Whether stderr is a terminal; asked on first use, not at import. */
let tty: boolean | undefined;
function isTty(): boolean {
  if (tty === undefined) {
    try {
      tty = Deno.stderr.isTerminal();
    } catch {
      tty = false;
    }
  }
  return tty;
}

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
    if (!isTty()) return;
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
    if (isTty()) Deno.stderr.writeSync(encoder.encode("\r\x1b[2K"));
  }
  /** A line that stays (stderr only when a terminal, else nothing). */
  note(line: string): void {
    if (isTty()) Deno.stderr.writeSync(encoder.encode(`\r\x1b[2K${line}\n`));
  }
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

/**
 * CPU seconds (user + system) of each thread of process `pid` so far, by
 * thread id, with the thread's name (`worker-1` and so on for Deno's Web
 * Workers); empty where there is no /proc.
 */
export function threadCpuSeconds(
  pid: number,
): Map<number, { name: string; seconds: number }> {
  const out = new Map<number, { name: string; seconds: number }>();
  let tids: string[];
  try {
    tids = [...Deno.readDirSync(`/proc/${pid}/task`)].map((e) => e.name);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = Deno.readTextFileSync(`/proc/${pid}/task/${tid}/stat`);
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(Number(tid), {
        name,
        seconds: (Number(f[11]) + Number(f[12])) / 100, // USER_HZ
      });
    } catch {
      // The thread ended meanwhile.
    }
  }
  return out;
}
