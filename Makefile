# Souk — make help lists the targets.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

STACK := internal/devenv/stack.sh
# The tests' own PostgreSQL and Redis, apart from `make up`'s.
TEST_STACK := SOUK_DATA_DIR=$(CURDIR)/.data/test SOUK_PG_PORT=55433 SOUK_REDIS_PORT=56380 \
	SOUK_PG_OPTS="-c fsync=off -c synchronous_commit=off -c full_page_writes=off \
	-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track_planning=on" \
	SOUK_PG_OPTS_CITUS="-c shared_preload_libraries=citus,pg_stat_statements"
TEST_ENV := SOUK_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:55433/postgres?sslmode=disable" \
	SOUK_TEST_REDIS_ADDR=127.0.0.1:56380 SOUK_TEST_REDIS_CLUSTER=127.0.0.1:46391,127.0.0.1:46392,127.0.0.1:46393 \
	SOUK_TEST_CITUS_URL="postgres://postgres@127.0.0.1:55440/postgres?sslmode=disable"

.PHONY: help
help: ## Describe the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

.PHONY: up
up: ## Run the whole system: Postgres, Redis, both services, demo data; Ctrl-C stops it
	internal/devenv/up.sh

.PHONY: migrate
migrate: ## Apply schema migrations to SOUK_DATABASE_URL (default: make up's database, started if needed)
	@if [ -z "$${SOUK_DATABASE_URL:-}" ]; then $(STACK) start; fi
	go run ./internal/devenv/migrate

.PHONY: down
down: ## Stop what make up started and delete its data
	$(STACK) purge

.PHONY: test
test: ## Run every test (unit, integration, end-to-end, the dashboard in Chromium) with -race on private Postgres and Redis
	$(STACK) install-citus
	$(TEST_STACK) $(STACK) start
	$(TEST_STACK) $(STACK) cluster
	$(TEST_STACK) $(STACK) citus
	$(STACK) browser
	redis-cli -p 56380 flushall >/dev/null
	$(TEST_ENV) go test -race -count=1 -timeout 20m ./...
	@echo "--- the store, deadline, relay and end-to-end tests again, on Citus (README: Souk on Citus)"
	SOUK_TEST_ON_CITUS=1 $(TEST_ENV) go test -race -count=1 -timeout 25m -skip '$(NOT_ON_CITUS)' \
		./internal/postgres ./internal/deadline ./internal/relay ./internal/e2e

# Left out of the Citus run: tests of plain PostgreSQL itself (its plan
# cache and index choice; faults injected by a trigger, which Citus does
# not run on a distributed table; a pg_dump of the record, which on Citus
# holds no rows: they are on the workers), and tests that start servers
# of their own whatever the run (the randomized fault test has its Citus
# twin, TestRandomFaultsOnCitus, in the first run).
NOT_ON_CITUS := ^(TestReadsAreNotReplanned|TestPagesAreNotReplanned|TestRelayIsNotReplanned|TestBigStorePagesReadTheirPage|TestPlacesAreReadInOrder|TestLostRacesAreRetriedThenConflicts|$\
	TestCrashBetweenAuthorizationAndCommit|TestCardNumbersAreNeverKept|TestCheckoutMakesNewIDsWhenOneIsTaken|$\
	TestRandomFaults|TestRandomFaultsOnCitus|TestCitusWorkerLostIsTransient|TestTransientFaultsAreUnavailable|TestReadiness)$$

.PHONY: faults
faults: ## Run the randomized fault test alone, printing its seed and counts (SOUK_FAULT_SEED replays)
	$(TEST_STACK) $(STACK) start
	$(TEST_ENV) go test -race -count=1 -run '^TestRandomFaults$$' -v ./internal/e2e | grep -v '^\s*testenv.go'

.PHONY: faults-citus
faults-citus: ## Run the randomized fault test on a private Citus cluster alone (a worker restarted among the faults)
	$(STACK) install-citus
	$(TEST_STACK) $(STACK) start
	$(TEST_STACK) $(STACK) citus
	$(TEST_ENV) go test -race -count=1 -run '^TestRandomFaultsOnCitus$$' -v ./internal/e2e | grep -v '^\s*testenv.go'

.PHONY: test-down
test-down: ## Stop the tests' Postgres and Redis
	$(TEST_STACK) $(STACK) stop

.PHONY: bench
bench: ## Measure Souk against this machine's limits on a stack of its own (BENCH_ARGS="-burst 20000 -duration 3s"); writes .data/bench/results.md
	go run ./internal/devenv/bench $(BENCH_ARGS)

.PHONY: bench-go
bench-go: ## The Go benchmarks (checkout + payment, event latency, the relay) on the tests' Postgres and Redis
	$(TEST_STACK) $(STACK) start
	$(TEST_ENV) go test -run '^$$' -bench . -benchmem -count=1 ./...

.PHONY: build
build: ## Build both services into bin/
	go build -o bin/ ./buyer-svc ./seller-svc

.PHONY: generate
generate: ## Regenerate gen/ from proto/ (offline: buf and plugins are Go tools)
	go tool buf generate

.PHONY: lint
lint: ## go mod tidy, buf lint, buf format, buf breaking (against the previous commit), go vet, govulncheck, gofmt
	go mod tidy -diff
	go tool buf lint
	go tool buf format -d --exit-code
	@if git rev-parse -q --verify HEAD~1 >/dev/null; then \
		echo "go tool buf breaking --against '.git#ref=HEAD~1'"; go tool buf breaking --against '.git#ref=HEAD~1'; \
	else echo "buf breaking: this clone has no previous commit (shallow); nothing to compare with"; fi
	go vet ./...
	@if getent hosts vuln.go.dev >/dev/null; then $(MAKE) --no-print-directory vulncheck; \
	else echo "govulncheck: vuln.go.dev is not reachable from this machine; run make vulncheck where it is"; fi
	test -z "$$(gofmt -l $$(git ls-files '*.go' | grep -v '^gen/'))" || { gofmt -l $$(git ls-files '*.go' | grep -v '^gen/'); exit 1; }

.PHONY: vulncheck
vulncheck: ## govulncheck (pinned as a Go tool) against the Go vulnerability database
	go tool govulncheck ./...

.PHONY: checkgenerate
checkgenerate: generate ## Fail if gen/ is not what the protos generate
	test -z "$$(git status --porcelain -- gen/)" || { git status --porcelain -- gen/; echo "gen/ is stale: run make generate"; exit 1; }
