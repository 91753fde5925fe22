import { equal } from "node:assert/strict";
import { fmix32 } from "../../engine/hash.ts";

Deno.test("fmix32 matches MurmurHash3's finalizer (values from an independent implementation)", () => {
  // Computed with Python's unbounded integers, masked to 32 bits per step.
  equal(fmix32(0), 0);
  equal(fmix32(1), 1364076727);
  equal(fmix32(0xdeadbeef), 233162409);
  equal(fmix32(0xffffffff), 2180083513);
  equal(fmix32(-1), 2180083513); // a signed int32 input is the same bits
  equal(fmix32(123456789), 3126909082);
});
