/**
 * The few engine needs that differ between runtimes (Deno, Bun), behind
 * one neutral function each. Everything else in the engine uses Web APIs
 * and `node:` built-ins, which both runtimes provide.
 *
 * @module
 */

/** True when running on Bun (its global `Bun` exists), else Deno. */
export const isBun: boolean = "Bun" in globalThis;

/**
 * Lets the process exit while `timer` is still pending (a background
 * ticker must not keep a finished program alive). Deno's timers are numbers
 * released with `Deno.unrefTimer`; Bun's are objects with `unref()`.
 */
export function unrefTimer(timer: ReturnType<typeof setTimeout>): void {
  if (typeof timer === "number") {
    Deno.unrefTimer(timer);
  } else {
    (timer as { unref?: () => void }).unref?.();
  }
}
