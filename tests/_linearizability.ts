/**
 * A linearizability checker for one key of shale: a versioned register read
 * and written concurrently by many clients, in the style of Wing & Gong's
 * search with Lowe's memoisation (as in Knossos / Porcupine).
 *
 * The model: the register holds the value of the last write that took
 * effect, or nothing. Every PUT writes a value unique in the history, so a
 * value names the write that produced it; a version (the etag) names it too,
 * and the two are tied together by every response that carries both. An If-Match
 * condition holds when the register holds the write with that version;
 * `If-None-Match: *` when it holds nothing. Versions of successive writes
 * must increase. An operation whose outcome is unknown (timed out,
 * connection dropped, server killed) may take effect at any time between
 * its invocation and its `ret` bound (Infinity: no bound), or never.
 *
 * A history is linearizable when some total order of its operations, each
 * placed between its invocation and its response, explains every response.
 * When none does, {@link checkKey} returns a small counterexample: the
 * shortest failing prefix, then the shortest failing window of it, then
 * with every read (and 412) removed that is not needed to fail.
 *
 * @module
 */

/** One request and its outcome, as a client saw it. */
export interface Operation {
  /** Which client issued it (for the report). */
  client: number;
  kind: "get" | "put" | "delete";
  /** put: the value written, unique in the history. */
  value?: string;
  /** Condition `If-Match: "<version>"`. */
  ifMatch?: number;
  /** Condition `If-None-Match: *`. */
  ifNoneMatch?: boolean;
  /**
   * `ok`: 2xx (a get that found nothing is `ok` with `read: null`);
   * `failed`: 412, the condition did not hold and nothing was written;
   * `unknown`: no answer (timeout, dropped connection, killed server).
   */
  status: "ok" | "failed" | "unknown";
  /** get: the value read, null when absent (404). */
  read?: string | null;
  /** put ok: the version returned; get ok with a value: its version. */
  version?: number;
  /** When the request was sent (ms, any monotonic clock). */
  invoke: number;
  /**
   * When the response arrived. For `unknown`: the latest instant it could
   * take effect, e.g. when a killed server was back up (a write in flight
   * at the kill took effect before the restart or never), or Infinity when
   * it could still take effect at any later time.
   */
  ret: number;
  /** Set by the checker in counterexamples: still running at the cut. */
  running?: boolean;
}

/** The verdict for one key's history. */
export type Verdict =
  | { ok: true; operations: number }
  | { ok: false; reason: string; counterexample: Operation[]; report: string };

/** At a window's start the register's value is not known: any value. */
const ANY = "\u0000any";
/** Not known, but some value is present (a 412 for If-None-Match said so). */
const SOME = "\u0000some";

/**
 * Register state: the value of the write that took effect last, or null;
 * ANY or SOME inside a counterexample window.
 */
interface State {
  value: string | null;
  /** Version of the last write with a known version; versions increase. */
  floor: number;
}

interface Entry {
  op: number; // index into the operations
  call: boolean;
  time: number;
  prev: Entry | undefined;
  next: Entry | undefined;
  match: Entry | undefined; // call -> its return entry
}

/**
 * Checks one key's history. `initial` is the register's value before the
 * first operation (null: absent).
 */
export function checkKey(
  history: readonly Operation[],
  initial: string | null = null,
): Verdict {
  const ops = history.filter((o) => !(o.kind === "get" && o.status !== "ok"));
  const versions = versionsOf(ops);
  if (typeof versions === "string") {
    return fail(versions, ops.filter((o) => mentions(o, versions)), ops);
  }
  const state: State = { value: initial, floor: 0 };
  if (search(ops, versions, state)) return { ok: true, operations: ops.length };
  const small = minimise(ops, versions, state);
  return fail(
    "no order of these operations explains every response",
    small,
    ops,
  );
}

