/**
 * The dashboard in a real browser: Debian's `chromium` driven by
 * `puppeteer-core` (test-only; the server never imports it) against a real
 * `server/main.ts serve` process. Checks that the live numbers and charts
 * move, browses binary keys and pages, edits, creates and deletes keys
 * through the page and reads them back over HTTP, sees the conflict of a
 * stale edit, and signs in with a token. Screenshots of the main views go
 * to `tests/out/ui/` (git-ignored).
 *
 * Without Chromium the test shows as ignored with the reason; `make test`
 * on CI installs it (`make browser`).
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { mustStart, stopServer } from "../../_shale.ts";

/**
 * puppeteer-core, loaded only when Chromium is there: a non-literal dynamic
 * import keeps it out of the module graph, so `deno task check` and machines
 * without Chromium never fetch it (the server never imports it either).
 */
const PUPPETEER = "npm:puppeteer-core@24.43.1";

/** The parts of puppeteer-core's API this test uses. */
interface Page {
  setViewport(v: {
    width: number;
    height: number;
    deviceScaleFactor?: number;
    isMobile?: boolean;
    hasTouch?: boolean;
  }): Promise<void>;
  goto(url: string, o?: { waitUntil: "load" }): Promise<unknown>;
  reload(o?: { waitUntil: "load" }): Promise<unknown>;
  url(): string;
  on(event: "pageerror", fn: (e: Error) => void): unknown;
  waitForFunction(expr: string, o?: { timeout?: number }): Promise<unknown>;
  waitForSelector(
    selector: string,
    o?: { visible?: boolean; hidden?: boolean; timeout?: number },
  ): Promise<unknown>;
  $eval<T>(selector: string, fn: (el: never) => T): Promise<T>;
  $$eval<T>(selector: string, fn: (els: never[]) => T): Promise<T>;
  evaluate(expr: string): Promise<unknown>;
  click(selector: string): Promise<void>;
  select(selector: string, value: string): Promise<unknown>;
  type(selector: string, text: string): Promise<void>;
  screenshot(o: { path: string }): Promise<unknown>;
  close(): Promise<void>;
}

