/**
 * SHA-256 in plain JavaScript, and a constant-time comparison of two
 * digests: what every authenticated request runs to check its bearer token
 * (`auth.ts`), and every range request to bind its cursor (`cursors.ts`).
 *
 * Why not `node:crypto`: on Deno its `createHash(...).update().digest()`
 * (and the one-shot `hash()`, built on it) is three runtime calls and a few
 * objects; in a profile of authenticated GETs it took about a fifth of the
 * server's busy time, about 4 µs per request, where a token of up to 55
 * bytes is one 64-byte block: 64 rounds of 32-bit arithmetic, well under a
 * microsecond here. tests/server/token_digest_test.ts checks the digests
 * against `node:crypto` for every length from 0 to 300 bytes.
 *
 * Timing: the hash's running time depends only on the input's length, and
 * {@link digestsEqual} on neither digest's contents; a presented token is
 * hashed and compared whole, so how long a check takes tells nothing about
 * the expected token.
 *
 * @module
 */

/** The first 32 bits of the fractional parts of the cube roots of the first 64 primes. */
const K = new Int32Array([
  0x428a2f98,
  0x71374491,
  0xb5c0fbcf,
  0xe9b5dba5,
  0x3956c25b,
  0x59f111f1,
  0x923f82a4,
  0xab1c5ed5,
  0xd807aa98,
  0x12835b01,
  0x243185be,
  0x550c7dc3,
  0x72be5d74,
  0x80deb1fe,
  0x9bdc06a7,
  0xc19bf174,
  0xe49b69c1,
  0xefbe4786,
  0x0fc19dc6,
  0x240ca1cc,
  0x2de92c6f,
  0x4a7484aa,
  0x5cb0a9dc,
  0x76f988da,
  0x983e5152,
  0xa831c66d,
  0xb00327c8,
  0xbf597fc7,
  0xc6e00bf3,
  0xd5a79147,
  0x06ca6351,
  0x14292967,
  0x27b70a85,
  0x2e1b2138,
  0x4d2c6dfc,
  0x53380d13,
  0x650a7354,
  0x766a0abb,
  0x81c2c92e,
  0x92722c85,
  0xa2bfe8a1,
  0xa81a664b,
  0xc24b8b70,
  0xc76c51a3,
  0xd192e819,
  0xd6990624,
  0xf40e3585,
  0x106aa070,
  0x19a4c116,
  0x1e376c08,
  0x2748774c,
  0x34b0bcb5,
  0x391c0cb3,
  0x4ed8aa4a,
  0x5b9cca4f,
  0x682e6ff3,
  0x748f82ee,
  0x78a5636f,
  0x84c87814,
  0x8cc70208,
  0x90befffa,
  0xa4506ceb,
  0xbef9a3f7,
  0xc67178f2,
]);

/** The first 32 bits of the fractional parts of the square roots of the first 8 primes. */
const H0 = [
  0x6a09e667,
  0xbb67ae85,
  0x3c6ef372,
  0xa54ff53a,
  0x510e527f,
  0x9b05688c,
  0x1f83d9ab,
  0x5be0cd19,
];

/** The message schedule, reused: hashing is synchronous. */
const W = new Int32Array(64);
const encoder = new TextEncoder();
/**
 * Where a short message is padded and hashed without an allocation (a
 * typed array costs about a microsecond to make here, as much as the hash).
 */
const SCRATCH = new Uint8Array(512);
/** Where {@link matchesDigestOf} puts the presented token's digest. */
const GOT = new Uint8Array(32);

const rotr = (x: number, n: number) => (x >>> n) | (x << (32 - n));

/** SHA-256 (FIPS 180-4) of `data`, or of a string's UTF-8 bytes. */
export function sha256(data: Uint8Array | string): Uint8Array {
  const out = new Uint8Array(32);
  sha256Into(data, out);
  return out;
}

/**
 * Whether the SHA-256 of `text` (UTF-8) is `want`, in time that depends on
 * `text`'s length only.
 */
