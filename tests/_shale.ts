/**
 * How the black-box tests start the `shale` command: on Deno
 * (`deno run server/main.ts`), on Bun (`bun server/main.ts`), or as the
 * single binary `dist/shale` built by `bun build --compile`. Process-level
 * tests loop over {@link SHALE_RUNTIMES} so each runtime passes the same
 * checks.
 *
 * Bun is found through `SHALE_BUN` (the Makefile exports the pinned one),
 * then `.tools/`, then PATH. Without it, the Bun and binary variants are
 * reported as ignored with the reason.
 *
 * @module
 */

/** The repository root (this file is tests/_shale.ts). */
export const REPO: string = new URL("../", import.meta.url).pathname;
/** server/main.ts, the `shale` command. */
export const MAIN: string = `${REPO}server/main.ts`;
/** The permissions `deno task start` gives the server, and no more. */
export const SERVER_PERMISSIONS: readonly string[] = [
  "--allow-read",
  "--allow-write",
  "--allow-net",
  "--allow-env",
  "--allow-ffi",
];

/** One way to run shale. */
export type ShaleRuntime = "deno" | "bun" | "binary";

/** Every way, in the order tests run them. */
export const SHALE_RUNTIMES: readonly ShaleRuntime[] = [
  "deno",
  "bun",
  "binary",
];

/** The program and leading arguments that run `shale` on `rt`. */
export interface ShaleCommand {
  command: string;
  args: string[];
}

function isExecutable(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

let bunFound: string | null | undefined;

/** The Bun executable, or undefined when there is none. */
export function bunPath(): string | undefined {
  if (bunFound !== undefined) return bunFound ?? undefined;
  bunFound = null;
  const candidates = [
    Deno.env.get("SHALE_BUN"),
    `${REPO}.tools/node_modules/.bin/bun`,
    ...(Deno.env.get("PATH") ?? "").split(":").map((d) => `${d}/bun`),
  ];
  for (const c of candidates) {
    if (c && isExecutable(c)) {
      bunFound = c;
      break;
    }
  }
  return bunFound ?? undefined;
}

/** Why `rt` cannot run here, or undefined when it can. */
export function unavailable(rt: ShaleRuntime): string | undefined {
  if (rt === "deno") return undefined;
  return bunPath() === undefined
    ? "Bun not found (run `make setup`, or set SHALE_BUN)"
    : undefined;
}

/** The built binary, `dist/shale`. */
export const BINARY: string = `${REPO}dist/shale`;

function newestSource(dir: string): number {
  let newest = 0;
  for (const e of Deno.readDirSync(dir)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) newest = Math.max(newest, newestSource(path));
    else if (e.name.endsWith(".ts")) {
      newest = Math.max(newest, Deno.statSync(path).mtime?.getTime() ?? 0);
    }
  }
  return newest;
}

let built: Promise<string> | undefined;

/**
 * Builds `dist/shale` the way `make build` does, unless it is newer than
 * every source file it is built from. Once per test process.
 */
export function ensureBinary(): Promise<string> {
  built ??= (async () => {
    const sources = Math.max(
      newestSource(`${REPO}engine`),
      newestSource(`${REPO}server`),
      Deno.statSync(`${REPO}mod.ts`).mtime?.getTime() ?? 0,
    );
    let binaryTime = 0;
    try {
      binaryTime = Deno.statSync(BINARY).mtime?.getTime() ?? 0;
    } catch {
      // not built yet
    }
    if (binaryTime > sources) return BINARY;
    const bun = bunPath();
    if (bun === undefined) throw new Error(unavailable("bun"));
    const out = await new Deno.Command(bun, {
      args: [...BUILD_ARGS, "--outfile", BINARY],
      cwd: REPO,
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(
        `bun build --compile failed:\n${new TextDecoder().decode(out.stderr)}`,
      );
    }
    return BINARY;
  })();
  return built;
}

/** `bun` arguments of `make build` (without `--outfile`). */
export const BUILD_ARGS: readonly string[] = [
  "build",
  "--compile",
  "--root",
  ".",
  "server/main.ts",
  "engine/worker.ts",
];

/** The command that runs `shale` on `rt` (builds the binary when needed). */
export async function shaleCommand(rt: ShaleRuntime): Promise<ShaleCommand> {
  switch (rt) {
    case "deno":
      return {
        command: Deno.execPath(),
        args: ["run", ...SERVER_PERMISSIONS, MAIN],
      };
    case "bun": {
      const bun = bunPath();
      if (bun === undefined) throw new Error(unavailable(rt));
      return { command: bun, args: [MAIN] };
    }
    case "binary":
      return { command: await ensureBinary(), args: [] };
  }
}
