#!/usr/bin/env bash
# Usage: bench/network-scale.sh [N [JOBS]]
# 1. Through the engine: N (default 1000) `estiba run -d --network scale -p
#    PORT:8080` containers on one network, JOBS (default 1) CLI calls at a
#    time: start rate, host memory per container (MemAvailable delta / N) with
#    the engine's userspace share (PSS of daemon + monitor) split out, and
#    the time to remove them all.
# 2. Throughput (iperf3, T seconds, R rounds alternating, medians), with the N
#    containers still running: an iperf3 server runs in one container's
#    network namespace (nsenter), the client on the host:
#      estiba published port  127.0.0.1:PORT -> DNAT (nftables), no proxy
#      estiba direct veth     container address, routed veth
#      docker userland proxy  127.0.0.1:PORT -> docker-proxy (the private
#                             dockerd of bench/lib/dockerd.sh, --iptables=false)
#      docker direct veth     container address on docker0
# 3. LAYER=1: also the network layer alone (bench/netscale: N attaches without
#    the engine) and the CNI bridge plugin peer (podman's CNI backend).
# Knobs: T (default 5), R (default 3), LAYER (default 0). Run as root. Cleans up.
# Everything runs in a network namespace of its own (daemons, containers'
# veths, nftables tables, docker0, iperf3 clients): other estiba daemons on
# a shared host reconcile the host namespace's est* links and their table,
# and would take ours. The kernel paths measured are the same.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${NETSCALE_NETNS:-}" ]; then
	ns=estbench$$
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	rc=0
	NETSCALE_NETNS=$ns nsenter --net="/run/netns/$ns" "$0" "$@" || rc=$?
	ip netns del "$ns"
	exit $rc
fi
N=${1:-1000}
JOBS=${2:-1}
T=${T:-5}
R=${R:-3}
LAYER=${LAYER:-0}
make build >/dev/null
BIN=$PWD/bin/estiba
WORK=$(mktemp -d /var/tmp/estiba-bench-net.XXXXXX)
chmod 711 "$WORK"
export ESTIBA_HOST=unix://$WORK/estiba.sock
# A table of our own: other estiba daemons on this host rebuild theirs.
TABLE=estiba_bench$$
DAEMON_PID=
. bench/lib/dockerd.sh
go build -o "$WORK/netscale" ./bench/netscale

stop_estiba() {
	[ -n "$DAEMON_PID" ] || return 0
	kill "$DAEMON_PID"; wait "$DAEMON_PID" || true
	DAEMON_PID=
	[ -f "$WORK/run/monitor.pid" ] && kill "$(cat "$WORK/run/monitor.pid")" 2>/dev/null && sleep 1
	umount "$WORK/run/exe/estiba-runtime" 2>/dev/null || true
	# The daemon keeps its networks for containers that outlive it: remove them.
	[ -d "$WORK/data/network" ] && "$WORK/netscale" -teardown "$WORK/data/network" -table "$TABLE"
}
cleanup() {
	set +e
	for f in "$WORK"/iperf.*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
	[ -n "$DAEMON_PID" ] && "$BIN" ps -aq | xargs -r -n 100 "$BIN" rm -f >/dev/null 2>&1
	stop_estiba
	dockerd_stop
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s%N; }
memavail() { awk '/MemAvailable/ {print $2}' /proc/meminfo; }
pss() { # total PSS in KiB of the given pids
	local t=0 v
	for p in "$@"; do
		v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
		t=$((t + ${v:-0}))
	done
	echo $t
}
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.0f", m}'; }

echo "== image: busybox-static rootfs"
ROOTFS=$WORK/rootfs
mkdir -p "$ROOTFS"/{bin,etc,tmp}
cp /bin/busybox "$ROOTFS/bin/busybox"
for a in sh true sleep; do ln -s busybox "$ROOTFS/bin/$a"; done
echo 'root:x:0:0:root:/:/bin/sh' > "$ROOTFS/etc/passwd"
tar --numeric-owner -C "$ROOTFS" -cf "$WORK/rootfs.tar" .

