#!/usr/bin/env bash
# vm.sh runs the cgroup and kernel-fallback tests inside a small qemu VM:
# Debian 12's own kernel (linux-image-6.1.0-*-amd64, unpacked, never
# installed on the host), a busybox initramfs, cgroup2 alone at
# /sys/fs/cgroup with every controller the kernel has enabled, a virtio disk
# (so io limits have a real device) and huge pages (so hugetlb limits are
# real). The tests are static test binaries (go test -c, CGO_ENABLED=0) built
# here and passed in the initramfs; the VM has no Go toolchain. The few
# dynamic programs the tests need (apparmor_parser, keyutils, and CRIU with
# the tools it runs, for checkpoint and restore) come with their libraries.
#
#   hack/vm.sh             build, boot, run the tests; exit 0 only if every
#                          test binary passed
#   hack/vm.sh --if-boots  the same, but where no VM can run here (no root,
#                          no qemu, no kernel package, the kernel boots
#                          neither with KVM nor TCG, or CFD_VM=0) print one
#                          line saying test-vm was skipped and why, and exit
#                          0: what `make test` runs
#
# Environment:
#   CFD_VM_CACHE   where the kernel and the disk image are kept
#                  (default /var/cache/containerfd-vm)
#   CFD_VM_TIMEOUT seconds the whole VM run may take (default 900 with KVM,
#                  2400 under TCG)
#   CFD_VM=0       with --if-boots: skip the VM
#   CFD_VM_KVM     0 to force TCG (software emulation) even where KVM works
#   CFD_VM_RUN     a -test.run pattern passed to every test binary
#   CFD_VM_PKGS    packages to run (default: see pkgs below)
#   CFD_VM_FORCED  packages to run a second time with every kernfeat
#                  fallback forced (default ./integration; "" for none)
#   CFD_VM_KEEP    1 to keep the work directory (initramfs, log) afterwards
#
# The serial console is the VM's only output: every test binary's output
# goes there, followed by "CFDVM-RESULT <pkg> <exit status>" and finally
# "CFDVM-END <failed count>". Anything else (a panic, a hang, no end line
# before the timeout) is a failure.
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$PWD

cache=${CFD_VM_CACHE:-/var/cache/containerfd-vm}
pkgs=(${CFD_VM_PKGS:-./libcontainerfd/cgroups ./libcontainerfd ./libcontainerfd/mounttree ./libcontainerfd/internal/spawn ./internal/testutil ./integration})
# Modules the tests need, by name; their dependencies come from modules.dep.
# crc32c_generic: ext4 loads it by name (a soft dependency modules.dep omits).
# rdma_rxe: soft-RoCE, so a test can make an RDMA device for the rdma controller;
# it asks the crypto API for "crc32" (crc32_generic), another soft dependency.
# CRIU's: the sock_diag modules it finds sockets with (the kernel would load
# them on demand through modprobe, which the VM lacks), iptables' filter
# tables and mark match for its network lock (see the CRIU section below),
# nf_tables and nf_conntrack_netlink for the ruleset and the conntrack
# entries it dumps with each network namespace, and tun for its check.
modules=(virtio_pci virtio_blk crc32c_generic ext4 overlay veth bfq dummy crc32_generic rdma_rxe
	inet_diag tcp_diag udp_diag raw_diag unix_diag af_packet_diag netlink_diag
	ip_tables iptable_filter ip6_tables ip6table_filter xt_mark nf_tables nf_conntrack_netlink tun)

log() { echo "vm: $*" >&2; }

