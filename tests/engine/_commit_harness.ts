/**
 * A commit pipeline without a Db, for tests of commit.ts and of the write
 * path in front of it (write.ts): a fake log whose syncs the test
 * completes (or fails) by hand, and a memtable that records what it is
 * given.
 *
 * @module
 */
import assert from "node:assert/strict";
import type {
  CommitCounters,
  CommitEnv,
  CommitMemtable,
} from "../../engine/commit_env.ts";
import { CommitPipeline } from "../../engine/commit.ts";
import { binaryString } from "../../engine/coding.ts";
import type { Entry } from "../../engine/entry.ts";
import { KIND_DELETE, KIND_PUT } from "../../engine/entry.ts";
import type { WritableFile } from "../../engine/fs.ts";
import type { LogReadResult } from "../../engine/log_read.ts";
import {
  decodeBatch,
  logHeader,
  RECORD_BATCH,
  WAL_MAGIC,
} from "../../engine/wal.ts";
import { parseLog } from "../../engine/log_read.ts";
import { encodeBatchOps } from "../../engine/batch_ops.ts";
import { enc } from "../_helpers.ts";

/** A log in memory; each sync waits until the test settles it. */
export class FakeLog implements WritableFile {
  readonly path = "fake.log";
  appends: Uint8Array[] = [];
  #bytes: number[] = [...logHeader(WAL_MAGIC)];
  /** Set to make the next append throw this error. */
  failAppend: Error | undefined;
  syncs: { resolve(): void; reject(err: Error): void }[] = [];
  closed = false;

  get size(): number {
    return this.#bytes.length;
  }
  append(data: Uint8Array): void {
    if (this.failAppend) {
      const err = this.failAppend;
      this.failAppend = undefined;
      this.#bytes.push(...data.subarray(0, data.length >> 1)); // a partial write
      throw err;
    }
    this.appends.push(data.slice());
    this.#bytes.push(...data);
  }
  sync(): Promise<void> {
    return new Promise((resolve, reject) =>
      this.syncs.push({ resolve, reject })
    );
  }
  truncate(len: number): void {
    this.#bytes.length = len;
  }
  close(): void {
    this.closed = true;
  }
  parse(): LogReadResult {
    return parseLog(new Uint8Array(this.#bytes), this.path, WAL_MAGIC);
  }
  /** The seqno of every batch record, in log order. */
  seqs(): number[] {
    const log = this.parse();
    return log.records.filter((r) => r.type === RECORD_BATCH).map((r) =>
      decodeBatch(r.payload, this.path, 0)[0].seq
    );
  }
  /** Completes the oldest pending sync. */
  async completeSync(): Promise<void> {
    await waitFor(() => this.syncs.length > 0);
    this.syncs.shift()!.resolve();
  }
}

/**
 * Records every group applied, and the version of each stored key's newest
 * write in `visible` (stored key as a binary string -> seqno; a delete
 * removes it), which readers would see.
 */
export class FakeMemtable implements CommitMemtable {
  groups: Entry[][] = [];
  constructor(readonly visible = new Map<string, number>()) {}
  addMany(entries: readonly Entry[]): void {
    for (const e of entries) {
      if (e.kind === KIND_PUT) this.visible.set(binaryString(e.key), e.seq);
      else this.visible.delete(binaryString(e.key));
    }
    this.groups.push([...entries]);
  }
}

export function counters(): CommitCounters {
  return {
    puts: 0,
    deletes: 0,
    batches: 0,
    userBytes: 0,
    writeGroups: 0,
    walSyncs: 0,
    walBytes: 0,
    preconditionFailures: 0,
  };
}

/** Lets pending promise callbacks (and the commit loop) run. */
export async function waitFor(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !cond(); i++) {
    await new Promise((r) => setTimeout(r, 0));
  }
  assert.ok(cond(), "condition not reached");
}

export function setup(sync: CommitEnv["sync"] = "always") {
  const log = new FakeLog();
  const visible = new Map<string, number>(); // stored key -> version
  const mem = new FakeMemtable(visible);
  const published: number[] = [];
  const env: CommitEnv = {
    sync,
    syncIntervalMs: 10,
    clock: () => 1000,
    memtable: () => mem,
    makeRoom: () => undefined,
    published: (seq) => published.push(seq),
    diskFull: () => {},
    backgroundBlocked: () => false,
    storedKey: (space, key) => new Uint8Array([space, ...key]),
    visibleVersion: (key) => visible.get(binaryString(key)) ?? null,
    counters: counters(),
  };
  const pipe = new CommitPipeline(env, log, 0);
  const write = (key: string, del = false): Promise<number> => {
    const op: Entry = {
      key: enc(key),
      seq: 0,
      kind: del ? KIND_DELETE : KIND_PUT,
      encoding: 0,
      expiresAt: 0,
      value: del ? new Uint8Array(0) : enc("v-" + key),
    };
    const { payload, entries } = encodeBatchOps([op], undefined, 0);
    return pipe.enqueue(entries, payload, false);
  };
  return { log, mem, env, pipe, write, published, visible };
}
