#!/usr/bin/env bash
# mkrootfs.sh DIR builds a minimal busybox root filesystem in DIR for tests and
# `make demo`: a static /bin/busybox (Debian's busybox-static), a symlink per
# applet, /etc/passwd, /etc/group and empty /proc /sys /dev /tmp /root.
# Running it again on the same DIR is harmless. BUSYBOX=/path overrides the
# binary. internal/testutil.Rootfs builds the same tree in Go: keep them alike.
#
# --hardlinks makes each applet a hard link of bin/busybox, as Docker's
# busybox image has them, instead of a symlink to /bin/busybox: a suite that
# changes an applet from the host (runc's start_hello.bats does
# `chmod go-x rootfs/bin/echo`) would otherwise follow the absolute link to
# the host's own busybox.
set -euo pipefail

hard=0
if [[ ${1:-} == --hardlinks ]]; then
	shift
	hard=1
fi
if (($# != 1)) || [[ -z "$1" ]]; then
	echo "usage: $0 [--hardlinks] DIR" >&2
	exit 2
fi
dir=$1

busybox=${BUSYBOX:-/bin/busybox}
if [[ ! -x "$busybox" ]]; then
	echo "mkrootfs: $busybox not found: install busybox-static (hack/deps.sh)" >&2
	exit 1
fi
# ldd fails on a static binary ("not a dynamic executable").
if ldd "$busybox" >/dev/null 2>&1; then
	echo "mkrootfs: $busybox is dynamically linked: install busybox-static, not busybox" >&2
	exit 1
fi

mkdir -p "$dir"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,root,tmp}
chmod 1777 "$dir/tmp"
chmod 0700 "$dir/root"
install -m 0755 "$busybox" "$dir/bin/busybox"

n=0
while IFS= read -r applet; do
	case "$applet" in
	*/*) ;;             # bin/sh, usr/bin/awk, ...
	*) continue ;;      # linuxrc
	esac
	[[ "$applet" == bin/busybox ]] && continue
	if ((hard)); then
		ln -f "$dir/bin/busybox" "$dir/$applet"
	else
		ln -sfn /bin/busybox "$dir/$applet"
	fi
	n=$((n + 1))
done < <("$busybox" --list-full)

cat >"$dir/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat >"$dir/etc/group" <<'GROUP'
root:x:0:
nogroup:x:65534:
GROUP

echo "mkrootfs: $dir: busybox $("$busybox" | head -n1 | awk '{print $2}') with $n applets"
