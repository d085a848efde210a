#!/usr/bin/env bash
# The main job, offline: build a small image from Debian's busybox-static and
# run a container from it.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "demo: the runtime is not built yet" >&2
exit 1
