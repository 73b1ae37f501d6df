#!/usr/bin/env bash
# critest.sh runs cri-tools' CRI validation suite, critest, against
# containerd's CRI plugin (Debian's 1.6, or a 2.x given with -C) with one
# runtime handler: `make test-critest` runs it with runc's shim running runc,
# then running bin/containerfd, and compares.
#
#   hack/critest.sh run [-r RUNTIME | -T TYPE [-B DIR]] [-C DIR] [-o OUTDIR] [-f FOCUS] [-s SKIP] [-t SECONDS]
#   hack/critest.sh compare A/results.txt B/results.txt
#
#   run      -r RUNTIME  runc's shim (io.containerd.runc.v2) with BinaryName
#                        RUNTIME (default bin/containerfd); `-r runc` is the
#                        reference: runc v1.5.1 as make test-diff builds it
#                        (/var/cache/containerfd-difftest/runc-v1.5.1/runc)
#                        if there, else Debian's /usr/sbin/runc
#            -T TYPE     the handler's runtime_type instead (for containerfd's
#                        own shim: -T io.containerd.containerfd.v2 -B bin),
#                        with no options
#            -B DIR      put first on containerd's PATH, where it finds the
#                        shim binary containerd-shim-NAME-v2
#            -C DIR      containerd, ctr and containerd-shim-runc-v2 from DIR
#                        (containerd 2.x: the client tests build v2.4.2 into
#                        $XDG_CACHE_HOME/containerfd-test/containerd-v2.4.2)
#                        instead of Debian's 1.6 from PATH
#            -o OUTDIR   results (default /tmp/containerfd-critest/NAME:
#                        the runtime's base name, or shim-NAME for -T)
#            -f FOCUS    only the specs matching this regexp (ginkgo focus)
#            -s SKIP     not the specs matching this regexp (ginkgo skip)
#            -t SECONDS  timeout of the whole suite (default 3600)
#   compare  the specs that pass in A and fail in B (with B's failure), then
#            those that fail in A and pass in B; exit status 1 when a spec
#            passes in A and fails in B
#
# critest is built once from the Go module proxy
# (sigs.k8s.io/cri-tools/cmd/critest, a test binary: go test -c), at the
# version of the crictl the client tests build (CrictlVersion in
# internal/clienttools/build.go), into
# $XDG_CACHE_HOME/containerfd-test/critest-VERSION like their crictl.
#
# Everything runs in namespaces of its own (mount, network, IPC, UTS, pid,
# under tini): containerd with its root, state, socket and config in
# OUTDIR, the runtime's --root in OUTDIR/runtime, a tmpfs on /run (shim
# sockets, pod network namespaces), / made rshared there (the mount
# propagation specs need a shared mount; the host's mounts are untouched),
# and critest itself, which must share the daemon's network (the streaming
# server listens on 127.0.0.1), IPC (HostIpc) and mounts (propagation). The
# pods get a network from the CNI plugins of Debian's
# containernetworking-plugins (bridge, host-local, portmap) inside that
# network namespace; host-network pods share it. When the run ends, the
# namespaces go with everything in them.
#
# There is no registry here: hack/critest (critest-images) makes every
# image critest uses from Debian's busybox-static (hack/mkrootfs.sh), with
# what each spec checks (a USER, an nginx and an httpd that serve a page, a
# setuid program for no_new_privs, a file per tag), imports them all into
# the daemon's k8s.io namespace, and serves them on 127.0.0.1:5000, which
# containerd's registry hosts name as the mirror of gcr.io and
# registry.k8s.io: a pull is a real pull. The one image that cannot be
# made is test-image-digest@sha256:9700f9…: its digest is the real image's.
# containerd 1.6 and 2.x each get a config of their own version (2 and 3)
# saying the same; the mirrors are hosts.toml files (the registry's
# config_path), which both read.
#
# Results: OUTDIR/results.txt, one line per spec "PASS|FAIL|SKIP<TAB>SPEC",
# OUTDIR/failures.txt ("SPEC<TAB>the failure's first lines"), critest's
# output in OUTDIR/critest.log and its JSON report in OUTDIR/report.json,
# the daemons' logs beside them, what the run left (containers, processes,
# the cgroups of its pods and containers) in OUTDIR/leftovers.txt, and a
# closing line "critest: N passed, N failed, N skipped". Exit status 1 when
# a spec failed or something was left.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
refRunc=/var/cache/containerfd-difftest/runc-v1.5.1/runc
# The one port of the private network namespace that serves images.
registryAddr=127.0.0.1:5000
handler=critest

