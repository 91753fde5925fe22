// shale dashboard: plain browser JavaScript, no dependencies, no build step.
// Served by the server itself at /ui/app.js (see server/routes/ui.ts).
//
// Data: GET /stats/stream (server-sent events, read with fetch so the
// Authorization header can go along: EventSource cannot send one) and the
// key/value API (/kv/range, /kv/{key}). When the server wants a token the
// page asks for it and keeps it in sessionStorage (this tab only).
"use strict";

(() => {
  const TOKEN_KEY = "shale.token";
  const HISTORY = 60; // seconds of history in each sparkline
  const PAGE_SIZE = 50;
  const MAX_SHOWN_BYTES = 256 * 1024; // longer values are shown truncated

  const $ = (id) => document.getElementById(id);
  const enc = new TextEncoder();
  const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

  // ---- API access ----------------------------------------------------

  let token = sessionStorage.getItem(TOKEN_KEY);

  /** Thrown when the server wants a (different) token. */
  class Unauthorized extends Error {}

  /** fetch with the token; a 401 shows the sign-in form. */
  async function api(path, init = {}) {
    const headers = new Headers(init.headers || {});
    if (token) headers.set("authorization", "Bearer " + token);
    const res = await fetch(path, { ...init, headers, cache: "no-store" });
    if (res.status === 401) {
      showLogin(token ? "The token was refused." : "");
      throw new Unauthorized("unauthorized");
    }
    return res;
  }

  /** The `{"error":{"code","message"}}` body of a failed call, as text. */
  async function errorText(res) {
    try {
      const body = await res.json();
      if (body && body.error) {
        return body.error.message + " (" + body.error.code + ")";
      }
    } catch {
      // not JSON: fall through to the status line
    }
    return "HTTP " + res.status + " " + res.statusText;
  }

  // ---- formatting ----------------------------------------------------

  function fmtNum(n) {
    if (n === null || n === undefined || !Number.isFinite(n)) return "–";
    const a = Math.abs(n);
    if (a >= 1e9) return (n / 1e9).toFixed(2) + "G";
    if (a >= 1e6) return (n / 1e6).toFixed(2) + "M";
    if (a >= 1e4) return (n / 1e3).toFixed(1) + "k";
    if (a >= 100 || Number.isInteger(n)) return String(Math.round(n));
    return n.toFixed(1);
  }

  function fmtBytes(n) {
    if (n === null || n === undefined || !Number.isFinite(n)) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    let v = n;
    while (Math.abs(v) >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return (i === 0 ? String(Math.round(v)) : v.toFixed(v >= 100 ? 0 : 1)) +
      " " + units[i];
  }

  function fmtMs(ms) {
    if (ms === null || ms === undefined) return "–";
    if (ms < 1) return (ms * 1000).toFixed(0) + " µs";
    if (ms < 100) return ms.toFixed(ms < 10 ? 2 : 1) + " ms";
    return ms.toFixed(0) + " ms";
  }

  function fmtDuration(s) {
    if (!Number.isFinite(s)) return "–";
    const d = Math.floor(s / 86400);
    const h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    if (d > 0) return d + "d " + h + "h";
    if (h > 0) return h + "h " + m + "m";
    if (m > 0) return m + "m " + Math.floor(s % 60) + "s";
    return Math.floor(s) + "s";
  }

  // ---- bytes <-> text and hex ------------------------------------------

  function toHex(bytes, sep = "") {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(
      sep,
    );
  }

  function fromHex(text) {
    const clean = text.replace(/\s+/g, "");
    if (!/^([0-9a-fA-F]{2})*$/.test(clean)) {
      throw new Error("hex must be pairs of 0-9 a-f (spaces allowed)");
    }
    const out = new Uint8Array(clean.length / 2);
    for (let i = 0; i < out.length; i++) {
      out[i] = parseInt(clean.slice(i * 2, i * 2 + 2), 16);
    }
    return out;
  }

  function fromBase64(b64) {
    const bin = atob(b64);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  /** Text when the bytes are printable UTF-8, else undefined. */
  function asText(bytes) {
    let s;
    try {
      s = utf8.decode(bytes);
    } catch {
      return undefined;
    }
    // Control characters other than tab and newlines read as binary.
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if ((c < 0x20 && c !== 9 && c !== 10 && c !== 13) || c === 0x7f) {
        return undefined;
      }
    }
    return s;
  }

  /** Every byte as %XX: always a valid path segment, never `range`/`batch`. */
  function pathEncode(bytes) {
    let s = "";
    for (const b of bytes) s += "%" + b.toString(16).padStart(2, "0");
    return s;
  }

  /** Query encoding: letters and digits as they are, every other byte %XX. */
  function queryEncode(bytes) {
    let s = "";
    for (const b of bytes) {
      const alnum = (b >= 48 && b <= 57) || (b >= 65 && b <= 90) ||
        (b >= 97 && b <= 122);
      s += alnum
        ? String.fromCharCode(b)
        : "%" + b.toString(16).padStart(2, "0");
    }
    return s;
  }

  /** A hex dump: offset, 16 bytes, printable ASCII. */
  function hexDump(bytes) {
    const lines = [];
    for (let off = 0; off < bytes.length; off += 16) {
      const row = bytes.subarray(off, off + 16);
      const hex = toHex(row, " ").padEnd(47, " ");
      let ascii = "";
      for (const b of row) {
        ascii += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : ".";
      }
      lines.push(off.toString(16).padStart(8, "0") + "  " + hex + "  " + ascii);
    }
    return lines.join("\n");
  }

  // ---- tabs ------------------------------------------------------------

  function showView(name) {
    for (const v of ["overview", "keys"]) {
      $("view-" + v).hidden = v !== name;
      $("tab-" + v).setAttribute("aria-selected", String(v === name));
    }
    if (name === "keys" && !keysLoaded) search();
    if (name === "overview") redrawCharts();
  }
  $("tab-overview").addEventListener("click", () => showView("overview"));
  $("tab-keys").addEventListener("click", () => showView("keys"));

  // ---- sign-in ---------------------------------------------------------

  function showLogin(message) {
    stopStream();
    setLive("signed out", "muted");
    $("login").hidden = false;
    $("login-error").hidden = !message;
    $("login-error").textContent = message || "";
    $("login-token").focus();
  }

  $("login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const candidate = $("login-token").value.trim();
    if (!candidate) return;
    const res = await fetch("/stats", {
      headers: { authorization: "Bearer " + candidate },
      cache: "no-store",
    });
    if (res.status === 401) {
      $("login-error").hidden = false;
      $("login-error").textContent = "The token was refused.";
      return;
    }
    token = candidate;
    sessionStorage.setItem(TOKEN_KEY, token);
    $("login").hidden = true;
    $("login-token").value = "";
    $("logout").hidden = false;
    startStream();
    if (!$("view-keys").hidden) search();
  });

  $("logout").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    token = null;
    $("logout").hidden = true;
    showLogin("");
  });
  $("logout").hidden = !token;

  // ---- live stats --------------------------------------------------------

  /** The sparkline tiles, in display order. */
  const TILES = [
    {
      id: "writes",
      label: "Writes / s",
      value: (e) => e.rates && e.rates.writes,
      sub: (e) =>
        fmtNum(e.stats.engine.ops.puts) + " puts, " +
        fmtNum(e.stats.engine.ops.deletes) + " deletes total",
      color: "--c1",
    },
    {
      id: "reads",
      label: "Reads / s",
      value: (e) => e.rates && e.rates.reads,
      sub: (e) => fmtNum(e.stats.engine.ops.gets) + " total",
      color: "--c2",
    },
    {
      id: "scans",
      label: "Scans / s",
      value: (e) => e.rates && e.rates.scans,
      sub: (e) => fmtNum(e.stats.engine.ops.scans) + " total",
      color: "--c3",
    },
    {
      id: "latency",
      label: "Latency p50 / p99",
      value: (e) => e.latency && e.latency.p99Ms,
      text: (e) =>
        e.latency && e.latency.count > 0
          ? fmtMs(e.latency.p50Ms) + " / " + fmtMs(e.latency.p99Ms)
          : "–",
      sub: (e) =>
        e.latency
          ? fmtNum(e.latency.count) + " data requests in the last second"
          : "",
      color: "--c4",
    },
    {
      id: "errors",
      // Server errors: a 404 for a missing key is an answer, not a fault.
      label: "Error rate (5xx)",
      value: (e) => e.rates && errorRate(e.rates),
      text: (e) =>
        e.rates
          ? (errorRate(e.rates) > 0
            ? (errorRate(e.rates) * 100).toFixed(2) + " %"
            : "0 %")
          : "–",
      sub: (e) =>
        e.rates
          ? fmtNum(e.rates.serverErrors) + " 5xx/s · " +
            fmtNum(e.rates.clientErrors) + " 4xx/s (client)"
          : "",
      color: "--bad",
    },
    {
      id: "amp",
      label: "Write amplification",
      value: (e) => e.stats.engine.writeAmplification,
      text: (e) => e.stats.engine.writeAmplification.toFixed(2) + "×",
      sub: (e) =>
        e.rates
          ? "user " + fmtBytes(e.rates.userBytes) + "/s · compaction " +
            fmtBytes(e.rates.compactionBytes) + "/s"
          : "",
      series: (e) => e.rates && e.rates.compactionBytes,
      color: "--c3",
    },
    {
      id: "requests",
      label: "Requests / s",
      value: (e) => e.rates && e.rates.requests,
      sub: (e) => fmtNum(e.stats.server.inFlight) + " in flight",
      color: "--c1",
    },
    {
      id: "connections",
      label: "Connections open / max",
      // null when the runtime does not report connections (Bun): "n/a",
      // never a made-up number. Whole numbers, as in /stats.
      value: (e) => e.stats.server.connections.open,
      text: (e) => {
        const c = e.stats.server.connections;
        if (c.open === null) return "n/a";
        return c.open + " / " + (c.max > 0 ? c.max : "no cap");
      },
      title: (e) =>
        e.stats.server.connections.open === null
          ? "This runtime (Bun) does not report open connections."
          : "",
      sub: (e) => {
        const c = e.stats.server.connections;
        if (c.open === null) return "not reported by this runtime";
        const refused = Object.values(c.refused).reduce((a, n) => a + n, 0);
        return fmtNum(refused) + " refused at the cap";
      },
      color: "--c3",
    },
    {
      id: "feed",
      label: "Change-feed streams",
      value: (e) => e.stats.server.watchStreams,
      sub: () => "open on /kv/watch",
      color: "--c4",
    },
    {
      id: "streams",
      label: "KV Connect watches",
      value: (e) => e.stats.server.kvConnectWatches,
      sub: (e) =>
        fmtNum(e.stats.server.statsStreams) +
        (e.stats.server.statsStreams === 1 ? " dashboard" : " dashboards") +
        " streaming stats",
      color: "--c2",
    },
  ];

  function errorRate(r) {
    return r.requests > 0 ? r.serverErrors / r.requests : 0;
  }

  const history = new Map(TILES.map((t) => [t.id, []]));

  function buildTiles() {
    const root = $("tiles");
    for (const t of TILES) {
      const el = document.createElement("div");
      el.className = "tile";
      el.id = "tile-" + t.id;
      el.innerHTML = '<div class="label"></div><div class="value">–</div>' +
        '<div class="sub"></div><canvas></canvas>';
      el.querySelector(".label").textContent = t.label;
      root.appendChild(el);
    }
  }

  function drawSpark(canvas, points, color) {
    const dpr = globalThis.devicePixelRatio || 1;
    const w = canvas.clientWidth;
    const h = canvas.clientHeight;
    if (w === 0) return;
    if (canvas.width !== w * dpr) canvas.width = w * dpr;
    if (canvas.height !== h * dpr) canvas.height = h * dpr;
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    // Baseline, so an idle chart reads as "zero", not as "missing".
    ctx.fillStyle = cssVar("--line");
    ctx.fillRect(0, h - 1, w, 1);
    const vals = points.map((p) => (Number.isFinite(p) ? p : 0));
    if (vals.length < 2) return;
    const max = Math.max(...vals, 1e-9);
    const step = w / (HISTORY - 1);
    const x0 = w - (vals.length - 1) * step;
    const y = (v) => h - 2 - (v / max) * (h - 6);
    ctx.beginPath();
    vals.forEach((v, i) => {
      if (i === 0) ctx.moveTo(x0, y(v));
      else ctx.lineTo(x0 + i * step, y(v));
    });
    ctx.lineWidth = 1.6;
    ctx.strokeStyle = color;
    ctx.stroke();
    ctx.lineTo(x0 + (vals.length - 1) * step, h);
    ctx.lineTo(x0, h);
    ctx.closePath();
    ctx.globalAlpha = 0.13;
    ctx.fillStyle = color;
    ctx.fill();
    ctx.globalAlpha = 1;
  }

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name)
      .trim();
  }

  function redrawCharts() {
    for (const t of TILES) {
      const canvas = document.querySelector("#tile-" + t.id + " canvas");
      drawSpark(canvas, history.get(t.id), cssVar(t.color));
    }
  }

  let updates = 0; // events rendered (the browser tests watch this)

  function render(e) {
    updates++;
    document.body.dataset.updates = String(updates);
    for (const t of TILES) {
      const el = $("tile-" + t.id);
      const v = t.value(e);
      el.querySelector(".value").textContent = t.text ? t.text(e) : fmtNum(v);
      el.querySelector(".sub").textContent = t.sub(e);
      el.title = t.title ? t.title(e) : "";
      if (e.rates !== null) {
        const h = history.get(t.id);
        h.push(t.series ? t.series(e) : v);
        if (h.length > HISTORY) h.shift();
      }
    }
    if (!$("view-overview").hidden) redrawCharts();
    renderState(e);
    renderLevels(e.stats.engine);
    renderBackground(e);
    renderMemory(e);
  }

  function renderState(e) {
    const pill = $("write-state");
    const health = e.stats.server.health;
    const ws = e.stats.engine.writeState;
    if (health && !health.ok) {
      pill.className = "pill bad";
      pill.textContent = "unavailable: " + (health.code || "error");
    } else if (ws.state === "stall") {
      pill.className = "pill bad";
      pill.textContent = "writes stalled";
    } else if (ws.state === "slowdown") {
      pill.className = "pill warn";
      pill.textContent = "writes slowed";
    } else {
      pill.className = "pill ok";
      pill.textContent = "healthy";
    }
    pill.title = ws.reason || (health && health.reason) || "taking writes";
  }

  function renderLevels(engine) {
    const root = $("levels");
    const levels = engine.levels;
    while (root.children.length < levels.length) {
      const row = document.createElement("div");
      row.className = "level";
      row.innerHTML = '<span class="lname"></span><div class="bar">' +
        '<div class="fill"></div><div class="tick"></div></div>' +
        '<span class="ldesc"></span>';
      root.appendChild(row);
    }
    levels.forEach((l, i) => {
      const row = root.children[i];
      row.querySelector(".lname").textContent = "L" + l.level;
      const fill = row.querySelector(".fill");
      // Score 0..2 spans the bar; the tick in the middle is score 1.
      fill.style.width = Math.min(100, (l.score / 2) * 100) + "%";
      fill.className = "fill" +
        (l.score >= 1 ? " bad" : l.score >= 0.8 ? " warn" : "");
      const target = l.level === 0 ? "" : " of " + fmtBytes(l.targetBytes);
      row.querySelector(".ldesc").textContent = l.tables + " tables · " +
        fmtBytes(l.bytes) + target + " · score " + l.score.toFixed(2);
    });
  }

  function facts(root, rows) {
    root.replaceChildren();
    for (const [k, v, swatch] of rows) {
      const dt = document.createElement("dt");
      if (swatch) {
        const s = document.createElement("span");
        s.className = "swatch";
        s.style.background = swatch;
        dt.appendChild(s);
      }
      dt.appendChild(document.createTextNode(k));
      const dd = document.createElement("dd");
      dd.textContent = v;
      root.append(dt, dd);
    }
  }

  function renderBackground(e) {
    const en = e.stats.engine;
    const ops = en.ops;
    const bg = en.background;
    const ws = en.writeState;
    facts($("background"), [
      ["Flush", bg.flushing ? "in progress" : "idle"],
      ["Compaction", bg.compacting ? "in progress" : "idle"],
      [
        "Writes",
        ws.state === "ok"
          ? "normal"
          : ws.state + (ws.reason ? ": " + ws.reason : ""),
      ],
      [
        "Memtable",
        fmtBytes(en.memtable.bytes) + " · " + en.memtable.immutable +
        " frozen",
      ],
      ["Flushes", fmtNum(ops.flushes) + " · " + fmtBytes(ops.flushBytes)],
      [
        "Compactions",
        fmtNum(ops.compactions) + " · " + fmtBytes(ops.compactBytesWritten) +
        " written",
      ],
      [
        "Stalls / slowdowns",
        fmtNum(ops.stalls) + " / " + fmtNum(ops.slowdowns) + " (" +
        fmtMs(ops.stallMs) + " stalled)",
      ],
      ["Uptime", fmtDuration(e.stats.server.uptimeSeconds)],
    ]);
  }

  function renderMemory(e) {
    const m = e.stats.engine.memory;
    const rt = e.stats.server.memory;
    const parts = [
      ["Memtables", m.memtables, cssVar("--c1")],
      ["Block cache", m.blockCache, cssVar("--c2")],
      ["Table metadata", m.tableMeta, cssVar("--c3")],
      ["JS heap (runtime)", rt.heapUsed, cssVar("--c4")],
    ];
    const used = parts.reduce((s, p) => s + p[1], 0);
    const scale = Math.max(m.budget || 0, used, 1);
    const bar = $("memory-bar");
    while (bar.children.length < parts.length) {
      bar.appendChild(document.createElement("span"));
    }
    parts.forEach((p, i) => {
      bar.children[i].style.width = (p[1] / scale) * 100 + "%";
      bar.children[i].style.background = p[2];
      bar.children[i].title = p[0] + ": " + fmtBytes(p[1]);
    });
    facts($("memory"), [
      ...parts.map((p) => [p[0], fmtBytes(p[1]), p[2]]),
      ["Budget", m.budget ? fmtBytes(m.budget) : "not set"],
      ["Process RSS", fmtBytes(rt.rss)],
    ]);
  }

  globalThis.addEventListener("resize", () => {
    if (!$("view-overview").hidden) redrawCharts();
  });

  // The stream: fetch + a small SSE parser (data lines, blank line ends).
  let streamAbort;
  let retryTimer;

  function setLive(text, cls) {
    const el = $("live");
    el.textContent = text;
    el.className = "pill " + cls;
  }

  function stopStream() {
    clearTimeout(retryTimer);
    if (streamAbort) streamAbort.abort();
    streamAbort = undefined;
  }

  async function startStream() {
    stopStream();
    const abort = new AbortController();
    streamAbort = abort;
    setLive("connecting", "muted");
    try {
      const res = await api("/stats/stream", { signal: abort.signal });
      if (!res.ok) throw new Error(await errorText(res));
      setLive("live", "ok live");
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buf += value;
        let end;
        while ((end = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const data = block.split("\n").filter((l) => l.startsWith("data:"))
            .map((l) => l.slice(5).trimStart()).join("\n");
          if (data) render(JSON.parse(data));
        }
      }
      throw new Error("stream ended");
    } catch (err) {
      if (abort.signal.aborted || err instanceof Unauthorized) return;
      setLive("reconnecting", "warn");
      retryTimer = setTimeout(startStream, 2000);
    }
  }

  // ---- key browser -------------------------------------------------------

  let keysLoaded = false;
  /** Query of the current search (without cursor). */
  let baseQuery = "";
  /** cursors[i] is the cursor that loads page i (page 0 has none). */
  let cursors = [undefined];
  let pageIndex = 0;
  let nextCursor = null;
  let selected; // { key: Uint8Array, version, value: Uint8Array }

  function inputBytes(text, encoding) {
    return encoding === "hex" ? fromHex(text) : enc.encode(text);
  }

  function searchError(message) {
    $("search-error").hidden = !message;
    $("search-error").textContent = message || "";
  }

  $("search-mode").addEventListener("change", () => {
    const range = $("search-mode").value === "range";
    $("search-prefix").hidden = range;
    $("search-start").hidden = !range;
    $("search-end").hidden = !range;
  });

  $("search").addEventListener("submit", (e) => {
    e.preventDefault();
    search();
  });

  $("key-display").addEventListener("change", () => {
    loadPage();
    if (selected) showValue();
  });

  function search() {
    const encoding = $("search-enc").value;
    let q;
    try {
      if ($("search-mode").value === "prefix") {
        const p = inputBytes($("search-prefix").value, encoding);
        q = p.length > 0 ? "prefix=" + queryEncode(p) : "";
      } else {
        const s = inputBytes($("search-start").value, encoding);
        const e = inputBytes($("search-end").value, encoding);
        const parts = [];
        if (s.length > 0) parts.push("start=" + queryEncode(s));
        if (e.length > 0) parts.push("end=" + queryEncode(e));
        q = parts.join("&");
      }
    } catch (err) {
      searchError(err.message);
      return;
    }
    searchError("");
    keysLoaded = true;
    baseQuery = q;
    cursors = [undefined];
    pageIndex = 0;
    loadPage();
  }

  function keyLabel(bytes) {
    const text = $("key-display").value === "hex" ? undefined : asText(bytes);
    return text === undefined
      ? { text: toHex(bytes, " "), hex: true }
      : { text, hex: false };
  }

  function fillKey(el, bytes) {
    const { text, hex } = keyLabel(bytes);
    el.replaceChildren();
    if (hex) {
      const b = document.createElement("span");
      b.className = "badge";
      b.textContent = "HEX";
      el.appendChild(b);
    }
    el.appendChild(document.createTextNode(text));
    el.title = text;
  }

  async function loadPage() {
    if (!keysLoaded) return;
    const params = ["limit=" + PAGE_SIZE];
    if (baseQuery) params.push(baseQuery);
    const cursor = cursors[pageIndex];
    if (cursor) params.push("cursor=" + encodeURIComponent(cursor));
    let body;
    try {
      const res = await api("/kv/range?" + params.join("&"));
      if (!res.ok) {
        searchError(await errorText(res));
        return;
      }
      body = await res.json();
    } catch (err) {
      if (!(err instanceof Unauthorized)) searchError(String(err.message));
      return;
    }
    nextCursor = body.next;
    const rows = $("key-rows");
    rows.replaceChildren();
    for (const item of body.items) {
      const key = fromBase64(item.key);
      const value = fromBase64(item.value);
      const tr = document.createElement("tr");
      tr.dataset.key = toHex(key);
      const tdKey = document.createElement("td");
      fillKey(tdKey, key);
      tdKey.className = "mono";
      const tdVer = document.createElement("td");
      tdVer.className = "num";
      tdVer.textContent = item.version;
      const tdSize = document.createElement("td");
      tdSize.className = "num";
      tdSize.textContent = fmtBytes(value.length);
      tr.append(tdKey, tdVer, tdSize);
      if (selected && toHex(selected.key) === tr.dataset.key) {
        tr.classList.add("selected");
      }
      tr.addEventListener("click", () => openKey(key));
      rows.appendChild(tr);
    }
    $("key-empty").hidden = body.items.length > 0;
    $("page-prev").disabled = pageIndex === 0;
    $("page-next").disabled = nextCursor === null;
    $("page-info").textContent = body.items.length === 0
      ? ""
      : "page " + (pageIndex + 1) + " · " + body.items.length + " keys" +
        (nextCursor === null ? "" : ", more follow");
  }

  $("page-next").addEventListener("click", () => {
    if (nextCursor === null) return;
    cursors[pageIndex + 1] = nextCursor;
    pageIndex++;
    loadPage();
  });
  $("page-prev").addEventListener("click", () => {
    if (pageIndex === 0) return;
    pageIndex--;
    loadPage();
  });

  // ---- value viewer and editor --------------------------------------------

  let viewMode = "text";

  function message(text, isError) {
    const el = $("v-message");
    el.hidden = !text;
    el.textContent = text || "";
    el.className = "message" + (isError ? " error" : "");
  }

  async function openKey(key) {
    message("");
    const res = await api("/kv/" + pathEncode(key));
    if (res.status === 404) {
      selected = undefined;
      $("viewer").hidden = false;
      $("v-read").hidden = true;
      $("v-form").hidden = true;
      fillKey($("v-key"), key);
      $("v-meta").textContent = "";
      message("This key no longer exists.", true);
      return;
    }
    if (!res.ok) {
      message(await errorText(res), true);
      return;
    }
    const version = (res.headers.get("etag") || "").replaceAll('"', "");
    const value = new Uint8Array(await res.arrayBuffer());
    selected = { key, version, value };
    showValue();
    // On narrow screens the viewer sits below the list: bring it into view.
    if (matchMedia("(max-width: 1000px)").matches) {
      $("viewer").scrollIntoView({ block: "start" });
    }
    for (const tr of $("key-rows").children) {
      tr.classList.toggle("selected", tr.dataset.key === toHex(key));
    }
  }

  function showValue() {
    const { key, version, value } = selected;
    $("viewer").hidden = false;
    $("v-read").hidden = false;
    $("v-form").hidden = true;
    fillKey($("v-key"), key);
    $("v-meta").textContent = "version " + version + " · " +
      fmtBytes(value.length);
    for (const b of $("v-modes").children) {
      b.setAttribute("aria-selected", String(b.dataset.mode === viewMode));
    }
    const shown = value.subarray(0, MAX_SHOWN_BYTES);
    const cut = value.length > shown.length
      ? "\n… (" + fmtBytes(value.length - shown.length) + " more)"
      : "";
    const pre = $("v-value");
    pre.className = "value";
    const text = asText(value);
    if (viewMode === "hex") {
      pre.classList.add("hex");
      pre.textContent = hexDump(shown) + cut;
    } else if (viewMode === "json") {
      let pretty;
      try {
        pretty = JSON.stringify(JSON.parse(text), null, 2);
      } catch {
        pretty = undefined;
      }
      pre.textContent = pretty === undefined
        ? "(the value is not valid JSON)"
        : pretty;
    } else if (text === undefined) {
      pre.classList.add("hex");
      pre.textContent = "(binary: not printable UTF-8; hex dump below)\n\n" +
        hexDump(shown) + cut;
    } else {
      pre.textContent = text.length > MAX_SHOWN_BYTES
        ? text.slice(0, MAX_SHOWN_BYTES) + cut
        : text;
    }
  }

  for (const b of $("v-modes").children) {
    b.addEventListener("click", () => {
      viewMode = b.dataset.mode;
      if (selected) showValue();
    });
  }

  /** The editor is for a new key (`creating`) or for `selected`. */
  let creating = false;

  function openEditor(isNew) {
    creating = isNew;
    message("");
    $("viewer").hidden = false;
    $("v-read").hidden = true;
    $("v-form").hidden = false;
    $("v-newkey-row").hidden = !isNew;
    if (isNew) {
      $("v-key").textContent = "new key";
      $("v-meta").textContent = "";
      $("v-newkey").value = "";
      $("v-text").value = "";
      $("v-enc").value = "text";
      $("v-newkey").focus();
      return;
    }
    const text = asText(selected.value);
    $("v-enc").value = text === undefined ? "hex" : "text";
    $("v-text").value = text === undefined ? toHex(selected.value, " ") : text;
    $("v-text").focus();
  }

  $("new-key").addEventListener("click", () => openEditor(true));
  $("v-edit").addEventListener("click", () => openEditor(false));
  $("v-reload").addEventListener("click", () => openKey(selected.key));
  $("v-cancel").addEventListener("click", () => {
    if (selected && !creating) showValue();
    else $("viewer").hidden = true;
    message("");
  });

  $("v-enc").addEventListener("change", () => {
    // Convert what is typed so switching the view does not lose the edit.
    const ta = $("v-text");
    try {
      ta.value = $("v-enc").value === "hex"
        ? toHex(enc.encode(ta.value), " ")
        : (asText(fromHex(ta.value)) ?? ta.value);
    } catch (err) {
      message(err.message, true);
    }
  });

  function conflictText(res, what) {
    const now = (res.headers.get("etag") || "").replaceAll('"', "");
    return "Conflict: " + what +
      (now ? " (it is now at version " + now + ")" : "") +
      ". Nothing was written; reload to see the current value.";
  }

  $("v-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    let key;
    let value;
    try {
      key = creating
        ? inputBytes($("v-newkey").value, $("search-enc").value)
        : selected.key;
      value = inputBytes($("v-text").value, $("v-enc").value);
    } catch (err) {
      message(err.message, true);
      return;
    }
    if (key.length === 0) {
      message("The key is empty.", true);
      return;
    }
    const headers = { "content-type": "application/octet-stream" };
    // Only write over the version shown; a new key must not exist yet.
    if (creating) headers["if-none-match"] = "*";
    else headers["if-match"] = '"' + selected.version + '"';
    const res = await api("/kv/" + pathEncode(key), {
      method: "PUT",
      headers,
      body: value,
    });
    if (res.status === 412) {
      message(
        creating
          ? conflictText(res, "a key with this name already exists")
          : conflictText(res, "the key changed since you opened it"),
        true,
      );
      return;
    }
    if (!res.ok) {
      message(await errorText(res), true);
      return;
    }
    await openKey(key);
    message("Saved (version " + selected.version + ").");
    loadPage();
  });

  function confirmDialog(title, text) {
    const dlg = $("confirm");
    $("confirm-title").textContent = title;
    $("confirm-text").textContent = text;
    return new Promise((resolve) => {
      dlg.addEventListener("close", () => resolve(dlg.returnValue === "ok"), {
        once: true,
      });
      dlg.returnValue = "cancel";
      dlg.showModal();
    });
  }

  $("v-delete").addEventListener("click", async () => {
    const { key, version } = selected;
    const ok = await confirmDialog(
      "Delete this key?",
      "“" + keyLabel(key).text + "” at version " + version +
        " will be deleted. This cannot be undone.",
    );
    if (!ok) return;
    const res = await api("/kv/" + pathEncode(key), {
      method: "DELETE",
      headers: { "if-match": '"' + version + '"' },
    });
    if (res.status === 412) {
      message(conflictText(res, "the key changed since you opened it"), true);
      return;
    }
    if (!res.ok) {
      message(await errorText(res), true);
      return;
    }
    selected = undefined;
    $("v-read").hidden = true;
    $("v-meta").textContent = "";
    message("Deleted.");
    loadPage();
  });

  // ---- start -------------------------------------------------------------

  buildTiles();
  startStream();
})();
