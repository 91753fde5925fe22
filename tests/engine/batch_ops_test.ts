import assert from "node:assert/strict";
import { Arena } from "../../engine/coding.ts";
import type { Entry } from "../../engine/entry.ts";
import {
  KIND_DELETE,
  KIND_PUT,
  KIND_RANGE_DELETE,
} from "../../engine/entry.ts";
import { encodeBatchOps } from "../../engine/batch_ops.ts";
import { Rng } from "../_helpers.ts";

Deno.test("encodeBatchOps reserves exactly the bytes it writes, so a retained payload pins no slack", () => {
  // It used to reserve 23 bytes of framing per op whatever the op needed
  // (about 18 bytes per op more than written), and the change history and
  // the memtable keep the buffer the payload is carved from.
  const rng = new Rng(23);
  const arena = new Arena(1 << 16);
  for (let round = 0; round < 200; round++) {
    const ops: Entry[] = [];
    for (let i = rng.int(5); i >= 0; i--) {
      const kind = [KIND_PUT, KIND_DELETE, KIND_RANGE_DELETE][rng.int(3)];
      ops.push({
        key: rng.bytes(rng.int(300)),
        value: kind === KIND_DELETE
          ? new Uint8Array(0)
          : rng.bytes(rng.int(300)),
        seq: 0,
        kind,
        encoding: rng.int(4),
        expiresAt: [0, 127, 128, 1_790_000_000_000][rng.int(4)],
      });
    }
    const space = round % 2 === 0 ? undefined : 3;
    const own = encodeBatchOps(ops, undefined, space).payload;
    assert.equal(own.byteLength, own.buffer.byteLength, `round ${round}`);
    const carved = encodeBatchOps(ops, arena, space).payload;
    assert.deepEqual(carved, own, `round ${round}`);
  }
});
