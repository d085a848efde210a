#!/usr/bin/env bash
# Engine benchmarks, estiba vs podman (+crun) and docker if a dockerd runs:
#  1. `run --rm img true`, alternating A B A B, medians and ratios;
#  2. N detached `sleep` containers: start rate at N=100,500,1000 and host
#     memory per container (MemAvailable delta / N), with the engine's own
#     userspace share (PSS of daemon+monitor, or conmon+podman) split out.
# Run as root after `make build`. Knobs: RUNS (default 20), N (default 1000).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-20}
N=${N:-1000}
BIN=$PWD/bin/estiba
[ -x "$BIN" ] || make build >/dev/null
WORK=$(mktemp -d /var/tmp/estiba-bench-engine.XXXXXX)
chmod 711 "$WORK"
export ESTIBA_HOST=unix://$WORK/estiba.sock
DAEMON_PID=
PODMAN_ROOT=$WORK/podman
cleanup() {
	set +e
	[ -n "$DAEMON_PID" ] && { "$BIN" ps -aq | xargs -r "$BIN" rm -f >/dev/null 2>&1; kill "$DAEMON_PID"; wait "$DAEMON_PID"; }
	[ -f "$WORK/run/monitor.pid" ] && kill "$(cat "$WORK/run/monitor.pid")" && sleep 1
	umount "$WORK/run/exe/estiba-runtime" 2>/dev/null
	podman_cmd rm -af -t 0 >/dev/null 2>&1
	podman_cmd system reset -f >/dev/null 2>&1
	rm -rf "$WORK"
}
trap cleanup EXIT

# podman with crun: crun refuses hybrid cgroup hosts unless the cgroup2
# mount is hidden (see shared PEERS.md), and podman's default ulimits need
# a NOFILE cap below the host's hard limit.
cat > "$WORK/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
CONF
podman_cmd() {
	CONTAINERS_CONF=$WORK/containers.conf unshare -m --propagation private sh -c \
		'mount -t tmpfs none /sys/fs/cgroup/unified 2>/dev/null; exec podman --root "$0/root" --runroot "$0/runroot" --runtime crun "$@"' \
		"$PODMAN_ROOT" "$@"
}
have_podman=0; command -v podman >/dev/null && command -v crun >/dev/null && have_podman=1

echo "== image: busybox-static rootfs"
ROOTFS=$WORK/rootfs
mkdir -p "$ROOTFS"/{bin,etc,tmp}
cp /bin/busybox "$ROOTFS/bin/busybox"
for a in sh true sleep; do ln -s busybox "$ROOTFS/bin/$a"; done
echo 'root:x:0:0:root:/:/bin/sh' > "$ROOTFS/etc/passwd"
tar --numeric-owner -C "$ROOTFS" -cf "$WORK/rootfs.tar" .

"$BIN" daemon -H "$ESTIBA_HOST" --data-root "$WORK/data" --exec-root "$WORK/run" --config-file /dev/null 2>"$WORK/daemon.log" &
DAEMON_PID=$!
for _ in $(seq 100); do "$BIN" version >/dev/null 2>&1 && break; sleep 0.1; done
"$BIN" import "$WORK/rootfs.tar" bench/bb >/dev/null
((have_podman)) && podman_cmd import "$WORK/rootfs.tar" bench/bb >/dev/null

now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m/1e6}'; }

echo "== run --rm img true, $RUNS runs each, alternating"
: > "$WORK/t.estiba"; : > "$WORK/t.podman"
for _ in $(seq "$RUNS"); do
	s=$(now); "$BIN" run --rm --network none bench/bb true; echo $(($(now) - s)) >> "$WORK/t.estiba"
	if ((have_podman)); then
		s=$(now); podman_cmd run --rm --network none bench/bb true; echo $(($(now) - s)) >> "$WORK/t.podman"
	fi
done
me=$(median < "$WORK/t.estiba")
echo "estiba run --rm: median ${me} ms"
if ((have_podman)); then
	mp=$(median < "$WORK/t.podman")
	echo "podman+crun run --rm: median ${mp} ms"
	awk -v a="$me" -v b="$mp" 'BEGIN {printf "ratio podman/estiba: %.2f\n", b/a}'
fi

memavail() { awk '/MemAvailable/ {print $2}' /proc/meminfo; }
pss() { # total PSS in KiB of the given pids
	local t=0
	for p in "$@"; do
		v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
		t=$((t + ${v:-0}))
	done
	echo $t
}

# density NAME START_CMD USERSPACE_PIDS_CMD
density() {
	local name=$1 start=$2 pids=$3
	sync; echo 3 > /proc/sys/vm/drop_caches
	local m0 p0 t0 i=0
	m0=$(memavail); p0=$(pss $($pids)); t0=$(now)
	for target in 100 500 1000; do
		((target > N)) && break
		while ((i < target)); do $start >/dev/null; i=$((i + 1)); done
		local dt=$(( ($(now) - t0) / 1000000 ))
		awk -v n="$target" -v ms="$dt" -v name="$name" 'BEGIN {printf "%s: %d started in %d ms: %.1f/s\n", name, n, ms, n*1000/ms}'
	done
	sleep 2
	local m1 p1
	m1=$(memavail); p1=$(pss $($pids))
	awk -v n="$i" -v dm="$((m0 - m1))" -v dp="$((p1 - p0))" -v name="$name" \
		'BEGIN {printf "%s: memory per container %.0f KiB (engine userspace %.0f KiB, kernel and rest %.0f KiB)\n", name, dm/n, dp/n, (dm-dp)/n}'
}

echo "== $N detached sleep containers"
estiba_pids() { echo "$DAEMON_PID $(cat "$WORK/run/monitor.pid")"; }
density estiba "$BIN run -d --network none bench/bb sleep 3600" estiba_pids
"$BIN" ps -q | xargs -r -n 100 "$BIN" rm -f >/dev/null
if ((have_podman)); then
	# conmon is podman's per-container supervisor: its PSS is the userspace
	# share (podman itself exits after each start).
	podman_pids() { pgrep -d ' ' -x conmon || true; }
	density "podman+crun" "podman_cmd run -d --network none bench/bb sleep 3600" podman_pids
	podman_cmd rm -af -t 0 >/dev/null
fi