usage() {
	sed -n '2,/^$/s/^# \{0,1\}//p' "$0" >&2
	exit 2
}

# compare A B prints the specs that pass in A and fail in B, each with B's
# failure, then those that fail in A and pass in B; it fails when there is
# a spec of the first kind.
compare() {
	(($# == 2)) || usage
	local a=$1 b=$2 worse
	worse=$(awk -F'\t' 'NR == FNR { if ($1 == "PASS") ref[$2] = 1; next }
		$1 == "FAIL" && $2 in ref { print $2 }' "$a" "$b" | sort)
	echo "# pass in $a, fail in $b (SPEC, the failure):"
	[[ -z $worse ]] || while IFS= read -r spec; do
		printf '%s\t%s\n' "$spec" "$(awk -F'\t' -v s="$spec" '$1 == s { print $2; exit }' "$(dirname "$b")/failures.txt")"
	done <<<"$worse"
	echo "# fail in $a, pass in $b:"
	awk -F'\t' 'NR == FNR { if ($1 == "FAIL") ref[$2] = 1; next }
		$1 == "PASS" && $2 in ref { print $2 }' "$a" "$b" | sort
	[[ -z $worse ]]
}

# inside runs in the namespaces: the registry, containerd, the images'
# import, critest, then what is left is recorded and containerd stopped.
inside() {
	local outdir=$1
	# shellcheck source=/dev/null
	source "$outdir/env.sh"
	mount -t tmpfs -o mode=0755 tmpfs /run
	mount --make-rshared /
	ip link set lo up
	cd "$outdir"

	"$outdir/bin/critest-images" serve -dir "$outdir/images" -addr "$registryAddr" >registry.log 2>&1 &
	local registry=$!
	PATH=$daemonPath
	containerd --config config.toml --log-level info >containerd.log 2>&1 &
	local containerd=$!
	local ctr=(ctr --address "$outdir/containerd.sock" --namespace k8s.io)
	local i
	for ((i = 0; i < 300; i++)); do
		"${ctr[@]}" version >/dev/null 2>&1 && break
		kill -0 "$containerd" 2>/dev/null || { echo "critest: containerd exited; its log:" >&2; tail -n 30 containerd.log >&2; return 1; }
		sleep 0.1
	done
	"${ctr[@]}" images import images/images.tar >import.log 2>&1

	local start end
	start=$(date +%s.%N)
	set +e
	timeout --kill-after=30 "$suiteTimeout" "$critest" \
		--runtime-endpoint "unix://$outdir/containerd.sock" --image-endpoint "unix://$outdir/containerd.sock" \
		--runtime-handler "$handler" --config /dev/null \
		--ginkgo.no-color --ginkgo.json-report="$outdir/report.json" \
		${focus:+--ginkgo.focus="$focus"} ${skip:+--ginkgo.skip="$skip"} >critest.log 2>&1
	echo $? >critest.rc
	set -e
	end=$(date +%s.%N)
	awk -v s="$start" -v e="$end" 'BEGIN { printf "%.0f\n", e - s }' >critest.seconds

	# What critest did not remove: listed, then removed.
	: >leftovers.txt
	local id
	for id in $("${ctr[@]}" containers ls --quiet 2>/dev/null); do
		echo "container $id" >>leftovers.txt
		"${ctr[@]}" tasks kill --signal SIGKILL "$id" >/dev/null 2>&1 || true
		sleep 0.2
		"${ctr[@]}" tasks delete --force "$id" >/dev/null 2>&1 || true
		"${ctr[@]}" containers delete "$id" >/dev/null 2>&1 || true
	done
	kill -TERM "$containerd"
	wait "$containerd" || true
	kill -TERM "$registry"
	wait "$registry" || true
	# The shims exit once their containers are gone; anything else but us
	# (and pid 1, tini) is left.
	sleep 1
	local p
	for p in /proc/[0-9]*; do
		p=${p#/proc/}
		((p == 1 || p == $$ || p == BASHPID)) && continue
		[[ -s /proc/$p/cmdline ]] || continue
		echo "process $p $(tr '\0' ' ' </proc/"$p"/cmdline)" >>leftovers.txt
	done
}

case ${1:-} in
run) shift ;;
compare) shift; compare "$@"; exit ;;
_inside) shift; inside "$@"; exit ;;
*) usage ;;
esac

