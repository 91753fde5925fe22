/**
 * The one error class of the KV Connect handlers. KV Connect clients show a
 * 4xx body to the user and give up, and retry every 5xx (forever, for Deno's
 * client), so anything the client's own input caused must be a 4xx and only
 * temporary conditions may be a 5xx. Bodies are plain text.
 *
 * @module
 */

/** A KV Connect error answer: HTTP status plus a plain-text reason. */
export class KvConnectError extends Error {
  readonly status: number;
  readonly headers: Record<string, string> | undefined;
  constructor(
    status: number,
    message: string,
    headers?: Record<string, string>,
  ) {
    super(message);
    this.name = "KvConnectError";
    this.status = status;
    this.headers = headers;
  }
}

/** Shorthand for a 400. */
export function badRequest(message: string): KvConnectError {
  return new KvConnectError(400, message);
}
