/** `scope.ts`: which keys and ranges a scoped token may touch, at the edges. */
import { equal, throws } from "node:assert/strict";
import {
  authorizeKey,
  authorizeRange,
  describePrefix,
  requireAdmin,
  Scope,
} from "../../server/scope.ts";
import { HttpError } from "../../server/_codec.ts";
import { compareBytes } from "../../mod.ts";
import { testSeed, withSeed } from "../_helpers.ts";

const u = (...bytes: number[]) => new Uint8Array(bytes);
const t = (s: string) => new TextEncoder().encode(s);

function allowed(fn: () => void): boolean {
  try {
    fn();
    return true;
  } catch (err) {
    if (err instanceof HttpError && err.status === 403) {
      equal(err.code, "forbidden");
      return false;
    }
    throw err;
  }
}

Deno.test("scope: no scope (admin, or no auth) allows everything", () => {
  authorizeKey(undefined, "write", t("x"));
  authorizeRange(undefined, "write", undefined, undefined);
  requireAdmin(undefined, "/admin/backup");
});

Deno.test("scope: keys must start with the prefix; a read token never writes", () => {
  const rw = new Scope(t("app/"), true);
  const ro = new Scope(t("app/"), false);
  for (const k of ["app/", "app/a", "app/\u00ff"]) {
    equal(allowed(() => authorizeKey(rw, "write", t(k))), true, k);
    equal(allowed(() => authorizeKey(ro, "read", t(k))), true, k);
    equal(allowed(() => authorizeKey(ro, "write", t(k))), false, k);
  }
  for (const k of ["app", "ap", "app0", "apo/", "b"]) {
    equal(allowed(() => authorizeKey(rw, "read", t(k))), false, k);
  }
  throws(() => requireAdmin(rw, "/stats"), /\/stats needs the admin token/);
});

Deno.test("scope: a range must lie inside [prefix, prefixEnd)", () => {
  const s = new Scope(t("app/"), true); // prefixEnd: "app0"
  const ok = (a?: string, b?: string) =>
    allowed(() =>
      authorizeRange(
        s,
        "read",
        a === undefined ? a : t(a),
        b === undefined ? b : t(b),
      )
    );
  equal(ok("app/", "app0"), true);
  equal(ok("app/x", "app/y"), true);
  equal(ok("app/", undefined), false);
  equal(ok(undefined, "app0"), false);
  equal(ok("app", "app0"), false);
  equal(ok("app/", "app0\u0000"), false);
  equal(ok(undefined, undefined), false);
});

Deno.test("scope: the empty prefix is every key; an all-0xff prefix has no end", () => {
  const all = new Scope(u(), false);
  equal(allowed(() => authorizeRange(all, "read", undefined, undefined)), true);
  equal(allowed(() => authorizeKey(all, "read", u(0))), true);
  equal(allowed(() => authorizeKey(all, "write", u(0))), false);
  const ff = new Scope(u(0xff, 0xff), true);
  equal(ff.end, undefined);
  equal(
    allowed(() => authorizeRange(ff, "read", u(0xff, 0xff), undefined)),
    true,
  );
  equal(
    allowed(() => authorizeRange(ff, "read", u(0xff, 0xfe), undefined)),
    false,
  );
  equal(allowed(() => authorizeKey(ff, "read", u(0xff, 0xff, 0))), true);
  equal(allowed(() => authorizeKey(ff, "read", u(0xff))), false);
});

Deno.test("scope: random ranges are allowed exactly when no key in them lacks the prefix", async () => {
  // Brute force over short keys. Prefixes use the bytes 0, 1 and 0xff; the
  // keys also use 2, so the first key past every prefix (its prefixEnd) is
  // among them and any range reaching past the prefix holds a witness key.
  // An unbounded side counts as escaping unless the prefix is empty (start)
  // or all 0xff (end): refusing there is the rule, not a gap.
  await withSeed(testSeed(14), (rng) => {
    const keys: Uint8Array[] = [];
    const grow = (k: number[], alphabet: number[], into: Uint8Array[]) => {
      if (k.length > 0) into.push(Uint8Array.from(k));
      if (k.length < 4) {
        for (const b of alphabet) grow([...k, b], alphabet, into);
      }
    };
    grow([], [0, 1, 2, 0xff], keys);
    const prefixes: Uint8Array[] = [new Uint8Array()];
    grow([], [0, 1, 0xff], prefixes);
    // Half the bounds near the prefix, so that many ranges lie inside it.
    const pick = (prefix: Uint8Array) => {
      if (rng.chance(0.15)) return undefined;
      const k = rng.pick(keys);
      if (rng.chance(0.5)) return k;
      const near = new Uint8Array([...prefix, ...k]).slice(0, 4);
      return near.length > 0 ? near : k;
    };
    const seen = { allowed: 0, refused: 0 };
    for (let n = 0; n < 3000; n++) {
      const prefix = rng.pick(prefixes).slice(0, 3);
      const s = new Scope(prefix, true);
      const start = pick(prefix);
      const end = pick(prefix);
      if (
        start !== undefined && end !== undefined &&
        compareBytes(start, end) >= 0
      ) {
        continue; // empty ranges hold no key to compare
      }
      const has = (k: Uint8Array) => prefix.every((b, i) => k[i] === b);
      const inRange = (k: Uint8Array) =>
        (start === undefined || compareBytes(k, start) >= 0) &&
        (end === undefined || compareBytes(k, end) < 0);
      const escapes = keys.some((k) => inRange(k) && !has(k)) ||
        (start === undefined && prefix.length > 0) ||
        (end === undefined && !prefix.every((b) => b === 0xff));
      const ok = allowed(() => authorizeRange(s, "read", start, end));
      equal(ok, !escapes, `prefix [${prefix}] range [${start}]..[${end}]`);
      seen[ok ? "allowed" : "refused"]++;
    }
    equal(seen.allowed > 200 && seen.refused > 200, true, JSON.stringify(seen));
  });
});

Deno.test("describePrefix: text when printable UTF-8, else base64", () => {
  equal(describePrefix(t("app/")), '"app/"');
  equal(describePrefix(u()), '""');
  equal(describePrefix(u(0, 1)), "base64:AAE=");
  equal(describePrefix(u(0xff)), "base64:/w==");
});
