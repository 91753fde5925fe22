/**
 * Child process of db_crash_test.ts: opens the database with sync "always"
 * and runs 16 concurrent writers until it is killed. Each writer owns its
 * keys and has at most one write in flight. Protocol on stdout, one line per
 * event, each written with a single write(2):
 *
 *   READY                          the database is open
 *   I <key> <value|->              about to write (value "-" is a delete)
 *   A <key> <version>              that write was acknowledged
 *
 * Usage: deno run -A tests/engine/_crash_child.ts <dir> <cycle> <seed>
 */
import { open } from "../../mod.ts";
import { enc, hex, Rng } from "../_helpers.ts";

const [dir, cycleArg, seedArg] = Deno.args;
const cycle = Number(cycleArg);
const rng = new Rng(Number(seedArg));
const WRITERS = 16;
const KEYS_PER_WRITER = 40;

function say(line: string): void {
  Deno.stdout.writeSync(enc(line + "\n"));
}

const db = await open(dir, { sync: "always", memtableBytes: 64 * 1024 });
say("READY");

async function writer(w: number): Promise<void> {
  for (let n = 0;; n++) {
    const key = enc(
      `w${String(w).padStart(2, "0")}-${rng.int(KEYS_PER_WRITER)}`,
    );
    const del = rng.chance(0.1);
    const value = `c${cycle}w${w}n${n}.${"x".repeat(rng.int(300))}`;
    say(`I ${hex(key)} ${del ? "-" : value}`);
    const version = del ? await db.delete(key) : await db.put(key, enc(value));
    say(`A ${hex(key)} ${version}`);
  }
}

await Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)));
