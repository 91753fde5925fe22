/** server/auth.ts: bearer tokens for REST and KV Connect. */
import { equal, throws } from "node:assert/strict";
import { HttpError } from "../../server/_codec.ts";
import { BearerAuth, bearerToken, matchesDigest } from "../../server/auth.ts";
import { sha256 } from "../../server/token_digest.ts";
import { Scope } from "../../server/scope.ts";

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

Deno.test("BearerAuth: the admin token has no scope, a scoped token its own", () => {
  const scope = new Scope(new TextEncoder().encode("app/"), false);
  const auth = new BearerAuth("0123456789abcdef", [
    { token: "scoped-0123456789", scope },
  ]);
  equal(auth.check(req("Bearer 0123456789abcdef")), undefined);
  equal(auth.check(req("Bearer scoped-0123456789")), scope);
  equal(auth.scopedCount, 1);
  throws(() => auth.check(req("Bearer scoped-012345678")), /invalid token/);
  auth.setScoped([]);
  throws(() => auth.check(req("Bearer scoped-0123456789")), /invalid token/);
  // Without an admin token, scoped tokens would guard nothing.
  throws(
    () => new BearerAuth(undefined, [{ token: "scoped-0123456789", scope }]),
    /need an admin token/,
  );
});
