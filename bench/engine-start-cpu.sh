#!/usr/bin/env bash
# Where a detached start's cost goes, estiba only: N `run -d sleep` in
# batches of 25, per batch wall ms per start, CPU ms per start of the client
# (the `estiba run -d` processes: this shell's reaped children), of the daemon
# (self, and reaped children), of the monitor (self, and reaped children)
# and of its spawner (the helper that forks container inits), the daemon's
# and the spawner's page faults per start, and their RSS — the monitor's RSS growth per
# batch / 25 is its memory per running container.
# For a profile: perf record -g -p <pid> while it runs (build with
# `make build LDFLAGS=` for symbols). Run as root after `make build`.
# Knob: N (default 100).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/bin/estiba
N=${N:-100}
[ -x "$BIN" ] && [ -x "$PWD/bin/estibad" ] || make build >/dev/null # estiba daemon execs bin/estibad
WORK=$(mktemp -d /var/tmp/estiba-bench-cpu.XXXXXX)
chmod 711 "$WORK"
export ESTIBA_HOST=unix://$WORK/estiba.sock
DP=
cleanup() {
	set +e
	[ -n "$DP" ] && { "$BIN" ps -aq | xargs -r -n 100 "$BIN" rm -f >/dev/null 2>&1; kill "$DP"; wait "$DP"; }
	[ -f "$WORK/run/monitor.pid" ] && kill "$(cat "$WORK/run/monitor.pid")" && sleep 1
	umount "$WORK/run/exe/estiba-runtime" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT
ROOTFS=$WORK/rootfs
mkdir -p "$ROOTFS"/{bin,etc,tmp}
cp /bin/busybox "$ROOTFS/bin/busybox"
for a in sh true sleep; do ln -s busybox "$ROOTFS/bin/$a"; done
echo 'root:x:0:0:root:/:/bin/sh' > "$ROOTFS/etc/passwd"
tar --numeric-owner -C "$ROOTFS" -cf "$WORK/rootfs.tar" .
"$BIN" daemon -H "$ESTIBA_HOST" --data-root "$WORK/data" --exec-root "$WORK/run" --config-file /dev/null 2>"$WORK/daemon.log" &
DP=$!
for _ in $(seq 100); do "$BIN" version >/dev/null 2>&1 && break; sleep 0.1; done
"$BIN" import "$WORK/rootfs.tar" bench/bb >/dev/null
"$BIN" run -d --network none bench/bb sleep 3600 >/dev/null
MP=$(cat "$WORK/run/monitor.pid")
SP=$(pgrep -P "$MP" -f monitor-spawner || echo "$MP")
self() { awk '{print $14+$15}' "/proc/$1/stat"; }     # clock ticks (10 ms)
kids() { awk '{print $16+$17}' "/proc/$1/stat"; }
flt() { awk '{print $10}' "/proc/$1/stat"; }          # minor page faults
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
now() { date +%s%N; }
for b in $(seq $((N / 25))); do
	d0=$(self "$DP"); k0=$(kids "$DP"); f0=$(flt "$DP"); m0=$(self "$MP"); c0=$(kids "$MP"); p0=$(self "$SP"); g0=$(flt "$SP"); s=$(now); u0=$(kids $$)
	for _ in $(seq 25); do "$BIN" run -d --network none bench/bb sleep 3600 >/dev/null; done
	u1=$(kids $$); e=$((($(now) - s) / 1000000)); d1=$(self "$DP"); k1=$(kids "$DP"); f1=$(flt "$DP"); m1=$(self "$MP"); c1=$(kids "$MP"); p1=$(self "$SP"); g1=$(flt "$SP")
	echo "batch $b: $((e / 25)) ms/start; cpu ms/start client $(((u1 - u0) * 10 / 25)) daemon $(((d1 - d0) * 10 / 25)) (+children $(((k1 - k0) * 10 / 25)), faults $(((f1 - f0) / 25))) monitor $(((m1 - m0) * 10 / 25)) (+children $(((c1 - c0) * 10 / 25))) spawner $(((p1 - p0) * 10 / 25)) (faults $(((g1 - g0) / 25))); rss KiB daemon $(rss "$DP") monitor $(rss "$MP") spawner $(rss "$SP"); load $(cut -d' ' -f1 /proc/loadavg)"
done
