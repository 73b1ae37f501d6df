#!/usr/bin/env bash
# runc-suite.sh runs runc's own integration tests (tests/integration/*.bats of
# a runc checkout, v1.5.1 here) against a runtime: `make test-runc` runs them
# against bin/containerfd. The suite stays runc's: it is not in this
# repository, and the checkout is given by RUNC_SRC.
#
#   RUNC_SRC=DIR hack/runc-suite.sh run [-r RUNTIME] [-o OUTDIR] [-t SECONDS] [FILE.bats...]
#   hack/runc-suite.sh compare REF/results.txt OTHER/results.txt
#
#   run      -r RUNTIME  the runtime under test (default bin/containerfd); it
#                        is run through a symlink named runc (RUNC), since the
#                        tests name the binary in what they compare
#            -o OUTDIR   results (default /tmp/containerfd-runc-suite/NAME)
#            -t SECONDS  timeout of one test (default 120; a file gets 40
#                        times that)
#            FILE.bats   files to run (default: all of tests/integration)
#   compare  the tests that pass in REF and fail in OTHER, and the other
#            way round
#
# Without RUNC_SRC, `run` says so in one line and exits 0: CI has no runc
# checkout. The checkout's tests/ is copied to OUTDIR/src, which then gets
# what runc's `make test-binaries` and get-images.sh would put there:
#   - the helper programs (tests/cmd/*) in tests/cmd/_bin, installed with
#     `go install` from runc's Go module at the checkout's VERSION (the same
#     source as the tag), with libseccomp for seccompagent;
#   - testdata/busybox-ARCH.tar.xz, made from Debian's busybox-static
#     (hack/mkrootfs.sh);
#   - testdata/debian-ARCH.tar.xz, a Debian 12 minbase made once with
#     debootstrap from Debian's archive and kept in
#     /var/cache/containerfd-runc-suite; set RUNC_SUITE_DEBIAN=no to go
#     without it (the six files that use it then fail in setup).
# curl is replaced on the tests' PATH by one that fails, so that nothing is
# downloaded.
#
# How each file runs (each of these was needed here):
#   - under script(1), for the tests that need a terminal, with a FIFO held
#     open as its input (with /dev/null script sends EOF, and the terminal
#     output then starts with a NUL);
#   - under `tini -s`, a subreaper: the tests leave orphans (recvtty, sleep)
#     and this machine's pid 1 reaps them slowly;
#   - in a memory cgroup of its own (limited by RUNC_SUITE_MEMORY, default
#     4G), so that a runaway test cannot take the machine;
#   - with BATS_TEST_TIMEOUT, and the whole file under timeout(1);
#   - once every test has reported, what tini adopted is killed: a helper
#     left behind (recvtty) would hold bats's output open until the timeout.
# Results: OUTDIR/FILE.tap per file, OUTDIR/results.txt with one line per
# test ("PASS|FAIL|SKIP<TAB>FILE<TAB>NAME"), OUTDIR/summary.txt per file, and
# a closing line "runc-suite: N passed, N failed, N skipped". Exit status 1
# when a test failed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")

usage() {
	sed -n '2,/^$/s/^# \{0,1\}//p' "$0" >&2
	exit 2
}

# compare REF OTHER prints the tests that pass in REF and fail in OTHER, each
# with a hint from OTHER's TAP (the first error line of its diagnostics),
# then those that fail in REF and pass in OTHER.
compare() {
	(($# == 2)) || usage
	local a=$1 b=$2
	echo "# pass in $a, fail in $b (FILE, TEST, first error line):"
	awk -F'\t' 'NR == FNR { if ($1 == "PASS") ref[$2 "\t" $3] = 1; next }
		$1 == "FAIL" && ($2 "\t" $3) in ref { print $2 "\t" $3 }' "$a" "$b" | sort |
		while IFS=$'\t' read -r file name; do
			printf '%s\t%s\t%s\n' "$file" "$name" "$(hint "$(dirname "$b")/${file%.bats}.tap" "$name")"
		done
	echo "# fail in $a, pass in $b:"
	awk -F'\t' 'NR == FNR { if ($1 == "FAIL") ref[$2 "\t" $3] = 1; next }
		$1 == "PASS" && ($2 "\t" $3) in ref { print $2 "\t" $3 }' "$a" "$b" | sort
}

# hint TAP NAME prints the first line of NAME's diagnostics in TAP that says
# what went wrong: a runtime's error, else the failed assertion.
hint() {
	awk -v name="$2" '
		/^(ok|not ok) [0-9]+ / {
			t = $0; sub(/^(ok|not ok) [0-9]+ /, "", t); sub(/ # timeout after [0-9]+s$/, "", t)
			if (in_test) exit
			in_test = (t == name && /^not ok/)
			if (in_test && /# timeout after/) { print "timeout"; done = 1; exit }
			next
		}
		in_test && /level=error|[Ee]rror:|not supported|unknown|invalid/ && err == "" { err = $0 }
		in_test && /^#   `/ && assert == "" { assert = $0 }
		END { if (done) exit; line = err != "" ? err : assert; sub(/^# +/, "", line); gsub(/time="[^"]*" /, "", line); print substr(line, 1, 200) }
	' "$1"
}

case ${1:-} in
run) shift ;;
compare) shift; compare "$@"; exit ;;
*) usage ;;
esac

runtime=$repo/bin/containerfd
outdir=
timeout=120
while getopts r:o:t: opt; do
	case $opt in
	r) runtime=$OPTARG ;;
	o) outdir=$OPTARG ;;
	t) timeout=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))

