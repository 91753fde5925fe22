/**
 * The one error class of the KV Connect handlers. KV Connect clients show a
 * 4xx body to the user and give up, and retry every 5xx (forever, for Deno's
 * client), so anything the client's own input caused must be a 4xx and only
 * temporary conditions may be a 5xx. Bodies are plain text, rendered by the
 * server's one error funnel (`server/errors.ts`).
 *
 * @module
 */
import { HttpError } from "../_codec.ts";

/** The snake_case code of each status KV Connect answers with (for logs and metrics). */
const CODE_OF_STATUS: Record<number, string> = {
  400: "bad_request",
  401: "unauthorized",
  404: "unknown_route",
  405: "method_not_allowed",
  413: "payload_too_large",
  503: "unavailable",
};

/** A KV Connect error answer: HTTP status plus a plain-text reason. */
export class KvConnectError extends HttpError {
  constructor(
    status: number,
    message: string,
    headers?: Record<string, string>,
  ) {
    super(status, CODE_OF_STATUS[status] ?? "error", message, headers);
    this.name = "KvConnectError";
  }
}

/** Shorthand for a 400. */
export function badRequest(message: string): KvConnectError {
  return new KvConnectError(400, message);
}