# docker0 on a subnet of its own: estiba daemons' default networks take
# 172.17/16 and up, and an estiba network's unreachable route would shadow
# docker0's route of the same prefix.
have_docker=0
if dockerd_start "$WORK/docker" --bip 10.221.0.1/24; then
	have_docker=1
	docker import "$WORK/rootfs.tar" bench/bb >/dev/null
fi
"$BIN" daemon -H "$ESTIBA_HOST" --data-root "$WORK/data" --exec-root "$WORK/run" --config-file /dev/null --nft-table "$TABLE" 2>"$WORK/daemon.log" &
DAEMON_PID=$!
for _ in $(seq 100); do "$BIN" version >/dev/null 2>&1 && break; sleep 0.1; done
"$BIN" import "$WORK/rootfs.tar" bench/bb >/dev/null
"$BIN" network create --subnet 10.226.0.0/16 scale >/dev/null

echo "== estiba: $N containers on one network, one published port each, $JOBS at a time"
sync; echo 3 > /proc/sys/vm/drop_caches
m0=$(memavail); p0=$(pss "$DAEMON_PID"); t0=$(now)
seq "$N" | xargs -P "$JOBS" -I{} sh -c '"$0" run -d --network scale -p $((30000 + {})):8080 bench/bb sleep 100000 >/dev/null' "$BIN" || true # failures are counted below
t1=$(now)
running=$("$BIN" ps -q | wc -l)
sleep 2
m1=$(memavail); p1=$(pss "$DAEMON_PID" "$(cat "$WORK/run/monitor.pid")")
awk -v n="$N" -v r="$running" -v ns="$((t1 - t0))" 'BEGIN {printf "started %d (%d running) in %.1f s: %.1f/s, %.0f ms each\n", n, r, ns/1e9, n*1e9/ns, ns/1e6/n}'
awk -v n="$N" -v dm="$((m0 - m1))" -v dp="$((p1 - p0))" \
	'BEGIN {printf "memory per container: %.0f KiB (engine userspace %.0f KiB; kernel, container processes and rest %.0f KiB)\n", dm/n, dp/n, (dm-dp)/n}'
echo "published ports in the nft map: $(($(nft list map inet "$TABLE" pub4 | grep -o " : " | wc -l) - 1)); host veths: $(ip -br link | grep -c "^estv")"

echo "== throughput, iperf3 -t $T, $R rounds alternating (server in the container's netns)"
serve() { # serve NAME PID: iperf3 server on :8080 in the netns of PID
	nsenter --net="/proc/$2/ns/net" iperf3 -s -p 8080 -D --pidfile "$WORK/iperf.$1.pid" >/dev/null
	for _ in $(seq 50); do [ -s "$WORK/iperf.$1.pid" ] && break; sleep 0.1; done
	sleep 0.3
}
bps() { # bps HOST PORT: receiver goodput in Mbit/s
	local out
	for _ in $(seq 5); do
		out=$(timeout $((T + 10)) iperf3 -c "$1" -p "$2" -t "$T" -O 1 -J --connect-timeout 2000 2>/dev/null) || true
		if [ -n "$out" ] && ! grep -q '"error"' <<<"$out"; then
			python3 -c 'import json,sys; print("%.0f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e6))' <<<"$out"
			return
		fi
		sleep 0.2
	done
	echo 0
}
name1=$("$BIN" ps -q | tail -1)
epid=$("$BIN" inspect -f '{{.State.Pid}}' "$name1")
eip=$("$BIN" inspect -f '{{.NetworkSettings.Networks.scale.IPAddress}}' "$name1")
eport=$("$BIN" inspect -f '{{range $p, $b := .NetworkSettings.Ports}}{{range $b}}{{.HostPort}}{{end}}{{end}}' "$name1" | cut -c1-5)
serve estiba "$epid"
if ((have_docker)); then
	docker run -d --name netbench -p 127.0.0.1:29999:8080 bench/bb sleep 100000 >/dev/null
	dpid=$(docker inspect -f '{{.State.Pid}}' netbench)
	dip=$(docker inspect -f '{{.NetworkSettings.IPAddress}}' netbench)
	serve docker "$dpid"
	echo "docker-proxy processes: $(pgrep -c -x docker-proxy || true), RSS $(ps -o rss= -C docker-proxy | awk '{s+=$1} END {print s+0}') KiB in all"
