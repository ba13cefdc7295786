# ipcbench — common tasks. `make help` lists them.
SHELL := /bin/bash
GO    ?= go
BIN   := bin/ipcbench
# The commit stamped into the binary, with "-dirty" when tracked files
# differ from it (raw records name the binary that measured them); outside
# a git checkout nothing is stamped and the binary reports what the Go
# toolchain recorded instead.
COMMIT := $(shell c=$$(git rev-parse --short HEAD 2>/dev/null) && { git diff --quiet HEAD -- 2>/dev/null || c=$$c-dirty; echo $$c; })
LDFLAGS := $(if $(COMMIT),-X main.commit=$(COMMIT))
# Where `make bench` writes its raw records.
BENCH_OUT ?= out/bench-$(shell date +%Y%m%d-%H%M%S).jsonl
# How long each fuzz target runs under `make fuzz`.
FUZZTIME ?= 30s

.PHONY: help build bench test vet fmt-check fuzz stress results floor clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

build: ## build bin/ipcbench
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/ipcbench

bench: build ## run the default benchmark suite and print the ranking (raw records in out/)
	@mkdir -p out
	./$(BIN) run -out $(BENCH_OUT)

test: vet fmt-check ## vet, gofmt check, and every test under the race detector (the gRPC example's own module too)
	$(GO) test -race -count=1 -timeout 14m ./...
	cd examples/grpc && $(GO) test -race -count=1 -timeout 5m ./...

vet: ## go vet (both modules); the main module's also as 386 (32-bit) and arm64, which type-checks code and tests there too
	$(GO) vet ./...
	GOARCH=386 $(GO) vet ./...
	GOARCH=arm64 $(GO) vet ./...
	cd examples/grpc && $(GO) vet ./...

fmt-check: ## fail if gofmt would change a file
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [[ -n $$out ]]; then echo "gofmt needed: $$out"; exit 1; fi

fuzz: ## run every fuzz target for $(FUZZTIME)
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; done

stress: ## the long forms of the fault and load suites: 50 kill trials per transport × workload, 64 conns × 100,000 messages per transport, 20 stranger trials per case, 500,000 rendezvous messages sent just before a close; then every test as a 32-bit (386) build (no race detector there; skipped, saying so, where the kernel cannot run 386 programs)
	set -o pipefail; IPCBENCH_STRESS=1 $(GO) test -count=1 -timeout 120m -v -run 'TestFault|TestConformance/load|TestStranger|TestReadMessageBeforeClose' ./... 2>&1 | \
	  grep --line-buffered -vE '^(=== (RUN|PAUSE|CONT|NAME)|--- PASS|PASS$$)|no tests to run|timed out and reaped'
	@# A kernel without IA32 emulation cannot run 386 programs ("exec format
	@# error"): then the 386 run is skipped, saying so; vet still checks the
	@# code for 386 (make vet). Any other failure of the probe shows in the run.
	@if GOARCH=386 $(GO) test -count=1 -run '^$$' ./internal/units 2>&1 | grep -q 'exec format error'; then \
	  echo "make stress: this kernel cannot run 32-bit x86 programs (no IA32 emulation): the 386 test run is skipped (GOARCH=386 go vet still checks the code: make vet)"; \
	else \
	  echo "GOARCH=386 $(GO) test -count=1 -timeout 30m ./..."; \
	  GOARCH=386 $(GO) test -count=1 -timeout 30m ./...; \
	fi

floor: build ## run the C floor programs beside ipcbench: raw records to results/floor.jsonl, the ratio table to results/floor.md (needs a C compiler)
	./$(BIN) floor -force -out results/floor.md -raw results/floor.jsonl

