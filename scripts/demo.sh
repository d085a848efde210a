#!/usr/bin/env bash
# The main job, offline: build a small image from Debian's busybox-static and
# run a container from it through the estiba daemon (started here in the
# background on a temporary socket and data root, stopped at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/bin/estiba
[ -x "$BIN" ] && [ -x "$PWD/bin/estibad" ] || make build # estiba daemon execs bin/estibad
BUSYBOX=${BUSYBOX:-/bin/busybox}
[ -x "$BUSYBOX" ] || { echo "demo: $BUSYBOX missing (apt-get install busybox-static)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/estiba-demo.XXXXXX)
# Containers run as host ids of their own (user namespaces): they must be
# able to traverse to their rootfs and to the runtime binary.
chmod 711 "$WORK"
RUN=$WORK/run
export ESTIBA_HOST=unix://$WORK/estiba.sock
DAEMON_PID=
# The daemon keeps its default network's bridge and nftables table when it
# stops (a restart must not cut its containers off), but this daemon's data
# root goes with the demo: what it made on the host goes too. What was there
# before (another estiba daemon's) stays.
links_before=$(ip -o link show 2>/dev/null | awk -F': ' '$2 ~ /^estb/ {print $2}')
table_before=$(nft list table inet estiba >/dev/null 2>&1 && echo yes || true)
remove_host_network() {
	for l in $(ip -o link show 2>/dev/null | awk -F': ' '$2 ~ /^estb/ {print $2}'); do
		grep -qx "$l" <<< "$links_before" || ip link del "$l" 2>/dev/null
	done
	[ -n "$table_before" ] || nft delete table inet estiba 2>/dev/null
}
cleanup() {
	set +e
	if [ -n "$DAEMON_PID" ]; then
		"$BIN" ps -aq 2>/dev/null | xargs -r "$BIN" rm -f >/dev/null 2>&1
		kill "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null
	fi
	# The monitor outlives the daemon by design; with no container left it
	# exits on SIGTERM.
	if [ -f "$RUN/monitor.pid" ]; then
		mpid=$(cat "$RUN/monitor.pid")
		kill "$mpid" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$mpid" 2>/dev/null || break; sleep 0.1; done
	fi
	remove_host_network
	rm -rf "$WORK"
}
trap cleanup EXIT

echo "== building a busybox rootfs tarball from $BUSYBOX"
ROOTFS=$WORK/rootfs
mkdir -p "$ROOTFS"/{bin,etc,tmp,root,proc,sys,dev}
cp "$BUSYBOX" "$ROOTFS/bin/busybox"
for applet in $("$BUSYBOX" --list); do
	[ -e "$ROOTFS/bin/$applet" ] || ln -s busybox "$ROOTFS/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$ROOTFS/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$ROOTFS/etc/group"
chmod 1777 "$ROOTFS/tmp"
tar --numeric-owner -C "$ROOTFS" -cf "$WORK/rootfs.tar" .

echo "== starting the daemon (data root $WORK/data)"
"$BIN" daemon -H "$ESTIBA_HOST" --data-root "$WORK/data" --exec-root "$RUN" --config-file /dev/null 2> "$WORK/daemon.log" &
DAEMON_PID=$!
for _ in $(seq 100); do "$BIN" version >/dev/null 2>&1 && break; sleep 0.1; done
"$BIN" version

echo "== estiba import rootfs.tar demo/busybox"
"$BIN" import "$WORK/rootfs.tar" demo/busybox
"$BIN" images

echo "== estiba run --rm demo/busybox echo hello"
"$BIN" run --rm demo/busybox echo hello from an estiba container
"$BIN" run --rm demo/busybox sh -c 'echo "uid=$(id -u) hostname=$(hostname)"; grep -E "^(NoNewPrivs|Seccomp|CapEff):" /proc/self/status; cat /proc/self/uid_map'
echo "== done"
