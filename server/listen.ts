/**
 * A listener that survives running out of file descriptors. When accept
 * fails with EMFILE, Deno's server stops listening and its `finished`
 * rejects (the process used to exit on it, dropping every connection). Here
 * the connections already accepted keep being served, new ones are refused
 * while no descriptor is free, and the same address is bound again as soon
 * as one is. Bun's listener keeps running by itself; the wrapper changes
 * nothing there.
 *
 * @module
 */
import type { LogFn } from "./app.ts";
import type {
  Listener,
  ListenOptions,
  Runtime,
  ServeHandler,
} from "./runtime.ts";
import { errorText } from "./error_text.ts";

/** True for "too many open files" (per process or system-wide). */
export function isOutOfDescriptors(err: unknown): boolean {
  const text = err instanceof Error ? `${err.name} ${err.message}` : "";
  const code = (err as { code?: string } | undefined)?.code;
  return code === "EMFILE" || code === "ENFILE" ||
    /too many open files|os error 2[34]\b|EMFILE|ENFILE/i.test(text);
}

/**
 * Listens like `rt.listen`, but rebinds (every `retryMs`) after the
 * listener dies of descriptor exhaustion. `finished` rejects only for other
 * errors; `shutdown` stops the current listener and every earlier one.
 */
export async function listenSurvivingEmfile(
  rt: Runtime,
  opts: ListenOptions,
  handler: ServeHandler,
  log: LogFn,
  retryMs = 250,
): Promise<Listener> {
  let current = await rt.listen(opts, handler);
  const addr = current.addr;
  const earlier: Listener[] = [];
  const finished = Promise.withResolvers<void>();
  let stopped = false;

  const rebind = async (): Promise<void> => {
    for (let attempt = 1; !stopped; attempt++) {
      await new Promise((r) => setTimeout(r, retryMs));
      if (stopped) return;
      try {
        current = await rt.listen(
          { ...opts, port: addr.port, onListen: () => {} },
          handler,
        );
      } catch (err) {
        if (isOutOfDescriptors(err)) continue;
        finished.reject(err);
        return;
      }
      log("info", "listening again after running out of file descriptors", {
        port: addr.port,
        attempts: attempt,
      });
      watch(current);
      return;
    }
  };

  const watch = (l: Listener) => {
    l.finished.then(
      () => {
        if (l === current) finished.resolve();
      },
      (err) => {
        if (stopped) return;
        if (!isOutOfDescriptors(err)) {
          finished.reject(err);
          return;
        }
        log(
          "warn",
          "out of file descriptors: refusing new connections until some close (open connections are still served)",
          { error: errorText(err) },
        );
        earlier.push(l);
        rebind();
      },
    );
  };
  watch(current);

  return {
    addr,
    finished: finished.promise,
    unenforced: current.unenforced,
    async shutdown() {
      stopped = true;
      await Promise.all(
        [current, ...earlier].map((l) => l.shutdown().catch(() => {})),
      );
    },
  };
}
