/** The linearizability checker itself, on small hand-made histories. */
import assert from "node:assert/strict";
import { checkKey, type Operation } from "./_linearizability.ts";
import { Rng, testSeed, withSeed } from "./_helpers.ts";

let nextClient = 0;

function op(
  partial: Partial<Operation> & Pick<Operation, "kind" | "invoke">,
): Operation {
  return {
    client: partial.client ?? nextClient++,
    status: "ok",
    ret: partial.invoke + 1,
    ...partial,
  };
}

const put = (value: string, version: number, invoke: number, ret: number) =>
  op({ kind: "put", value, version, invoke, ret });
const get = (
  read: string | null,
  version: number | undefined,
  invoke: number,
  ret: number,
) => op({ kind: "get", read, version, invoke, ret });

function assertNot(history: Operation[], initial: string | null = null) {
  const v = checkKey(history, initial);
  assert.equal(v.ok, false, "expected a violation");
  return v as Extract<typeof v, { ok: false }>;
}

Deno.test("a sequential history of puts, conditional puts, deletes and reads is linearizable", () => {
  const h = [
    get(null, undefined, 0, 1),
    put("a", 3, 2, 3),
    get("a", 3, 4, 5),
    op({ kind: "put", value: "b", version: 7, ifMatch: 3, invoke: 6, ret: 7 }),
    op({ kind: "put", value: "c", ifMatch: 3, status: "failed", invoke: 8 }),
    op({
      kind: "put",
      value: "d",
      ifNoneMatch: true,
      status: "failed",
      invoke: 10,
    }),
    op({ kind: "delete", invoke: 12, ret: 13 }),
    op({ kind: "put", value: "e", version: 9, ifNoneMatch: true, invoke: 14 }),
    get("e", 9, 16, 17),
  ];
  assert.deepEqual(checkKey(h), { ok: true, operations: h.length });
});

Deno.test("reads overlapping a write may see either side of it", () => {
  const h = [
    put("a", 1, 0, 1),
    put("b", 2, 2, 10),
    get("b", 2, 3, 4),
    get("a", 1, 3, 5), // overlaps the first read and the write: fine
  ];
  // b is seen, then a by an overlapping read: order a-read, b-write, b-read.
  assert.equal(checkKey(h).ok, true);
  // But once a read returned b, a read starting later cannot see a.
  const stale = [
    put("a", 1, 0, 1),
    put("b", 2, 2, 10),
    get("b", 2, 3, 4),
    get("a", 1, 5, 6),
  ];
  assertNot(stale);
});

Deno.test("the issue's history: a 412 from an invisible create, then a 404", () => {
  const noise = [
    put("x", 1, 0, 1),
    get("x", 1, 2, 3),
    op({ kind: "delete", invoke: 4, ret: 5 }),
    get(null, undefined, 6, 7),
  ];
  const a = op({
    client: 1,
    kind: "put",
    value: "a",
    ifNoneMatch: true,
    version: 5,
    invoke: 10,
    ret: 20,
  });
  const b412 = op({
    client: 2,
    kind: "put",
    value: "b",
    ifNoneMatch: true,
    status: "failed",
    invoke: 11,
    ret: 12,
  });
  const b404 = op({ client: 2, kind: "get", read: null, invoke: 13, ret: 14 });
  const v = assertNot([...noise, a, b412, b404, get("a", 5, 21, 22)]);
  // Exactly A (whose outcome is open at the cut), the 412 and the 404.
  const id = (o: Operation) => `${o.client} ${o.kind} ${o.value ?? o.read}`;
  assert.deepEqual(
    v.counterexample.map(id).sort(),
    [a, b412, b404].map(id).sort(),
    v.report,
  );
  assert.match(
    v.report,
    /client 2 \[\d+\.\d+, \d+\.\d+\] PUT b If-None-Match:\* -> 412/,
  );
  assert.match(v.report, /GET -> 404/);
  // The same three operations with the 404 read before the 412 are fine.
  assert.equal(
    checkKey([a, { ...b412, invoke: 15, ret: 16 }, {
      ...b404,
      invoke: 11,
      ret: 12,
    }])
      .ok,
    true,
  );
});

Deno.test("two If-Match writes on the same version cannot both win", () => {
  const h = [
    put("a", 1, 0, 1),
    op({ kind: "put", value: "b", ifMatch: 1, version: 2, invoke: 2, ret: 5 }),
    op({ kind: "put", value: "c", ifMatch: 1, version: 3, invoke: 2, ret: 5 }),
  ];
  const v = assertNot(h);
  assert.equal(v.counterexample.length, 2, v.report);
  // One wins, the other gets 412: fine.
  h[2] = { ...h[2], status: "failed", version: undefined };
  assert.equal(checkKey(h).ok, true);
});

Deno.test("a 412 while the condition held is a violation", () => {
  assertNot([
    put("a", 1, 0, 1),
    op({ kind: "put", value: "b", ifMatch: 1, status: "failed", invoke: 2 }),
  ]);
  assertNot([
    op({
      kind: "put",
      value: "b",
      ifNoneMatch: true,
      status: "failed",
      invoke: 2,
    }),
  ]);
});

Deno.test("versions must increase with the order of writes", () => {
  assertNot([put("a", 5, 0, 1), put("b", 3, 2, 3)]);
  // Overlapping writes may take effect in version order.
  assert.equal(checkKey([put("a", 5, 0, 3), put("b", 3, 1, 2)]).ok, true);
});

