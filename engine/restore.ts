/**
 * Checking and restoring a backup archive made by engine/backup.ts.
 *
 * Nothing is trusted before it is checked: every tar header's checksum, the
 * member names (plain data-file names only, no paths), each member's
 * SHA-256 against the `BACKUP` summary, the summary's own SHA-256, that every
 * listed file is present once and nothing else is, and the end-of-archive
 * marker (a truncated archive lacks it). A restore writes into a hidden
 * temporary directory beside the target, runs the full `verify` on it, and
 * only then renames it into place; on any failure the temporary directory is
 * removed, so there is never a half-restored data directory.
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import {
  BACKUP_FORMAT,
  BACKUP_FORMAT_VERSION,
  BACKUP_SUMMARY,
  BACKUP_SUMMARY_SHA,
  type BackupSummary,
  sha256Hex,
} from "./backup.ts";
import { CorruptionError, InvalidArgumentError } from "./errors.ts";
import type { FileSystem, WritableFile } from "./fs.ts";
import { realFs } from "./fs.ts";
import { isZeroBlock, parseTarHeader, TAR_BLOCK, tarPadding } from "./tar.ts";
import { verify } from "./verify.ts";

/** Options of {@link checkBackup} and {@link restoreBackup}. */
export interface RestoreOptions {
  /** Names the archive in error messages. Default "backup". */
  name?: string;
  fs?: FileSystem;
}

/** The data files a backup may hold; anything else is refused. */
const DATA_FILE = /^(?:\d{6,}\.(?:sst|log)|MANIFEST-\d{6,}|CURRENT)$/;
/** The summary is small; a larger one is damage, not a backup. */
const MAX_SUMMARY_BYTES = 64 << 20;
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Reads a whole archive and checks it without writing anything; resolves
 * with its summary, or rejects with CorruptionError saying what is wrong.
 */
export function checkBackup(
  source: ReadableStream<Uint8Array>,
  opts: RestoreOptions = {},
): Promise<BackupSummary> {
  return readArchive(source, opts.name ?? "backup", undefined);
}

/**
 * Restores an archive into `dir`, which must not exist or be empty. Resolves
 * with the summary once `dir` holds the checked, verified data directory; on
 * any error `dir` is left as it was.
 */
export async function restoreBackup(
  source: ReadableStream<Uint8Array>,
  dir: string,
  opts: RestoreOptions = {},
): Promise<BackupSummary> {
  const fs = opts.fs ?? realFs;
  const name = opts.name ?? "backup";
  const target = dir.replace(/\/+$/, "") || "/";
  if (fs.exists(target) && fs.readDir(target).length > 0) {
    await source.cancel().catch(() => {});
    throw new InvalidArgumentError(
      `restore target ${target} is not empty; restore into a new or empty directory`,
    );
  }
  const slash = target.lastIndexOf("/");
  const parent = slash > 0 ? target.slice(0, slash) : slash === 0 ? "/" : ".";
  const base = target.slice(slash + 1);
  fs.mkdirp(parent);
  const rand = Array.from(
    crypto.getRandomValues(new Uint8Array(6)),
    (x) => x.toString(16).padStart(2, "0"),
  ).join("");
  const tmp = `${parent}/.${base}.restore-${rand}`;
  fs.mkdirp(tmp);
  let done = false;
  try {
    const summary = await readArchive(source, name, { fs, dir: tmp });
    const report = verify(tmp, { fs });
    if (report.errors.length > 0) {
      const e = report.errors[0];
      throw new CorruptionError(
        name,
        0,
        `the restored files fail verify: ${e.message} (${e.file})`,
      );
    }
    await fs.syncDir(tmp);
    // rename(2) replaces an empty directory; a missing one is just created.
    if (fs.exists(target)) fs.remove(target);
    fs.rename(tmp, target);
    await fs.syncDir(parent);
    done = true;
    return summary;
  } finally {
    if (!done) removeTree(fs, tmp);
  }
}

