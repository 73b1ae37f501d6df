# containerfd — build, test, demo, install.
#
#   make            build a static bin/containerfd, bin/containerfd-criu (its
#                   checkpoint and restore) and the containerd shim
#                   bin/containerd-shim-containerfd-v2 (CGO_ENABLED=0)
#   make test       install test packages (hack/deps.sh), build, go test as root,
#                   the OCI validation suite and the differential against runc,
#                   then test-vm where a VM boots here
#   make demo       run a busybox container from a bundle made here (hack/demo.sh)
#   make test-load  the load test at full size (200 containers at once, 1000 runs)
#   make bench      containerfd against runc and crun side by side (N=50 samples; docs/performance.md)
#   make bench-shim containerd's shims side by side on containerd 2.x: runc's
#                   shim with runc, crun, containerfd; containerfd's shim
#   make test-vm    the cgroup and fallback tests in a qemu VM: Debian's 6.1
#                   kernel, pure cgroup v2 with every controller (hack/vm.sh)
#   make test-cve   the CVE set of SECURITY.md in every start mode (run it
#                   before a change to how processes start lands)
#   make test-oci   the OCI runtime-tools v0.9.0 validation suite (hack/oci-validation.sh)
#   make test-runc  runc v1.5.1's integration tests, given RUNC_SRC=checkout (hack/runc-suite.sh)
#   make test-diff  what a process observes inside, containerfd against runc (hack/difftest.sh)
#   make test-critest  cri-tools' CRI validation suite through containerd's CRI
#                   plugin, containerfd against runc (hack/critest.sh)
#   make fuzz       run the fuzz targets for FUZZTIME (default 10s; try FUZZTIME=10m)
#   make man        the man pages and the bash and zsh completions, written from
#                   the CLI's definitions into build/ (docs/install.md)
#   make vet        gofmt + go vet
#   make install    install bin/containerfd, bin/containerfd-criu and the shim
#                   into $(PREFIX)/bin, /etc/request-key.d/containerfd.conf (key
#                   requests), the man pages and the completions (docs/install.md)
#   make uninstall  remove what make install installed
#   make clean

GO      ?= go
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  ?= $(PREFIX)/share/zsh/vendor-completions
DESTDIR ?=

VERSION ?= $(shell git describe --tags --dirty 2>/dev/null || echo 0.1.0-dev)
COMMIT  ?= $(shell git rev-parse --verify -q HEAD 2>/dev/null)

LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
SHIM_LDFLAGS := -s -w -X github.com/containerfd/containerfd/shim.Version=$(VERSION)
# urfave_cli_no_docs: no man/markdown generation, whose markdown parser
# (blackfriday) builds regexps at every process start (~0.4 ms).
# urfave_cli_no_suggest: no "did you mean" code (and its init), which only
# an App with Suggest set would use.
# godbus_no_tcp: D-Bus over unix sockets only (systemd's bus is one); the
# tcp transports dial host names and so link net's DNS resolver (300 KB).
BUILD_TAGS := urfave_cli_no_docs,urfave_cli_no_suggest,godbus_no_tcp
# containerfd_nocriu: no CRIU RPC types, nor the protobuf runtime they need
# (1.9 MB, and their init at every start): bin/containerfd execs
# bin/containerfd-criu, built without the tag, for checkpoint and restore
# (docs/checkpoint.md).
NOCRIU_TAGS := $(BUILD_TAGS),containerfd_nocriu
# no_grpc: the shim speaks ttrpc only; without the tag containerd's task
# API packages link their gRPC stubs, and with them gRPC, net/http, TLS and
# html/template: 5.7 MB of the shim's 14.5, and 5 MB of its RSS (the
# kernel maps a binary's pages in 64 KiB around each fault). containerd
# builds its own runc shim with it too.
# The shim has no checkpoint (its Checkpoint answers "not implemented").
SHIM_TAGS := $(NOCRIU_TAGS),no_grpc
GOFLAGS_BUILD := -trimpath -ldflags '$(LDFLAGS)'

DEMO_DIR ?= /tmp/containerfd-demo

.PHONY: all build man test test-vm test-cve test-load test-oci test-runc test-diff test-critest fuzz vet demo install uninstall clean root-check bench bench-shim

all: build

# Always run go build: it knows better than make what is out of date.
build:
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -tags $(NOCRIU_TAGS) -o bin/containerfd .
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -tags $(BUILD_TAGS) -o bin/containerfd-criu .
	CGO_ENABLED=0 $(GO) build -trimpath -tags $(SHIM_TAGS) -ldflags '$(SHIM_LDFLAGS)' -o bin/containerd-shim-containerfd-v2 ./cmd/containerd-shim-containerfd-v2

