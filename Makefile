# shale — build, test and run targets.
# Deno is pinned; when `deno` is not on PATH it is installed from npm into
# .tools/ (ignored by git), never globally.
DENO_VERSION := 2.9.6
TOOLS := .tools
LOCAL_DENO := $(TOOLS)/node_modules/.bin/deno
DENO := $(shell command -v deno 2>/dev/null || echo $(LOCAL_DENO))
export DENO_NO_UPDATE_CHECK := 1

.PHONY: setup test ci fmt lint check unit run build bench bench-http bench-large bench-stall crash-test fuzz soak abuse promtool-test clean

setup: $(DENO)

$(LOCAL_DENO):
	mkdir -p $(TOOLS)
	npm install --prefix $(TOOLS) --no-save --no-audit --no-fund deno@$(DENO_VERSION)
	$(LOCAL_DENO) --version

fmt: setup
	$(DENO) fmt

lint: setup
	$(DENO) lint

check: setup
	$(DENO) task check

unit: setup
	$(DENO) task test

# The README's test command: formatting, lint, types, then every test.
test: setup
	$(DENO) fmt --check
	$(DENO) lint
	$(DENO) task check
	$(DENO) task test

ci: test

run: setup
	$(DENO) task start

build: setup
	$(DENO) task compile

bench: setup
	$(DENO) task bench

# Loopback HTTP benchmark with wrk (installed from Debian when missing).
bench-http: setup
	@command -v wrk >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq wrk) || sudo sh -c 'apt-get update -qq && apt-get install -y -qq wrk'
	$(DENO) run -A bench/http.ts

# Dataset 4x the memory budget (1 GiB vs 256 MiB; ARGS="--gb 2" for more).
bench-large: setup
	$(DENO) run -A bench/large.ts $(ARGS)

# Event-loop stalls and get latency while a compaction rewrites every table.
bench-stall: setup
	$(DENO) run -A bench/stall.ts $(ARGS)

# Reliability suites (tests/fault/, see README "Reliability"): the long runs.
FAULT_PERMS := --allow-read --allow-write --allow-env --allow-run --allow-net --allow-sys

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
# Connect reads and watches, cross-site requests; /health within 1 s and RSS
# under SHALE_ABUSE_RSS_MIB (2048) throughout.
abuse: setup
	$(DENO) run $(FAULT_PERMS) tests/fault/abuse.ts

clean:
	rm -rf dist data bench/out
