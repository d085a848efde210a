#!/usr/bin/env bash
# Time pulling the image-load benchmark image (5 layers, ~135 MB gzip) from a
# local docker-registry on 127.0.0.1: `estiba pull` through a daemon with a
# temp data root vs `podman pull --tls-verify=false`, alternating, each into
# an empty store (the image is removed between runs). Prints medians and the
# ratio (target: estiba ≤ 0.6× podman). Usage: bench/image-pull.sh [RUNS]
# (default 5).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
CACHE=${ESTIBA_BENCH_CACHE:-/var/tmp/estiba-bench}
mkdir -p "$CACHE"
go build -o "$CACHE/imageload" ./bench/imageload
CGO_ENABLED=0 go build -o "$CACHE/estiba" ./cmd/estiba
CGO_ENABLED=0 go build -o "$CACHE/estibad" ./cmd/estibad # `estiba daemon` execs it
ARCHIVE=$CACHE/image-load.tar
[ -f "$ARCHIVE" ] || "$CACHE/imageload" -gen "$ARCHIVE"
WORK=$(mktemp -d /tmp/estiba-pull.XXXXXX)
chmod 711 "$WORK"
PODMAN=(podman --root "$WORK/podman" --runroot "$WORK/podman-run" --storage-driver overlay)
HOSTSOCK="unix://$WORK/sock"
ESTIBA=("$CACHE/estiba" -H "$HOSTSOCK")
REG_PID="" DAEMON_PID=""
cleanup() {
	[ -n "$DAEMON_PID" ] && { kill "$DAEMON_PID" 2>/dev/null; wait "$DAEMON_PID" 2>/dev/null || true; }
	if [ -f "$WORK/run/monitor.pid" ]; then
		mp=$(cat "$WORK/run/monitor.pid")
		kill "$mp" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$mp" 2>/dev/null || break; sleep 0.1; done
	fi
	umount -l "$WORK/run/exe/estiba-runtime" 2>/dev/null || true
	[ -n "$REG_PID" ] && { kill "$REG_PID" 2>/dev/null; wait "$REG_PID" 2>/dev/null || true; }
	"${PODMAN[@]}" rmi -af >/dev/null 2>&1 || true
	"${PODMAN[@]}" system reset -f >/dev/null 2>&1 || true
	umount -R "$WORK/podman/overlay" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

# A plain-HTTP registry on a free loopback port, storage in $WORK.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
REG=127.0.0.1:$PORT
cat >"$WORK/registry.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $WORK/registry}}
http: {addr: $REG}
YML
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 100); do curl -sf "http://$REG/v2/" >/dev/null && break; sleep 0.1; done
IMAGE=$REG/bench/image:latest
skopeo copy -q --dest-tls-verify=false "docker-archive:$ARCHIVE" "docker://$IMAGE"

"$CACHE/estiba" daemon -H "$HOSTSOCK" --data-root "$WORK/data" --exec-root "$WORK/run" --config-file /dev/null 2>"$WORK/daemon.log" &
DAEMON_PID=$!
for _ in $(seq 100); do "${ESTIBA[@]}" version >/dev/null 2>&1 && break; sleep 0.1; done

now() { date +%s.%N; }
declare -A T
run_estiba() { "${ESTIBA[@]}" pull "$IMAGE" >/dev/null; }
reset_estiba() { "${ESTIBA[@]}" rmi "$IMAGE" >/dev/null; }
run_podman() { "${PODMAN[@]}" pull -q --tls-verify=false "$IMAGE" >/dev/null; }
reset_podman() { "${PODMAN[@]}" rmi -af >/dev/null; }

for r in $(seq "$RUNS"); do
	for who in estiba podman; do
		sync
		s=$(now); "run_$who"; e=$(now)
		T[$who]+="$(echo "$e - $s" | bc) "
		"reset_$who"
	done
	echo "run $r done" >&2
done

median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
me=$(echo "${T[estiba]}" | median); mp=$(echo "${T[podman]}" | median)
echo "image: $(du -m "$ARCHIVE" | cut -f1) MB archive pushed to $REG, $RUNS pulls each, alternating"
printf "%-8s median %6.2f s   runs: %s\n" estiba "$me" "${T[estiba]}" podman "$mp" "${T[podman]}"
printf "ratio estiba/podman %.2f (target <= 0.60)\n" "$(echo "$me / $mp" | bc -l)"