runtime=$repo/bin/containerfd
runtimeType=
binDir=
ctdDir=
outdir=
focus=
skip=
suiteTimeout=3600
while getopts r:T:B:C:o:f:s:t: opt; do
	case $opt in
	r) runtime=$OPTARG ;;
	T) runtimeType=$OPTARG ;;
	B) binDir=$OPTARG ;;
	C) ctdDir=$OPTARG ;;
	o) outdir=$OPTARG ;;
	f) focus=$OPTARG ;;
	s) skip=$OPTARG ;;
	t) suiteTimeout=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
(($# == 0)) || usage

if ((EUID != 0)); then
	echo "critest: the suite runs containerd and containers: it needs root" >&2
	exit 1
fi
daemonPath=$PATH
if [[ -n $ctdDir ]]; then
	ctdDir=$(realpath "$ctdDir")
	daemonPath=$ctdDir:$daemonPath
fi
for tool in containerd ctr containerd-shim-runc-v2 unshare tini jq ip iptables go; do
	if ! PATH=$daemonPath command -v "$tool" >/dev/null; then
		echo "critest: $tool not found (hack/deps.sh installs it)" >&2
		exit 1
	fi
done
ctdVersion=$(PATH=$daemonPath containerd --version | awk '{ print $3 }')
cniDir=/usr/lib/cni
for p in bridge host-local portmap loopback; do
	if [[ ! -x $cniDir/$p ]]; then
		echo "critest: $cniDir/$p not found: install containernetworking-plugins (hack/deps.sh)" >&2
		exit 1
	fi
done

if [[ -n $runtimeType ]]; then
	name=${runtimeType#io.containerd.}
	name=${name%.v2}
	if [[ -n $binDir ]]; then
		binDir=$(realpath "$binDir")
		if [[ ! -x $binDir/containerd-shim-$name-v2 ]]; then
			echo "critest: no $binDir/containerd-shim-$name-v2 for runtime_type $runtimeType" >&2
			exit 1
		fi
	fi
	runtime=
	what="runtime_type $runtimeType"
	name=shim-$name
else
	if [[ $runtime == runc ]]; then
		runtime=$refRunc
		[[ -x $runtime ]] || runtime=/usr/sbin/runc
	fi
	runtime=$(command -v "$runtime" || true)
	if [[ -z $runtime || ! -x $runtime ]]; then
		echo "critest: runtime not found (make build, or -r PATH)" >&2
		exit 1
	fi
	runtime=$(realpath "$runtime")
	runtimeType=io.containerd.runc.v2
	name=$(basename "$runtime")
	what="runc's shim with $runtime ($("$runtime" --version | sed -n 1p))"
fi
outdir=${outdir:-/tmp/containerfd-critest/$name}
rm -rf "$outdir"
mkdir -p "$outdir/bin"
outdir=$(realpath "$outdir")
sock=$outdir/containerd.sock
if ((${#sock} > 100)); then
	echo "critest: $sock: too long for a unix socket; a shorter -o" >&2
	exit 1
fi

# critest, built once.
version=$(sed -n 's/^const CrictlVersion = "\(v[^"]*\)"$/\1/p' "$repo/internal/clienttools/build.go")
if [[ -z $version ]]; then
	echo "critest: no CrictlVersion in internal/clienttools/build.go" >&2
	exit 1
fi
cache=${XDG_CACHE_HOME:-$HOME/.cache}/containerfd-test/critest-$version
critest=$cache/critest
if [[ ! -x $critest ]]; then
	echo "critest: building critest $version from the Go module proxy"
	mkdir -p "$cache"
	# critest is a test binary (go test -c) of cri-tools' module, built in
	# the module's own directory with its own go.mod and go.sum.
	src=$(go mod download -json "sigs.k8s.io/cri-tools@$version" | jq -r .Dir)
	(cd "$src" && CGO_ENABLED=0 go test -c -trimpath -o "$cache/critest.tmp" \
		-ldflags "-X sigs.k8s.io/cri-tools/pkg/version.Version=$version" ./cmd/critest) || {
		echo "critest: building critest $version failed" >&2
		exit 1
	}
	mv "$cache/critest.tmp" "$critest"
fi

# The images, and the registry that serves them.
echo "critest: images from busybox-static"
(cd "$repo" && CGO_ENABLED=0 go build -trimpath -o "$outdir/bin/critest-images" ./hack/critest &&
	CGO_ENABLED=0 go build -trimpath -o "$outdir/bin/nnp" ./hack/critest/nnp)
# Hard links, as the busybox image has them: a masked /bin/ls must not
# mask the busybox every applet is.
bash "$here/mkrootfs.sh" --hardlinks "$outdir/rootfs" >/dev/null
"$outdir/bin/critest-images" build -rootfs "$outdir/rootfs" -nnp "$outdir/bin/nnp" -out "$outdir/images"

mkdir -p "$outdir/cni"
cat >"$outdir/cni/10-critest.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "critest",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$outdir/cni-ipam", "ranges": [[{"subnet": "10.88.0.0/16"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF

# The registry's hosts: both registries' images come from ours.
for host in gcr.io registry.k8s.io; do
	mkdir -p "$outdir/hosts/$host"
	cat >"$outdir/hosts/$host/hosts.toml" <<EOF
server = "https://$host"
[host."http://$registryAddr"]
  capabilities = ["pull", "resolve"]
EOF
done

# The config, in containerd 1.6's version 2 or 2.x's version 3: the CRI
# plugin's sections (one in 1.6, three in 2.x), then the handler's.
case $ctdVersion in
1.*)
	configVersion=2
	runtimeSection='plugins."io.containerd.grpc.v1.cri"'
	cri="  [plugins.\"io.containerd.grpc.v1.cri\"]
    sandbox_image = \"localhost/containerfd/pause:critest\"
    restrict_oom_score_adj = true
    stream_server_address = \"127.0.0.1\"
    stream_server_port = \"0\"
    [plugins.\"io.containerd.grpc.v1.cri\".registry]
      config_path = \"$outdir/hosts\"
    [plugins.\"io.containerd.grpc.v1.cri\".cni]
      bin_dir = \"$cniDir\"
      conf_dir = \"$outdir/cni\"
    [plugins.\"io.containerd.grpc.v1.cri\".containerd]
      snapshotter = \"overlayfs\""
	;;
*)
	configVersion=3
	runtimeSection='plugins."io.containerd.cri.v1.runtime"'
	# use_local_image_pull: the CRI plugin pulls itself, with the hosts
	# above, not through the transfer service.
	cri="  [plugins.\"io.containerd.cri.v1.images\"]
    snapshotter = \"overlayfs\"
    use_local_image_pull = true
    [plugins.\"io.containerd.cri.v1.images\".pinned_images]
      sandbox = \"localhost/containerfd/pause:critest\"
    [plugins.\"io.containerd.cri.v1.images\".registry]
      config_path = \"$outdir/hosts\"
  [plugins.\"io.containerd.grpc.v1.cri\"]
    stream_server_address = \"127.0.0.1\"
    stream_server_port = \"0\"
  [plugins.\"io.containerd.cri.v1.runtime\"]
    restrict_oom_score_adj = true
    [plugins.\"io.containerd.cri.v1.runtime\".cni]
      bin_dirs = [\"$cniDir\"]
      conf_dir = \"$outdir/cni\"
    [plugins.\"io.containerd.cri.v1.runtime\".containerd]"
	;;
esac
runtimeOptions=
if [[ $runtimeType == io.containerd.runc.v2 && -n $runtime ]]; then
	runtimeOptions="        [$runtimeSection.containerd.runtimes.$handler.options]
          BinaryName = \"$runtime\"
          Root = \"$outdir/runtime\"
          SystemdCgroup = false"
fi
cat >"$outdir/config.toml" <<EOF
version = $configVersion
root = "$outdir/root"
state = "$outdir/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$sock"

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$outdir/opt"
$cri
      default_runtime_name = "$handler"
      [$runtimeSection.containerd.runtimes.$handler]
        runtime_type = "$runtimeType"
$runtimeOptions
EOF

[[ -z $binDir ]] || daemonPath=$binDir:$daemonPath
cat >"$outdir/env.sh" <<EOF
critest=$(printf %q "$critest")
daemonPath=$(printf %q "$daemonPath")
focus=$(printf %q "$focus")
skip=$(printf %q "$skip")
suiteTimeout=$(printf %q "$suiteTimeout")
EOF

echo "critest: $what; containerd $ctdVersion; critest $version; output in $outdir"
start=$(date +%s)
unshare --mount --net --ipc --uts --pid --fork --mount-proc --propagation private -- \
	tini -- bash "$0" _inside "$outdir" || true
total=$(($(date +%s) - start))

# The cgroups of the run's pods and containers (critest asks for the parent
# test.slice, which the cgroupfs driver takes as the relative path
# "test.slice:cri-containerd:ID") must be gone: those left are listed and
# removed, children first.
grep -o 'returns \(sandbox\|container\) id \\"[0-9a-f]*' "$outdir/containerd.log" | sed 's/.*"//' >"$outdir/ids.txt" || true
if [[ -s $outdir/ids.txt ]]; then
	{ find /sys/fs/cgroup -mindepth 2 -maxdepth 6 -type d 2>/dev/null | grep -F -f "$outdir/ids.txt" || true; } | sort -r |
		while IFS= read -r d; do
			echo "cgroup $d" >>"$outdir/leftovers.txt"
			rmdir "$d" 2>/dev/null || true
		done
fi

if [[ ! -s $outdir/report.json ]]; then
	echo "critest: no report from critest (exit status $(cat "$outdir/critest.rc" 2>/dev/null || echo none)); the end of its output:" >&2
	tail -n 30 "$outdir/critest.log" >&2 || true
	exit 1
fi
# One line per It: passed, skipped (or pending: not run); every other state
# (failed, panicked, timed out, interrupted, aborted) is a failure.
jq -r '.[0].SpecReports[] | select(.LeafNodeType == "It") |
	[(if .State == "passed" then "PASS" elif .State == "skipped" or .State == "pending" then "SKIP" else "FAIL" end),
	 ((.ContainerHierarchyTexts + [.LeafNodeText]) | join(" "))] | @tsv' "$outdir/report.json" |
	sort -t$'\t' -k2 >"$outdir/results.txt"
jq -r '.[0].SpecReports[] | select(.LeafNodeType == "It" and .State != "passed" and .State != "skipped" and .State != "pending") |
	[((.ContainerHierarchyTexts + [.LeafNodeText]) | join(" ")),
	 (.Failure.Message // .State | split("\n") | map(select(test("\\S")) | gsub("^\\s+|\\s+$"; "")) | .[0:3] | join(" ") | .[0:300])] | @tsv' "$outdir/report.json" |
	sort >"$outdir/failures.txt"

passed=$(grep -c '^PASS' "$outdir/results.txt" || true)
failed=$(grep -c '^FAIL' "$outdir/results.txt" || true)
skipped=$(grep -c '^SKIP' "$outdir/results.txt" || true)
if [[ -s $outdir/failures.txt ]]; then
	echo "critest: failed specs (SPEC, first failure line):"
	sed 's/^/  /' "$outdir/failures.txt"
fi
if [[ -s $outdir/leftovers.txt ]]; then
	echo "critest: left after the run (removed):"
	sed 's/^/  /' "$outdir/leftovers.txt"
fi
echo "critest: the suite ran in $(cat "$outdir/critest.seconds")s; the whole run took ${total}s"
echo "critest: $passed passed, $failed failed, $skipped skipped"
((failed == 0)) && [[ ! -s $outdir/leftovers.txt ]]
