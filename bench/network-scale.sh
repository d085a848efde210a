#!/usr/bin/env bash
# Usage: bench/network-scale.sh [N [JOBS]]
# Attach N (default 1000) network namespaces to one estiba network and report
# attach time/rate, kernel memory per container, and iperf3 throughput over
# the direct routed veth path vs a published port (DNAT from the host's
# 127.0.0.1, and hairpin from another container). Run as root. Cleans up.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000}
JOBS=${2:-1} # parallel attaches
bin=$(mktemp -d /tmp/netscale.XXXXXX)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/netscale" ./bench/netscale
/usr/bin/time -v "$bin/netscale" -n "$N" -j "$JOBS" 2> "$bin/time.txt"
grep -E 'Maximum resident|Elapsed' "$bin/time.txt" | sed 's/^\s*/netscale process: /'
# Nothing of ours may remain.
if ip -br link | grep -q '^est'; then echo "LEAK: links"; ip -br link | grep '^est'; exit 1; fi
if nft list tables | grep -q estiba; then echo "LEAK: nft table"; exit 1; fi
