/**
 * The memtables of a Db: the live one taking writes, the frozen ones
 * waiting for their flush (newest first), and the WAL segment each holds
 * its writes in. Rotation freezes the live memtable and starts a new one
 * with a new segment.
 *
 * @module
 */
import type { CommitPipeline } from "./commit.ts";
import { logPath } from "./filename.ts";
import type { DirFiles } from "./data_dir.ts";
import type { WritableFile } from "./fs.ts";
import { Memtable } from "./memtable.ts";
import { createLog, WAL_MAGIC } from "./wal.ts";

/** A frozen memtable waiting for its flush, with the WAL segments holding it. */
export interface Immutable {
  mem: Memtable;
  walNumbers: number[];
}

/** What rotation needs from the Db. */
export interface RotateEnv extends DirFiles {
  commit: CommitPipeline;
  /** Creating the new segment failed: the caller keeps the current one. */
  failed(err: unknown): void;
  /** A memtable was frozen: schedule its flush. */
  frozen(): void;
}

/** The live memtable, the frozen ones and the live WAL segment's number. */
export class MemtableSet {
  /** The memtable taking writes. */
  mem: Memtable = new Memtable();
  /** Frozen memtables, newest first. */
  imm: Immutable[] = [];
  /** The number of the WAL segment holding the live memtable's writes. */
  walNumber = 0;

  /** Every memtable, newest first. */
  all(): Memtable[] {
    return [this.mem, ...this.imm.map((i) => i.mem)];
  }

  /** Drops a memtable whose flush is installed. */
  flushed(imm: Immutable): void {
    this.imm = this.imm.filter((x) => x !== imm);
  }

  /**
   * Freezes the live memtable and starts a new one with a new WAL segment.
   * Runs while no group is being appended (the commit loop's makeRoom, or
   * an exclusive task). On failure the live memtable just keeps growing.
   */
  async rotate(env: RotateEnv): Promise<void> {
    const n = env.newFileNumber();
    let wal: WritableFile;
    try {
      // The old segment must be complete on disk, and end at its last
      // record (no preallocated zeros), before the new one gets a record:
      // recovery treats a bad tail in any but the newest segment as
      // corruption.
      await env.commit.sealLog();
      wal = await createLog(env.fs, logPath(env.dir, n), WAL_MAGIC);
      await env.fs.syncDir(env.dir);
    } catch (err) {
      // Keep writing to the current segment; the memtable just grows.
      env.removeQuietly(logPath(env.dir, n));
      env.failed(err);
      return;
    }
    this.imm.unshift({ mem: this.mem, walNumbers: [this.walNumber] });
    this.mem = new Memtable();
    env.commit.replaceLog(wal);
    this.walNumber = n;
    env.frozen();
  }
}
