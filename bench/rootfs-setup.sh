#!/usr/bin/env bash
# Cost of runtime/rootfs Setup+Pivot per container start, no fork: each
# iteration is a fresh OS thread with its own mount namespace (see
# BenchmarkSetupPivot). Prints the median of 5 runs per case (the time of
# Setup+Pivot alone, and of the whole iteration with thread and namespace
# creation and teardown), and the syscalls one runc-spec
# Setup+Pivot makes (strace -c over 50 of them). runc and crun do the same
# work inside their init and cannot be timed apart: compare whole lifecycles
# with runtime-lifecycle.sh. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d /tmp/rootfs-bench.XXXXXX)
trap 'rm -rf "$dir"' EXIT
go test -c -o "$dir/rootfs.test" ./runtime/rootfs
"$dir/rootfs.test" -test.run '^$' -test.bench SetupPivot -test.benchtime 300x -test.count 5 > "$dir/out.txt"
# Column 5 is setup+pivot-ns/op: Setup+Pivot alone, without the thread's
# creation and the namespace's teardown that ns/op (column 3) also counts.
awk '/^BenchmarkSetupPivot/ {name=$1; sub(/-[0-9]+$/, "", name); print name, $3, $5}' "$dir/out.txt" | sort -k1,1 -k3n |
	awk '{v[$1]=v[$1] " " $3; w[$1]=w[$1] " " $2} END {
		for (n in v) { k=split(v[n], a, " "); med[n]=a[int((k+1)/2)]; split(w[n], c, " "); all[n]=c[int((k+1)/2)] }
		for (n in med) printf "%-46s Setup+Pivot median %7.0f us   (whole iteration %7.0f us)\n", n, med[n]/1000, all[n]/1000
	}' | sort -k4n
if command -v strace >/dev/null; then
	cd "$dir" && strace -f -c -o "$dir/strace.txt" "$dir/rootfs.test" -test.run '^$' \
		-test.bench 'SetupPivot/runc-spec$' -test.benchtime 50x >/dev/null
	echo "syscalls per runc-spec Setup+Pivot (strace -c, /50, Go runtime calls left out):"
	awk 'NR>2 && $NF !~ /futex|rt_sig|mmap|munmap|madvise|nanosleep|sched_yield|clone|epoll|tgkill|getpid|gettid|sigaltstack|exit|rseq|set_robust|prctl|^total|^-/ && $(NF-1) ~ /^[0-9]+$/ {
		n=$(NF-1); if ($(NF-2) ~ /^[0-9]+$/ && NF==6) n=$(NF-2); s+=n/50; printf "  %-14s %6.1f\n", $NF, n/50 }
		END {printf "  %-14s %6.1f\n", "total", s}' "$dir/strace.txt"
fi
