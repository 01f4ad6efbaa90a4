# usersync — everyday targets. `make run` for a laptop, `make test` for CI.
#
# The Temporal CLI (dev server + Web UI) is built from source into ./bin, so
# nothing but Go is needed; the first build takes several minutes.

GO               ?= go
TEMPORAL_VERSION ?= v1.5.1
# The Temporal server the CLI v1.5.1 embeds in its dev server, built the
# same way for the cluster test (make test-cluster) and docker-compose.yml's
# image tags.
TEMPORAL_SERVER_VERSION ?= v1.29.1
# workflowcheck has its own releases under the SDK's contrib/tools; v0.6.0
# is the newest that predates go.temporal.io/sdk v1.51.0 in go.mod.
WORKFLOWCHECK_VERSION ?= v0.6.0
STATICCHECK_VERSION   ?= v0.8.2
BIN              := $(CURDIR)/bin
VERSION          ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS          := -X main.version=$(VERSION)

.PHONY: all build release run test test-cluster bench fuzz tools temporal-server browser lint fmt clean help

all: build

help:
	@echo "make run    build and start Temporal dev server + usersync dev (API on :8080, UI on :8233)"
	@echo "make test   run all tests (needs Postgres on 127.0.0.1:5432 and bin/temporal)"
	@echo "make bench  end-to-end benchmark (SIZES=10000,100000 and LDAP_SIZES=100000 by default) into bench/results"
	@echo "make fuzz   run each fuzz target for FUZZTIME (default $(FUZZTIME))"
	@echo "make build  build bin/usersync"
	@echo "make release  build bin/release/usersync as shipped: static, stripped, -trimpath"
	@echo "make tools  build bin/temporal ($(TEMPORAL_VERSION))"
	@echo "make temporal-server  build bin/temporal-server and bin/temporal-sql-tool ($(TEMPORAL_SERVER_VERSION)); a long build"
	@echo "make test-cluster  the integration test on a real Temporal cluster (PostgreSQL, four services)"
	@echo "make browser  install Debian's chromium for the admin page's browser test, when missing (root)"
	@echo "make lint   gofmt, go vet, go mod tidy -diff, workflowcheck, staticcheck, go test -race on some packages"

## build: the usersync binary. Always rebuilt; go's cache makes it cheap.
build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/usersync ./cmd/usersync

## release: the production binary as the Dockerfile builds it: static
## (pure Go drivers), the time zone database inside (daily schedules'
## zones), stripped (-s -w) and without the build machine's paths.
release:
	CGO_ENABLED=0 $(GO) build -trimpath -tags timetzdata -ldflags '-s -w $(LDFLAGS)' -o $(BIN)/release/usersync ./cmd/usersync

## tools: the Temporal CLI, only when missing.
tools: $(BIN)/temporal

$(BIN)/temporal:
	GOBIN=$(BIN) $(GO) install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_VERSION)

## temporal-server: the Temporal server and its SQL schema tool, only when
## missing, built from source like the CLI (no release download); the
## cluster test runs them from deploy/temporal. A cold build takes most of
## an hour on 2 busy cores, minutes on a warm cache.
temporal-server: $(BIN)/temporal-server $(BIN)/temporal-sql-tool

$(BIN)/temporal-server $(BIN)/temporal-sql-tool &:
	GOBIN=$(BIN)/.temporal-server $(GO) install go.temporal.io/server/cmd/server@$(TEMPORAL_SERVER_VERSION) go.temporal.io/server/cmd/tools/sql@$(TEMPORAL_SERVER_VERSION)
	mv $(BIN)/.temporal-server/server $(BIN)/temporal-server
	mv $(BIN)/.temporal-server/sql $(BIN)/temporal-sql-tool
	rmdir $(BIN)/.temporal-server

## test-cluster: usersync on a real Temporal cluster (integration/cluster_test.go).
test-cluster: temporal-server
	$(GO) test -count=1 -timeout 20m -run '^TestCluster$$' ./integration

