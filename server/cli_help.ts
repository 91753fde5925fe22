/**
 * Help text of `shale` and of its server-side commands, built from the flag
 * tables in `cli_flags.ts` and the client commands' table.
 *
 * @module
 */
import { COMMANDS, envName } from "./cli_flags.ts";
import { CLIENT_COMMANDS } from "./client_cli_help.ts";
import { EXIT_HELP } from "./client_cli_exit.ts";

/** shale's release version, printed by `shale --version`. */
export const VERSION = "0.1.0";

/** Limits of `shale serve` without a flag, for its help (docs/HTTP.md has all). */
const FIXED_LIMITS = [
  "Fixed limits (docs/HTTP.md, 'Limits and timeouts', lists every limit):",
  "  /kv/batch: 10000 ops; JSON nested at most 32 levels (400 json_too_deep)",
  "  a body over --max-body-memory waits up to 1 s, then 503 overloaded",
  "  range cursors: released 60 s after last use; 1000 in all, 100 per client",
  "  KV Connect: values 64 KiB, keys 2048 B, 100 checks and 1000 mutations",
  "    per atomic write, 8 MiB per read answer, 10 keys per watch, 64 watches",
  "    per client and 1024 per server, data tokens valid 1 h",
  "Connections: every connection flag above is enforced on Deno and on Bun",
  "  (the dist/shale binary too) unless --bun-listener fast is given",
  "  (docs/HTTP.md, 'Connections')",
];

/** Top-level help: commands and global flags. */
export function mainHelp(): string {
  const lines = [
    `shale ${VERSION}: an LSM key/value store served over HTTP`,
    "",
    "Usage:",
    "  shale <command> [flags]",
    "  shale --help | --version",
    "",
    "Commands:",
  ];
  for (const [name, c] of Object.entries(COMMANDS)) {
    lines.push(`  ${name.padEnd(8)} ${c.summary}`);
  }
  lines.push(
    "  migrate  copy every key between data directories and KV Connect URLs",
  );
  lines.push("", "Client commands (--url URL [--token TOKEN]):");
  for (const [name, summary] of Object.entries(CLIENT_COMMANDS)) {
    lines.push(`  ${name.padEnd(8)} ${summary}`);
  }
  lines.push("", ...EXIT_HELP);
  lines.push(
    "",
    "Run 'shale <command> --help' for the flags of a command. Every flag can",
    "also be set by an environment variable SHALE_<FLAG> (for example",
    "SHALE_DATA_DIR); flags win over the environment.",
  );
  return lines.join("\n");
}

/** Help of one command: every flag, its env var and default. */
export function commandHelp(command: string): string {
  const c = COMMANDS[command];
  const lines = [
    `shale ${command}: ${c.summary}`,
    "",
    "Usage:",
    `  shale ${command} [flags]`,
    "",
    "Flags:",
  ];
  for (const f of c.flags) {
    const left = `  --${f.name}${f.valueName ? ` ${f.valueName}` : ""}`;
    const dflt = f.default !== undefined ? ` (default ${f.default})` : "";
    lines.push(`${left.padEnd(30)} ${f.help}${dflt}`);
    lines.push(`${"".padEnd(30)} env ${envName(f.name)}`);
  }
  lines.push(`${"  -h, --help".padEnd(30)} show this help`);
  if (c.flags.some((f) => f.valueName === "SIZE")) {
    lines.push(
      "",
      "SIZE is a byte count with an optional suffix K, M or G (KiB, MiB, GiB).",
    );
  }
  if (command === "serve") lines.push("", ...FIXED_LIMITS);
  return lines.join("\n");
}
