/**
 * Child process of compaction_test.ts: opens the database with sync
 * "always" and tiny memtables and tables so flushes and compactions (in the
 * background worker) run all the time, then writes from 8 concurrent
 * writers, plus a loop of manual range compactions, until it is killed.
 * Each writer owns its keys and has at most one write in flight. Protocol
 * on stdout, one line per event, each written with a single write(2):
 *
 *   READY                          the database is open
 *   I <key> <value|->              about to write (value "-" is a delete)
 *   A <key> <version>              that write was acknowledged
 *   C <compactions>                compactions installed so far (on change)
 *
 * Usage: deno run -A tests/engine/_compaction_child.ts <dir> <cycle> <seed>
 */
import { open } from "../../mod.ts";
import { enc, hex, Rng } from "../_helpers.ts";

const [dir, cycleArg, seedArg] = Deno.args;
const cycle = Number(cycleArg);
const rng = new Rng(Number(seedArg));
const WRITERS = 8;
const KEYS_PER_WRITER = 60;

function say(line: string): void {
  Deno.stdout.writeSync(enc(line + "\n"));
}

const db = await open(dir, {
  sync: "always",
  memtableBytes: 8 * 1024,
  tableTargetBytes: 4 * 1024,
  baseLevelBytes: 16 * 1024,
  l0CompactionTrigger: 2,
  l0SlowdownTrigger: 6,
  l0StopTrigger: 10,
  blockSize: 1024,
});
say("READY");

let reported = -1;
setInterval(() => {
  const n = (db.stats().ops as { compactions: number }).compactions;
  if (n !== reported) say(`C ${n}`), reported = n;
}, 10);

function keyOf(w: number, k: number): Uint8Array {
  return enc(`w${w}-${String(k).padStart(3, "0")}`);
}

async function writer(w: number): Promise<void> {
  for (let n = 0;; n++) {
    const key = keyOf(w, rng.int(KEYS_PER_WRITER));
    const del = rng.chance(0.15);
    const value = `c${cycle}w${w}n${n}.${"x".repeat(rng.int(200))}`;
    say(`I ${hex(key)} ${del ? "-" : value}`);
    const version = del ? await db.delete(key) : await db.put(key, enc(value));
    say(`A ${hex(key)} ${version}`);
  }
}

async function compactor(): Promise<void> {
  for (;;) {
    const w = rng.int(WRITERS);
    const a = rng.int(KEYS_PER_WRITER);
    await db.compactRange(keyOf(w, a), keyOf(w, a + rng.int(20)));
    await new Promise((r) => setTimeout(r, rng.int(30)));
  }
}

await Promise.all([
  compactor(),
  ...Array.from({ length: WRITERS }, (_, w) => writer(w)),
]);
