/**
 * What the open change-feed streams of one spec (range and value options)
 * share: the events already encoded for them. Every commit wakes every
 * stream, and each would otherwise encode the same group the same way
 * (base64, JSON) again; with 50 same-spec streams under PUT load that was
 * about a fifth of the server's CPU (bench/watch_fanout.ts).
 *
 * @module
 */
import type { ChangeGroup } from "../../mod.ts";

/** What a stream sends of each group. */
export interface StreamSpec {
  start: Uint8Array | undefined;
  end: Uint8Array | undefined;
  values: boolean;
  valueLimit: number;
}

/** Bytes of encoded events one spec keeps for its streams (then emptied). */
const SHARED_EVENT_BYTES = 1 << 20;

/**
 * The open streams of one spec and the events already encoded for them.
 * Only recent groups are asked for (streams read near the head), so the map
 * is emptied when it passes {@link SHARED_EVENT_BYTES} rather than trimmed.
 */
export class SharedSpec {
  streams = 0;
  #events = new Map<number, string | null>();
  #bytes = 0;

  constructor(readonly key: string) {}

  /** The event of `g` for this spec: `encode(g)`, once if streams share it. */
  event(
    g: ChangeGroup,
    encode: (g: ChangeGroup) => string | undefined,
  ): string | undefined {
    if (this.streams < 2) return encode(g);
    const known = this.#events.get(g.version);
    if (known !== undefined) return known ?? undefined;
    const event = encode(g);
    if (this.#bytes > SHARED_EVENT_BYTES) {
      this.#events = new Map();
      this.#bytes = 0;
    }
    this.#events.set(g.version, event ?? null);
    this.#bytes += 16 + (event?.length ?? 0);
    return event;
  }
}

/** What makes two streams' events the same: range and value options. */
function specKey(spec: StreamSpec): string {
  return `${spec.values ? 1 : 0} ${spec.valueLimit} ${
    spec.start?.toHex() ?? "-"
  } ${spec.end?.toHex() ?? "-"}`;
}

/** The open streams' {@link SharedSpec}s, by spec. */
export class SharedSpecs {
  readonly #specs = new Map<string, SharedSpec>();

  /** The SharedSpec of a new stream of `spec`. */
  join(spec: StreamSpec): SharedSpec {
    const key = specKey(spec);
    let shared = this.#specs.get(key);
    if (shared === undefined) {
      this.#specs.set(key, shared = new SharedSpec(key));
    }
    shared.streams++;
    return shared;
  }

  /** A stream of `shared`'s spec ended. */
  leave(shared: SharedSpec): void {
    if (--shared.streams === 0) this.#specs.delete(shared.key);
  }
}
