/**
 * Backpressure's rules as pure functions: when a write must wait (too many
 * frozen memtables, or L0 at its stop trigger) and when it is slowed
 * (L0 at its slowdown trigger), with the reason reported in stats and
 * health. The scheduler applies them; LevelDB's `MakeRoomForWrite` makes
 * the same three decisions.
 *
 * @module
 */

/** The limits backpressure works with. */
export interface WriteLimits {
  maxImmutableMemtables: number;
  l0SlowdownTrigger: number;
  l0StopTrigger: number;
}

/** Whether a write must wait: too many frozen memtables, or L0 at its stop trigger. */
export function mustStall(imm: number, l0: number, o: WriteLimits): boolean {
  return imm >= o.maxImmutableMemtables || l0 >= o.l0StopTrigger;
}

/**
 * What backpressure does to a write arriving with `imm` frozen memtables and
 * `l0` tables in L0, and why: the stall and slowdown counters only say it
 * happened before.
 */
export function writePressure(
  imm: number,
  l0: number,
  o: WriteLimits,
): { state: "ok" | "slowdown" | "stall"; reason: string | null } {
  if (imm >= o.maxImmutableMemtables) {
    return {
      state: "stall",
      reason:
        `${imm} frozen memtables wait for a flush (limit ${o.maxImmutableMemtables})`,
    };
  }
  if (l0 >= o.l0StopTrigger) {
    return {
      state: "stall",
      reason: `L0 has ${l0} tables (writes wait at ${o.l0StopTrigger})`,
    };
  }
  if (l0 >= o.l0SlowdownTrigger) {
    return {
      state: "slowdown",
      reason:
        `L0 has ${l0} tables (writes slow down at ${o.l0SlowdownTrigger})`,
    };
  }
  return { state: "ok", reason: null };
}
