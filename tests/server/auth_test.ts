/** server/auth.ts: bearer tokens for REST and KV Connect. */
import { equal, throws } from "node:assert/strict";
import { HttpError } from "../../server/_codec.ts";
import {
  BearerAuth,
  bearerToken,
  matchesDigest,
  sha256,
} from "../../server/auth.ts";

const req = (authorization?: string) =>
  new Request("http://127.0.0.1/", {
    headers: authorization === undefined ? {} : { authorization },
  });

Deno.test("bearerToken reads 'Bearer <token>' case-insensitively, nothing else", () => {
  equal(bearerToken(req("Bearer abc")), "abc");
  equal(bearerToken(req("bearer   abc ")), "abc");
  equal(bearerToken(req("Basic abc")), undefined);
  equal(bearerToken(req("Bearer a b")), undefined);
  equal(bearerToken(req()), undefined);
});

Deno.test("matchesDigest compares a token with a digest", () => {
  equal(matchesDigest("secret", sha256("secret")), true);
  equal(matchesDigest("secreT", sha256("secret")), false);
  equal(matchesDigest("", sha256("secret")), false);
});

Deno.test("BearerAuth passes everything without a token, 401 otherwise", () => {
  const open = new BearerAuth(undefined);
  equal(open.required, false);
  open.check(req());
  const auth = new BearerAuth("0123456789abcdef");
  equal(auth.required, true);
  auth.check(req("Bearer 0123456789abcdef"));
  for (
    const [h, msg] of [[undefined, /missing bearer token/], [
      "Bearer x",
      /invalid token/,
    ]] as const
  ) {
    throws(
      () => auth.check(req(h)),
      (e) =>
        e instanceof HttpError && e.status === 401 &&
        e.code === "unauthorized" && msg.test(e.message) &&
        e.headers?.["www-authenticate"] === 'Bearer realm="shale"',
    );
  }
});