## The linters of `make lint`, each only when missing.
$(BIN)/workflowcheck:
	GOBIN=$(BIN) $(GO) install go.temporal.io/sdk/contrib/tools/workflowcheck@$(WORKFLOWCHECK_VERSION)

$(BIN)/staticcheck:
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

## browser: Debian's chromium, which the admin page's browser test drives
## (integration/admin_browser_test.go), only when missing. Needs root and
## an apt source; under CI the test fails without it.
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update && apt-get install -y chromium; }

run: build tools
	./scripts/run.sh

## test: starts no service itself; the tests start what they need
## (a Temporal dev server from bin/temporal, databases on the local Postgres).
test: tools
	$(GO) test -count=1 -p 2 -timeout 25m ./...

## bench: cmd/usersync-bench (a command of its own, so that the production
## binary carries neither the bench nor gonum/plot): full, unchanged and
## incremental syncs of simulated Entra ID tenants of SIZES users through
## Temporal into PostgreSQL (DATABASE_URL, else the local server: a
## throwaway database), with bin/usersync's worker, beside a raw baseline;
## then of OpenLDAP directories of LDAP_SIZES users (Debian's slapd and
## slapadd; LDAP_SIZES=0 skips them); the report goes to
## bench/results/<date>.md and .png.
SIZES ?= 10000,100000
LDAP_SIZES ?= 100000
# LATENCY delays every request to the simulated Graph tenant (e.g. 300ms).
LATENCY ?= 0s
bench: build tools
	$(GO) build -o $(BIN)/usersync-bench ./cmd/usersync-bench
	$(BIN)/usersync-bench --sizes $(SIZES) --ldap-sizes $(LDAP_SIZES) --latency $(LATENCY) --temporal-cli $(BIN)/temporal --usersync $(BIN)/usersync

## fuzz: each fuzz target in turn (go test -fuzz takes one target and one
## package at a time). Their seed corpora (testdata/fuzz) run in `make test`;
## a crash found here lands in testdata/fuzz as a new seed: commit it.
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run XXX -fuzz '^FuzzUsers$$' -fuzztime $(FUZZTIME) ./provider/csv
	$(GO) test -run XXX -fuzz '^FuzzProfile$$' -fuzztime $(FUZZTIME) ./profile
	$(GO) test -run XXX -fuzz '^FuzzDecodeUsers$$' -fuzztime $(FUZZTIME) ./provider/azure
	$(GO) test -run XXX -fuzz '^FuzzUsersCursor$$' -fuzztime $(FUZZTIME) ./provider/azure
	$(GO) test -run XXX -fuzz '^FuzzUserPage$$' -fuzztime $(FUZZTIME) ./provider/okta
	$(GO) test -run XXX -fuzz '^FuzzCursors$$' -fuzztime $(FUZZTIME) ./provider/okta

## lint: gofmt, go vet, a tidy go.mod, workflowcheck on the workflow code
## (only deterministic code may live in workflows/), staticcheck, and the
## race detector on the packages that run goroutines of their own, with
## -short so that no test needing a server runs there (make test runs
## them); keepAlive's heartbeat goroutine runs only inside a real activity,
## hence its own test on a dev server (skipped locally without bin/temporal).
RACE_PACKAGES ?= ./api ./metrics/... ./internal/reqtable ./provider/okta ./provider/azure ./idpsim/...
lint: $(BIN)/workflowcheck $(BIN)/staticcheck
	@out="$$(gofmt -l .)"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) mod tidy -diff
	$(BIN)/workflowcheck ./workflows/...
	$(BIN)/staticcheck ./...
	$(GO) test -race -short -count=1 $(RACE_PACKAGES)
	$(GO) test -race -count=1 -run '^(TestKeepAlive|TestReadAhead)' ./activities

fmt:
	gofmt -w .

clean:
	rm -rf $(BIN)/usersync $(BIN)/usersync-bench $(BIN)/release
