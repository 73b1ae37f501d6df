#!/usr/bin/env bash
# oci-validation.sh runs the OCI runtime-tools v0.9.0 validation suite
# (validation/*.t) against one runtime: `make test-oci` runs it against
# bin/containerfd.
#
#   hack/oci-validation.sh [-r RUNTIME] [-g FLAGS] [-o OUTDIR] [-t SECONDS] [PROGRAM...]
#
#   -r RUNTIME  the runtime binary under test (default bin/containerfd)
#   -g FLAGS    global flags for the runtime, before --root (for example
#               --systemd-cgroup)
#   -o OUTDIR   where results go (default /tmp/containerfd-oci/NAME, NAME the
#               runtime's base name)
#   -t SECONDS  timeout of one program (default 120)
#   PROGRAM     validation programs to run, by name (for example default
#               linux_sysctl); all of them when none is given
#
# The programs, and runtimetest (which they copy into each bundle and run as
# the container's process), are built from the Go module proxy with the
# pinned go.mod in hack/ocivalidation, which is no part of the runtime's own
# module. They expect, in their working directory, runtimetest and
# rootfs-<arch>.tar.gz, a tarball of the bundle directory itself (the config's
# root.path is "."): it is made here from Debian's busybox-static
# (hack/mkrootfs.sh). They call the runtime named by RUNTIME with no global
# flags; RUNTIME is a wrapper here that adds --root OUTDIR/state, so that the
# run leaves nothing in the runtime's default state directory and what it
# leaves behind is found and deleted.
#
# Each program runs alone, under `timeout`. Its TAP goes to
# OUTDIR/tap/PROGRAM.tap and its stderr to OUTDIR/tap/PROGRAM.err. On stdout:
# one TAP line per program, then the failing assertions, then a closing line
# "oci: N passed, N failed" counting assertions. OUTDIR/summary.txt holds the
# per-program table and OUTDIR/failures.txt the failing assertions with their
# diagnostics. A failure that hack/ocivalidation/accepted.txt accepts (the
# host's, or runc's behaviour kept on purpose: docs/compat.md) goes to
# OUTDIR/accepted.txt with its reason, any other to OUTDIR/unaccepted.txt.
# Exit status 1 when a failure is not accepted (a failed assertion, or a
# program that exited non-zero without one, timed out, or reported
# nothing), else 0.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")

runtime=$repo/bin/containerfd
flags=
outdir=
timeout=120
while getopts r:g:o:t: opt; do
	case $opt in
	r) runtime=$OPTARG ;;
	g) flags=$OPTARG ;;
	o) outdir=$OPTARG ;;
	t) timeout=$OPTARG ;;
	*) sed -n '2,/^$/s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))

if ((EUID != 0)); then
	echo "oci-validation: the suite creates containers and needs root" >&2
	exit 1
fi
runtime=$(command -v "$runtime" || true)
if [[ -z "$runtime" || ! -x "$runtime" ]]; then
	echo "oci-validation: runtime not found (make build, or -r PATH)" >&2
	exit 1
fi
runtime=$(realpath "$runtime")
outdir=${outdir:-/tmp/containerfd-oci/$(basename "$runtime")}
mkdir -p "$outdir"
outdir=$(realpath "$outdir")

# The programs and runtimetest: one binary per tool of hack/ocivalidation's
# go.mod, named as the suite's Makefile names them (NAME.t).
bindir=$outdir/bin
mkdir -p "$bindir"
(cd "$here/ocivalidation" && CGO_ENABLED=0 go build -trimpath -o "$bindir/" tool)
for b in "$bindir"/*; do
	case $b in
	*.t | */runtimetest) ;;
	*) mv -f "$b" "$b.t" ;;
	esac
done

work=$outdir/work
rm -rf "$work" "$outdir/tap"
mkdir -p "$work" "$outdir/tap" "$outdir/state"
cp "$bindir/runtimetest" "$work/"

arch=$(go env GOARCH)
rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
bash "$here/mkrootfs.sh" "$rootfs" >/dev/null
chmod 0755 "$rootfs" # mktemp made it 0700: the tarball would carry that
tar -C "$rootfs" -czf "$work/rootfs-$arch.tar.gz" .

cat >"$work/runtime" <<EOF
#!/bin/sh
exec '$runtime' $flags --root '$outdir/state' "\$@"
EOF
chmod 0755 "$work/runtime"