/** Removes a flat directory and its files, best effort. */
function removeTree(fs: FileSystem, dir: string): void {
  try {
    for (const f of fs.readDir(dir)) fs.remove(`${dir}/${f}`);
    fs.remove(dir);
  } catch {
    // left behind as a hidden .restore- directory; never the target
  }
}

/** Where checked members are written, when restoring. */
interface Sink {
  fs: FileSystem;
  dir: string;
}

async function readArchive(
  source: ReadableStream<Uint8Array>,
  name: string,
  sink: Sink | undefined,
): Promise<BackupSummary> {
  const r = new ExactReader(source.getReader());
  const bad = (what: string): never => {
    throw new CorruptionError(name, r.offset, what);
  };
  const seen = new Map<string, { size: number; sha256: string }>();
  let summaryBytes: Uint8Array | undefined;
  let summarySha: string | undefined;
  try {
    while (true) {
      const block = await r.read(TAR_BLOCK);
      if (block.length < TAR_BLOCK) {
        bad(
          "the archive ends before its end-of-archive marker: the backup is truncated",
        );
      }
      if (isZeroBlock(block)) {
        const second = await r.read(TAR_BLOCK);
        if (second.length < TAR_BLOCK || !isZeroBlock(second)) {
          bad("the end-of-archive marker is damaged or truncated");
        }
        break;
      }
      let header;
      try {
        header = parseTarHeader(block);
      } catch (err) {
        bad(`bad tar header: ${(err as Error).message}`);
      }
      const { name: member, size } = header!;
      if (seen.has(member) || member === summarySha) {
        bad(`member ${member} appears twice`);
      }
      if (member === BACKUP_SUMMARY || member === BACKUP_SUMMARY_SHA) {
        if (size > MAX_SUMMARY_BYTES) bad(`member ${member} is too large`);
        const bytes = await r.read(size);
        if (bytes.length < size) bad(`member ${member} is truncated`);
        await skipPadding(r, size, bad);
        if (member === BACKUP_SUMMARY) {
          if (summaryBytes !== undefined) bad(`member ${member} appears twice`);
          summaryBytes = bytes;
        } else {
          if (summaryBytes === undefined || summarySha !== undefined) {
            bad(`${BACKUP_SUMMARY_SHA} must follow ${BACKUP_SUMMARY} once`);
          }
          summarySha = new TextDecoder().decode(bytes).trim();
        }
        continue;
      }
      if (summaryBytes !== undefined) {
        bad(`member ${member} comes after ${BACKUP_SUMMARY}`);
      }
      if (!DATA_FILE.test(member)) {
        bad(`unexpected member ${JSON.stringify(member)}`);
      }
      const hash = createHash("sha256");
      let out: WritableFile | undefined;
      if (sink) {
        out = sink.fs.openWritable(`${sink.dir}/${member}`, {
          exclusive: true,
        });
      }
      try {
        await copyMember(r, size, hash, out, member, bad);
        if (out) await out.sync();
      } finally {
        out?.close();
      }
      await skipPadding(r, size, bad);
      seen.set(member, { size, sha256: hash.digest("hex") });
    }
  } finally {
    r.cancel();
  }
  if (summaryBytes === undefined) {
    bad(
      `the archive has no ${BACKUP_SUMMARY} member: it is not a shale backup`,
    );
  }
  if (summarySha === undefined) bad(`the archive lacks ${BACKUP_SUMMARY_SHA}`);
  const actual = sha256Hex(summaryBytes!);
  if (actual !== summarySha) {
    bad(`${BACKUP_SUMMARY} does not match its checksum: the backup is damaged`);
  }
  const summary = parseSummary(summaryBytes!, bad);
  const listed = new Set<string>();
  for (const f of summary.files) {
    listed.add(f.name);
    const got = seen.get(f.name);
    if (got === undefined) bad(`listed file ${f.name} is missing`);
    if (got!.size !== f.size) {
      bad(`file ${f.name} has ${got!.size} bytes, the summary says ${f.size}`);
    }
    if (got!.sha256 !== f.sha256) {
      bad(`file ${f.name} fails its SHA-256 check: the backup is damaged`);
    }
  }
  for (const m of seen.keys()) {
    if (!listed.has(m)) bad(`member ${m} is not listed in ${BACKUP_SUMMARY}`);
  }
  if (!listed.has("CURRENT")) bad("the backup has no CURRENT file");
  return summary;
}

