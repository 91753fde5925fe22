/**
 * Turns one KV Connect `AtomicWrite` into one engine batch.
 *
 * Op order inside the batch, which the handler relies on to tell failures
 * apart by `PreconditionFailedError.index`:
 *
 * ```
 * [0, userChecks)            the client's checks, in request order
 * [userChecks, +reads)       internal checks: each key read for sum/min/max
 *                            still has the version it was read at
 * [..., end)                 one put or delete per touched key
 * ```
 *
 * Mutations apply in request order against a local overlay, so a later
 * mutation sees an earlier one of the same write (set then sum), and each key
 * ends up as exactly one op. sum/min/max read the stored value outside the
 * batch; the internal check makes the batch fail, and the handler retry, if
 * any of those keys changed in between, which makes the read-modify-write
 * atomic.
 *
 * @module
 */
import { type BatchOp, ENCODING_U64LE, type KeySpace } from "../../mod.ts";
import { badRequest } from "./errors.ts";
import {
  fromVersionstamp,
  join,
  VERSIONSTAMP_SUFFIX_BYTES,
  writeVersionstampSuffix,
} from "./keyspace.ts";
import {
  type AtomicWrite,
  M_DELETE,
  M_MAX,
  M_MIN,
  M_SET,
  M_SET_SUFFIX_VERSIONSTAMPED_KEY,
  M_SUM,
  VE_BYTES,
  VE_LE64,
  VE_V8,
} from "./protobuf.ts";
import { keyId } from "./watch.ts";

/** Most checks in one atomic write (Deno's client limit). */
export const MAX_CHECKS = 100;
/** Most mutations in one atomic write (Deno's client limit). */
export const MAX_MUTATIONS = 1000;

const U64_MASK = (1n << 64n) - 1n;
const NO_VALUE = new Uint8Array(0);

/**
 * A validated request: full store keys, engine encodings, expiry in ms. The
 * key of an M_SET_SUFFIX_VERSIONSTAMPED_KEY mutation ends in a placeholder
 * for its versionstamp suffix, filled in when the commit is ordered.
 */
export interface ParsedWrite {
  checks: { key: Uint8Array; seq: number | null }[];
  mutations: {
    key: Uint8Array;
    type: number;
    value: Uint8Array;
    encoding: number;
    expiresAt: number;
  }[];
}

/** Maps a KV Connect value encoding to the engine's encoding byte. */
export function engineEncoding(ve: number): number {
  switch (ve) {
    case VE_V8:
      return 1; // ENCODING_V8
    case VE_LE64:
      return ENCODING_U64LE;
    case VE_BYTES:
      return 0; // ENCODING_RAW
    default:
      throw badRequest(`unknown value encoding ${ve}`);
  }
}

/** Maps an engine encoding byte to a KV Connect value encoding. */
export function wireEncoding(encoding: number): number {
  if (encoding === 1) return VE_V8;
  if (encoding === ENCODING_U64LE) return VE_LE64;
  return VE_BYTES; // raw, and anything written through /kv/ with other tags
}

/**
 * Validates `aw` and resolves its keys under `prefix`. Everything a client
 * could get wrong is a 400 here, before the engine sees it. A check whose
 * versionstamp shale never issues gets `seq: -1`, which fails (see
 * {@link failedChecks}).
 */
export function parseAtomicWrite(
  aw: AtomicWrite,
  prefix: Uint8Array,
): ParsedWrite {
  if (aw.enqueues > 0) {
    throw badRequest(
      "enqueue is not supported: queues are not part of KV Connect",
    );
  }
  if (aw.checks.length > MAX_CHECKS) {
    throw badRequest(`too many checks (${aw.checks.length} > ${MAX_CHECKS})`);
  }
  if (aw.mutations.length > MAX_MUTATIONS) {
    throw badRequest(
      `too many mutations (${aw.mutations.length} > ${MAX_MUTATIONS})`,
    );
  }
  const checks = aw.checks.map((c, i) => {
    if (c.key.length === 0) throw badRequest(`check ${i}: empty key`);
    if (c.versionstamp.length !== 0 && c.versionstamp.length !== 10) {
      throw badRequest(
        `check ${i}: versionstamp must be 10 bytes or empty, got ${c.versionstamp.length}`,
      );
    }
    return {
      key: join(prefix, c.key),
      seq: c.versionstamp.length === 0
        ? null
        : fromVersionstamp(c.versionstamp),
    };
  });
  const mutations = aw.mutations.map((m, i) => {
    const stamped = m.type === M_SET_SUFFIX_VERSIONSTAMPED_KEY;
    // A versionstamped key may be the versionstamp alone (`[vs]`).
    if (m.key.length === 0 && !stamped) {
      throw badRequest(`mutation ${i}: empty key`);
    }
    const key = stamped
      ? join(prefix, join(m.key, new Uint8Array(VERSIONSTAMP_SUFFIX_BYTES)))
      : join(prefix, m.key);
    if (m.expireAtMs < 0n || m.expireAtMs > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw badRequest(`mutation ${i}: expire_at_ms out of range`);
    }
    const expiresAt = Number(m.expireAtMs);
    switch (m.type) {
      case M_DELETE:
        return { key, type: M_DELETE, value: NO_VALUE, encoding: 0, expiresAt };
      case M_SET:
      case M_SET_SUFFIX_VERSIONSTAMPED_KEY:
      case M_SUM:
      case M_MIN:
      case M_MAX: {
        if (m.value === undefined) {
          throw badRequest(`mutation ${i}: missing value`);
        }
        const encoding = engineEncoding(m.value.encoding);
        if (encoding === ENCODING_U64LE && m.value.data.length !== 8) {
          throw badRequest(
            `mutation ${i}: a u64 value must be 8 bytes, got ${m.value.data.length}`,
          );
        }
        if (m.type !== M_SET && !stamped) {
          if (encoding !== ENCODING_U64LE) {
            throw badRequest(
              `mutation ${i}: sum, min and max take a Deno.KvU64 operand`,
            );
          }
          if (m.sumMin.length > 0 || m.sumMax.length > 0 || m.sumClamp) {
            throw badRequest(
              `mutation ${i}: sum limits (sum_min, sum_max, sum_clamp) are not supported`,
            );
          }
        }
        return { key, type: m.type, value: m.value.data, encoding, expiresAt };
      }
      default:
        throw badRequest(`mutation ${i}: unknown mutation type ${m.type}`);
    }
  });
  return { checks, mutations };
}