export function matchesDigestOf(text: string, want: Uint8Array): boolean {
  sha256Into(text, GOT);
  return digestsEqual(GOT, want);
}

/**
 * Whether two digests are equal, in time that depends only on their
 * lengths (every byte is compared, no early exit).
 */
export function digestsEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/**
 * Writes the SHA-256 of `data` (a string: its UTF-8 bytes) into `out`'s
 * first 32 bytes: for a digest that is compared and dropped.
 */
export function sha256Into(data: Uint8Array | string, out: Uint8Array): void {
  // The message, a 0x80 byte, zeros, and the length in bits (64-bit big
  // endian), in whole 64-byte blocks: in SCRATCH when it fits.
  let m: Uint8Array = SCRATCH;
  let n: number;
  if (typeof data === "string") {
    const r = encoder.encodeInto(data, SCRATCH);
    n = r.written;
    if (r.read < data.length || n + 9 > SCRATCH.length) {
      const bytes = encoder.encode(data);
      n = bytes.length;
      m = padded(bytes);
    }
  } else {
    n = data.length;
    if (n + 9 > SCRATCH.length) m = padded(data);
    else SCRATCH.set(data);
  }
  const end = Math.ceil((n + 9) / 64) * 64;
  m[n] = 0x80;
  m.fill(0, n + 1, end - 8);
  const bits = n * 8;
  const hi = Math.floor(bits / 0x1_0000_0000);
  m[end - 8] = hi >>> 24;
  m[end - 7] = hi >>> 16;
  m[end - 6] = hi >>> 8;
  m[end - 5] = hi;
  m[end - 4] = bits >>> 24;
  m[end - 3] = bits >>> 16;
  m[end - 2] = bits >>> 8;
  m[end - 1] = bits;

  let h0 = H0[0], h1 = H0[1], h2 = H0[2], h3 = H0[3];
  let h4 = H0[4], h5 = H0[5], h6 = H0[6], h7 = H0[7];
  for (let off = 0; off < end; off += 64) {
    for (let t = 0, i = off; t < 16; t++, i += 4) {
      W[t] = (m[i] << 24) | (m[i + 1] << 16) | (m[i + 2] << 8) | m[i + 3];
    }
    for (let t = 16; t < 64; t++) {
      const w15 = W[t - 15], w2 = W[t - 2];
      const s0 = rotr(w15, 7) ^ rotr(w15, 18) ^ (w15 >>> 3);
      const s1 = rotr(w2, 17) ^ rotr(w2, 19) ^ (w2 >>> 10);
      W[t] = (W[t - 16] + s0 + W[t - 7] + s1) | 0;
    }
    let a = h0, b = h1, c = h2, d = h3, e = h4, f = h5, g = h6, h = h7;
    for (let t = 0; t < 64; t++) {
      const s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
      const ch = (e & f) ^ (~e & g);
      const t1 = (h + s1 + ch + K[t] + W[t]) | 0;
      const s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
      const maj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = (s0 + maj) | 0;
      h = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    h0 = (h0 + a) | 0;
    h1 = (h1 + b) | 0;
    h2 = (h2 + c) | 0;
    h3 = (h3 + d) | 0;
    h4 = (h4 + e) | 0;
    h5 = (h5 + f) | 0;
    h6 = (h6 + g) | 0;
    h7 = (h7 + h) | 0;
  }
  putWord(out, 0, h0);
  putWord(out, 4, h1);
  putWord(out, 8, h2);
  putWord(out, 12, h3);
  putWord(out, 16, h4);
  putWord(out, 20, h5);
  putWord(out, 24, h6);
  putWord(out, 28, h7);
}

/** `bytes` copied into a buffer with room for the padding. */
function padded(bytes: Uint8Array): Uint8Array {
  const m = new Uint8Array(Math.ceil((bytes.length + 9) / 64) * 64);
  m.set(bytes);
  return m;
}

function putWord(out: Uint8Array, at: number, w: number): void {
  out[at] = w >>> 24;
  out[at + 1] = w >>> 16;
  out[at + 2] = w >>> 8;
  out[at + 3] = w;
}