# The man pages and completions, from newApp() by a build of this package
# with the containerfd_gendocs tag (gendocs.go), so that bin/containerfd
# carries none of the generator and a new verb needs nothing here.
GEN_DIR := build
man:
	CGO_ENABLED=0 $(GO) build -trimpath -tags $(BUILD_TAGS),containerfd_gendocs -ldflags '$(LDFLAGS)' -o $(GEN_DIR)/gendocs .
	$(GEN_DIR)/gendocs $(GEN_DIR)

root-check:
	@if [ "$$(id -u)" != 0 ]; then \
		echo "make $(MAKECMDGOALS): the tests run containers against the real kernel and need root (try: sudo make $(MAKECMDGOALS))" >&2; \
		exit 1; \
	fi

FUZZTIME ?= 10s

test: root-check
	bash hack/deps.sh
	$(MAKE) build man
	# Static like the runtime: test binaries re-exec themselves inside
	# containers, which have no dynamic loader. integration takes about
	# 6 minutes here; go test's default 10-minute timeout is too near.
	CGO_ENABLED=0 $(GO) test -p 1 -count=1 -timeout 25m ./...
	$(MAKE) fuzz FUZZTIME=10s
	# Others' suites (about 4 minutes): the OCI validation programs and the
	# differential against runc, each passing only where what fails is
	# accepted (the host's, or runc's behaviour kept: docs/compat.md). runc's
	# own tests need a runc checkout (RUNC_SRC), which CI has not: one line
	# says they were left out.
	bash hack/oci-validation.sh -o /tmp/containerfd-oci/make-test
	bash hack/difftest.sh -o /tmp/containerfd-difftest/make-test
	RUNC_SRC='$(RUNC_SRC)' bash hack/runc-suite.sh run
	# The cgroup and fallback tests again in a VM (pure cgroup v2 with every
	# controller, Linux 6.1), where one boots here; else one line says why not.
	bash hack/vm.sh --if-boots

# The cgroup and kernel-fallback tests inside a qemu VM (hack/vm.sh): Debian
# 12's own 6.1 kernel, unpacked into /var/cache/containerfd-vm (never
# installed), cgroup2 alone with every controller, a virtio disk and huge
# pages. KVM when it works here, else TCG (slower).
test-vm: root-check
	bash hack/vm.sh

# The CVE set of SECURITY.md: each test does, from inside a container, what
# the public exploit does. A change to how processes start (spawn, the gate,
# the stage, exec) runs it in every start mode before it lands: direct, and
# through the stage (CONTAINERFD_START=stage); each CVE-2019-5736 test also runs
# without the exec trampoline itself. make test and make test-vm run them too.
CVE_LIB := ^(TestCannotOverwriteRuntimeBinary|TestPtraceCapableProcessesAndDirectStart|TestKeyringPerContainer|TestSaveLoad|TestTrampoline|TestProcScriptInterpreterIsTheTrampoline|TestWriteFile|TestWriteSelfAttrOvermounted|TestMkdirAllSwappedSymlink|TestMkdirAllRace|TestSymlinkExchangeRace)$$
CVE_INT := ^(TestCVE_.*|TestTrampolineRefusedByFilter|TestHostileRootfsSymlinks|TestDeviceRulesEnforced|TestSeccomp|TestSeccompNotify|TestKeyring.*|TestPidReuse|TestKilledAtEachStep)$$
test-cve: root-check
	CGO_ENABLED=0 $(GO) test -count=1 -run '$(CVE_LIB)' ./libcontainerfd/...
	CGO_ENABLED=0 $(GO) test -count=1 -run '$(CVE_INT)' ./integration/
	CONTAINERFD_START=stage CGO_ENABLED=0 $(GO) test -count=1 -run '$(CVE_INT)' ./integration/

# The load test at full size: 200 containers at once, 1000 run cycles.
test-load: root-check build
	CFD_LOAD=full $(GO) test -v -count=1 -timeout 60m -run 'TestLoad$$' ./integration/

