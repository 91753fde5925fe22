/**
 * `shale backup` (download `GET /admin/backup` to a file, checked before it
 * is kept) and `shale restore` (check an archive and unpack it into a new
 * data directory). Both exit 0 on success and 1 on any failure, with one
 * line on stderr saying why; flags are parsed in `_cli.ts`.
 *
 * @module
 */
import { lstatSync, renameSync, rmSync, statSync } from "node:fs";
import { open as openFile } from "node:fs/promises";
import { checkBackup, restoreBackup } from "../engine/restore.ts";
import type { BackupConfig, RestoreConfig } from "./_cli.ts";
import { BACKUP_VERSION_HEADER } from "./backup_route.ts";
import { errorText } from "./error_text.ts";

/**
 * Downloads a backup to `cfg.out`. The archive goes to `OUT.partial` first
 * and is checked completely (every checksum, the end marker) before it is
 * renamed to `OUT`, so `OUT` only ever names a whole, sound backup.
 */
export async function runBackup(cfg: BackupConfig): Promise<number> {
  const partial = `${cfg.out}.partial`;
  if (exists(cfg.out)) {
    return fail(`backup: ${cfg.out} exists; choose a new file name`);
  }
  let res: Response;
  try {
    res = await fetch(new URL("/admin/backup", cfg.url), {
      headers: cfg.token === undefined
        ? {}
        : { authorization: `Bearer ${cfg.token}` },
    });
  } catch (err) {
    return fail(`backup: cannot reach ${cfg.url}: ${errorText(err)}`);
  }
  if (res.status !== 200 || res.body === null) {
    const body = await res.text().catch(() => "");
    let why = body.slice(0, 500);
    try {
      why = JSON.parse(body).error.message ?? why;
    } catch {
      // not shale's JSON error body: show it as it came
    }
    return fail(`backup: the server answered ${res.status}: ${why}`);
  }
  const header = res.headers.get(BACKUP_VERSION_HEADER);
  let kept = false;
  try {
    // node:fs, not Deno's API: the same command runs on Bun.
    const file = await openFile(partial, "wx", 0o600);
    try {
      for await (const chunk of res.body) {
        let off = 0;
        while (off < chunk.length) {
          off +=
            (await file.write(chunk, off, chunk.length - off)).bytesWritten;
        }
      }
      await file.datasync();
    } finally {
      await file.close();
    }
    const summary = await checkBackup(
      await fileStream(partial),
      { name: partial },
    );
    if (header !== null && header !== String(summary.version)) {
      return fail(
        `backup: the archive holds version ${summary.version} but the server announced ${header}`,
      );
    }
    renameSync(partial, cfg.out);
    kept = true;
    const bytes = statSync(cfg.out).size;
    console.log(
      `backup ok: version ${summary.version}, ${summary.files.length} files, ${bytes} bytes in ${cfg.out}`,
    );
    return 0;
  } catch (err) {
    return fail(`backup failed: ${errorText(err)}`);
  } finally {
    if (!kept) {
      try {
        rmSync(partial);
      } catch {
        // never created
      }
    }
  }
}

/** Restores `cfg.from` into `cfg.dataDir` (see engine/restore.ts). */
export async function runRestore(cfg: RestoreConfig): Promise<number> {
  let source: ReadableStream<Uint8Array>;
  try {
    source = await fileStream(cfg.from);
  } catch (err) {
    return fail(`restore: cannot open ${cfg.from}: ${errorText(err)}`);
  }
  try {
    const summary = await restoreBackup(source, cfg.dataDir, {
      name: cfg.from,
    });
    console.log(
      `restore ok: version ${summary.version}, ${summary.files.length} files into ${cfg.dataDir}`,
    );
    return 0;
  } catch (err) {
    return fail(`restore failed: ${errorText(err)}`);
  }
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** A file as a stream of 64 KiB chunks, read as the consumer pulls. */
async function fileStream(path: string): Promise<ReadableStream<Uint8Array>> {
  const file = await openFile(path, "r");
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const buf = new Uint8Array(64 * 1024);
      const { bytesRead } = await file.read(buf, 0, buf.length, null);
      if (bytesRead > 0) controller.enqueue(buf.subarray(0, bytesRead));
      else {
        await file.close();
        controller.close();
      }
    },
    async cancel() {
      await file.close();
    },
  });
}

function fail(text: string): number {
  console.error(`shale: ${text}`);
  return 1;
}
