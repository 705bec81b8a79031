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
	@git diff --exit-code -- proto/ || (echo "proto/: generated code is stale; run 'make proto' and commit" >&2; exit 1)
