/**
 * The server's log lines on their way to stdout: each line is written at
 * once, except access-log lines, which are gathered and written together
 * at the end of the event-loop turn (or once 64 KiB are waiting).
 *
 * Why: with `--access-log` every request wrote its own line, a write
 * syscall each; under load a turn answers many requests, and one write for
 * all their lines costs the server a fraction of that. Order is kept: a
 * line written at once first writes the lines gathered before it. What a
 * crash (kill -9) can lose is the access lines of the turn it hits.
 *
 * @module
 */
import { setImmediate } from "node:timers";

/** Bytes of gathered lines that are written without waiting for the turn's end. */
const GATHER_BYTES = 64 * 1024;

/** Lines to one output; see the module comment. */
export class LineWriter {
  readonly #write: (text: string) => void;
  #pending = "";
  #scheduled = false;

  /** `write` takes one or more whole lines, newlines included. */
  constructor(write: (text: string) => void) {
    this.#write = write;
  }

  /** Writes `line` now, after any lines gathered before it. */
  line(line: string): void {
    this.flush();
    this.#write(line + "\n");
  }

  /** Gathers `line`, to be written at the end of this event-loop turn. */
  deferred(line: string): void {
    this.#pending += line + "\n";
    if (this.#pending.length >= GATHER_BYTES) this.flush();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flushSoon);
    }
  }

  /** Writes the gathered lines now. */
  flush(): void {
    if (this.#pending === "") return;
    const text = this.#pending;
    this.#pending = "";
    this.#write(text);
  }

  #flushSoon = (): void => {
    this.#scheduled = false;
    this.flush();
  };
}
