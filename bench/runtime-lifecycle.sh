#!/usr/bin/env bash
# Lifecycle of one container running `true` (run = create+start+wait+delete)
# with estiba-runtime, runc and crun on the same busybox bundle, plus the
# floor `unshare -fpmuin true`, measured in short interleaved batches
# (A B C D, B C D A...) so the machine's drift hits all alike; medians over
# all batches and ratios; then peak RSS of each via /usr/bin/time -v.
#
#   bench/runtime-lifecycle.sh [runs-per-batch] [batches]
#
# crun refuses hybrid cgroup hosts, so every command runs in a private mount
# namespace where /sys/fs/cgroup/unified is unmounted (the same for
# all, so the comparison stays fair).
#
# Every run gets a fresh container id: hyperfine has no iteration counter,
# so each command (the floor too, for fairness) runs through the same tiny
# dash wrapper that bumps a counter file with builtins only (no fork) and
# execs the command with {N} replaced.
#
# EST_BASE=<another estiba-runtime> (say, a build of main, with its
# estiba-init beside it if it has one) adds it as "est-base", interleaved
# with the rest: before and after in one run.
#
# PROFILE=1 also prints, for one estiba run, the syscall summary
# (strace -c -f) and the largest wall-clock gaps of `strace -f -ttt`.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-20}
BATCHES=${2:-5}
EST=${EST:-$PWD/bin/estiba-runtime}
EST_BASE=${EST_BASE:-}
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
[ -z "$EST_BASE" ] || "$EST_BASE" --root "$work/estb" run warm >/dev/null

# uniq CMD...: run CMD with {N} replaced by a per-run counter.
cat > "$work/uniq" <<'SH'
#!/bin/dash
read n < "${0%/*}/counter"; n=$((n + 1)); echo $n > "${0%/*}/counter"
cmd=""; for a; do cmd="$cmd ${a%%\{N\}*}"; [ "$a" != "${a%%\{N\}*}" ] && cmd="$cmd$n${a#*\{N\}}"; done
exec $cmd
SH
chmod +x "$work/uniq"; echo 0 > "$work/counter"
U=$work/uniq
declare -A cmds=(
	[estiba]="$U $EST --root $work/est run e{N}"
	[runc]="$U runc --root $work/runc run r{N}"
	[crun]="$U crun --root $work/crun run c{N}"
	[floor]="$U unshare -fpmuin true"
)
order=(estiba runc crun floor)
if [ -n "$EST_BASE" ]; then
	cmds[est-base]="$U $EST_BASE --root $work/estb run b{N}"
	order=(est-base "${order[@]}")
fi
for b in $(seq "$BATCHES"); do
	# The order turns by one every batch, so that each contender runs as
	# often right after each other one: a batch pays for what the batch
	# before left to the kernel's workers (network namespaces are torn
	# down asynchronously), and a fixed order let the first one win.
	for k in "${!order[@]}"; do
		n=${order[$(((k + b) % ${#order[@]}))]}
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
med, cpu = {}, {}
for n in names:
    times, cpus = [], []
    for b in range(1, batches + 1):
        r = json.load(open(f"{work}/{n}.{b}.json"))["results"][0]
        times += r["times"]
        cpus.append(r["user"] + r["system"])
    med[n] = statistics.median(times) * 1000
    # CPU time (user+sys, mean per run) is less sensitive to a busy host
    # than wall time.
    cpu[n] = statistics.median(cpus) * 1000
rss = {}
for n in names:
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(f"{work}/{n}.time").read())
    rss[n] = int(m.group(1)) / 1024 if m else float("nan")
print(f"{'runtime':10} {'median ms':>10} {'vs crun':>9} {'vs floor':>9} {'cpu ms':>8} {'cpu vs crun':>12} {'peak RSS MiB':>13}")
for n in names:
    print(f"{n:10} {med[n]:10.2f} {med[n]/med['crun']:8.2f}x {med[n]/med['floor']:8.2f}x {cpu[n]:8.2f} {cpu[n]/cpu['crun']:11.2f}x {rss[n]:13.1f}")
PY
[ "${PROFILE:-}" = 1 ] || exit 0
command -v strace >/dev/null || { echo "PROFILE=1 needs strace"; exit 1; }
echo; echo "== estiba run: syscalls by time (strace -c -f)"
strace -f -c -o "$work/strace.c" $EST --root "$work/est" run prof1 >/dev/null
sed -n '1,18p' "$work/strace.c"
echo; echo "== estiba run: largest gaps between syscalls (strace -f -ttt)"
strace -f -ttt -o "$work/strace.t" $EST --root "$work/est" run prof2 >/dev/null
python3 - "$work/strace.t" <<'PY'
import sys
lines = [l.rstrip() for l in open(sys.argv[1]) if l.split()[1:2] and l.split()[1][0].isdigit()]
ts = [(float(l.split()[1]), l) for l in lines]
print(f"total {1000*(ts[-1][0]-ts[0][0]):.1f} ms over {len(ts)} syscalls")
gaps = sorted(((b[0]-a[0], a[1]) for a, b in zip(ts, ts[1:])), reverse=True)[:12]
for g, l in gaps:
    print(f"{1000*g:7.2f} ms after: {l[:150]}")
PY