if [[ -z "${RUNC_SRC:-}" ]]; then
	echo "runc-suite: skipped: no runc checkout given (RUNC_SRC=DIR, a checkout of runc v1.5.1)"
	exit 0
fi
if [[ ! -f "$RUNC_SRC/tests/integration/helpers.bash" || ! -f "$RUNC_SRC/VERSION" ]]; then
	echo "runc-suite: $RUNC_SRC is not a runc checkout (no tests/integration/helpers.bash or VERSION)" >&2
	exit 1
fi
if ((EUID != 0)); then
	echo "runc-suite: the suite runs containers as root" >&2
	exit 1
fi
for tool in bats gawk jq script tini xz; do
	if ! command -v "$tool" >/dev/null; then
		echo "runc-suite: $tool not found (hack/deps.sh installs it)" >&2
		exit 1
	fi
done
runtime=$(command -v "$runtime" || true)
if [[ -z "$runtime" || ! -x "$runtime" ]]; then
	echo "runc-suite: runtime not found (make build, or -r PATH)" >&2
	exit 1
fi
runtime=$(realpath "$runtime")
outdir=${outdir:-/tmp/containerfd-runc-suite/$(basename "$runtime")}
mkdir -p "$outdir"
outdir=$(realpath "$outdir")
version=v$(tr -d ' \n' <"$RUNC_SRC/VERSION")
arch=$(go env GOARCH)

src=$outdir/src
rm -rf "$src"
mkdir -p "$src"
cp -a "$RUNC_SRC/tests" "$src/"
testdata=$src/tests/integration/testdata

echo "runc-suite: helper programs of runc $version"
(
	cd "$src" # outside any module: go install pkg@version
	CGO_ENABLED=1 GOBIN=$src/tests/cmd/_bin go install -tags seccomp \
		$(for d in "$src"/tests/cmd/*/; do
			d=${d%/}
			echo "github.com/opencontainers/runc/tests/cmd/${d##*/}@$version"
		done)
)

rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
bash "$here/mkrootfs.sh" --hardlinks "$rootfs" >/dev/null # see mkrootfs.sh
chmod 0755 "$rootfs" # mktemp made it 0700: the tarball would carry that
tar -C "$rootfs" -cJf "$testdata/busybox-$arch.tar.xz" .

cache=/var/cache/containerfd-runc-suite
if [[ "${RUNC_SUITE_DEBIAN:-}" != no ]]; then
	if [[ ! -f $cache/debian-$arch.tar.xz ]]; then
		command -v debootstrap >/dev/null || apt-get install -y -q debootstrap >/dev/null
		echo "runc-suite: making a Debian 12 image with debootstrap (once, into $cache)"
		rm -rf "$cache/debian-root"
		mkdir -p "$cache"
		debootstrap --variant=minbase bookworm "$cache/debian-root" >"$cache/debootstrap.log" 2>&1
		tar -C "$cache/debian-root" -I "xz -1 -T0" -cf "$cache/debian-$arch.tar.xz.tmp" .
		mv "$cache/debian-$arch.tar.xz.tmp" "$cache/debian-$arch.tar.xz"
		rm -rf "$cache/debian-root"
	fi
	cp "$cache/debian-$arch.tar.xz" "$testdata/"
fi

# The runtime as "runc", and a curl that downloads nothing.
mkdir -p "$outdir/path"
ln -sfn "$runtime" "$outdir/path/runc"
cat >"$outdir/path/curl" <<'EOF'
#!/bin/sh
echo "runc-suite: no downloads here: curl $*" >&2
exit 1
EOF
chmod 0755 "$outdir/path/curl"

# One run at a time: runc's tests use fixed cgroup paths
# (runc-cgroups-integration-test) and the runner's cgroup below is one, so
# two runs break each other's tests. A second run waits for the first.
exec 9>/run/lock/containerfd-runc-suite.lock
if ! flock -n 9; then
	echo "runc-suite: waiting for another run to finish (/run/lock/containerfd-runc-suite.lock)"
	flock 9
fi

