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
# replaced by BUNDLE and HOST), diffs to OUTDIR/diff/CONFIG.diff (every
# difference, accepted or not).
#
# hack/difftest/accepted.txt lists the differences that are deliberate, each
# with its row in docs/compat.md: on the lines an entry names, the runtime's
# field is put as runc's (OUTDIR/accepted/CONFIG), and that is compared; the
# entries used are printed. The closing line "difftest: N passed, N failed"
# counts configs whose output matches runc 1.5.1's but for accepted
# differences; exit status 1 when one does not.
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
mkdir -p "$outdir"/{out,diff,accepted,state,host/src/sub}
outdir=$(realpath "$outdir")
echo hello >"$outdir/host/src/file"

CGO_ENABLED=0 go -C "$repo" build -o "$outdir/probe" ./hack/difftest/probe
template=$outdir/rootfs
bash "$here/mkrootfs.sh" "$template" >/dev/null
install -m 0755 "$outdir/probe" "$template/probe"

base=$outdir/base.json
(cd "$outdir" && "$ref" spec && mv config.json "$base")

configs=$here/difftest/configs.txt

# The accepted differences, each checked to name a row of docs/compat.md.
accepted=$here/difftest/accepted.txt
acc_name=() acc_conf=() acc_lines=() acc_ours=() acc_runc=() acc_row=()
while IFS= read -r line; do
	[[ $line == \#* || -z $line ]] && continue
	IFS=$'\x1f' read -r n cf ln ours theirs row < <(awk -F' [|] ' -v OFS=$'\x1f' '{ $1 = $1; print }' <<<"$line")
	if [[ -z $row ]]; then
		echo "difftest: $accepted: want 6 fields separated by \" | \": $line" >&2
		exit 2
	fi
	if ! grep -qF -- "**$row**" "$repo/docs/compat.md"; then
		echo "difftest: $accepted: $n: docs/compat.md has no row **$row**" >&2
		exit 2
	fi
	acc_name+=("$n") acc_conf+=("$cf") acc_lines+=("$ln") acc_ours+=("$ours") acc_runc+=("$theirs") acc_row+=("$row")
done <"$accepted"
if (($# == 0)); then
	set -- $(grep -v '^#' "$configs" | awk 'NF { print $1 }')
fi

# accept REF OUT LINES OURS RUNCS rewrites, in OUT, each line that matches
# LINES and is not in REF into the line that s/OURS/RUNCS/ makes of it, if
# that one is in REF: only where it makes a line of ours runc's. It fails if
# no line was rewritten.
accept() {
	local ref=$1 out=$2 lines=$3 from=$4 to=$5 sep=$'\x01' l n changed=1
	local tmp=$out.tmp
	while IFS= read -r l; do
		if [[ $l =~ $lines ]] && ! grep -qxF -- "$l" "$ref"; then
			n=$(sed -E "s$sep$from$sep$to$sep" <<<"$l")
			if [[ $n != "$l" ]] && grep -qxF -- "$n" "$ref"; then
				l=$n changed=0
			fi
		fi
		printf '%s\n' "$l"
	done <"$out" >"$tmp"
	mv "$tmp" "$out"
	return $changed
}

cgparent=containerfd-difftest
cleanup_cgroups() {
	find /sys/fs/cgroup -maxdepth 2 -type d -name "$cgparent" -exec rmdir {} + 2>/dev/null || true
}
trap cleanup_cgroups EXIT

printf '%-16s %-12s %-12s %-12s\n' CONFIG "$name" unaccepted runc-1.1.5 >"$outdir/summary.txt"
pass=0 fail=0
declare -A used=()
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
	ours=$outdir/out/$cfg.$name
	raw=$(diff "$refout" "$ours" | grep -c '^[<>]' || true)
	old=-
	if [[ -f $outdir/out/$cfg.runc-1.1.5 ]]; then
		old=$(diff "$refout" "$outdir/out/$cfg.runc-1.1.5" | grep -c '^[<>]' || true)
	fi
	diff -u --label "runc-1.5.1/$cfg" --label "$name/$cfg" "$refout" "$ours" >"$outdir/diff/$cfg.diff" || true
	# Put each accepted difference as runc's, and say which were used.
	cmpout=$outdir/accepted/$cfg
	cp "$ours" "$cmpout"
	took=()
	for i in "${!acc_name[@]}"; do
		# shellcheck disable=SC2053 # CONFIGS is a pattern
		[[ $cfg == ${acc_conf[i]} ]] || continue
		if accept "$refout" "$cmpout" "${acc_lines[i]}" "${acc_ours[i]}" "${acc_runc[i]}"; then
			took+=("${acc_name[i]}")
			used[${acc_name[i]}]=$((${used[${acc_name[i]}]:-0} + 1))
		fi
	done
	d=$(diff "$refout" "$cmpout" | grep -c '^[<>]' || true)
	printf '%-16s %-12s %-12s %-12s\n' "$cfg" "$raw" "$d" "$old" >>"$outdir/summary.txt"
	note=
	if ((${#took[@]} > 0)); then
		note=" (accepted: ${took[*]})"
	fi
	if ((d == 0)); then
		pass=$((pass + 1))
		echo "ok $cfg$note"
	else
		fail=$((fail + 1))
		echo "not ok $cfg: $d lines differ from runc 1.5.1 (runc 1.1.5: $old)$note: $outdir/diff/$cfg.diff"
	fi
done
for i in "${!acc_name[@]}"; do
	n=${acc_name[i]}
	echo "# accepted $n in ${used[$n]:-0} configs: docs/compat.md, \"${acc_row[i]}\""
done
echo "# lines that differ from runc 1.5.1, per config, in all and not accepted: $outdir/summary.txt"
echo "difftest: $pass passed, $fail failed"
((fail == 0))
