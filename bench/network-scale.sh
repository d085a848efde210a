#!/usr/bin/env bash
# Usage: bench/network-scale.sh [N [JOBS]]
# Attach N (default 1000) network namespaces to one estiba network and report
# attach time/rate, kernel memory per container, and iperf3 throughput over
# the direct routed veth path vs a published port (DNAT from the host's
# 127.0.0.1, and hairpin from another container). Then the same N attaches
# with the peer podman uses on this host: the CNI bridge plugin (host-local
# IPAM, ipMasq), one plugin process per container. Run as root. Cleans up.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000}
JOBS=${2:-1} # parallel attaches
# The CNI peer takes ~0.5 s per container here: by default it does 100.
PEER_N=${PEER_N:-$((N < 100 ? N : 100))}
work=$(mktemp -d /tmp/netscale.XXXXXX)
cleanup_cni() {
	for ((i = 0; i < PEER_N; i++)); do ip netns del "estcni$i" 2>/dev/null || true; done
	ip link del estcni0 2>/dev/null || true
}
trap 'cleanup_cni; rm -rf "$work"' EXIT
go build -o "$work/netscale" ./bench/netscale
echo "== estiba (routed veth, 1 published port each)"
/usr/bin/time -v "$work/netscale" -n "$N" -j "$JOBS" 2> "$work/time.txt"
grep -E 'Maximum resident|Elapsed' "$work/time.txt" | sed 's/^\s*/netscale process: /'

echo "== peer: CNI bridge plugin (podman's CNI backend), no published ports, N=$PEER_N"
CNI=/usr/lib/cni
if [ -x "$CNI/bridge" ]; then
	cat > "$work/cni.json" <<JSON
{"cniVersion":"1.0.0","name":"estcni","type":"bridge","bridge":"estcni0","isGateway":true,"ipMasq":true,
 "ipam":{"type":"host-local","ranges":[[{"subnet":"10.228.0.0/16"}]],"dataDir":"$work/ipam"}}
JSON
	for ((i = 0; i < PEER_N; i++)); do ip netns add "estcni$i"; done
	cni() { # cni ADD|DEL i
		CNI_COMMAND=$1 CNI_CONTAINERID="c$2" CNI_NETNS="/var/run/netns/estcni$2" CNI_IFNAME=eth0 \
			CNI_PATH=$CNI "$CNI/bridge" < "$work/cni.json" > /dev/null
	}
	rate() { awk -v n="$PEER_N" -v what="$1" -v s="$2" -v e="$3" 'BEGIN { printf "%s %d in %.2fs (%.0f/s, %.2f ms each)\n", what, n, e - s, n / (e - s), (e - s) * 1000 / n }'; }
	start=$(date +%s.%N)
	for ((i = 0; i < PEER_N; i++)); do cni ADD "$i"; done
	end=$(date +%s.%N)
	rate "cni attach:  " "$start" "$end"
	start=$(date +%s.%N)
	for ((i = 0; i < PEER_N; i++)); do cni DEL "$i"; done
	end=$(date +%s.%N)
	rate "cni detach:  " "$start" "$end"
	cleanup_cni
else
	echo "CNI plugins not installed: peer skipped"
fi

# Nothing of ours may remain.
if ip -br link | grep -q '^est'; then echo "LEAK: links"; ip -br link | grep '^est'; exit 1; fi
if nft list tables | grep -q estiba; then echo "LEAK: nft table"; exit 1; fi
