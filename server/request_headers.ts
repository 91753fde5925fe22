/**
 * Reads one request header without touching `req.headers`.
 *
 * Why: on Deno, the first `req.headers` of a served request marks its
 * headers "exposed". When the answer is sent, Deno then copies every header
 * of the request into the Headers object (so that it outlives the request)
 * and passes even a synchronous answer through two promise reactions before
 * writing it (`finishOrReturnMaybePromise` in Deno's `ext/http/00_serve.ts`).
 * For a served request, Deno's own `Headers.get(name)` is a call to the
 * internal request's `header(name)`, which asks the HTTP layer for that one
 * header; {@link requestHeader} makes the same call directly, so the answer
 * is the same (for repeated headers too) and nothing is exposed.
 *
 * On Bun the listener's requests read the header from the raw header list
 * (`node_request.ts`), for the same reason: no `Headers` is built. Everywhere
 * else (a `new Request(...)` in tests, a Deno whose request has no such
 * record) it is `req.headers.get(name)`.
 *
 * Call it only while the request is being handled, before its answer is
 * returned: the internal record is closed once the answer is sent.
 *
 * @module
 */
import { NodeRequest } from "./node_request.ts";

/** Deno's internal request record of a served request. */
interface InnerRequest {
  header?: unknown;
}

/**
 * The symbol under which Deno's Request keeps its internal record
 * (`Symbol("request")` in `ext/fetch/23_request.js`), looked up on the first
 * request; null when there is none (Bun).
 */
let innerKey: symbol | null | undefined;

function findInnerKey(req: Request): symbol | null {
  for (const s of Object.getOwnPropertySymbols(req)) {
    if (s.description === "request") return s;
  }
  return null;
}

/**
 * The value of header `name` (lower case) of `req`, or null; what
 * `req.headers.get(name)` answers.
 */
export function requestHeader(req: Request, name: string): string | null {
  if (req instanceof NodeRequest) return req.header(name);
  if (innerKey === undefined) innerKey = findInnerKey(req);
  if (innerKey !== null) {
    const inner = (req as unknown as Record<symbol, InnerRequest | undefined>)[
      innerKey
    ];
    const header = inner?.header;
    if (typeof header === "function") {
      return header.call(inner, name) as string | null;
    }
  }
  return req.headers.get(name);
}
