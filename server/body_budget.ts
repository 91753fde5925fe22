/**
 * One server-wide budget for the bytes of request bodies being read and
 * worked on at once. Without it, a handful of concurrent maximum-size bodies
 * (each costing several times its size once decoded and parsed) take the
 * process past its memory and stall `/health`. A request takes bytes from the
 * budget as its body arrives ({@link BodyLease.take}) and gives them back
 * when its response is ready ({@link BodyLease.release}); a request that does
 * not fit waits in line up to `waitMs`, then is refused with 503
 * `overloaded` and `Retry-After`.
 *
 * A request alone always proceeds, so a body limit above the budget still
 * works, one at a time.
 *
 * @module
 */
import { HttpError } from "./_codec.ts";

interface Waiter {
  n: number;
  /** Bytes the waiting request already holds. */
  held: number;
  resolve: () => void;
  reject: (err: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** The shared budget; see the module doc. */
export class BodyBudget {
  readonly maxBytes: number;
  readonly waitMs: number;
  #used = 0;
  #waiters: Waiter[] = [];

  constructor(maxBytes: number, waitMs = 1000) {
    this.maxBytes = maxBytes;
    this.waitMs = waitMs;
  }

  /** Bytes currently held by requests. */
  get used(): number {
    return this.#used;
  }

  /** Requests waiting for room. */
  get waiting(): number {
    return this.#waiters.length;
  }

  /** A per-request handle; release it once the request is done. */
  lease(): BodyLease {
    return new BodyLease(this);
  }

  /**
   * @internal Takes `n` bytes, waiting for room; see {@link BodyLease.take}.
   * Undefined when they were taken at once (no promise on the fast path).
   */
  acquire(n: number, held: number): Promise<void> | undefined {
    // Someone waiting is served first, so a stream of small bodies cannot
    // starve a large one.
    if (
      this.#waiters.length === 0 &&
      (this.#used + n <= this.maxBytes || this.#used === held)
    ) {
      this.#used += n;
      return undefined;
    }
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = {
        n,
        held,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters.splice(this.#waiters.indexOf(w), 1);
          reject(overloaded(this.waitMs));
          this.#wake();
        }, this.waitMs),
      };
      this.#waiters.push(w);
    });
  }

  /** @internal Gives `n` bytes back and lets waiters in. */
  giveBack(n: number): void {
    this.#used -= n;
    this.#wake();
  }

  #wake(): void {
    while (this.#waiters.length > 0) {
      const w = this.#waiters[0];
      if (this.#used + w.n > this.maxBytes && this.#used !== w.held) return;
      this.#waiters.shift();
      clearTimeout(w.timer);
      this.#used += w.n;
      w.resolve();
    }
  }
}

/** What {@link BodyLease.take} answers when the bytes were free. */
const TAKEN: Promise<void> = Promise.resolve();

/** The bytes one request holds in a {@link BodyBudget}. */
export class BodyLease {
  readonly #budget: BodyBudget;
  #held = 0;

  constructor(budget: BodyBudget) {
    this.#budget = budget;
  }

  /**
   * Takes `n` more bytes, waiting for room; rejects 503 `overloaded`. Not
   * async: with room (the usual case) the bytes are taken at once.
   */
  take(n: number): Promise<void> {
    if (n <= 0) return TAKEN;
    const wait = this.#budget.acquire(n, this.#held);
    if (wait === undefined) {
      this.#held += n;
      return TAKEN;
    }
    return wait.then(() => {
      this.#held += n;
    });
  }

  /** Gives every byte back; safe to call more than once. */
  release(): void {
    if (this.#held === 0) return;
    this.#budget.giveBack(this.#held);
    this.#held = 0;
  }
}

function overloaded(waitMs: number): HttpError {
  return new HttpError(
    503,
    "overloaded",
    `too many request bodies are being read at once; waited ${waitMs} ms (see --max-body-memory); retry later`,
    { "retry-after": "1" },
  );
}
