/**
 * The client commands' names, summaries and `--help` text.
 *
 * @module
 */
import { EXIT_HELP } from "./client_cli_exit.ts";

/** The client commands, with one line each for `shale --help`. */
export const CLIENT_COMMANDS: Record<string, string> = {
  get: "print a key's value (raw bytes) to stdout",
  put: "write a key (value from an argument, --value-file or stdin)",
  del: "delete a key",
  scan: "list a range of keys, one line per entry",
  batch: "apply a JSON batch file (POST /kv/batch format) atomically",
  watch: "print every change in a range as it is committed, one JSON line each",
};

const USAGE: Record<string, string> = {
  get: "shale get KEY [--json] [--hex|--base64]",
  put: "shale put KEY VALUE [--ttl SECONDS] [--if-version V | --if-absent]",
  del: "shale del KEY [--if-version V]",
  scan:
    "shale scan [--prefix P | --start S --end E] [--limit N] [--reverse]\n" +
    "           [--keys-only] [--page-size N] [--format json|text] [--hex|--base64]",
  batch: "shale batch FILE|-",
  watch:
    "shale watch [--prefix P | --start S --end E] [--since V] [--hex|--base64]\n" +
    "           [--no-values]",
};

const COMMON = [
  "  --url URL           server base URL (env SHALE_URL)",
  "  --token TOKEN       bearer token (env SHALE_TOKEN, else SHALE_AUTH_TOKEN;",
  "                      prefer the env vars: flags show in ps)",
  "  --timeout MS        give up after MS milliseconds (exit 5)",
  "  --key-hex           KEY (and --prefix/--start/--end) are hex-encoded bytes",
  "  --key-file F        read the key's bytes from file F (instead of KEY)",
  "  -h, --help          show this help",
  "  --                  what follows is arguments, even if it starts with '-'",
];

const SPECIFIC: Record<string, string[]> = {
  get: [
    "  --json              print {key,value,version[,expires_at]} as one JSON line",
    "  --hex, --base64     encoding of key and value in --json (default UTF-8)",
  ],
  put: [
    "  --value-file F      read the value's bytes from file F (instead of VALUE)",
    "  --ttl SECONDS       expire the key after SECONDS",
    "  --if-version V      write only if the key is at version V",
    "  --if-absent         write only if the key does not exist",
    "  Prints the new version. KEY or VALUE '-' reads stdin (not both).",
  ],
  del: [
    "  --if-version V      delete only if the key is at version V",
    "  Deleting an absent key succeeds (exit 0).",
  ],
  scan: [
    "  --prefix P          keys starting with P",
    "  --start S, --end E  keys in [S, E)",
    "  --limit N           stop after N entries",
    "  --page-size N       entries per request (the scan pages with cursors)",
    "  --reverse           descending key order",
    "  --keys-only         leave values out",
    "  --format json|text  JSON line {key,value,version} (default), or key TAB value",
    "  --hex, --base64     encoding of keys and values (default UTF-8 text)",
  ],
  batch: [
    '  FILE holds {"ops":[{"op":"put","key":B64,"value":B64,"ttl":S,',
    '  "if_match":"V","if_none_match":"*"}, {"op":"delete",...},',
    '  {"op":"check",...}, {"op":"delete_range","start":B64,"end":B64}',
    '  or {"op":"delete_range","prefix":B64}]} as POST /kv/batch takes;',
    '  "-" reads stdin.',
    '  Prints {"applied":N,"version":"V"}.',
  ],
  watch: [
    "  --prefix P          keys starting with P (default: every key)",
    "  --start S, --end E  keys in [S, E)",
    "  --since V           start after version V (default: from now)",
    "  --no-values         print a put's value_size instead of its value",
    "  --hex, --base64     encoding of keys and values (default UTF-8 text)",
    '  Prints {"version":"V","type":"put","key":K,"value":V[,"expires_at":MS]}',
    '  or {"version":"V","type":"delete","key":K} per change, or',
    '  {"version":"V","type":"delete_range","start":S[,"end":E]} (a batch\'s changes',
    "  share one version), reconnecting by itself without losing or repeating",
    "  one, until Ctrl-C (exit 0) or the server stays unreachable (exit 5).",
  ],
};

/** `shale <cmd> --help` text of a client command. */
export function clientHelp(command: string): string {
  return [
    `shale ${command}: ${CLIENT_COMMANDS[command]}`,
    "",
    "Usage:",
    `  ${USAGE[command]} --url URL [--token TOKEN]`,
    "",
    "Flags:",
    ...SPECIFIC[command],
    // scan and watch have bounds, not a key; batch's keys are in its file;
    // watch runs until interrupted.
    ...COMMON.filter((l) =>
      !(command === "scan" && l.includes("--key-file")) &&
      !(command === "watch" && /--key-file|--timeout/.test(l)) &&
      !(command === "batch" && /--key-(file|hex)/.test(l))
    ),
    "",
    ...EXIT_HELP,
  ].join("\n");
}
