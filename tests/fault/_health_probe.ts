/**
 * Worker for tests/fault/abuse.ts: polls `GET /health` every 200 ms for
 * `seconds` on its own thread, so the latency it measures is the server's,
 * not the stalls of the test's own event loop while it builds and sends
 * large bodies. Posts one message at the end: every check as `{ ms, status }`
 * (status 0 when no answer came within `timeoutMs`).
 *
 * @module
 */
/// <reference lib="deno.worker" />

self.onmessage = async (
  e: MessageEvent<{ url: string; timeoutMs: number; seconds: number }>,
) => {
  const { url, timeoutMs, seconds } = e.data;
  const end = performance.now() + seconds * 1000;
  const checks: { ms: number; status: number }[] = [];
  while (performance.now() < end) {
    const t0 = performance.now();
    let status = 0;
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
      await r.body?.cancel();
      status = r.status;
    } catch {
      status = 0;
    }
    checks.push({ ms: performance.now() - t0, status });
    await new Promise((r) => setTimeout(r, 200));
  }
  self.postMessage(checks);
};