/** Maps each written value to its version, or explains a contradiction. */
function versionsOf(ops: readonly Operation[]): Map<string, number> | string {
  const out = new Map<string, number>();
  const owner = new Map<number, string>();
  const note = (value: string, version: number): string | undefined => {
    const had = out.get(value);
    if (had !== undefined && had !== version) {
      return `value ${value} was reported with versions ${had} and ${version}`;
    }
    const who = owner.get(version);
    if (who !== undefined && who !== value) {
      return `version ${version} was reported for values ${who} and ${value}`;
    }
    out.set(value, version);
    owner.set(version, value);
    return undefined;
  };
  for (const o of ops) {
    if (o.status !== "ok" || o.version === undefined) continue;
    const value = o.kind === "put" ? o.value : o.read;
    if (typeof value !== "string") continue;
    const problem = note(value, o.version);
    if (problem) return problem;
  }
  return out;
}

function mentions(o: Operation, problem: string): boolean {
  return (o.value !== undefined && problem.includes(` ${o.value} `)) ||
    (typeof o.read === "string" && problem.includes(` ${o.read} `));
}

/**
 * Applies `o` (as having taken effect) to `s`; undefined when the response
 * it got is impossible in state `s`.
 */
function step(
  s: State,
  o: Operation,
  versions: Map<string, number>,
): State | undefined {
  if (o.kind === "get") {
    // A read from an unknown state pins it down.
    if (s.value === ANY || (s.value === SOME && o.read !== null)) {
      return { value: o.read!, floor: s.floor };
    }
    return s.value === o.read ? s : undefined;
  }
  const holds = conditionHolds(s, o, versions);
  if (o.status === "failed") {
    if (holds === true) return undefined;
    return s.value === ANY && o.ifNoneMatch
      ? { value: SOME, floor: s.floor }
      : s;
  }
  if (holds === false) return undefined;
  if (o.kind === "delete") return { value: null, floor: s.floor };
  const v = versions.get(o.value!);
  if (v === undefined) return { value: o.value!, floor: s.floor };
  if (v <= s.floor) return undefined;
  return { value: o.value!, floor: v };
}

/** true / false, or undefined when the state is unknown (window start). */
function conditionHolds(
  s: State,
  o: Operation,
  versions: Map<string, number>,
): boolean | undefined {
  if (o.ifMatch === undefined && !o.ifNoneMatch) return true;
  if (o.ifNoneMatch) return s.value === ANY ? undefined : s.value === null;
  if (s.value === null) return false;
  if (s.value === ANY || s.value === SOME) return undefined;
  const v = versions.get(s.value);
  if (v !== undefined) return v === o.ifMatch;
  // A write whose version no response revealed (its answer was lost and
  // nobody read it): it may hold any version no other write holds.
  return versionTaken(versions, o.ifMatch!) ? false : undefined;
}

/** Versions some response tied to a value, cached per map. */
const takenCache = new WeakMap<Map<string, number>, Set<number>>();

function versionTaken(versions: Map<string, number>, v: number): boolean {
  let taken = takenCache.get(versions);
  if (taken === undefined) {
    taken = new Set(versions.values());
    takenCache.set(versions, taken);
  }
  return taken.has(v);
}

function stateKey(s: State): string {
  return s.value === null ? `-${s.floor}` : `=${s.floor}:${s.value}`;
}

/**
 * The Wing & Gong search with memoisation of (linearized set, state): true
 * when some order explains every completed operation.
 */
