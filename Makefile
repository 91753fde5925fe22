# shale — build, test and run targets.
# Deno and Bun are pinned; when `deno` or `bun` is not on PATH both are
# installed from npm into .tools/ (ignored by git), never globally. They are
# installed in one npm call: a later `npm install --no-save` of one would
# remove the other.
DENO_VERSION := 2.9.6
BUN_VERSION := 1.4.5
TOOLS := .tools
LOCAL_DENO := $(TOOLS)/node_modules/.bin/deno
LOCAL_BUN := $(TOOLS)/node_modules/.bin/bun
DENO := $(shell command -v deno 2>/dev/null || echo $(LOCAL_DENO))
BUN := $(shell command -v bun 2>/dev/null || echo $(LOCAL_BUN))
export DENO_NO_UPDATE_CHECK := 1
# The tests run the server on Bun too, and test the binary built with it.
export SHALE_BUN := $(abspath $(BUN))

# `make run ARGS="--port 9000"` passes ARGS to `shale serve`.
ARGS ?=

.PHONY: setup browser node-deps test test-pread test-zstd ci fmt lint check unit run build build-deno bench bench-http bench-gateway bench-kv bench-binary bench-large bench-stall bench-compression crash-test fuzz soak abuse linearizability migrate-large promtool-test clean

setup: $(DENO) $(BUN)

$(LOCAL_DENO) $(LOCAL_BUN):
	@test -x $@ && $@ --version >/dev/null 2>&1 || { \
	  mkdir -p $(TOOLS) && \
	  npm install --prefix $(TOOLS) --no-save --no-audit --no-fund \
	    deno@$(DENO_VERSION) bun@$(BUN_VERSION); }
	@# bun's npm package puts its binary in place from a postinstall script;
	@# run it by hand where npm skipped it.
	@$(LOCAL_BUN) --version >/dev/null 2>&1 || (cd $(TOOLS)/node_modules/bun && node install.js)
	$@ --version

# Debian's Chromium for the dashboard's browser tests (tests/server/ui/);
# without it those tests show as ignored. CI runs this before `make test`.
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium) || sudo sh -c 'apt-get update -qq && apt-get install -y -qq chromium'

fmt: setup
	$(DENO) fmt

lint: setup
	$(DENO) lint

check: setup
	$(DENO) task check

unit: setup
	$(DENO) task test

# The real npm package @deno/kv for tests/node/ (Node users of KV Connect),
# installed from its lock file. Without npm or the registry, that test shows
# as ignored with the reason.
NODE_DEPS := tests/node/node_modules/.package-lock.json

node-deps: $(NODE_DEPS)

$(NODE_DEPS): tests/node/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "npm not found: tests/node/deno_kv_test.ts will be ignored"; exit 0; }; \
	npm ci --prefix tests/node --no-audit --no-fund || echo "npm ci failed: tests/node/deno_kv_test.ts will be ignored"

PREAD_PERMS := --allow-read --allow-write --allow-env --allow-run --allow-sys --allow-net
# The server processes of tests/fault/crash_load_test.ts (kill -9 under load)
# inherit SHALE_READ_MODE, and take SHALE_COMPRESSION as their --compression.
PREAD_SHORT := $(addprefix tests/engine/,sstable_test.ts table_cache_test.ts \
  cache_test.ts db_corruption_test.ts db_model_test.ts db_keyspace_test.ts \
  db_crash_test.ts options_test.ts) tests/fault/corruption_test.ts \
  tests/fault/crash_load_test.ts
# Table-reading tests rerun writing zstd blocks (the default writes them
# raw); `make test-zstd` reruns the whole engine suite so.
ZSTD_SHORT := $(addprefix tests/engine/,sstable_test.ts \
  table_cache_test.ts db_model_test.ts db_crash_test.ts) \
  tests/fault/crash_load_test.ts

# The README's test command: formatting, lint, types, then every test.
test: setup node-deps
	$(DENO) fmt --check
	$(DENO) lint
	$(DENO) task check
	$(DENO) doc --lint mod.ts
	$(DENO) task test
	@# `deno task test` reads tables through memory maps (--allow-ffi makes
	@# readMode "auto" choose mmap); the table-reading tests run again on
	@# pread here, the whole engine suite in `make test-pread`.
	SHALE_READ_MODE=pread $(DENO) test $(PREAD_PERMS) $(PREAD_SHORT)
	SHALE_COMPRESSION=zstd $(DENO) test $(PREAD_PERMS) --allow-ffi $(ZSTD_SHORT)
	@# Reading /proc/self (a thread's nice value) needs --allow-all, which
	@# `deno task test` does not grant: that file's /proc test runs here.
	$(DENO) test --allow-all tests/engine/thread_priority_test.ts

# The whole engine suite with positional reads instead of memory maps.
test-pread: setup
	SHALE_READ_MODE=pread $(DENO) test $(PREAD_PERMS) tests/engine/ tests/fault/corruption_test.ts tests/fault/crash_load_test.ts

# The whole engine suite writing zstd blocks instead of raw ones.
test-zstd: setup
	SHALE_COMPRESSION=zstd $(DENO) test $(PREAD_PERMS) --allow-ffi tests/engine/ tests/fault/corruption_test.ts tests/fault/crash_load_test.ts

