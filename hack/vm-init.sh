#!/bin/sh
# vm-init.sh is pid 1 of the test VM that hack/vm.sh boots (stage 2, on a
# tmpfs root). It sets the machine up as a pure cgroup v2 host with every
# controller enabled, runs each test binary listed in /cfd/tests (then those
# in /cfd/forced again with fallbacks forced), prints
# "CFDVM-RESULT <pkg> <exit status>" after each and "CFDVM-END <failed>"
# last, then powers off. The host side parses these lines.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
. /cfd/env

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs -o mode=1777 shm /dev/shm
mount -t mqueue mqueue /dev/mqueue
mount -t tmpfs -o mode=0755 run /run
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
# securityfs: AppArmor's interface (runtimes look for it to tell that
# AppArmor is on, and apparmor_parser loads profiles through it).
mount -t securityfs securityfs /sys/kernel/security
# As on a systemd host: mounts propagate (runtimes must cope with that).
mount --make-rshared /
hostname cfdvm
printf '127.0.0.1 localhost\n::1 localhost\n' >/etc/hosts
ip link set lo up

ln -s /proc/self/fd /dev/fd
ln -s fd/0 /dev/stdin
ln -s fd/1 /dev/stdout
ln -s fd/2 /dev/stderr
echo cfdvm >/etc/hostname

echo "CFDVM-BOOT kernel $(uname -r), uptime $(cut -d' ' -f1 /proc/uptime)s"
for m in $(cat /cfd/modules); do
	insmod "/lib/modules/$(uname -r)/$m" || echo "CFDVM-INFO insmod $m failed"
done
# /tmp (test rootfs, bundles, state) on the virtio disk as ext4, as on a
# usual host: tmpfs in 6.1 takes no idmapped mounts (6.3 does). The disk is
# made anew each boot. BFQ, so that io weights per device apply.
mke2fs -q -F /dev/vda >/dev/null && mount -t ext4 /dev/vda /tmp && chmod 1777 /tmp ||
	{ echo "CFDVM-INFO no ext4 /tmp on /dev/vda: using tmpfs"; mount -t tmpfs -o mode=1777 tmp /tmp; }
echo bfq >/sys/block/vda/queue/scheduler
echo "CFDVM-INFO /tmp: $(grep ' /tmp ' /proc/mounts | cut -d' ' -f1,3)"

# Every controller the kernel has, enabled for the children of the root.
for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
	echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control || echo "CFDVM-INFO cannot enable $c"
done
echo "CFDVM-INFO LSMs: $(cat /sys/kernel/security/lsm), AppArmor enabled: $(cat /sys/module/apparmor/parameters/enabled 2>/dev/null || echo no)"
echo "CFDVM-INFO cgroup2 controllers: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
echo "CFDVM-INFO huge pages: $(grep -E 'HugePages_Total|Hugepagesize' /proc/meminfo | tr -s ' ' | tr '\n' ' ')"
for b in /sys/block/*; do
	[ -e "$b/dev" ] && echo "CFDVM-INFO block device $(basename "$b") $(cat "$b/dev") scheduler $(cat "$b/queue/scheduler" 2>/dev/null)"
done
# Which of kernfeat's features this kernel has: where it has not, the
# runtime's fallback runs for real in every test, not only when forced.
has() { if eval "$2"; then echo "CFDVM-FALLBACK $1: kernel has it"; else echo "CFDVM-FALLBACK $1: kernel lacks it, the fallback runs in every test ($3)"; fi; }
has pidfs-handle 'grep -qw pidfs /proc/filesystems' 'pidfs is Linux 6.9'
has proc-pidns '[ "$(uname -r | cut -d. -f1)" -gt 6 ] || [ "$(uname -r | cut -d. -f1)" -eq 6 -a "$(uname -r | cut -d. -f2)" -ge 18 ]' 'proc pidns= is Linux 6.18'
# CRIU's verdict on this kernel, for the summary. vm.sh brings CRIU, so
# here a checkpoint test that finds it unusable fails instead of skipping
# (testutil.RequireCRIU reads CFD_REQUIRE_CRIU).
if command -v criu >/dev/null; then
	echo "CFDVM-INFO criu $(criu --version | sed -n 's/^Version: //p'): criu check: $(criu check 2>&1 | tail -1)"
	export CFD_REQUIRE_CRIU=1
fi
mkdir /sys/fs/cgroup/cfdvm-probe
has cgroup-kill '[ -e /sys/fs/cgroup/cfdvm-probe/cgroup.kill ]' 'cgroup.kill is Linux 5.14'
rmdir /sys/fs/cgroup/cfdvm-probe

failed=0
run() { # run <label> <pkg dir> <binary> <-test.skip pattern or -> [extra env...]
	label=$1 p=$2 bin=$3 skip=$4
	shift 4
	[ "$skip" = - ] && skip=
	echo "CFDVM-START $label"
	(cd "/cfd/pkg/$p" && env CFD_TEST_BINDIR=/cfd/bin "$@" "./$bin" -test.v -test.count=1 -test.timeout=20m \
		${CFD_VM_RUN:+-test.run "$CFD_VM_RUN"} ${skip:+-test.skip "$skip"} </dev/null 2>&1)
	rc=$?
	echo "CFDVM-RESULT $label $rc"
	[ "$rc" = 0 ] || failed=$((failed + 1))
}
while read -r p bin; do
	run "$p" "$p" "$bin" -
done </cfd/tests
# Again with fallbacks forced (6.1 lacks some features anyway; this forces
# the rest): "<pkg> <binary> <-test.skip pattern> VAR=value".
while read -r p bin skip envs; do
	run "$p ($envs)" "$p" "$bin" "$skip" $envs
done </cfd/forced

echo "CFDVM-END $failed"
sync
poweroff -f
