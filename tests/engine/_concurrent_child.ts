/**
 * Child process for db_concurrency_test.ts: runs one scenario of public
 * methods called concurrently and prints `done` when every call settled.
 * A hang can be a microtask spin that starves timers, so the parent kills
 * this process on a deadline instead of timing out in-process.
 *
 * Usage: deno run -A _concurrent_child.ts <scenario> <dir>
 */
import { open } from "../../mod.ts";

const [scenario, dir] = Deno.args;
const enc = new TextEncoder();
const db = await open(dir, { background: "inline", sync: "none" });
for (let i = 0; i < 200; i++) {
  await db.put(enc.encode(`k${i}`), enc.encode(`v${i}`));
}

/** Settles all, and reports each outcome as ok or the error code. */
async function all(calls: Promise<unknown>[]): Promise<string[]> {
  const r = await Promise.allSettled(calls);
  return r.map((x) =>
    x.status === "fulfilled"
      ? "ok"
      : (x.reason as { code?: string }).code ?? String(x.reason)
  );
}

let outcomes: string[];
switch (scenario) {
  case "flush+flush":
    outcomes = await all([db.flush(), db.flush()]);
    await db.close();
    break;
  case "flush+close":
    outcomes = await all([db.flush(), db.close()]);
    break;
  case "flush+put+flush":
    outcomes = await all([
      db.flush(),
      db.put(enc.encode("x"), enc.encode("y")),
      db.flush(),
    ]);
    await db.close();
    break;
  case "compactRange+close":
    outcomes = await all([db.compactRange(), db.close()]);
    break;
  case "compactRange+compactRange":
    outcomes = await all([db.compactRange(), db.compactRange()]);
    await db.close();
    break;
  case "compactUntilIdle+flush+close":
    outcomes = await all([db.compactUntilIdle(), db.flush(), db.close()]);
    break;
  case "close+close+put":
    outcomes = await all([
      db.put(enc.encode("x"), enc.encode("y")),
      db.close(),
      db.close(),
    ]);
    break;
  default:
    throw new Error(`unknown scenario ${scenario}`);
}
console.log(`done ${JSON.stringify(outcomes)}`);
