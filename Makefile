# meshproof — see README.md. Two commands matter to a newcomer:
#   make scenario NAME=fanout-load   run one scenario, report in the terminal
#   make test                        the test suite (unit + e2e), as CI runs it
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO        ?= go
BACKEND   ?= auto
NAME      ?= fanout-load
TOOLS     := $(CURDIR)/.cache/tools
export PATH := $(TOOLS):$(PATH)
export TESTCONTAINERS_RYUK_DISABLED := true

PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.1
GRPC_GATEWAY_VERSION       := v2.33.0
ACTIONLINT_VERSION         := v1.7.12
GOLANGCI_LINT_VERSION      := v2.15.0

.PHONY: help
help: ## list targets
	@grep -E '^[a-zA-Z_/.-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-22s %s\n", $$1, $$2}'

# ---- proto ---------------------------------------------------------------
$(TOOLS)/.protoc-plugins-$(PROTOC_GEN_GO_VERSION)-$(PROTOC_GEN_GO_GRPC_VERSION)-$(GRPC_GATEWAY_VERSION):
	@command -v protoc >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler >/dev/null)
	GOBIN=$(TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	GOBIN=$(TOOLS) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	GOBIN=$(TOOLS) $(GO) install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway@$(GRPC_GATEWAY_VERSION)
	GOBIN=$(TOOLS) $(GO) install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2@$(GRPC_GATEWAY_VERSION)
	@touch $@

.PHONY: proto
proto: $(TOOLS)/.protoc-plugins-$(PROTOC_GEN_GO_VERSION)-$(PROTOC_GEN_GO_GRPC_VERSION)-$(GRPC_GATEWAY_VERSION) ## regenerate proto/greeting/v3 code
	cd proto && protoc -I . -I third_party -I /usr/include \
	  --go_out=. --go_opt=paths=source_relative \
	  --go-grpc_out=. --go-grpc_opt=paths=source_relative \
	  --grpc-gateway_out=. --grpc-gateway_opt=paths=source_relative,generate_unbound_methods=true \
	  --openapiv2_out=. \
	  greeting/v3/greeting.proto

.PHONY: proto-check
proto-check: proto ## fail when the committed generated code is stale
	@test -z "$$(git status --porcelain -- proto/)" || (git status --porcelain -- proto/; echo "proto/: generated code is stale; run 'make proto' and commit" >&2; exit 1)

# ---- set-up ----------------------------------------------------------------
# The local backend runs the real programs from Debian's packages. `make deps`
# installs what is missing, so both README commands work on a fresh machine.
# meshproof runs private instances of these servers: a policy-rc.d keeps the
# packages from starting system-wide ones while they install.
DEBIAN_PACKAGES := rabbitmq-server prometheus postgresql protobuf-compiler libprotobuf-dev debootstrap chromium
.PHONY: deps
deps: ## install the Debian packages the local backend and proto need (root)
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  status=$$?; rm -f /usr/sbin/policy-rc.d; exit $$status; \
	fi

# ---- build -----------------------------------------------------------------
GO_SOURCES := $(shell find . -name '*.go' -not -path './compose/standins/*' -not -path './.cache/*' 2>/dev/null) go.mod go.sum

bin/greeting: $(GO_SOURCES)
	CGO_ENABLED=0 $(GO) build -trimpath -o $@ ./cmd/greeting

bin/meshproof: $(GO_SOURCES)
	CGO_ENABLED=0 $(GO) build -trimpath -o $@ ./cmd/meshproof

bin/greeting-defects: $(GO_SOURCES)
	CGO_ENABLED=0 $(GO) build -tags defects -trimpath -o $@ ./cmd/greeting

.PHONY: build
build: bin/greeting bin/meshproof ## build the mesh binary and the harness CLI

# ---- run -------------------------------------------------------------------
.PHONY: scenario
scenario: deps build ## run scenarios/$(NAME).yaml (BACKEND=auto|docker|local)
	./bin/meshproof run scenarios/$(NAME).yaml --backend $(BACKEND) $(ARGS)

.PHONY: up down gc images
up: deps build ## bring the whole environment up and leave it running; prints URLs
	./bin/meshproof up --backend $(BACKEND) --detach
down: build ## stop what `make up` started
	./bin/meshproof down --all
gc: build ## remove whatever crashed runs left behind
	./bin/meshproof gc
images: deps build ## build the offline stand-in images (Docker, no registry)
	./bin/meshproof images

# ---- bench -----------------------------------------------------------------
# Peers are built from the Go module proxy as binaries, cached by version, so
# their code never enters this module's go.mod.
HEY_VERSION := v0.1.5
GHZ_VERSION := v0.121.0
VEGETA_VERSION := v12.13.0
HEY := $(TOOLS)/hey-$(HEY_VERSION)/hey
GHZ := $(TOOLS)/ghz-$(GHZ_VERSION)/ghz
VEGETA := $(TOOLS)/vegeta-$(VEGETA_VERSION)/vegeta

$(HEY):
	GOBIN=$(dir $@) $(GO) install github.com/rakyll/hey@$(HEY_VERSION)
$(GHZ):
	GOBIN=$(dir $@) $(GO) install github.com/bojand/ghz/cmd/ghz@$(GHZ_VERSION)
# vegeta is the open-model peer (constant arrival rate, like our engine).
$(VEGETA):
	GOBIN=$(dir $@) $(GO) install github.com/tsenart/vegeta/v12@$(VEGETA_VERSION)

.PHONY: bench
bench: deps build $(HEY) $(GHZ) $(VEGETA) ## measure the engine against hey, ghz, wrk and vegeta; writes bench/RESULTS.md
	@command -v wrk >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null)
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/bench ./bench/cmd/bench
	./bin/bench -hey $(HEY) -ghz $(GHZ) -wrk wrk -vegeta $(VEGETA)

