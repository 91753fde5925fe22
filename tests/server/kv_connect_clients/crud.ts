/**
 * Run by kv_connect_test.ts with Deno's real KV client against a shale
 * server: set / get / getMany / delete, every key part type, every value
 * kind, and list with prefix, start/end, reverse, limit, cursor, batchSize.
 * Usage: deno run --unstable-kv -A crud.ts <url>. Exits non-zero on failure.
 */
import assert from "node:assert/strict";

const kv = await Deno.openKv(Deno.args[0]);
try {
  // ---- set / get / getMany / delete
  const r = await kv.set(["users", "ada"], { name: "Ada" });
  assert.equal(r.ok, true);
  assert.match(r.versionstamp, /^[0-9a-f]{20}$/);
  const got = await kv.get(["users", "ada"]);
  assert.deepEqual(got.value, { name: "Ada" });
  assert.equal(got.versionstamp, r.versionstamp);
  const missing = await kv.get(["users", "nobody"]);
  assert.equal(missing.value, null);
  assert.equal(missing.versionstamp, null);
  const many = await kv.getMany([["users", "ada"], ["users", "nobody"]]);
  assert.deepEqual(many.map((e) => e.value), [{ name: "Ada" }, null]);
  await kv.delete(["users", "ada"]);
  assert.equal((await kv.get(["users", "ada"])).value, null);

  // ---- key part types, and their order in a listing
  const u8 = new Uint8Array([0, 1, 255]);
  const keys: Deno.KvKey[] = [
    ["mix", u8],
    ["mix", ""],
    ["mix", "b\u00e9\u2713"],
    ["mix", -1.5],
    ["mix", 0],
    ["mix", 42],
    ["mix", -(2n ** 70n)],
    ["mix", 7n],
    ["mix", false],
    ["mix", true],
    ["mix", "multi", 1, 2n, true, u8],
  ];
  for (const [i, k] of keys.entries()) await kv.set(k, i);
  for (const [i, k] of keys.entries()) {
    const e = await kv.get(k);
    assert.equal(e.value, i, `key ${Deno.inspect(k)}`);
    assert.deepEqual(e.key, k);
  }
  // Tuple order: bytes < strings < integers (bigint) < floats (number) <
  // false < true.
  const listed = await Array.fromAsync(kv.list({ prefix: ["mix"] }));
  assert.deepEqual(
    listed.map((e) => e.value),
    [0, 1, 2, 10, 6, 7, 3, 4, 5, 8, 9],
  );

  // ---- value kinds
  const values: Record<string, unknown> = {
    string: "hello",
    empty: "",
    number: 3.25,
    negzero: -0,
    nan: NaN,
    boolean: true,
    null: null,
    array: [1, "two", [3]],
    nested: {
      when: new Date(1700000000000),
      map: new Map<unknown, unknown>([["k", 1], [2, { deep: true }]]),
      set: new Set([1, 2, 3]),
      big: 12345678901234567890n,
      re: /ab+c/gi,
    },
    bytes: new Uint8Array([1, 2, 3, 0, 255]),
    u64: new Deno.KvU64(18446744073709551615n),
  };
  for (const [name, v] of Object.entries(values)) await kv.set(["v", name], v);
  for (const [name, v] of Object.entries(values)) {
    const e = await kv.get(["v", name]);
    assert.deepEqual(e.value, v, `value ${name}`);
  }
  const u64 = (await kv.get<Deno.KvU64>(["v", "u64"])).value!;
  assert.ok(u64 instanceof Deno.KvU64);
  assert.ok((await kv.get(["v", "bytes"])).value instanceof Uint8Array);

  // ---- list
  const op = kv.atomic();
  for (let i = 0; i < 25; i++) op.set(["list", i], `v${i}`);
  assert.equal((await op.commit()).ok, true);
  const all = (await Array.fromAsync(kv.list<string>({ prefix: ["list"] })))
    .map((e) => e.key[1]);
  assert.deepEqual(all, [...Array(25).keys()]);
  const nums = (it: Deno.KvListIterator<unknown>) =>
    Array.fromAsync(it, (e) => e.key[1] as number);
  assert.deepEqual(
    await nums(kv.list({ prefix: ["list"] }, { reverse: true })),
    [...Array(25).keys()].reverse(),
  );
  assert.deepEqual(
    await nums(kv.list({ start: ["list", 5], end: ["list", 9] })),
    [5, 6, 7, 8],
  );
  assert.deepEqual(
    await nums(kv.list({ prefix: ["list"], start: ["list", 20] })),
    [20, 21, 22, 23, 24],
  );
  assert.deepEqual(
    await nums(kv.list({ prefix: ["list"], end: ["list", 3] })),
    [0, 1, 2],
  );
  assert.deepEqual(
    await nums(kv.list({ prefix: ["list"] }, { limit: 4, reverse: true })),
    [24, 23, 22, 21],
  );
  // Small batches join up exactly, both directions.
  for (const reverse of [false, true]) {
    for (const batchSize of [1, 3, 7]) {
      const got = await nums(
        kv.list({ prefix: ["list"] }, { batchSize, reverse }),
      );
      const want = [...Array(25).keys()];
      assert.deepEqual(got, reverse ? want.reverse() : want);
    }
  }
  // A cursor resumes where a limited listing stopped.
  for (const reverse of [false, true]) {
    const first = kv.list({ prefix: ["list"] }, { limit: 10, reverse });
    const a = await nums(first);
    const rest = await nums(
      kv.list({ prefix: ["list"] }, {
        cursor: first.cursor,
        reverse,
        batchSize: 4,
      }),
    );
    const want = [...Array(25).keys()];
    assert.deepEqual([...a, ...rest], reverse ? want.reverse() : want);
  }
  // An empty prefix lists the whole database, and only it.
  const everything = await Array.fromAsync(kv.list({ prefix: [] }));
  assert.equal(
    everything.length,
    keys.length + Object.keys(values).length + 25,
  );
  console.log("ok");
} finally {
  kv.close();
}
