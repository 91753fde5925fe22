/**
 * shale: a persistent key/value store built on a log-structured merge tree.
 *
 * @module
 */
export * from "./engine/errors.ts";
export type { DbOptions, SyncMode } from "./engine/options.ts";
