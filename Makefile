# estiba — build, demo and test entry points. See README.md.
GO      ?= go
BIN     := bin
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
# Static, cgo-free binaries: they run unchanged inside the cgroup v2 VM lane
# and inside containers (the conformance suite's runtimetest model).
GOBUILD := CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)'
# The init stub: freestanding, static, no libc (runtime/initstub/c/stub.c).
CC      ?= cc
STUBCFLAGS := -static -nostdlib -ffreestanding -fno-builtin -fno-stack-protector \
	-fno-asynchronous-unwind-tables -O2 -Wall -Wextra -Werror

.PHONY: all build demo test test-unit setup clean fmt vet

all: build

build:
	@mkdir -p $(BIN)
	$(GOBUILD) -o $(BIN)/estiba ./cmd/estiba
	$(GOBUILD) -o $(BIN)/estibad ./cmd/estibad
	$(GOBUILD) -o $(BIN)/estiba-runtime ./cmd/estiba-runtime
	$(GOBUILD) -o $(BIN)/estiba-init ./cmd/estiba-init
	$(CC) $(STUBCFLAGS) -o $(BIN)/estiba-init-stub runtime/initstub/c/stub.c

setup:
	./scripts/setup.sh

# The main job: build a small image locally and run a container from it.
demo: setup build
	./scripts/demo.sh

# The whole test suite (what CI runs). Needs root for the integration tests.
test: setup build
	./scripts/test.sh

# Unit tests only: no root, no installs.
test-unit:
	$(GO) test -count=1 ./...

fmt:
	gofmt -l -w .

vet:
	$(GO) vet ./...

clean:
	rm -rf $(BIN)
