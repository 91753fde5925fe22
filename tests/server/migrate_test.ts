/**
 * `shale migrate` (server/migrate.ts, migrate_cli.ts): a store with binary
 * keys and TTLs goes from a data directory to a KV Connect backend (a shale
 * process with a token) and back into another data directory; an
 * interrupted copy resumes from its state file (through the command line),
 * both sides' checksums match, and the destination is compared key by key.
 *
 * `make test` copies 3000 keys; `make migrate-large` copies
 * SHALE_MIGRATE_KEYS (default 200000).
 */
import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import { open } from "../../mod.ts";
import { migrate } from "../../server/migrate.ts";
import { EngineStore } from "../../server/store/engine_store.ts";
import { KvConnectStore } from "../../server/store/kv_connect_store.ts";
import { envInt } from "../fault/_harness.ts";
import { testSeed, withSeed } from "../_helpers.ts";
import { MAIN, stopServer } from "../_shale.ts";
import { BACKEND_TOKEN, startBackend } from "./_gateway.ts";
import {
  dataPrefix,
  kvConnectSpace,
} from "../../server/kv_connect/keyspace.ts";
import { decodeKey } from "../../server/store/kv_connect_keys.ts";

const KEYS = envInt("SHALE_MIGRATE_KEYS", 3000);

Deno.test(`migrate: ${KEYS} binary keys with TTLs to a KV Connect backend and back, resumed after an interruption`, async () => {
  const root = await Deno.makeTempDir({ prefix: "shale-migrate-" });
  const srcDir = `${root}/src`;
  const dstDir = `${root}/dst`;
  const stateFile = `${root}/state.json`;
  const backend = await startBackend();
  try {
    // The source: random binary keys (0x00 and 0xFF common), some with TTLs.
    const src = await open(srcDir, { sync: "none" });
    const written = new Map<string, Uint8Array>();
    /** Expiry (ms since epoch) by key in hex, for the keys with a TTL. */
    const expiries = new Map<string, number>();
    await withSeed(testSeed(1702), async (rng) => {
      let batch = [];
      for (let i = 0; written.size < KEYS; i++) {
        const key = rng.bytes(1 + rng.int(24));
        for (let j = 0; j < key.length; j++) {
          if (rng.chance(0.2)) key[j] = rng.chance(0.5) ? 0 : 0xff;
        }
        const hex = key.toHex();
        if (written.has(hex)) continue;
        const value = rng.bytes(rng.int(300));
        written.set(hex, value);
        // Expiries an hour or more away: none lapses during the test.
        const expiresAt = rng.chance(0.3)
          ? Date.now() + 3_600_000 + rng.int(1_000_000)
          : undefined;
        if (expiresAt !== undefined) expiries.set(hex, expiresAt);
        batch.push({ type: "put" as const, key, value, expiresAt });
        if (batch.length === 500) {
          await src.batch(batch);
          batch = [];
        }
      }
      if (batch.length > 0) await src.batch(batch);
    });
    ok(expiries.size > 0, "no TTL drawn");
    await src.close();

    // First run, in process: interrupted after its first page.
    const srcDb = await open(srcDir, { sync: "none" });
    const remote = new KvConnectStore({
      url: backend.url,
      token: BACKEND_TOKEN,
    });
    await rejects(
      migrate(new EngineStore(srcDb), remote, {
        stateFile,
        label: { from: srcDir, to: backend.url },
        pageKeys: 500,
        onProgress: () => {
          throw new Error("interrupted");
        },
      }),
      /interrupted/,
    );
    await srcDb.close();
    const state = JSON.parse(await Deno.readTextFile(stateFile));
    equal(state.copied, 500);

    // Second run: `shale migrate` resumes from the state file.
    const cli = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        MAIN,
        "migrate",
        "--from",
        srcDir,
        "--to",
        backend.url,
        "--state",
        stateFile,
        "--page-keys",
        "500",
      ],
      env: { SHALE_TO_TOKEN: BACKEND_TOKEN },
    }).output();
    const stderr = new TextDecoder().decode(cli.stderr);
    equal(cli.code, 0, stderr);
    ok(stderr.includes("(resumed)"), stderr);
    const report = JSON.parse(new TextDecoder().decode(cli.stdout));
    equal(report.resumed, true);
    equal(report.match, true);
    equal(report.copied, KEYS);
    equal(report.source.keys, KEYS);
    deepEqual(report.destination, report.source);
    ok(!(await exists(stateFile)), "state file kept after success");

    // Back into a new data directory, compared key by key.
    const dst = await open(dstDir, { sync: "none" });
    try {
      const back = await migrate(remote, new EngineStore(dst), {
        label: { from: backend.url, to: dstDir },
      });
      equal(back.match, true);
      equal(back.copied, KEYS);
      equal(back.withoutExpiry, KEYS);
      equal(back.destination.sha256, report.source.sha256);
      let n = 0;
      for (const item of dst.scan()) {
        deepEqual(item.value, written.get(item.key.toHex()), item.key.toHex());
        n++;
      }
      equal(n, KEYS);
    } finally {
      await dst.close();
    }

    // The TTLs became the backend's expiry: read its data directory.
    await stopServer(backend.server);
    const backendDb = await open(backend.dir);
    try {
      const prefix = dataPrefix("rest");
      let seen = 0;
      for (const item of kvConnectSpace(backendDb).scan({ prefix })) {
        const key = decodeKey(item.key.subarray(prefix.length))!;
        equal(item.expiresAt, expiries.get(key.toHex()) ?? 0);
        seen++;
      }
      equal(seen, KEYS);
    } finally {
      await backendDb.close();
    }
  } finally {
    await stopServer(backend.server);
    await Deno.remove(backend.dir, { recursive: true });
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("migrate: usage errors exit 2 with the reason", async () => {
  for (
    const [args, want] of [
      [[], "needs --from and --to"],
      [["--from", "a", "--to", "a"], "same store"],
      [["--from", "a", "--to", "b", "--page-keys", "0"], "--page-keys"],
    ] as const
  ) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", MAIN, "migrate", ...args],
    }).output();
    equal(out.code, 2);
    ok(new TextDecoder().decode(out.stderr).includes(want));
  }
});

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
