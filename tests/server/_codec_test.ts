/**
 * The HTTP layer's error class (server/_codec.ts): an HttpError is an Error
 * to every caller, built without the Error constructor (no stack trace).
 */
import { equal, ok } from "node:assert/strict";
import { HttpError } from "../../server/_codec.ts";

Deno.test("an HttpError is an Error with a message and no stack trace", async () => {
  const err = new HttpError(404, "unknown_route", "no route for /x", {
    "x-a": "1",
  });
  ok(err instanceof HttpError);
  ok(err instanceof Error);
  equal(err.message, "no route for /x");
  equal(err.status, 404);
  equal(err.code, "unknown_route");
  equal(err.headers?.["x-a"], "1");
  equal(err.stack, undefined);
  equal(String(err), "Error: no route for /x");
  // Thrown through async layers, it arrives as itself.
  const thrown = async () => {
    await null;
    throw new HttpError(401, "unauthorized", "missing token");
  };
  const caught = await thrown().catch((e) => e);
  ok(caught instanceof HttpError);
  equal(caught.status, 401);
});
