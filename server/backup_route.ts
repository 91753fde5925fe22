/**
 * `GET /admin/backup`: streams a consistent tar archive of the store (see
 * engine/backup.ts) while the server keeps serving. The archive is produced
 * as the client reads it (ReadableStream pull), so a slow client slows the
 * copy rather than growing server memory. The tables stay pinned until the
 * stream ends or the client goes away.
 *
 * @module
 */
import type { Db } from "../mod.ts";
import { startBackup } from "../engine/backup.ts";
import { parseQuery } from "./_codec.ts";

/** Header carrying the version (seqno) the archive holds exactly. */
export const BACKUP_VERSION_HEADER = "shale-backup-version";

/** Answers `GET /admin/backup` (auth already checked by the caller). */
export function backupResponse(db: Db, query: string): Response {
  parseQuery(query, []);
  const backup = startBackup(db);
  return new Response(backup.stream(), {
    status: 200,
    headers: {
      "content-type": "application/x-tar",
      "content-disposition":
        `attachment; filename="shale-backup-${backup.version}.tar"`,
      "cache-control": "no-store",
      [BACKUP_VERSION_HEADER]: String(backup.version),
    },
  });
}
