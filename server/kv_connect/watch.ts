/**
 * Watch streams of the KV Connect data path. A {@link WatchHub} per store
 * keeps every open watch; each watch re-reads its keys when an
 * `atomic_write` touches one of them ({@link WatchHub.notify}), and on a
 * periodic poll so that writes made through the `/kv/` REST routes (which
 * this module does not see) and expiries are noticed too.
 *
 * Stream framing: each frame is a 4-byte little-endian length, then a
 * `WatchOutput`. A frame goes out first on open, then whenever the
 * versionstamp of any watched key differs from the last frame sent; every
 * frame reports every key (`changed` set, the entry when present, none when
 * absent), because Deno 2.x's client shows a `changed: false` key as absent.
 * An empty frame is a keep-alive.
 *
 * Backpressure: a watch whose stream queue is full is skipped, not buffered;
 * since a frame carries current state, the next check sends what the client
 * missed in one frame.
 *
 * Cost when nothing changes: the poll first compares the store's visible
 * sequence number with the one a watch last checked at; when it is the same
 * and no watched key's expiry has passed, the watch reads nothing. Otherwise
 * it compares versions ({@link VersionProbe}) and reads values only to build
 * a frame that must go out. Open watches are capped per server and per
 * client ({@link WatchHub.open}).
 *
 * @module
 */
import {
  encodeWatchFrame,
  KEEPALIVE_FRAME,
  type KvEntry,
  type WatchKeyOutput,
} from "./protobuf.ts";
import { toVersionstamp } from "./keyspace.ts";

/** How often every watch re-reads its keys. */
export const POLL_INTERVAL_MS = 1000;
/** A keep-alive frame goes out when nothing was sent for this long. */
export const KEEPALIVE_INTERVAL_MS = 5000;

/** Binary-string form of a key, for Map lookups. */
export function keyId(key: Uint8Array): string {
  let s = "";
  for (let i = 0; i < key.length; i++) s += String.fromCharCode(key[i]);
  return s;
}

/** Maps a stored entry to its KV Connect form; supplied by the handler. */
export type EntryReader = (fullKey: Uint8Array) => KvEntry | undefined;

/** A key's version (0 when absent) and expiry (ms since epoch, 0 for none). */
export type VersionProbe = (
  fullKey: Uint8Array,
) => { version: number; expiresAt: number };

/** Where a watch comes from and what it may read. */
export interface WatchSource {
  read: EntryReader;
  probe: VersionProbe;
  /** The client's identity (remote address) for the per-client cap. */
  client: string;
}

/** One open watch stream. */
class Watcher {
  readonly ids: string[];
  readonly client: string;
  /** Store sequence number at the last full check; -1 before the first. */
  checkedAtSeq = -1;
  /** Earliest expiry among the watched keys at the last check (Infinity: none). */
  nextExpiry = Infinity;
  #keys: Uint8Array[];
  #read: EntryReader;
  #probe: VersionProbe;
  #controller: ReadableStreamDefaultController<Uint8Array>;
  /** Versionstamp seqno last sent per key; 0 = absent; -1 = never sent. */
  #sent: number[];
  #lastSendAt = 0;
  #ended = false;
  /** Set once the watch is released; no frame is sent after it. */
  closed = false;

  constructor(
    keys: Uint8Array[],
    source: WatchSource,
    controller: ReadableStreamDefaultController<Uint8Array>,
  ) {
    this.#keys = keys;
    this.ids = keys.map(keyId);
    this.client = source.client;
    this.#read = source.read;
    this.#probe = source.probe;
    this.#controller = controller;
    this.#sent = keys.map(() => -1);
  }

  /**
   * Sends a frame if any key changed since the last one; else maybe a
   * keep-alive. `storeSeq` is the store's visible sequence number now.
   */
  check(now: number, storeSeq: number): void {
    if (this.closed) return;
    const desired = this.#controller.desiredSize;
    if (desired !== null && desired <= 0) return;
    const seqs: number[] = [];
    let any = false;
    let nextExpiry = Infinity;
    for (let i = 0; i < this.#keys.length; i++) {
      const p = this.#probe(this.#keys[i]);
      seqs.push(p.version);
      if (p.version !== this.#sent[i]) any = true;
      if (p.expiresAt > 0 && p.expiresAt < nextExpiry) nextExpiry = p.expiresAt;
    }
    this.checkedAtSeq = storeSeq;
    this.nextExpiry = nextExpiry;
    if (any) {
      // Every key is reported as changed with its current entry: Deno's
      // client de-duplicates by versionstamp itself, and some client
      // versions mishandle `changed: false`.
      const outputs: WatchKeyOutput[] = [];
      for (let i = 0; i < this.#keys.length; i++) {
        const entry = this.#read(this.#keys[i]);
        seqs[i] = entry === undefined ? 0 : seqOf(entry);
        outputs.push({ changed: true, entry });
      }
      this.#sent = seqs;
      this.#send(encodeWatchFrame(outputs), now);
    } else this.keepAlive(now);
  }

  /** Sends a keep-alive frame when nothing went out for a while. */
  keepAlive(now: number): void {
    if (this.closed) return;
    const desired = this.#controller.desiredSize;
    if (desired !== null && desired <= 0) return;
    if (now - this.#lastSendAt >= KEEPALIVE_INTERVAL_MS) {
      this.#send(KEEPALIVE_FRAME, now);
    }
  }

  #send(frame: Uint8Array, now: number): void {
    this.#controller.enqueue(frame);
    this.#lastSendAt = now;
  }

