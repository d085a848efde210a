#!/bin/bash
# run-tests.sh [PKG...] — the cgroup v2 lane: build each package's test binary
# statically, boot a throwaway cgroup v2 VM (v2vm.sh: Debian 6.1 kernel,
# busybox, every controller enabled at the root) and run them there as root,
# one after the other. Exits non-zero if any failed or the VM did not run.
#
# The packages default to V2VM_PACKAGES or the list below; add a package here
# (its real-cgroup tests then run on v2 as well as on the v1/hybrid host).
# Extra files the tests need (a static bin/estiba-runtime, a bundle) go in
# the share with V2VM_EXTRA="path..." and are found at /mnt/share/extra/.
# Test flags: V2VM_TESTFLAGS (default -test.v -test.count=1).
set -euo pipefail
cd "$(dirname "$0")/../.."
HERE=tests/v2vm
DEFAULT_PACKAGES="runtime/cgroups tests/runtimev2 tests/enginev2"
read -r -a pkgs <<< "${*:-${V2VM_PACKAGES:-$DEFAULT_PACKAGES}}"
FLAGS=${V2VM_TESTFLAGS:--test.v -test.count=1}

SHARE=$(mktemp -d /tmp/estiba-v2vm-share.XXXXXX)
trap 'rm -rf "$SHARE"' EXIT
mkdir -p "$SHARE/bin" "$SHARE/extra"
start=$SECONDS
script='rc=0'
for p in "${pkgs[@]}"; do
	name=$(echo "$p" | tr / _)
	# No libc in the VM: the binary must be static.
	CGO_ENABLED=0 go test -c -o "$SHARE/bin/$name.test" "./$p"
	mkdir -p "$SHARE/pkg/$name"
	[ -d "$p/testdata" ] && cp -r "$p/testdata" "$SHARE/pkg/$name/"
	# Each binary runs in its package's copy, as `go test` would (testdata).
	script+="; echo '=== v2vm package $p'; (cd pkg/$name && ../../bin/$name.test $FLAGS) || { echo '=== v2vm FAIL $p'; rc=1; }"
done
for f in ${V2VM_EXTRA:-}; do cp -r "$f" "$SHARE/extra/"; done
echo "v2vm: built ${#pkgs[@]} test binaries in $((SECONDS - start))s"
script+='; exit $rc'

V2VM_SHARE=$SHARE "$HERE/v2vm.sh" "$script"
