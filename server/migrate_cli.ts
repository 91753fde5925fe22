/**
 * `shale migrate --from SRC --to DST`: the command line of `migrate.ts`.
 * Each side is a local data directory (opened by this process, so no
 * server may hold it) or a KV Connect URL (`http://host/deno-kv/NAME`, a
 * Deno Deploy KV URL). Progress goes to stderr, the final report (counts
 * and both sides' checksums) to stdout as one JSON line. Exit 0 when both
 * sides match, 1 when they do not or the copy failed, 2 for usage errors.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { rm } from "node:fs/promises";
import { parseArgs } from "node:util";
import { open } from "../mod.ts";
import { migrate, type MigrateReport } from "./migrate.ts";
import { runtime } from "./runtime.ts";
import { EngineStore } from "./store/engine_store.ts";
import { KvConnectStore } from "./store/kv_connect_store.ts";
import type { Store } from "./store/store.ts";
import { errorText } from "./error_text.ts";

/** `shale migrate --help`. */
export const MIGRATE_HELP =
  `shale migrate: copy every live key (value and expiry) between stores

Usage:
  shale migrate --from SRC --to DST [flags]

SRC and DST are each a local data directory or a KV Connect URL
(http://host:port/deno-kv/NAME of a shale server, denokv, Deno Deploy KV).
A data directory must not be open in a running server.

Flags:
  --from SRC            where to copy from
  --to DST              where to copy to
  --from-token TOKEN    access token of a KV Connect SRC (else SHALE_FROM_TOKEN)
  --to-token TOKEN      access token of a KV Connect DST (else SHALE_TO_TOKEN)
  --state FILE          progress file for resuming
                        (default ./shale-migrate-<hash of SRC and DST>.json;
                        removed after a complete, matching copy)
  --page-keys N         keys read per page (default 1000)

The copy is paged and resumable: run the same command again after an
interruption and it continues after the last page written. At the end both
sides are read again: their key counts and SHA-256 checksums are printed as
JSON, and the exit status is 0 only when they match. Keys copied from a KV
Connect source arrive without expiry (the protocol does not report it).`;

interface Side {
  store: Store;
  close(): Promise<void>;
}

async function openSide(
  spec: string,
  token: string | undefined,
): Promise<Side> {
  if (/^https?:\/\//i.test(spec)) {
    const store = new KvConnectStore({ url: spec, token });
    return { store, close: () => Promise.resolve() };
  }
  const db = await open(spec);
  return { store: new EngineStore(db), close: () => db.close() };
}

/** Runs `shale migrate` with `args` (after the command name); resolves with the exit code. */
export async function runMigrate(
  args: string[],
  env: (name: string) => string | undefined,
): Promise<number> {
  let values;
  try {
    values = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        from: { type: "string" },
        to: { type: "string" },
        "from-token": { type: "string" },
        "to-token": { type: "string" },
        state: { type: "string" },
        "page-keys": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (err) {
    return usage(err instanceof Error ? err.message.split("\n")[0] : "");
  }
  if (values.help) {
    console.log(MIGRATE_HELP);
    return 0;
  }
  const from = values.from;
  const to = values.to;
  if (from === undefined || to === undefined) {
    return usage("migrate needs --from and --to");
  }
  if (from === to) return usage("--from and --to name the same store");
  const pageKeys = Number(values["page-keys"] ?? 1000);
  if (!Number.isInteger(pageKeys) || pageKeys < 1 || pageKeys > 10000) {
    return usage("--page-keys must be an integer from 1 to 10000");
  }
  const stateFile = values.state ??
    `shale-migrate-${
      createHash("sha256").update(`${from}\0${to}`).digest("hex").slice(0, 12)
    }.json`;
  const sides: Side[] = [];
  let report: MigrateReport;
  try {
    sides.push(
      await openSide(from, values["from-token"] ?? env("SHALE_FROM_TOKEN")),
    );
    sides.push(await openSide(to, values["to-token"] ?? env("SHALE_TO_TOKEN")));
    const started = performance.now();
    report = await migrate(sides[0].store, sides[1].store, {
      stateFile,
      label: { from, to },
      pageKeys,
      onProgress: (p) => {
        const s = ((performance.now() - started) / 1000).toFixed(1);
        runtime.writeStderr(
          `copied ${p.copied} keys, ${p.bytes} bytes in ${s} s${
            p.resumed ? " (resumed)" : ""
          }\n`,
        );
      },
    });
  } catch (err) {
    console.error(
      `shale migrate: ${errorText(err)}`,
    );
    console.error(`progress is kept in ${stateFile}; run again to resume`);
    return 1;
  } finally {
    for (const s of sides) await s.close();
  }
  console.log(JSON.stringify(report));
  if (!report.match) {
    console.error(
      "shale migrate: the two sides differ (the destination held other keys, or a side changed during the copy)",
    );
    return 1;
  }
  await rm(stateFile, { force: true });
  return 0;
}

function usage(message: string): number {
  console.error(
    `shale: ${message}\nRun 'shale migrate --help' for usage.`,
  );
  return 2;
}