fi
: > "$WORK/t.pub"; : > "$WORK/t.veth"; : > "$WORK/t.dproxy"; : > "$WORK/t.dveth"
for _ in $(seq "$R"); do
	bps 127.0.0.1 "$eport" >> "$WORK/t.pub"
	((have_docker)) && bps 127.0.0.1 29999 >> "$WORK/t.dproxy"
	bps "$eip" 8080 >> "$WORK/t.veth"
	((have_docker)) && bps "$dip" 8080 >> "$WORK/t.dveth"
done
pub=$(median < "$WORK/t.pub"); veth=$(median < "$WORK/t.veth")
echo "estiba published port (127.0.0.1:$eport, DNAT): median $pub Mbit/s  [$(tr '\n' ' ' < "$WORK/t.pub")]"
echo "estiba direct veth ($eip:8080):                  median $veth Mbit/s  [$(tr '\n' ' ' < "$WORK/t.veth")]"
awk -v a="$pub" -v b="$veth" 'BEGIN {printf "published / direct: %.2f\n", a/b}'
if ((have_docker)); then
	dp=$(median < "$WORK/t.dproxy"); dv=$(median < "$WORK/t.dveth")
	echo "docker userland proxy (127.0.0.1:29999):        median $dp Mbit/s  [$(tr '\n' ' ' < "$WORK/t.dproxy")]"
	echo "docker direct veth ($dip:8080):             median $dv Mbit/s  [$(tr '\n' ' ' < "$WORK/t.dveth")]"
	awk -v a="$pub" -v b="$dp" 'BEGIN {printf "estiba published / docker-proxy: %.2f\n", a/b}'
fi
for f in "$WORK"/iperf.*.pid; do kill "$(cat "$f")" 2>/dev/null || true; rm -f "$f"; done
dockerd_stop || true # its wait returns dockerd's status

echo "== estiba: remove the $N containers"
t0=$(now)
"$BIN" ps -aq | xargs -r -n 100 "$BIN" rm -f >/dev/null
t1=$(now)
awk -v n="$N" -v ns="$((t1 - t0))" 'BEGIN {printf "removed %d in %.1f s: %.1f/s\n", n, ns/1e9, n*1e9/ns}'
"$BIN" network rm scale >/dev/null
stop_estiba

if ((LAYER)); then
	# The CNI peer takes ~0.5 s per container here: by default it does 100.
	PEER_N=${PEER_N:-$((N < 100 ? N : 100))}
	echo "== network layer alone (no engine): $N attaches, 1 published port each"
	/usr/bin/time -v "$WORK/netscale" -n "$N" -j "$JOBS" 2> "$WORK/time.txt"
	grep -E 'Maximum resident|Elapsed' "$WORK/time.txt" | sed 's/^\s*/netscale process: /'
	echo "== peer: CNI bridge plugin (podman's CNI backend), no published ports, N=$PEER_N"
	CNI=/usr/lib/cni
	if [ -x "$CNI/bridge" ]; then
		cat > "$WORK/cni.json" <<JSON
{"cniVersion":"1.0.0","name":"estcni","type":"bridge","bridge":"estcni0","isGateway":true,"ipMasq":true,
 "ipam":{"type":"host-local","ranges":[[{"subnet":"10.228.0.0/16"}]],"dataDir":"$WORK/ipam"}}
JSON
		cleanup_cni() {
			for ((i = 0; i < PEER_N; i++)); do ip netns del "estcni$i" 2>/dev/null || true; done
			ip link del estcni0 2>/dev/null || true
		}
		for ((i = 0; i < PEER_N; i++)); do ip netns add "estcni$i"; done
		cni() { # cni ADD|DEL i
			CNI_COMMAND=$1 CNI_CONTAINERID="c$2" CNI_NETNS="/var/run/netns/estcni$2" CNI_IFNAME=eth0 \
				CNI_PATH=$CNI "$CNI/bridge" < "$WORK/cni.json" > /dev/null
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
fi

# Nothing of ours may remain (links of other users of this host are named
# differently; our anchors and veths are gone with the teardown above).
if ip -br link | grep -q '^est[vbi]'; then echo "note: est* links present (ours or another estiba's):"; ip -br link | grep '^est[vbi]' | head; fi
