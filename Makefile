# Fibrix Cloud. `make run` starts the all-in-one product on SQLite;
# `make test` prepares the lab (.ci/lab-setup.sh installs the Debian packages
# of .ci/packages.txt when run as root) and runs every check and test; the
# tests start PostgreSQL, libvirtd, sshd, BMC simulators and Chromium themselves.

GO       ?= go
BIN      := bin/fibrix
VERSION  := $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
STATICCHECK_VERSION := v0.8.2
FUZZTIME ?= 20s

.PHONY: all build run test lab unit chaos bench fuzz lint fmt generate check-generated check-deps staticcheck clean fresh-check

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/fibrix

## run: start portal + admin panel + API on http://127.0.0.1:8080 with ./var/fibrix.db
run: build
	./$(BIN) serve --migrate

## generate: regenerate templ components after editing views/*.templ
generate:
	$(GO) tool templ generate -path views

## test: lab packages, checks, lint and the whole test suite
test: lab check-generated check-deps lint unit

## lab: install the Debian packages the tests drive (as root; otherwise it says what to run)
lab:
	@.ci/lab-setup.sh

## fresh-check: run .ci/run from a clean clone after removing the host state the suite creates
fresh-check:
	.ci/fresh-root.sh

unit:
	$(GO) test -count=1 -timeout 28m ./...

## chaos: the fault tests alone, verbosely: two portals and two provisioners on PostgreSQL under
## concurrent orders, a provisioner killed with SIGKILL, a portal and a provisioner stopped with
## SIGTERM; PostgreSQL stopped for 20 s under traffic; 50 API clients on the SQLite default for 60 s
chaos:
	$(GO) test -count=1 -v -run '^(TestRegion|TestPostgresOutage|TestSQLiteConcurrentClients)$$' -timeout 20m ./cmd/fibrix/

## bench: Go benchmarks (placement, DNS, DHCP), then the side-by-side runs against the peers
## (needs root and the packages .ci/run installs; each script pins server and load generator to
## separate cores and reports per server CPU-second)
bench:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./provisioner/capacity/ ./provisioner/store/ ./provisioner/nameserver/ ./provisioner/dhcpd/
	$(GO) test -run '^$$' -bench Load -benchtime 1x -timeout 30m ./portal/
	.ci/bench-dns.sh
	.ci/bench-dhcp.sh
	.ci/bench-tftp.sh
	.ci/bench-forward.sh
	.ci/bench-ssh.sh

## fuzz: run every Go fuzz target for FUZZTIME each (default 20s), one after the other;
## a failure names the target and the crasher written under its package's testdata/fuzz/
fuzz:
	FUZZTIME=$(FUZZTIME) .ci/fuzz.sh

## agent-initramfs: bare-metal commissioning/deploy boot files out/agent/{vmlinuz,initrd.img}, from Debian packages
.PHONY: agent-initramfs
agent-initramfs:
	GO=$(GO) .ci/agent-initramfs.sh out/agent

lint: fmt staticcheck
	$(GO) vet ./...

fmt:
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './.git/*')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

staticcheck:
	@command -v staticcheck >/dev/null 2>&1 || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	@PATH="$$PATH:$$($(GO) env GOPATH)/bin" staticcheck ./...

check-generated:
	@.ci/check-generated.sh

check-deps:
	@.ci/check-deps.sh

clean:
	rm -rf bin
