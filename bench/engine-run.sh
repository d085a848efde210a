#!/usr/bin/env bash
# Engine benchmarks, side by side in one run: estiba, podman (+crun) and
# docker (a private dockerd, bench/lib/dockerd.sh), with bare crun as the
# memory reference.
#  1. `run --rm --network none img true`, RUNS rounds alternating
#     estiba podman docker, each run once the CPUs are idle (cpu_idle),
#     medians and ratios to estiba;
#  2. N detached `sleep` containers: start rate at N=100, 500, 1000 (each
#     figure is the cumulative rate from 0 to that N) and host memory per
#     container (MemAvailable delta / N), with the engine's userspace share
#     (PSS of its processes: estiba daemon+monitor+spawner; podman's conmons;
#     dockerd+containerd+shims) split out, and the resident memory per
#     container: the MemAvailable delta once drop_caches has taken back
#     what the host can reclaim (the containers' files in the page cache,
#     unused dentries and inodes). Each baseline is taken after the last
#     phase's late frees have settled. Bare crun (`crun run -d` of one
#     shared read-only bundle) is the kernel-only reference, and crun-eq
#     the same for containers like estiba's (bare crun, each container
#     with its own overlay and bundle, cgroup and user namespaces and
#     estiba's seccomp profile: the kernel's share of such a container).
#     One client
#     at a time (serial): every start waits for the previous one, as in
#     a shell loop — the issue's figure;
#  3. the same N detached starts again with PAR clients at once (PAR
#     shell loops, each starting every PAR-th container), for every
#     contender alike: the rate when the engine is kept busy;
#  4. the serial starts once more, interleaved: ROUNDS (10; 0 skips it)
#     rounds, each a batch of estiba and of each of IL_PEERS (podman) in
#     turn (N/ROUNDS for estiba, PEER_N/ROUNDS for podman), so that the
#     host's changes of speed hit both alike: the rate ratio to trust on a
#     shared host.
# Ends with the issue's table in markdown. Every container, daemon and
# state dir is removed at the end, also after a failure or ^C.
# Run as root after `make build`. Knobs: RUNS (default 20), N (default 1000),
# PEER_N (default N: podman's and docker's N, smaller if they take too
# long), CRUN_N (default N: bare crun's, the memory references'), PAR
# (default 4; 0 skips phase 3), PEERS (default "podman docker crun"; drop
# any to skip it). The host may be shared: try N=100 PEER_N=100 first.
# MEMROUNDS (default 3; 0 skips it) rounds of MEM_N (default 300) containers
# measure resident memory of estiba, bare crun and crun-eq back to back
# (phase 5, see memrounds).
# MEMBREAK=1 also prints where each contender's memory per container went:
# the /proc/meminfo and slab cache deltas per container (bench/lib/memsnap.py).
# On ext4 without a journal each timed phase first waits 61 s (quiet):
# see ext4_nojournal below.
# The host is shared: MemAvailable moves with everything else running, so
# read memory figures as ±100 KiB at N=1000 unless the host is quiet.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-20}
N=${N:-1000}
PEER_N=${PEER_N:-$N}
CRUN_N=${CRUN_N:-$N}
PEERS=${PEERS:-podman docker crun}
PAR=${PAR:-4}
BIN=$PWD/bin/estiba
# The CLI execs bin/estibad for `estiba daemon`.
[ -x "$BIN" ] && [ -x "$PWD/bin/estibad" ] || make build >/dev/null
WORK=$(mktemp -d /var/tmp/estiba-bench-engine.XXXXXX)
chmod 711 "$WORK"
export ESTIBA_HOST=unix://$WORK/estiba.sock
DAEMON_PID=
PODMAN_ROOT=$WORK/podman
# Every engine's runtime state (estiba's --exec-root, crun's --root,
# podman's --runroot, dockerd's --exec-root with containerd's state) goes
# on one tmpfs, as /run is on the hosts they run on: what each keeps there
# per container is resident memory, counted as such.
RUNFS=$WORK/runfs
DOCKERD_EXEC=$RUNFS/docker
. bench/lib/dockerd.sh
# --bridge=none: --network none needs no docker0, and another bench's
# dockerd may own that bridge.
DOCKERD_ARGS=--bridge=none
have() { [[ " $PEERS " == *" $1 "* ]]; }
PAR_PIDS=()
cleanup() {
	set +e
	# Phase 3's loops first: they would start containers while we remove.
	# Told to stop, they end after the start in flight (killed, that start
	# could still create a container after the removal below).
	touch "$WORK/stop"
	((${#PAR_PIDS[@]} == 0)) || wait "${PAR_PIDS[@]}" 2>/dev/null
	[ -n "$DAEMON_PID" ] && { "$BIN" ps -aq | xargs -r -n 100 "$BIN" rm -f >/dev/null 2>&1; kill "$DAEMON_PID"; wait "$DAEMON_PID"; }
	[ -f "$RUNFS/estiba/monitor.pid" ] && kill "$(cat "$RUNFS/estiba/monitor.pid")" && sleep 1
	umount "$RUNFS/estiba/exe/estiba-runtime" 2>/dev/null
	if have podman; then
		podman_cmd rm -af -t 0 >/dev/null 2>&1
		podman_cmd system reset -f >/dev/null 2>&1
	fi
	crun_eq_rm_all
	umount "$PEERNS/mnt" 2>/dev/null
	umount "$PEERNS" 2>/dev/null
	dockerd_stop
	umount "$RUNFS" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$RUNFS"
mount -t tmpfs -o mode=711 estiba-bench-run "$RUNFS"

# podman with crun: crun refuses hybrid cgroup hosts unless the cgroup2
# mount is hidden (see shared PEERS.md), and podman's default ulimits need
# a NOFILE cap below the host's hard limit.
cat > "$WORK/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
CONF
# podman and bare crun run in one mount namespace that hides the hybrid
# host's cgroup2 mount, made once and kept in a file (unshare --mount=FILE,
# whose directory must be a private mount); each command enters it with
# nsenter. A wrapper per command (unshare + sh + mount, ~300 page faults)
# would be counted in every podman start.
PEERNS=$WORK/peerns
peerns_setup() {
	mkdir -p "$PEERNS" &&
		mount --bind "$PEERNS" "$PEERNS" && mount --make-private "$PEERNS" && touch "$PEERNS/mnt" &&
		unshare --mount="$PEERNS/mnt" --propagation private sh -c \
			'! mountpoint -q /sys/fs/cgroup/unified || mount -t tmpfs none /sys/fs/cgroup/unified'
}
peer() { nsenter --mount="$PEERNS/mnt" "$@"; }
podman_cmd() {
	CONTAINERS_CONF=$WORK/containers.conf peer podman --root "$PODMAN_ROOT/root" --runroot "$RUNFS/podman" --runtime crun "$@"
}
# Bare crun, its state under $WORK.
crun_cmd() { peer crun --root "$RUNFS/crun" "$@"; }
crun_rm_all() {
	[ -d "$RUNFS/crun" ] || return 0
	crun_cmd list -q 2>/dev/null | while read -r id; do crun_cmd delete -f "$id" >/dev/null 2>&1; done
}
# crun-eq's containers are crun's too (gone with crun_rm_all); then their
# overlays.
crun_eq_rm_all() {
	crun_rm_all
	[ -d "$WORK/crun-eq" ] || return 0
	for d in "$WORK"/crun-eq/*/rootfs; do peer umount "$d" 2>/dev/null || true; done
	rm -rf "$WORK/crun-eq"
}
if have podman && ! { command -v podman && command -v crun; } >/dev/null; then PEERS=${PEERS/podman/}; fi
if have crun && ! command -v crun >/dev/null; then PEERS=${PEERS/crun/}; fi
if { have podman || have crun; } && ! peerns_setup; then
	echo "no mount namespace for podman and crun (unshare --mount=FILE); their columns skipped" >&2
	PEERS=${PEERS/podman/}
	PEERS=${PEERS/crun/}
fi

echo "== image: busybox-static rootfs"
ROOTFS=$WORK/rootfs
mkdir -p "$ROOTFS"/{bin,etc,tmp,proc,sys,dev}
cp /bin/busybox "$ROOTFS/bin/busybox"
for a in sh true sleep; do ln -s busybox "$ROOTFS/bin/$a"; done
echo 'root:x:0:0:root:/:/bin/sh' > "$ROOTFS/etc/passwd"
tar --numeric-owner -C "$ROOTFS" -cf "$WORK/rootfs.tar" .

"$BIN" daemon -H "$ESTIBA_HOST" --data-root "$WORK/data" --exec-root "$RUNFS/estiba" --config-file /dev/null 2>"$WORK/daemon.log" &
DAEMON_PID=$!
for _ in $(seq 100); do "$BIN" version >/dev/null 2>&1 && break; sleep 0.1; done
"$BIN" import "$WORK/rootfs.tar" bench/bb >/dev/null
if have podman; then podman_cmd import "$WORK/rootfs.tar" bench/bb >/dev/null; fi
if have docker; then
	if dockerd_start "$WORK/docker"; then
		docker import "$WORK/rootfs.tar" bench/bb >/dev/null
	else
		PEERS=${PEERS/docker/}
	fi
fi
echo "peers: $PEERS"

now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m/1e6}'; }
declare -A RM RATE100 RATE500 RATE1000 MEM RES USER NDONE PRATE PDONE

run_estiba() { "$BIN" run --rm --network none bench/bb true; }
run_podman() { podman_cmd run --rm --network none bench/bb true; }
run_docker() { docker run --rm --network none bench/bb true; }
rm_engines=(estiba)
for p in podman docker; do have $p && rm_engines+=("$p"); done

# cpu_idle waits (at most 3 s) until the CPUs were idle for 90% of the
# last 100 ms: what an engine still does after its CLI returned (podman's
# cleanup process, a shim's exit, dockerd's and containerd's events and
# garbage collection) must not run during the next engine's timed run.
cpu_idle() {
	local a b i
	for i in $(seq 30); do
		read -ra a < <(head -1 /proc/stat)
		sleep 0.1
		read -ra b < <(head -1 /proc/stat)
		# fields: cpu user nice system idle iowait irq softirq steal
		local tot=0 idle=$((b[4] - a[4] + b[5] - a[5])) k
		for k in 1 2 3 4 5 6 7 8; do tot=$((tot + b[k] - a[k])); done
		((tot > 0 && idle * 10 >= tot * 9)) && return 0
	done
	return 0 # a host busy with something else: run anyway
}

echo "== run --rm img true, $RUNS rounds alternating: ${rm_engines[*]} (each once the CPUs are idle)"
for e in "${rm_engines[@]}"; do : > "$WORK/t.$e"; done
for _ in $(seq "$RUNS"); do
	for e in "${rm_engines[@]}"; do
		cpu_idle
		# EPOCHREALTIME, not $(now): the fork of a subshell and a date
		# (~3-9 ms here) would count in every run.
		s=${EPOCHREALTIME//[^0-9]/}; "run_$e" >/dev/null; f=${EPOCHREALTIME//[^0-9]/}
		echo $(((f - s) * 1000)) >> "$WORK/t.$e"
	done
done
for e in "${rm_engines[@]}"; do
	RM[$e]=$(median < "$WORK/t.$e")
	echo "$e run --rm: median ${RM[$e]} ms"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

# memavail: MemAvailable plus the free pages held in the per-CPU page lists
# (/proc/zoneinfo "count:"), which MemFree and MemAvailable leave out. Those
# lists take the pages a drop_caches or a removal frees, and give them back
# to the buddy allocator when they like: here they held 50 to 90 MiB,
# moving by tens of MiB between readings seconds apart: tens of KiB per
# container at N=1000, the noise that had put one build 64 and 76 KiB
# above bare crun in two runs.
memavail() {
	awk -v page="$(getconf PAGESIZE)" '
		FILENAME == "/proc/meminfo" && /^MemAvailable:/ {a = $2}
		FILENAME == "/proc/zoneinfo" && $1 == "count:" {pcp += $2}
		END {print a + pcp * page / 1024}' /proc/meminfo /proc/zoneinfo
}
pss() { # total PSS in KiB of the given pids
	local t=0 v
	for p in "$@"; do
		v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
		t=$((t + ${v:-0}))
	done
	echo $t
}

# ext4 without a journal (as on the machines these figures come from)
# makes every inode allocation skip the inodes freed in the last 60 s
# (recently_deleted; 300 s while their block is dirty), each skip a
# buffer lookup: right after a phase removed 1000 containers (~20 inodes
# each), that was a third of the daemon's CPU per start in perf record.
# Before a timed phase, quiet() waits that window out, so that no
# contender pays for the removals of the one before it.
ext4_nojournal() {
	local dev
	dev=$(findmnt -no SOURCE -T "$WORK" 2>/dev/null) || return 1
	[ "$(findmnt -no FSTYPE -T "$WORK")" = ext4 ] && command -v dumpe2fs >/dev/null &&
		! dumpe2fs -h "$dev" 2>/dev/null | grep -q '^Filesystem features:.*has_journal'
}
# QUIET (seconds) overrides the wait, 0 to skip it (a quick try of the
# script; its figures then pay for the last phase's removals).
if [ -z "${QUIET:-}" ]; then
	QUIET=0
	if ext4_nojournal; then QUIET=61; fi
fi
quiet() {
	((QUIET > 0)) || return 0
	sync
	echo "(waiting ${QUIET} s: ext4 without a journal skips inodes freed in the last 60 s)"
	sleep "$QUIET"
}

# settle drops the page cache and reclaimable slab, then waits (at most
# 30 s) until MemAvailable moves by less than 1 MiB in 2 s: what the last
# phase's removals freed late (network namespaces are torn down by a
# kernel worker, RCU callbacks) must not count for the next contender.
settle() {
	local a b
	sync; echo 3 > /proc/sys/vm/drop_caches
	b=$(memavail)
	for _ in $(seq 15); do
		sleep 2
		a=$b; b=$(memavail)
		((b - a < 1024 && a - b < 1024)) && break
		sync; echo 3 > /proc/sys/vm/drop_caches
	done
}

# density NAME COUNT START_CMD USERSPACE_PIDS_CMD
density() {
	local name=$1 count=$2 start=$3 pids=$4
	quiet
	settle
	local m0 p0 t0 i=0 dt
	[ -z "${MEMBREAK:-}" ] || python3 bench/lib/memsnap.py save "$WORK/mem0.$name"
	m0=$(memavail); p0=$(pss $($pids)); t0=$(now)
	local targets=()
	for t in 100 500 1000; do if ((t <= count)); then targets+=("$t"); fi; done
	[[ " ${targets[*]} " == *" $count "* ]] || targets+=("$count")
	for target in "${targets[@]}"; do
		while ((i < target)); do $start "$i" >/dev/null; i=$((i + 1)); done
		dt=$(( ($(now) - t0) / 1000000 ))
		case $target in 100 | 500 | 1000) printf -v "RATE${target}[$name]" '%.1f' "$(awk -v n="$target" -v ms="$dt" 'BEGIN {print n*1000/ms}')" ;; esac
		awk -v n="$target" -v ms="$dt" -v name="$name" -v load="$(cut -d' ' -f1 /proc/loadavg)" \
			'BEGIN {printf "%s: %d started in %d ms: %.1f/s (load %s)\n", name, n, ms, n*1000/ms, load}'
	done
	sleep 2
	local m1 p1 m2
	m1=$(memavail); p1=$(pss $($pids))
	NDONE[$name]=$i
	MEM[$name]=$(( (m0 - m1) / i ))
	USER[$name]=$(( (p1 - p0) / i ))
	echo "$name: memory per container ${MEM[$name]} KiB (engine userspace ${USER[$name]} KiB, kernel and rest $((MEM[$name] - USER[$name])) KiB)"
	# What the host cannot take back: the containers' files in the page
	# cache and unused dentries and inodes go with drop_caches.
	settle
	m2=$(memavail)
	RES[$name]=$(( (m0 - m2) / i ))
	echo "$name: resident per container (after drop_caches) ${RES[$name]} KiB"
	if [ -n "${MEMBREAK:-}" ]; then
		python3 bench/lib/memsnap.py save "$WORK/mem1.$name"
		echo "$name: per container, /proc/meminfo and slab deltas:"
		python3 bench/lib/memsnap.py diff "$WORK/mem0.$name" "$WORK/mem1.$name" "$i" 40
	fi
}

# parallel NAME COUNT START_CMD: COUNT starts by PAR loops at once (loop w
# starts containers w, w+PAR, …); the rate is the started containers over
# the wall time of all. A failed start is counted and reported, not fatal:
# the other contenders still get measured. Containers are numbered from
# 100000: the serial phase's are gone by then, but a name is never reused.
parallel() {
	local name=$1 count=$2 start=$3 t0 dt w p failed
	((PAR > 0)) || return 0
	quiet
	settle
	: > "$WORK/failed.$name"
	t0=$(now)
	PAR_PIDS=()
	for ((w = 0; w < PAR; w++)); do
		(
			for ((i = w; i < count; i += PAR)); do
				[ ! -e "$WORK/stop" ] || exit 1
				$start $((100000 + i)) >/dev/null 2>>"$WORK/failed.$name.log" || echo >> "$WORK/failed.$name"
			done
		) &
		PAR_PIDS+=($!)
	done
	for p in "${PAR_PIDS[@]}"; do wait "$p" || true; done
	PAR_PIDS=()
	dt=$(( ($(now) - t0) / 1000000 ))
	failed=$(wc -l < "$WORK/failed.$name")
	printf -v "PRATE[$name]" '%.1f' "$(awk -v n="$((count - failed))" -v ms="$dt" 'BEGIN {print n*1000/ms}')"
	PDONE[$name]="N=$count"
	if ((failed > 0)); then
		PDONE[$name]+=", $failed failed"
		echo "$name: $failed of $count parallel starts failed; the first errors:" >&2
		head -3 "$WORK/failed.$name.log" >&2
	fi
	echo "$name: $((count - failed)) started by $PAR clients at once in $dt ms: ${PRATE[$name]}/s (load $(cut -d' ' -f1 /proc/loadavg))"
}

start_estiba() { "$BIN" run -d --network none bench/bb sleep 3600; }
estiba_pids() {
	local mp
	mp=$(cat "$RUNFS/estiba/monitor.pid")
	echo "$DAEMON_PID $mp $(pgrep -P "$mp" -f monitor-spawner || true)"
}
echo "== $N detached sleep containers: estiba"
density estiba "$N" start_estiba estiba_pids
# crun-eq's container config: the seccomp profile estiba gave one of them.
python3 - "$WORK/estiba-seccomp.json" "$WORK"/data/containers/*/config.json <<'PY'
import json, sys
json.dump(json.load(open(sys.argv[2]))["linux"]["seccomp"], open(sys.argv[1], "w"))
PY
"$BIN" ps -q | xargs -r -n 100 "$BIN" rm -f >/dev/null
parallel estiba "$N" start_estiba
"$BIN" ps -q | xargs -r -n 100 "$BIN" rm -f >/dev/null

if have podman; then
	echo "== $PEER_N detached sleep containers: podman+crun"
	# conmon is podman's per-container supervisor: its PSS is the
	# userspace share (podman itself exits after each start).
	start_podman() { podman_cmd run -d --network none bench/bb sleep 3600; }
	podman_pids() { pgrep -d ' ' -f "^/usr/bin/conmon .*$PODMAN_ROOT" || true; }
	density podman "$PEER_N" start_podman podman_pids
	podman_cmd rm -af -t 0 >/dev/null
	parallel podman "$PEER_N" start_podman
	podman_cmd rm -af -t 0 >/dev/null
fi
if have docker; then
	echo "== $PEER_N detached sleep containers: docker"
	start_docker() { docker run -d --network none bench/bb sleep 3600; }
	docker_pids() {
		local d
		d=$(cat "$WORK/docker/dockerd.pid")
		echo "$d $(pgrep -d ' ' -P "$d") $(pgrep -d ' ' -f "containerd-shim.*$WORK/" || true)"
	}
	density docker "$PEER_N" start_docker docker_pids
	docker ps -q | xargs -r -n 100 docker rm -f >/dev/null
	parallel docker "$PEER_N" start_docker
	docker ps -q | xargs -r -n 100 docker rm -f >/dev/null
fi
if have crun; then
	echo "== $CRUN_N detached sleep containers: bare crun (memory reference)"
	B=$WORK/crun-bundle
	mkdir -p "$B" "$RUNFS/crun"
	( cd "$B" && crun spec >/dev/null )
	# One read-only rootfs for all, no terminal, sleep; crun's default
	# spec has pid, ipc, uts, mount and network namespaces.
	python3 - "$B/config.json" "$ROOTFS" <<'PY'
import json, sys
p, rootfs = sys.argv[1], sys.argv[2]
s = json.load(open(p))
s["root"]["path"] = rootfs
s["process"]["terminal"] = False
s["process"]["args"] = ["sleep", "3600"]
s["root"]["readonly"] = True
json.dump(s, open(p, "w"))
PY
	start_crun() { crun_cmd run -d --bundle "$B" "bench-$1" </dev/null; }
	no_pids() { :; }
	density crun "$CRUN_N" start_crun no_pids
	crun_rm_all
	parallel crun "$CRUN_N" start_crun
	crun_rm_all

	echo "== $CRUN_N detached sleep containers: bare crun, each with what an engine gives it (memory reference)"
	# crun-eq: what the kernel holds for a container like estiba's, without
	# an engine: its own overlay over the image's files (upper and work
	# directories on the same file system as estiba's), its own bundle, a
	# cgroup namespace, a user namespace with 65536 IDs of its own (as
	# --userns=auto gives; crun-eq's rootfs is not idmapped, which `sleep`
	# does not mind) and the seccomp profile estiba applied. The overlay is
	# unmounted from the peers' namespace once the container runs (its own
	# mount namespace keeps it, as estiba's do): every later container's
	# namespace would start as a copy of them all.
	python3 - "$B/config.json" "$WORK/crun-eq.json" "$WORK/estiba-seccomp.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
s["root"] = {"path": "rootfs"}  # in each container's own bundle
s["linux"]["namespaces"] += [{"type": "cgroup"}, {"type": "user"}]
# hostID 3999999999 is replaced per container (see start_crun_eq).
s["linux"]["uidMappings"] = s["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 3999999999, "size": 65536}]
s["linux"]["seccomp"] = json.load(open(sys.argv[3]))
json.dump(s, open(sys.argv[2], "w"))
PY
	start_crun_eq() {
		local d=$WORK/crun-eq/$1
		mkdir -p "$d/upper" "$d/work" "$d/rootfs" &&
			peer mount -t overlay overlay -o "lowerdir=$ROOTFS,upperdir=$d/upper,workdir=$d/work" "$d/rootfs" &&
			sed "s/3999999999/$((1000000000 + $1 * 65536))/" "$WORK/crun-eq.json" > "$d/config.json" &&
			crun_cmd run -d --bundle "$d" "bench-eq-$1" </dev/null &&
			peer umount -l "$d/rootfs"
	}
	density crun-eq "$CRUN_N" start_crun_eq no_pids
	crun_eq_rm_all
fi

# interleaved: the serial start rates again, in ROUNDS rounds, each giving
# estiba and the IL_PEERS (default podman; docker and crun may be added) a
# batch of starts in turn (estiba and bare crun N/ROUNDS, podman and
# docker PEER_N/ROUNDS), so that the host's drift hits them alike: this
# VM's speed changes by up to 2x within minutes, and the phases above
# measure each contender at another time. The rate is the containers
# started over the time spent in their batches; estiba's first and last
# rounds show whether its rate falls as N grows. Every engine's containers
# stay up to the end, so the host holds more containers than in any phase
# above (all four engines: 2200, and every start slowed down with them:
# estiba from 63/s in the first round to 40/s in the last, bare crun to
# 43/s from 73/s alone); hence podman only, by default.
declare -A IRATE IDONE IMS
interleaved() {
	local rounds=${ROUNDS:-10} r e b k t0 idx
	local engines=(estiba)
	for e in ${IL_PEERS-podman}; do have "$e" && engines+=("$e"); done
	echo "== interleaved serial starts, $rounds rounds: ${engines[*]}"
	quiet
	settle
	# One start each, untimed: settle dropped the page cache, and each
	# engine's first start would read its binaries back.
	for e in "${engines[@]}"; do
		IDONE[$e]=0; IMS[$e]=0
		"start_$e" 199999 >/dev/null
	done
	for ((r = 1; r <= rounds; r++)); do
		for e in "${engines[@]}"; do
			case $e in
			estiba) b=$((N / rounds)) ;;
			crun) b=$((CRUN_N / rounds)) ;;
			*) b=$((PEER_N / rounds)) ;;
			esac
			((b > 0)) || continue
			t0=${EPOCHREALTIME//[^0-9]/}
			for ((k = 0; k < b; k++)); do
				idx=$((200000 + IDONE[$e]))
				"start_$e" "$idx" >/dev/null
				IDONE[$e]=$((IDONE[$e] + 1))
			done
			t=$(( ${EPOCHREALTIME//[^0-9]/} - t0 ))
			IMS[$e]=$((IMS[$e] + t / 1000))
			if [ "$e" = estiba ] && { ((r == 1)) || ((r == rounds)); }; then
				awk -v n="$b" -v us="$t" -v r="$r" 'BEGIN {printf "estiba round %d: %.1f/s\n", r, n*1e6/us}'
			fi
		done
	done
	for e in "${engines[@]}"; do
		((IMS[$e] > 0)) || continue
		printf -v "IRATE[$e]" '%.1f' "$(awk -v n="${IDONE[$e]}" -v ms="${IMS[$e]}" 'BEGIN {print n*1000/ms}')"
		echo "$e: ${IDONE[$e]} started in ${IMS[$e]} ms of its rounds: ${IRATE[$e]}/s"
	done
	"$BIN" ps -q | xargs -r -n 100 "$BIN" rm -f >/dev/null
	! have podman || podman_cmd rm -af -t 0 >/dev/null
	! have docker || docker ps -q | xargs -r -n 100 docker rm -f >/dev/null
	! have crun || crun_rm_all
}
[ "${ROUNDS:-10}" = 0 ] || interleaved

# memrounds: resident memory per container again, MEMROUNDS rounds (3; 0
# skips it) of MEM_N (300) containers each for estiba, bare crun and
# crun-eq in turn, nothing timed. The single figures above come from
# phases minutes apart, and resident memory moves with the host's state
# between them (the slab caches' free slots, the shrinker high-water
# mark). Here each round measures the three back to back; the table gives
# the median of each contender's rounds and of the per-round differences
# to bare crun.
declare -A MR
memround() {
	local name=$1 count=$2 start=$3 rmall=$4 i m0 m1
	settle
	m0=$(memavail)
	# Ids of their own (crun-eq's id picks its uid range: below ~50000).
	for ((i = 0; i < count; i++)); do $start $((40000 + i)) >/dev/null; done
	settle
	m1=$(memavail)
	MR[$name]+=" $(( (m0 - m1) / count ))"
	$rmall
}
memrounds() {
	local rounds=${MEMROUNDS:-3} n=${MEM_N:-300} r
	echo "== resident memory, $rounds rounds of $n containers each: estiba crun crun-eq"
	for ((r = 1; r <= rounds; r++)); do
		memround estiba "$n" start_estiba estiba_rm_all
		memround crun "$n" start_crun crun_rm_all
		memround crun-eq "$n" start_crun_eq crun_eq_rm_all
		echo "round $r: estiba ${MR[estiba]##* } KiB, crun ${MR[crun]##* } KiB, crun-eq ${MR[crun-eq]##* } KiB"
	done
}
estiba_rm_all() { "$BIN" ps -q | xargs -r -n 100 "$BIN" rm -f >/dev/null; }
medianof() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {if (NR) printf "%d", (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
# diffs A B: the per-round differences of two contenders' figures.
diffs() { paste -d- <(tr ' ' '\n' <<<"${MR[$1]}" | grep .) <(tr ' ' '\n' <<<"${MR[$2]}" | grep .) | bc | tr '\n' ' '; }
if have crun && [ "${MEMROUNDS:-3}" != 0 ]; then memrounds; fi

echo
echo "== table (run --rm: median of $RUNS; serial start rates: one client, cumulative from 0; parallel: $PAR clients at once; memory per container, engine userspace share in parentheses)"
cols=(estiba)
for p in podman docker crun; do have $p && cols+=("$p"); done
have crun && cols+=(crun-eq)
row() { local l=$1; shift; printf '| %s |' "$l"; for c in "$@"; do printf ' %s |' "$c"; done; echo; }
hdr=(); sep=()
for c in "${cols[@]}"; do hdr+=("$c"); sep+=("---"); done
row "" "${hdr[@]}"
row "---" "${sep[@]}"
vals=(); for c in "${cols[@]}"; do vals+=("${RM[$c]:--}"); done; row "run --rm true, ms" "${vals[@]}"
vals=(); for c in "${cols[@]}"; do
	if [ -n "${RM[$c]:-}" ]; then vals+=("$(awk -v a="${RM[$c]}" -v b="${RM[estiba]}" 'BEGIN {printf "%.2f", a/b}')"); else vals+=("-"); fi
done; row "run --rm, × estiba's time" "${vals[@]}"
for t in 100 500 1000; do
	vals=(); for c in "${cols[@]}"; do v="RATE$t[$c]"; vals+=("${!v:--}"); done
	row "starts/s to N=$t, serial" "${vals[@]}"
done
if [ -n "${IRATE[estiba]:-}" ]; then
	vals=(); for c in "${cols[@]}"; do
		if [ -n "${IRATE[$c]:-}" ]; then vals+=("${IRATE[$c]} (N=${IDONE[$c]})"); else vals+=("-"); fi
	done; row "starts/s serial, interleaved rounds" "${vals[@]}"
	vals=(); for c in "${cols[@]}"; do
		if [ -n "${IRATE[$c]:-}" ]; then vals+=("$(awk -v a="${IRATE[estiba]}" -v b="${IRATE[$c]}" 'BEGIN {printf "%.2f", a/b}')"); else vals+=("-"); fi
	done; row "interleaved: estiba's rate, × this one's" "${vals[@]}"
fi
if ((PAR > 0)); then
	vals=(); for c in "${cols[@]}"; do
		if [ -n "${PRATE[$c]:-}" ]; then vals+=("${PRATE[$c]} (${PDONE[$c]})"); else vals+=("-"); fi
	done; row "starts/s, $PAR clients in parallel" "${vals[@]}"
fi
vals=(); for c in "${cols[@]}"; do
	if [ -n "${MEM[$c]:-}" ]; then vals+=("${MEM[$c]} KiB (${USER[$c]})"); else vals+=("-"); fi
done; row "memory per container" "${vals[@]}"
vals=(); for c in "${cols[@]}"; do vals+=("${RES[$c]:--} KiB"); done; row "resident per container (after drop_caches)" "${vals[@]}"
vals=(); for c in "${cols[@]}"; do vals+=("${NDONE[$c]:--}"); done; row "N measured" "${vals[@]}"
if [ -n "${MR[estiba]:-}" ]; then
	vals=(); for c in "${cols[@]}"; do
		if [ -n "${MR[$c]:-}" ]; then vals+=("$(medianof <<<"${MR[$c]}") KiB"); else vals+=("-"); fi
	done; row "resident, median of ${MEMROUNDS:-3} rounds of ${MEM_N:-300} back to back" "${vals[@]}"
	echo
	echo "estiba − bare crun, resident, per round: $(diffs estiba crun)(median $(diffs estiba crun | medianof) KiB); estiba − crun-eq: $(diffs estiba crun-eq)(median $(diffs estiba crun-eq | medianof) KiB)"
fi
