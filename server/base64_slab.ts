/**
 * Decodes the many base64 fields of one request (a batch's keys and
 * values, a multi-get's keys) into shared slabs instead of one
 * `Uint8Array` each.
 *
 * Why: under Deno every `Uint8Array.fromBase64` result owns an ArrayBuffer
 * backing store, which costs ~1 µs to make and more to free (V8 sweeps
 * backing stores in every scavenge). A batch of 1000 puts made 2000 of
 * them. Here a field is written into the free tail of a 64 KiB slab with
 * `setFromBase64` and handed out as a view (~40 ns), about 4x faster per
 * field on Deno (bench/micro/base64_bench.ts) and one backing store per
 * slab.
 *
 * The views keep their slab alive, so they are for request-scoped bytes
 * only: the engine copies keys and values into its own buffers when it
 * encodes a write (engine/batch_ops.ts), and drops the views when the
 * request ends. A field too large to share a slab gets its own buffer.
 *
 * @module
 */
import { base64Alphabet, fromBase64, invalidBase64 } from "./_codec.ts";

/** Bytes per slab: a batch of 1000 100-byte puts fills about two. */
export const SLAB_BYTES = 64 << 10;
/** Fields decoding to more than this get a buffer of their own. */
const OWN_BUFFER_BYTES = SLAB_BYTES >> 2;

/** Hands out decoded base64 fields as views of shared slabs. */
export class Base64Slab {
  #slab = new Uint8Array(0);
  #used = 0;

  /**
   * Decodes standard or URL-safe base64 (padding optional), as
   * `fromBase64` in server/_codec.ts does. Anything else is a 400
   * `invalid_base64` naming `what`.
   */
  decode(text: unknown, what: string): Uint8Array {
    // Not a string: fromBase64's 400. At most 3 bytes per 4 characters,
    // rounded up for an unpadded tail; too large to share a slab, the
    // field is decoded on its own.
    if (typeof text !== "string") return fromBase64(text, what);
    const most = Math.ceil(text.length / 4) * 3;
    if (most > OWN_BUFFER_BYTES) return fromBase64(text, what);
    if (this.#slab.length - this.#used < most) {
      this.#slab = new Uint8Array(SLAB_BYTES);
      this.#used = 0;
    }
    const at = this.#used;
    let read: number, written: number;
    try {
      ({ read, written } = this.#slab.subarray(at).setFromBase64(text, {
        alphabet: base64Alphabet(text),
      }));
    } catch {
      throw invalidBase64(what);
    }
    // setFromBase64 stops early (without throwing) only when the target is
    // full; `most` bytes of room rule that out, but a short read would
    // silently truncate the field, so it is checked anyway.
    if (read !== text.length) throw invalidBase64(what);
    this.#used = at + written;
    return this.#slab.subarray(at, at + written);
  }
}
