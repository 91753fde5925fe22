/**
 * Request-level checks that keep a browser (or a Host trick) from reaching
 * the store: where the request really points, which sites may send it, and
 * which content types JSON routes take. Pure functions over a `Request`;
 * each refusal is an {@link HttpError} whose code is also its reason label in
 * `/metrics`.
 *
 * Why each exists:
 * - Deno builds `req.url` by gluing the `Host` header in front of the request
 *   path, so `Host: 127.0.0.1/kv/secret#` turns `GET /kv/public` into a read
 *   of `/kv/secret`. {@link requestTarget} accepts only `host[:port]` and
 *   takes the path from what follows exactly that authority.
 * - A web page can send simple requests (`text/plain` POST, no preflight) to a
 *   server on the operator's machine, and a DNS-rebinding page can read the
 *   answers. {@link checkSite} refuses browser requests marked cross-site or
 *   from a foreign `Origin`, and, when no token protects the store, any `Host`
 *   that is not a loopback name or a configured one.
 *
 * @module
 */
import { clip, HttpError } from "./_codec.ts";
import { requestHeader } from "./request_headers.ts";

/** Where a request points, from its validated authority. */
export interface Target {
  /** `host[:port]` as sent (lower case), or Deno's own when none was sent. */
  authority: string;
  /** Host name without port; IPv6 keeps its brackets. */
  hostname: string;
  /** Raw (still percent-encoded) path. */
  path: string;
  /** Raw query without the `?`; "" when none. */
  query: string;
  /** The host name is localhost, 127.x or [::1]. */
  loopback: boolean;
}

/** Options of {@link checkSite}. */
export interface SiteOptions {
  /** When false (no token), only loopback and `allowHosts` names are served. */
  tokenRequired: boolean;
  /** Extra host names (lower case, no port) accepted without a token. */
  allowHosts: ReadonlySet<string>;
  /** Origins (`scheme://host[:port]`, lower case) allowed to send requests. */
  allowOrigins: ReadonlySet<string>;
}

/** A validated Host header: its authority, host name and whether it is loopback. */
interface HostInfo {
  authority: string;
  hostname: string;
  loopback: boolean;
}

/**
 * Validated Host values. Clients send the same few, so the regexes run once
 * per value rather than per request; bounded, cleared when full.
 */
const hostCache = new Map<string, HostInfo>();
const HOST_CACHE_SIZE = 256;

function hostInfo(authority: string): HostInfo {
  const hostname = hostnameOf(authority);
  return { authority, hostname, loopback: isLoopbackName(hostname) };
}

/** reg-name or IPv4, or a bracketed IPv6 literal, then an optional port. */
const AUTHORITY =
  /^(?:[a-z0-9](?:[a-z0-9._~-]{0,252})|\[[0-9a-f:.]{2,45}\])(?::[0-9]{1,5})?$/i;

/**
 * Splits a request into authority, path and query, refusing (400
 * `invalid_host`) a `Host` header that is not `host[:port]`.
 */
export function requestTarget(req: Request): Target {
  const url = req.url;
  const schemeEnd = url.indexOf("://") + 3;
  const host = requestHeader(req, "host");
  let info: HostInfo;
  let pathStart: number;
  if (host !== null) {
    let cached = hostCache.get(host);
    if (cached === undefined) {
      if (!AUTHORITY.test(host)) {
        throw new HttpError(
          400,
          "invalid_host",
          `Host header must be host[:port], got "${clip(host)}"`,
        );
      }
      if (hostCache.size >= HOST_CACHE_SIZE) hostCache.clear();
      hostCache.set(host, cached = hostInfo(host.toLowerCase()));
    }
    info = cached;
    if (url.startsWith(host, schemeEnd)) {
      pathStart = schemeEnd + host.length;
    } else {
      // An absolute-form request target names another authority than
      // Host; which one the client meant is ambiguous, so refuse.
      throw new HttpError(
        400,
        "invalid_host",
        "the request target's authority does not match the Host header",
      );
    }
  } else {
    // No Host (HTTP/1.0, HTTP/2 :authority, in-process requests): the URL's
    // authority came from a parsed URI or from the listener itself.
    const slash = url.indexOf("/", schemeEnd);
    pathStart = slash < 0 ? url.length : slash;
    info = hostInfo(url.slice(schemeEnd, pathStart).toLowerCase());
  }
  let path = pathStart < url.length ? url.slice(pathStart) : "/";
  let query = "";
  const hash = path.indexOf("#");
  if (hash >= 0) path = path.slice(0, hash);
  const q = path.indexOf("?");
  if (q >= 0) {
    query = path.slice(q + 1);
    path = path.slice(0, q);
  }
  if (path === "") path = "/";
  return {
    authority: info.authority,
    hostname: info.hostname,
    loopback: info.loopback,
    path,
    query,
  };
}

