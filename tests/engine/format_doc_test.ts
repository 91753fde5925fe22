/**
 * The worked examples of engine/FORMAT.md, byte by byte: each is rebuilt with
 * the engine's own encoders and compared with the bytes the document shows,
 * offsets included, so the document cannot drift from the code.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { ByteWriter } from "../../engine/coding.ts";
import {
  frameBatch,
  logHeader,
  RECORD_BATCH,
  WAL_MAGIC,
} from "../../engine/wal.ts";
import { parseLog } from "../../engine/log_read.ts";
import { encodeBatchOps } from "../../engine/batch_ops.ts";
import { BlockBuilder, decodeBlock } from "../../engine/sstable/block.ts";
import { BLOCK_TYPE_DATA, blockTrailer } from "../../engine/sstable/format.ts";
import { ENCODING_RAW, KIND_DELETE, KIND_PUT } from "../../engine/entry.ts";
import { USER_KEY_SPACE } from "../../engine/types.ts";
import { enc, hex } from "../_helpers.ts";

const FORMAT = new URL("../../engine/FORMAT.md", import.meta.url);

/**
 * The bytes of the example marked `<!-- bytes: NAME -->`: each line is
 * `OFFSET  HEX HEX ...  | meaning`; offsets must count the bytes before.
 */
function documented(name: string): Uint8Array {
  const doc = Deno.readTextFileSync(FORMAT);
  const at = doc.indexOf(`<!-- bytes: ${name} -->`);
  ok(at >= 0, `FORMAT.md has no example ${name}`);
  const open = doc.indexOf("```text\n", at) + "```text\n".length;
  const body = doc.slice(open, doc.indexOf("```", open));
  const out: number[] = [];
  for (const line of body.split("\n").filter((l) => l.trim() !== "")) {
    const [left] = line.split("|");
    const [offset, ...bytes] = left.trim().split(/\s+/);
    equal(Number(offset), out.length, `${name}: offset of "${line}"`);
    for (const b of bytes) {
      ok(/^[0-9a-f]{2}$/.test(b), `${name}: "${b}" in "${line}"`);
      out.push(parseInt(b, 16));
    }
  }
  return Uint8Array.from(out);
}

Deno.test("FORMAT.md: the WAL batch record example is what the engine writes", () => {
  const w = new ByteWriter(64);
  const ops = [
    {
      key: enc("a"),
      seq: 7,
      kind: KIND_PUT,
      encoding: ENCODING_RAW,
      expiresAt: 0,
      value: enc("hi"),
    },
    {
      key: enc("b"),
      seq: 7,
      kind: KIND_DELETE,
      encoding: ENCODING_RAW,
      expiresAt: 0,
      value: new Uint8Array(),
    },
  ];
  frameBatch(w, 7, encodeBatchOps(ops, undefined, USER_KEY_SPACE).payload);
  const built = w.buf.slice(0, w.pos);
  equal(hex(documented("wal-batch")), hex(built));
  // And the reader takes it back as one record of type 1.
  const file = Uint8Array.from([...logHeader(WAL_MAGIC), ...built]);
  const log = parseLog(file, "x.log", WAL_MAGIC, { mayBeTorn: false });
  equal(log.records.length, 1);
  equal(log.records[0].type, RECORD_BATCH);
});

Deno.test("FORMAT.md: the data block example is what BlockBuilder writes", () => {
  const b = new BlockBuilder();
  b.add(enc("\0apple"), 5, KIND_PUT, ENCODING_RAW, 0, enc("red"));
  b.add(enc("\0apricot"), 3, KIND_DELETE, ENCODING_RAW, 0, new Uint8Array());
  const block = b.finish().slice();
  const built = Uint8Array.from([
    ...block,
    ...blockTrailer(block, BLOCK_TYPE_DATA),
  ]);
  equal(hex(documented("data-block")), hex(built));
  deepEqual(
    decodeBlock(block).map((e) => [hex(e.key), e.seq, e.kind]),
    [[hex(enc("\0apple")), 5, KIND_PUT], [hex(enc("\0apricot")), 3, 0]],
  );
});