# The benchmark (issue 7): containerfd and every peer found (runc, crun on
# PATH; PEERS=name=/path,... to name others, PEERS= for none) on one busybox
# bundle, state on tmpfs under /run/cfdbench. N samples per latency metric;
# BENCH_FLAGS passes more (go run ./bench -h). The Debian packages are
# installed if missing (runc and crun are optional peers). Writes
# bench/out/bench.json and bench/out/bench.txt (for benchstat).
N      ?= 50
PEERS  ?= runc,crun
bench: root-check build
	@for p in busybox-static runc crun; do \
		dpkg -s $$p >/dev/null 2>&1 || apt-get install -y $$p >/dev/null || \
		echo "make bench: could not install $$p" >&2; \
	done
	$(GO) run ./bench -n $(N) -peers '$(PEERS)' -containerfd bin/containerfd $(BENCH_FLAGS)

# The shim benchmark (issue 17; docs/performance.md "The containerd shim"):
# containerd 2.4.2 started here in a private mount namespace (built once from
# the Go module proxy into the user's cache, as the client tests build it,
# with crictl), four runtime handlers -- runc's shim with runc (v1.5.1 from
# make test-diff's cache if there, else Debian's), with crun, with
# containerfd; containerfd's shim -- ctr and crictl latencies (SHIM_N
# samples) and the shims' memory per pod of 1 and 10 containers.
# SHIM_BENCH_FLAGS passes more (go run ./bench/shim -h). Writes
# bench/out/shim.json and bench/out/shim.txt. 30 samples rather than make
# bench's 50: a sample is ~6 s of ctr and crictl commands, and 50 take 7 to
# 12 minutes here, with the machine's load; 30 take 4.5 to 7.5.
SHIM_N ?= 30
bench-shim: root-check build
	@for p in busybox-static runc crun; do \
		dpkg -s $$p >/dev/null 2>&1 || apt-get install -y $$p >/dev/null || \
		echo "make bench-shim: could not install $$p" >&2; \
	done
	$(GO) run ./bench/shim -n $(SHIM_N) -containerfd bin/containerfd -shim bin/containerd-shim-containerfd-v2 $(SHIM_BENCH_FLAGS)

# The suites of others, against bin/containerfd unless told otherwise. make
# test runs test-oci's and test-diff's scripts, and test-runc's where RUNC_SRC
# names a runc checkout (docs/testing.md, "Other suites", gives their run times).
#
# OCI runtime-tools v0.9.0's validation/*.t, built from the Go module proxy
# with hack/ocivalidation/go.mod, one program at a time under a timeout, TAP.
# OCI_RUNTIME=/usr/bin/crun (or runc) runs them against another runtime;
# OCI_FLAGS passes more (-t SECONDS, -o OUTDIR, program names).
OCI_RUNTIME ?= bin/containerfd
test-oci: root-check build
	bash hack/deps.sh
	bash hack/oci-validation.sh -r $(OCI_RUNTIME) $(OCI_FLAGS)

# runc's tests/integration/*.bats from a runc checkout (RUNC_SRC=DIR, e.g.
# v1.5.1), file by file; without RUNC_SRC one line says so and nothing runs.
# RUNC_RUNTIME=/path runs them against another runtime (runc itself, for the
# reference); RUNC_SUITE_FLAGS passes more (-t SECONDS, -o OUTDIR, files).
# hack/runc-suite.sh compare A/results.txt B/results.txt lists what passes in
# one run and fails in the other.
RUNC_RUNTIME ?= bin/containerfd
test-runc: root-check build
	bash hack/deps.sh
	RUNC_SRC='$(RUNC_SRC)' bash hack/runc-suite.sh run -r $(RUNC_RUNTIME) $(RUNC_SUITE_FLAGS)

# The same bundles (hack/difftest/configs.txt) under runc v1.5.1 (built once
# from its Go module; REF=/path to name another), Debian's runc 1.1.5 and
# bin/containerfd, a probe inside (hack/difftest/probe); the outputs diffed.
# DIFF_FLAGS passes more (-o OUTDIR, config names).
test-diff: root-check build
	bash hack/deps.sh
	bash hack/difftest.sh $(DIFF_FLAGS)

