/**
 * How a client command ends: the exit codes scripts rely on ({@link EXIT}),
 * their help line, and the two errors that carry one ({@link Usage} before
 * anything is sent, {@link Failure} after).
 *
 * @module
 */
import { ShaleClientError } from "../client.ts";

/** Exit codes of the client commands, for scripts. */
export const EXIT = {
  ok: 0,
  /** `get`: the key is absent (nothing is written to stdout). */
  notFound: 1,
  /** Bad flags or arguments; nothing was sent. */
  usage: 2,
  /** An `--if-version` / `--if-absent` (or batch check) condition failed. */
  preconditionFailed: 3,
  /** Any other error answer of the server, or output that cannot be shown. */
  serverError: 4,
  /** No answer: connection refused, DNS, TLS, timeout. */
  connection: 5,
} as const;

/** The exit-code table, shown in the help of every client command. */
export const EXIT_HELP: string[] = [
  "Exit codes: 0 ok, 1 not found (get), 2 usage error, 3 condition failed,",
  "            4 other server error, 5 no connection (refused, timeout)",
];

/** A wrong command line: exit 2 with the message. */
export class Usage extends Error {}

/** A failure after the request: exit `code` with the message. */
export class Failure extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

/** The exit code a client error stands for. */
export function exitOf(err: ShaleClientError): number {
  if (err.status === 0) {
    return err.code === "timeout" || err.code === "network_error"
      ? EXIT.connection
      : EXIT.usage; // checked on the client before sending (bad ttl, empty key)
  }
  return err.code === "precondition_failed"
    ? EXIT.preconditionFailed
    : EXIT.serverError;
}
