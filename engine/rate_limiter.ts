/**
 * A token bucket bounding how fast compaction writes (RocksDB's
 * GenericRateLimiter, reduced to the one caller a background worker has).
 *
 * Every `refillMs` the bucket gains `bytesPerSecond * refillMs / 1000`
 * tokens, and holds at most one period's worth, so an idle spell never
 * banks a burst. A writer asks for the bytes it is about to write; when
 * the bucket runs dry it waits for the next refill. A request larger than
 * one period's refill is served across several periods. Waiting is a timer,
 * so the worker's event loop turns between slices of a compaction.
 *
 * @module
 */
import { InvalidArgumentError } from "./errors.ts";

/** Default refill period, as RocksDB's (100 ms). */
export const DEFAULT_REFILL_MS = 100;

/** A byte-rate limiter; see the module documentation. */
export class RateLimiter {
  readonly bytesPerSecond: number;
  readonly refillMs: number;
  /** Bytes granted per refill period. */
  readonly #perRefill: number;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<void>;
  #tokens: number;
  #nextRefill: number;
  /** Milliseconds spent waiting for tokens, for stats. */
  waitedMs = 0;

  constructor(
    bytesPerSecond: number,
    opts: {
      refillMs?: number;
      now?: () => number;
      sleep?: (ms: number) => Promise<void>;
    } = {},
  ) {
    const refillMs = opts.refillMs ?? DEFAULT_REFILL_MS;
    if (!(bytesPerSecond > 0) || !Number.isFinite(bytesPerSecond)) {
      throw new InvalidArgumentError(
        `rate limit must be a positive number of bytes per second, got ${bytesPerSecond}`,
      );
    }
    if (!(refillMs > 0)) {
      throw new InvalidArgumentError(
        `refill period must be positive, got ${refillMs}`,
      );
    }
    this.bytesPerSecond = bytesPerSecond;
    this.refillMs = refillMs;
    this.#perRefill = Math.max(1, bytesPerSecond * refillMs / 1000);
    this.#now = opts.now ?? (() => performance.now());
    this.#sleep = opts.sleep ??
      ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.#tokens = this.#perRefill;
    this.#nextRefill = this.#now() + refillMs;
  }

  /** Resolves once `bytes` may be written. */
  async request(bytes: number): Promise<void> {
    let need = bytes;
    for (;;) {
      this.#refill();
      const take = Math.min(need, this.#tokens);
      this.#tokens -= take;
      need -= take;
      if (need <= 0) return;
      const wait = Math.max(0, this.#nextRefill - this.#now());
      const started = this.#now();
      await this.#sleep(wait);
      this.waitedMs += this.#now() - started;
    }
  }

  #refill(): void {
    const now = this.#now();
    if (now < this.#nextRefill) return;
    // One period's worth at most: time spent idle is not saved up.
    this.#tokens = this.#perRefill;
    const periods = Math.floor((now - this.#nextRefill) / this.refillMs) + 1;
    this.#nextRefill += periods * this.refillMs;
  }
}
