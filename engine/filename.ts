/**
 * The one owner of the names of the files in a data directory: every other
 * module builds and recognizes names through here, so the naming scheme
 * (documented in FORMAT.md) lives in one place.
 *
 *   NNNNNN.log        a WAL segment          (FileType.Log)
 *   NNNNNN.sst        a table                (FileType.Table)
 *   MANIFEST-NNNNNN   a manifest             (FileType.Manifest)
 *   CURRENT           names the live manifest (FileType.Current)
 *   LOCK              the directory lock     (FileType.Lock)
 *   <name>.tmp        a file being written, renamed into place when complete
 *                     (FileType.Temp); a leftover one is a crash remnant
 *
 * `NNNNNN` is a file number from the manifest's counter, zero-padded to at
 * least six digits (more when it outgrows them). Numbers are shared by all
 * numbered kinds, so a number names at most one file.
 */

/** The kinds of file shale keeps in a data directory. */
export const FileType = {
  Log: "log",
  Table: "table",
  Manifest: "manifest",
  Current: "current",
  Lock: "lock",
  Temp: "temp",
} as const;

/** One of the {@link FileType} values. */
export type FileType = typeof FileType[keyof typeof FileType];

/** The name of the file that names the live manifest. */
export const CURRENT_FILE = "CURRENT";
/** The name of the directory lock file. */
export const LOCK_FILE = "LOCK";

const TEMP_SUFFIX = ".tmp";

function pad(n: number): string {
  return String(n).padStart(6, "0");
}

/** `000007.log` for 7. */
export function logFileName(n: number): string {
  return `${pad(n)}.log`;
}

/** `000007.sst` for 7. */
export function tableFileName(n: number): string {
  return `${pad(n)}.sst`;
}

/** `MANIFEST-000007` for 7. */
export function manifestFileName(n: number): string {
  return `MANIFEST-${pad(n)}`;
}

/** The temporary name `name` is written under before it is renamed to `name`. */
export function tempFileName(name: string): string {
  return name + TEMP_SUFFIX;
}

/** `<dir>/NNNNNN.log`. */
export function logPath(dir: string, n: number): string {
  return `${dir}/${logFileName(n)}`;
}

/** `<dir>/NNNNNN.sst`. */
export function tablePath(dir: string, n: number): string {
  return `${dir}/${tableFileName(n)}`;
}

/** `<dir>/CURRENT`. */
export function currentPath(dir: string): string {
  return `${dir}/${CURRENT_FILE}`;
}

/** `<dir>/LOCK`. */
export function lockPath(dir: string): string {
  return `${dir}/${LOCK_FILE}`;
}

/** A recognized file name: its kind and, for numbered kinds, its number. */
export interface ParsedFileName {
  type: FileType;
  /** The file number of a log, table or manifest; undefined otherwise. */
  number?: number;
}

/**
 * Recognizes a directory entry, or returns undefined for a name shale does
 * not own (which it then leaves alone). A name ending in `.tmp` is a Temp
 * file whatever precedes the suffix.
 */
export function parseFileName(name: string): ParsedFileName | undefined {
  const m = /^(\d{6,})\.(log|sst)$/.exec(name);
  if (m) {
    return {
      type: m[2] === "log" ? FileType.Log : FileType.Table,
      number: Number(m[1]),
    };
  }
  const mf = /^MANIFEST-(\d+)$/.exec(name);
  if (mf) return { type: FileType.Manifest, number: Number(mf[1]) };
  if (name === CURRENT_FILE) return { type: FileType.Current };
  if (name === LOCK_FILE) return { type: FileType.Lock };
  if (name.endsWith(TEMP_SUFFIX)) return { type: FileType.Temp };
  return undefined;
}

/**
 * The file number any numbered name carries, leftovers included
 * (`000009.sst.tmp`, `MANIFEST-000004`, `000012.log`): new files are created
 * exclusively, so on open the next number must lie above every number a
 * file in the directory already has, whether or not the file is live.
 */
export function numberInName(name: string): number | undefined {
  const m = /^(?:MANIFEST-)?(\d{6,})\./.exec(name + ".");
  return m ? Number(m[1]) : undefined;
}

/** What CURRENT holds when it names manifest file `manifest`. */
export function currentContents(manifest: string): string {
  return manifest + "\n";
}

/**
 * The manifest file named by CURRENT's contents, or undefined when they are
 * not exactly `MANIFEST-NNNNNN` (at least six digits) and a newline.
 */
export function parseCurrentContents(text: string): string | undefined {
  const m = /^MANIFEST-(\d{6,})\n$/.exec(text);
  return m ? `MANIFEST-${m[1]}` : undefined;
}
