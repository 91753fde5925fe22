import assert from "node:assert/strict";
import type { TableMeta } from "../../engine/manifest.ts";
import { emptyState } from "../../engine/manifest.ts";
import {
  nextVersion,
  versionFromState,
  VersionSet,
} from "../../engine/version.ts";
import { enc } from "../_helpers.ts";

function table(
  fileNumber: number,
  level: number,
  smallest: string,
  largest: string,
  maxSeq = fileNumber,
): TableMeta {
  return {
    fileNumber,
    level,
    size: 100,
    entries: 1,
    minSeq: 1,
    maxSeq,
    smallest: enc(smallest),
    largest: enc(largest),
  };
}

const numbers = (ts: readonly TableMeta[]) => ts.map((t) => t.fileNumber);

Deno.test("an edit's Version keeps L0 newest first and deeper levels by smallest key", () => {
  const state = emptyState();
  state.levels[0].set(1, table(1, 0, "a", "z", 10));
  state.levels[1].set(2, table(2, 1, "m", "p"));
  const cur = versionFromState(state);
  const next = nextVersion(cur, {
    added: [
      table(3, 0, "a", "c", 20),
      table(4, 1, "a", "c"),
      table(5, 1, "x", "y"),
    ],
  });
  assert.deepEqual(numbers(next.levels[0]), [3, 1]);
  assert.deepEqual(numbers(next.levels[1]), [4, 2, 5]);
  // The current Version is not touched.
  assert.deepEqual(numbers(cur.levels[0]), [1]);
  assert.deepEqual(numbers(cur.levels[1]), [2]);
});

Deno.test("an edit's Version drops the tables it deletes, at their level only", () => {
  const state = emptyState();
  state.levels[0].set(1, table(1, 0, "a", "z"));
  state.levels[1].set(2, table(2, 1, "a", "c"));
  state.levels[1].set(3, table(3, 1, "d", "f"));
  const next = nextVersion(versionFromState(state), {
    deleted: [{ level: 1, fileNumber: 2 }, { level: 2, fileNumber: 1 }],
    added: [table(4, 2, "a", "c")],
  });
  assert.deepEqual(numbers(next.levels[0]), [1]);
  assert.deepEqual(numbers(next.levels[1]), [3]);
  assert.deepEqual(numbers(next.levels[2]), [4]);
});

Deno.test("applying an edit makes a table obsolete once no pinned Version lists it", () => {
  const state = emptyState();
  state.levels[0].set(1, table(1, 0, "a", "z"));
  const set = new VersionSet(versionFromState(state));
  const obsolete: number[] = [];
  set.onObsolete = (n) => obsolete.push(n);
  const pinned = set.pin();
  set.apply({
    deleted: [{ level: 0, fileNumber: 1 }],
    added: [table(2, 1, "a", "z")],
  });
  assert.deepEqual(numbers(set.current.levels[1]), [2]);
  assert.deepEqual(obsolete, []);
  assert.ok(set.isLive(1));
  set.unpin(pinned);
  assert.deepEqual(obsolete, [1]);
  assert.ok(!set.isLive(1));
});