if (($# == 0)); then
	set -- $(cd "$bindir" && ls *.t | sed 's/\.t$//')
fi

# leftovers deletes the containers a program left in the state directory;
# their names go to stderr, for they are a bug of the runtime or the program.
leftovers() {
	local ids
	ids=$("$work/runtime" list -q 2>/dev/null || true)
	[[ -z "$ids" ]] && return 0
	echo "oci-validation: $1 left containers behind: $(echo $ids)" >&2
	for id in $ids; do
		"$work/runtime" delete --force "$id" >/dev/null 2>&1 || true
	done
}

printf '%-40s %6s %6s %6s  %s\n' PROGRAM PASS FAIL SKIP STATUS >"$outdir/summary.txt"
: >"$outdir/failures.txt"
rm -f "$outdir/accepted.txt" "$outdir/unaccepted.txt"
echo "TAP version 13"
echo "1..$#"
n=0 total_pass=0 total_fail=0 broken=0
for prog in "$@"; do
	n=$((n + 1))
	tap=$outdir/tap/$prog.tap
	if [[ ! -x "$bindir/$prog.t" ]]; then
		echo "not ok $n - $prog # no such validation program"
		broken=$((broken + 1))
		continue
	fi
	rc=0
	# In a mount namespace of its own, a slave of the host's: a config with
	# no mount namespace makes a runtime mount into its caller's, which
	# must not be the host's (runc and crun left /tmp/ocitest* trees).
	(cd "$work" && RUNTIME="$work/runtime" unshare -m --propagation slave \
		timeout -k 10 "$timeout" "$bindir/$prog.t" \
		>"$tap" 2>"$outdir/tap/$prog.err" </dev/null) || rc=$?
	leftovers "$prog"
	# Assertions are the TAP lines at the start of a line; "# SKIP" ones
	# count as skipped (the suite skips what the host lacks).
	pass=$(grep -Ec '^ok [0-9]+' "$tap" || true)
	skip=$(grep -Eic '^ok [0-9]+.*# skip' "$tap" || true)
	pass=$((pass - skip))
	fail=$(grep -Ec '^not ok [0-9]+' "$tap" || true)
	# Some programs report without assertions: the *_fail ones only by
	# their exit status, others (hooks, poststart, ...) by a YAML
	# diagnostic where something went wrong and nothing where all did not.
	# Each of those counts as one assertion.
	status=ok
	if ((pass + fail + skip == 0)); then
		if grep -q '^  ---' "$tap"; then
			fail=1 status="failed (a diagnostic, no assertion)"
		elif ((rc == 0)); then
			pass=1 status="ok (exit 0, no assertion)"
		fi
	fi
	if ((rc == 124 || rc == 137)); then
		status="timeout after ${timeout}s"
	elif ((pass + fail + skip == 0)); then
		status="no result (exit $rc)"
	elif ((rc != 0 && fail == 0)); then
		status="exit $rc"
	elif ((fail > 0)) && [[ $status == ok ]]; then
		status="failed"
	fi
	printf '%-40s %6d %6d %6d  %s\n' "$prog" "$pass" "$fail" "$skip" "$status" >>"$outdir/summary.txt"
	total_pass=$((total_pass + pass))
	total_fail=$((total_fail + fail))
	if [[ $status == ok* ]]; then
		echo "ok $n - $prog ($pass passed, $skip skipped)"
	else
		[[ $status == failed* ]] || broken=$((broken + 1))
		echo "not ok $n - $prog ($pass passed, $fail failed, $skip skipped: $status)"
		# The failing assertions with their diagnostics (indented YAML
		# or "#" lines up to the next assertion), then the program's
		# stderr, each distinct line once.
		{
			echo "== $prog: $status"
			awk '/^not ok [0-9]+/ { a = p = 1; print; next }
				/^(ok|not ok) [0-9]+|^1\.\./ { p = 0 }
				/^ok [0-9]+/ { a = 1 }
				p && /^( |#)/ { print }
				/^  ---/ && !a { d = 1 } d { print } /^  \.\.\./ { d = 0 }' "$tap"
			# Timestamps and container ids differ on every line.
			awk '{ sub(/^time="[^"]*" /, "")
				gsub(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/, "ID") }
				!seen[$0]++ { print "  stderr: " $0 }' "$outdir/tap/$prog.err" | head -n 8
		} >>"$outdir/failures.txt"
	fi
done

echo
echo "# per program: $outdir/summary.txt; failing assertions: $outdir/failures.txt"
grep -E '^== |^not ok ' "$outdir/failures.txt" | sed 's/^/# /' || true
echo "oci: $total_pass passed, $total_fail failed"

# Sort the failures into those accepted.txt accepts and the rest: a failing
# assertion "== PROG" / "not ok N - desc" of failures.txt, or a program that
# failed without one.
awk -F '\t' -v out="$outdir" '
	FNR == NR { if ($0 !~ /^#/ && NF >= 3) { n++; prog[n] = $1; re[n] = $2; why[n] = $3 } next }
	/^== / { p = $0; sub(/^== /, "", p); sub(/:.*/, "", p); st = $0; sub(/^== [^:]*: /, "", st)
		if (st !~ /^failed$/) check(p, "*", st) ; next }
	/^not ok [0-9]+/ { a = $0; sub(/^not ok /, "", a); check(p, a, a) }
	function check(p, a, what,   i) {
		for (i = 1; i <= n; i++)
			if (prog[i] == p && (re[i] == "*" || (a != "*" && a ~ re[i]))) {
				printf "accepted: %s: %s (%s)\n", p, what, why[i] >> (out "/accepted.txt"); acc++; return
			}
		printf "%s: %s\n", p, what >> (out "/unaccepted.txt"); bad++
	}
	END { printf "oci: %d failures accepted (%s/accepted.txt), %d not accepted\n", acc, out, bad; exit bad > 0 }
' "$here/ocivalidation/accepted.txt" "$outdir/failures.txt" || true
: >>"$outdir/accepted.txt"
: >>"$outdir/unaccepted.txt"
if [[ -s "$outdir/unaccepted.txt" ]]; then
	echo "# not accepted (hack/ocivalidation/accepted.txt lists what is):"
	sed 's/^/#   /' "$outdir/unaccepted.txt"
	exit 1
fi
