#!/usr/bin/env bash
# Time loading a 5-layer docker-archive (~130 MB gzip, ~290 MB / 7k files
# unpacked): estiba's image store vs `podman load` vs `docker load` (a
# private dockerd, bench/lib/dockerd.sh) vs plain `tar -xzf` of the layers,
# alternating A B C D A B C D, each from an empty store. Prints medians and
# ratios of wall time and of CPU time (user+sys; docker's is the daemon's,
# where docker load does its work): on a host shared with other jobs the
# wall time mostly measures waiting for a CPU, the CPU time does not.
# Without dockerd the docker column is skipped.
# Usage: bench/image-load.sh [RUNS] (default 5).
set -euo pipefail
. "$(dirname "$0")/lib/dockerd.sh"
cd "$(dirname "$0")/.."
RUNS=${1:-5}
CACHE=${ESTIBA_BENCH_CACHE:-/var/tmp/estiba-bench}
mkdir -p "$CACHE"
go build -o "$CACHE/imageload" ./bench/imageload
ARCHIVE=$CACHE/image-load.tar
[ -f "$ARCHIVE" ] || "$CACHE/imageload" -gen "$ARCHIVE"
WORK=$(mktemp -d "$CACHE/run.XXXXXX")
PODMAN=(podman --root "$WORK/podman" --runroot "$WORK/podman-run" --storage-driver overlay)
cleanup() {
	dockerd_stop
	"${PODMAN[@]}" rmi -af >/dev/null 2>&1 || true
	"${PODMAN[@]}" system reset -f >/dev/null 2>&1 || true
	umount -R "$WORK/podman/overlay" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
PEERS="estiba podman tar"
if dockerd_start "$WORK/docker"; then PEERS="estiba podman docker tar"; fi

# The layers for the tar baseline, extracted once outside the timing.
mkdir -p "$WORK/layers"
tar -xf "$ARCHIVE" -C "$WORK/layers"
LAYERS=$(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))[0]["Layers"]))' "$WORK/layers/manifest.json")

declare -A T C
TIMEFORMAT='%R %U %S'
CLK=$(getconf CLK_TCK)
# daemon_cpu: dockerd's user+sys seconds, its reaped children included.
daemon_cpu() {
	[ -n "${DOCKERD_PID:-}" ] || { echo 0; return; }
	awk -v clk="$CLK" '{print ($14 + $15 + $16 + $17) / clk}' "/proc/$DOCKERD_PID/stat"
}
run_estiba() { "$CACHE/imageload" -load "$ARCHIVE" -root "$WORK/estiba" >/dev/null; }
reset_estiba() { rm -rf "$WORK/estiba"; }
run_podman() { "${PODMAN[@]}" load -q -i "$ARCHIVE" >/dev/null; }
reset_podman() { "${PODMAN[@]}" rmi -af >/dev/null; }
run_docker() { docker load -q -i "$ARCHIVE" >/dev/null; }
reset_docker() { docker images -aq | sort -u | xargs -r docker rmi -f >/dev/null; }
run_tar() {
	local i=0
	for l in $LAYERS; do mkdir -p "$WORK/tar/$i"; tar -xzf "$WORK/layers/$l" -C "$WORK/tar/$i"; i=$((i + 1)); done
}
reset_tar() { rm -rf "$WORK/tar"; }

for r in $(seq "$RUNS"); do
	for who in $PEERS; do
		sync
		d0=$(daemon_cpu)
		{ time "run_$who" 2>>"$WORK/errors.log"; } 2>"$WORK/time"
		d1=$(daemon_cpu)
		read -r real user sys <"$WORK/time"
		[ "$who" = docker ] || d1=$d0
		T[$who]+="$real "
		C[$who]+="$(echo "$user + $sys + $d1 - $d0" | bc) "
		"reset_$who"
	done
	echo "run $r done" >&2
done

median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
me=$(echo "${T[estiba]}" | median); mp=$(echo "${T[podman]}" | median); mt=$(echo "${T[tar]}" | median)
echo "archive: $(du -m "$ARCHIVE" | cut -f1) MB, $RUNS runs each, alternating ($PEERS)"
for who in $PEERS; do
	printf "%-8s wall median %6.2f s  cpu median %6.2f s   wall runs: %s\n" "$who" \
		"$(echo "${T[$who]}" | median)" "$(echo "${C[$who]}" | median)" "${T[$who]}"
done
ce=$(echo "${C[estiba]}" | median); cp=$(echo "${C[podman]}" | median)
printf "wall ratio estiba/podman %.2f (target <= 0.60)   estiba/tar %.2f   podman/tar %.2f\n" \
	"$(echo "$me / $mp" | bc -l)" "$(echo "$me / $mt" | bc -l)" "$(echo "$mp / $mt" | bc -l)"
printf "cpu  ratio estiba/podman %.2f\n" "$(echo "$ce / $cp" | bc -l)"
if [ -n "${T[docker]:-}" ]; then
	md=$(echo "${T[docker]}" | median); cdk=$(echo "${C[docker]}" | median)
	printf "wall ratio estiba/docker %.2f   docker/podman %.2f\n" "$(echo "$me / $md" | bc -l)" "$(echo "$md / $mp" | bc -l)"
	printf "cpu  ratio estiba/docker %.2f\n" "$(echo "$ce / $cdk" | bc -l)"
fi
