#!/usr/bin/env bash
# deps.sh installs, with apt, the Debian 12 packages that containerfd's tests,
# demo and benchmarks need. It is idempotent: when every package is already
# installed it prints so and does not call apt at all.
#
#   busybox-static  rootfs for tests and `make demo` (static, so it runs in any
#                   chroot or VM without a libc)
#   containerd      client tests (containerd 1.6 drives the runtime via its shim;
#                   the tests build containerd 2.x, its ctr and its runc shim
#                   from the Go module proxy: nothing more from apt)
#   runc crun       reference runtimes for comparison tests and benchmarks
#   podman conmon   client tests (podman 4.3 + conmon drive the runtime)
#   tini            podman run --init in the client tests (tini-static)
#   docker.io       client tests (dockerd 20.10, started by the test with its
#                   own data root, drives the runtime via containerd)
#   keyutils        keyctl(1), to inspect session keyrings in tests, and
#                   /sbin/request-key, which the key request tests go through
#   iproute2        ip(8), for network namespace tests
#   uidmap          newuidmap/newgidmap: rootless containers with subordinate
#                   id ranges (and the rootless tests, which make a user)
#   qemu-user-static  runs the exec trampoline of the other architecture
#                   (amd64 or arm64) in the spawn tests
#   kmod            modprobe, which the kernel runs to load a driver on first
#                   use (veth for the net device tests)
#   apparmor        apparmor_parser: where AppArmor is on (Debian's default),
#                   the AppArmor test loads a profile with it and dockerd
#                   its docker-default profile
#   bats gawk jq    make test-runc: runc's integration suite (bats files; its
#                   helpers edit config.json with jq and gawk)
#   debootstrap     make test-runc: the suite's Debian image, made once
#   containernetworking-plugins
#                   make test-critest: the pods' network (bridge, host-local,
#                   portmap), in the suite's own network namespace
#   criu           checkpoint and restore (CRIU 3.17; its tests skip where
#                   the kernel is newer than it knows, and run in make test-vm,
#                   which copies it and what it runs into the VM)
#   man-db zsh      the man page test renders every page with man; the zsh
#                   completion test parses the script with zsh -n
#   gcc libseccomp-dev pkg-config
#                   cgo builds of runc's test helper seccompagent and of runc
#                   v1.5.1 itself (the differential against runc)
# hack/vm.sh installs kmod and apparmor too: here they are installed before
# the tests, so that a first `make test` on a fresh machine runs what later
# ones run.
set -euo pipefail

packages=(busybox-static containerd runc crun podman conmon docker.io tini keyutils iproute2 uidmap qemu-user-static kmod apparmor
	bats gawk jq debootstrap containernetworking-plugins criu man-db zsh gcc libseccomp-dev pkg-config)

installed() {
	[[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" == ii* ]]
}

missing=()
for p in "${packages[@]}"; do
	installed "$p" || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
	echo "deps: all present (${packages[*]})"
	exit 0
fi

if ((EUID != 0)); then
	echo "deps: missing packages: ${missing[*]}" >&2
	echo "deps: run as root (or: sudo apt-get install ${missing[*]})" >&2
	exit 1
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# Recommends (buildah, slirp4netns, fuse-overlayfs, ...) are left out: the
# tests run as root with their own bundles and need none of them.
apt-get install -y -q --no-install-recommends "${missing[@]}"

for p in "${missing[@]}"; do
	if ! installed "$p"; then
		echo "deps: $p is still not installed after apt-get install" >&2
		exit 1
	fi
done
echo "deps: installed: $(for p in "${missing[@]}"; do dpkg-query -W -f='${Package}=${Version} ' "$p"; done)"
