#!/usr/bin/env bash
# difftest.sh runs the same bundles under runc and containerfd and diffs what
# a process inside observes: `make test-diff`.
#
#   hack/difftest.sh [-r RUNTIME] [-o OUTDIR] [CONFIG...]
#
#   -r RUNTIME  the runtime under test (default bin/containerfd)
#   -o OUTDIR   results (default /tmp/containerfd-difftest)
#   CONFIG      names from hack/difftest/configs.txt (default: all)
#
# The process is hack/difftest/probe, a static Go program that prints its ids,
# capabilities, environment, rlimits, mounts with options and owners, /dev,
# the masked and read-only paths, its cgroup files, session and process
# group, open fds and more. Each config of hack/difftest/configs.txt is a jq
# filter on runc v1.5.1's `runc spec`. It runs under:
#   runc-1.5.1   the reference, whose behaviour wins: REF=/path, else built
#                once with `go install github.com/opencontainers/runc@v1.5.1`
#                (cgo, libseccomp) into /var/cache/containerfd-difftest
#   runc-1.1.5   Debian 12's /usr/sbin/runc, where installed: where it
#                differs from 1.5.1 too, runc changed, and the summary says so
#   the runtime under test
# each with a fresh copy of the rootfs, its own --root, and the same absolute
# cgroup path. Outputs go to OUTDIR/out/CONFIG.RUNTIME (bundle and host paths
# replaced by BUNDLE and HOST), diffs to OUTDIR/diff/CONFIG.diff. The closing
# line "difftest: N passed, N failed" counts configs whose output matches
# runc 1.5.1's; exit status 1 when one does not.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")

runtime=$repo/bin/containerfd
outdir=/tmp/containerfd-difftest
while getopts r:o: opt; do
	case $opt in
	r) runtime=$OPTARG ;;
	o) outdir=$OPTARG ;;
	*) sed -n '2,/^$/s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))

if ((EUID != 0)); then
	echo "difftest: the bundles run as root" >&2
	exit 1
fi
runtime=$(realpath "$(command -v "$runtime" || echo "$runtime")")
if [[ ! -x "$runtime" ]]; then
	echo "difftest: runtime $runtime not found (make build, or -r PATH)" >&2
	exit 1
fi

ref=${REF:-}
if [[ -z "$ref" ]]; then
	ref=/var/cache/containerfd-difftest/runc-v1.5.1/runc
	if [[ ! -x "$ref" ]]; then
		echo "difftest: building runc v1.5.1 from its Go module (once, into ${ref%/runc})"
		(cd / && CGO_ENABLED=1 GOBIN=${ref%/runc} GOFLAGS= go install -tags seccomp \
			github.com/opencontainers/runc@v1.5.1)
	fi
fi
runtimes=("runc-1.5.1=$ref")
if [[ -x /usr/sbin/runc ]]; then
	runtimes+=("runc-1.1.5=/usr/sbin/runc")
fi
name=$(basename "$runtime")
runtimes+=("$name=$runtime")

rm -rf "$outdir"
mkdir -p "$outdir"/{out,diff,state,host/src/sub}
outdir=$(realpath "$outdir")
echo hello >"$outdir/host/src/file"

CGO_ENABLED=0 go -C "$repo" build -o "$outdir/probe" ./hack/difftest/probe
template=$outdir/rootfs
bash "$here/mkrootfs.sh" "$template" >/dev/null
install -m 0755 "$outdir/probe" "$template/probe"

base=$outdir/base.json
(cd "$outdir" && "$ref" spec && mv config.json "$base")

configs=$here/difftest/configs.txt
if (($# == 0)); then
	set -- $(grep -v '^#' "$configs" | awk 'NF { print $1 }')
fi

cgparent=containerfd-difftest
cleanup_cgroups() {
	find /sys/fs/cgroup -maxdepth 2 -type d -name "$cgparent" -exec rmdir {} + 2>/dev/null || true
}
trap cleanup_cgroups EXIT

printf '%-16s %-12s %-12s\n' CONFIG "$name" runc-1.1.5 >"$outdir/summary.txt"
pass=0 fail=0
for cfg in "$@"; do
	filter=$(awk -v n="$cfg" '$1 == n { sub(/^[^ \t]+[ \t]+/, ""); print; exit }' "$configs")
	if [[ -z "$filter" ]]; then
		echo "difftest: no config $cfg in $configs" >&2
		exit 2
	fi
	for rt in "${runtimes[@]}"; do
		rtname=${rt%%=*} bin=${rt#*=}
		bundle=$outdir/bundle.$cfg.$rtname
		rm -rf "$bundle"
		mkdir -p "$bundle"
		cp -a "$template" "$bundle/rootfs"
		jq --arg host "$outdir/host" --arg cg "/$cgparent/$cfg" \
			".process.args = [\"/probe\"] | .process.terminal = false | .linux.cgroupsPath = \$cg | $filter" \
			"$base" >"$bundle/config.json"
		out=$outdir/out/$cfg.$rtname
		rc=0
		timeout -k 5 60 "$bin" --root "$outdir/state/$rtname" run --bundle "$bundle" "diff-$cfg" \
			>"$out" 2>"$out.err" </dev/null || rc=$?
		"$bin" --root "$outdir/state/$rtname" delete --force "diff-$cfg" >/dev/null 2>&1 || true
		if ((rc != 0)); then
			# What failed, without the words that differ between runtimes.
			echo "RUN FAILED: exit $rc" >>"$out"
		fi
		sed -i -e "s|$bundle|BUNDLE|g" -e "s|$outdir/host|HOST|g" "$out"
		rm -rf "$bundle"
	done
	refout=$outdir/out/$cfg.runc-1.5.1
	d=$(diff "$refout" "$outdir/out/$cfg.$name" | grep -c '^[<>]' || true)
	old=-
	if [[ -f $outdir/out/$cfg.runc-1.1.5 ]]; then
		old=$(diff "$refout" "$outdir/out/$cfg.runc-1.1.5" | grep -c '^[<>]' || true)
	fi
	diff -u --label "runc-1.5.1/$cfg" --label "$name/$cfg" "$refout" "$outdir/out/$cfg.$name" >"$outdir/diff/$cfg.diff" || true
	printf '%-16s %-12s %-12s\n' "$cfg" "$d" "$old" >>"$outdir/summary.txt"
	if ((d == 0)); then
		pass=$((pass + 1))
		echo "ok $cfg"
	else
		fail=$((fail + 1))
		echo "not ok $cfg: $d lines differ from runc 1.5.1 (runc 1.1.5: $old): $outdir/diff/$cfg.diff"
	fi
done
echo "# lines that differ from runc 1.5.1, per config: $outdir/summary.txt"
echo "difftest: $pass passed, $fail failed"
((fail == 0))