# cri-tools' critest (the version of the client tests' crictl, built once
# from the Go module proxy) against containerd's CRI plugin (Debian's 1.6), in namespaces of its own, with images made here and served by a
# registry of its own (hack/critest.sh): runc's shim with runc (v1.5.1 as
# test-diff builds it, else Debian's), then runc's shim with bin/containerfd,
# and with CRITEST_SHIM=TYPE (io.containerd.containerfd.v2) also that
# runtime_type, its shim found in bin/. CRITEST_CONTAINERD=DIR runs
# containerd 2.x from DIR instead (containerd, ctr, containerd-shim-runc-v2:
# the client tests build v2.4.2 into ~/.cache/containerfd-test/containerd-v2.4.2).
# Fails when a spec passes with runc and fails with another
# (docs/critest.txt lists the results). CRITEST_FLAGS passes more
# (-f FOCUS, -s SKIP); CRITEST_OUT is the output.
CRITEST_OUT        ?= /tmp/containerfd-critest
CRITEST_SHIM       ?=
CRITEST_CONTAINERD ?=
CRITEST_RUN = bash hack/critest.sh run $(if $(CRITEST_CONTAINERD),-C '$(CRITEST_CONTAINERD)') $(CRITEST_FLAGS)
test-critest: root-check build
	bash hack/deps.sh
	$(CRITEST_RUN) -r runc -o $(CRITEST_OUT)/runc || true
	$(CRITEST_RUN) -r bin/containerfd -o $(CRITEST_OUT)/containerfd || true
	@if [ -n '$(CRITEST_SHIM)' ]; then \
		$(CRITEST_RUN) -T '$(CRITEST_SHIM)' -B bin -o $(CRITEST_OUT)/shim || true; \
	fi
	@status=0; for o in containerfd $(if $(CRITEST_SHIM),shim); do \
		bash hack/critest.sh compare $(CRITEST_OUT)/runc/results.txt $(CRITEST_OUT)/$$o/results.txt || status=1; \
	done; exit $$status

# Every fuzz target for FUZZTIME (make test runs each briefly; the corpus
# they grow lives in the Go build cache, the seeds in testdata/fuzz).
fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzConfig -fuzztime=$(FUZZTIME) ./spec/

vet:
	@out="$$(gofmt -l .)"; \
	if [ -n "$$out" ]; then echo "gofmt -l: these files need gofmt -w:" >&2; echo "$$out" >&2; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags containerfd_nocriu ./...
	$(GO) vet -tags containerfd_gendocs .

demo: root-check build
	bash hack/deps.sh
	bash hack/demo.sh $(DEMO_DIR)

# The request-key.d entry sends key requests to `containerfd key-upcall`
# (docs/beyond-runc.md, "Key requests"); it answers others' requests by the host's rules.
REQUEST_KEY_D ?= /etc/request-key.d

install: build man
	install -D -m 0755 bin/containerfd $(DESTDIR)$(BINDIR)/containerfd
	install -D -m 0755 bin/containerfd-criu $(DESTDIR)$(BINDIR)/containerfd-criu
	install -D -m 0755 bin/containerd-shim-containerfd-v2 $(DESTDIR)$(BINDIR)/containerd-shim-containerfd-v2
	install -d $(DESTDIR)$(REQUEST_KEY_D)
	sed 's|@BINDIR@|$(BINDIR)|g' hack/install/request-key.conf.in >$(DESTDIR)$(REQUEST_KEY_D)/containerfd.conf.tmp
	chmod 0644 $(DESTDIR)$(REQUEST_KEY_D)/containerfd.conf.tmp
	mv $(DESTDIR)$(REQUEST_KEY_D)/containerfd.conf.tmp $(DESTDIR)$(REQUEST_KEY_D)/containerfd.conf
	install -d $(DESTDIR)$(MANDIR)/man8
	install -m 0644 $(GEN_DIR)/man/*.8 $(DESTDIR)$(MANDIR)/man8/
	install -D -m 0644 $(GEN_DIR)/completion/containerfd.bash $(DESTDIR)$(BASHCOMPDIR)/containerfd
	install -D -m 0644 $(GEN_DIR)/completion/_containerfd $(DESTDIR)$(ZSHCOMPDIR)/_containerfd

# The pages by pattern: those of verbs since removed go too.
uninstall:
	rm -f $(DESTDIR)$(REQUEST_KEY_D)/containerfd.conf $(DESTDIR)$(BINDIR)/containerfd $(DESTDIR)$(BINDIR)/containerfd-criu \
		$(DESTDIR)$(BINDIR)/containerd-shim-containerfd-v2
	rm -f $(DESTDIR)$(MANDIR)/man8/containerfd.8 $(DESTDIR)$(MANDIR)/man8/containerfd-*.8
	rm -f $(DESTDIR)$(BASHCOMPDIR)/containerfd $(DESTDIR)$(ZSHCOMPDIR)/_containerfd

clean:
	rm -rf bin $(GEN_DIR) $(DEMO_DIR)
