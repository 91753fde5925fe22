/**
 * The Protocol Buffers wire format, as far as KV Connect uses it: a
 * {@link Reader} that checks every length and varint, with one call per
 * field for message decoders (`lenField`, `int32Field`...) and
 * {@link decodeRepeated} for a message that is one repeated field; and a
 * pre-sized {@link Writer} with the size helpers that let encoders compute a
 * message's length before writing it. The messages themselves are in
 * `protobuf.ts` (what the server reads and writes) and `client_codec.ts`
 * (what the client side reads and writes).
 *
 * @module
 */

/** Malformed protobuf input. The message names what failed. */
export class ProtobufError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtobufError";
  }
}

/** Wire type of varints. */
export const WIRE_VARINT = 0;
/** Wire type of 8-byte fixed fields (skipped). */
export const WIRE_I64 = 1;
/** Wire type of length-delimited fields. */
export const WIRE_LEN = 2;
/** Wire type of 4-byte fixed fields (skipped). */
export const WIRE_I32 = 5;
/** The empty byte string, proto3's default for bytes fields. */
export const EMPTY: Uint8Array = new Uint8Array(0);

/** Sequential reader over one message's bytes. */
export class Reader {
  #buf: Uint8Array;
  #pos = 0;
  #what: string;

  constructor(buf: Uint8Array, what: string) {
    this.#buf = buf;
    this.#what = what;
  }

  get done(): boolean {
    return this.#pos >= this.#buf.length;
  }

  fail(detail: string): never {
    throw new ProtobufError(`${this.#what}: ${detail}`);
  }

  /** A varint as a BigInt (all 64 bits). */
  varint64(): bigint {
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 10; i++) {
      if (this.#pos >= this.#buf.length) this.fail("truncated varint");
      const b = this.#buf[this.#pos++];
      if (i < 4) lo |= (b & 0x7f) << (7 * i);
      else if (i === 4) {
        lo |= (b & 0x0f) << 28;
        hi |= (b & 0x7f) >> 4;
      } else hi |= (b & 0x7f) << (7 * i - 32);
      if ((b & 0x80) === 0) {
        return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
      }
    }
    return this.fail("varint longer than 10 bytes");
  }

  /** A varint truncated to its low 32 bits, as protobuf does for 32-bit fields. */
  varint32(): number {
    let result = 0;
    for (let i = 0; i < 10; i++) {
      if (this.#pos >= this.#buf.length) this.fail("truncated varint");
      const b = this.#buf[this.#pos++];
      if (i < 5) result |= (b & 0x7f) << (7 * i);
      if ((b & 0x80) === 0) return result;
    }
    return this.fail("varint longer than 10 bytes");
  }

  /** Bytes of a length-delimited field, as a view (no copy). */
  bytes(): Uint8Array {
    const len = this.varint32() >>> 0;
    if (len > this.#buf.length - this.#pos) {
      this.fail(`length ${len} runs past the end of the message`);
    }
    const out = this.#buf.subarray(this.#pos, this.#pos + len);
    this.#pos += len;
    return out;
  }

  /** Reads a tag; returns [field number, wire type]. */
  tag(): [number, number] {
    const t = this.varint32() >>> 0;
    const field = t >>> 3;
    if (field === 0) this.fail("field number 0");
    return [field, t & 7];
  }

  skip(wire: number): void {
    switch (wire) {
      case WIRE_VARINT:
        this.varint32();
        return;
      case WIRE_I64:
        this.#advance(8);
        return;
      case WIRE_LEN:
        this.bytes();
        return;
      case WIRE_I32:
        this.#advance(4);
        return;
      default:
        this.fail(`unsupported wire type ${wire}`);
    }
  }

  #advance(n: number): void {
    if (n > this.#buf.length - this.#pos) this.fail("truncated fixed field");
    this.#pos += n;
  }

  /** Fails unless `wire` is `want` for `field`. */
  expect(wire: number, want: number, field: string): void {
    if (wire !== want) {
      this.fail(`field ${field} has wire type ${wire}, expected ${want}`);
    }
  }

  // One call per field of a message decoder: the tag's wire type is checked
  // against the field's (`name` is the field in errors), then the value read.

  /** A bytes, string or nested-message field (wire type 2), as a view. */
  lenField(wire: number, name: string): Uint8Array {
    this.expect(wire, WIRE_LEN, name);
    return this.bytes();
  }

  /** An int32, uint32 or enum field: the low 32 bits, signed. */
  int32Field(wire: number, name: string): number {
    this.expect(wire, WIRE_VARINT, name);
    return this.varint32();
  }

  /** An int64 field, signed. */
  int64Field(wire: number, name: string): bigint {
    this.expect(wire, WIRE_VARINT, name);
    return BigInt.asIntN(64, this.varint64());
  }

  /** A bool field: any non-zero varint is true. */
  boolField(wire: number, name: string): boolean {
    return this.int32Field(wire, name) !== 0;
  }
}

/**
 * Decodes a message (`what`) made of one repeated message field, number
 * `field` (`name` in errors), each occurrence by `decode`; other fields are
 * skipped.
 */
export function decodeRepeated<T>(
  buf: Uint8Array,
  what: string,
  field: number,
  name: string,
  decode: (buf: Uint8Array) => T,
): T[] {
  const r = new Reader(buf, what);
  const out: T[] = [];
  while (!r.done) {
    const [f, wire] = r.tag();
    if (f === field) out.push(decode(r.lenField(wire, name)));
    else r.skip(wire);
  }
  return out;
}

// ---------------------------------------------------------------- writing

export function varintSize(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/** Size of a length-delimited field (tag + length + payload) for fields 1..15. */
export function lenFieldSize(len: number): number {
  return 1 + varintSize(len) + len;
}

/** Appends to one exactly pre-sized buffer; sizes are computed up front. */
export class Writer {
  readonly buf: Uint8Array<ArrayBuffer>;
  #pos = 0;

  constructor(size: number) {
    this.buf = new Uint8Array(size);
  }

  varint(v: number): void {
    while (v >= 0x80) {
      this.buf[this.#pos++] = (v & 0x7f) | 0x80;
      v = Math.floor(v / 128);
    }
    this.buf[this.#pos++] = v;
  }

  tag(field: number, wire: number): void {
    this.buf[this.#pos++] = (field << 3) | wire;
  }

  /** A bytes field; omitted when empty (proto3 default). */
  bytes(field: number, data: Uint8Array): void {
    if (data.length === 0) return;
    this.tag(field, WIRE_LEN);
    this.varint(data.length);
    this.buf.set(data, this.#pos);
    this.#pos += data.length;
  }

  /** A varint field; omitted when 0. */
  uint(field: number, v: number): void {
    if (v === 0) return;
    this.tag(field, WIRE_VARINT);
    this.varint(v);
  }

  /** Starts a nested message of `len` bytes. */
  begin(field: number, len: number): void {
    this.tag(field, WIRE_LEN);
    this.varint(len);
  }
}

export function bytesFieldSize(data: Uint8Array): number {
  return data.length === 0 ? 0 : lenFieldSize(data.length);
}

export function uintFieldSize(v: number): number {
  return v === 0 ? 0 : 1 + varintSize(v);
}
