# rfenv's build, test and release targets. `make test` is what CI runs.
SHELL := /bin/bash
GO ?= go
BIN ?= bin/rfenv
BASE_IMAGE ?= rfenv-python:bookworm
export RFENV_BASE_IMAGE := $(BASE_IMAGE)
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -s -w -X github.com/rfenv/rfenv/cmd.version=$(VERSION) -X github.com/rfenv/rfenv/cmd.commit=$(COMMIT) -X github.com/rfenv/rfenv/cmd.date=$(DATE)
E2E_PKGS := ./...
TEST_FLAGS ?= -count=1 -timeout 30m
GORELEASER_VERSION ?= v2.15.1
# Debian's Python: its python3-pytest and python3-pytest-asyncio run the Python package's tests.
PYTHON ?= /usr/bin/python3
# GOOS/GOARCH:wheel platform tag of each wheel `make wheels` builds.
WHEEL_PLATFORMS := linux/amd64:manylinux2014_x86_64 linux/arm64:manylinux2014_aarch64 darwin/amd64:macosx_10_12_x86_64 darwin/arm64:macosx_11_0_arm64

.PHONY: all build test test-unit test-e2e test-k8s k8s-binaries test-shim test-python wheels bench demo lint completions check-completions base-image snapshot clean

all: build

## build: the lean front $(BIN) (tag rfenvlean, cmd/front: runs `rfenv call` itself, so that a call
## starts fast) and the full binary rfenv-full beside it, which the front hands everything else to
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(dir $(BIN))rfenv-full .
	CGO_ENABLED=0 $(GO) build -trimpath -tags rfenvlean -ldflags '$(LDFLAGS)' -o $(BIN) .

## base-image: the local Python image tests and the demo build FROM (debootstrap + docker import; idempotent)
base-image:
	RFENV_BASE_IMAGE=$(BASE_IMAGE) ./scripts/base-image.sh

## test: everything CI runs — lint, the shim's Python tests, the race detector on what runs without
## Docker and on the pool, then unit and end-to-end Go tests,
## and the Python package's tests
## The Go tests run one package at a time (-p 1): packages that build images and start containers
## at once on a loaded 2-core machine starved one daemon (a container create past 2 minutes, a
## BuildKit dial timing out, seen in CI); every test binary is compiled first, in parallel.
test: lint base-image test-shim test-race
	$(GO) test $(TEST_FLAGS) -run '^$$' ./... >/dev/null
	$(GO) test $(TEST_FLAGS) -p 1 ./...
	$(MAKE) test-python

## test-race: the race detector on every test that needs no Docker daemon, and on the pool package
test-race:
	$(GO) test $(TEST_FLAGS) -race -short -run '^(Test|Fuzz)' ./...
	$(GO) test $(TEST_FLAGS) -race ./pkg/pool/

## test-unit: tests that need no Docker daemon (checked with DOCKER_HOST=unix:///nonexistent); the
## runnable Examples start containers, so they are left to `make test`
test-unit:
	$(GO) test $(TEST_FLAGS) -short -run '^(Test|Fuzz)' ./...

## test-e2e: only the end-to-end tests (real Docker daemon, real images)
test-e2e: base-image
	$(GO) test $(TEST_FLAGS) -run 'E2E|Example' ./...

## test-k8s: the Kubernetes backend's tests and benchmarks on a real single-node cluster (root). The
## cluster is built from hack/k8s (its own module) and Debian packages; builds are cached in
## $$HOME/.cache/rfenv-k8s (RFENV_K8S_CACHE), so only the first run compiles Kubernetes (minutes).
test-k8s: base-image k8s-binaries
	@command -v docker-registry >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry >/dev/null; }
	RFENV_TEST_K8S=1 $(GO) test $(TEST_FLAGS) -v -run 'K8s' -bench 'K8s' -benchtime 1x ./pkg/kube/

## k8s-binaries: build the test cluster's Kubernetes binary into the cache (cold: minutes)
k8s-binaries:
	RFENV_TEST_K8S=1 $(GO) test -count=1 -timeout 45m -run TestBuildBinaries ./pkg/testutil/kubecluster/

test-shim:
	python3 -m unittest discover -s shim -p 'test_*.py'

## test-python: the Python package (python/) with pytest against a real rfenv serve, the real Docker
## daemon and the test sshd (needs Debian's python3-pytest and python3-pytest-asyncio)
test-python: build base-image
	$(GO) build -o bin/testsshd ./pkg/testutil/sshd/testsshd
	cd python && RFENV_BIN=$(CURDIR)/$(BIN) RFENV_TESTSSHD=$(CURDIR)/bin/testsshd $(PYTHON) -m pytest -q

## wheels: platform wheels of the Python package that carry the rfenv binary (dist/wheels/)
wheels:
	@set -e; for p in $(WHEEL_PLATFORMS); do \
		goos_arch=$${p%%:*}; plat=$${p#*:}; goos=$${goos_arch%/*}; goarch=$${goos_arch#*/}; \
		bin=dist/wheel-bin/$$goos-$$goarch/rfenv; \
		CGO_ENABLED=0 GOOS=$$goos GOARCH=$$goarch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $$bin . ; \
		$(PYTHON) python/_build/backend.py --out dist/wheels --binary $$bin --plat $$plat; \
	done

## bench: benchmarks; writes BENCHMARKS.md (BENCH_FLAGS, e.g. '-duration 10s -runs 5' or '-items 3,4'; see go run ./bench -h)
bench: base-image build
	$(GO) run ./bench -out BENCHMARKS.md -bin $(BIN) $(BENCH_FLAGS)

## reliability: the hardening tests (faults, bad input, concurrency, security) on the real daemon;
## each passing test writes its rows, collated into RELIABILITY.md
reliability: base-image
	@rows=$$(mktemp) && trap 'rm -f "$$rows"' EXIT && \
	RFENV_RELIABILITY_OUT=$$rows $(GO) test $(TEST_FLAGS) -run 'Hardening' ./cmd/ && \
	$(GO) run ./pkg/testutil/reliability/collate -in "$$rows" -out RELIABILITY.md \
		-commit "$$(git rev-parse HEAD)$$(git diff --quiet HEAD -- . ':!RELIABILITY.md' || echo ' with uncommitted changes')" \
		-machine "$$(uname -sr), Docker $$(docker version -f '{{.Server.Version}}' 2>/dev/null || echo unknown) ($$(docker info -f '{{.Driver}}' 2>/dev/null))"

## demo: the README's demo on the bundled example environment
demo: build base-image
	./scripts/demo.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); if [ -n "$$out" ]; then echo "not gofmt-formatted:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

completions: build
	mkdir -p completions
	$(BIN) completion bash > completions/rfenv.bash
	$(BIN) completion zsh > completions/_rfenv
	$(BIN) completion fish > completions/rfenv.fish
	$(BIN) completion powershell > completions/rfenv.ps1

## check-completions: fails when completions/ is not what the current code generates
check-completions: completions
	git diff --exit-code -- completions/

snapshot:
	$(GO) run github.com/goreleaser/goreleaser/v2@$(GORELEASER_VERSION) release --snapshot --clean

clean:
	rm -rf bin dist