results: build ## regenerate every report in results/ from the committed raw records
	./$(BIN) report -format markdown results/reference.jsonl > results/reference.md
	./$(BIN) report -format benchfmt results/reference.jsonl > results/reference.bench
	./$(BIN) report -format csv results/reference.jsonl > results/reference.csv
	./$(BIN) floor -report results/floor.jsonl > results/floor.md
	./$(BIN) floor -report results/floor-stream.jsonl > results/floor-stream.md
	./$(BIN) floor -report results/floor-pipe-before.jsonl > results/floor-pipe-before.md
	./$(BIN) floor -report results/floor-pipe-after.jsonl > results/floor-pipe-after.md
	./$(BIN) floor -report results/floor-netpoll-before.jsonl > results/floor-netpoll-before.md
	./$(BIN) floor -report results/floor-netpoll-yield.jsonl > results/floor-netpoll-yield.md
	./$(BIN) floor -report results/floor-epyc.jsonl > results/floor-epyc.md
	./$(BIN) floor -report results/floor-stream-epyc-before.jsonl > results/floor-stream-epyc-before.md
	./$(BIN) floor -report results/floor-stream-epyc-after.jsonl > results/floor-stream-epyc-after.md
	./$(BIN) floor -report results/floor-nowait-before.jsonl > results/floor-nowait-before.md
	./$(BIN) floor -report results/floor-nowait-after.jsonl > results/floor-nowait-after.md
	./$(BIN) floor -report results/floor-nowait-before2.jsonl > results/floor-nowait-before2.md
	./$(BIN) floor -report results/floor-nowait-after2.jsonl > results/floor-nowait-after2.md
	./$(BIN) floor -report results/floor-epyc-nowait.jsonl > results/floor-epyc-nowait.md
	./$(BIN) floor -report results/floor-epyc-lsl.jsonl > results/floor-epyc-lsl.md
	./$(BIN) floor -report results/floor-epyc-line.jsonl > results/floor-epyc-line.md
	./$(BIN) report -format markdown results/veth.jsonl > results/veth.md
	./$(BIN) report -format markdown results/models.jsonl > results/models.md
	./$(BIN) report -format markdown results/peer-source.jsonl > results/peer-source.md
	./$(BIN) report -format markdown results/shm-fanin.jsonl > results/shm-fanin.md
	./$(BIN) report -format markdown results/shm-fanin-nowait.jsonl > results/shm-fanin-nowait.md
	./$(BIN) report -format markdown results/shm-fanin-epyc.jsonl > results/shm-fanin-epyc.md
	./$(BIN) report -format markdown results/shm-large-epyc.jsonl > results/shm-large-epyc.md
	./$(BIN) report -format markdown results/shm-wait-epyc.jsonl > results/shm-wait-epyc.md
	./$(BIN) report -format markdown results/shm-hotlap-before.jsonl > results/shm-hotlap-before.md
	./$(BIN) report -format markdown results/shm-hotlap-after.jsonl > results/shm-hotlap-after.md
	./$(BIN) report -format markdown results/shm-lock-hotlap-before.jsonl > results/shm-lock-hotlap-before.md
	./$(BIN) report -format markdown results/shm-lock-hotlap-after.jsonl > results/shm-lock-hotlap-after.md
	./$(BIN) report -format markdown results/shm-lock-wait.jsonl > results/shm-lock-wait.md
	./$(BIN) report -format markdown results/shm-wait-lsl.jsonl > results/shm-wait-lsl.md
	./$(BIN) report -format markdown results/shm-fanin-phase.jsonl > results/shm-fanin-phase.md
	./$(BIN) report -format markdown results/shm-fanin-placement.jsonl > results/shm-fanin-placement.md
	./$(BIN) report -format markdown results/shm-poller-spin-before.jsonl > results/shm-poller-spin-before.md
	./$(BIN) report -format markdown results/shm-poller-spin-after.jsonl > results/shm-poller-spin-after.md
	./$(BIN) report -format markdown results/shm-fanin-spin.jsonl > results/shm-fanin-spin.md
	./$(BIN) report -format markdown results/shm-fanin-spin-check.jsonl > results/shm-fanin-spin-check.md
	./$(BIN) report -format markdown results/shm-large.jsonl > results/shm-large.md
	./$(BIN) report -format markdown results/shm-wait.jsonl > results/shm-wait.md
	./$(BIN) report -format markdown results/http.jsonl > results/http.md
	rm -rf results/plots
	./$(BIN) plot -out results/plots results/reference.jsonl

clean: ## remove build output
	rm -rf bin out