function search(
  ops: readonly Operation[],
  versions: Map<string, number>,
  initial: State,
): boolean {
  const events: Entry[] = [];
  let mustLinearize = 0;
  for (let i = 0; i < ops.length; i++) {
    const o = ops[i];
    if (placed(o)) mustLinearize++;
    const call: Entry = {
      op: i,
      call: true,
      time: o.invoke,
      prev: undefined,
      next: undefined,
      match: undefined,
    };
    const ret: Entry = {
      op: i,
      call: false,
      time: o.ret,
      prev: undefined,
      next: undefined,
      match: undefined,
    };
    call.match = ret;
    events.push(call, ret);
  }
  // Calls sort before returns at the same instant: such operations overlap.
  events.sort((a, b) =>
    a.time - b.time || (a.call === b.call ? 0 : a.call ? -1 : 1)
  );
  const head: Entry = {
    op: -1,
    call: false,
    time: -Infinity,
    prev: undefined,
    next: undefined,
    match: undefined,
  };
  let last = head;
  for (const e of events) {
    last.next = e;
    e.prev = last;
    last = e;
  }
  const lift = (e: Entry) => {
    e.prev!.next = e.next;
    if (e.next) e.next.prev = e.prev;
    const r = e.match!;
    r.prev!.next = r.next;
    if (r.next) r.next.prev = r.prev;
  };
  const unlift = (e: Entry) => {
    const r = e.match!;
    r.prev!.next = r;
    if (r.next) r.next.prev = r;
    e.prev!.next = e;
    if (e.next) e.next.prev = e;
  };
  // The linearized set is memoised by a 64-bit Zobrist hash (two random
  // 32-bit words per operation, XORed in and out) plus the state: a set
  // of thousands of bits is never turned into a string.
  const zobrist = new Uint32Array(ops.length * 2);
  let seed = 0x9e3779b9;
  for (let i = 0; i < zobrist.length; i++) {
    seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + i) >>> 0;
    seed = (seed ^ Math.imul(seed ^ (seed >>> 12), 0x297a2d39)) >>> 0;
    zobrist[i] = seed;
  }
  let h1 = 0;
  let h2 = 0;
  const toggle = (op: number) => {
    h1 = (h1 ^ zobrist[op * 2]) >>> 0;
    h2 = (h2 ^ zobrist[op * 2 + 1]) >>> 0;
  };
  const seen = new Set<string>();
  // alt: which outcome was chosen; an unknown operation with a bound has
  // two (it took effect, or it did nothing), tried in that order.
  const stack: { entry: Entry; state: State; alt: number }[] = [];
  let state = initial;
  let done = 0; // operations that must be placed, placed
  let entry = head.next;
  let alt = 0; // first outcome to try at `entry`
  while (done < mustLinearize) {
    if (entry === undefined) return false; // cannot happen: returns remain
    if (entry.call) {
      const e: Entry = entry;
      const o = ops[e.op];
      const outcomes = o.status === "unknown" && placed(o) ? 2 : 1;
      let advanced = false;
      for (; alt < outcomes && !advanced; alt++) {
        const next = alt === 0 ? step(state, o, versions) : state;
        if (next === undefined) continue;
        toggle(e.op);
        const key = `${h1}.${h2}${stateKey(next)}`;
        if (seen.has(key)) {
          toggle(e.op);
          continue;
        }
        seen.add(key);
        stack.push({ entry: e, state, alt });
        state = next;
        if (placed(o)) done++;
        lift(e);
        advanced = true;
      }
      alt = 0;
      entry = advanced ? head.next : e.next;
    } else {
      // An operation's response came before it could be placed: undo the
      // last choice and try its next outcome, then the next candidate.
      const top = stack.pop();
      if (top === undefined) return false;
      entry = top.entry;
      state = top.state;
      toggle(entry.op);
      if (placed(ops[entry.op])) done--;
      unlift(entry);
      alt = top.alt + 1;
    }
  }
  return true;
}

/**
 * Whether an operation must be placed before its `ret`: all but unknown
 * outcomes without a bound (those may be left out, so never block).
 */
function placed(o: Operation): boolean {
  return o.status !== "unknown" || Number.isFinite(o.ret);
}

/** Operations whose response arrived by `t`; later ones become unknown. */
function prefix(ops: readonly Operation[], t: number): Operation[] {
  const out: Operation[] = [];
  for (const o of ops) {
    if (o.invoke > t) continue;
    if (o.ret <= t) out.push(o);
    else if (o.kind !== "get") {
      out.push({ ...o, status: "unknown", ret: Infinity, running: true });
    }
  }
  return out;
}

