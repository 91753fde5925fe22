/**
 * server/log_writer.ts: lines written at once stay in order with gathered
 * access-log lines, which go out in one write at the end of the turn.
 */
import { deepEqual } from "node:assert/strict";
import { setImmediate } from "node:timers";
import { LineWriter } from "../../server/log_writer.ts";

const nextTurn = () => new Promise<void>((r) => setImmediate(r));

Deno.test("gathered lines go out in one write at the end of the turn", async () => {
  const writes: string[] = [];
  const w = new LineWriter((t) => writes.push(t));
  w.deferred("a");
  w.deferred("b");
  deepEqual(writes, []);
  await nextTurn();
  deepEqual(writes, ["a\nb\n"]);
  await nextTurn();
  deepEqual(writes, ["a\nb\n"], "nothing more to write");
});

Deno.test("a line written at once first writes the lines gathered before it", async () => {
  const writes: string[] = [];
  const w = new LineWriter((t) => writes.push(t));
  w.line("start");
  w.deferred("request 1");
  w.line("warning");
  w.deferred("request 2");
  await nextTurn();
  deepEqual(writes, ["start\n", "request 1\n", "warning\n", "request 2\n"]);
  deepEqual(writes.join(""), "start\nrequest 1\nwarning\nrequest 2\n");
});

Deno.test("64 KiB of gathered lines are written without waiting; flush() writes the rest", async () => {
  const writes: string[] = [];
  const w = new LineWriter((t) => writes.push(t));
  const line = "x".repeat(1023); // 1 KiB with its newline
  for (let i = 0; i < 64; i++) w.deferred(line);
  deepEqual(writes.length, 1);
  deepEqual(writes[0].length, 64 * 1024);
  w.deferred("tail");
  w.flush();
  w.flush();
  deepEqual(writes.slice(1), ["tail\n"]);
  await nextTurn();
  deepEqual(writes.length, 2);
});
