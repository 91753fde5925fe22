/**
 * Error text for logs and error bodies: one place that turns a thrown
 * value into a message.
 *
 * @module
 */

/** The message of a thrown value (anything may be thrown, not only Errors). */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The message and those of its causes, joined by ": " (at most four deep):
 * fetch's own error says only "fetch failed", its cause says why.
 */
export function errorChain(err: unknown): string {
  const parts: string[] = [];
  for (let e = err, depth = 0; e !== undefined && depth < 4; depth++) {
    parts.push(errorText(e));
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join(": ");
}
