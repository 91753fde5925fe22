/**
 * The dashboard's static files: `GET /ui` (the page), `/ui/app.js`,
 * `/ui/style.css`, and `/` redirecting to `/ui`. The files live in
 * `server/ui/` and are imported as text, so they are part of the module
 * graph: `deno compile` and `bun build --compile` embed them, and nothing is
 * read from disk at run time.
 *
 * The page itself holds no data and needs no token; every call it makes to
 * the API carries the token the user typed (see `server/ui/app.js`).
 *
 * @module
 */
import html from "../ui/index.html" with { type: "text" };
import js from "../ui/app.js" with { type: "text" };
import css from "../ui/style.css" with { type: "text" };
import { clip, HttpError, parseQuery } from "../_codec.ts";

/** Strict policy: only this origin's own script, style and API calls. */
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const COMMON = {
  "cache-control": "no-cache",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

const FILES: Record<string, { body: string; type: string }> = {
  "/ui": { body: html, type: "text/html; charset=utf-8" },
  "/ui/": { body: html, type: "text/html; charset=utf-8" },
  "/ui/app.js": { body: js, type: "text/javascript; charset=utf-8" },
  "/ui/style.css": { body: css, type: "text/css; charset=utf-8" },
};

/** Whether `path` belongs to the dashboard (so the caller skips auth for it). */
export function isUiPath(path: string): boolean {
  return path === "/" || path === "/ui" || path.startsWith("/ui/");
}

/**
 * Answers a dashboard path; `undefined` when there is no such file (the
 * caller answers its usual 404).
 */
export function uiResponse(path: string): Response | undefined {
  if (path === "/") {
    return new Response(null, {
      status: 302,
      headers: { location: "/ui", ...COMMON },
    });
  }
  const file = FILES[path];
  if (file === undefined) return undefined;
  return new Response(file.body, {
    headers: {
      "content-type": file.type,
      "content-security-policy": CSP,
      ...COMMON,
    },
  });
}

/** The `/ui` route: a dashboard file, or 404 `unknown_route`. */
export function uiRoute(ctx: { path: string; query: string }): Response {
  parseQuery(ctx.query, []);
  const res = uiResponse(ctx.path);
  if (res === undefined) {
    throw new HttpError(
      404,
      "unknown_route",
      `no route for ${clip(ctx.path)}`,
    );
  }
  return res;
}