async function copyMember(
  r: ExactReader,
  size: number,
  hash: Hash,
  out: WritableFile | undefined,
  member: string,
  bad: (what: string) => never,
): Promise<void> {
  let left = size;
  while (left > 0) {
    const chunk = await r.readSome(left);
    if (chunk.length === 0) {
      bad(`member ${member} is truncated (${size - left} of ${size} bytes)`);
    }
    hash.update(chunk);
    out?.append(chunk);
    left -= chunk.length;
  }
}

async function skipPadding(
  r: ExactReader,
  size: number,
  bad: (what: string) => never,
): Promise<void> {
  const pad = tarPadding(size);
  if (pad > 0 && (await r.read(pad)).length < pad) {
    bad("the archive is truncated inside a member's padding");
  }
}

function parseSummary(
  bytes: Uint8Array,
  bad: (what: string) => never,
): BackupSummary {
  let s: BackupSummary;
  try {
    s = JSON.parse(decoder.decode(bytes));
  } catch {
    return bad(`${BACKUP_SUMMARY} is not valid JSON`);
  }
  if (
    typeof s !== "object" || s === null || s.format !== BACKUP_FORMAT ||
    !Number.isSafeInteger(s.version) || !Array.isArray(s.files)
  ) {
    bad(`${BACKUP_SUMMARY} is not a shale backup summary`);
  }
  if (s.formatVersion !== BACKUP_FORMAT_VERSION) {
    bad(
      `backup format version ${s.formatVersion} is not supported (this shale reads ${BACKUP_FORMAT_VERSION})`,
    );
  }
  for (const f of s.files) {
    if (
      typeof f?.name !== "string" || !Number.isSafeInteger(f.size) ||
      typeof f.sha256 !== "string"
    ) {
      bad(`${BACKUP_SUMMARY} lists a malformed file entry`);
    }
  }
  return s;
}

/** Reads exact byte counts from a stream of arbitrary chunks. */
class ExactReader {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #buf: Uint8Array = new Uint8Array(0);
  #eof = false;
  /** Bytes consumed so far: the offset errors report. */
  offset = 0;

  constructor(reader: ReadableStreamDefaultReader<Uint8Array>) {
    this.#reader = reader;
  }

  /** Up to `max` bytes (at least one unless the stream ended). */
  async readSome(max: number): Promise<Uint8Array> {
    while (this.#buf.length === 0 && !this.#eof) {
      const { value, done } = await this.#reader.read();
      if (done) this.#eof = true;
      else this.#buf = value;
    }
    const n = Math.min(max, this.#buf.length);
    const out = this.#buf.subarray(0, n);
    this.#buf = this.#buf.subarray(n);
    this.offset += n;
    return out;
  }

  /** Exactly `n` bytes, or fewer only at the end of the stream. */
  async read(n: number): Promise<Uint8Array> {
    const first = await this.readSome(n);
    if (first.length === n || first.length === 0) return first.slice();
    const out = new Uint8Array(n);
    out.set(first);
    let got = first.length;
    while (got < n) {
      const more = await this.readSome(n - got);
      if (more.length === 0) return out.subarray(0, got);
      out.set(more, got);
      got += more.length;
    }
    return out;
  }

  cancel(): void {
    this.#reader.cancel().catch(() => {});
  }
}
