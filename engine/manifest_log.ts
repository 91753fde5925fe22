/**
 * The manifest as the Db writes it: edits appended one at a time (each
 * durable before its Version is installed), and the roll-over to a new
 * manifest holding the whole state once the log has grown well past it
 * (LevelDB's VersionSet::LogAndApply and its manifest switch).
 *
 * @module
 */
import type { CommitPipeline } from "./commit.ts";
import { wrapIoError } from "./errors.ts";
import { manifestFileName } from "./filename.ts";
import type { DirFiles } from "./data_dir.ts";
import type { ManifestState, VersionEdit } from "./manifest.ts";
import { applyEdit, ManifestWriter, setCurrent } from "./manifest.ts";
import type { VersionSet } from "./version.ts";

/** What the manifest log needs from the Db. */
export interface ManifestEnv extends DirFiles {
  versions: VersionSet;
  /** Its failure state: a failed switch of CURRENT makes the store read-only. */
  commit: CommitPipeline;
  /** The size past which (and past 4x its snapshot) the manifest rolls. */
  maxManifestBytes: number;
  counters: { manifestRolls: number };
}

/** The live manifest and the serialised chain of edits to it. */
export class ManifestLog {
  #env: ManifestEnv;
  #state: ManifestState;
  #writer: ManifestWriter;
  #chain: Promise<void> = Promise.resolve();

  /** Appends to `writer`, a manifest that holds `state`, and keeps `state` current. */
  constructor(env: ManifestEnv, state: ManifestState, writer: ManifestWriter) {
    this.#env = env;
    this.#state = state;
    this.#writer = writer;
  }

  /** The live manifest's file name. */
  get name(): string {
    return this.#writer.name;
  }

  /** Its name, size and the size of the snapshot it started with. */
  stats(): { name: string; bytes: number; snapshotBytes: number } {
    const m = this.#writer;
    return { name: m.name, bytes: m.size, snapshotBytes: m.snapshotBytes };
  }

  /** Resolves once every edit handed in so far is written (or failed). */
  idle(): Promise<void> {
    return this.#chain;
  }

  /** Closes the live manifest file. */
  close(): void {
    this.#writer.close();
  }

  /**
   * Appends an edit to the manifest (durably), then installs the new
   * Version. Edits are serialised so they reach the manifest in order.
   */
  logAndApply(edit: VersionEdit): Promise<void> {
    const env = this.#env;
    const run = this.#chain.then(async () => {
      await this.#writer.append(edit);
      applyEdit(this.#state, edit);
      env.versions.apply(edit);
      const m = this.#writer;
      if (
        m.size >= env.maxManifestBytes &&
        m.size >= 4 * m.snapshotBytes && !env.commit.failure
      ) {
        await this.#rollManifest();
      }
    });
    this.#chain = run.catch(() => {});
    return run;
  }

  /**
   * Starts a new manifest holding the whole state and switches CURRENT to
   * it; runs inside the manifest chain, so no edit interleaves. Crash-safe
   * at every step: the new file is complete and durable before CURRENT
   * names it (write temp, fdatasync, rename, fsync directory), and the old
   * one is removed only after. Until the rename the old manifest is in
   * charge, and a failure there just leaves the roll for the next edit; a
   * failure during the switch leaves it unknown which manifest CURRENT
   * names, so the store turns read-only (both are complete, and the next
   * open reads whichever it is).
   */
  async #rollManifest(): Promise<void> {
    const env = this.#env;
    const fs = env.fs;
    const n = env.newFileNumber();
    this.#state.nextFileNumber = env.nextFileNumber();
    let next: ManifestWriter;
    try {
      next = await ManifestWriter.start(fs, env.dir, n, this.#state);
    } catch {
      env.removeQuietly(`${env.dir}/${manifestFileName(n)}`);
      return;
    }
    try {
      await setCurrent(fs, env.dir, next.name);
    } catch (err) {
      next.close();
      env.commit.fail(wrapIoError(err, "manifest roll-over"));
      return;
    }
    const old = this.#writer;
    this.#writer = next;
    old.close();
    env.removeQuietly(`${env.dir}/${old.name}`);
    env.counters.manifestRolls++;
  }
}