# The runner's memory cgroup: cgroup v2's or the v1 memory hierarchy's.
if [[ -d /sys/fs/cgroup/memory ]]; then
	cg=/sys/fs/cgroup/memory/containerfd-runc-suite
	mkdir -p "$cg"
	echo "${RUNC_SUITE_MEMORY:-4G}" >"$cg/memory.limit_in_bytes"
else
	cg=/sys/fs/cgroup/containerfd-runc-suite
	mkdir -p "$cg"
	echo "${RUNC_SUITE_MEMORY:-4G}" >"$cg/memory.max"
fi

# all_reported TAP: bats printed its plan and a result for every test.
all_reported() {
	local plan
	plan=$(grep -m1 -oE '^1\.\.[0-9]+' "$1" 2>/dev/null) || return 1
	(($(grep -cE '^(ok|not ok) [0-9]+' "$1") >= ${plan#1..}))
}

# reap_orphans RUNNER kills the children of tini (RUNNER, timeout(1), is
# its parent) but script(1), which runs bats.
reap_orphans() {
	local tini pid
	for tini in $(cat "/proc/$1/task/$1/children" 2>/dev/null); do
		for pid in $(cat "/proc/$tini/task/$tini/children" 2>/dev/null); do
			[[ $(cat "/proc/$pid/comm" 2>/dev/null) == script ]] || kill -KILL "$pid" 2>/dev/null || true
		done
	done
}

cd "$src/tests/integration"
if (($# == 0)); then
	set -- *.bats
fi

: >"$outdir/results.txt"
printf '%-32s %5s %5s %5s  %s\n' FILE PASS FAIL SKIP STATUS >"$outdir/summary.txt"
fifo=$outdir/stdin
total_pass=0 total_fail=0 total_skip=0
for f in "$@"; do
	f=${f##*/}
	tap=$outdir/${f%.bats}.tap
	rm -f "$fifo" "$tap" # a run that dies early must not leave an old result
	mkfifo "$fifo"
	exec 3<>"$fifo"
	start=$SECONDS
	# The subshell moves itself into the cgroup, then becomes the runner.
	(
		echo "$BASHPID" >"$cg/cgroup.procs"
		exec env PATH="$outdir/path:$PATH" RUNC="$outdir/path/runc" \
			BATS_TEST_TIMEOUT="$timeout" \
			timeout -k 30 $((timeout * 40)) \
			tini -s -- script -q -e -c "bats --tap $(printf %q "$f") >$(printf %q "$tap") 2>&1" /dev/null
	) <"$fifo" >/dev/null 2>&1 &
	runner=$!
	# Every test has reported, yet the file runs on: an orphan that tini
	# adopted holds bats's output pipe open (a recvtty whose container
	# never came, the sleep of bats's timeout countdown when a quick test
	# killed the countdown before it set its trap). Ten seconds on, kill
	# what tini adopted.
	reported=
	while kill -0 "$runner" 2>/dev/null; do
		sleep 2
		if all_reported "$tap"; then
			reported=${reported:-$SECONDS}
			((SECONDS - reported < 10)) || reap_orphans "$runner"
		fi
	done
	rc=0
	wait "$runner" || rc=$?
	exec 3>&-
	pass=$(grep -Ec '^ok [0-9]+' "$tap" || true)
	skip=$(grep -Ec '^ok [0-9]+ .*# skip' "$tap" || true)
	pass=$((pass - skip))
	fail=$(grep -Ec '^not ok [0-9]+' "$tap" || true)
	status="exit $rc, $((SECONDS - start))s"
	((rc == 124 || rc == 137)) && status="file timed out after $((timeout * 40))s"
	printf '%-32s %5d %5d %5d  %s\n' "$f" "$pass" "$fail" "$skip" "$status" >>"$outdir/summary.txt"
	echo "runc-suite: $f: $pass passed, $fail failed, $skip skipped ($status)"
	# One line per test: bats numbers them "ok N name" / "not ok N name".
	sed -nE -e 's/^ok [0-9]+ (.*) # skip.*/SKIP\t'"$f"'\t\1/p;t' \
		-e 's/^ok [0-9]+ (.*)/PASS\t'"$f"'\t\1/p' \
		-e 's/^not ok [0-9]+ (.*)/FAIL\t'"$f"'\t\1/p' "$tap" |
		sed -E 's/ # timeout after [0-9]+s$//' >>"$outdir/results.txt"
	total_pass=$((total_pass + pass))
	total_fail=$((total_fail + fail))
	total_skip=$((total_skip + skip))
done
rm -f "$fifo"
rmdir "$cg" 2>/dev/null || true # kept while a leftover still runs there

echo "# per file: $outdir/summary.txt; per test: $outdir/results.txt"
echo "runc-suite: $total_pass passed, $total_fail failed, $total_skip skipped"
((total_fail == 0))