# The traces item judges traces captured from a real mesh: one short
# fanout-load run on the local backend (its assertions may fail on a busy
# machine; only its traces are kept), whose traces.json becomes the
# committed fixture with a few mutated copies (bench fixture checks them).
FIXTURE_RUN := bench/out/fixture-run
.PHONY: bench-fixture
bench-fixture: build ## regenerate bench/testdata/fanout-traces.json.gz from a real fanout-load run
	rm -rf $(FIXTURE_RUN)
	-./bin/meshproof run scenarios/fanout-load.yaml --backend local --set load.duration=5s --out $(FIXTURE_RUN)
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/bench ./bench/cmd/bench
	./bin/bench fixture -in "$$(ls -d $(FIXTURE_RUN)/fanout-load/*/ | tail -n 1)traces.json"

# A shipped scenario that passes once may still be flaky. `make soak` runs
# every one of them RUNS times in a row and stops at the first red run,
# with its log; each run's output goes to $(SOAK_DIR).
RUNS     ?= 5
SOAK_DIR ?= artifacts/soak
.PHONY: soak
soak: deps build ## run every shipped scenario RUNS times in a row (default 5; BACKEND=...); stops at the first red run
	@mkdir -p $(SOAK_DIR); began=$$(date +%s); \
	for n in $$(seq 1 $(RUNS)); do for f in scenarios/*.yaml; do \
	  name=$$(basename $$f .yaml); log=$(SOAK_DIR)/$$name-$$n.log; t0=$$(date +%s); \
	  if ./bin/meshproof run $$f --backend $(BACKEND) --out $(SOAK_DIR)/runs > $$log 2>&1; then \
	    echo "run $$n/$(RUNS) $$name: pass ($$(( $$(date +%s) - t0 )) s)"; \
	  else rc=$$?; echo "run $$n/$(RUNS) $$name: exit $$rc ($$(( $$(date +%s) - t0 )) s); last lines of $$log:"; tail -n 40 $$log; exit 1; fi; \
	done; done; \
	echo "soak: every shipped scenario passed $(RUNS) runs in a row on $(BACKEND) ($$(( $$(date +%s) - began )) s)"

# ---- test ------------------------------------------------------------------
UNIT_PACKAGES = $$($(GO) list ./... | grep -v /e2e)
.PHONY: test unit e2e vet defects
defects: build ## every catalogued defect must be caught live (BACKEND=local|docker|both)
	MESHPROOF_DEFECTS_BACKEND=$(BACKEND) $(GO) test -count=1 -timeout 60m -run TestDefects -v ./e2e
vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.'))" || (gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.'); echo "gofmt needed" >&2; exit 1)
	$(GO) vet ./...
	$(GO) vet -tags defects ./mesh/... ./cmd/greeting
unit: build ## unit and integration tests of the packages (-race)
	$(GO) test -race -count=1 -timeout 20m $(UNIT_PACKAGES)
e2e: build ## every scenario end to end (BACKEND=local|docker|both)
	MESHPROOF_BACKEND=$(BACKEND) $(GO) test -count=1 -timeout 80m -v ./e2e
$(TOOLS)/actionlint-$(ACTIONLINT_VERSION):
	GOBIN=$(TOOLS)/tmp-actionlint $(GO) install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)
	mv $(TOOLS)/tmp-actionlint/actionlint $@ && rmdir $(TOOLS)/tmp-actionlint

# golangci-lint is built from the module proxy into the tools cache, by
# version, like the other tools; its config is .golangci.yml.
GOLANGCI_LINT := $(TOOLS)/golangci-lint-$(GOLANGCI_LINT_VERSION)/golangci-lint
$(GOLANGCI_LINT):
	GOBIN=$(dir $@) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
.PHONY: lint
lint: $(GOLANGCI_LINT) ## golangci-lint (unused, funlen, dupl, gocritic, modernize, ...)
	$(GOLANGCI_LINT) run ./...

# docker-compose.yml must stay valid for people running compose themselves;
# the upstream-image path cannot run here (no registry), so it is checked
# by the compose tool's own validation.
.PHONY: compose-check
compose-check: ## validate docker-compose.yml with the compose tool
	@if docker compose version >/dev/null 2>&1; then docker compose config -q; \
	elif command -v docker-compose >/dev/null; then docker-compose config -q; \
	else echo "compose-check: no compose tool installed; skipped" >&2; fi

.PHONY: lint-workflows
lint-workflows: $(TOOLS)/actionlint-$(ACTIONLINT_VERSION) ## check .github/workflows with actionlint
	$(TOOLS)/actionlint-$(ACTIONLINT_VERSION) .github/workflows/*.yml

test: deps vet lint lint-workflows compose-check proto-check unit e2e ## everything CI runs
