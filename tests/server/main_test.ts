/**
 * server/main.ts's logger: the text and JSON line formats (what operators
 * grep and ship), one line per call.
 */
import { deepEqual, equal, match } from "node:assert/strict";
import { createLogger } from "../../server/main.ts";

function lines(format: "text" | "json") {
  const out: string[] = [];
  return { out, log: createLogger(format, (l) => out.push(l)) };
}

Deno.test("text lines: time, level, message, then key=value with quotes only where needed", () => {
  const { out, log } = lines("text");
  log("info", "request", {
    method: "GET",
    path: "/kv/a b",
    status: 200,
    ms: 0.125,
    ratio: NaN,
    quoted: 'say "hi"',
    empty: "",
    obj: { a: 1 },
    list: [1, 2],
    flag: true,
  });
  equal(out.length, 1);
  match(out[0], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info {2}request /);
  equal(
    out[0].slice(out[0].indexOf(" info  ")),
    ' info  request method=GET path="/kv/a b" status=200 ms=0.125 ratio=null' +
      ' quoted="say \\"hi\\"" empty="" obj="{\\"a\\":1}" list=[1,2] flag=true',
  );
});

Deno.test("JSON lines: one object with time, level, msg and the fields", () => {
  const { out, log } = lines("json");
  log("warn", "slow", { ms: 12.5, path: "/kv/x" });
  log("info", "no fields");
  const [a, b] = out.map((l) => JSON.parse(l));
  match(a.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  deepEqual({ ...a, time: undefined }, {
    time: undefined,
    level: "warn",
    msg: "slow",
    ms: 12.5,
    path: "/kv/x",
  });
  equal(b.msg, "no fields");
});

Deno.test("the timestamp follows the clock across calls", async () => {
  const { out, log } = lines("json");
  log("info", "one");
  await new Promise((r) => setTimeout(r, 5));
  log("info", "two");
  const [t1, t2] = out.map((l) => Date.parse(JSON.parse(l).time));
  equal(t2 - t1 >= 4, true, `${t1} then ${t2}`);
});
