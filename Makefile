# rpt: make help lists the targets.
GO ?= go
# bash for pipefail: a test run piped into its summary still fails when a test fails.
SHELL := /bin/bash
PKGS := ./...
export RPT_TEST_MYSQL_DSN ?= mysql://root@127.0.0.1:3306/

.PHONY: help build build-odbc test-odbc install image image-odbc deploy-check test test-unit test-integration bench bench-river bench-report chaos fuzz fuzz-short lint verify

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

build: ## build bin/rpt, its version stamped from git (rpt version)
	$(GO) build -trimpath -ldflags "-X main.version=$(VERSION)" -o bin/rpt ./cmd/rpt

build-odbc: ## bin/rpt-odbc: the ODBC build (cgo, -tags odbc; needs unixodbc-dev), for odbc sources such as Plex's ODBC data source
	CGO_ENABLED=1 $(GO) build -trimpath -tags odbc -ldflags "-X main.version=$(VERSION)" -o bin/rpt-odbc ./cmd/rpt

test-odbc: ## the source tests with -tags odbc, against the local MariaDB through its ODBC driver (odbc-mariadb)
	CGO_ENABLED=1 $(GO) test -count=1 -tags odbc ./internal/source/...

IMAGE ?= registry.local/rpt
image: ## the container image (deploy/Dockerfile: static, non-root), tagged $(IMAGE):$(VERSION)
	docker build -f deploy/Dockerfile --build-arg VERSION=$(VERSION) -t $(IMAGE):$(VERSION) .

image-odbc: ## the glibc image for the ODBC build (deploy/Dockerfile.odbc), tagged $(IMAGE):$(VERSION)-odbc
	docker build -f deploy/Dockerfile.odbc --build-arg VERSION=$(VERSION) -t $(IMAGE):$(VERSION)-odbc .

deploy-check: ## deploy/'s tests: the image's build flags, the non-root run, every overlay rendered and checked
	$(GO) test -count=1 -v ./deploy/
	cd deploy/manifests && $(GO) test -count=1 ./...

install: ## go install rpt into $(go env GOPATH)/bin (put that on your PATH), its version stamped as by build
	$(GO) install -trimpath -ldflags "-X main.version=$(VERSION)" ./cmd/rpt

# The packages where goroutines and processes meet also run under the race detector
# (the rest would only be slower: the CLI scripts and demo loads are process- and I/O-bound).
RACE_PKGS := ./agent/... ./internal/queue/... ./internal/notify/... ./internal/results/... ./internal/source/... ./internal/jobs/... ./internal/api/... ./crontab/... ./e2e/...

test: ## every test: unit, SQLite, MariaDB (RPT_TEST_MYSQL_DSN), CLI end-to-end; race detector where it matters; ends with how many skipped and why
	$(GO) vet $(PKGS)
	set -o pipefail; $(GO) test -count=1 -timeout 20m -json $(PKGS) | awk -f .ci/testsummary.awk
	$(GO) test -race -count=1 -timeout 20m $(RACE_PKGS)

test-unit: ## tests that need no server (MariaDB tests skip)
	set -o pipefail; RPT_TEST_MYSQL_DSN= $(GO) test -count=1 -json $(PKGS) | awk -f .ci/testsummary.awk

test-integration: ## only the tests that talk to MariaDB
	RPT_TEST_REQUIRE_MYSQL=1 $(GO) test -race -count=1 -run 'MySQL|MariaDB' $(PKGS)

bench: ## benchmarks (compare ratios from one run; the machine is shared)
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

chaos: ## chaos suite at full size (~15k jobs, 60 faults incl. broker restarts, ~3 min), rolling update, cancel, one-minute queue outage, source outage; figures in the output
	RPT_TEST_REQUIRE_MYSQL=1 RPT_CHAOS=full $(GO) test -count=1 -timeout 30m -v -run '^(TestChaos|TestRollingUpdateLosesNothing|TestStopKillsServerQuery|TestQueueOutage|TestSourceOutage)$$' ./e2e/

bench-river: ## bench/river.sh: rpt beside River (the River benchmark program named by RIVERBENCH, local PostgreSQL) in alternating rounds, ratios with the load
	bench/river.sh

bench-report: ## bench/run.sh: the figures of BENCHMARKS.md (RPT_BENCH_BIG=1 for 1M jobs and a 5M-row result)
	bench/run.sh

FUZZTIME ?= 30s
fuzz: ## run every fuzz target for FUZZTIME each (make fuzz FUZZTIME=10s)
	$(GO) test ./reportdefs -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)
	$(GO) test ./reportdefs -run '^$$' -fuzz '^FuzzCatalogue$$' -fuzztime $(FUZZTIME)
	$(GO) test ./reportdefs -run '^$$' -fuzz '^FuzzResolve$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/config -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/config -run '^$$' -fuzz '^FuzzCatalogue$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/dsn -run '^$$' -fuzz '^FuzzRedact$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/dsn -run '^$$' -fuzz '^FuzzScheme$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/dsn -run '^$$' -fuzz '^FuzzMySQL$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/dsn -run '^$$' -fuzz '^FuzzODBC$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/source -run '^$$' -fuzz '^FuzzBind$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/results -run '^$$' -fuzz '^FuzzOpen$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/results -run '^$$' -fuzz '^FuzzRows$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/source -run '^$$' -fuzz '^FuzzCheckStatement$$' -fuzztime $(FUZZTIME)
	$(GO) test ./crontab -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)

fuzz-short: ## the parsers' fuzz targets for a few seconds each (CI)
	$(GO) test ./reportdefs -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 5s
	$(GO) test ./reportdefs -run '^$$' -fuzz '^FuzzResolve$$' -fuzztime 5s
	$(GO) test ./internal/config -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 5s
	$(GO) test ./internal/dsn -run '^$$' -fuzz '^FuzzMySQL$$' -fuzztime 5s
	$(GO) test ./internal/dsn -run '^$$' -fuzz '^FuzzODBC$$' -fuzztime 5s
	$(GO) test ./internal/source -run '^$$' -fuzz '^FuzzBind$$' -fuzztime 5s
	$(GO) test ./internal/source -run '^$$' -fuzz '^FuzzCheckStatement$$' -fuzztime 5s
	$(GO) test ./crontab -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 5s

lint: ## gofmt, go vet, staticcheck
	@test -z "$$(gofmt -l .)" || (gofmt -l .; exit 1)
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@latest $(PKGS)

verify: ## gofmt and go mod tidy leave no diff
	@test -z "$$(gofmt -l .)" || (gofmt -l .; exit 1)
	$(GO) mod tidy && git diff --exit-code go.mod go.sum