function hostnameOf(authority: string): string {
  if (authority.startsWith("[")) {
    const close = authority.indexOf("]");
    return close < 0 ? authority : authority.slice(0, close + 1);
  }
  const colon = authority.lastIndexOf(":");
  return colon < 0 ? authority : authority.slice(0, colon);
}

/** True for localhost, 127.0.0.0/8 and [::1]. */
export function isLoopbackName(hostname: string): boolean {
  const h = hostname.toLowerCase();
  if (h === "localhost" || h.endsWith(".localhost") || h === "[::1]") {
    return true;
  }
  return /^127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$/.test(h);
}

/**
 * Refuses (403) requests a browser marks as cross-site, requests from a
 * foreign `Origin`, and, when no token is required, requests whose `Host` is
 * neither loopback nor allowed (DNS rebinding).
 */
export function checkSite(
  req: Request,
  target: Target,
  opts: SiteOptions,
): void {
  const origin = requestHeader(req, "origin");
  const allowedOrigin = origin !== null &&
    opts.allowOrigins.has(origin.toLowerCase());
  if (
    origin !== null && !allowedOrigin &&
    !sameOrigin(origin, target, req.url.slice(0, req.url.indexOf(":")))
  ) {
    throw new HttpError(
      403,
      "forbidden_origin",
      `requests from origin ${
        clip(origin)
      } are not allowed (see --allow-origin)`,
    );
  }
  if (!allowedOrigin && requestHeader(req, "sec-fetch-site") === "cross-site") {
    throw new HttpError(
      403,
      "cross_site",
      "cross-site browser requests are not allowed (see --allow-origin)",
    );
  }
  if (
    !opts.tokenRequired && !target.loopback &&
    !opts.allowHosts.has(target.hostname)
  ) {
    throw new HttpError(
      403,
      "host_not_allowed",
      `host ${
        clip(target.hostname)
      } is not served without a token: use a loopback name, --allow-host, or set a token`,
    );
  }
}

/** The Origin names the very host and port the request was sent to. */
function sameOrigin(origin: string, target: Target, scheme: string): boolean {
  const m = /^([a-z][a-z0-9+.-]*):\/\/([^/]+)$/i.exec(origin);
  if (m === null) return false; // "null" and other opaque origins
  const authority = m[2].toLowerCase();
  return hostnameOf(authority) === target.hostname &&
    portOf(authority, m[1].toLowerCase()) ===
      portOf(target.authority, scheme);
}

function portOf(authority: string, scheme: string): string {
  const m = /:([0-9]+)$/.exec(authority);
  if (m !== null && !authority.endsWith("]")) return m[1];
  return scheme === "https" ? "443" : "80";
}

/** Refuses (415) a body that is not declared `application/json`. */
export function requireJson(req: Request): void {
  const type = requestHeader(req, "content-type");
  if (type === null || !/^application\/json\s*(;|$)/i.test(type)) {
    throw new HttpError(
      415,
      "unsupported_media_type",
      `this route takes Content-Type: application/json, got ${
        type === null ? "none" : `"${clip(type)}"`
      }`,
    );
  }
}
