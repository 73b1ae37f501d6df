#!/usr/bin/env bash
# demo.sh DIR runs a container with bin/containerfd from a bundle it makes
# in DIR: a busybox rootfs and the config `containerfd spec` writes, changed
# to run a command instead of an interactive shell, with a cgroup of its own.
set -euo pipefail

if (($# != 1)) || [[ -z "$1" ]]; then
	echo "usage: $0 DIR" >&2
	exit 2
fi
dir=$1
cfd=${CONTAINERFD:-bin/containerfd}
here=$(cd "$(dirname "$0")" && pwd)

bash "$here/mkrootfs.sh" "$dir/rootfs"
rm -f "$dir/config.json"
"$cfd" spec --bundle "$dir"
# The default process is an interactive sh on a terminal; the default
# cgroupsPath is relative to our own cgroup. Change both.
sed -i \
	-e 's|"terminal": true|"terminal": false|' \
	-e 's|^\([[:space:]]*\)"sh"$|\1"sh", "-c", "echo hello from $(hostname), pid $$; cat /proc/self/cgroup \| grep -m1 :/; id; ls /"|' \
	-e 's|"linux": {|"linux": {\n\t\t"cgroupsPath": "/containerfd-demo",|' \
	"$dir/config.json"
set -x
"$cfd" --root "$dir/state" run --bundle "$dir" demo-$$
