/**
 * A minimal Server-Sent Events reader for the change feed tests, following
 * the HTML spec's parsing rules that matter here: blank line dispatches,
 * `:` starts a comment, `id:` sets the last event id even on an event with
 * no data.
 *
 * @module
 */

/** One dispatched event. */
export interface SseEvent {
  id: string | undefined;
  event: string;
  data: string;
}

/** Reads events from a `text/event-stream` response body. */
export class SseReader {
  /** The last event id seen, as EventSource would send it on reconnect. */
  lastId: string | undefined;
  /** Comment lines seen (heartbeats). */
  comments = 0;
  readonly #reader: ReadableStreamDefaultReader<string>;
  #buf = "";
  #done = false;
  /** A read still pending from a call that timed out; the next call takes it. */
  #pending: Promise<ReadableStreamReadResult<string>> | undefined;

  constructor(res: Response) {
    this.#reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  }

  /** The next event with data, or undefined when the stream ended. */
  async next(timeoutMs = 10_000): Promise<SseEvent | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const cut = this.#buf.indexOf("\n\n");
      if (cut >= 0) {
        const block = this.#buf.slice(0, cut);
        this.#buf = this.#buf.slice(cut + 2);
        const ev = this.#parse(block);
        if (ev !== undefined) return ev;
        continue;
      }
      if (this.#done) return undefined;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("timed out waiting for an SSE event");
      let timer: ReturnType<typeof setTimeout> | undefined;
      this.#pending ??= this.#reader.read();
      const r = await Promise.race([
        this.#pending,
        new Promise<"timeout">((resolve) => {
          timer = setTimeout(() => resolve("timeout"), left);
        }),
      ]);
      clearTimeout(timer);
      if (r === "timeout") continue;
      this.#pending = undefined;
      if (r.done) this.#done = true;
      else this.#buf += r.value;
    }
  }

  /** Drops the connection, as a killed consumer would. */
  async cancel(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
  }

  #parse(block: string): SseEvent | undefined {
    let event = "message";
    const data: string[] = [];
    let id: string | undefined;
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) {
        this.comments++;
        continue;
      }
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "id") id = value;
      else if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
    if (id !== undefined) this.lastId = id;
    if (data.length === 0) return undefined;
    return { id, event, data: data.join("\n") };
  }
}

/** A `change` event's payload. */
export interface ChangePayload {
  version: number;
  changes: {
    key: string;
    type: "put" | "delete";
    value?: string;
    value_size?: number;
    expires_at?: number;
  }[];
}
