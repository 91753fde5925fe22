/**
 * Graceful shutdown's bookkeeping: how many requests are in flight, and
 * the refusal of new ones once shutdown has begun.
 *
 * Why not just the listener's own shutdown: `Deno.serve`'s `shutdown()`
 * stops reading from the connections at once, so a request whose body is
 * still arriving fails with "Cannot read body as underlying resource
 * unavailable" (answered 400 `body_read_failed`). So `main.ts` first closes
 * the gate here, waits until every request already inside has answered (or
 * the deadline passes), and only then stops the listener and closes the
 * store.
 *
 * @module
 */
import type { ServeHandler } from "./runtime.ts";

/** The answer to a request that arrives after shutdown has begun. */
export function shuttingDownResponse(): Response {
  return Response.json(
    {
      error: {
        code: "shutting_down",
        message: "the server is shutting down; retry on another instance",
      },
    },
    // Connection: close, so a keep-alive client stops reusing this socket.
    { status: 503, headers: { connection: "close", "retry-after": "1" } },
  );
}

/** Counts the requests in flight and refuses new ones once closed. */
export class Drain {
  #inFlight = 0;
  #closed = false;
  #idle: PromiseWithResolvers<void> | undefined;

  /** Requests whose handler has not answered yet. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** True once {@link close} has been called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * `handler`, counted. Once closed, requests for which `passes(req)` is not
   * true get {@link shuttingDownResponse} without reaching `handler`.
   */
  wrap(
    handler: ServeHandler,
    passes: (req: Request) => boolean = () => false,
  ): ServeHandler {
    // Not async: a synchronous answer passes through without a promise.
    return (req, info) => {
      if (this.#closed && !passes(req)) return shuttingDownResponse();
      this.#inFlight++;
      let out: Response | Promise<Response>;
      try {
        out = handler(req, info);
      } catch (err) {
        this.#leave();
        return Promise.reject(err);
      }
      if (out instanceof Promise) {
        return out.then((res) => {
          this.#leave();
          return res;
        }, (err) => {
          this.#leave();
          throw err;
        });
      }
      this.#leave();
      return out;
    };
  }

  #leave(): void {
    this.#inFlight--;
    if (this.#inFlight === 0) {
      this.#idle?.resolve();
      this.#idle = undefined;
    }
  }

  /** Stops letting new requests in. */
  close(): void {
    this.#closed = true;
  }

  /**
   * Resolves true once no request is in flight, or false when `timeoutMs`
   * passes first.
   */
  idle(timeoutMs: number): Promise<boolean> {
    if (this.#inFlight === 0) return Promise.resolve(true);
    this.#idle ??= Promise.withResolvers<void>();
    return within(this.#idle.promise, timeoutMs);
  }
}

/** Resolves true when `p` settles within `ms`, false when the time runs out. */
export async function within(
  p: Promise<unknown>,
  ms: number,
): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p.then(() => true, () => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), Math.max(0, ms));
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