interface Browser {
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

interface Puppeteer {
  launch(o: { executablePath?: string; args: string[] }): Promise<Browser>;
}

const ROOT = new URL("../../../", import.meta.url).pathname;
const OUT = `${ROOT}tests/out/ui`;
const TOKEN = "dashboard-test-token";

/** The Chromium binary: $CHROMIUM, or Debian's (the real one, not the wrapper). */
function findChromium(): string | undefined {
  const candidates = [
    Deno.env.get("CHROMIUM"),
    "/usr/lib/chromium/chromium",
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
  ];
  for (const c of candidates) {
    if (c === undefined || c === "") continue;
    try {
      if (Deno.statSync(c).isFile) return c;
    } catch {
      // not here
    }
  }
  return undefined;
}

const CHROMIUM = findChromium();

interface Server {
  base: string;
  dir: string;
  stop(): Promise<void>;
}

/** Starts `shale serve` as its own process (the one starter, on Deno). */
async function startServer(extra: string[] = []): Promise<Server> {
  const dir = await Deno.makeTempDir({ prefix: "shale-ui-test-" });
  const s = await mustStart(dir, { args: ["--sync", "none", ...extra] });
  return {
    base: s.base,
    dir,
    async stop() {
      await stopServer(s);
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function launch(): Promise<{ browser: Browser; profile: string }> {
  const profile = await Deno.makeTempDir({ prefix: "shale-ui-chromium-" });
  const puppeteer = (await import(PUPPETEER)).default as Puppeteer;
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      `--user-data-dir=${profile}`,
    ],
  });
  return { browser, profile };
}

/** Percent-encodes every byte of a key for `/kv/{key}`. */
function keyPath(key: Uint8Array | string): string {
  const b = typeof key === "string" ? new TextEncoder().encode(key) : key;
  return Array.from(b, (x) => "%" + x.toString(16).padStart(2, "0")).join("");
}

async function put(base: string, key: Uint8Array | string, value: string) {
  const res = await fetch(`${base}/kv/${keyPath(key)}`, {
    method: "PUT",
    body: value,
  });
  equal(res.status, 204);
  await res.body?.cancel();
}

async function get(
  base: string,
  key: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; text: string }> {
  const res = await fetch(`${base}/kv/${keyPath(key)}`, { headers });
  return { status: res.status, text: await res.text() };
}

/** Text of every element matching `selector`. */
function texts(page: Page, selector: string): Promise<string[]> {
  return page.$$eval(
    selector,
    (els) => els.map((e) => (e as { textContent: string }).textContent),
  );
}

function text(page: Page, selector: string): Promise<string> {
  return page.$eval(
    selector,
    (e) => (e as { textContent: string }).textContent,
  );
}

async function shot(page: Page, name: string): Promise<void> {
  await Deno.mkdir(OUT, { recursive: true });
  await page.screenshot({ path: `${OUT}/${name}.png` });
}

/** Clicks a key row by the text shown in its first cell (once it is there). */
async function clickRow(page: Page, shown: string): Promise<void> {
  // Find and click in one page-side step: the list re-renders after saves,
  // so a row handle taken earlier may already be gone.
  await page.waitForFunction(
    `(() => {
      for (const tr of document.querySelectorAll("#key-rows tr")) {
        if (tr.firstElementChild.textContent === ${JSON.stringify(shown)}) {
          tr.click();
          return true;
        }
      }
      return false;
    })()`,
    { timeout: 5000 },
  );
}

/**
 * Clicks `selector` once it is visible: the page shows and hides parts as
 * answers arrive, and a click on a hidden element would be lost.
 */
async function click(page: Page, selector: string): Promise<void> {
  await page.waitForSelector(selector, { visible: true, timeout: 5000 });
  await page.click(selector);
}

async function search(page: Page, prefix: string, enc = "text") {
  await page.select("#search-mode", "prefix");
  await page.select("#search-enc", enc);
  await page.$eval(
    "#search-prefix",
    (e) => (e as unknown as { value: string }).value = "",
  );
  await page.type("#search-prefix", prefix);
  await click(page, "#search-go");
}

const updates = (page: Page) =>
  page.$eval(
    "body",
    (b) => Number((b as { dataset: Record<string, string> }).dataset.updates),
  );

Deno.test({
  name: CHROMIUM === undefined
    ? "dashboard in Chromium (ignored: no chromium; `make browser` installs it)"
    : "dashboard in Chromium: live stats, key browser, edits, conflicts, sign-in",
  ignore: CHROMIUM === undefined,
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  // A small budget (1 MiB memtables) so a few seconds of writes flush.
  // A set connection cap, so the connections tile has a known "max".
  const server = await startServer([
    "--memory-budget",
    "16MiB",
    "--max-connections",
    "100",
  ]);
  const authServer = await startServer(["--auth-token", TOKEN]);
  const { browser, profile } = await launch();
  const base = server.base;
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 860 });
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));

    await t.step(
      "overview: numbers and charts update every second",
      async () => {
        await page.goto(`${base}/`, { waitUntil: "load" });
        equal(new URL(page.url()).pathname, "/ui");
        await page.waitForFunction(
          "Number(document.body.dataset.updates) >= 1",
        );
        // Traffic for the charts from 4 clients: puts, gets (some missing),
        // range scans. SHALE_UI_DEMO_SECONDS runs it longer (for the README's
        // screenshot, where flushes and compactions then show).
        const demoMs = Number(Deno.env.get("SHALE_UI_DEMO_SECONDS") ?? "3") *
          1000;
        const value = "x".repeat(1024);
        let stop = false;
        let puts = 0;
        const clients = [0, 1, 2, 3].map(async (c) => {
          for (let i = 0; !stop; i++) {
            await put(base, `load/${c}/${i}`, value);
            puts++;
            await get(base, `load/${c}/${i % 3 === 0 ? i + 1 : i}`);
            if (i % 8 === 0) {
              await (await fetch(`${base}/kv/range?prefix=load/${c}/&limit=20`))
                .body?.cancel();
            }
          }
        });
        await new Promise((r) => setTimeout(r, demoMs));
        const before = await updates(page);
        await page.waitForFunction(
          `Number(document.body.dataset.updates) >= ${before + 1}`,
          { timeout: 5000 },
        );
        // Under load: the writes tile shows a positive rate, its chart has
        // drawn a line, latency has a value.
        const writes = await text(page, "#tile-writes .value");
        match(writes, /^[0-9.]+[kMG]?$/);
        ok(parseFloat(writes) > 0, `writes/s ${writes}`);
        const painted = await page.$eval("#tile-writes canvas", (c) => {
          const canvas = c as unknown as {
            width: number;
            height: number;
            getContext(k: "2d"): {
              getImageData(x: number, y: number, w: number, h: number): {
                data: Uint8ClampedArray;
              };
            };
          };
          const d = canvas.getContext("2d").getImageData(
            0,
            0,
            canvas.width,
            canvas.height - 2, // above the baseline
          ).data;
          let n = 0;
          for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
          return n;
        });
        ok(painted > 50, `writes chart painted ${painted} pixels`);
        match(await text(page, "#tile-latency .value"), /^[0-9.]+ (ms|µs) \/ /);
        await shot(page, "overview");
        stop = true;
        await Promise.all(clients);
        // The totals catch up with every write the clients made (the page
        // shows 10000 and more as "12.3k").
        const shown = puts < 1e4 ? String(puts) : (puts / 1e3).toFixed(1) + "k";
        await page.waitForFunction(
          `document.querySelector("#tile-writes .sub").textContent ===
          "${shown} puts, 0 deletes total"`,
          { timeout: 5000 },
        );
        // Seven levels as bars; memory shows budget parts and RSS.
        equal(
          await page.evaluate(
            "document.querySelectorAll('#levels .level').length",
          ),
          7,
        );
        const mem = await texts(page, "#memory dt");
        for (const part of ["Memtables", "Block cache", "Table metadata"]) {
          ok(mem.includes(part), `memory lists ${part}`);
        }
        ok(mem.includes("Process RSS"));
        const memValues = await texts(page, "#memory dd");
        equal(memValues[mem.indexOf("Budget")], "16.0 MiB");
        equal(await text(page, "#write-state"), "healthy");
        equal(await text(page, "#live"), "live");
      },
    );

    await t.step(
      "overview: connections and change-feed streams match /stats",
      async () => {
        const tile = (id: string) => text(page, `#tile-${id} .value`);
        const serverStats = async () =>
          (await (await fetch(`${base}/stats`)).json()).server;
        // Two change-feed streams, held open until the tile has seen them.
        const feeds = [0, 1].map(() => new AbortController());
        const bodies = await Promise.all(feeds.map(async (c) => {
          const res = await fetch(`${base}/kv/watch?prefix=load/`, {
            signal: c.signal,
          });
          equal(res.status, 200);
          const reader = res.body!.getReader();
          await reader.read(); // the stream is registered once it answers
          return reader;
        }));
        equal((await serverStats()).watchStreams, 2);
        await page.waitForFunction(
          `document.querySelector("#tile-feed .value").textContent === "2"`,
          { timeout: 5000 },
        );
        // Connections: the tile and /stats agree once the count is steady
        // (the page's own stream and pooled keep-alive connections).
        let shown = "";
        let open = -1;
        for (let i = 0; i < 50; i++) {
          const before = await updates(page);
          const c = (await serverStats()).connections;
          equal(c.max, 100);
          open = c.open;
          await page.waitForFunction(
            `Number(document.body.dataset.updates) >= ${before + 1}`,
            { timeout: 5000 },
          );
          shown = await tile("connections");
          if (shown === `${open} / 100`) break;
        }
        equal(shown, `${open} / 100`);
        ok(open >= 1, `open connections ${open}`);
        equal(
          await page.$eval(
            "#tile-connections",
            (e) => (e as { title: string }).title,
          ),
          "",
        );
        for (const r of bodies) await r.cancel();
        for (const c of feeds) c.abort();
        await page.waitForFunction(
          `document.querySelector("#tile-feed .value").textContent === "0"`,
          { timeout: 5000 },
        );
        equal((await serverStats()).watchStreams, 0);
      },
    );

    await t.step("overview on a phone-sized screen", async () => {
      const phone = await browser.newPage();
      await phone.setViewport({
        width: 390,
        height: 844,
        deviceScaleFactor: 2,
        isMobile: true,
        hasTouch: true,
      });
      await phone.goto(`${base}/ui`, { waitUntil: "load" });
      await phone.waitForFunction(
        "Number(document.body.dataset.updates) >= 2",
      );
      // Nothing wider than the screen: no sideways scrolling.
      const overflow = await phone.evaluate(
        "document.documentElement.scrollWidth - window.innerWidth",
      );
      ok(Number(overflow) <= 0, `page is ${overflow}px wider than the screen`);
      await shot(phone, "overview-phone");
      // The key browser too: list, then a value under it.
      await click(phone, "#tab-keys");
      await phone.waitForFunction(
        "document.querySelectorAll('#key-rows tr').length === 50",
      );
      await clickRow(phone, "load/0/0");
      await phone.waitForFunction(
        "document.querySelector('#v-meta').textContent.startsWith('version')",
      );
      const keysOverflow = await phone.evaluate(
        "document.documentElement.scrollWidth - window.innerWidth",
      );
      ok(Number(keysOverflow) <= 0, `keys view ${keysOverflow}px too wide`);
      // Opening a key scrolled its viewer (below the list here) into sight.
      const top = Number(
        await phone.evaluate(
          "document.querySelector('#viewer').getBoundingClientRect().top",
        ),
      );
      ok(top >= 0 && top < 844 / 2, `viewer at ${top}px`);
      await shot(phone, "keys-phone");
      await phone.close();
    });

    // Binary keys: bytes that are not UTF-8, and a NUL in the middle.
    const binKey = new Uint8Array([0x62, 0x69, 0x6e, 0x2f, 0x00, 0xff, 0x10]);
    await put(base, binKey, "binary key");
    await put(base, "bin/text", '{"name":"shale","tags":["lsm","kv"]}');
    for (let i = 0; i < 60; i++) {
      await put(base, `page/${String(i).padStart(3, "0")}`, `v${i}`);
    }

    await t.step(
      "keys: browse a prefix with binary keys, text and hex",
      async () => {
        await click(page, "#tab-keys");
        await search(page, "bin/");
        await page.waitForFunction(
          "document.querySelectorAll('#key-rows tr').length === 2",
        );
        const shown = await texts(page, "#key-rows td:first-child");
        // Sorted by bytes: 0x00 sorts before "t". The binary key shows as hex.
        deepEqual(shown, ["HEX62 69 6e 2f 00 ff 10", "bin/text"]);
        // Search by a hex prefix that is not text.
        await search(page, "62 69 6e 2f 00", "hex");
        await page.waitForFunction(
          "document.querySelectorAll('#key-rows tr').length === 1",
        );
        // The JSON value, pretty.
        await search(page, "bin/");
        await clickRow(page, "bin/text");
        await page.waitForFunction(
          "document.querySelector('#v-meta').textContent.startsWith('version')",
        );
        await click(page, '#v-modes [data-mode="json"]');
        equal(
          await text(page, "#v-value"),
          '{\n  "name": "shale",\n  "tags": [\n    "lsm",\n    "kv"\n  ]\n}',
        );
        await shot(page, "keys");
        await click(page, '#v-modes [data-mode="hex"]');
        ok(
          (await text(page, "#v-value")).startsWith(
            "00000000  7b 22 6e 61 6d 65",
          ),
        );
        await click(page, '#v-modes [data-mode="text"]');
      },
    );

    await t.step("keys: paging with the range cursor", async () => {
      await search(page, "page/");
      await page.waitForFunction(
        "document.querySelectorAll('#key-rows tr').length === 50",
      );
      equal(await text(page, "#key-rows tr td"), "page/000");
      await click(page, "#page-next");
      await page.waitForFunction(
        "document.querySelectorAll('#key-rows tr').length === 10",
      );
      equal(await text(page, "#key-rows tr td"), "page/050");
      ok(
        await page.$eval(
          "#page-next",
          (b) => (b as { disabled: boolean }).disabled,
        ),
      );
      await click(page, "#page-prev");
      await page.waitForFunction(
        "document.querySelectorAll('#key-rows tr').length === 50",
      );
      equal(await text(page, "#key-rows tr td"), "page/000");
    });

    await t.step(
      "keys: edit through the page, read back over HTTP",
      async () => {
        await clickRow(page, "page/007");
        await page.waitForFunction(
          "document.querySelector('#v-value').textContent === 'v7'",
        );
        await click(page, "#v-edit");
        await page.$eval(
          "#v-text",
          (e) => (e as unknown as { value: string }).value = "",
        );
        await page.type("#v-text", "edited in the browser");
        await click(page, "#v-save");
        await page.waitForFunction(
          "document.querySelector('#v-message').textContent.startsWith('Saved')",
        );
        deepEqual(await get(base, "page/007"), {
          status: 200,
          text: "edited in the browser",
        });
      },
    );

    await t.step(
      "keys: a stale edit gets a conflict and writes nothing",
      async () => {
        await clickRow(page, "page/008");
        await page.waitForFunction(
          "document.querySelector('#v-value').textContent === 'v8'",
        );
        await click(page, "#v-edit");
        // Someone else writes the key while the page shows version N.
        await put(base, "page/008", "changed elsewhere");
        await page.type("#v-text", " and mine");
        await click(page, "#v-save");
        await page.waitForFunction(
          "document.querySelector('#v-message').classList.contains('error')",
        );
        match(
          await text(page, "#v-message"),
          /^Conflict: the key changed since you opened it \(it is now at version \d+\)/,
        );
        deepEqual(await get(base, "page/008"), {
          status: 200,
          text: "changed elsewhere",
        });
        await shot(page, "conflict");
        await click(page, "#v-cancel");
      },
    );

    await t.step("keys: create and delete through the page", async () => {
      await click(page, "#new-key");
      await page.select("#search-enc", "text");
      await page.type("#v-newkey", "made/in the ui");
      await page.type("#v-text", "hello");
      await click(page, "#v-save");
      await page.waitForFunction(
        "document.querySelector('#v-message').textContent.startsWith('Saved')",
      );
      deepEqual(await get(base, "made/in the ui"), {
        status: 200,
        text: "hello",
      });
      // Creating it again is refused: If-None-Match: *.
      await click(page, "#new-key");
      await page.type("#v-newkey", "made/in the ui");
      await page.type("#v-text", "again");
      await click(page, "#v-save");
      await page.waitForFunction(
        "document.querySelector('#v-message').classList.contains('error')",
      );
      match(await text(page, "#v-message"), /already exists/);
      deepEqual((await get(base, "made/in the ui")).text, "hello");

      // Delete with confirmation; cancelling first deletes nothing.
      await click(page, "#v-cancel");
      await search(page, "made/");
      await clickRow(page, "made/in the ui");
      await page.waitForSelector("#v-read", { visible: true });
      await page.waitForFunction(
        "document.querySelector('#v-value').textContent === 'hello'",
      );
      await click(page, "#v-delete");
      await page.waitForSelector("#confirm[open]");
      await click(page, "#confirm-cancel");
      equal((await get(base, "made/in the ui")).status, 200);
      await click(page, "#v-delete");
      await page.waitForSelector("#confirm[open]");
      await shot(page, "delete-confirm");
      await click(page, "#confirm-ok");
      await page.waitForFunction(
        "document.querySelector('#v-message').textContent === 'Deleted.'",
      );
      equal((await get(base, "made/in the ui")).status, 404);
      await page.waitForFunction(
        "document.querySelectorAll('#key-rows tr').length === 0",
      );
    });

    await t.step(
      "auth: the page asks for the token and keeps it for the tab",
      async () => {
        const p = await browser.newPage();
        await p.setViewport({ width: 1280, height: 860 });
        await p.goto(`${authServer.base}/ui`, { waitUntil: "load" });
        await p.waitForSelector("#login:not([hidden])");
        await shot(p, "login");
        await p.type("#login-token", "wrong");
        await click(p, "#login-go");
        await p.waitForSelector("#login-error:not([hidden])");
        equal(await text(p, "#login-error"), "The token was refused.");
        await p.$eval(
          "#login-token",
          (e) => (e as unknown as { value: string }).value = "",
        );
        await p.type("#login-token", TOKEN);
        await click(p, "#login-go");
        await p.waitForSelector("#login", { hidden: true });
        await p.waitForFunction("Number(document.body.dataset.updates) >= 2");
        equal(
          await p.evaluate("sessionStorage.getItem('shale.token')"),
          TOKEN,
        );
        // The API itself still wants the token.
        equal((await get(authServer.base, "x")).status, 401);
        await put(authServer.base, "x", "y").catch(() => {});
        // A reload in the same tab stays signed in.
        await p.reload({ waitUntil: "load" });
        await p.waitForFunction("Number(document.body.dataset.updates) >= 1");
        ok(await p.$eval("#login", (e) => (e as { hidden: boolean }).hidden));
        await p.close();
      },
    );

    deepEqual(errors, []);
  } finally {
    await browser.close();
    await Deno.remove(profile, { recursive: true }).catch(() => {});
    await server.stop();
    await authServer.stop();
  }
});