/**
 * Shrinks a failing history cheaply, keeping it failing at every step and
 * only ever weakening it, so what remains is a genuine violation: cut to
 * the shortest failing prefix (operations still running at the cut may
 * or may not have taken effect), then drop the longest failing head (the
 * state at the window's start is then unknown), then drop reads and 412s
 * that are not needed.
 */
function minimise(
  ops: readonly Operation[],
  versions: Map<string, number>,
  initial: State,
): Operation[] {
  const fails = (h: Operation[], s: State) => !search(h, versions, s);
  const rets = [
    ...new Set(ops.filter((o) => o.status !== "unknown").map((o) => o.ret)),
  ].sort((a, b) => a - b);
  // Shortest failing prefix: binary search over response times.
  let lo = 0;
  let hi = rets.length - 1;
  let cut = prefix(ops, Infinity);
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const p = prefix(ops, rets[mid]);
    if (fails(p, initial)) {
      cut = p;
      hi = mid - 1;
    } else lo = mid + 1;
  }
  // Longest failing head to drop: operations that returned before `start`.
  const unknownStart: State = { value: ANY, floor: 0 };
  const starts = [
    ...new Set(
      cut.filter((o) => o.status !== "unknown").map((
        o,
      ) => o.ret),
    ),
  ].sort((a, b) => a - b);
  let window = cut;
  let windowState = initial;
  lo = 0;
  hi = starts.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const w = cut.filter((o) => o.ret > starts[mid]);
    if (fails(w, unknownStart)) {
      window = w;
      windowState = unknownStart;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  // Drop reads and 412s (they change nothing) one at a time, while failing.
  let budget = 300;
  for (let i = window.length - 1; i >= 0 && budget > 0; i--) {
    const o = window[i];
    if (o.kind !== "get" && o.status !== "failed") continue;
    budget--;
    const w = window.filter((_, j) => j !== i);
    if (fails(w, windowState)) window = w;
  }
  return window;
}

function fail(
  reason: string,
  counterexample: Operation[],
  all: readonly Operation[],
): Verdict {
  const t0 = Math.min(...all.map((o) => o.invoke));
  const sorted = [...counterexample].sort((a, b) => a.invoke - b.invoke);
  const lines = [
    `not linearizable: ${reason}`,
    `counterexample (${sorted.length} of ${all.length} operations; times in ms from the first invocation):`,
    ...sorted.map((o) => "  " + describe(o, t0)),
  ];
  return {
    ok: false,
    reason,
    counterexample: sorted,
    report: lines.join("\n"),
  };
}

/** One line per operation: client, interval, request and response. */
export function describe(o: Operation, t0 = 0): string {
  const t = (n: number) => (n - t0).toFixed(3);
  const when = o.status !== "unknown"
    ? `[${t(o.invoke)}, ${t(o.ret)}]`
    : Number.isFinite(o.ret)
    ? `[${t(o.invoke)}, ${t(o.ret)}?]`
    : `[${t(o.invoke)}, ?)`;
  const cond = o.ifMatch !== undefined
    ? ` If-Match:"${o.ifMatch}"`
    : o.ifNoneMatch
    ? " If-None-Match:*"
    : "";
  const req = o.kind === "put"
    ? `PUT ${o.value}${cond}`
    : o.kind === "delete"
    ? `DELETE${cond}`
    : "GET";
  let res: string;
  if (o.running) res = "(still running)";
  else if (o.status === "unknown") res = "no answer";
  else if (o.status === "failed") res = "412";
  else if (o.kind === "get") {
    res = o.read === null ? "404" : `200 ${o.read} "${o.version}"`;
  } else if (o.kind === "put") res = `204 "${o.version}"`;
  else res = "204";
  return `client ${o.client} ${when} ${req} -> ${res}`;
}
