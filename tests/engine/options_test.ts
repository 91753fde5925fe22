/** Every option is validated: values that can never make progress are refused, naming the option. */
import assert from "node:assert/strict";
import { InvalidArgumentError, open } from "../../mod.ts";
import type { DbOptions } from "../../engine/types.ts";
import { resolveOptions } from "../../engine/options.ts";
import { withTempDir } from "../_helpers.ts";

const BAD: [string, DbOptions][] = [
  ["maxImmutableMemtables", { maxImmutableMemtables: 0 }],
  ["maxImmutableMemtables", { maxImmutableMemtables: 1.5 }],
  ["bloomBitsPerKey", { bloomBitsPerKey: 0 }],
  ["bloomBitsPerKey", { bloomBitsPerKey: -3 }],
  ["bloomBitsPerKey", { bloomBitsPerKey: 1000 }],
  ["memtableBytes", { memtableBytes: 0 }],
  ["memtableBytes", { memtableBytes: 4096.5 }],
  ["blockSize", { blockSize: 0 }],
  ["blockSize", { blockSize: NaN }],
  ["blockCacheBytes", { blockCacheBytes: -1 }],
  ["maxOpenTables", { maxOpenTables: 0 }],
  ["maxKeyBytes", { maxKeyBytes: 0 }],
  ["maxKeyBytes", { maxKeyBytes: 4097 }],
  ["maxValueBytes", { maxValueBytes: 0 }],
  ["tableTargetBytes", { tableTargetBytes: Infinity }],
  ["baseLevelBytes", { baseLevelBytes: 0 }],
  ["syncIntervalMs", { syncIntervalMs: 0 }],
  ["memoryBudgetBytes", { memoryBudgetBytes: 1 << 20 }],
  ["memoryBudgetBytes", { memoryBudgetBytes: 1.5 * 2 ** 30 + 0.5 }],
  ["l0CompactionTrigger", { l0CompactionTrigger: 0 }],
  ["changeHistoryBytes", { changeHistoryBytes: -1 }],
  ["changeHistoryBytes", { changeHistoryBytes: 0.5 }],
  ["maxManifestBytes", { maxManifestBytes: 1023 }],
  ["maxManifestBytes", { maxManifestBytes: 4096.5 }],
  ["l0StopTrigger", { l0SlowdownTrigger: 8, l0StopTrigger: 8 }],
  ["l0StopTrigger", { l0StopTrigger: 4 }],
  ["l0CompactionTrigger", { l0CompactionTrigger: 12 }],
  ["l0CompactionTrigger", { l0CompactionTrigger: 30, l0StopTrigger: 30 }],
  ["sync", { sync: "sometimes" as "always" }],
  ["background", { background: "thread" as "inline" }],
  ["compactionNice", { compactionNice: 20 }],
  ["compactionNice", { compactionNice: -1 }],
  ["salvage", { salvage: "yes" as unknown as boolean }],
  ["clock", { clock: 5 as unknown as () => number }],
  ["memtableBites", { memtableBites: 1 } as DbOptions],
  ["readMode", { readMode: "mapped" as "mmap" }],
  ["compression", { compression: "lz4" as "zstd" }],
];

Deno.test("every option with a value that cannot work is refused with invalid_argument naming it", () => {
  for (const [name, options] of BAD) {
    assert.throws(
      () => resolveOptions(options),
      (err: unknown) => {
        assert.ok(
          err instanceof InvalidArgumentError,
          `${
            JSON.stringify(options)
          }: expected InvalidArgumentError, got ${err}`,
        );
        assert.equal(err.code, "invalid_argument");
        assert.match(err.message, new RegExp(name), JSON.stringify(options));
        return true;
      },
    );
  }
});

Deno.test("open refuses a bad option before touching the directory", async () => {
  await withTempDir(async (dir) => {
    const sub = `${dir}/never`;
    await assert.rejects(
      open(sub, { maxImmutableMemtables: 0 }),
      InvalidArgumentError,
    );
    assert.throws(() => Deno.statSync(sub), Deno.errors.NotFound);
  });
});

Deno.test("the defaults and sensible edge values are accepted", () => {
  const r = resolveOptions();
  assert.equal(r.maxImmutableMemtables, 2);
  resolveOptions({
    maxImmutableMemtables: 1,
    bloomBitsPerKey: 1,
    l0CompactionTrigger: 1,
    l0SlowdownTrigger: 1,
    l0StopTrigger: 2,
    maxKeyBytes: 4096,
    memoryBudgetBytes: 8 << 20,
    background: "inline",
    salvage: true,
  });
  // Explicit undefined means "the default", as the server passes it.
  resolveOptions({ memtableBytes: undefined, sync: undefined });
});

Deno.test("a memory budget sizes the change history too, unless it is given", () => {
  const r = resolveOptions({ memoryBudgetBytes: 64 << 20 });
  assert.equal(r.changeHistoryBytes, 4 << 20);
  assert.equal(r.memtableBytes, 4 << 20);
  const given = resolveOptions({
    memoryBudgetBytes: 64 << 20,
    changeHistoryBytes: 1 << 20,
  });
  assert.equal(given.changeHistoryBytes, 1 << 20);
  // Without a budget the history keeps its fixed default.
  assert.equal(resolveOptions({}).changeHistoryBytes, 64 << 20);
});