  /** Ends the stream (server side); the client reconnects if it still wants it. */
  end(): void {
    this.closed = true;
    if (this.#ended) return;
    this.#ended = true;
    try {
      this.#controller.close();
    } catch {
      // already closed or errored by the client going away
    }
  }
}

function seqOf(entry: KvEntry): number {
  const v = entry.versionstamp;
  return Number(new DataView(v.buffer, v.byteOffset, 8).getBigUint64(0));
}

/** Every open watch on one store, indexed by key. */
export class WatchHub {
  #byKey = new Map<string, Set<Watcher>>();
  #all = new Set<Watcher>();
  #byClient = new Map<string, number>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #clock: () => number;
  #storeSeq: () => number;
  #maxWatches: number;
  #maxPerClient: number;

  /**
   * `storeSeq` returns the store's visible sequence number (it moves on
   * every commit); `maxWatches` and `maxPerClient` cap open streams.
   */
  constructor(
    clock: () => number = Date.now,
    storeSeq: () => number = () => -1,
    maxWatches = Infinity,
    maxPerClient = Infinity,
  ) {
    this.#clock = clock;
    this.#storeSeq = storeSeq;
    this.#maxWatches = maxWatches;
    this.#maxPerClient = maxPerClient;
  }

  /** Open watch streams of one client. */
  countOf(client: string): number {
    return this.#byClient.get(client) ?? 0;
  }

  /**
   * Whether another watch may open: "ok", or which cap is full (the caller
   * answers with its own error).
   */
  admit(client: string): "ok" | "server" | "client" {
    if (this.#all.size >= this.#maxWatches) return "server";
    if (this.countOf(client) >= this.#maxPerClient) return "client";
    return "ok";
  }

  /** Open watch streams. */
  get size(): number {
    return this.#all.size;
  }

  /**
   * Opens a watch stream over `keys` (full store keys). The first frame is
   * queued before this returns. The watch is released when the stream is
   * cancelled or `signal` aborts.
   */
  open(
    keys: Uint8Array[],
    source: WatchSource,
    signal: AbortSignal,
  ): ReadableStream<Uint8Array> {
    let watcher: Watcher | undefined;
    const stream = new ReadableStream<Uint8Array>({
      start: (controller) => {
        watcher = new Watcher(keys, source, controller);
        this.#add(watcher);
        watcher.check(this.#clock(), this.#storeSeq());
      },
      cancel: () => {
        if (watcher) this.#remove(watcher);
      },
    }, new CountQueuingStrategy({ highWaterMark: 8 }));
    const onAbort = () => {
      if (watcher) {
        this.#remove(watcher);
        watcher.end();
      }
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
    return stream;
  }

  /** Re-checks the watches of the given keys (after a commit touched them). */
  notify(ids: Iterable<string>): void {
    if (this.#all.size === 0) return;
    const due = new Set<Watcher>();
    for (const id of ids) {
      const set = this.#byKey.get(id);
      if (set) { for (const w of set) due.add(w); }
    }
    if (due.size === 0) return;
    const now = this.#clock();
    const seq = this.#storeSeq();
    for (const w of due) this.#checkOrDrop(w, now, seq, true);
  }

  /** Ends every stream; used when the server drains. */
  closeAll(): void {
    for (const w of [...this.#all]) {
      this.#remove(w);
      w.end();
    }
  }

  #checkOrDrop(w: Watcher, now: number, seq: number, force: boolean): void {
    try {
      // Nothing committed since the last check and no expiry due: the
      // watched keys cannot have changed, so nothing is read.
      if (
        !force && seq >= 0 && seq === w.checkedAtSeq && now < w.nextExpiry
      ) {
        w.keepAlive(now);
      } else w.check(now, seq);
    } catch {
      // The store closed or the stream is gone: release the watch. The
      // client reconnects and gets a proper error from the new request.
      this.#remove(w);
      w.end();
    }
  }

  #add(w: Watcher): void {
    this.#all.add(w);
    this.#byClient.set(w.client, this.countOf(w.client) + 1);
    for (const id of w.ids) {
      let set = this.#byKey.get(id);
      if (!set) this.#byKey.set(id, set = new Set());
      set.add(w);
    }
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.#poll(), POLL_INTERVAL_MS);
    }
  }

  #remove(w: Watcher): void {
    if (!this.#all.delete(w)) return;
    w.closed = true;
    const n = this.countOf(w.client) - 1;
    if (n <= 0) this.#byClient.delete(w.client);
    else this.#byClient.set(w.client, n);
    for (const id of w.ids) {
      const set = this.#byKey.get(id);
      if (!set) continue;
      set.delete(w);
      if (set.size === 0) this.#byKey.delete(id);
    }
    if (this.#all.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  #poll(): void {
    const now = this.#clock();
    const seq = this.#storeSeq();
    for (const w of [...this.#all]) this.#checkOrDrop(w, now, seq, false);
  }
}

/** Builds a `KvEntry` with its versionstamp from a seqno. */
export function entryOf(
  key: Uint8Array,
  value: Uint8Array,
  encoding: number,
  seq: number,
): KvEntry {
  return { key, value, encoding, versionstamp: toVersionstamp(seq) };
}
