#!/usr/bin/env bash
# Cost of runtime/rootfs Setup+Pivot per container start, no fork: each
# iteration is a fresh OS thread with its own mount namespace (see
# BenchmarkSetupPivot). Prints the median of 5 runs per case, its ratio to the
# floor (unshare(CLONE_NEWNS) alone), and the syscalls one runc-spec
# Setup+Pivot makes (strace -c over 50 of them). runc and crun do the same
# work inside their init and cannot be timed apart: compare whole lifecycles
# with runtime-lifecycle.sh. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d /tmp/rootfs-bench.XXXXXX)
trap 'rm -rf "$dir"' EXIT
go test -c -o "$dir/rootfs.test" ./runtime/rootfs
"$dir/rootfs.test" -test.run '^$' -test.bench SetupPivot -test.benchtime 300x -test.count 5 > "$dir/out.txt"
awk '/^BenchmarkSetupPivot/ {name=$1; sub(/-[0-9]+$/, "", name); print name, $3}' "$dir/out.txt" | sort -k1,1 -k2n |
	awk '{v[$1]=v[$1] " " $2} END {
		for (n in v) { k=split(v[n], a, " "); med[n]=a[int((k+1)/2)] }
		floor=med["BenchmarkSetupPivot/unshare-only"]
		for (n in med) printf "%-50s median %8.0f us  %5.1fx floor\n", n, med[n]/1000, med[n]/floor
	}' | sort -k3n
if command -v strace >/dev/null; then
	cd "$dir" && strace -f -c -o "$dir/strace.txt" "$dir/rootfs.test" -test.run '^$' \
		-test.bench 'SetupPivot/runc-spec$' -test.benchtime 50x >/dev/null
	echo "syscalls per runc-spec Setup+Pivot (strace -c, /50, Go runtime calls left out):"
	awk 'NR>2 && $NF !~ /futex|rt_sig|mmap|munmap|madvise|nanosleep|sched_yield|clone|epoll|tgkill|getpid|gettid|sigaltstack|exit|rseq|set_robust|prctl|^total|^-/ && $(NF-1) ~ /^[0-9]+$/ {
		n=$(NF-1); if ($(NF-2) ~ /^[0-9]+$/ && NF==6) n=$(NF-2); s+=n/50; printf "  %-14s %6.1f\n", $NF, n/50 }
		END {printf "  %-14s %6.1f\n", "total", s}' "$dir/strace.txt"
fi