Deno.test("a value reported with two versions is a violation named by the checker", () => {
  const v = assertNot([put("a", 5, 0, 1), get("a", 6, 2, 3)]);
  assert.match(v.reason, /value a was reported with versions 5 and 6/);
});

Deno.test("an operation with unknown outcome may take effect or not", () => {
  const lost = op({
    kind: "put",
    value: "a",
    status: "unknown",
    invoke: 0,
    ret: Infinity,
  });
  assert.equal(checkKey([lost, get("a", undefined, 5, 6)]).ok, true);
  assert.equal(checkKey([lost, get(null, undefined, 5, 6)]).ok, true);
  // Late: it can still take effect after a read that missed it.
  assert.equal(
    checkKey([lost, get(null, undefined, 5, 6), get("a", undefined, 7, 8)]).ok,
    true,
  );
  // But it cannot be undone once seen.
  assertNot([lost, get("a", undefined, 5, 6), get(null, undefined, 7, 8)]);
  // A read with no answer constrains nothing.
  const noAnswer = op({ kind: "get", status: "unknown", invoke: 1 });
  assert.equal(checkKey([noAnswer]).ok, true);
});

Deno.test("an unknown outcome with a bound took effect before it or never", () => {
  // A write in flight when the server was killed; back up at t=10.
  const killed = op({
    kind: "put",
    value: "a",
    status: "unknown",
    invoke: 0,
    ret: 10,
  });
  assert.equal(checkKey([killed, get("a", undefined, 11, 12)]).ok, true);
  assert.equal(checkKey([killed, get(null, undefined, 11, 12)]).ok, true);
  // Not both: after the restart it can no longer take effect.
  assertNot([
    killed,
    get(null, undefined, 11, 12),
    get("a", undefined, 13, 14),
  ]);
  // Several of them, each either way.
  const more = [0, 1, 2, 3].map((i) =>
    op({ kind: "put", value: `k${i}`, status: "unknown", invoke: i, ret: 10 })
  );
  assert.equal(checkKey([...more, get("k2", undefined, 11, 12)]).ok, true);
  assert.equal(checkKey([...more, get(null, undefined, 11, 12)]).ok, true);
});

Deno.test("the initial value counts", () => {
  assert.equal(checkKey([get("z", undefined, 0, 1)], "z").ok, true);
  assertNot([get(null, undefined, 0, 1)], "z");
});

/**
 * Random histories produced by a correct register: every operation takes
 * effect at a random instant inside its interval, so the checker must
 * accept them, answers lost or not; with one read falsified it must reject
 * them.
 */
Deno.test("random linearizable histories of 8 clients pass, and a falsified read fails", async () => {
  await withSeed(testSeed(1010), (rng: Rng) => {
    for (let round = 0; round < 20; round++) {
      const h = registerHistory(rng, 8, 400);
      const v = checkKey(h);
      assert.equal(v.ok, true, v.ok ? "" : v.report);
    }
    for (let round = 0; round < 5; round++) {
      const h = registerHistory(rng, 8, 300, 0);
      assert.equal(checkKey(h).ok, true);
      const reads = h.filter((o) => o.kind === "get" && o.read !== null);
      const victim = rng.pick(reads);
      victim.read = "never-written";
      victim.version = undefined;
      const v = checkKey(h);
      assert.equal(v.ok, false);
      assert.ok(
        !v.ok && v.counterexample.includes(victim),
        "the counterexample holds the falsified read",
      );
    }
  });
});

/** Simulates a sequential register behind concurrent clients. */
export function registerHistory(
  rng: Rng,
  clients: number,
  count: number,
  unknownShare = 0.02,
): Operation[] {
  // Each client issues operations back to back; the effect instant is
  // drawn inside the interval, and effects apply in instant order.
  type Planned = Operation & { at: number };
  const planned: Planned[] = [];
  const clock = new Array(clients).fill(0);
  for (let i = 0; i < count; i++) {
    const c = rng.int(clients);
    const invoke = clock[c] + rng.next();
    const ret = invoke + 0.1 + rng.next() * 5;
    clock[c] = ret;
    const at = invoke + (ret - invoke) * rng.next();
    const r = rng.int(10);
    const kind = r < 4 ? "get" : r < 9 ? "put" : "delete";
    planned.push({
      client: c,
      kind,
      invoke,
      ret,
      at,
      status: "ok",
      value: kind === "put" ? `v${i}` : undefined,
    });
  }
  planned.sort((a, b) => a.at - b.at);
  let value: string | null = null;
  let version = 0;
  const versions = new Map<string, number>();
  for (const o of planned) {
    if (o.kind === "get") {
      o.read = value;
      o.version = value === null ? undefined : versions.get(value);
      continue;
    }
    // Half the writes are conditional on what the client last saw.
    if (rng.chance(0.5)) {
      if (rng.chance(0.5)) o.ifNoneMatch = true;
      else o.ifMatch = rng.range(Math.max(1, version - 2), version + 1);
    }
    const holds = o.ifNoneMatch ? value === null : o.ifMatch === undefined ||
      (value !== null && versions.get(value) === o.ifMatch);
    if (!holds) {
      o.status = "failed";
      continue;
    }
    if (o.kind === "delete") value = null;
    else {
      value = o.value!;
      o.version = ++version;
      versions.set(value, version);
    }
  }
  // A few writes lose their answer.
  for (const o of planned) {
    if (o.kind !== "get" && rng.chance(unknownShare)) {
      o.status = "unknown";
      o.ret = rng.chance(0.5) ? Infinity : o.ret;
    }
  }
  return planned.map(({ at: _, ...o }) => o);
}
