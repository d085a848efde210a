#!/usr/bin/env bash
# Installs everything estiba's build, demo and tests need on a fresh Debian 12
# machine. Idempotent and quiet when nothing is missing. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: peers we test and benchmark against (runc, crun, podman),
# a real registry, the cgroup v2 VM lane (qemu), and the tools tests drive.
PKGS=(
	busybox-static    # the demo image and test images are built from it
	runc crun         # peers for conformance and benchmarks
	podman conmon uidmap catatonit containernetworking-plugins # podman as a client of estiba-runtime
	docker-registry   # real registry server for pull/push tests
	skopeo umoci      # peers for image tests and benchmarks
	qemu-system-x86 xz-utils # cgroup v2 VM lane (tests/v2vm)
	nftables iproute2 iperf3 socat # network tests: inspect rules, measure bandwidth
	libcap2-bin       # setcap: the file-capability probe of tests/security
	hyperfine         # benchmarks
	docker.io         # dockerd as a benchmark peer (bench/lib/dockerd.sh), and a docker CLI
	python3-seccomp   # bench/seccomp.sh: libseccomp's filters, as runc builds them
	git make gcc ca-certificates
)
missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	echo "setup: installing ${missing[*]}" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's docker-registry package starts a registry on :5000 at install time;
# tests start their own on random loopback ports, so stop the packaged one.
# Likewise docker.io's dockerd: the benches start a private one with
# --iptables=false; the packaged one would rewrite the host firewall.
for unit in docker-registry docker.socket docker containerd; do
	if command -v systemctl >/dev/null && systemctl is-active -q "$unit" 2>/dev/null; then
		systemctl stop "$unit" || true
	fi
done

# Go tools. Versions are pinned: the OCI runtime-tools release v0.9.0 does not
# build, this commit does. Its validation programs have generic names (create,
# start, delete...), so they go to a folder of their own, never on PATH.
RT_VERSION=v0.9.1-0.20260316125833-8a4db579f5c8
TOOLS=${ESTIBA_TOOLS:-/usr/local/lib/estiba-tools}
mkdir -p "$TOOLS/bin" "$TOOLS/validation"
[ -x "$TOOLS/bin/crane" ] || GOBIN="$TOOLS/bin" go install github.com/google/go-containerregistry/cmd/crane@v0.20.3
if [ ! -x "$TOOLS/validation/runtimetest" ]; then
	GOBIN="$TOOLS/validation" go install github.com/opencontainers/runtime-tools/validation/...@$RT_VERSION
	CGO_ENABLED=0 GOBIN="$TOOLS/validation" go install -tags "netgo osusergo" github.com/opencontainers/runtime-tools/cmd/runtimetest@$RT_VERSION
	# The suite's programs expect the rootfs tarball beside runtimetest.
	dir=$(go mod download -json github.com/opencontainers/runtime-tools@$RT_VERSION | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
	cp "$dir/rootfs-amd64.tar.gz" "$TOOLS/validation/"
fi
