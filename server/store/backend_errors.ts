/**
 * The gateway's errors for a KV Connect backend's failures, as HTTP answers:
 * unreachable (503, retry later), misbehaving (502), or refusing a request
 * (its limits stay 4xx that name them).
 *
 * @module
 */
import { HttpError } from "../_codec.ts";

/** 503 `backend_unavailable`: the client may try again later. */
export function unavailable(message: string): HttpError {
  return new HttpError(503, "backend_unavailable", message, {
    "retry-after": "1",
  });
}

/** 502 `backend_error`: the backend answered something it should not have. */
export function badBackend(detail: string): HttpError {
  return new HttpError(502, "backend_error", `the backend ${detail}`);
}

/**
 * The backend's 4xx as the gateway's answer: its limits stay 4xx naming
 * the limit (413 value or request too large, 414 key too long, 400 a total
 * of one write); auth and missing databases are the gateway's setup (503).
 */
export function refused(
  status: number,
  what: string,
  reason: string,
): HttpError {
  let err: HttpError;
  if (status === 413) {
    err = new HttpError(413, "backend_limit", `backend limit: ${reason}`);
  } else if (status === 414) {
    err = new HttpError(414, "key_too_long", `backend limit: ${reason}`);
  } else if (status === 401 || status === 403 || status === 404) {
    err = unavailable(
      `the backend refused the ${what} (${status}: ${reason}); check --backend and --backend-token`,
    );
  } else {
    // The gateway checks its requests before sending them: a refusal here
    // is a protocol or setup mismatch, not the client's fault.
    err = new HttpError(
      502,
      "backend_error",
      `the backend refused the ${what} (${status}): ${reason}`,
    );
  }
  return Object.assign(err, { backendStatus: status });
}
