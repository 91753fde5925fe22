/**
 * The keys seen so far in one batch, to find an earlier op for the same key
 * (the batch's last op per key wins; see validateBatch). An open-addressing
 * table of the keys' FNV-1a hashes, compared byte for byte on a hash match:
 * unlike a Map of binary strings, it makes no string and no map entry per
 * op, which was a tenth of the main thread's time in batches of 1000.
 *
 * @module
 */
import { equalBytes, fnv1a } from "./coding.ts";

/** The keys of one batch, each with the index of the entry that holds it. */
export class KeySlots {
  /** Slot -> 1 + index into the arrays below; 0 is an empty slot. */
  #table: Int32Array;
  #mask: number;
  #keys: Uint8Array[] = [];
  #hashes: number[] = [];
  /** Placeholders of versioned keys are no keys: they only meet each other. */
  #placeholder: boolean[] = [];
  #entry: number[] = [];

  /** A table for up to `count` keys. */
  constructor(count: number) {
    let size = 16;
    while (size < count * 2) size *= 2;
    this.#table = new Int32Array(size);
    this.#mask = size - 1;
  }

  /**
   * Records that entry `entry` holds `key` (a versioned key's placeholder
   * when `placeholder`), and returns the entry that held the same key
   * before, or -1 if none did.
   */
  claim(key: Uint8Array, placeholder: boolean, entry: number): number {
    const h = fnv1a(key);
    const table = this.#table;
    for (let i = h & this.#mask;; i = (i + 1) & this.#mask) {
      const s = table[i] - 1;
      if (s < 0) {
        table[i] = this.#keys.length + 1;
        this.#keys.push(key);
        this.#hashes.push(h);
        this.#placeholder.push(placeholder);
        this.#entry.push(entry);
        return -1;
      }
      if (
        this.#hashes[s] === h && this.#placeholder[s] === placeholder &&
        equalBytes(this.#keys[s], key)
      ) {
        const earlier = this.#entry[s];
        this.#entry[s] = entry;
        return earlier;
      }
    }
  }
}
