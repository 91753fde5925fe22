/**
 * Decoding a batch's base64 fields: `Uint8Array.fromBase64` per field (one
 * backing store each) against server/base64_slab.ts (views of shared
 * slabs). 1000 puts of db_bench shape: 16-byte keys, 100-byte values.
 *
 * @module
 */
import { fromBase64 } from "../../server/_codec.ts";
import { Base64Slab } from "../../server/base64_slab.ts";
import { keyFor, ValuePool } from "../_common.ts";

const values = new ValuePool(3);
const fields: string[] = [];
for (let i = 0; i < 1000; i++) {
  fields.push(keyFor(i).toBase64(), values.next().toBase64());
}

Deno.bench({
  name: `fromBase64, ${fields.length} fields`,
  group: "base64",
  baseline: true,
  fn() {
    for (const f of fields) fromBase64(f, "field");
  },
});

Deno.bench({
  name: `Base64Slab, ${fields.length} fields`,
  group: "base64",
  fn() {
    const slab = new Base64Slab();
    for (const f of fields) slab.decode(f, "field");
  },
});
