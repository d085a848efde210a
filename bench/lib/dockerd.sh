# Sourced by bench scripts: a private dockerd (Debian's docker.io, with its own
# containerd and runc) as a peer, started and torn down by the script itself.
#   dockerd_start DIR [ARGS...]
#                       start dockerd with state under DIR (ARGS: more dockerd
#                       flags); exports DOCKER_HOST and returns non-zero (with
#                       a message) if it can't run
#   dockerd_stop        stop it and remove its containers, mounts and docker0
# DOCKERD_EXEC is its --exec-root (default DIR/exec). DOCKERD_ARGS adds
# flags; with --bridge=none no docker0 is made (nor removed),
# so two private dockerds (two benches at once) do not fight over it.
# The daemon runs with --iptables=false so it leaves the host firewall alone;
# published ports then go through docker-proxy, its userland proxy, which is
# the path the network bench compares against.
# Install: apt-get install docker.io (scripts/setup.sh --bench does it).

DOCKERD_PID=
DOCKERD_DIR=

dockerd_start() {
	DOCKERD_DIR=$1
	if ! command -v dockerd >/dev/null; then
		echo "dockerd not installed (apt-get install docker.io); docker column skipped" >&2
		return 1
	fi
	mkdir -p "$DOCKERD_DIR"
	dockerd --data-root "$DOCKERD_DIR/root" --exec-root "${DOCKERD_EXEC:-$DOCKERD_DIR/exec}" \
		-H "unix://$DOCKERD_DIR/docker.sock" --pidfile "$DOCKERD_DIR/dockerd.pid" \
		--iptables=false --ip6tables=false --storage-driver overlay2 \
		--default-ulimit nofile=20000:20000 ${DOCKERD_ARGS:-} "${@:2}" >"$DOCKERD_DIR/dockerd.log" 2>&1 &
	DOCKERD_PID=$!
	export DOCKER_HOST=unix://$DOCKERD_DIR/docker.sock
	for _ in $(seq 150); do
		docker version >/dev/null 2>&1 && return 0
		kill -0 "$DOCKERD_PID" 2>/dev/null || break
		sleep 0.2
	done
	echo "dockerd did not start; see $DOCKERD_DIR/dockerd.log:" >&2
	tail -5 "$DOCKERD_DIR/dockerd.log" >&2
	dockerd_stop
	return 1
}

dockerd_stop() {
	[ -n "$DOCKERD_PID" ] || return 0
	docker ps -aq 2>/dev/null | xargs -r docker rm -f >/dev/null 2>&1
	kill "$DOCKERD_PID" 2>/dev/null
	wait "$DOCKERD_PID" 2>/dev/null
	DOCKERD_PID=
	# dockerd leaves its bridge and, if killed hard, mounts under its roots.
	[[ " ${DOCKERD_ARGS:-} " == *" --bridge=none "* ]] || ip link del docker0 2>/dev/null
	local d
	for d in "$DOCKERD_DIR" ${DOCKERD_EXEC:+"$DOCKERD_EXEC"}; do
		grep -o " $d[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
		rm -rf "$d"
	done
	return 0
}
