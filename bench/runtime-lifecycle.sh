#!/usr/bin/env bash
# Lifecycle of one container running `true` (run = create+start+wait+delete)
# with estiba-runtime, runc and crun on the same busybox bundle, plus the
# floor `unshare -fpmuin true`, measured in short interleaved batches
# (A B C D, A B C D...) so the machine's drift hits all alike; medians over
# all batches and ratios; then peak RSS of each via /usr/bin/time -v.
#
#   bench/runtime-lifecycle.sh [runs-per-batch] [batches]
#
# crun refuses hybrid cgroup hosts, so every command runs in a private mount
# namespace where /sys/fs/cgroup/unified is unmounted (the same for
# all, so the comparison stays fair).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-20}
BATCHES=${2:-5}
EST=${EST:-$PWD/bin/estiba-runtime}
[ -x "$EST" ] || { echo "make build first"; exit 1; }
for t in hyperfine runc crun unshare /usr/bin/time; do command -v $t >/dev/null || { echo "missing $t"; exit 1; }; done

if [ -z "${_BENCH_NS:-}" ]; then
	exec env _BENCH_NS=1 unshare -m --propagation private "$0" "$@"
fi
if [ -d /sys/fs/cgroup/unified ] && mountpoint -q /sys/fs/cgroup/unified; then
	umount -l /sys/fs/cgroup/unified
fi

work=$(mktemp -d /tmp/estiba-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bundle/rootfs/bin" "$work/bundle/rootfs/"{proc,sys,dev,tmp}
cp /bin/busybox "$work/bundle/rootfs/bin/"
ln -s busybox "$work/bundle/rootfs/bin/true"
ln -s busybox "$work/bundle/rootfs/bin/sh"
cd "$work/bundle"
"$EST" spec
python3 - <<'PY'
import json
c = json.load(open("config.json"))
c["process"]["terminal"] = False
c["process"]["args"] = ["true"]
c["ociVersion"] = "1.0.2"  # crun 1.8 refuses newer
json.dump(c, open("config.json", "w"))
PY
# Warm the read-only init binary mount (made once per binary).
"$EST" --root "$work/est" run warm >/dev/null

declare -A cmds=(
	[estiba]="$EST --root $work/est run e"
	[runc]="runc --root $work/runc run r"
	[crun]="crun --root $work/crun run c"
	[floor]="unshare -fpmuin true"
)
order=(estiba runc crun floor)
for b in $(seq "$BATCHES"); do
	for n in "${order[@]}"; do
		hyperfine -N -w 2 -r "$RUNS" --export-json "$work/$n.$b.json" "${cmds[$n]}" >/dev/null 2>&1 ||
			hyperfine -w 2 -r "$RUNS" --export-json "$work/$n.$b.json" "${cmds[$n]}" >/dev/null
	done
done
for n in "${order[@]}"; do
	/usr/bin/time -v ${cmds[$n]} 2> "$work/$n.time" >/dev/null || true
done
python3 - "$work" "$BATCHES" "${order[@]}" <<'PY'
import json, statistics, sys, re
work, batches, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
med = {}
for n in names:
    times = []
    for b in range(1, batches + 1):
        times += json.load(open(f"{work}/{n}.{b}.json"))["results"][0]["times"]
    med[n] = statistics.median(times) * 1000
rss = {}
for n in names:
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(f"{work}/{n}.time").read())
    rss[n] = int(m.group(1)) / 1024 if m else float("nan")
print(f"{'runtime':10} {'median ms':>10} {'vs estiba':>10} {'vs floor':>9} {'peak RSS MiB':>13}")
for n in names:
    print(f"{n:10} {med[n]:10.2f} {med[n]/med['estiba']:9.2f}x {med[n]/med['floor']:8.2f}x {rss[n]:13.1f}")
PY
