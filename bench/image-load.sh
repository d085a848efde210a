#!/usr/bin/env bash
# Time loading a 5-layer docker-archive (~130 MB gzip, ~290 MB / 7k files
# unpacked): estiba's image store vs `podman load` vs plain `tar -xzf` of
# the layers, alternating A B C A B C, each from an empty store. Prints
# medians and ratios. Usage: bench/image-load.sh [RUNS] (default 5).
set -euo pipefail
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
	"${PODMAN[@]}" rmi -af >/dev/null 2>&1 || true
	"${PODMAN[@]}" system reset -f >/dev/null 2>&1 || true
	umount -R "$WORK/podman/overlay" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

# The layers for the tar baseline, extracted once outside the timing.
mkdir -p "$WORK/layers"
tar -xf "$ARCHIVE" -C "$WORK/layers"
LAYERS=$(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))[0]["Layers"]))' "$WORK/layers/manifest.json")

now() { date +%s.%N; }
declare -A T
run_estiba() { "$CACHE/imageload" -load "$ARCHIVE" -root "$WORK/estiba" >/dev/null; }
reset_estiba() { rm -rf "$WORK/estiba"; }
run_podman() { "${PODMAN[@]}" load -q -i "$ARCHIVE" >/dev/null; }
reset_podman() { "${PODMAN[@]}" rmi -af >/dev/null; }
run_tar() {
	local i=0
	for l in $LAYERS; do mkdir -p "$WORK/tar/$i"; tar -xzf "$WORK/layers/$l" -C "$WORK/tar/$i"; i=$((i + 1)); done
}
reset_tar() { rm -rf "$WORK/tar"; }

for r in $(seq "$RUNS"); do
	for who in estiba podman tar; do
		sync
		s=$(now); "run_$who"; e=$(now)
		T[$who]+="$(echo "$e - $s" | bc) "
		"reset_$who"
	done
	echo "run $r done" >&2
done

median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
me=$(echo "${T[estiba]}" | median); mp=$(echo "${T[podman]}" | median); mt=$(echo "${T[tar]}" | median)
echo "archive: $(du -m "$ARCHIVE" | cut -f1) MB, $RUNS runs each, alternating"
printf "%-8s median %6.2f s   runs: %s\n" estiba "$me" "${T[estiba]}" podman "$mp" "${T[podman]}" tar "$mt" "${T[tar]}"
printf "ratio estiba/podman %.2f   estiba/tar %.2f   podman/tar %.2f\n" \
	"$(echo "$me / $mp" | bc -l)" "$(echo "$me / $mt" | bc -l)" "$(echo "$mp / $mt" | bc -l)"
