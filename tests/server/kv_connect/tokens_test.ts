/**
 * KV Connect's tokens (server/kv_connect/tokens.ts) on their own: the
 * data-path token is a stable HMAC of database name and expiry under the
 * access token, and each way a presented token can be wrong is a 401 with
 * the protocol's challenge.
 */
import assert from "node:assert/strict";
import {
  CHALLENGE,
  dataToken,
  requireDataToken,
  requireToken,
} from "../../../server/kv_connect/tokens.ts";
import { KvConnectError } from "../../../server/kv_connect/errors.ts";

const NOW = 1_800_000_000_000;
const LATER = NOW + 3_600_000;

function req(token?: string): Request {
  return new Request("http://127.0.0.1/deno-kv/db/snapshot_read", {
    method: "POST",
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
  });
}

/** Asserts a 401 KvConnectError with the challenge and a matching message. */
function unauthorized(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof KvConnectError, String(e));
    assert.equal(e.status, 401);
    assert.equal(e.code, "unauthorized");
    assert.deepEqual(e.headers, CHALLENGE);
    assert.match(e.message, re);
    return true;
  });
}

Deno.test("dataToken is <expiry>.<mac>, stable, and differs per database, expiry and access token", () => {
  const t = dataToken("secret", "db", LATER);
  assert.match(t, /^1800003600000\.[A-Za-z0-9_-]{43}$/);
  assert.equal(dataToken("secret", "db", LATER), t); // survives restarts
  const others = [
    dataToken("secret", "db2", LATER),
    dataToken("secret", "db", LATER + 1),
    dataToken("other", "db", LATER),
    dataToken(undefined, "db", LATER),
  ];
  for (const o of others) assert.notEqual(o, t);
  assert.equal(new Set(others).size, others.length);
  // The name and expiry are separated, so "a"+"b1" is not "ab"+"1".
  assert.notEqual(
    dataToken("s", "a", 11).split(".")[1],
    dataToken("s", "a1", 1).split(".")[1],
  );
});

Deno.test("requireDataToken accepts the database's own unexpired token", () => {
  const ctx = { authToken: "secret", clock: () => NOW };
  requireDataToken(req(dataToken("secret", "db", LATER)), ctx, "db");
  // Without an access token the token is still checked and still expires.
  const open = { clock: () => NOW };
  requireDataToken(req(dataToken(undefined, "db", LATER)), open, "db");
  unauthorized(
    () => requireDataToken(req(dataToken(undefined, "db", NOW)), open, "db"),
    /expired/,
  );
});

Deno.test("requireDataToken refuses missing, foreign, forged and expired tokens", () => {
  const ctx = { authToken: "secret", clock: () => NOW };
  unauthorized(
    () => requireDataToken(req(), ctx, "db"),
    /^missing data-path token \(Authorization: Bearer <token>\)$/,
  );
  unauthorized(
    () => requireDataToken(req(dataToken("secret", "other", LATER)), ctx, "db"),
    /^invalid data-path token$/,
  );
  unauthorized(
    () =>
      requireDataToken(req(dataToken("old-secret", "db", LATER)), ctx, "db"),
    /^invalid data-path token$/,
  );
  // Moving the expiry forward breaks the MAC.
  const mac = dataToken("secret", "db", LATER).split(".")[1];
  unauthorized(
    () => requireDataToken(req(`${LATER + 1}.${mac}`), ctx, "db"),
    /^invalid data-path token$/,
  );
  unauthorized(() => requireDataToken(req("no-dot"), ctx, "db"), /invalid/);
  // A genuine token past its expiry: valid MAC, refused as expired.
  unauthorized(
    () => requireDataToken(req(dataToken("secret", "db", NOW)), ctx, "db"),
    /^data-path token expired; repeat the metadata exchange$/,
  );
});

Deno.test("requireToken compares the bearer token with the expected one", () => {
  requireToken(
    req("a-long-access-token"),
    "a-long-access-token",
    "access token",
  );
  unauthorized(
    () => requireToken(req(), "a-long-access-token", "access token"),
    /^missing access token/,
  );
  unauthorized(
    () =>
      requireToken(
        req("a-long-access-tokeN"),
        "a-long-access-token",
        "access token",
      ),
    /^invalid access token$/,
  );
  // A scheme other than Bearer is no token at all.
  const basic = new Request("http://127.0.0.1/", {
    headers: { authorization: "Basic a-long-access-token" },
  });
  unauthorized(
    () => requireToken(basic, "a-long-access-token", "x"),
    /^missing x/,
  );
});
