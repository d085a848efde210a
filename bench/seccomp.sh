#!/usr/bin/env bash
# Docker's default seccomp profile compiled by estiba (runtime/seccomp) and by
# libseccomp as runc loads it (optimize level 1, runc's default) and with
# libseccomp's binary tree (level 2). Prints each filter's length and the
# instructions it runs per syscall (deterministic), then the wall time of
# N cheap syscalls under each filter, runs alternating, medians and ratios:
# personality(0xffffffff) runs the filter on every call (argument rules);
# getppid does not on Linux >= 5.11, which caches number-only verdicts.
# runc's own -ENOSYS stub (~10 instructions) is not in the libseccomp rows.
# Needs python3-seccomp (apt). Run as root or not; it installs filters only
# into its own short-lived processes.
set -euo pipefail
cd "$(dirname "$0")/.."
CALLS=${CALLS:-1000000}
ROUNDS=${ROUNDS:-7}
SYSCALLS=${SYSCALLS:-"personality getppid"}
dir=$(mktemp -d /tmp/seccompbench.XXXXXX)
trap 'rm -rf "$dir"' EXIT
go build -o "$dir/seccompbench" ./bench/seccompbench
"$dir/seccompbench" profile > "$dir/docker.json"
"$dir/seccompbench" compile "$dir/estiba.bpf" < "$dir/docker.json"
/usr/bin/python3 bench/seccomp_libseccomp.py "$dir/libseccomp-runc.bpf" 1 < "$dir/docker.json"
/usr/bin/python3 bench/seccomp_libseccomp.py "$dir/libseccomp-tree.bpf" 2 < "$dir/docker.json"
: > "$dir/none.bpf"
filters="none estiba libseccomp-runc libseccomp-tree"
echo "== Docker default profile (x86_64, x86, x32), instructions run per x86_64 syscall"
"$dir/seccompbench" stats estiba="$dir/estiba.bpf" libseccomp-runc="$dir/libseccomp-runc.bpf" \
	libseccomp-tree="$dir/libseccomp-tree.bpf"
go test -run=NONE -bench=CompileDocker -benchtime=200x ./runtime/seccomp | grep Benchmark

for sc in $SYSCALLS; do
	echo "== $CALLS x $sc, $ROUNDS rounds alternating: median seconds, ratio to no filter"
	for ((i = 0; i < ROUNDS; i++)); do
		for f in $filters; do
			s=$(date +%s%N)
			"$dir/seccompbench" exec "$dir/$f.bpf" "$dir/seccompbench" loop "$CALLS" "$sc"
			echo "$f $(($(date +%s%N) - s))" >> "$dir/times.$sc"
		done
	done
	base=$(awk '$1=="none"{print $2}' "$dir/times.$sc" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
	for f in $filters; do
		awk -v f="$f" '$1==f{print $2}' "$dir/times.$sc" | sort -n |
			awk -v f="$f" -v base="$base" '{a[NR]=$1} END{m=a[int((NR+1)/2)]; printf "%-16s %8.3f s  x%.2f\n", f, m/1e9, m/base}'
	done
done