ci: browser test

run: setup
	$(DENO) task start $(ARGS)

# One self-contained executable, dist/shale, built offline by Bun (the
# compaction worker is a second entry point, kept at engine/worker.ts).
build: setup
	$(BUN) build --compile --root . server/main.ts engine/worker.ts --outfile dist/shale
	@echo "built dist/shale: $$(./dist/shale --version)"

# The same with `deno compile`, which downloads Deno's runtime base (denort)
# the first time: it fails without access to Deno's download server.
build-deno: setup
	@mkdir -p dist
	@$(DENO) task compile || { \
	  echo "make build-deno: 'deno compile' failed. It downloads Deno's runtime base (denort $(DENO_VERSION)) from Deno's servers the first time, which this machine may not reach. 'make build' builds dist/shale offline with Bun." >&2; \
	  exit 1; }

bench: setup
	$(DENO) task bench $(ARGS)

# Loopback HTTP benchmark with wrk (installed from Debian when missing).
bench-http: setup
	@command -v wrk >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq wrk) || sudo sh -c 'apt-get update -qq && apt-get install -y -qq wrk'
	$(DENO) run -A bench/http.ts

# Gateway mode's latency: shale serve --backend (onto a second shale over
# KV Connect) vs shale serve on a data directory, one client, loopback.
bench-gateway: setup
	$(DENO) run -A bench/gateway.ts $(ARGS)

# Deno's KV client against shale (KV Connect) vs a local Deno.openKv(path).
bench-kv: setup
	$(DENO) run -A --unstable-kv bench/kv_connect.ts $(ARGS)

# dist/shale vs deno run and bun from source: size, cold start, GET/PUT req/s.
bench-binary: build
	@command -v wrk >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq wrk) || sudo sh -c 'apt-get update -qq && apt-get install -y -qq wrk'
	$(DENO) run -A bench/binary.ts --bun $(BUN) $(ARGS)

# Dataset 4x the memory budget (1 GiB vs 256 MiB; ARGS="--gb 2" for more).
# V8's young generation is held to 4 MiB semi-spaces in every isolate (main
# thread, flush and compaction workers), as README's Memory section advises
# for a process held to a budget (a flag only the command line can set).
bench-large: setup
	$(DENO) run -A --v8-flags=--max-semi-space-size=4,--no-allocation-site-pretenuring bench/large.ts $(ARGS)

# Event-loop stalls and get latency while a compaction rewrites every table.
bench-stall: setup
	$(DENO) run -A bench/stall.ts $(ARGS)

# Table size, fill and read speed with compression none vs zstd.
bench-compression: setup
	$(DENO) run -A bench/compression.ts $(ARGS)

# Reliability suites (tests/fault/, see README "Reliability"): the long runs.
FAULT_PERMS := --allow-read --allow-write --allow-env --allow-run --allow-net --allow-sys --allow-ffi

crash-test: setup
	SHALE_CRASH_CYCLES=$${SHALE_CRASH_CYCLES:-100} $(DENO) test $(FAULT_PERMS) tests/fault/crash_load_test.ts

fuzz: setup
	SHALE_FUZZ_CASES=$${SHALE_FUZZ_CASES:-100000} $(DENO) test $(FAULT_PERMS) tests/fault/fuzz_test.ts

soak: setup
	$(DENO) run $(FAULT_PERMS) tests/fault/soak.ts

# `promtool check metrics` on the real /metrics output (make test runs the
# same naming rules without promtool, and shows this check as ignored when
# promtool is missing). Installs Debian's prometheus package when needed.
promtool-test: setup
	@command -v promtool >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq prometheus) || sudo sh -c 'apt-get update -qq && apt-get install -y -qq prometheus'
	$(DENO) test --allow-read --allow-write --allow-env --allow-run --allow-net tests/server/metrics_test.ts

# Hostile clients for SHALE_ABUSE_SECONDS (60): big bodies, deep JSON, KV
# Connect reads and watches, cross-site requests, 300 idle and 100 slowloris
# connections, 20 readers of a 16 MiB value that never read
# (SHALE_ABUSE_IDLE, _SLOWLORIS, _STALLED); /health within 1 s and RSS under
# SHALE_ABUSE_RSS_MIB (2048) throughout.
abuse: setup
	$(DENO) run $(FAULT_PERMS) tests/fault/abuse.ts

# 8 HTTP clients for 60 s with 6 kill -9s of the server, history checked
# for linearizability (SHALE_LIN_MS, SHALE_LIN_KILLS, SHALE_SEED to change).
# shale migrate with SHALE_MIGRATE_KEYS keys (default 200000) to a KV Connect
# backend and back; `make test` runs it with 3000.
migrate-large: setup
	SHALE_MIGRATE_KEYS=$${SHALE_MIGRATE_KEYS:-200000} $(DENO) test $(FAULT_PERMS) tests/server/migrate_test.ts

linearizability: setup
	SHALE_LIN_MS=$${SHALE_LIN_MS:-60000} SHALE_LIN_KILLS=$${SHALE_LIN_KILLS:-6} $(DENO) test $(FAULT_PERMS) tests/server/linearizability_test.ts

clean:
	rm -rf dist data bench/out tests/out
