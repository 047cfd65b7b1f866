# rpt: make help lists the targets.
GO ?= go
PKGS := ./...
export RPT_TEST_MYSQL_DSN ?= mysql://root@127.0.0.1:3306/

.PHONY: help build test test-unit test-integration bench lint verify

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

build: ## build bin/rpt
	$(GO) build -o bin/rpt ./cmd/rpt

test: ## every test: unit, SQLite, MariaDB (RPT_TEST_MYSQL_DSN), CLI end-to-end
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

test-unit: ## tests that need no server (MariaDB tests skip)
	RPT_TEST_MYSQL_DSN= $(GO) test -count=1 $(PKGS)

test-integration: ## only the tests that talk to MariaDB
	RPT_TEST_REQUIRE_MYSQL=1 $(GO) test -race -count=1 -run 'MySQL|MariaDB' $(PKGS)

bench: ## benchmarks (compare ratios from one run; the machine is shared)
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

lint: ## gofmt, go vet, staticcheck
	@test -z "$$(gofmt -l .)" || (gofmt -l .; exit 1)
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@latest $(PKGS)

verify: ## gofmt and go mod tidy leave no diff
	@test -z "$$(gofmt -l .)" || (gofmt -l .; exit 1)
	$(GO) mod tidy && git diff --exit-code go.mod go.sum