installed() {
	[[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" == ii* ]]
}

# need_packages installs the host packages the VM needs, as deps.sh does:
# only what is missing, without recommends.
need_packages() {
	local missing=() p
	# kmod: depmod, for the dependencies of the kernel's modules.
	# apparmor: apparmor_parser, to load the AppArmor test's profile (the
	# VM's kernel has AppArmor on; the host's may not).
	# criu iptables iproute2 tar: checkpoint and restore (CRIU and what it
	# runs; see the CRIU section below).
	for p in qemu-system-x86 busybox-static kmod apparmor criu iptables iproute2 tar; do
		installed "$p" || missing+=("$p")
	done
	((${#missing[@]} == 0)) && return 0
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 ||
		{ apt-get update -q >&2 && apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; }
}

# cpu_kvm is the -cpu for KVM. "host" alone aborts here in qemu 7.2 (it
# fails to set MSR 0x10a, IA32_ARCH_CAPABILITIES, which the nested
# hypervisor refuses), so that MSR is left out; the guest loses nothing the
# tests use.
cpu_kvm=host,-arch-capabilities

# noesc drops the carriage returns and terminal escapes of the firmware's
# serial console.
noesc() { sed -u -e 's/\r//g' -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1bc//g'; }

# boots reports whether the kernel boots to a shell with the accelerator
# given ("kvm" or "tcg"): a throwaway initramfs whose init prints a marker
# and powers off. /dev/kvm existing proves nothing (a host without nested
# virtualization may have it), nor does qemu starting: only a boot does.
boots() {
	local accel=$1 cpu=max t=60 d out
	[[ $accel == kvm ]] && cpu=$cpu_kvm t=20
	d=$(mktemp -d /tmp/cfdvm-probe-XXXXXX)
	mkdir -p "$d/r/bin" "$d/r/dev" "$d/r/proc"
	cp /bin/busybox "$d/r/bin/busybox"
	mknod -m 0600 "$d/r/dev/console" c 5 1
	printf '#!/bin/busybox sh\n/bin/busybox echo CFDVM-PROBE-OK\n/bin/busybox poweroff -f\n' >"$d/r/init"
	chmod 0755 "$d/r/init"
	(cd "$d/r" && find . -mindepth 1 | /bin/busybox cpio -o -H newc 2>/dev/null) >"$d/initramfs"
	out=$(timeout -k 5 "$t" qemu-system-x86_64 -machine q35,accel="$accel" -cpu "$cpu" -smp 1 -m 256 \
		-nodefaults -nographic -no-reboot -serial stdio -monitor none \
		-kernel "$vmlinuz" -initrd "$d/initramfs" -append "console=ttyS0 panic=-1 quiet" </dev/null 2>&1)
	rm -rf "$d"
	if [[ "$out" == *CFDVM-PROBE-OK* ]]; then
		return 0
	fi
	boot_error=$(printf '%s\n' "$out" | noesc | grep -v -e '^$' -e 'terminating on signal' | tail -2 | tr '\n' ' ')
	[[ "$boot_error" == *"Booting from ROM"* && "$boot_error" != *"["* ]] &&
		boot_error="no kernel output within ${t}s after the firmware: the guest hangs"
	return 1
}

# kernel unpacks Debian's current 6.1 kernel package into the cache once and
# prints its directory. Offline, the newest kernel already cached is used.
kernel() {
	local name dir
	# One download at a time: other runs may share the cache.
	mkdir -p "$cache"
	exec 9>"$cache/lock"
	flock 9
	name=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
	if [[ -n "$name" && -d "$cache/$name/boot" ]]; then
		echo "$cache/$name"
		return
	fi
	if [[ -n "$name" ]]; then
		mkdir -p "$cache/deb"
		# apt's sandbox user cannot write here; download as root.
		if (cd "$cache/deb" && apt-get download -o APT::Sandbox::User=root "$name" >&2); then
			rm -rf "$cache/$name.tmp"
			dpkg-deb -x "$(ls -t "$cache/deb/$name"_*.deb | head -1)" "$cache/$name.tmp"
			# The package ships no modules.dep (its postinst makes it).
			depmod -b "$cache/$name.tmp" "$(ls "$cache/$name.tmp/lib/modules")"
			mv "$cache/$name.tmp" "$cache/$name"
			rm -f "$cache/deb/$name"_*.deb
			echo "$cache/$name"
			return
		fi
	fi
	dir=$(ls -d "$cache"/linux-image-*/boot 2>/dev/null | sort -V | tail -1)
	[[ -n "$dir" ]] || { log "no Debian kernel package: apt-cache knows none and nothing is cached in $cache"; return 1; }
	dirname "$dir"
}

if_boots=0
[[ "${1:-}" == --if-boots ]] && if_boots=1

# cannot says why no VM runs here: a failure, or with --if-boots a skip.
cannot() {
	if ((if_boots)); then
		echo "make test: test-vm skipped: $*"
		exit 0
	fi
	log "$*"
	exit 1
}

((if_boots)) && [[ "${CFD_VM:-1}" == 0 ]] && cannot "CFD_VM=0"
((EUID == 0)) || cannot "needs root (packages, the kernel download, the tests)"
need_packages || cannot "could not install qemu-system-x86, busybox-static, kmod, apparmor, criu, iptables, iproute2 and tar with apt"
kdir=$(kernel) || cannot "no Debian kernel package to boot (apt-get download linux-image-6.1.0-*-amd64 failed, nothing cached in $cache)"
kver=$(ls "$kdir/lib/modules")
vmlinuz="$kdir/boot/vmlinuz-$kver"
log "kernel $kver from $kdir"

if [[ "${CFD_VM_KVM:-1}" != 0 && -c /dev/kvm ]] && boots kvm; then
	accel=(-machine q35,accel=kvm -cpu "$cpu_kvm")
	accel_name=KVM
	timeout=${CFD_VM_TIMEOUT:-900}
	log "KVM works: hardware virtualization"
else
	why="CFD_VM_KVM=0"
	[[ "${CFD_VM_KVM:-1}" == 0 ]] || why="no /dev/kvm"
	[[ -c /dev/kvm && "${CFD_VM_KVM:-1}" != 0 ]] && why="a KVM boot failed: ${boot_error:-?}"
	boots tcg || cannot "the kernel boots neither with KVM ($why) nor with TCG: ${boot_error:-?}"
	accel=(-machine q35,accel=tcg -cpu max)
	accel_name="TCG (no KVM: $why)"
	timeout=${CFD_VM_TIMEOUT:-2400}
	log "KVM not used ($why); using TCG, software emulation: slow"
fi

work=$(mktemp -d /tmp/cfdvm-XXXXXX)
if [[ "${CFD_VM_KEEP:-0}" != 1 ]]; then
	trap 'rm -rf "$work"' EXIT
else
	log "work directory $work is kept"
fi
root=$work/initramfs
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,root,newroot,cfd/bin,cfd/pkg,lib/modules/"$kver"}
# The kernel opens /dev/console for init before anything is mounted.
mknod -m 0600 "$root/dev/console" c 5 1

# ---- static binaries: the runtime, the helpers, the test binaries ----
export CGO_ENABLED=0
# As make build: containerfd without CRIU's RPC, and beside it containerfd-criu,
# which its checkpoint and restore exec.
tags=urfave_cli_no_docs,urfave_cli_no_suggest,godbus_no_tcp
go build -trimpath -tags "$tags,containerfd_nocriu" -o "$root/cfd/bin/containerfd" .
go build -trimpath -tags "$tags" -o "$root/cfd/bin/containerfd-criu" .
for h in sdnotify accept1 keyread attack exewatch; do
	go build -trimpath -o "$root/cfd/bin/$h" ./integration/testdata/$h
done
for p in "${pkgs[@]}"; do
	p=${p#./}
	name=${p//\//_}
	mkdir -p "$root/cfd/pkg/$p"
	go test -c -trimpath -o "$root/cfd/pkg/$p/$name.test" "./$p"
	# Tests read testdata relative to their package directory.
	[[ -d "$p/testdata" ]] && cp -a "$p/testdata" "$root/cfd/pkg/$p/"
	echo "$p $name.test" >>"$root/cfd/tests"
done
# integration's TestSynopsesAsWritten types the synopses in docs/beyond-runc.md.
mkdir -p "$root/cfd/pkg/docs"
cp docs/beyond-runc.md "$root/cfd/pkg/docs/"
# The second pass: on 6.1 pidfs-handle and proc-pidns fall back anyway;
# cgroup-kill and exe-bind are there and must be switched off, and
# CONTAINERFD_START=stage makes init and exec go through the Go stage. It leaves
# out the two slowest tests (under TCG about 50 s each, and the first pass
# ran them): the load test and a symlink race that loops on mounts, which
# neither the four features nor the start path touches.
forced_skip='^(TestLoad|TestCVE_2021_30465_and_CVE_2024_45310_MountTargetSymlinkRace)$'
: >"$root/cfd/forced"
for p in ${CFD_VM_FORCED-./integration}; do
	p=${p#./}
	[[ -d "$root/cfd/pkg/$p" ]] || { log "CFD_VM_FORCED: $p is not in CFD_VM_PKGS"; exit 1; }
	echo "$p ${p//\//_}.test $forced_skip CONTAINERFD_DISABLE=proc-pidns,pidfs-handle,cgroup-kill,exe-bind CONTAINERFD_START=stage" >>"$root/cfd/forced"
done

cp /bin/busybox "$root/bin/busybox"
# The applets as symlinks (busybox --install needs /proc in the VM anyway).
while read -r a; do
	[[ "$a" == */* && "$a" != bin/busybox ]] || continue
	ln -sf /bin/busybox "$root/$a"
done < <(/bin/busybox --list-full)
# libs_of copies the shared libraries ldd names for the files given.
libs_of() {
	local f lib
	for f; do
		for lib in $(ldd "$f" | grep -o '/[^ ]*'); do
			mkdir -p "$root$(dirname "$lib")"
			cp -L "$lib" "$root$lib"
		done
	done
}
# apparmor_parser is dynamic: it comes with its libraries.
parser=$(command -v apparmor_parser)
cp "$parser" "$root/sbin/apparmor_parser"
libs_of "$parser"
# keyutils (dynamic too), for the key request tests: the kernel runs
# /sbin/request-key, the test runs keyctl and installs the request-key.d
# entry made from hack/install (read relative to the package directory).
if [[ -x /sbin/request-key && -x /usr/bin/keyctl ]]; then
	mkdir -p "$root/etc/request-key.d" "$root/cfd/pkg/hack"
	for prog in /sbin/request-key /usr/bin/keyctl; do
		cp "$prog" "$root$prog"
		libs_of "$prog"
	done
	[[ -f /etc/request-key.conf ]] && cp /etc/request-key.conf "$root/etc/"
	cp -a hack/install "$root/cfd/pkg/hack/"
else
	log "no keyutils here: the key request tests skip in the VM"
fi
# CRIU (Debian 12's 3.17, dynamic) for checkpoint and restore, and what it
# runs on the way: for a container with its own network namespace it locks
# the network with iptables-restore and ip6tables-restore (its default
# method; nftables is only used when asked) and saves the namespace with
# iptables-save (legacy: the nft backend's "-V" makes CRIU skip it), ip
# (iproute2's "addr/route/rule save", which busybox's ip lacks) and GNU tar
# for tmpfs contents (busybox's tar lacks its flags). xtables-legacy-multi
# loads its matches and targets from the extension directory.
criu=$(command -v criu)
cp "$criu" "$root/usr/sbin/criu"
xt=/usr/sbin/xtables-legacy-multi
cp "$xt" "$root/usr/sbin/"
for n in iptables iptables-restore iptables-save ip6tables ip6tables-restore ip6tables-save; do
	ln -sf xtables-legacy-multi "$root/usr/sbin/$n"
done
# Where libxtables looks: beside its real path (/usr/lib, not the /lib link).
xtdir=$(dirname "$(readlink -f "$(ldd "$xt" | grep -o '/[^ ]*libxtables[^ ]*')")")/xtables
mkdir -p "$root$xtdir"
for e in libxt_standard libxt_mark libxt_tcp libxt_udp libxt_MARK; do
	cp "$xtdir/$e.so" "$root$xtdir/"
done
cp "$(readlink -f "$(command -v ip)")" "$root/usr/sbin/ip"
cp "$(command -v tar)" "$root/usr/bin/tar"
libs_of "$criu" "$xt" "$xtdir"/libxt_standard.so "$root/usr/sbin/ip" "$root/usr/bin/tar"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"

# ---- kernel modules, dependencies first ----
mdir="$kdir/lib/modules/$kver"
declare -A seen=()
order=()
add_module() { # $1: path relative to $mdir
	local rel=$1 dep
	[[ -n "${seen[$rel]:-}" ]] && return
	seen[$rel]=1
	for dep in $(awk -F': ' -v m="$rel" '$1 == m {print $2}' "$mdir/modules.dep"); do
		add_module "$dep"
	done
	order+=("$rel")
}
for m in "${modules[@]}"; do
	rel=$(awk -F: -v m="/$m.ko" 'index($1, m) && substr($1, length($1) - length(m) + 1) == m {print $1; exit}' "$mdir/modules.dep")
	[[ -n "$rel" ]] || { log "module $m not in $kver (built in?)"; continue; }
	add_module "$rel"
done
for rel in "${order[@]}"; do
	f=$(basename "$rel")
	case "$f" in
	*.ko.xz) xz -dc "$mdir/$rel" >"$root/lib/modules/$kver/${f%.xz}" ;;
	*.ko.zst) zstd -dcq "$mdir/$rel" >"$root/lib/modules/$kver/${f%.zst}" ;;
	*) cp "$mdir/$rel" "$root/lib/modules/$kver/$f" ;;
	esac
	f=${f%.xz}
	echo "${f%.zst}" >>"$root/cfd/modules"
done

# ---- init: stage 1 moves to a tmpfs (pivot_root cannot leave the
# initramfs root), stage 2 sets the machine up and runs the tests ----
cat >"$root/init" <<'EOF'
#!/bin/sh
mount -t proc proc /proc
mount -t tmpfs -o mode=0755 root /newroot
for d in /*; do
	case "$d" in /proc|/newroot) continue ;; esac
	cp -a "$d" /newroot/
done
mkdir -p /newroot/proc
umount /proc
exec switch_root /newroot /cfd/init2
EOF
cp "$repo/hack/vm-init.sh" "$root/cfd/init2"
chmod 0755 "$root/init" "$root/cfd/init2"
{
	echo "CFD_VM_RUN='${CFD_VM_RUN:-}'"
} >"$root/cfd/env"

(cd "$root" && find . -mindepth 1 | /bin/busybox cpio -o -H newc 2>/dev/null) >"$work/initramfs.cpio"
log "initramfs $(du -h "$work/initramfs.cpio" | cut -f1)"

# A disk for the io controller and /tmp: sparse, one per run (runs may
# overlap), formatted in the VM.
disk=$work/disk.img
truncate -s 2G "$disk"

out=$work/console.log
log "booting (timeout ${timeout}s); console log: $out"
start=$(date +%s)
set +e
timeout --foreground -k 10 "$timeout" qemu-system-x86_64 "${accel[@]}" -smp 2 -m 2048 \
	-nodefaults -nographic -no-reboot -serial stdio -monitor none \
	-kernel "$vmlinuz" -initrd "$work/initramfs.cpio" \
	-append "console=ttyS0 panic=-1 quiet loglevel=4 hugepages=64 cgroup_no_v1=all" \
	-drive file="$disk",if=virtio,format=raw,cache=unsafe \
	</dev/null 2>&1 | noesc | tee "$out"
qrc=${PIPESTATUS[0]}
set -e
secs=$(($(date +%s) - start))

echo
echo "==== test-vm: summary (VM ran ${secs}s, qemu exit $qrc) ===="
grep -E '^CFDVM-(BOOT|RESULT|FALLBACK|INFO)' "$out" || true
cp "$out" /tmp/cfdvm-last.log
# Every test and subtest (not the lines a test relays from a child).
n() { grep -c -E "^ *--- $1: " "$out"; }
echo "tests and subtests: $(n PASS) passed, $(n FAIL) failed, $(n SKIP) skipped ($accel_name, Linux $kver)"
if ((qrc == 124)); then
	echo "FAIL: the VM did not finish within ${timeout}s"
	exit 1
fi
end=$(grep -E '^CFDVM-END ' "$out" | tail -1 || true)
if [[ -z "$end" ]]; then
	echo "FAIL: no CFDVM-END line on the console: the VM crashed or init failed (log kept in /tmp/cfdvm-last.log)"
	exit 1
fi
failed=${end#CFDVM-END }
if [[ "$failed" != 0 ]]; then
	echo "FAIL: $failed test binaries failed in the VM (log kept in /tmp/cfdvm-last.log)"
	grep -E -- '^\s*--- FAIL' "$out" | head -50
	exit 1
fi
echo "PASS: every test binary passed in the VM"
