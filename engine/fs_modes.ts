/**
 * Permission bits of what the engine creates, shared by the file-system
 * ports (a module of its own so that they need not import engine/fs.ts,
 * which imports them).
 *
 * @module
 */

/** Mode of every file the engine creates: owner read and write only. */
export const FILE_MODE = 0o600;
/** Mode of a data directory the engine creates: owner only. */
export const DIR_MODE = 0o700;