type Slot =
  | {
    key: Uint8Array;
    put: true;
    value: Uint8Array;
    encoding: number;
    expiresAt: number;
  }
  | { key: Uint8Array; put: false };

/** The batch for one attempt, and which keys it writes. */
export interface PlannedBatch {
  ops: BatchOp[];
  /**
   * Full keys the batch puts or deletes; versionstamped keys are added when
   * the commit is ordered.
   */
  touched: Uint8Array[];
}

/**
 * The put of a versionstamped key: the engine calls `versionedKey` with the
 * commit's seqno, and the key then ends with that commit's versionstamp.
 */
function stampedPut(
  placeholder: Uint8Array,
  value: Uint8Array,
  encoding: number,
  expiresAt: number,
  touched: Uint8Array[],
): BatchOp {
  return {
    type: "put",
    key: placeholder,
    value,
    encoding,
    expiresAt,
    versionedKey: (seq) => {
      const key = placeholder.slice();
      writeVersionstampSuffix(key, seq);
      touched.push(key);
      return key;
    },
  };
}

function readU64(v: Uint8Array): bigint {
  return new DataView(v.buffer, v.byteOffset, 8).getBigUint64(0, true);
}

function u64Bytes(n: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, n & U64_MASK, true);
  return out;
}

/**
 * Applies the mutations in order against the store's current state (read
 * now, outside any batch) and returns the batch that commits the result.
 */
export function planBatch(db: KeySpace, w: ParsedWrite): PlannedBatch {
  const checks: BatchOp[] = w.checks.map((c) => ({
    type: "check",
    key: c.key,
    // -1 is filtered out by the handler before planning.
    ifVersion: c.seq,
  }));
  const reads = new Map<string, BatchOp>();
  const slots = new Map<string, Slot>();
  const stamped: ParsedWrite["mutations"] = [];
  for (let i = 0; i < w.mutations.length; i++) {
    const m = w.mutations[i];
    if (m.type === M_SET_SUFFIX_VERSIONSTAMPED_KEY) {
      stamped.push(m);
      continue;
    }
    const id = keyId(m.key);
    if (m.type === M_SET) {
      slots.set(id, {
        key: m.key,
        put: true,
        value: m.value,
        encoding: m.encoding,
        expiresAt: m.expiresAt,
      });
      continue;
    }
    if (m.type === M_DELETE) {
      slots.set(id, { key: m.key, put: false });
      continue;
    }
    let current: bigint | undefined;
    const slot = slots.get(id);
    if (slot !== undefined) {
      if (slot.put) {
        if (slot.encoding !== ENCODING_U64LE) {
          throw badRequest(
            `mutation ${i}: the value being combined is not a Deno.KvU64`,
          );
        }
        current = readU64(slot.value);
      }
    } else {
      const r = db.get(m.key);
      if (!reads.has(id)) {
        reads.set(id, {
          type: "check",
          key: m.key,
          ifVersion: r === undefined ? null : r.version,
        });
      }
      if (r !== undefined) {
        if (r.encoding !== ENCODING_U64LE || r.value.length !== 8) {
          throw badRequest(
            `mutation ${i}: the stored value is not a Deno.KvU64, so it cannot be combined`,
          );
        }
        current = readU64(r.value);
      }
    }
    const operand = readU64(m.value);
    let result: bigint;
    if (current === undefined) result = operand;
    else if (m.type === M_SUM) result = (current + operand) & U64_MASK;
    else if (m.type === M_MIN) result = current < operand ? current : operand;
    else result = current > operand ? current : operand;
    slots.set(id, {
      key: m.key,
      put: true,
      value: u64Bytes(result),
      encoding: ENCODING_U64LE,
      expiresAt: m.expiresAt,
    });
  }
  const ops: BatchOp[] = [...checks, ...reads.values()];
  const touched: Uint8Array[] = [];
  for (const s of slots.values()) {
    touched.push(s.key);
    ops.push(
      s.put
        ? {
          type: "put",
          key: s.key,
          value: s.value,
          encoding: s.encoding,
          expiresAt: s.expiresAt,
        }
        : { type: "delete", key: s.key },
    );
  }
  for (const m of stamped) {
    ops.push(stampedPut(m.key, m.value, m.encoding, m.expiresAt, touched));
  }
  return { ops, touched };
}

/** Indexes of the checks that fail against the store's latest accepted writes. */
export function failedChecks(db: KeySpace, w: ParsedWrite): number[] {
  const out: number[] = [];
  for (let i = 0; i < w.checks.length; i++) {
    const c = w.checks[i];
    if (c.seq === -1) {
      out.push(i);
      continue;
    }
    const have = db.version(c.key);
    if (c.seq === null ? have !== null : have !== c.seq) out.push(i);
  }
  return out;
}
